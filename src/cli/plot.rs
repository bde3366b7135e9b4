//! Plots of gradlab's measurements, written as PNG or SVG files.
//!
//! Pure functions over plain data (no gRPC or store types), so the module stands alone: the CLI
//! fetches the numbers and hands them over. Every function validates its input first (nothing is
//! written when there is nothing to plot), picks the image format from the output path's extension
//! (`.png` or `.svg`), and never panics: ranges are guarded against being empty or non-finite, and
//! any panic inside the plotting library is turned into an error.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`assets/fonts/DejaVuSans.ttf`, license in
//! `assets/fonts/LICENSE-DejaVu.txt`), so plots render on machines with no system fonts. SVG files
//! name the generic `sans-serif` family and leave the font to the viewer.

use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail, ensure};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The family every text element uses; the embedded DejaVu Sans is registered under this name.
const FONT: &str = "sans-serif";
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Heat-map columns and line-chart points beyond this many are merged (see [`heatmap`], [`lines`]).
const MAX_HEATMAP_COLUMNS: usize = 600;
const MAX_LINE_BUCKETS: usize = 1000;

/// Colour of heat-map cells whose value is exactly zero (or negative): no logarithm exists.
const ZERO_COLOUR: RGBColor = RGBColor(200, 200, 200);
/// Colour of heat-map cells whose value is NaN or infinite.
const NON_FINITE_COLOUR: RGBColor = RGBColor(230, 0, 50);
/// Colour of grid cells with no value.
const MISSING_COLOUR: RGBColor = RGBColor(235, 235, 235);
const TEXT_COLOUR: RGBColor = RGBColor(30, 30, 30);
const GRID_LINE: RGBColor = RGBColor(225, 225, 225);

/// Tableau 10: distinguishable colours for a few series or groups.
const CATEGORICAL: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Viridis, sampled at nine evenly spaced points (dark purple -> yellow).
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (40, 174, 128),
    (94, 201, 98),
    (173, 220, 48),
    (253, 231, 37),
];

/// The file format of a plot, chosen by the output path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// `.png` or `.svg` (any case); anything else is an error naming the path.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => bail!(
                "cannot tell which image format to write to {}: the name must end in .png or .svg",
                path.display()
            ),
        }
    }
}

/// One group of [`ratio_chart`]: its name, the measured `(x, y)` points and the predicted curve.
pub type RatioGroup = (String, Vec<(f64, f64)>, Vec<(f64, f64)>);

/// Runs of `(x, y)` points, each drawn as one unbroken line.
type Runs = Vec<Vec<(f64, f64)>>;

/// Image size in pixels (for SVG, in user units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Default for Size {
    fn default() -> Self {
        Self { width: 1200, height: 700 }
    }
}

impl Size {
    /// The smallest image the layouts fit in.
    pub const MIN: Size = Size { width: 400, height: 300 };
    /// The largest image (per side) we agree to allocate.
    pub const MAX_SIDE: u32 = 10_000;

    fn check(self) -> Result<()> {
        ensure!(
            (Self::MIN.width..=Self::MAX_SIDE).contains(&self.width)
                && (Self::MIN.height..=Self::MAX_SIDE).contains(&self.height),
            "plot size {}x{} is out of range: width must be {}..={} and height {}..={} pixels",
            self.width,
            self.height,
            Self::MIN.width,
            Self::MAX_SIDE,
            Self::MIN.height,
            Self::MAX_SIDE
        );
        Ok(())
    }
}

/// Heat map of log10 gradient norm: one row per layer, **layer 0 (the first hidden layer) at the
/// top**, steps across; a colour bar labelled in log10 units. `layers[l] = (name, values)`, with
/// `values[i]` the gradient norm of layer `l` at `steps[i]`; `steps` must be strictly increasing.
/// Rows are labelled by their names (every one when they fit, else evenly spaced ones), the last
/// row always: it is usually the output layer, which must not pass for a hidden one.
///
/// Cells whose norm is exactly zero are drawn light grey, NaN or infinite ones red; a key under
/// the map says so. More than 600 steps are merged into 600 columns, each showing the mean log10
/// norm of its steps (red if any of them is NaN/inf, grey if all are zero); the key says how many
/// steps a column holds. Errors if there are no steps or no layers, or the lengths disagree.
pub fn heatmap(path: &Path, size: Size, title: &str, steps: &[u64], layers: &[(String, Vec<f64>)]) -> Result<()> {
    ensure!(!steps.is_empty(), "nothing to plot: no steps");
    ensure!(!layers.is_empty(), "nothing to plot: no layers");
    check_steps(steps)?;
    for (name, row) in layers {
        ensure!(
            row.len() == steps.len(),
            "layer {name} has {} values but there are {} steps: every layer needs one value per step",
            row.len(),
            steps.len()
        );
    }
    let figure = Heatmap::new(title, steps, layers);
    render(path, size, &figure)
}

/// Per-layer gradient-norm curves against step, on a log y axis. `series[k] = (name, values)` with
/// `values[i]` at `steps[i]` (`steps` strictly increasing). Zero, negative, NaN and infinite values
/// have no place on a log axis: they are skipped and the curve is broken there.
///
/// Up to 10 series get distinct colours and a legend entry each. More are coloured along a gradient
/// from the first series (dark purple) to the last (yellow-green), and the legend names the first,
/// the last and a few between. Long series are thinned to the minimum and maximum of each of 1000
/// buckets, which keeps spikes. Errors if there is nothing to plot (no steps, no series, or no
/// positive finite value) or the lengths disagree.
pub fn lines(path: &Path, size: Size, title: &str, steps: &[u64], series: &[(String, Vec<f64>)]) -> Result<()> {
    ensure!(!steps.is_empty(), "nothing to plot: no steps");
    ensure!(!series.is_empty(), "nothing to plot: no series");
    check_steps(steps)?;
    for (name, values) in series {
        ensure!(
            values.len() == steps.len(),
            "series {name:?} has {} values but there are {} steps: every series needs one value per step",
            values.len(),
            steps.len()
        );
    }
    let figure = Lines::new(title, steps, series)?;
    render(path, size, &figure)
}

/// Loss (top panel) and accuracy (bottom panel) against step: training values per step as thin
/// lines, test values at the evaluation steps as markers joined by a line. Tuples are `(step,
/// loss, accuracy)`. The loss axis turns logarithmic when the positive losses span more than two
/// decades (the axis label then says "log scale"); accuracy is shown on 0..1 when it lies there.
/// NaN/inf values are skipped. Errors if both `train` and `test` are empty.
pub fn loss(path: &Path, size: Size, title: &str, train: &[(u64, f64, f64)], test: &[(u64, f64, f64)]) -> Result<()> {
    ensure!(!train.is_empty() || !test.is_empty(), "nothing to plot: no training or test records");
    let figure = LossFigure::new(title, train, test);
    render(path, size, &figure)
}

/// One axis of a [`grid`]: what its categories are (the axis title) and each one's label.
#[derive(Clone, Copy, Debug)]
pub struct Categories<'a> {
    pub title: &'a str,
    pub labels: &'a [String],
}

/// A heat map of a matrix: `rows.labels[r]` labels row `r` (drawn top to bottom), `cols.labels[c]`
/// column `c` (left to right), each axis titled by its `title`; `values[r][c]` is the value,
/// printed in its cell when the cell is large enough. The colour bar on the right is labelled
/// `value_label` and spans the finite values (linear). Missing cells (`None`) are drawn pale grey
/// and marked "-", NaN/inf ones red. Errors if there are no rows or columns or the shape of
/// `values` does not match the labels.
pub fn grid(
    path: &Path,
    size: Size,
    title: &str,
    rows: Categories,
    cols: Categories,
    values: &[Vec<Option<f64>>],
    value_label: &str,
) -> Result<()> {
    ensure!(!rows.labels.is_empty(), "nothing to plot: no rows");
    ensure!(!cols.labels.is_empty(), "nothing to plot: no columns");
    ensure!(
        values.len() == rows.labels.len(),
        "the grid has {} rows of values but {} row labels",
        values.len(),
        rows.labels.len()
    );
    for (r, row) in values.iter().enumerate() {
        ensure!(
            row.len() == cols.labels.len(),
            "row {r} ({:?}) has {} values but there are {} column labels",
            rows.labels[r],
            row.len(),
            cols.labels.len()
        );
    }
    let figure = Grid { title, rows, cols, values, value_label };
    render(path, size, &figure)
}

/// Small multiples on a log y axis, one panel per named group: `groups[g] = (name, measured,
/// predicted)`, both lists of `(x, y)`. Panels share their x and y ranges so that they compare at
/// a glance, and no two groups are drawn over each other however close their values (nine
/// activations whose ratios all sit near 1 cannot be told apart on one chart). In each panel the
/// measured points are dots joined by a thin line, the predicted curve a thicker line of another
/// colour, and y = 1 a dashed line; the key above the panels names only what some panel draws.
/// The y axis is logarithmic (its label gets "(log scale)" unless it already mentions a log) with
/// a labelled tick at or beyond each end of the data; points whose x is not finite or whose y is
/// not finite and positive are skipped. Errors if no group has a plottable point.
/// [`ratio_chart_size`] gives a size that leaves each panel room.
pub fn ratio_chart(
    path: &Path,
    size: Size,
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[RatioGroup],
) -> Result<()> {
    ensure!(!groups.is_empty(), "nothing to plot: no groups");
    let figure = RatioChart::new(title, x_label, y_label, groups)?;
    render(path, size, &figure)
}

