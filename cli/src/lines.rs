//! Stdin, a bounded line at a time, for the commands that read events from it (`append`,
//! `import`), and the check that a line is a key-value event `helios get` can read.
//!
//! Invariant: reading a line never holds more than its limit (plus one buffer of the reader)
//! in memory: a longer line is reported as soon as it passes the limit, and the rest of it is
//! not read.

use std::io::{self, BufRead};

use crate::error::CliError;

/// What reading one line of stdin found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRead {
    /// The end of the input: no byte was left.
    End,
    /// A line, in the buffer without its newline (the last line may have none).
    Line,
    /// A line longer than the limit: the buffer holds its first bytes, and the rest of the
    /// input was not read.
    TooLong,
}

/// Reads one line of `input` into `line`, without its newline, holding at most `max_bytes` of
/// it in memory: a longer line is [`LineRead::TooLong`] as soon as it passes `max_bytes`.
pub fn read_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    max_bytes: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut started = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if started {
                LineRead::Line
            } else {
                LineRead::End
            });
        }
        started = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if line.len() + chunk.len() > max_bytes {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(chunk);
        let consumed = chunk.len() + usize::from(newline.is_some());
        input.consume(consumed);
        if newline.is_some() {
            return Ok(LineRead::Line);
        }
    }
}

/// Checks that `payload` is a key-value event whose key is UTF-8 (`line` is its stdin line,
/// for the error).
pub fn check_key_value(payload: &[u8], line: u64) -> Result<(), CliError> {
    let event =
        helios::kv::parse(payload).map_err(|source| CliError::NotKeyValue { line, source })?;
    let key = match event {
        helios::kv::KvEvent::Set { key, .. } | helios::kv::KvEvent::Del { key } => key,
    };
    if std::str::from_utf8(key).is_err() {
        return Err(CliError::KeyNotUtf8 { line });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_up_to_the_limit_and_no_further() {
        let mut input = io::BufReader::with_capacity(4, &b"ab\n\nabcd\nabcde\nlast"[..]);
        let mut line = Vec::new();
        let mut next = |input: &mut io::BufReader<&[u8]>| {
            let read = read_line(input, &mut line, 4).expect("read");
            (read, String::from_utf8(line.clone()).expect("UTF-8"))
        };
        assert_eq!(next(&mut input), (LineRead::Line, "ab".to_owned()));
        assert_eq!(next(&mut input), (LineRead::Line, String::new()));
        assert_eq!(next(&mut input), (LineRead::Line, "abcd".to_owned()));
        let (read, _) = next(&mut input);
        assert_eq!(read, LineRead::TooLong);
        // The reader stopped inside the long line: what it holds is at most the limit plus
        // one buffer.
        let mut rest = Vec::new();
        io::Read::read_to_end(&mut input, &mut rest).expect("rest");
        assert!(rest.ends_with(b"e\nlast"), "{rest:?}");
    }

    #[test]
    fn the_last_line_needs_no_newline_and_the_end_is_the_end() {
        let mut input = &b"set a 1"[..];
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut input, &mut line, 100).expect("read"),
            LineRead::Line
        );
        assert_eq!(line, b"set a 1");
        assert_eq!(
            read_line(&mut input, &mut line, 100).expect("read"),
            LineRead::End
        );
    }

    #[test]
    fn keys_must_be_utf8_and_values_need_not_be() {
        assert!(check_key_value(b"set k \xff", 1).is_ok());
        assert!(matches!(
            check_key_value(b"set \xff v", 7),
            Err(CliError::KeyNotUtf8 { line: 7 })
        ));
        assert!(matches!(
            check_key_value(b"del \xfe", 2),
            Err(CliError::KeyNotUtf8 { line: 2 })
        ));
    }
}
