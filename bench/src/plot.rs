//! The PNG: one panel per scenario with a client, showing for each daemon's median run how long
//! the client had been without an answer at each probe, around the event.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::report::{fmt_value, ScenarioRuns};
use crate::scenarios::Contender;

/// Debian's fonts-dejavu-core (text goes through ab_glyph: no fontconfig, no system lookup).
pub(crate) const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Loads [`FONT`] as plotters' "sans-serif".
pub(crate) fn load_font() -> Result<()> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT).map_err(|e| {
                format!("{FONT}: {e} (apt-get install fonts-dejavu-core, or bench/install-deps.sh)")
            })?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{FONT} is not a usable font"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn color(c: Contender) -> RGBColor {
    match c {
        Contender::Keepalived => RGBColor(214, 39, 40),
        Contender::Upkeep => RGBColor(31, 119, 180),
        Contender::UpkeepWasm => RGBColor(44, 160, 44),
        Contender::UpkeepListener => RGBColor(148, 103, 189),
    }
}

/// Draws the panels of every scenario that has client traces into `path`.
pub(crate) fn render(path: &Path, results: &[ScenarioRuns]) -> Result<bool> {
    let panels: Vec<&ScenarioRuns> = results
        .iter()
        .filter(|s| {
            s.scenario
                .contenders
                .iter()
                .any(|&c| s.median_run(c).is_some_and(|o| o.trace.is_some()))
        })
        .collect();
    if panels.is_empty() {
        return Ok(false);
    }
    load_font()?;
    let cols = panels.len().min(3);
    let rows = panels.len().div_ceil(cols);
    let (pw, ph) = (620u32, 380u32);
    let root =
        BitMapBackend::new(path, (pw * cols as u32, ph * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(40);
    let title = if cols == 1 {
        ("The client's view (median run per daemon)", 16)
    } else {
        (
            "The client's view: ms since its last answered probe, around the event (median run per daemon)",
            20,
        )
    };
    head.draw(&Text::new(
        title.0,
        (12, 10),
        ("sans-serif", title.1).into_font().color(&BLACK),
    ))?;
    let areas = body.split_evenly((rows, cols));
    for (area, s) in areas.iter().zip(panels) {
        draw_panel(area, s).with_context(|| format!("panel {}", s.scenario.name))?;
    }
    root.present()
        .with_context(|| format!("write {}", path.display()))?;
    Ok(true)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    s: &ScenarioRuns,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let metric = s.scenario.trace_metric();
    let (what, unit) = metric.label.split_once(", ").unwrap_or((metric.label, ""));
    let mut series = Vec::new();
    for &c in &s.scenario.contenders {
        let Some(run) = s.median_run(c) else { continue };
        let Some(trace) = &run.trace else { continue };
        let pts: Vec<(f64, f64)> = trace
            .silence()
            .into_iter()
            .map(|(t, v)| (t, v * 1000.0))
            .collect();
        let value = run.get(metric.key).unwrap_or(0.0);
        let label = format!(
            "{}: {what} {} {unit}",
            s.scenario.label(c),
            fmt_value(metric, value)
        );
        series.push((c, label, pts));
    }
    // From a little before the event to a little after the last silence (at least 0.5 s).
    let last_silent = series
        .iter()
        .flat_map(|(_, _, p)| p.iter())
        .filter(|&&(t, v)| v > 0.0 && t >= 0.0)
        .map(|&(t, _)| t)
        .fold(0.0f64, f64::max);
    let x0 = -0.2;
    let x1 = (last_silent + 0.3).max(0.5);
    let y_max = series
        .iter()
        .flat_map(|(_, _, p)| p.iter())
        .filter(|&&(t, _)| (x0..=x1).contains(&t))
        .map(|&(_, v)| v)
        .fold(0.0f64, f64::max);
    let y1 = (y_max * 1.15).max(10.0);

    let mut chart = ChartBuilder::on(area)
        .caption(s.scenario.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, 0.0..y1)?;
    chart
        .configure_mesh()
        .x_desc("s after the event")
        .y_desc("ms without an answer")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 13))
        .draw()?;
    for (c, label, pts) in series {
        let col = color(c);
        let pts: Vec<(f64, f64)> = pts
            .into_iter()
            .filter(|&(t, _)| (x0..=x1).contains(&t))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}
