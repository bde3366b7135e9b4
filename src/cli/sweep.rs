//! `gradlab sweep` (submit a sweep: a preset, axes flags or a spec file) and `gradlab sweeps`
//! (list sweeps, or show one).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use super::client::{CliError, ServerArgs, connect, status};
use super::spec_args::{RunArgs, SpecArgs};
use super::submit::read_spec_file;
use super::sweep_watch;
use crate::api::convert_sweep::sweep_spec_to_pb;
use crate::api::pb;
use crate::runner::limits::Limits;
use crate::runner::sweep::{Axis, AxisField, PRESETS, SweepSpec, preset};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Start from a preset: seed-claims, seed-claims-mini, edge-of-chaos (see --list-presets).
    #[arg(long, conflicts_with = "spec_file")]
    pub preset: Option<String>,
    /// A sweep spec in TOML or JSON (name, base, axes).
    #[arg(long = "spec", value_name = "FILE")]
    pub spec_file: Option<PathBuf>,
    /// An axis FIELD=V1,V2,... (repeatable); replaces the preset's or file's axis of that field.
    /// Fields: activation, output_activation, depth, width, init, sigma_w, sigma_b, optimizer,
    /// lr, loss, batch, steps, seed.
    #[arg(long = "axis", value_name = "FIELD=VALUES", value_parser = parse_axis)]
    pub axes: Vec<Axis>,
    /// Base-job flags: override the preset's or file's base.
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Print the jobs the sweep expands to and exit without submitting.
    #[arg(long)]
    pub dry_run: bool,
    /// List the presets and exit.
    #[arg(long)]
    pub list_presets: bool,
    /// Follow the sweep: a bar for the sweep and a line per finished job.
    #[arg(long)]
    pub watch: bool,
    /// Plain lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

fn parse_axis(s: &str) -> Result<Axis, String> {
    let (field, values) = s.split_once('=').ok_or_else(|| format!("expected FIELD=V1,V2,..., got {s:?}"))?;
    let field: AxisField = field.parse()?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Err(format!("axis {field} has no values"));
    }
    Ok(Axis { field, values })
}

/// The sweep the flags describe: preset or file (or an empty base), the base flags applied,
/// the --axis flags replacing or adding axes.
pub fn build_sweep(args: &SweepArgs) -> Result<SweepSpec> {
    let mut spec = match (&args.preset, &args.spec_file) {
        (Some(name), _) => preset(name)?,
        (None, Some(path)) => read_spec_file(path, "sweep spec")?,
        (None, None) => SweepSpec { name: String::new(), base: Default::default(), axes: Vec::new() },
    };
    if let Some(name) = &args.run.name {
        spec.name = name.clone();
    }
    let job_name = std::mem::take(&mut spec.base.name);
    spec.base = args.run.apply(args.spec.apply(spec.base)?);
    spec.base.name = job_name;
    for axis in &args.axes {
        match spec.axes.iter_mut().find(|a| a.field == axis.field) {
            Some(a) => *a = axis.clone(),
            None => spec.axes.push(axis.clone()),
        }
    }
    if spec.axes.is_empty() {
        bail!(CliError("a sweep needs axes: give --preset, --spec FILE or --axis FIELD=VALUES".into()));
    }
    Ok(spec)
}

pub fn print_presets() {
    for (name, about) in PRESETS {
        println!("{name:<18} {about}");
    }
}