/// The default width, and a height that gives each row of [`ratio_chart`]'s panels about 230
/// pixels (never less than the default height).
pub fn ratio_chart_size(groups: usize) -> Size {
    let (_, rows) = panel_grid(groups);
    let default = Size::default();
    Size { width: default.width, height: (100 + 230 * rows as u32).clamp(default.height, Size::MAX_SIDE) }
}

/// Columns and rows of a grid of `n` panels: as square as it gets, a single row up to three.
fn panel_grid(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let cols = if n <= 3 { n } else { (1..=n).find(|c| c * c >= n).unwrap_or(n) };
    (cols, n.div_ceil(cols))
}

// ---------------------------------------------------------------------------------------------
// Rendering machinery

/// A validated, prepared plot that can draw itself on any backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok());
    ensure!(ok, "the embedded DejaVu Sans font could not be loaded");
    Ok(())
}

fn render(path: &Path, size: Size, figure: &impl Figure) -> Result<()> {
    let format = ImageFormat::from_path(path)?;
    size.check()?;
    register_fonts()?;
    let dims = (size.width, size.height);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match format {
        ImageFormat::Png => draw_on(BitMapBackend::new(path, dims).into_drawing_area(), figure),
        ImageFormat::Svg => draw_on(SVGBackend::new(path, dims).into_drawing_area(), figure),
    }));
    let result = match outcome {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            Err(anyhow!("the plotting library failed: {message}"))
        }
    };
    if result.is_err() {
        // The backend writes whatever it has when dropped; do not leave a half-drawn plot behind.
        let _ = std::fs::remove_file(path);
    }
    result.with_context(|| format!("could not write the plot {}", path.display()))
}

fn draw_on<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &impl Figure) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    figure.draw(&root)?;
    root.present()?;
    Ok(())
}

/// Font and spacing scale: 1 at the default 1200x700, smaller or larger with the image.
fn scale_of<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> f64 {
    let (w, h) = area.dim_in_pixel();
    (f64::from(w) / 1200.0).min(f64::from(h) / 700.0).clamp(0.7, 3.0)
}

fn px(value: f64, scale: f64) -> i32 {
    (value * scale).round() as i32
}

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&TEXT_COLOUR)
}

/// The title on top; returns the area under it.
fn titled<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, scale: f64) -> Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let area = root.margin(px(8.0, scale), 0, 0, 0);
    Ok(area.titled(title, font(24.0 * scale))?)
}

fn text_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, style: &TextStyle) -> i32
where
    DB::ErrorType: 'static,
{
    area.estimate_text_size(text, style).map(|(w, _)| w as i32).unwrap_or(text.len() as i32 * 8)
}

fn check_steps(steps: &[u64]) -> Result<()> {
    if let Some(i) = steps.windows(2).position(|w| w[0] >= w[1]) {
        bail!("steps must be strictly increasing, but step {} is followed by {}", steps[i], steps[i + 1]);
    }
    Ok(())
}

/// `log10(v)` for finite positive `v`.
fn log10_pos(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then(|| v.log10())
}

fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A non-empty axis range around `lo..hi`: padded by `pad` of its width, and widened to at least
/// `2 * min_half` (around its centre) when the data span nothing.
fn axis_range((lo, hi): (f64, f64), pad: f64, min_half: f64) -> Range<f64> {
    let (lo, hi) = if hi - lo < 1e-9 * hi.abs().max(lo.abs()).max(1.0) {
        let c = 0.5 * (lo + hi);
        let half = min_half.max(c.abs() * 0.05);
        (c - half, c + half)
    } else {
        (lo, hi)
    };
    let margin = (hi - lo) * pad;
    (lo - margin)..(hi + margin)
}

/// x range for steps: the data span, or +-1 around a single step.
fn step_range(lo: f64, hi: f64) -> Range<f64> {
    axis_range((lo, hi), 0.02, 1.0)
}

/// How many x tick labels fit in `width` pixels.
fn x_ticks(width: u32) -> usize {
    (width as usize / 110).clamp(3, 10)
}

/// A tick label for an integer axis (steps, layers): the integer, or nothing between integers.
fn integer_label(v: f64) -> String {
    let r = v.round();
    if (v - r).abs() < 1e-6 { format!("{}", r as i64) } else { String::new() }
}

/// A compact decimal: three significant digits, scientific outside 1e-3..1e4.
fn compact(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 5) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    }
}

/// A log10 axis over the data span `lo..hi` (in log10 units) with at most `max_labels` ticks.
///
/// Ticks fall every `k` decades, `k` the first of 1, 2, 3, 5, 10, 20, ... that fits, and the range
/// is widened outward to the ticks next to the data, so a labelled tick always sits at or beyond
/// each end (plotters' own choice can leave the top decade, e.g. everything above 1, unlabelled).
/// When the range holds at most two decades, 2x and 5x ticks are added so that there is more
/// than one or two labels to read values by.
fn log_axis((lo, hi): (f64, f64), max_labels: usize) -> (Range<f64>, Vec<f64>) {
    // A little room so that points on a decade are not drawn on the frame.
    let pad = ((hi - lo) * 0.02).max(0.02);
    let (lo, hi) = (lo - pad, hi + pad);
    let max_labels = max_labels.max(2);
    let spans = |k: f64| ((lo / k).floor() as i64, (hi / k).ceil() as i64);
    let k = [1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        .into_iter()
        .find(|&k| {
            let (a, b) = spans(k);
            (b - a + 1) as usize <= max_labels
        })
        .unwrap_or(1000.0);
    let (a, b) = spans(k);
    let mut ticks: Vec<f64> = (a..=b).map(|i| i as f64 * k).collect();
    if k == 1.0 && b - a <= 2 {
        let between = (a..b).flat_map(|d| [2f64, 5.0].map(|m| d as f64 + m.log10()));
        ticks.extend(between);
        ticks.sort_by(f64::total_cmp);
    }
    (a as f64 * k..b as f64 * k, ticks)
}

/// How many tick labels fit along `pixels` of axis at font scale `scale`.
fn labels_along(pixels: u32, scale: f64) -> usize {
    (f64::from(pixels) / (30.0 * scale)) as usize
}

/// Tick label of a log10 axis value `e`: the number `10^e`.
fn pow10_label(e: f64) -> String {
    let r = e.round();
    if (e - r).abs() < 1e-6 {
        let k = r as i32;
        if (-3..=3).contains(&k) { compact(10f64.powi(k)) } else { format!("1e{k}") }
    } else {
        compact(10f64.powf(e))
    }
}

fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Where `v` falls in `range`, 0..1.
fn fraction(v: f64, range: &Range<f64>) -> f64 {
    ((v - range.start) / (range.end - range.start)).clamp(0.0, 1.0)
}

fn relative_luminance(c: RGBColor) -> f64 {
    (0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2)) / 255.0
}

/// Vertical colour bar in `area`: `range` mapped through viridis, labelled on its right.
fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    range: Range<f64>,
    label: &str,
    formatter: &dyn Fn(&f64) -> String,
    scale: f64,
    bottom: i32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin_top(px(10.0, scale))
        .margin_bottom(bottom)
        .margin_left(px(10.0, scale))
        .margin_right(px(5.0, scale))
        .set_label_area_size(LabelAreaPosition::Right, px(80.0, scale))
        .build_cartesian_2d(0.0..1.0, range.clone())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .x_labels(0)
        .y_labels(8)
        .y_label_formatter(formatter)
        .y_desc(label)
        .label_style(font(14.0 * scale))
        .axis_desc_style(font(16.0 * scale))
        .draw()?;
    const BANDS: usize = 200;
    let step = (range.end - range.start) / BANDS as f64;
    chart.draw_series((0..BANDS).map(|i| {
        let y0 = range.start + step * i as f64;
        let colour = viridis((i as f64 + 0.5) / BANDS as f64);
        Rectangle::new([(0.0, y0), (1.0, y0 + step)], colour.filled())
    }))?;
    chart.draw_series(std::iter::once(Rectangle::new(
        [(0.0, range.start), (1.0, range.end)],
        TEXT_COLOUR.stroke_width(1),
    )))?;
    Ok(())
}

/// One line of a legend: a colour sample (line, marker, or filled box) and a label.
struct LegendEntry {
    label: String,
    colour: RGBColor,
    kind: Swatch,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Swatch {
    Line,
    LineAndMarker,
    Box,
    /// A dashed line (a reference level).
    Dashed,
    /// Just text (a heading or note).
    None,
}

/// A legend stacked top-down in `area`, starting `top` pixels down.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    top: i32,
    scale: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style = font(14.0 * scale).pos(Pos::new(HPos::Left, VPos::Center));
    let row = px(22.0, scale);
    let sample = px(28.0, scale);
    let x0 = px(8.0, scale);
    for (i, entry) in entries.iter().enumerate() {
        let y = top + row * i as i32 + row / 2;
        let text_x = match entry.kind {
            Swatch::None => x0,
            _ => x0 + sample + px(8.0, scale),
        };
        match entry.kind {
            Swatch::Line => {
                area.draw(&PathElement::new(vec![(x0, y), (x0 + sample, y)], entry.colour.stroke_width(3)))?;
            }
            Swatch::LineAndMarker => {
                area.draw(&PathElement::new(vec![(x0, y), (x0 + sample, y)], entry.colour.stroke_width(2)))?;
                area.draw(&Circle::new((x0 + sample / 2, y), px(5.0, scale), entry.colour.filled()))?;
            }
            Swatch::Dashed => {
                let path = vec![(x0, y), (x0 + sample, y)];
                let style = entry.colour.stroke_width(1);
                area.draw(&plotters::element::DashedPathElement::new(path, px(6.0, scale), px(5.0, scale), style))?;
            }
            Swatch::Box => {
                let h = px(7.0, scale);
                area.draw(&Rectangle::new([(x0, y - h), (x0 + sample, y + h)], entry.colour.filled()))?;
                area.draw(&Rectangle::new([(x0, y - h), (x0 + sample, y + h)], TEXT_COLOUR.stroke_width(1)))?;
            }
            Swatch::None => {}
        }
        area.draw(&Text::new(entry.label.clone(), (text_x, y), style.clone()))?;
    }
    Ok(())
}

