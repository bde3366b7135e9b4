//! `gradlab report`: a sweep's report as terminal tables, JSON, CSV or markdown, and its plots.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use super::client::{CliError, Client, ServerArgs, connect, status};
use super::report_plot::write_plots;
use crate::api::convert_sweep::report_from_pb;
use crate::api::pb;
use crate::runner::sweep::{SweepReport, group_text};

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
    print!("{}", render(&report, args.format)?);
    if let Some(dir) = &args.plot {
        for path in write_all(&report, dir)? {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

pub fn render(report: &SweepReport, format: ReportFormat) -> Result<String> {
    Ok(match format {
        ReportFormat::Table => tables(report),
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

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".into(), f)
}

/// The report for a terminal: cells, trainable depth, claims.
pub fn tables(r: &SweepReport) -> String {
    let mut out = format!(
        "sweep {}: {} jobs, {} finished{}; margin {}; budget {}\n",
        r.sweep,
        r.jobs_total,
        r.jobs_finished,
        if r.jobs_unmatched > 0 { format!(", {} unmatched", r.jobs_unmatched) } else { String::new() },
        r.margin,
        r.steps.map_or("varies".to_string(), |s| format!("{s} steps")),
    );
    let mut t = Table::new();
    let mut head: Vec<String> = r.cell_axes.iter().map(|f| f.to_string()).collect();
    if r.lr_is_axis {
        head.push("best lr".into());
    }
    head.extend(["done", "test acc", "± std", "verdicts", "ratio init", "ratio end", "predicted"].map(String::from));
    t.load_style(UTF8_BORDERS_ONLY).set_header(head);
    for c in &r.cells {
        let mut row: Vec<String> = c.values.iter().map(|v| v.value.clone()).collect();
        if r.lr_is_axis {
            row.push(c.best_lr.clone().unwrap_or_else(|| "-".into()));
        }
        row.push(format!("{}/{}", c.jobs_finished, c.jobs_total));
        row.push(c.test_accuracy.map_or("-".into(), |a| format!("{:.3}", a.mean)));
        row.push(c.test_accuracy.map_or("-".into(), |a| format!("{:.3}", a.std)));
        let verdicts: Vec<String> = c.verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
        row.push(if verdicts.is_empty() { "-".into() } else { verdicts.join(", ") });
        for x in [c.ratio_at_init_geomean, c.ratio_at_end_geomean, c.predicted_ratio_geomean] {
            row.push(opt(x, |v| format!("{v:.2e}")));
        }
        t.add_row(row);
    }
    out += &format!("{t}\n");
    if !r.trainable.is_empty() {
        let mut t = Table::new();
        t.load_style(UTF8_BORDERS_ONLY).set_header([
            "group",
            "shallow acc",
            "trainable depth",
            "deepest",
            "recovered at",
        ]);
        for g in &r.trainable {
            let name = if g.group.is_empty() { format!("activation={}", g.activation) } else { group_text(&g.group) };
            let recovered: Vec<String> = g.recovered_at.iter().map(|d| d.to_string()).collect();
            t.add_row([
                name,
                opt(g.reference_accuracy, |a| format!("{a:.3}")),
                g.trainable_depth.map_or("none".into(), |d| d.to_string()),
                g.deepest_swept.to_string(),
                if recovered.is_empty() { "-".into() } else { recovered.join(", ") },
            ]);
        }
        out += &format!("\nTrainable depth (within {} of the best depth <= 2 accuracy):\n{t}\n", r.margin);
    }
    if !r.claims.is_empty() {
        out += "\n";
        out += &claims_text(r);
    }
    out
}

/// For each of the post's claims: supported or not, and what was measured.
pub fn claims_text(r: &SweepReport) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY).set_header(["activation", "post claims", "measured", "verdict"]);
    for c in &r.claims {
        t.add_row([
            c.activation.clone(),
            c.claimed.to_string(),
            c.note.clone(),
            if c.supported { "supported".into() } else { "NOT supported".to_string() },
        ]);
    }
    let held = r.claims.iter().filter(|c| c.supported).count();
    format!("The post's claims ({held} of {} supported by this sweep):\n{t}\n", r.claims.len())
}
