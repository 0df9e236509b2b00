//! The sweep as an SVG plot: view p99 against storage (bytes per event, log and checkpoints),
//! both on log scales, every setting a labelled point, the Pareto front drawn as a line and
//! the recommended setting ringed.
//!
//! Storage on the x axis is bytes per event rather than checkpoint bytes so that a setting
//! with no checkpoint at all still has a place on a log scale; the log's share is the same for
//! every setting, so the front is the same either way. The grey vertical line is the log alone.

use plotters::prelude::*;

use super::report::Row;

/// Width and height of the plot, in pixels.
const SIZE: (u32, u32) = (1000, 680);

/// The error of a drawing call.
pub type PlotError = Box<dyn std::error::Error + Send + Sync>;

/// The plot of `rows` (named by `labels`) as an SVG document. `title` heads it, `subtitle`
/// (the workload) goes under it, and `log_bytes_per_event` places the log-only line.
pub fn svg(
    rows: &[Row],
    labels: &[String],
    title: &str,
    subtitle: &str,
    log_bytes_per_event: f64,
) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let subtitle_lines = wrap(subtitle, SUBTITLE_LINE_CHARS);
        let top_height = 40 + 18 * u32::try_from(subtitle_lines.len()).unwrap_or(1);
        let (top, body) = root.split_vertically(top_height);
        top.draw(&Text::new(
            title.to_owned(),
            (16, 8),
            ("sans-serif", 22).into_font().color(&BLACK),
        ))?;
        for (line, y) in subtitle_lines.into_iter().zip((36..).step_by(18)) {
            top.draw(&Text::new(
                line,
                (16, y),
                ("sans-serif", 13).into_font().color(&BLACK.mix(0.7)),
            ))?;
        }

        let xs = rows
            .iter()
            .map(|r| r.bytes_per_event)
            .chain([log_bytes_per_event]);
        let (x_min, x_max) = padded_range(xs);
        let (y_min, y_max) = padded_range(rows.iter().map(|r| r.view_p99_us));
        // Room above the highest point for the legend.
        let y_max = y_max * (y_max / y_min).powf(0.4);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(16)
            .margin_right(32)
            .margin_bottom(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                (x_min..x_max)
                    .log_scale()
                    .with_key_points(ticks(x_min, x_max)),
                (y_min..y_max)
                    .log_scale()
                    .with_key_points(ticks(y_min, y_max)),
            )?;
        chart
            .configure_mesh()
            .x_desc("storage: bytes per event, log + checkpoints (log scale)")
            .y_desc("view + point reads, p99 (us, log scale)")
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 14))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;

        // The log alone: no setting can be left of it.
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(LineSeries::new(
                [(log_bytes_per_event, y_min), (log_bytes_per_event, y_max)],
                grey.stroke_width(1),
            ))?
            .label("the log alone (no checkpoints)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], grey.stroke_width(1)));

        let blue = RGBColor(60, 110, 180);
        chart
            .draw_series(rows.iter().filter(|r| !r.pareto).map(|r| {
                Circle::new(
                    (r.bytes_per_event, r.view_p99_us),
                    4,
                    blue.mix(0.7).filled(),
                )
            }))?
            .label("a setting, FANOUTxLEVELS")
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, blue.mix(0.7).filled()));

        let red = RGBColor(200, 40, 40);
        let mut front: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.pareto)
            .map(|r| (r.bytes_per_event, r.view_p99_us))
            .collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        chart
            .draw_series(LineSeries::new(front.clone(), red.stroke_width(2)))?
            .label("Pareto front: nothing else is both faster and smaller")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], red.stroke_width(2)));
        chart.draw_series(
            front
                .iter()
                .map(|&point| Circle::new(point, 5, red.filled())),
        )?;

        if let Some(best) = rows.iter().find(|r| r.recommended) {
            chart
                .draw_series([Circle::new(
                    (best.bytes_per_event, best.view_p99_us),
                    10,
                    BLACK.stroke_width(2),
                )])?
                .label("recommended for the budget given")
                .legend(|(x, y)| Circle::new((x + 9, y), 6, BLACK.stroke_width(2)));
        }

        // One label per cluster of points close enough for their labels to collide (within
        // about 3% in storage and 12% in p99 of the next), listed from the highest point down
        // and written at it; front and other settings are clustered separately.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| rows[b].view_p99_us.total_cmp(&rows[a].view_p99_us));
        let mut spots: Vec<Spot<'_>> = Vec::new();
        for i in order {
            let row = &rows[i];
            let (x, y) = (row.bytes_per_event, row.view_p99_us);
            let near = |a: f64, b: f64, ratio: f64| (a.ln() - b.ln()).abs() < ratio;
            // Points come highest first, so a cluster grows downwards from its label.
            match spots.iter_mut().find(|spot| {
                spot.pareto == row.pareto && near(spot.x, x, 0.03) && near(spot.y_low, y, 0.12)
            }) {
                Some(spot) => {
                    spot.y_low = y;
                    spot.names.push(&labels[i]);
                }
                None => spots.push(Spot {
                    x,
                    y,
                    y_low: y,
                    pareto: row.pareto,
                    names: vec![&labels[i]],
                }),
            }
        }
        chart.draw_series(spots.iter().map(|spot| {
            let color = if spot.pareto { &red } else { &blue };
            let style = ("sans-serif", 11).into_font().color(color);
            EmptyElement::at((spot.x, spot.y)) + Text::new(spot.names.join(", "), (7, -14), style)
        }))?;

        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
    }
    Ok(out)
}