/// Width for a legend panel holding `labels`, at most a third of the area.
fn legend_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, labels: &[&str], scale: f64) -> i32
where
    DB::ErrorType: 'static,
{
    let style = font(14.0 * scale);
    let widest = labels.iter().map(|l| text_width(area, l, &style)).max().unwrap_or(0);
    let (w, _) = area.dim_in_pixel();
    (widest + px(60.0, scale)).clamp(px(110.0, scale), w as i32 / 3)
}

/// Cuts a label to `max` characters.
fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Points `(x, y)` with `None` where a curve must break, thinned to the first/min/max/last point of
/// each of `buckets` buckets when longer than `2 * buckets`. A bucket with no point breaks the curve.
fn thin(points: Vec<(f64, Option<f64>)>, buckets: usize) -> Vec<(f64, Option<f64>)> {
    if points.len() <= 2 * buckets || buckets == 0 {
        return points;
    }
    let per = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(4 * buckets);
    for chunk in points.chunks(per) {
        let valid: Vec<(usize, f64, f64)> =
            chunk.iter().enumerate().filter_map(|(i, &(x, y))| y.map(|y| (i, x, y))).collect();
        let Some(&first) = valid.first() else {
            out.push((chunk[0].0, None));
            continue;
        };
        let &last = valid.last().unwrap_or(&first);
        let lo = *valid.iter().min_by(|a, b| a.2.total_cmp(&b.2)).unwrap_or(&first);
        let hi = *valid.iter().max_by(|a, b| a.2.total_cmp(&b.2)).unwrap_or(&first);
        let mut picked = [first, lo, hi, last];
        picked.sort_by_key(|p| p.0);
        let mut previous = None;
        for (i, x, y) in picked {
            if previous != Some(i) {
                out.push((x, Some(y)));
                previous = Some(i);
            }
        }
        // A gap inside the bucket (an invalid value) still breaks the line.
        if valid.len() < chunk.len() {
            out.push((chunk[chunk.len() - 1].0, None));
        }
    }
    out
}

/// Splits points at `None` into runs that can be drawn as lines.
fn segments(points: &[(f64, Option<f64>)]) -> Runs {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for &(x, y) in points {
        match y {
            Some(y) => current.push((x, y)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Draws runs as lines, and single isolated points as dots so they stay visible.
fn draw_runs<DB, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    runs: &[Vec<(f64, f64)>],
    colour: RGBColor,
    width: u32,
    scale: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for run in runs {
        if run.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(run[0], px(3.0, scale).max(2), colour.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(width)))?;
        }
    }
    Ok(())
}

/// The title on top, a legend column on the right sized to its labels, the plot area left of it.
fn titled_with_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[LegendEntry],
    s: f64,
) -> Result<(DrawingArea<DB, Shift>, DrawingArea<DB, Shift>)>
where
    DB::ErrorType: 'static,
{
    let area = titled(root, title, s)?;
    let (w, _) = area.dim_in_pixel();
    let labels: Vec<&str> = legend.iter().map(|e| e.label.as_str()).collect();
    Ok(area.split_horizontally(w as i32 - legend_width(&area, &labels, s)))
}

/// What a chart with a log10 y axis writes on its axes.
struct LogAxes<'a> {
    x_desc: &'a str,
    y_desc: &'a str,
    x_label: &'a dyn Fn(f64) -> String,
}

/// A linear f64 axis with ticks we chose. (plotters' own `with_key_points` over f64 has no value
/// formatter in 0.3.7, so a chart on it cannot draw its mesh.)
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Self { inner: range.into(), ticks }
    }
}

impl Ranged for Ticked {
    // The default formatter is never used: every chart on this axis sets its own.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The coordinates of a chart with a log10 y axis whose ticks [`log_axis`] chose.
type LogYCoord = Cartesian2d<RangedCoordf64, Ticked>;

/// A chart whose y values are log10 magnitudes (data spanning `y_span`), labelled as powers of
/// ten, with a light grid: the frame of the per-layer curves.
fn log_y_chart<'a, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
    x_range: Range<f64>,
    y_span: (f64, f64),
    axes: &LogAxes,
    s: f64,
) -> Result<ChartContext<'a, DB, LogYCoord>>
where
    DB::ErrorType: 'static,
{
    let x_label_area = px(50.0, s);
    let (y_range, y_ticks) =
        log_axis(y_span, labels_along((plot.dim_in_pixel().1 as i32 - x_label_area).max(0) as u32, s).min(12));
    let mut chart = ChartBuilder::on(plot)
        .margin(px(10.0, s))
        .margin_right(px(20.0, s))
        .x_label_area_size(x_label_area)
        .y_label_area_size(px(90.0, s))
        .build_cartesian_2d(x_range, Ticked::new(y_range, y_ticks))?;
    chart
        .configure_mesh()
        .x_labels(x_ticks(plot.dim_in_pixel().0))
        .max_light_lines(0)
        .bold_line_style(GRID_LINE)
        .x_label_formatter(&|v| (axes.x_label)(*v))
        .y_label_formatter(&|v| pow10_label(*v))
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .label_style(font(14.0 * s))
        .axis_desc_style(font(16.0 * s))
        .draw()?;
    Ok(chart)
}

/// Draws a centred note (e.g. "no finite values") in a chart's plotting area.
fn draw_note<DB, X, Y>(chart: &mut ChartContext<DB, Cartesian2d<X, Y>>, note: &str, scale: f64) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    let style = font(18.0 * scale).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(note.to_string(), (w as i32 / 2, h as i32 / 2), style))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Heat map of gradient norms

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    /// log10 of the value.
    Log(f64),
    Zero,
    NonFinite,
}

struct Heatmap<'a> {
    title: &'a str,
    /// Row names, top to bottom.
    names: Vec<String>,
    /// Left and right x edge of every column, in steps.
    columns: Vec<(f64, f64)>,
    /// `cells[l][c]`: layer `l`, column `c`.
    cells: Vec<Vec<Cell>>,
    /// Steps per column (1 unless merged).
    per_column: usize,
}

impl<'a> Heatmap<'a> {
    fn new(title: &'a str, steps: &[u64], layers: &[(String, Vec<f64>)]) -> Self {
        let x: Vec<f64> = steps.iter().map(|&s| s as f64).collect();
        let n = x.len();
        // Each step owns the span halfway to its neighbours.
        let edge = |i: usize| -> (f64, f64) {
            let left = if i > 0 {
                0.5 * (x[i - 1] + x[i])
            } else if n > 1 {
                x[0] - 0.5 * (x[1] - x[0])
            } else {
                x[0] - 0.5
            };
            let right = if i + 1 < n {
                0.5 * (x[i] + x[i + 1])
            } else if n > 1 {
                x[n - 1] + 0.5 * (x[n - 1] - x[n - 2])
            } else {
                x[0] + 0.5
            };
            (left, right)
        };
        let per_column = n.div_ceil(MAX_HEATMAP_COLUMNS);
        let chunks: Vec<Range<usize>> = (0..n).step_by(per_column).map(|s| s..(s + per_column).min(n)).collect();
        let columns = chunks.iter().map(|r| (edge(r.start).0, edge(r.end - 1).1)).collect();
        let cells = layers
            .iter()
            .map(|(_, row)| {
                chunks
                    .iter()
                    .map(|r| {
                        let values = &row[r.clone()];
                        if values.iter().any(|v| !v.is_finite()) {
                            return Cell::NonFinite;
                        }
                        let logs: Vec<f64> = values.iter().filter_map(|&v| log10_pos(v)).collect();
                        if logs.is_empty() {
                            Cell::Zero
                        } else {
                            Cell::Log(logs.iter().sum::<f64>() / logs.len() as f64)
                        }
                    })
                    .collect()
            })
            .collect();
        let names = layers.iter().map(|(name, _)| shorten(name, 10)).collect();
        Self { title, names, columns, cells, per_column }
    }
}

/// Which of `n` rows get a label when at most about `max` fit: all of them, or every k-th from
/// the first plus the last, leaving out one that would crowd the last.
fn labelled_rows(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let k = (n - 1).div_ceil(max.max(2) - 1);
    let last = n - 1;
    let mut rows: Vec<usize> = (0..last).step_by(k).filter(|&r| 2 * (last - r) >= k).collect();
    rows.push(last);
    rows
}

