//! A sweep report's pictures: test accuracy as a heat map (activations down, depths across)
//! and the first/last hidden-layer gradient ratio against depth, measured beside the mean-field
//! prediction. One set per combination of the other cell axes (e.g. per init).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::plot::{self, Categories, RatioGroup, Size};
use crate::runner::sweep::{AxisField, CellReport, SweepReport, group_text};

/// The axes a figure lays out: depth across, `rows` down, one figure per value of the rest.
struct Layout {
    rows: Option<AxisField>,
    groups: Vec<AxisField>,
}

fn layout(r: &SweepReport) -> Option<Layout> {
    if !r.cell_axes.contains(&AxisField::Depth) {
        return None;
    }
    // Axes with one value are constants of the sweep, not a layout dimension.
    let varies = |f: &AxisField| distinct(r.cells.iter().map(|c| value(c, *f))).len() > 1;
    let others: Vec<AxisField> = r
        .cell_axes
        .iter()
        .copied()
        .filter(|f| *f != AxisField::Depth && (varies(f) || *f == AxisField::Activation))
        .collect();
    let rows =
        if others.contains(&AxisField::Activation) { Some(AxisField::Activation) } else { others.first().copied() };
    let groups = others.into_iter().filter(|f| Some(*f) != rows).collect();
    Some(Layout { rows, groups })
}

fn value(c: &CellReport, field: AxisField) -> String {
    c.values.iter().find(|v| v.field == field).map(|v| v.value.clone()).unwrap_or_default()
}

/// Distinct values in first-seen order.
fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// A ratio panel's caption: an activation names itself, other values ("1.5") need their axis.
fn panel_name(rows: Option<AxisField>, value: &str) -> String {
    match rows {
        _ if value.is_empty() => "all".into(),
        Some(AxisField::Activation) | None => value.to_string(),
        Some(f) => format!("{f}={value}"),
    }
}

/// ".init=xavier_normal" for file names ("" for no group).
fn suffix(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let clean: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '=' | '_') { c } else { '-' }).collect();
    format!(".{clean}")
}

/// Writes the figures into `dir` and returns their paths; none when depth is not an axis.
pub fn write_plots(r: &SweepReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let Some(lay) = layout(r) else { return Ok(Vec::new()) };
    let group_of = |c: &CellReport| {
        lay.groups
            .iter()
            .map(|f| crate::runner::sweep::AxisValue { field: *f, value: value(c, *f) })
            .collect::<Vec<_>>()
    };
    let groups = distinct(r.cells.iter().map(|c| group_text(&group_of(c))));
    let mut written = Vec::new();
    for group in groups {
        let cells: Vec<&CellReport> = r.cells.iter().filter(|c| group_text(&group_of(c)) == group).collect();
        let rows = match lay.rows {
            Some(f) => distinct(cells.iter().map(|c| value(c, f))),
            None => vec![String::new()],
        };
        let depths = distinct(cells.iter().map(|c| value(c, AxisField::Depth)));
        let cell = |row: &str, depth: &str| {
            cells.iter().find(|c| lay.rows.is_none_or(|f| value(c, f) == row) && value(c, AxisField::Depth) == depth)
        };
        let title_tail = if group.is_empty() { String::new() } else { format!(", {group}") };
        let budget = r.steps.map_or(String::new(), |s| format!(", {s} steps"));

        let values: Vec<Vec<Option<f64>>> = rows
            .iter()
            .map(|row| depths.iter().map(|d| cell(row, d).and_then(|c| c.test_accuracy).map(|s| s.mean)).collect())
            .collect();
        let path = dir.join(format!("accuracy{}.png", suffix(&group)));
        let row_labels: Vec<String> =
            rows.iter().map(|r| if r.is_empty() { "all".into() } else { r.clone() }).collect();
        let row_title = lay.rows.map_or(String::new(), |f| f.to_string());
        plot::grid(
            &path,
            Size { width: 1200, height: (240 + 48 * rows.len() as u32).max(440) },
            &format!("Mean held-out test accuracy: {}{title_tail}{budget}", r.sweep),
            Categories { title: &row_title, labels: &row_labels },
            Categories { title: "depth (hidden layers)", labels: &depths },
            &values,
            "test accuracy",
        )?;
        written.push(path);

        for (when, pick, with_prediction) in [
            ("init", (|c: &CellReport| c.ratio_at_init_geomean) as fn(&CellReport) -> Option<f64>, true),
            ("end", |c: &CellReport| c.ratio_at_end_geomean, false),
        ] {
            let chart: Vec<RatioGroup> = rows
                .iter()
                .map(|row| {
                    let points = |f: &dyn Fn(&CellReport) -> Option<f64>| -> Vec<(f64, f64)> {
                        depths.iter().filter_map(|d| Some((d.parse::<f64>().ok()?, f(cell(row, d)?)?))).collect()
                    };
                    let predicted = if with_prediction { points(&|c| c.predicted_ratio_geomean) } else { Vec::new() };
                    (panel_name(lay.rows, row), points(&pick), predicted)
                })
                .collect();
            let path = dir.join(format!("gradient-ratio-{when}{}.png", suffix(&group)));
            let title = if with_prediction {
                format!("Gradient ratio first/last hidden layer at init, and mean field: {}{title_tail}", r.sweep)
            } else {
                format!(
                    "Gradient ratio first/last hidden layer at the end of training: {}{title_tail}{budget}",
                    r.sweep
                )
            };
            // A sweep of depth-1 nets only, or one with nothing finished, has no ratio to draw.
            let drawable = |pts: &[(f64, f64)]| pts.iter().any(|&(x, y)| x.is_finite() && y.is_finite() && y > 0.0);
            if chart.iter().any(|(_, m, p)| drawable(m) || drawable(p)) {
                let size = plot::ratio_chart_size(chart.len());
                plot::ratio_chart(&path, size, &title, "hidden layers", "first/last gradient norm", &chart)?;
                written.push(path);
            }
        }
    }
    Ok(written)
}
