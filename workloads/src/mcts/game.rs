//! The game: Connect Four positions, moves and outcomes, and how a position is stored in the
//! engine (one `cell/R/C` key per piece, on the built-in key-value machine).

use std::fmt;

use helios::kv::{self, KvEvent};

/// Rows of the board.
pub const ROWS: usize = 6;
/// Columns of the board.
pub const COLUMNS: usize = 7;
/// Cells of the board.
pub const CELLS: usize = ROWS * COLUMNS;
/// Pieces in a row that win.
const CONNECT: usize = 4;
/// A bit per column: every column of an empty board is playable.
pub(crate) const ALL_COLUMNS: u8 = 0b111_1111;
const _: () = assert!(ALL_COLUMNS.count_ones() as usize == COLUMNS);
const _: () = assert!(
    ROWS < 10 && COLUMNS < 10,
    "cell keys use one digit per coordinate"
);

/// Prefix of every key the game writes.
pub const CELL_PREFIX: &[u8] = b"cell/";

/// A player's piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    /// The first player.
    X,
    /// The second player.
    O,
}

impl Piece {
    /// The byte stored as the cell's value.
    #[must_use]
    pub fn byte(self) -> u8 {
        match self {
            Piece::X => b'X',
            Piece::O => b'O',
        }
    }

    /// The opponent.
    #[must_use]
    pub fn other(self) -> Piece {
        match self {
            Piece::X => Piece::O,
            Piece::O => Piece::X,
        }
    }

    fn from_value(value: &[u8]) -> Option<Piece> {
        match value {
            b"X" => Some(Piece::X),
            b"O" => Some(Piece::O),
            _ => None,
        }
    }
}

/// How a finished game ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Four in a row.
    Win(Piece),
    /// A full board without four in a row.
    Draw,
}

/// One move: the piece dropped and the cell it landed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Move {
    /// Row it landed in (0 is the bottom).
    pub row: usize,
    /// Column it was dropped into.
    pub column: usize,
    /// Who played it.
    pub piece: Piece,
}

impl Move {
    /// The key-value event that records the move: `set cell/R/C P`.
    #[must_use]
    pub fn event(&self) -> Vec<u8> {
        let key = format!("cell/{}/{}", self.row, self.column);
        kv::encode(&KvEvent::Set {
            key: key.as_bytes(),
            value: &[self.piece.byte()],
        })
    }
}

/// Why the engine's state or an event is not a Connect Four position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardError {
    /// What is wrong, one sentence.
    pub reason: String,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Connect Four position: {}", self.reason)
    }
}

impl std::error::Error for BoardError {}

/// A Connect Four position: 6 rows of 7 cells, row 0 at the bottom.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Board {
    /// Cell `row * COLUMNS + column`.
    cells: [Option<Piece>; CELLS],
}

impl Default for Board {
    fn default() -> Self {
        Board::new()
    }
}

impl Board {
    /// The empty board.
    #[must_use]
    pub fn new() -> Board {
        Board {
            cells: [None; CELLS],
        }
    }

    /// The piece at `row`, `column` (`None`: empty, or off the board).
    #[must_use]
    pub fn get(&self, row: usize, column: usize) -> Option<Piece> {
        if row < ROWS && column < COLUMNS {
            self.cells[row * COLUMNS + column]
        } else {
            None
        }
    }

    /// Pieces on the board.
    #[must_use]
    pub fn pieces(&self) -> usize {
        self.cells.iter().filter(|c| c.is_some()).count()
    }

    /// Whose turn it is: X after an even number of pieces.
    #[must_use]
    pub fn to_move(&self) -> Piece {
        if self.pieces().is_multiple_of(2) {
            Piece::X
        } else {
            Piece::O
        }
    }

    /// The lowest empty row of `column`, `None` if it is full.
    #[must_use]
    pub fn free_row(&self, column: usize) -> Option<usize> {
        if column >= COLUMNS {
            return None;
        }
        (0..ROWS).find(|&row| self.get(row, column).is_none())
    }

    /// The legal moves as a bit per column: 0 when the game is over.
    #[must_use]
    pub fn moves(&self) -> u8 {
        if self.outcome().is_some() {
            return 0;
        }
        (0..COLUMNS)
            .filter(|&c| self.free_row(c).is_some())
            .fold(0, |mask, c| mask | (1 << c))
    }