impl Figure for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = scale_of(root);
        let area = titled(root, self.title, s)?;
        let (w, h) = area.dim_in_pixel();
        let (main, foot) = area.split_vertically(h as i32 - px(34.0, s));
        let (plot, bar) = main.split_horizontally(w as i32 - px(150.0, s));

        let n_layers = self.cells.len();
        let logs = self.cells.iter().flatten().filter_map(|c| match c {
            Cell::Log(v) => Some(*v),
            _ => None,
        });
        let data_range = min_max(logs);
        let c_range = axis_range(data_range.unwrap_or((-1.0, 1.0)), 0.0, 0.5);

        let x_range = self.columns[0].0..self.columns[self.columns.len() - 1].1;
        // Layer l sits at y = -l, so layer 0 is on top and ticks fall on round layer numbers.
        let y_range = (0.5 - n_layers as f64)..0.5;
        let x_label_area = px(50.0, s);
        // Row labels about 20 pixels apart at the least.
        let fit = ((plot.dim_in_pixel().1 as i32 - x_label_area) as f64 / (20.0 * s)).max(2.0) as usize;
        let y_ticks = labelled_rows(n_layers, fit).into_iter().map(|l| -(l as f64)).collect();
        let mut chart = ChartBuilder::on(&plot)
            .margin(px(10.0, s))
            .margin_right(px(20.0, s))
            .x_label_area_size(x_label_area)
            .y_label_area_size(px(80.0, s))
            .build_cartesian_2d(x_range, Ticked::new(y_range, y_ticks))?;
        let layer_label = |v: &f64| {
            let l = (-v).round();
            if l < 0.0 { String::new() } else { self.names.get(l as usize).cloned().unwrap_or_default() }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(x_ticks(plot.dim_in_pixel().0))
            .x_label_formatter(&|v| integer_label(*v))
            .y_label_formatter(&layer_label)
            .x_desc("step")
            .y_desc("layer (0 = first hidden, at top)")
            .label_style(font(14.0 * s))
            .axis_desc_style(font(16.0 * s))
            .draw()?;
        chart.draw_series(self.cells.iter().enumerate().flat_map(|(l, row)| {
            let y = -(l as f64);
            let c_range = c_range.clone();
            row.iter().zip(&self.columns).map(move |(cell, &(x0, x1))| {
                let colour = match *cell {
                    Cell::Log(v) => viridis(fraction(v, &c_range)),
                    Cell::Zero => ZERO_COLOUR,
                    Cell::NonFinite => NON_FINITE_COLOUR,
                };
                Rectangle::new([(x0, y - 0.5), (x1, y + 0.5)], colour.filled())
            })
        }))?;

        draw_colour_bar(&bar, c_range, "log10 ||dL/dW||", &|v| compact(*v), s, x_label_area + px(10.0, s))?;

        let mut key = vec![
            LegendEntry { label: "||dL/dW|| = 0 (no log)".into(), colour: ZERO_COLOUR, kind: Swatch::Box },
            LegendEntry { label: "NaN or infinite".into(), colour: NON_FINITE_COLOUR, kind: Swatch::Box },
        ];
        if data_range.is_none() {
            key.push(LegendEntry {
                label: "no finite, positive norm to colour".into(),
                colour: TEXT_COLOUR,
                kind: Swatch::None,
            });
        }
        if self.per_column > 1 {
            key.push(LegendEntry {
                label: format!("each column: mean log10 over {} steps", self.per_column),
                colour: TEXT_COLOUR,
                kind: Swatch::None,
            });
        }
        draw_key_row(&foot, &key, px(80.0, s) + px(10.0, s), s)
    }
}

/// Legend entries side by side in one row, starting at `left`.
fn draw_key_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    left: i32,
    scale: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style = font(14.0 * scale);
    let (area_width, _) = area.dim_in_pixel();
    let mut x = left;
    for entry in entries {
        if x >= area_width as i32 - px(40.0, scale) {
            break; // No room left in the row: the rest would be clipped anyway.
        }
        let label_width = text_width(area, &entry.label, &style);
        let width = label_width + px(if entry.kind == Swatch::None { 30.0 } else { 75.0 }, scale);
        let cell = area.margin(0, 0, x, 0);
        draw_legend(&cell, std::slice::from_ref(entry), 0, scale)?;
        x += width;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Per-layer curves

struct Lines<'a> {
    title: &'a str,
    x_range: Range<f64>,
    /// Smallest and largest log10 value.
    y_span: (f64, f64),
    /// Per series: colour and runs of `(step, log10 value)`.
    curves: Vec<(RGBColor, Runs)>,
    legend: Vec<LegendEntry>,
}

impl<'a> Lines<'a> {
    fn new(title: &'a str, steps: &[u64], series: &[(String, Vec<f64>)]) -> Result<Self> {
        let x: Vec<f64> = steps.iter().map(|&s| s as f64).collect();
        let logs = series.iter().flat_map(|(_, v)| v.iter().filter_map(|&v| log10_pos(v)));
        let Some(y_span) = min_max(logs) else {
            bail!("nothing to plot: no series has a finite, positive value for a log axis");
        };
        let n = series.len();
        let gradient = n > CATEGORICAL.len();
        let colour_of = |k: usize| {
            if gradient { viridis(0.85 * k as f64 / (n - 1) as f64) } else { CATEGORICAL[k] }
        };
        let curves = series
            .iter()
            .enumerate()
            .map(|(k, (_, values))| {
                let points = x.iter().zip(values).map(|(&x, &v)| (x, log10_pos(v))).collect();
                (colour_of(k), segments(&thin(points, MAX_LINE_BUCKETS)))
            })
            .collect();
        let shown: Vec<usize> = if gradient {
            // First, last, and a few evenly spaced between.
            let mut picks: Vec<usize> = (0..6).map(|j| (j * (n - 1) + 2) / 5).map(|k| k.min(n - 1)).collect();
            picks.dedup();
            picks
        } else {
            (0..n).collect()
        };
        let mut legend = Vec::new();
        if gradient {
            legend.push(LegendEntry {
                label: format!("{n} series, coloured from"),
                colour: TEXT_COLOUR,
                kind: Swatch::None,
            });
            legend.push(LegendEntry {
                label: "first (dark) to last (light):".into(),
                colour: TEXT_COLOUR,
                kind: Swatch::None,
            });
        }
        legend.extend(shown.into_iter().map(|k| LegendEntry {
            label: shorten(&series[k].0, 28),
            colour: colour_of(k),
            kind: Swatch::Line,
        }));
        Ok(Self { title, x_range: step_range(x[0], x[x.len() - 1]), y_span, curves, legend })
    }
}

impl Figure for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = scale_of(root);
        let (plot, legend) = titled_with_legend(root, self.title, &self.legend, s)?;
        let axes = LogAxes { x_desc: "step", y_desc: "gradient norm ||dL/dW|| (log scale)", x_label: &integer_label };
        let mut chart = log_y_chart(&plot, self.x_range.clone(), self.y_span, &axes, s)?;
        for (colour, runs) in &self.curves {
            draw_runs(&mut chart, runs, *colour, 2, s)?;
        }
        draw_legend(&legend, &self.legend, px(20.0, s), s)
    }
}

// ---------------------------------------------------------------------------------------------
// Loss and accuracy

/// One panel of the loss figure: its axis and the train and test curves.
struct Panel {
    y_range: Range<f64>,
    y_desc: String,
    log: bool,
    train: Runs,
    test: Runs,
    empty: bool,
}

struct LossFigure<'a> {
    title: &'a str,
    x_range: Range<f64>,
    loss: Panel,
    accuracy: Panel,
    has_train: bool,
    has_test: bool,
}

const TRAIN_COLOUR: RGBColor = CATEGORICAL[0];
const TEST_COLOUR: RGBColor = CATEGORICAL[1];

impl<'a> LossFigure<'a> {
    fn new(title: &'a str, train: &[(u64, f64, f64)], test: &[(u64, f64, f64)]) -> Self {
        let steps = train.iter().chain(test).map(|r| r.0 as f64);
        let (x_lo, x_hi) = min_max(steps).unwrap_or((0.0, 1.0));

        // Loss: log axis when the positive losses span more than two decades.
        let losses = train.iter().chain(test).map(|r| r.1);
        let positive = min_max(losses.clone().filter(|&v| v > 0.0));
        let log = matches!(positive, Some((lo, hi)) if hi / lo > 100.0);
        let to_axis = |v: f64| if log { log10_pos(v) } else { v.is_finite().then_some(v) };
        let loss_span = if log { positive.map(|(lo, hi)| (lo.log10(), hi.log10())) } else { min_max(losses) };
        let loss_range = if log {
            axis_range(loss_span.unwrap_or((-1.0, 1.0)), 0.04, 0.5)
        } else {
            let (lo, hi) = loss_span.unwrap_or((0.0, 1.0));
            // Losses are usually >= 0: start the axis at 0 then.
            axis_range((lo.min(0.0), hi), 0.04, 0.5)
        };
        let loss_panel = Panel {
            y_range: loss_range,
            y_desc: if log { "loss (log scale)".into() } else { "loss".into() },
            log,
            train: series_runs(train, |r| to_axis(r.1)),
            test: series_runs(test, |r| to_axis(r.1)),
            empty: loss_span.is_none(),
        };

        let accs = train.iter().chain(test).map(|r| r.2);
        let acc_span = min_max(accs);
        let acc_range = match acc_span {
            Some((lo, hi)) if lo >= 0.0 && hi <= 1.0 => 0.0..1.0,
            Some(span) => axis_range(span, 0.04, 0.5),
            None => 0.0..1.0,
        };
        let accuracy = Panel {
            y_range: acc_range,
            y_desc: "accuracy".into(),
            log: false,
            train: series_runs(train, |r| r.2.is_finite().then_some(r.2)),
            test: series_runs(test, |r| r.2.is_finite().then_some(r.2)),
            empty: acc_span.is_none(),
        };
        Self {
            title,
            x_range: step_range(x_lo, x_hi),
            loss: loss_panel,
            accuracy,
            has_train: !train.is_empty(),
            has_test: !test.is_empty(),
        }
    }
}