/// A label on the plot: the settings of a cluster of nearby points, written at the highest.
struct Spot<'a> {
    x: f64,
    /// The highest point's p99, where the label goes.
    y: f64,
    /// The lowest point's p99 so far.
    y_low: f64,
    pareto: bool,
    names: Vec<&'a str>,
}

/// Characters per subtitle line before it wraps.
const SUBTITLE_LINE_CHARS: usize = 140;

/// `text` cut into lines of at most `width` characters at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Tick values for a log axis from `low` to `high`: the 1-2-5 series, or a denser one when
/// the range is too narrow for three of those.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    const SERIES: [&[f64]; 3] = [
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0],
        &[
            1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0,
        ],
    ];
    let mut ticks = Vec::new();
    for mantissas in SERIES {
        ticks.clear();
        let mut decade = 10f64.powf(low.log10().floor());
        while decade <= high {
            ticks.extend(
                mantissas
                    .iter()
                    .map(|m| m * decade)
                    .filter(|t| (low..=high).contains(t)),
            );
            decade *= 10.0;
        }
        if ticks.len() >= 3 {
            break;
        }
    }
    ticks
}

/// A tick's label: no trailing zeros; ten thousand and above in `k`.
fn tick_label(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{}k", tick_label(value / 1000.0))
    } else if value >= 10.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A range around `values` for a log axis: from a fifth below the smallest to a quarter above
/// the largest (positive values only; with none, 0.1 to 10).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, 0.0f64);
    for value in values.filter(|v| v.is_finite() && *v > 0.0) {
        low = low.min(value);
        high = high.max(value);
    }
    if !low.is_finite() {
        return (0.1, 10.0);
    }
    (low / 1.25, high * 1.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitles_wrap_at_spaces() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("averylongword b", 4), ["averylongword", "b"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn ticks_follow_1_2_5_and_densify_on_narrow_ranges() {
        assert_eq!(ticks(0.9, 110.0), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        assert_eq!(ticks(150.0, 600.0), [150.0, 200.0, 300.0, 500.0]);
        assert_eq!(
            ticks(110.0, 130.0),
            [120.0],
            "the densest series, even if short"
        );
        assert_eq!(tick_label(1.5), "1.5");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(500.0), "500");
        assert_eq!(tick_label(20_000.0), "20k");
    }
}
