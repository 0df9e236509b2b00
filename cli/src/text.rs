//! Plain-text output helpers: aligned tables, and numbers, durations, ratios and sizes as
//! people read them.

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

/// `n` with thousands separators: `20,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A non-negative, finite `x` rounded to a whole number, with thousands separators.
pub fn thousands_f64(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return "-".to_owned();
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "finite, non-negative and rounded; rates and counts are far below 2^64"
    )]
    let n = x.round() as u64;
    thousands(n)
}

/// A duration in nanoseconds as microseconds, with enough digits to tell sub-microsecond
/// values apart: `0.21`, `3.4`, `127`, `1,234`.
pub fn us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us < 1.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        thousands_f64(us)
    }
}

/// A ratio as `12x`, `3.4x` or `0.52x`.
pub fn times(ratio: f64) -> String {
    if !ratio.is_finite() {
        "-".to_owned()
    } else if ratio >= 100.0 {
        format!("{}x", thousands_f64(ratio))
    } else if ratio >= 10.0 {
        format!("{ratio:.0}x")
    } else if ratio >= 1.0 {
        format!("{ratio:.1}x")
    } else {
        format!("{ratio:.2}x")
    }
}

/// Bytes in the largest binary unit that keeps at least one whole: `812 B`, `3.4 KiB`,
/// `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands_f64(1234.6), "1,235");
        assert_eq!(thousands_f64(f64::NAN), "-");
        assert_eq!(us(210.0), "0.21");
        assert_eq!(us(3_420.0), "3.4");
        assert_eq!(us(127_000.0), "127");
        assert_eq!(us(1_234_000.0), "1,234");
        assert_eq!(times(0.5), "0.50x");
        assert_eq!(times(3.44), "3.4x");
        assert_eq!(times(12.4), "12x");
        assert_eq!(times(1234.0), "1,234x");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(3 * 1024 + 400), "3.4 KiB");
        assert_eq!(bytes(64 * 1024 * 1024), "64.0 MiB");
    }

    #[test]
    fn tables_align_numbers_right_and_text_left() {
        let out = table(
            2,
            &[("N", Align::Right), ("NAME", Align::Left)],
            &[
                vec!["1".to_owned(), "a".to_owned()],
                vec!["100".to_owned(), "bb".to_owned()],
            ],
        );
        assert_eq!(out, "    N  NAME\n    1  a\n  100  bb\n");
    }
}