/// Records sorted by step, mapped to `(step, y)`, broken where `y` is `None`, thinned.
fn series_runs(records: &[(u64, f64, f64)], y: impl Fn(&(u64, f64, f64)) -> Option<f64>) -> Runs {
    let mut sorted: Vec<&(u64, f64, f64)> = records.iter().collect();
    sorted.sort_by_key(|r| r.0);
    let points = sorted.into_iter().map(|r| (r.0 as f64, y(r))).collect();
    segments(&thin(points, MAX_LINE_BUCKETS))
}

impl LossFigure<'_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
        x_desc: &str,
        legend_at: Option<SeriesLabelPosition>,
        s: f64,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(px(10.0, s))
            .margin_right(px(30.0, s))
            .x_label_area_size(px(if x_desc.is_empty() { 30.0 } else { 50.0 }, s))
            .y_label_area_size(px(90.0, s))
            .build_cartesian_2d(self.x_range.clone(), panel.y_range.clone())?;
        let log = panel.log;
        let y_fmt = move |v: &f64| if log { pow10_label(*v) } else { compact(*v) };
        chart
            .configure_mesh()
            .x_labels(x_ticks(area.dim_in_pixel().0))
            .y_labels(6)
            .max_light_lines(0)
            .bold_line_style(GRID_LINE)
            .x_label_formatter(&|v| integer_label(*v))
            .y_label_formatter(&y_fmt)
            .x_desc(x_desc)
            .y_desc(panel.y_desc.as_str())
            .label_style(font(14.0 * s))
            .axis_desc_style(font(16.0 * s))
            .draw()?;
        draw_runs(&mut chart, &panel.train, TRAIN_COLOUR, 1, s)?;
        draw_runs(&mut chart, &panel.test, TEST_COLOUR, 2, s)?;
        let radius = px(4.0, s).max(2);
        chart.draw_series(panel.test.iter().flatten().map(|&p| Circle::new(p, radius, TEST_COLOUR.filled())))?;
        if panel.empty {
            draw_note(&mut chart, "no finite values", s)?;
        }
        // Legend entries: invisible one-point series carrying the labels.
        let Some(legend_at) = legend_at else {
            return Ok(());
        };
        let mut labelled = false;
        if self.has_train {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label("train (every step)")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TRAIN_COLOUR.stroke_width(2)));
            labelled = true;
        }
        if self.has_test {
            chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?.label("test (evaluations)").legend(
                move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (20, 0)], TEST_COLOUR.stroke_width(2))
                        + Circle::new((10, 0), 4, TEST_COLOUR.filled())
                },
            );
            labelled = true;
        }
        if labelled {
            chart
                .configure_series_labels()
                .position(legend_at)
                .label_font(font(14.0 * s))
                .background_style(WHITE.mix(0.85))
                .border_style(GRID_LINE)
                .draw()?;
        }
        Ok(())
    }
}

impl Figure for LossFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = scale_of(root);
        let area = titled(root, self.title, s)?;
        let (_, h) = area.dim_in_pixel();
        let (top, bottom) = area.split_vertically(h as i32 * 47 / 100);
        self.draw_panel(&top, &self.loss, "", Some(SeriesLabelPosition::UpperRight), s)?;
        self.draw_panel(&bottom, &self.accuracy, "step", None, s)
    }
}

// ---------------------------------------------------------------------------------------------
// Grid of values

struct Grid<'a> {
    title: &'a str,
    rows: Categories<'a>,
    cols: Categories<'a>,
    values: &'a [Vec<Option<f64>>],
    value_label: &'a str,
}

impl Figure for Grid<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = scale_of(root);
        let area = titled(root, self.title, s)?;
        let (w, _) = area.dim_in_pixel();
        let (main, bar) = area.split_horizontally(w as i32 - px(160.0, s));

        let label_style = font(15.0 * s);
        let rows: Vec<String> = self.rows.labels.iter().map(|r| shorten(r, 40)).collect();
        let cols: Vec<String> = self.cols.labels.iter().map(|c| shorten(c, 24)).collect();
        let widest_row = rows.iter().map(|r| text_width(&main, r, &label_style)).max().unwrap_or(0);
        // Room for the row labels and, left of them, the rows' axis title (drawn turned).
        let y_label_area = (widest_row + px(50.0, s)).clamp(px(70.0, s), w as i32 * 2 / 5);
        let x_label_area = px(65.0, s);

        let values = self.values.iter().flatten().filter_map(|v| *v);
        let span = min_max(values);
        let c_range = axis_range(span.unwrap_or((0.0, 1.0)), 0.0, 0.5);

        let (n_rows, n_cols) = (rows.len(), cols.len());
        let mut chart = ChartBuilder::on(&main)
            .margin(px(10.0, s))
            .margin_right(px(20.0, s))
            .x_label_area_size(x_label_area)
            .y_label_area_size(y_label_area)
            .build_cartesian_2d(-0.5..(n_cols as f64 - 0.5), -0.5..(n_rows as f64 - 0.5))?;
        let top = n_rows as f64 - 1.0;
        let col_label = |v: &f64| label_at(&cols, *v);
        let row_label = |v: &f64| label_at(&rows, top - *v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n_cols)
            .y_labels(n_rows)
            .x_label_formatter(&col_label)
            .y_label_formatter(&row_label)
            .x_desc(self.cols.title)
            .y_desc(self.rows.title)
            .label_style(label_style.clone())
            .axis_desc_style(font(16.0 * s))
            .draw()?;

        let (pw, ph) = chart.plotting_area().dim_in_pixel();
        let (cell_w, cell_h) = (f64::from(pw) / n_cols as f64, f64::from(ph) / n_rows as f64);
        let cells = self
            .values
            .iter()
            .enumerate()
            .flat_map(|(r, row)| row.iter().enumerate().map(move |(c, v)| (c as f64, top - r as f64, *v)));
        let colour_of = |v: Option<f64>| match v {
            None => MISSING_COLOUR,
            Some(v) if !v.is_finite() => NON_FINITE_COLOUR,
            Some(v) => viridis(fraction(v, &c_range)),
        };
        chart.draw_series(
            cells
                .clone()
                .map(|(x, y, v)| Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], colour_of(v).filled())),
        )?;
        // Thin white separators between cells.
        chart.draw_series(
            cells
                .clone()
                .map(|(x, y, _)| Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], WHITE.stroke_width(1))),
        )?;

        let texts: Vec<(f64, f64, String, RGBColor)> = cells
            .map(|(x, y, v)| {
                let text = match v {
                    None => "-".to_string(),
                    Some(v) => compact(v),
                };
                let ink = if relative_luminance(colour_of(v)) < 0.5 { WHITE } else { TEXT_COLOUR };
                (x, y, text, ink)
            })
            .collect();
        let longest = texts.iter().map(|t| t.2.chars().count()).max().unwrap_or(1).max(1) as f64;
        let size = (cell_h * 0.4).min(cell_w * 0.85 / (0.62 * longest)).min(20.0 * s);
        if size >= 8.0 {
            chart.draw_series(texts.into_iter().map(|(x, y, text, ink)| {
                let mut style = font(size).pos(Pos::new(HPos::Center, VPos::Center));
                style.color = ink.to_backend_color();
                Text::new(text, (x, y), style)
            }))?;
        }

        let (_, bar_h) = bar.dim_in_pixel();
        let (bar_top, bar_key) = bar.split_vertically(bar_h as i32 - px(70.0, s));
        draw_colour_bar(&bar_top, c_range, self.value_label, &|v| compact(*v), s, px(10.0, s))?;
        let key = [
            LegendEntry { label: "no value".into(), colour: MISSING_COLOUR, kind: Swatch::Box },
            LegendEntry { label: "NaN or inf".into(), colour: NON_FINITE_COLOUR, kind: Swatch::Box },
        ];
        draw_legend(&bar_key, &key, px(5.0, s), s)
    }
}

/// The label at an integer position `v` of a category axis, or nothing between categories.
fn label_at(labels: &[String], v: f64) -> String {
    let r = v.round();
    if (v - r).abs() > 1e-6 || r < 0.0 {
        return String::new();
    }
    labels.get(r as usize).cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Measured points and predicted curves, one panel per group

/// The ratio chart's colours: the same in every panel, so that one key serves them all.
const MEASURED_COLOUR: RGBColor = CATEGORICAL[0];
const PREDICTED_COLOUR: RGBColor = CATEGORICAL[1];
const REFERENCE_COLOUR: RGBColor = RGBColor(110, 110, 110);

/// One group of the ratio chart, ready to draw: y in log10.
struct RatioPanel {
    name: String,
    /// Sorted by x; drawn as dots joined by a thin line.
    measured: Vec<(f64, f64)>,
    predicted: Runs,
}

struct RatioChart<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: String,
    x_range: Range<f64>,
    /// Smallest and largest log10 value over every panel.
    y_span: (f64, f64),
    panels: Vec<RatioPanel>,
    /// Whether y = 1 lies on the axis (and so is drawn, dashed).
    reference: bool,
    /// What some panel draws, and nothing else.
    key: Vec<LegendEntry>,
}

