//! A minimal JSON writer for `--json` output (the workspace has no serde_json).
//!
//! Only what the CLI emits is supported: null, booleans, unsigned integers, strings, arrays and
//! objects with fixed keys. Strings are escaped per RFC 8259: `"` and `\`, and every control
//! character below U+0020; everything else is written as UTF-8.

use std::fmt::Write as _;

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A non-negative integer.
    U64(u64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; keys are written in this order.
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Renders the value, indented by two spaces per level, with no trailing newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::U64(n) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => write_string(out, s),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    indent(out, depth + 1);
                    item.write(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push(']');
            }
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    indent(out, depth + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Appends `s` to `out` as a quoted, escaped JSON string.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn plain_strings_are_only_quoted() {
        assert_eq!(quoted(""), r#""""#);
        assert_eq!(quoted("stream-1/a b"), r#""stream-1/a b""#);
        assert_eq!(quoted("héliös ☀ 𝄞"), "\"héliös ☀ 𝄞\"");
        assert_eq!(
            quoted("\u{7f}"),
            "\"\u{7f}\"",
            "DEL is not a JSON control character"
        );
    }

    #[test]
    fn quotes_backslashes_and_controls_are_escaped() {
        assert_eq!(quoted(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quoted(r"C:\dir\"), r#""C:\\dir\\""#);
        assert_eq!(quoted("1\n2\r3\t4\u{8}5\u{c}6"), r#""1\n2\r3\t4\b5\f6""#);
        assert_eq!(quoted("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
        assert_eq!(
            quoted(" "),
            r#"" ""#,
            "U+0020 is the first character left as is"
        );
    }

    #[test]
    fn every_control_character_is_escaped() {
        for code in 0u32..0x20 {
            let c = char::from_u32(code).expect("a valid char");
            let q = quoted(&c.to_string());
            assert!(
                q.starts_with("\"\\") && q.ends_with('"'),
                "{code:#x} gave {q}"
            );
            assert!(
                !q.chars().any(|c| u32::from(c) < 0x20),
                "{code:#x} left raw in {q}"
            );
        }
    }

    #[test]
    fn values_render_indented() {
        let value = Json::Object(vec![
            ("a", Json::U64(1)),
            ("b", Json::Array(vec![Json::Bool(true), Json::Null])),
            ("c", Json::Array(vec![])),
            ("d", Json::Object(vec![])),
            ("k\"", Json::str("v")),
        ]);
        let expected = r#"{
  "a": 1,
  "b": [
    true,
    null
  ],
  "c": [],
  "d": {},
  "k\"": "v"
}"#;
        assert_eq!(value.render(), expected);
    }
}