pub async fn run(args: SweepArgs, server: &ServerArgs) -> Result<()> {
    if args.list_presets {
        print_presets();
        return Ok(());
    }
    let spec = build_sweep(&args)?;
    if args.dry_run {
        // The server applies its own limit; here only the expansion itself is checked.
        let jobs = spec.expand(Limits::default().max_sweep_jobs)?;
        for j in &jobs {
            println!("{}", j.name);
        }
        eprintln!("{} jobs", jobs.len());
        return Ok(());
    }
    let mut client = connect(server).await?;
    let sweep = client.submit_sweep(sweep_spec_to_pb(&spec)).await.map_err(|e| args.spec.status_error(e))?.into_inner();
    let total = sweep.counts.map_or(0, |c| c.total);
    println!("{}", sweep.id);
    eprintln!(
        "sweep {} queued: {total} jobs (gradlab watch --sweep {id}; gradlab report {id})",
        sweep.id,
        id = sweep.id
    );
    if args.watch {
        let plain = args.plain || !std::io::stdout().is_terminal();
        let end = sweep_watch::watch(&mut client, sweep.id, plain, true).await?;
        return sweep_watch::finish(end);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// gradlab sweeps

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SweepsFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct SweepsArgs {
    /// Show this sweep in full (default: list sweeps, newest first).
    pub sweep: Option<i64>,
    /// At most this many sweeps (0: all).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = SweepsFormat::Table)]
    pub format: SweepsFormat,
}

pub fn sweep_state_name(s: &pb::Sweep) -> String {
    pb::SweepState::try_from(s.state)
        .unwrap_or(pb::SweepState::Unspecified)
        .as_str_name()
        .trim_start_matches("SWEEP_STATE_")
        .to_ascii_lowercase()
}

/// "30/36 done (2 running, 1 failed)".
pub fn counts_text(c: &pb::JobCounts) -> String {
    let done = c.succeeded + c.failed + c.cancelled;
    let mut extra = Vec::new();
    for (n, what) in [(c.running, "running"), (c.failed, "failed"), (c.cancelled, "cancelled")] {
        if n > 0 {
            extra.push(format!("{n} {what}"));
        }
    }
    let extra = if extra.is_empty() { String::new() } else { format!(" ({})", extra.join(", ")) };
    format!("{done}/{} done{extra}", c.total)
}

fn axes_text(spec: &pb::SweepSpec) -> String {
    spec.axes.iter().map(|a| format!("{} x{}", a.field, a.values.len())).collect::<Vec<_>>().join(", ")
}

fn sweep_json(s: &pb::Sweep) -> serde_json::Value {
    let c = s.counts.unwrap_or_default();
    let spec = s.spec.clone().unwrap_or_default();
    serde_json::json!({
        "id": s.id,
        "name": spec.name,
        "state": sweep_state_name(s),
        "counts": {"queued": c.queued, "running": c.running, "succeeded": c.succeeded, "failed": c.failed,
                   "cancelled": c.cancelled, "total": c.total},
        "axes": spec.axes.iter().map(|a| serde_json::json!({"field": a.field, "values": a.values})).collect::<Vec<_>>(),
        "created_ms": s.created_ms,
        "cancelled_ms": (s.cancelled_ms != 0).then_some(s.cancelled_ms),
        "finished_ms": (s.finished_ms != 0).then_some(s.finished_ms),
    })
}

pub async fn sweeps(args: SweepsArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    if let Some(id) = args.sweep {
        let s = client.get_sweep(pb::SweepId { id }).await.map_err(status)?.into_inner();
        match args.format {
            SweepsFormat::Json => println!("{}", serde_json::to_string_pretty(&sweep_json(&s))?),
            SweepsFormat::Table => {
                let spec = s.spec.clone().unwrap_or_default();
                println!("sweep {} {:?}: {}", s.id, spec.name, sweep_state_name(&s));
                println!("jobs: {}", counts_text(&s.counts.unwrap_or_default()));
                for a in &spec.axes {
                    println!("axis {}: {}", a.field, a.values.join(", "));
                }
            }
        }
        return Ok(());
    }
    let mut req = pb::ListSweepsRequest { page_size: 200, page_token: String::new() };
    let mut all = Vec::new();
    loop {
        let page = client.list_sweeps(req.clone()).await.map_err(status)?.into_inner();
        all.extend(page.sweeps);
        if page.next_page_token.is_empty() || (args.limit > 0 && all.len() >= args.limit) {
            break;
        }
        req.page_token = page.next_page_token;
    }
    if args.limit > 0 {
        all.truncate(args.limit);
    }
    match args.format {
        SweepsFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&all.iter().map(sweep_json).collect::<Vec<_>>())?)
        }
        SweepsFormat::Table => {
            let mut t = Table::new();
            t.load_style(UTF8_BORDERS_ONLY).set_header(["id", "name", "state", "jobs", "axes"]);
            for s in &all {
                let spec = s.spec.clone().unwrap_or_default();
                t.add_row([
                    s.id.to_string(),
                    spec.name.clone(),
                    sweep_state_name(s),
                    counts_text(&s.counts.unwrap_or_default()),
                    axes_text(&spec),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}