impl<'a> RatioChart<'a> {
    fn new(title: &'a str, x_label: &'a str, y_label: &str, groups: &[RatioGroup]) -> Result<Self> {
        let point = |&(x, y): &(f64, f64)| x.is_finite().then_some(x).zip(log10_pos(y));
        let all = groups.iter().flat_map(|(_, m, p)| m.iter().chain(p)).filter_map(point);
        let Some(x_span) = min_max(all.clone().map(|p| p.0)) else {
            bail!("nothing to plot: no group has a point with finite x and finite, positive y");
        };
        let y_span = min_max(all.map(|p| p.1)).unwrap_or((0.0, 1.0));
        let panels: Vec<RatioPanel> = groups
            .iter()
            .map(|(name, measured, predicted)| {
                let mut measured: Vec<(f64, f64)> = measured.iter().filter_map(point).collect();
                measured.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut predicted: Vec<&(f64, f64)> = predicted.iter().filter(|p| p.0.is_finite()).collect();
                predicted.sort_by(|a, b| a.0.total_cmp(&b.0));
                let predicted: Vec<(f64, Option<f64>)> =
                    predicted.into_iter().map(|&(x, y)| (x, log10_pos(y))).collect();
                RatioPanel { name: name.clone(), measured, predicted: segments(&predicted) }
            })
            .collect();
        // Every tick spacing log_axis may pick widens the range at least to whole decades.
        let (decades, _) = log_axis(y_span, usize::MAX);
        let reference = decades.contains(&0.0) || decades.end == 0.0;
        let mut key = Vec::new();
        if panels.iter().any(|p| !p.measured.is_empty()) {
            key.push(LegendEntry { label: "measured".into(), colour: MEASURED_COLOUR, kind: Swatch::LineAndMarker });
        }
        if panels.iter().any(|p| !p.predicted.is_empty()) {
            key.push(LegendEntry {
                label: "mean-field prediction".into(),
                colour: PREDICTED_COLOUR,
                kind: Swatch::Line,
            });
        }
        if reference {
            key.push(LegendEntry {
                label: "1: first and last alike".into(),
                colour: REFERENCE_COLOUR,
                kind: Swatch::Dashed,
            });
        }
        let y_desc = if y_label.to_ascii_lowercase().contains("log") {
            y_label.to_string()
        } else {
            format!("{y_label} (log scale)")
        };
        Ok(Self {
            title,
            x_desc: x_label,
            y_desc,
            x_range: axis_range(x_span, 0.06, 0.5),
            y_span,
            panels,
            reference,
            key,
        })
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &RatioPanel,
        y_axis: &(Range<f64>, Vec<f64>),
        s: f64,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (width, _) = area.dim_in_pixel();
        let mut chart = ChartBuilder::on(area)
            .margin(px(6.0, s))
            .margin_right(px(16.0, s))
            .caption(shorten(&panel.name, 36), font(16.0 * s))
            .x_label_area_size(px(26.0, s))
            .y_label_area_size(px(62.0, s))
            .build_cartesian_2d(self.x_range.clone(), Ticked::new(y_axis.0.clone(), y_axis.1.clone()))?;
        chart
            .configure_mesh()
            .x_labels((width as usize / 70).clamp(3, 10))
            .max_light_lines(0)
            .bold_line_style(GRID_LINE)
            .x_label_formatter(&|v| compact(*v))
            .y_label_formatter(&|v| pow10_label(*v))
            .label_style(font(12.0 * s))
            .draw()?;
        if self.reference {
            let ends = [(self.x_range.start, 0.0), (self.x_range.end, 0.0)];
            chart.draw_series(DashedLineSeries::new(ends, px(6.0, s), px(5.0, s), REFERENCE_COLOUR.stroke_width(1)))?;
        }
        draw_runs(&mut chart, &panel.predicted, PREDICTED_COLOUR, 3, s)?;
        chart.draw_series(LineSeries::new(panel.measured.iter().copied(), MEASURED_COLOUR.stroke_width(1)))?;
        let radius = px(4.0, s).max(3);
        chart.draw_series(panel.measured.iter().map(|&p| Circle::new(p, radius, MEASURED_COLOUR.filled())))?;
        if panel.measured.is_empty() && panel.predicted.is_empty() {
            draw_note(&mut chart, "nothing measured", s)?;
        }
        Ok(())
    }
}