    /// Drops the side to move's piece into `column`. `None` if the column is full or the game
    /// is over.
    pub fn play(&mut self, column: usize) -> Option<Move> {
        if self.moves() & (1 << column) == 0 {
            return None;
        }
        let row = self.free_row(column)?;
        let piece = self.to_move();
        self.cells[row * COLUMNS + column] = Some(piece);
        Some(Move { row, column, piece })
    }

    /// `Some` once the game is over.
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        const DIRECTIONS: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];
        for row in 0..ROWS {
            for column in 0..COLUMNS {
                let Some(piece) = self.get(row, column) else {
                    continue;
                };
                for (dr, dc) in DIRECTIONS {
                    let four = (1..CONNECT).all(|k| {
                        let (Some(r), Some(c)) = (
                            row.checked_add_signed(dr * k.cast_signed()),
                            column.checked_add_signed(dc * k.cast_signed()),
                        ) else {
                            return false;
                        };
                        self.get(r, c) == Some(piece)
                    });
                    if four {
                        return Some(Outcome::Win(piece));
                    }
                }
            }
        }
        (self.pieces() == CELLS).then_some(Outcome::Draw)
    }

    /// Sets a cell from a key-value entry `cell/R/C` -> `X` or `O`.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), BoardError> {
        let error = |what: &str| BoardError {
            reason: format!("{what}: `{}`", String::from_utf8_lossy(key)),
        };
        let coordinates = key
            .strip_prefix(CELL_PREFIX)
            .ok_or_else(|| error("a key outside `cell/`"))?;
        let (row, column) = match coordinates {
            [r, b'/', c] if r.is_ascii_digit() && c.is_ascii_digit() => {
                (usize::from(r - b'0'), usize::from(c - b'0'))
            }
            _ => return Err(error("a cell key that is not `cell/R/C`")),
        };
        if row >= ROWS || column >= COLUMNS {
            return Err(error("a cell off the board"));
        }
        self.cells[row * COLUMNS + column] = match value {
            None => None,
            Some(value) => Some(Piece::from_value(value).ok_or_else(|| BoardError {
                reason: format!(
                    "cell `{}` holds `{}`, not X or O",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value)
                ),
            })?),
        };
        Ok(())
    }

    /// The board held by key-value entries (every entry must be a cell).
    ///
    /// # Errors
    /// An entry that is not `cell/R/C` -> `X`/`O` on the board.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Board, BoardError> {
        let mut board = Board::new();
        for (key, value) in entries {
            board.put(key, Some(value))?;
        }
        Ok(board)
    }

    /// The board of an engine view: its `cell/` entries.
    ///
    /// # Errors
    /// An entry under `cell/` that is not a cell of the board.
    pub fn from_view(view: &helios::View) -> Result<Board, BoardError> {
        Board::from_entries(view.prefix(CELL_PREFIX))
    }

    /// Applies one key-value event (`set cell/R/C P` or `del cell/R/C`), as the engine's
    /// machine would: the fold a backend without state reads does.
    ///
    /// # Errors
    /// An event that is not key-value, or not about a cell.
    pub fn apply_event(&mut self, event: &[u8]) -> Result<(), BoardError> {
        match kv::parse(event) {
            Ok(KvEvent::Set { key, value }) => self.put(key, Some(value)),
            Ok(KvEvent::Del { key }) => self.put(key, None),
            Err(error) => Err(BoardError {
                reason: error.to_string(),
            }),
        }
    }
}

impl fmt::Display for Board {
    /// Six lines, top row first: `.` empty, `X`, `O`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in (0..ROWS).rev() {
            for column in 0..COLUMNS {
                let c = self.get(row, column).map_or('.', |p| char::from(p.byte()));
                write!(f, "{c}")?;
            }
            if row > 0 {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Board {
    /// One line, top row first, rows separated by `|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Board({})", self.to_string().replace('\n', "|"))
    }
}

/// The index of the `k`-th set bit of `mask` (`k` below its population count).
pub(crate) fn nth_bit(mask: u8, k: usize) -> Option<usize> {
    (0..8).filter(|&bit| mask & (1 << bit) != 0).nth(k)
}
