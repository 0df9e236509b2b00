//! What every bench program's report is made of, written once so that the tables of
//! `docs/PERFORMANCE.md` keep one format: verdicts, ratios, units, and the rows of latency
//! tables.
//!
//! Each function reproduces, to the character, what the bench programs printed before they
//! shared it; a change here changes every report that uses it.

use helios_workloads::latency::Summary;

/// A target's verdict in a sentence or a list: `PASS` or `MISS`.
#[must_use]
pub fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

/// A target's verdict in a Markdown table cell, in bold: `**PASS**` or `**MISS**`.
#[must_use]
pub fn verdict_cell(met: bool) -> &'static str {
    if met { "**PASS**" } else { "**MISS**" }
}

/// A target's verdict in the append latency harness's words, `MET` or `NOT MET`, as its
/// runs in `docs/PERFORMANCE.md` print it.
#[must_use]
pub fn met(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

/// A ratio with two decimals and an `x` (`1.52x`), or `-` when there is none.
#[must_use]
pub fn times(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

/// `numerator / denominator` as [`times`] writes it, `-` when the denominator is not
/// positive.
#[must_use]
pub fn ratio(numerator: f64, denominator: f64) -> String {
    times((denominator > 0.0).then(|| numerator / denominator))
}

/// Microseconds with the precision their size deserves: two decimals below 10, one below
/// 1000, none above (`0.29`, `27.5`, `1198`).
#[must_use]
pub fn us(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else if x < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// One decimal (`{:.1}`), the precision of most latency columns.
#[must_use]
pub fn one_decimal(x: f64) -> String {
    format!("{x:.1}")
}

/// Bytes in MiB (2^20).
#[must_use]
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Bytes in MB (10^6).
#[must_use]
pub fn mb(bytes: f64) -> f64 {
    bytes / 1e6
}

/// Bytes per 100,000 events, from a growth of `delta_bytes` over `events` events.
#[must_use]
pub fn per_100k(delta_bytes: u64, events: u64) -> f64 {
    delta_bytes as f64 * 100_000.0 / events.max(1) as f64
}

/// The median, p99, p99.9 and max of `summary` (in microseconds), each through `format`: the
/// percentile columns of every latency table, in that order.
#[must_use]
pub fn percentile_cells(summary: &Summary, format: impl Fn(f64) -> String) -> [String; 4] {
    [
        summary.median_us,
        summary.p99_us,
        summary.p999_us,
        summary.max_us,
    ]
    .map(format)
}

/// One Markdown table row: `| a | b | c |`.
#[must_use]
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let cells: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
    format!("| {} |", cells.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_the_ones_the_reports_printed() {
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(3.0, 0.0), "-");
        assert_eq!(times(None), "-");
        assert_eq!(us(0.291), "0.29");
        assert_eq!(us(27.46), "27.5");
        assert_eq!(us(1198.2), "1198");
        assert_eq!((verdict(true), verdict(false)), ("PASS", "MISS"));
        assert_eq!(verdict_cell(false), "**MISS**");
        assert_eq!(met(false), "NOT MET");
        let summary = Summary {
            count: 3,
            median_us: 1.0,
            p99_us: 2.26,
            p999_us: 3.0,
            max_us: 40.0,
            mean_us: 1.5,
        };
        let mut cells = vec!["helios".to_owned(), summary.count.to_string()];
        cells.extend(percentile_cells(&summary, one_decimal));
        assert_eq!(row(&cells), "| helios | 3 | 1.0 | 2.3 | 3.0 | 40.0 |");
    }
}
