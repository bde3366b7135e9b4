//! `gradlab report`: a sweep's report as terminal tables, JSON, CSV or markdown, and its plots.
//!
//! The terminal tables fit the terminal. Its width is COLUMNS when that is set to a number, else
//! the size of the terminal on stdout; with neither (output piped or redirected, no COLUMNS) the
//! tables are printed whole. A table wider than that is narrowed in a fixed order until it fits:
//! first the claims' `measured` text gives way to a short form ("lecun_normal 2 of 16"), then
//! columns are left out one at a time, least needed first:
//!
//! - cells: done, predicted, ratio end, best lr, ± std, ratio init, verdicts;
//! - trainable depth: deepest, recovered at, shallow acc;
//! - claims: measured (the trainable-depth table above holds the same depths).
//!
//! What a row is and its result always stay: a cell's axis values and test accuracy, a group
//! and its trainable depth, a claim and its verdict. When those alone are too wide, their text
//! wraps inside the columns. A line under a narrowed table names the columns it left out.
//! `--format markdown|csv|json` always carry every column.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};

use super::client::{CliError, Client, ServerArgs, connect, status};
use super::report_plot::write_plots;
use crate::api::convert_sweep::report_from_pb;
use crate::api::pb;
use crate::runner::sweep::{CellReport, ClaimCheck, ClaimVerdict, SweepReport, TrainableDepth, VERDICT_RULE};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Markdown,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The sweep id.
    pub sweep: i64,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the plots (accuracy heat map, gradient-ratio chart) and report.md into DIR.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Trainable-depth margin: absolute test accuracy below the best shallow one [default: 0.05].
    #[arg(long)]
    pub margin: Option<f64>,
}

pub async fn fetch(client: &mut Client, sweep: i64, margin: Option<f64>) -> Result<SweepReport> {
    let r = client.get_sweep_report(pb::SweepReportRequest { sweep_id: sweep, margin }).await.map_err(status)?;
    Ok(report_from_pb(r.get_ref()).map_err(|e| CliError(format!("the server sent a malformed report: {e}")))?)
}

pub async fn run(args: ReportArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    let report = fetch(&mut client, args.sweep, args.margin).await?;
    print!("{}", render(&report, args.format, terminal_width())?);
    if let Some(dir) = &args.plot {
        for path in write_all(&report, dir)? {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The report in `format`; terminal tables are fitted to `width` columns (None: whole).
pub fn render(report: &SweepReport, format: ReportFormat, width: Option<usize>) -> Result<String> {
    Ok(match format {
        ReportFormat::Table => tables(report, width),
        ReportFormat::Json => serde_json::to_string_pretty(report)? + "\n",
        ReportFormat::Csv => report.to_csv(),
        ReportFormat::Markdown => report.to_markdown(),
    })
}

/// The plots and `report.md` (with the plots linked) into `dir`, created if missing.
pub fn write_all(report: &SweepReport, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    let plots = write_plots(report, dir)?;
    let mut md = report.to_markdown();
    if !plots.is_empty() {
        md += "\n## Plots\n\n";
        for p in &plots {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            md += &format!("![{name}]({name})\n\n");
        }
    }
    let path = dir.join("report.md");
    std::fs::write(&path, md).map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
    let mut all = plots;
    all.push(path);
    Ok(all)
}

/// The width terminal tables must fit: COLUMNS when it is a number, else the width of the
/// terminal on stdout; None when there is neither (the tables are then printed whole).
pub fn terminal_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
    columns.or_else(|| Table::new().width().map(usize::from))
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".into(), f)
}

/// A column of a terminal table.
struct Column {
    header: String,
    cells: Vec<String>,
    /// A narrower form of the cells, taken before any column is left out.
    short: Option<Vec<String>>,
    /// When the column is left out as the table narrows: lower goes first; None: never.
    drop: Option<u8>,
}

impl Column {
    fn new(header: &str, cells: Vec<String>, drop: Option<u8>) -> Self {
        Self { header: header.into(), cells, short: None, drop }
    }

    fn kept(header: &str, cells: Vec<String>) -> Self {
        Self::new(header, cells, None)
    }
}

fn table_of(columns: &[Column], wrap_to: Option<usize>) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY).set_header(columns.iter().map(|c| c.header.clone()));
    let rows = columns.first().map_or(0, |c| c.cells.len());
    for r in 0..rows {
        t.add_row(columns.iter().map(|c| c.cells[r].clone()));
    }
    if let Some(w) = wrap_to {
        t.set_content_arrangement(ContentArrangement::Dynamic).set_width(w.min(usize::from(u16::MAX)) as u16);
    }
    t.to_string()
}

