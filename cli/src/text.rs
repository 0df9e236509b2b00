//! Plain-text output helpers: aligned tables.

/// How a table column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// Renders `rows` under `header` as columns separated by two spaces, each line indented by
/// `indent` spaces and ended by a newline. Widths count characters, not bytes. The last column
/// is not padded when it is left-aligned, so lines carry no trailing spaces.
pub fn table(indent: usize, header: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = header.iter().map(|(h, _)| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = " ".repeat(indent);
        for (i, ((cell, width), (_, align))) in row.iter().zip(&widths).zip(header).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
            match align {
                Align::Left if i + 1 == header.len() => line.push_str(cell),
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Renders `(key, value)` lines with the values aligned, each line indented by `indent` spaces.
pub fn pairs(indent: usize, rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&" ".repeat(indent));
        out.push_str(key);
        out.push_str(&" ".repeat(width - key.chars().count() + 2));
        out.push_str(value);
        out.push('\n');
    }
    out
}