impl Figure for RatioChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let s = scale_of(root);
        let area = titled(root, self.title, s)?;
        let (key, rest) = area.split_vertically(px(30.0, s));
        draw_key_row(&key, &self.key, px(80.0, s), s)?;
        let (_, h) = rest.dim_in_pixel();
        let (rest, x_title) = rest.split_vertically(h as i32 - px(30.0, s));
        let (y_title, grid) = rest.split_horizontally(px(30.0, s));
        let (gw, gh) = grid.dim_in_pixel();
        let style = font(16.0 * s).pos(Pos::new(HPos::Center, VPos::Center));
        x_title.draw(&Text::new(self.x_desc.to_string(), (gw as i32 / 2 + px(30.0, s), px(12.0, s)), style.clone()))?;
        let vertical = style.transform(FontTransform::Rotate270);
        y_title.draw(&Text::new(self.y_desc.clone(), (px(12.0, s), gh as i32 / 2), vertical))?;

        let (cols, rows) = panel_grid(self.panels.len());
        // The panels' plot height, less caption and tick labels, sets how many ticks fit.
        let panel_plot = (gh as i32 / rows as i32 - px(55.0, s)).max(0) as u32;
        let y_axis = log_axis(self.y_span, labels_along(panel_plot, s * 0.8).clamp(3, 10));
        for (panel, cell) in self.panels.iter().zip(grid.split_evenly((rows, cols))) {
            self.draw_panel(&cell, panel, &y_axis, s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use super::*;

    /// Renders `draw` to both formats in a temporary directory and checks the files. With
    /// `GRADLAB_PLOT_KEEP=<dir>` set, the images are also copied there to be looked at.
    fn both(name: &str, size: Size, title: &str, draw: impl Fn(&Path) -> Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join(format!("{name}.png"));
        let svg = dir.path().join(format!("{name}.svg"));
        draw(&png).unwrap();
        draw(&svg).unwrap();
        check_png(&png, size);
        check_svg(&svg, title);
        if let Ok(keep) = std::env::var("GRADLAB_PLOT_KEEP") {
            for file in [&png, &svg] {
                std::fs::copy(file, PathBuf::from(&keep).join(file.file_name().unwrap())).unwrap();
            }
        }
    }

    fn check_png(path: &Path, size: Size) {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (size.width, size.height), "{}", path.display());
        let channels = info.color_type.samples();
        assert!(channels >= 3, "unexpected colour type {:?}", info.color_type);
        let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
        let colours: HashSet<(u8, u8, u8)> = pixels.iter().map(|p| (p[0], p[1], p[2])).collect();
        let inked = pixels.iter().filter(|p| p[..3] != [255, 255, 255]).count();
        assert!(colours.len() > 30, "{}: only {} colours", path.display(), colours.len());
        assert!(inked * 50 > pixels.len(), "{}: almost blank ({inked} inked pixels)", path.display());
    }

    fn check_svg(path: &Path, title: &str) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("<svg"), "{}: no <svg element", path.display());
        assert!(text.trim_end().ends_with("</svg>"), "{}: not closed", path.display());
        assert!(text.contains(title), "{}: title {title:?} missing", path.display());
        assert_eq!(text.matches('<').count(), text.matches('>').count(), "{}: unbalanced tags", path.display());
    }

    fn steps(n: u64) -> Vec<u64> {
        (0..n).collect()
    }

    /// A vanishing pattern: norm of layer l = 10^(-l/2) * (1 + 0.1 sin(step)).
    fn vanishing(layers: usize, steps: &[u64]) -> Vec<Vec<f64>> {
        (0..layers)
            .map(|l| steps.iter().map(|&s| 10f64.powf(-(l as f64) / 2.0) * (1.0 + 0.1 * (s as f64).sin())).collect())
            .collect()
    }

    fn named(layers: Vec<Vec<f64>>) -> Vec<(String, Vec<f64>)> {
        layers.into_iter().enumerate().map(|(l, v)| (format!("layer {l}"), v)).collect()
    }

    /// Heat-map rows named "0", "1", ...
    fn rows(layers: Vec<Vec<f64>>) -> Vec<(String, Vec<f64>)> {
        layers.into_iter().enumerate().map(|(l, v)| (l.to_string(), v)).collect()
    }

    /// The text of every `<text>` element of an SVG file, trimmed.
    fn svg_texts(path: &Path) -> Vec<String> {
        let svg = std::fs::read_to_string(path).unwrap();
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
            .collect()
    }

    fn error_of(result: Result<()>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(ImageFormat::from_path(Path::new("a/b.png")).unwrap(), ImageFormat::Png);
        assert_eq!(ImageFormat::from_path(Path::new("b.SVG")).unwrap(), ImageFormat::Svg);
        let err = ImageFormat::from_path(Path::new("out/plot.jpg")).unwrap_err().to_string();
        assert!(err.contains("out/plot.jpg"), "{err}");
        assert!(ImageFormat::from_path(Path::new("noext")).is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(pow10_label(-3.0), "0.001");
        assert_eq!(pow10_label(0.0), "1");
        assert_eq!(pow10_label(2.0), "100");
        assert_eq!(pow10_label(-12.0), "1e-12");
        assert_eq!(pow10_label(0.5), "3.16");
        assert_eq!(compact(0.87654), "0.877");
        assert_eq!(compact(12.0), "12");
        assert_eq!(compact(-2.5), "-2.5");
        assert_eq!(compact(1.5e-7), "1.5e-7");
        assert_eq!(integer_label(3.0), "3");
        assert_eq!(integer_label(3.5), "");
    }

    #[test]
    fn heatmap_renders() {
        let size = Size::default();
        let steps = steps(200);
        let layers = vanishing(12, &steps);
        both("heatmap", size, "Vanishing gradients, tanh", |p| {
            heatmap(p, size, "Vanishing gradients, tanh", &steps, &named(layers.clone()))
        });
    }

    #[test]
    fn heatmap_with_bad_cells_and_many_steps() {
        let size = Size { width: 800, height: 500 };
        let steps: Vec<u64> = (0..2500).map(|s| s * 10).collect();
        let mut layers = vanishing(6, &steps);
        layers[2][100] = f64::NAN;
        layers[3][..400].fill(0.0);
        layers[4][2000] = f64::INFINITY;
        let layers = named(layers);
        both("heatmap_bad", size, "Heat map with NaN", |p| heatmap(p, size, "Heat map with NaN", &steps, &layers));
    }

    #[test]
    fn heatmap_many_layers() {
        let size = Size::default();
        let steps: Vec<u64> = (0..80).map(|s| 1000 + s * 25).collect();
        let layers = named(vanishing(100, &steps));
        both("heatmap_deep", size, "One hundred layers", |p| heatmap(p, size, "One hundred layers", &steps, &layers));
    }

    #[test]
    fn smallest_size() {
        let size = Size::MIN;
        let steps = steps(50);
        let series = named(vanishing(8, &steps));
        both("heatmap_small", size, "Small heat map", |p| heatmap(p, size, "Small heat map", &steps, &series));
        both("lines_small", size, "Small lines", |p| lines(p, size, "Small lines", &steps, &series));
    }

    #[test]
    fn heatmap_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("h.png");
        let size = Size::default();
        assert!(error_of(heatmap(&png, size, "t", &[], &rows(vec![vec![]]))).contains("nothing to plot"));
        assert!(error_of(heatmap(&png, size, "t", &[1, 2], &[])).contains("nothing to plot"));
        assert!(error_of(heatmap(&png, size, "t", &[1, 2], &rows(vec![vec![1.0]]))).contains("layer 0"));
        assert!(error_of(heatmap(&png, size, "t", &[2, 1], &rows(vec![vec![1.0, 1.0]]))).contains("increasing"));
        let err = error_of(heatmap(&dir.path().join("h.gif"), size, "t", &[1], &rows(vec![vec![1.0]])));
        assert!(err.contains("h.gif"), "{err}");
        assert!(!dir.path().join("h.gif").exists());
        assert!(
            error_of(heatmap(&png, Size { width: 10, height: 10 }, "t", &[1], &rows(vec![vec![1.0]]))).contains("size")
        );
        assert!(!png.exists(), "nothing is written on bad input");
        let nowhere = dir.path().join("missing-dir").join("h.png");
        let err = error_of(heatmap(&nowhere, size, "t", &[1], &rows(vec![vec![1.0]])));
        assert!(err.contains("missing-dir"), "{err}");
        // Renders, without panicking: a single step, one layer, all equal, all NaN, all zero.
        heatmap(&png, size, "t", &[5], &rows(vec![vec![0.3]])).unwrap();
        heatmap(&png, size, "t", &[5, 6, 7], &rows(vec![vec![2.0; 3], vec![2.0; 3]])).unwrap();
        heatmap(&png, size, "t", &[5, 6], &rows(vec![vec![f64::NAN; 2]])).unwrap();
        heatmap(&png, size, "t", &[5, 6], &rows(vec![vec![0.0; 2]])).unwrap();
        heatmap(&png, size, "t", &[u64::MAX - 1, u64::MAX], &rows(vec![vec![1e-300, 1e300]])).unwrap();
    }

    #[test]
    fn lines_render() {
        let size = Size::default();
        let steps = steps(300);
        let few = named(vanishing(5, &steps));
        both("lines", size, "Per-layer gradient norms", |p| lines(p, size, "Per-layer gradient norms", &steps, &few));
        let mut many = named(vanishing(24, &steps));
        many[3].1[50] = f64::NAN;
        many[4].1[60..70].fill(0.0);
        both("lines_many", size, "Twenty-four layers", |p| lines(p, size, "Twenty-four layers", &steps, &many));
    }

    #[test]
    fn lines_thin_long_series() {
        let size = Size { width: 640, height: 400 };
        let steps = steps(20_000);
        let series = named(vanishing(3, &steps));
        both("lines_long", size, "Long run", |p| lines(p, size, "Long run", &steps, &series));
    }

    #[test]
    fn lines_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("l.png");
        let size = Size::default();
        let one = |v: Vec<f64>| vec![("a".to_string(), v)];
        assert!(error_of(lines(&png, size, "t", &[], &one(vec![]))).contains("nothing to plot"));
        assert!(error_of(lines(&png, size, "t", &[1], &[])).contains("nothing to plot"));
        assert!(error_of(lines(&png, size, "t", &[1, 2], &one(vec![1.0]))).contains("\"a\""));
        let err = error_of(lines(&png, size, "t", &[1, 2, 3], &one(vec![0.0, f64::NAN, -1.0])));
        assert!(err.contains("nothing to plot"), "{err}");
        assert!(!png.exists());
        lines(&png, size, "t", &[7], &one(vec![0.5])).unwrap();
        lines(&png, size, "t", &[1, 2, 3], &one(vec![4.0; 3])).unwrap();
        lines(&png, size, "t", &[1, 2, 3, 4], &one(vec![1.0, f64::INFINITY, 0.0, 2.0])).unwrap();
        lines(&png, size, "t", &[0, 1], &one(vec![f64::MIN_POSITIVE, f64::MAX])).unwrap();
    }

    #[test]
    fn loss_renders() {
        let size = Size::default();
        let train: Vec<(u64, f64, f64)> = (0..500)
            .map(|s| {
                let t = s as f64;
                (s, 2.3 * (-t / 150.0).exp() + 0.05 * (t * 0.7).sin().abs(), 1.0 - 0.9 * (-t / 120.0).exp())
            })
            .collect();
        let test: Vec<(u64, f64, f64)> = (0..=10)
            .map(|k| (k * 50, 2.3 * (-(k as f64) / 3.0).exp() + 0.1, 1.0 - 0.9 * (-(k as f64) / 2.5).exp()))
            .collect();
        both("loss", size, "Loss and accuracy", |p| loss(p, size, "Loss and accuracy", &train, &test));
        // Losses spanning decades switch to a log axis.
        let steep: Vec<(u64, f64, f64)> = (0..200).map(|s| (s, 10f64.powf(-(s as f64) / 40.0), 0.5)).collect();
        both("loss_log", size, "Steep loss", |p| loss(p, size, "Steep loss", &steep, &[]));
    }

    #[test]
    fn loss_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("loss.png");
        let size = Size::default();
        assert!(error_of(loss(&png, size, "t", &[], &[])).contains("nothing to plot"));
        assert!(!png.exists());
        loss(&png, size, "t", &[(3, 1.0, 0.5)], &[]).unwrap();
        loss(&png, size, "t", &[], &[(3, 1.0, 0.5)]).unwrap();
        loss(&png, size, "t", &[(0, f64::NAN, f64::NAN), (1, f64::INFINITY, f64::NAN)], &[]).unwrap();
        loss(&png, size, "t", &[(0, 1.0, 1.0), (1, 1.0, 1.0), (1, 1.0, 1.0)], &[(9, 0.0, 0.0)]).unwrap();
        loss(&png, size, "t", &[(0, 1e30, 42.0), (5, 1e-30, -3.0)], &[]).unwrap();
    }

    #[test]
    fn grid_renders() {
        let size = Size::default();
        let rows: Vec<String> = ["tanh", "relu", "sigmoid", "gelu (approx.)"].map(String::from).to_vec();
        let cols: Vec<String> = [2, 5, 10, 20, 50].map(|d| format!("depth {d}")).to_vec();
        let values: Vec<Vec<Option<f64>>> = (0..rows.len())
            .map(|r| {
                (0..cols.len())
                    .map(|c| match (r, c) {
                        (2, 4) => None,
                        (1, 4) => Some(f64::NAN),
                        _ => Some(0.98 - 0.08 * (r * c) as f64 / 2.0),
                    })
                    .collect()
            })
            .collect();
        let (rows, cols) =
            (Categories { title: "activation", labels: &rows }, Categories { title: "depth", labels: &cols });
        both("grid", size, "Test accuracy by depth", |p| {
            grid(p, size, "Test accuracy by depth", rows, cols, &values, "test accuracy")
        });
    }

    #[test]
    fn grid_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("g.png");
        let size = Size::default();
        let (a, ab, none) = (["a".to_string()], ["a".to_string(), "b".to_string()], []);
        let [a, ab, none] = [&a[..], &ab[..], &none[..]].map(|labels| Categories { title: "t", labels });
        assert!(error_of(grid(&png, size, "t", none, a, &[], "v")).contains("nothing to plot"));
        assert!(error_of(grid(&png, size, "t", a, none, &[vec![]], "v")).contains("nothing to plot"));
        assert!(error_of(grid(&png, size, "t", ab, a, &[vec![Some(1.0)]], "v")).contains("rows"));
        assert!(error_of(grid(&png, size, "t", a, ab, &[vec![Some(1.0)]], "v")).contains("row 0"));
        assert!(!png.exists());
        grid(&png, size, "t", a, a, &[vec![Some(0.5)]], "v").unwrap();
        grid(&png, size, "t", a, ab, &[vec![None, None]], "v").unwrap();
        grid(&png, size, "t", ab, a, &[vec![Some(f64::NAN)], vec![Some(f64::NEG_INFINITY)]], "v").unwrap();
        let wide: Vec<String> = (0..60).map(|c| format!("c{c}")).collect();
        grid(&png, size, "t", a, Categories { title: "", labels: &wide }, &[vec![Some(1.0); 60]], "v").unwrap();
    }

    #[test]
    fn ratio_chart_renders() {
        let size = Size::default();
        let depths = [2.0, 5.0, 10.0, 20.0, 40.0];
        let group = |name: &str, chi: f64| {
            let predicted: Vec<(f64, f64)> = (1..=40).map(|d| (f64::from(d), chi.powf(f64::from(d)))).collect();
            let measured: Vec<(f64, f64)> = depths.iter().map(|&d| (d, chi.powf(d) * (1.0 + 0.2 * d.sin()))).collect();
            (name.to_string(), measured, predicted)
        };
        let groups = vec![group("tanh", 0.8), group("relu (He)", 1.0), group("sigmoid", 0.25), group("selu", 1.2)];
        both("ratio", size, "First/last gradient ratio", |p| {
            ratio_chart(p, size, "First/last gradient ratio", "depth", "||g_first|| / ||g_last||", &groups)
        });
    }

    #[test]
    fn ratio_chart_degenerate() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("r.png");
        let size = Size::default();
        assert!(error_of(ratio_chart(&png, size, "t", "x", "y", &[])).contains("nothing to plot"));
        let bad = vec![("a".to_string(), vec![(1.0, 0.0), (f64::NAN, 1.0)], vec![(2.0, -1.0)])];
        assert!(error_of(ratio_chart(&png, size, "t", "x", "y", &bad)).contains("nothing to plot"));
        assert!(!png.exists());
        let single = vec![("a".to_string(), vec![(3.0, 2.0)], vec![])];
        ratio_chart(&png, size, "t", "x", "y", &single).unwrap();
        let mixed = vec![
            ("a".to_string(), vec![(3.0, 2.0), (4.0, f64::INFINITY)], vec![(1.0, 1.0), (2.0, 0.0), (3.0, 1e-200)]),
            ("b".to_string(), vec![], vec![]),
        ];
        ratio_chart(&png, size, "t", "x", "log ratio", &mixed).unwrap();
    }

    #[test]
    fn log_axis_labels_both_ends_of_the_data() {
        // The end-of-training ratios of seed-claims-mini: 2e-9 to 3.5 (log10 -8.7 to 0.55).
        for (span, max) in [
            ((-8.7, 0.55), 7),
            ((-8.7, 0.55), 12),
            ((0.04, 0.4), 10),
            ((-0.3, 0.3), 10),
            ((2.0, 2.0), 10),
            ((-300.0, 300.0), 8),
            ((-12.0, -11.99), 3),
        ] {
            let (range, ticks) = log_axis(span, max);
            let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
            assert!(first <= span.0 && last >= span.1, "{span:?}: ticks {ticks:?} do not reach both ends");
            assert_eq!((range.start, range.end), (first, last), "{span:?}: the axis ends on a labelled tick");
            let decades = ticks.iter().filter(|t| t.fract() == 0.0).count();
            assert!(decades <= max.max(2), "{span:?}: {decades} decade ticks for at most {max}");
            assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
        }
        // The bug: everything above 1 unlabelled. Now the top tick is above the largest ratio.
        let (_, ticks) = log_axis((-8.7, 0.55), 7);
        assert!(ticks.iter().any(|&t| t > 0.55), "{ticks:?}");
        // Within one or two decades, 2x and 5x ticks give more than two values to read by.
        let (_, ticks) = log_axis((0.04, 0.4), 10);
        let labels: Vec<String> = ticks.iter().map(|&t| pow10_label(t)).collect();
        assert_eq!(labels, ["1", "2", "5", "10"]);
    }

    /// `(name, measured, predicted)` groups: `n` activations whose ratios all sit near 1.
    fn near_one(n: usize, predicted: bool) -> Vec<RatioGroup> {
        let depths = [1.0, 2.0, 4.0, 8.0, 16.0];
        (0..n)
            .map(|g| {
                let slope = 1.0 + 0.01 * g as f64;
                let measured = depths.iter().map(|&d| (d, slope.powf(d))).collect();
                let curve = if predicted { depths.iter().map(|&d| (d, slope.powf(d) * 1.1)).collect() } else { vec![] };
                (format!("act{g}"), measured, curve)
            })
            .collect()
    }

    fn key_labels(chart: &RatioChart) -> Vec<String> {
        chart.key.iter().map(|e| e.label.clone()).collect()
    }

    #[test]
    fn ratio_chart_key_names_only_what_is_drawn() {
        // At the end of training there is no prediction: the key must not name one.
        let end = RatioChart::new("t", "x", "y", &near_one(9, false)).unwrap();
        assert!(end.panels.iter().all(|p| p.predicted.is_empty()));
        assert!(!key_labels(&end).iter().any(|l| l.contains("prediction")), "{:?}", key_labels(&end));
        let init = RatioChart::new("t", "x", "y", &near_one(9, true)).unwrap();
        assert!(key_labels(&init).iter().any(|l| l.contains("prediction")));
        for chart in [&end, &init] {
            for entry in &chart.key {
                let drawn = match entry.kind {
                    Swatch::LineAndMarker => chart.panels.iter().any(|p| !p.measured.is_empty()),
                    Swatch::Line => chart.panels.iter().any(|p| !p.predicted.is_empty()),
                    Swatch::Dashed => chart.reference,
                    _ => false,
                };
                assert!(drawn, "the key names {:?} but no panel draws it", entry.label);
            }
        }
        // Predictions alone (nothing measured yet): no "measured" entry.
        let only = vec![("a".to_string(), vec![], vec![(1.0, 0.5), (2.0, 0.25)])];
        let chart = RatioChart::new("t", "x", "y", &only).unwrap();
        assert_eq!(key_labels(&chart), ["mean-field prediction", "1: first and last alike"]);
    }

    #[test]
    fn ratio_chart_gives_each_group_its_own_panel() {
        let groups = near_one(9, true);
        let chart = RatioChart::new("t", "x", "y", &groups).unwrap();
        let names: Vec<&str> = chart.panels.iter().map(|p| p.name.as_str()).collect();
        let wanted: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, wanted);
        for (panel, group) in chart.panels.iter().zip(&groups) {
            assert_eq!(panel.measured.len(), group.1.len(), "{}: every point in its own panel", panel.name);
        }
        assert_eq!(panel_grid(9), (3, 3));
        assert_eq!(panel_grid(2), (2, 1));
        assert_eq!(panel_grid(10), (4, 3));
        assert!(ratio_chart_size(9).height >= 100 + 3 * 230);
        let size = ratio_chart_size(9);
        both("ratio_near_one", size, "Nine near one", |p| {
            ratio_chart(p, size, "Nine near one", "hidden layers", "first/last", &groups)
        });
    }

    #[test]
    fn the_output_row_of_a_heat_map_is_labelled_as_such() {
        let steps = steps(20);
        let mut layers = rows(vanishing(17, &steps));
        layers[16].0 = "output".into();
        // Deep nets, or small images, label some rows, always the last.
        assert_eq!(labelled_rows(17, 20), (0..17).collect::<Vec<_>>());
        for n in [17, 33, 100, 101] {
            let rows = labelled_rows(n, 16);
            assert_eq!((rows[0], rows[rows.len() - 1]), (0, n - 1), "{n}: {rows:?}");
            assert!(rows.len() <= 17, "{n}: {rows:?}");
            let k = rows[1] - rows[0];
            assert!(rows.windows(2).all(|w| 2 * (w[1] - w[0]) >= k), "{n}: the last label crowds one: {rows:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("h.svg");
        heatmap(&svg, Size::default(), "t", &steps, &layers).unwrap();
        let texts = svg_texts(&svg);
        for row in ["0", "1", "15", "output"] {
            assert!(texts.iter().any(|t| t == row), "row {row:?} unlabelled: {texts:?}");
        }
        assert!(!texts.iter().any(|t| t == "16"), "the output row passes for hidden layer 16: {texts:?}");
    }

    #[test]
    fn grid_titles_both_axes() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("g.svg");
        let rows = ["tanh".to_string(), "relu".to_string()];
        let cols = ["1".to_string(), "2".to_string()];
        let values = vec![vec![Some(0.9), Some(0.8)], vec![Some(0.7), None]];
        let (rows, cols) = (
            Categories { title: "activation", labels: &rows },
            Categories { title: "depth (hidden layers)", labels: &cols },
        );
        grid(&svg, Size::default(), "t", rows, cols, &values, "test accuracy").unwrap();
        let texts = svg_texts(&svg);
        for title in ["activation", "depth (hidden layers)"] {
            assert!(texts.iter().any(|t| t == title), "axis title {title:?} missing: {texts:?}");
        }
    }
}