fn widest_line(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The table, narrowed to `width` by the module's rule; followed by a line naming what it left
/// out, if anything.
fn fit(mut columns: Vec<Column>, width: Option<usize>) -> String {
    let Some(width) = width else { return table_of(&columns, None) + "\n" };
    let mut left_out: Vec<String> = Vec::new();
    let mut shortened = false;
    let table = loop {
        let text = table_of(&columns, None);
        if widest_line(&text) <= width {
            break text;
        }
        if !shortened && columns.iter().any(|c| c.short.is_some()) {
            for c in &mut columns {
                if let Some(short) = c.short.take() {
                    c.cells = short;
                }
            }
            shortened = true;
            continue;
        }
        let next = columns.iter().enumerate().filter_map(|(i, c)| c.drop.map(|d| (d, i))).min();
        match next {
            Some((_, i)) => left_out.push(columns.remove(i).header),
            None => break table_of(&columns, Some(width)),
        }
    };
    let mut out = table + "\n";
    if !left_out.is_empty() {
        let note = format!("(left out to fit {width} columns: {}; --format markdown has all)", left_out.join(", "));
        out += &wrap(&note, Some(width));
    }
    out
}

/// `text` as lines of at most `width` characters, broken between words (a longer word gets a
/// line of its own); one line when `width` is None.
fn wrap(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else { return format!("{text}\n") };
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out += &line;
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    out + &line + "\n"
}

/// "0.012", or "n=1" where a single value has no spread to show.
fn spread(c: &CellReport) -> String {
    match c.test_accuracy {
        None => "-".into(),
        Some(a) if a.n < 2 => format!("n={}", a.n),
        Some(a) => format!("{:.3}", a.std),
    }
}

/// "healthy" for a lone job, else "healthy 2, vanishing 1".
fn verdict_counts(c: &CellReport) -> String {
    if c.verdicts.values().sum::<usize>() == 1 {
        return c.verdicts.keys().next().cloned().unwrap_or_default();
    }
    let counts: Vec<String> = c.verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    if counts.is_empty() { "-".into() } else { counts.join(", ") }
}

/// The report for a terminal `width` columns wide (None: whole tables): cells, trainable depth,
/// claims.
pub fn tables(r: &SweepReport, width: Option<usize>) -> String {
    let head = format!(
        "sweep {}: {} jobs, {} finished{}; margin {}; budget {}",
        r.sweep,
        r.jobs_total,
        r.jobs_finished,
        if r.jobs_unmatched > 0 { format!(", {} unmatched", r.jobs_unmatched) } else { String::new() },
        r.margin,
        r.steps.map_or("varies".to_string(), |s| format!("{s} steps")),
    );
    // Verdict counts and the spread cover fewer jobs than `done` when lr is an axis: say so.
    let over = if r.lr_is_axis {
        "test acc, ± std and verdicts: over the best lr's jobs only; done: every lr's."
    } else {
        "test acc, ± std and verdicts: over each cell's finished jobs."
    };
    let ratio_note = "ratio: first/last hidden-layer gradient norm; predicted: by mean field.";
    let mut out = String::new();
    for line in [head.as_str(), over, ratio_note] {
        out += &wrap(line, width);
    }
    // The verdicts that need words: those the gradient ratio beside them does not explain.
    if r.cells.iter().any(|c| c.verdicts.contains_key("collapsing") || c.verdicts.contains_key("not_learning")) {
        out += &wrap(VERDICT_RULE, width);
    }
    let cells = &r.cells;
    let each = |f: &dyn Fn(&CellReport) -> String| cells.iter().map(f).collect::<Vec<String>>();
    let mut columns: Vec<Column> = r
        .cell_axes
        .iter()
        .enumerate()
        .map(|(i, f)| Column::kept(&f.to_string(), each(&|c| c.values[i].value.clone())))
        .collect();
    columns.push(Column::new("done", each(&|c| format!("{}/{}", c.jobs_finished, c.jobs_total)), Some(0)));
    if r.lr_is_axis {
        columns.push(Column::new("best lr", each(&|c| c.best_lr.clone().unwrap_or_else(|| "-".into())), Some(3)));
    }
    columns.push(Column::kept("test acc", each(&|c| c.test_accuracy.map_or("-".into(), |a| format!("{:.3}", a.mean)))));
    columns.push(Column::new("± std", each(&spread), Some(4)));
    columns.push(Column::new("verdicts", each(&verdict_counts), Some(6)));
    let ratio = |x: Option<f64>| opt(x, |v| format!("{v:.2e}"));
    columns.push(Column::new("ratio init", each(&|c| ratio(c.ratio_at_init_geomean)), Some(5)));
    columns.push(Column::new("ratio end", each(&|c| ratio(c.ratio_at_end_geomean)), Some(2)));
    columns.push(Column::new("predicted", each(&|c| ratio(c.predicted_ratio_geomean)), Some(1)));
    out += &fit(columns, width);
    if !r.trainable.is_empty() {
        out += "\n";
        out += &wrap(&format!("Trainable depth (within {} of the best depth <= 2 accuracy):", r.margin), width);
        out += &fit(trainable_columns(r), width);
    }
    if !r.claims.is_empty() {
        out += "\n";
        out += &claims_text(r, width);
    }
    out
}

/// The trainable-depth table: a column per group axis, then the figures.
fn trainable_columns(r: &SweepReport) -> Vec<Column> {
    let groups = &r.trainable;
    let each = |f: &dyn Fn(&TrainableDepth) -> String| groups.iter().map(f).collect::<Vec<String>>();
    // Every group has the same axes (all cell axes but depth); none when only depth varies.
    let mut columns: Vec<Column> = match groups.first() {
        Some(g) if !g.group.is_empty() => g
            .group
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Column::kept(&v.field.to_string(), each(&|g| g.group.get(i).map_or(String::new(), |v| v.value.clone())))
            })
            .collect(),
        _ => vec![Column::kept("activation", each(&|g| g.activation.clone()))],
    };
    columns.push(Column::new("shallow acc", each(&|g| opt(g.reference_accuracy, |a| format!("{a:.3}"))), Some(2)));
    columns
        .push(Column::kept("trainable depth", each(&|g| g.trainable_depth.map_or("none".into(), |d| d.to_string()))));
    columns.push(Column::new("deepest", each(&|g| g.deepest_swept.to_string()), Some(0)));
    let recovered = |g: &TrainableDepth| {
        let at: Vec<String> = g.recovered_at.iter().map(|d| d.to_string()).collect();
        if at.is_empty() { "-".into() } else { at.join(", ") }
    };
    columns.push(Column::new("recovered at", each(&recovered), Some(1)));
    columns
}

