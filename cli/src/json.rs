//! `--json` output, in one place.
//!
//! Every command's JSON is a `serde::Serialize` struct of its own (its fields are the
//! documentation of the output), written by `serde_json`: an object pretty-printed with two
//! spaces per level, keys in field order, or one compact object per line for streams of
//! records (`helios read --json`). Strings are escaped per RFC 8259; floating-point numbers
//! that are not finite are written as `null`.

use serde::Serialize;

use crate::error::CliError;

/// `value` as pretty-printed JSON followed by a newline.
pub fn pretty(value: &impl Serialize) -> Result<String, CliError> {
    let mut out = serde_json::to_string_pretty(value).map_err(CliError::Json)?;
    out.push('\n');
    Ok(out)
}

/// `value` as one line of compact JSON followed by a newline (JSON lines).
pub fn line(value: &impl Serialize) -> Result<String, CliError> {
    let mut out = serde_json::to_string(value).map_err(CliError::Json)?;
    out.push('\n');
    Ok(out)
}

/// Rounds `x` to `decimals` decimal places, so that JSON carries measured values without
/// meaningless digits (`0.30000000000000004`).
pub fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Sample {
        a: u64,
        b: Vec<Option<bool>>,
        c: Vec<u64>,
        #[serde(rename = "k\"")]
        k: String,
        text: String,
        ratio: f64,
        nan: f64,
    }

    #[test]
    fn objects_are_pretty_printed_in_field_order_with_escapes() {
        let value = Sample {
            a: 1,
            b: vec![Some(true), None],
            c: vec![],
            k: "v".to_owned(),
            text: "a\"b\\c\n\u{1}héliös".to_owned(),
            ratio: 2.5,
            nan: f64::NAN,
        };
        let expected = r#"{
  "a": 1,
  "b": [
    true,
    null
  ],
  "c": [],
  "k\"": "v",
  "text": "a\"b\\c\n\u0001héliös",
  "ratio": 2.5,
  "nan": null
}
"#;
        assert_eq!(pretty(&value).expect("render"), expected);
        assert!(line(&value).expect("render").ends_with("\"nan\":null}\n"));
        assert_eq!(line(&value).expect("render").lines().count(), 1);
    }

    #[test]
    fn rounding_keeps_the_asked_decimals() {
        assert_eq!(round(0.1 + 0.2, 3), 0.3);
        assert_eq!(round(1234.5678, 1), 1234.6);
        assert_eq!(round(2.0, 2), 2.0);
    }
}
