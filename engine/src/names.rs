//! Names cut to a readable length for messages.
//!
//! A stream name may be up to [`crate::STREAM_NAME_LEN_MAX`] bytes, and a name a caller asks
//! for (a stream that does not exist, an invalid one) may be any length: an error message that
//! echoed a 70 KB name whole would bury the sentence around it. Every message that names a
//! stream or a key goes through [`short_name`]: at most [`NAME_SHOWN_CHARS_MAX`] characters,
//! then `… (N bytes)` with the whole name's length. The full name stays in the error's field.
//!
//! A message is one line, so control characters (which no valid stream name holds, but a name
//! that was refused may) are shown escaped, as Rust's `char::escape_debug` writes them.

use std::fmt;

/// Most characters of a name shown in a message; a longer name is cut there.
pub const NAME_SHOWN_CHARS_MAX: usize = 64;

/// A name as messages show it: see [`short_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortName<'a> {
    name: &'a str,
}

/// `name` cut to a readable length for a message: its first [`NAME_SHOWN_CHARS_MAX`]
/// characters, followed by `… (N bytes)` when the name is longer, control characters escaped.
///
/// ```
/// use helios::short_name;
///
/// assert_eq!(short_name("order-17").to_string(), "order-17");
/// let long = "x".repeat(70_000);
/// assert_eq!(short_name(&long).to_string(), format!("{}… (70000 bytes)", "x".repeat(64)));
/// assert_eq!(short_name("a\nb").to_string(), "a\\nb");
/// ```
#[must_use]
pub fn short_name(name: &str) -> ShortName<'_> {
    ShortName { name }
}

impl ShortName<'_> {
    /// The part of the name that is shown, and whether it was cut.
    fn shown(&self) -> (&str, bool) {
        match self.name.char_indices().nth(NAME_SHOWN_CHARS_MAX) {
            Some((end, _)) => (&self.name[..end], true),
            None => (self.name, false),
        }
    }
}

impl fmt::Display for ShortName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, cut) = self.shown();
        for c in shown.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        if cut {
            write!(f, "… ({} bytes)", self.name.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_of_the_limit_is_shown_whole_and_one_char_more_is_cut() {
        let whole = "é".repeat(NAME_SHOWN_CHARS_MAX);
        assert_eq!(short_name(&whole).to_string(), whole);
        let longer = "é".repeat(NAME_SHOWN_CHARS_MAX + 1);
        assert_eq!(
            short_name(&longer).to_string(),
            format!("{whole}… ({} bytes)", longer.len())
        );
    }

    #[test]
    fn control_characters_are_escaped_so_a_message_stays_one_line() {
        assert_eq!(short_name("a\r\n\tb").to_string(), "a\\r\\n\\tb");
        assert_eq!(short_name("").to_string(), "");
    }
}