/// For each of the post's claims: supported or not, and what was measured; fitted to `width`.
pub fn claims_text(r: &SweepReport, width: Option<usize>) -> String {
    let claims = &r.claims;
    let each = |f: &dyn Fn(&ClaimCheck) -> String| claims.iter().map(f).collect::<Vec<String>>();
    let short = |c: &ClaimCheck| {
        let depths: Vec<String> = c
            .measured
            .iter()
            .map(|m| {
                let group: Vec<&str> = m.group.iter().map(|v| v.value.as_str()).collect();
                let depth = m.trainable_depth.map_or("none".into(), |d| d.to_string());
                format!("{} {depth} of {}", group.join(" "), m.deepest_swept).trim_start().to_string()
            })
            .collect();
        depths.join(", ")
    };
    let mut measured = Column::new("measured", each(&|c| c.note.clone()), Some(0));
    measured.short = Some(each(&short));
    let columns = vec![
        Column::kept("activation", each(&|c| c.activation.clone())),
        Column::kept("post claims", each(&|c| c.claimed.to_string())),
        measured,
        Column::kept(
            "verdict",
            each(&|c| {
                match c.verdict {
                    ClaimVerdict::Supported => "supported",
                    ClaimVerdict::NotSupported => "NOT supported",
                    ClaimVerdict::NotMeasured => "not measured",
                }
                .into()
            }),
        ),
    ];
    let held = claims.iter().filter(|c| c.verdict == ClaimVerdict::Supported).count();
    let unmeasured = claims.iter().filter(|c| c.verdict == ClaimVerdict::NotMeasured).count();
    let head = match unmeasured {
        0 => format!("The post's claims ({held} of {} supported by this sweep):", claims.len()),
        n => format!("The post's claims ({held} of {} supported by this sweep, {n} not measured):", claims.len()),
    };
    wrap(&head, width) + &fit(columns, width)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runner::sweep::{AxisField, AxisValue, CLAIMS, MeasuredDepth, Stat};

    const INITS: [&str; 2] = ["lecun_normal", "xavier_normal"];
    const DEPTHS: [usize; 3] = [1, 8, 16];

    fn value(field: AxisField, value: &str) -> AxisValue {
        AxisValue { field, value: value.into() }
    }

    /// The shape of `seed-claims`: the post's nine activations x three depths x two inits, lr an
    /// axis, `seeds` seeds per lr; every figure present, so every column has something to show.
    fn report(seeds: usize) -> SweepReport {
        let mut cells = Vec::new();
        for (a, _) in CLAIMS {
            for d in DEPTHS {
                for init in INITS {
                    let std = if seeds > 1 { 0.012 } else { 0.0 };
                    cells.push(CellReport {
                        values: vec![
                            value(AxisField::Activation, a),
                            value(AxisField::Depth, &d.to_string()),
                            value(AxisField::Init, init),
                        ],
                        jobs_total: 2 * seeds,
                        jobs_finished: 2 * seeds,
                        best_lr: Some("0.1".into()),
                        by_lr: Vec::new(),
                        test_accuracy: Some(Stat { n: seeds, mean: 0.96, std }),
                        test_loss: Some(Stat { n: seeds, mean: 0.1, std }),
                        nonfinite_test_loss: 0,
                        verdicts: BTreeMap::from([("not_learning".to_string(), seeds)]),
                        ratio_at_init_geomean: Some(1.23e-9),
                        ratio_at_end_geomean: Some(2.5e-9),
                        predicted_ratio_geomean: Some(9.48e-10),
                        chi1_mean: Some(0.25),
                    });
                }
            }
        }
        let trainable = CLAIMS
            .iter()
            .flat_map(|(a, _)| INITS.map(|init| (a, init)))
            .map(|(a, init)| TrainableDepth {
                group: vec![value(AxisField::Activation, a), value(AxisField::Init, init)],
                activation: a.to_string(),
                reference_accuracy: Some(0.97),
                points: Vec::new(),
                trainable_depth: Some(8),
                deepest_swept: 16,
                recovered_at: vec![16],
            })
            .collect();
        let claims = CLAIMS
            .iter()
            .map(|&(a, claimed)| ClaimCheck {
                activation: a.to_string(),
                claimed,
                measured: INITS
                    .iter()
                    .map(|init| MeasuredDepth {
                        group: vec![value(AxisField::Init, init)],
                        trainable_depth: Some(8),
                        deepest_swept: 16,
                        supported: Some(false),
                    })
                    .collect(),
                supported: false,
                verdict: ClaimVerdict::NotSupported,
                note: "init=lecun_normal: trainable to 8 of 16 (contradicts); \
                       init=xavier_normal: trainable to 8 of 16 (contradicts)"
                    .into(),
            })
            .collect();
        SweepReport {
            sweep: "seed-claims".into(),
            cell_axes: vec![AxisField::Activation, AxisField::Depth, AxisField::Init],
            lr_is_axis: true,
            margin: 0.05,
            steps: Some(1500),
            jobs_total: 54 * 2 * seeds,
            jobs_finished: 54 * 2 * seeds,
            jobs_unmatched: 0,
            cells,
            trainable,
            claims,
            rules: Vec::new(),
        }
    }

    fn header_of(text: &str, first: &str) -> String {
        text.lines()
            .find(|l| l.starts_with('│') && l.contains(first))
            .unwrap_or_else(|| panic!("no header with {first:?}: {text}"))
            .into()
    }

    #[test]
    fn terminal_tables_fit_the_width_and_keep_their_key_columns() {
        let r = report(3);
        for width in [60, 80, 100, 120, 140] {
            let text = tables(&r, Some(width));
            for line in text.lines() {
                assert!(line.chars().count() <= width, "{width} columns, but {} in {line:?}", line.chars().count());
            }
            let cells = header_of(&text, "test acc");
            for key in ["activation", "depth", "init", "test acc"] {
                assert!(cells.contains(key), "{width}: the cells table lost {key:?}: {cells}");
            }
            let trainable = header_of(&text, "trainable depth");
            assert!(trainable.contains("activation") && trainable.contains("init"), "{trainable}");
            let claims = header_of(&text, "post claims");
            assert!(claims.contains("activation") && claims.contains("verdict"), "{claims}");
            for (a, _) in CLAIMS {
                let rows = text.lines().filter(|l| l.contains(&format!("│ {a} "))).count();
                assert_eq!(rows, 6 + 2 + 1, "{width}: every cell, group and claim of {a} has its row");
            }
        }
        // 80 columns is narrower than every table in full: each says what it left out.
        let narrow = tables(&r, Some(80));
        assert_eq!(narrow.matches("(left out to fit 80 columns: ").count(), 3, "{narrow}");
        assert!(narrow.contains("left out to fit 80 columns: done, predicted"), "least needed first: {narrow}");
    }

    #[test]
    fn without_a_width_the_tables_are_whole() {
        let text = tables(&report(3), None);
        let cells = header_of(&text, "test acc");
        for column in ["done", "best lr", "± std", "verdicts", "ratio init", "ratio end", "predicted"] {
            assert!(cells.contains(column), "{column}: {cells}");
        }
        assert!(header_of(&text, "trainable depth").contains("recovered at"));
        assert!(text.contains("init=lecun_normal: trainable to 8 of 16 (contradicts)"), "{text}");
        assert!(!text.contains("left out"), "{text}");
    }

    #[test]
    fn a_width_between_takes_the_short_claims_before_leaving_columns_out() {
        let text = tables(&report(3), Some(120));
        assert!(header_of(&text, "post claims").contains("measured"), "{text}");
        assert!(text.contains("lecun_normal 8 of 16, xavier_normal 8 of 16"), "{text}");
    }

    #[test]
    fn one_seed_says_n_1_instead_of_a_zero_spread() {
        let one = tables(&report(1), None);
        let row = one.lines().find(|l| l.contains("│ tanh ")).unwrap();
        assert!(row.contains("n=1") && !row.contains("0.000"), "{row}");
        let three = tables(&report(3), None);
        let row = three.lines().find(|l| l.contains("│ tanh ")).unwrap();
        assert!(row.contains("0.012") && !row.contains("n=3"), "{row}");
    }

    #[test]
    fn verdict_counts_say_they_are_the_best_lrs() {
        let one = tables(&report(1), None);
        assert!(one.contains("verdicts: over the best lr's jobs only; done: every lr's"), "{one}");
        // A lone job's verdict is a name, not "not_learning 1" beside "done 2/2".
        let row = one.lines().find(|l| l.contains("│ tanh ")).unwrap();
        assert!(row.contains("2/2") && row.contains("not_learning ") && !row.contains("not_learning 1"), "{row}");
        let three = tables(&report(3), None);
        assert!(three.lines().find(|l| l.contains("│ tanh ")).unwrap().contains("not_learning 3"), "{three}");
        // Its cells hold not_learning: the rule that says what it means is printed above them.
        assert!(three.contains("verdicts: collapsing when at init"), "{three}");
        let mut no_lr = report(1);
        no_lr.lr_is_axis = false;
        assert!(tables(&no_lr, None).contains("verdicts: over each cell's finished jobs"));
    }

    #[test]
    fn plain_lines_wrap_between_words() {
        assert_eq!(wrap("aa bb cc", Some(5)), "aa bb\ncc\n");
        assert_eq!(wrap("aa bb cc", None), "aa bb cc\n");
        assert_eq!(wrap("abcdefgh ij", Some(4)), "abcdefgh\nij\n");
    }
}
