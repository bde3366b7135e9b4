//! `gradlab ls`, `show` and `cancel`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::json;

use super::client::{CliError, ServerArgs, connect, status};
use super::fmt::{sci, shape, state_name, summary_line, verdict_name};
use super::sweep::{counts_text, sweep_state_name};
use crate::api::pb;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only jobs in these states (queued, running, succeeded, failed, cancelled).
    #[arg(long, value_delimiter = ',')]
    pub state: Vec<String>,
    #[arg(long)]
    pub activation: Option<String>,
    #[arg(long)]
    pub min_depth: Option<u32>,
    #[arg(long)]
    pub max_depth: Option<u32>,
    /// KEY or KEY=VALUE.
    #[arg(long)]
    pub label: Option<String>,
    /// healthy, vanishing, exploding, dead, not_learning or collapsing.
    #[arg(long)]
    pub verdict: Option<String>,
    /// Jobs whose name contains this.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub sweep: Option<i64>,
    /// Conditions on the spec, results and labels, e.g.
    /// "test_accuracy >= 0.9 and depth <= 8 and label.team != vision and finished > now-7d"
    /// (fields: id, sweep, depth, width, steps, test_accuracy, test_loss, created, started,
    /// finished, state, activation, verdict, name, label.KEY; README "Finding runs").
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Sort by created, test_accuracy, test_loss, depth, width, steps, started or finished
    /// (smallest first; jobs without a value last).
    #[arg(long, value_name = "KEY", conflicts_with = "oldest_first")]
    pub sort: Option<String>,
    /// With --sort: largest first.
    #[arg(long, requires = "sort")]
    pub desc: bool,
    /// Oldest first (default: newest first).
    #[arg(long)]
    pub oldest_first: bool,
    /// At most this many jobs (0: all).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

fn parse_state(s: &str) -> Result<i32> {
    let name = format!("JOB_STATE_{}", s.trim().to_ascii_uppercase());
    pb::JobState::from_str_name(&name).map(|v| v as i32).ok_or_else(|| {
        CliError(format!("--state: unknown state {s:?} (queued, running, succeeded, failed, cancelled)")).into()
    })
}

fn parse_verdict(s: &str) -> Result<i32> {
    let name = format!("VERDICT_{}", s.trim().to_ascii_uppercase());
    pb::Verdict::from_str_name(&name).map(|v| v as i32).ok_or_else(|| {
        CliError(format!(
            "--verdict: unknown verdict {s:?} (healthy, vanishing, exploding, dead, not_learning, collapsing)"
        ))
        .into()
    })
}

pub async fn ls(args: LsArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    let mut req = pb::ListJobsRequest {
        states: args.state.iter().map(|s| parse_state(s)).collect::<Result<_>>()?,
        activation: args.activation.clone().unwrap_or_default(),
        min_depth: args.min_depth,
        max_depth: args.max_depth,
        label: args.label.clone().unwrap_or_default(),
        verdict: args.verdict.as_deref().map(parse_verdict).transpose()?.unwrap_or(0),
        name_contains: args.name.clone().unwrap_or_default(),
        sweep_id: args.sweep,
        oldest_first: args.oldest_first,
        page_size: 500,
        page_token: String::new(),
        finished_before_ms: None,
        filter: args.filter.clone().unwrap_or_default(),
        sort_by: args.sort.clone().unwrap_or_default(),
        descending: args.desc,
    };
    let mut jobs = Vec::new();
    loop {
        let page = client.list_jobs(req.clone()).await.map_err(status)?.into_inner();
        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() || (args.limit > 0 && jobs.len() >= args.limit) {
            break;
        }
        req.page_token = page.next_page_token;
    }
    if args.limit > 0 {
        jobs.truncate(args.limit);
    }
    print_jobs(&jobs, args.format)
}

const COLUMNS: [&str; 9] = ["id", "name", "activation", "depth", "width", "state", "progress", "verdict", "test_acc"];

fn row(j: &pb::Job) -> [String; 9] {
    let spec = j.spec.clone().unwrap_or_default();
    let width = match spec.hidden.as_slice() {
        [] => String::new(),
        h if h.iter().all(|w| *w == h[0]) => h[0].to_string(),
        h => h.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(","),
    };
    let pct = if j.total_steps > 0 { 100.0 * j.steps_done as f64 / j.total_steps as f64 } else { 0.0 };
    [
        j.id.to_string(),
        spec.name.clone(),
        spec.activation.clone(),
        spec.hidden.len().to_string(),
        width,
        state_name(j),
        format!("{pct:.0}%"),
        j.summary.as_ref().map_or("-".into(), |s| verdict_name(s.verdict)),
        j.summary.as_ref().map_or("-".into(), |s| format!("{:.3}", s.test_accuracy)),
    ]
}

pub fn print_jobs(jobs: &[pb::Job], format: ListFormat) -> Result<()> {
    match format {
        ListFormat::Table => {
            let mut t = Table::new();
            t.load_style(UTF8_BORDERS_ONLY).set_header(COLUMNS);
            for j in jobs {
                t.add_row(row(j));
            }
            println!("{t}");
        }
        ListFormat::Csv => {
            println!("{}", COLUMNS.join(","));
            for j in jobs {
                println!("{}", row(j).iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            }
        }
        ListFormat::Json => {
            let rows: Vec<_> = jobs.iter().map(job_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn opt_f(v: f64) -> serde_json::Value {
    if v.is_finite() { json!(v) } else { json!(v.to_string()) }
}

pub fn job_json(j: &pb::Job) -> serde_json::Value {
    let spec = j.spec.clone().unwrap_or_default();
    json!({
        "id": j.id,
        "name": spec.name,
        "state": state_name(j),
        "steps_done": j.steps_done,
        "total_steps": j.total_steps,
        "created_ms": j.created_ms,
        "started_ms": j.started_ms,
        "finished_ms": j.finished_ms,
        "error": j.error,
        "sweep_id": j.sweep_id,
        "attempt": j.attempt,
        "resumed_from": j.resumed_from,
        "parent_id": j.parent_id,
        "fork_step": j.fork_step,
        "checkpoints": j.checkpoints.iter().map(|c| json!({"step": c.step, "bytes": c.bytes, "created_ms": c.created_ms})).collect::<Vec<_>>(),
        "spec": {
            "activation": spec.activation, "output_activation": spec.output_activation, "hidden": spec.hidden,
            "init": spec.init, "sigma_w": spec.sigma_w, "sigma_b": spec.sigma_b, "loss": spec.loss,
            "optimizer": spec.optimizer, "lr": spec.lr, "schedule": spec.schedule, "batch": spec.batch,
            "steps": spec.steps, "dataset": spec.dataset, "seed": spec.seed, "labels": spec.labels,
        },
        "summary": j.summary.as_ref().map(|s| json!({
            "test_accuracy": opt_f(s.test_accuracy), "test_loss": opt_f(s.test_loss),
            "train_accuracy": opt_f(s.train_accuracy), "train_loss": opt_f(s.train_loss),
            "verdict": verdict_name(s.verdict), "verdict_reason": s.verdict_reason,
            "ratio_at_init": s.ratio_at_init.map(opt_f), "ratio_at_end": s.ratio_at_end.map(opt_f),
            "mean_field": s.mean_field.as_ref().map(|m| json!({
                "chi1": opt_f(m.chi1), "regime": m.regime, "q_star": m.q_star.map(opt_f), "depth_scale": opt_f(m.depth_scale),
                "first_last_ratio": opt_f(m.first_last_ratio),
            })),
        })),
    })
}

/// Where the job's latest claim went on from and the checkpoints it has, if either is worth
/// saying: "attempt 2, resumed from step 20000; checkpoints at steps 20000 (1.2 MB), 30000 (...)".
fn resume_line(job: &pb::Job) -> Option<String> {
    let fork = job.parent_id.zip(job.fork_step);
    let resumed = match (job.resumed_from, fork) {
        // A fork's first attempt starts at its fork step: that is no resume.
        (Some(step), Some((_, at))) if step == at && job.attempt <= 1 => None,
        (Some(step), _) => Some(format!("attempt {}, resumed from its checkpoint at step {step}", job.attempt)),
        (None, _) if job.attempt > 1 => {
            Some(format!("attempt {}, started again from step 0 (no checkpoint)", job.attempt))
        }
        (None, _) => None,
    };
    let resumed = match (fork, resumed) {
        (Some((parent, at)), r) => Some(
            [Some(format!("fork of job {parent} at step {at} (its history before that step is the parent's)")), r]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (None, r) => r,
    };
    let checkpoints = (!job.checkpoints.is_empty()).then(|| {
        let list: Vec<String> =
            job.checkpoints.iter().map(|c| format!("{} ({})", c.step, crate::cli::fmt::bytes(c.bytes))).collect();
        format!("checkpoints at steps {}", list.join(", "))
    });
    match (resumed, checkpoints) {
        (None, None) => None,
        (Some(r), None) => Some(r),
        (None, Some(c)) => Some(c),
        (Some(r), Some(c)) => Some(format!("{r}; {c}")),
    }
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    pub job: i64,
    /// json for machines.
    #[arg(long)]
    pub json: bool,
}

pub async fn show(args: ShowArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    let job = client.get_job(pb::JobId { id: args.job }).await.map_err(status)?.into_inner();
    // The last recorded value of every layer's metrics: one bucket per series keeps the last.
    let hist = client
        .get_history(pb::HistoryRequest { job_id: args.job, max_points: 1, ..Default::default() })
        .await
        .map_err(status)?
        .into_inner();
    let last = |layer: u32, metric: &str| {
        hist.series.iter().find(|s| s.layer == Some(layer) && s.metric == metric).and_then(|s| s.values.last().copied())
    };
    let spec = job.spec.clone().unwrap_or_default();
    let depth = spec.hidden.len() as u32;
    let mean_field = job.summary.as_ref().and_then(|s| s.mean_field.clone());
    if args.json {
        let layers: Vec<_> = (0..=depth)
            .map(|l| {
                let mut o = serde_json::Map::new();
                o.insert("layer".into(), json!(l));
                for s in hist.series.iter().filter(|s| s.layer == Some(l)) {
                    o.insert(s.metric.clone(), s.values.last().map_or(json!(null), |v| opt_f(*v)));
                }
                if let Some(r) = mean_field.as_ref().and_then(|m| m.layer_ratios.get(l as usize)) {
                    o.insert("predicted_ratio".into(), opt_f(*r));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        let mut v = job_json(&job);
        v["layers"] = json!(layers);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{}", summary_line(&job));
    println!(
        "spec: {} init {} loss {} optimizer {} lr {} schedule {} batch {} steps {} dataset {} seed {}",
        shape(&spec),
        spec.init,
        spec.loss,
        spec.optimizer,
        spec.lr.unwrap_or_default(),
        spec.schedule,
        spec.batch.unwrap_or_default(),
        spec.steps.unwrap_or_default(),
        spec.dataset,
        spec.seed.unwrap_or_default()
    );
    if !spec.labels.is_empty() {
        let labels: Vec<String> = spec.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("labels: {}", labels.join(" "));
    }
    if let Some(line) = resume_line(&job) {
        println!("{line}");
    }
    if let Some(m) = &mean_field {
        println!(
            "mean field: sigma_w {:.4} sigma_b {:.4} chi_1 {:.4} ({}), fixed point {}, depth scale {}",
            m.sigma_w,
            m.sigma_b,
            m.chi1,
            m.regime,
            m.fixed_point,
            if m.depth_scale.is_finite() && m.depth_scale < 1e6 {
                format!("{:.2} layers", m.depth_scale)
            } else {
                "unbounded".into()
            }
        );
    }
    let last_hidden = depth.checked_sub(1).and_then(|l| last(l, "grad_norm"));
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY).set_header([
        "layer",
        "grad_norm",
        "ratio",
        "predicted",
        "err_norm",
        "update_ratio",
        "act_std",
        "saturated",
        "dead",
    ]);
    for l in 0..=depth {
        let g = last(l, "grad_norm");
        let ratio = if l < depth { g.zip(last_hidden).map(|(g, h)| g / h) } else { None };
        let predicted = mean_field.as_ref().and_then(|m| m.layer_ratios.get(l as usize).copied());
        let cell = |v: Option<f64>| v.map_or("-".to_string(), sci);
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        t.add_row([
            if l == depth { "output".to_string() } else { l.to_string() },
            cell(g),
            cell(ratio),
            cell(predicted),
            cell(last(l, "err_norm")),
            cell(last(l, "update_ratio")),
            last(l, "act_std").map_or("-".into(), |v| format!("{v:.4}")),
            pct(last(l, "saturated")),
            pct(last(l, "dead")),
        ]);
    }
    println!("{t}");
    Ok(())
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// Job ids.
    #[arg(required_unless_present = "sweep")]
    pub jobs: Vec<i64>,
    /// Cancel every unfinished job of this sweep.
    #[arg(long, conflicts_with = "jobs")]
    pub sweep: Option<i64>,
}

pub async fn cancel(args: CancelArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    if let Some(id) = args.sweep {
        let s = client.cancel_sweep(pb::SweepId { id }).await.map_err(status)?.into_inner();
        println!("sweep {id} {}: {}", sweep_state_name(&s), counts_text(&s.counts.unwrap_or_default()));
        return Ok(());
    }
    let mut failed = Vec::new();
    for id in &args.jobs {
        match client.cancel_job(pb::JobId { id: *id }).await {
            Ok(j) => println!("job {id} {}", state_name(j.get_ref())),
            Err(e) => {
                eprintln!("job {id}: {:?}: {}", e.code(), e.message());
                failed.push(*id);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError(format!("could not cancel {} of {} jobs", failed.len(), args.jobs.len())).into())
    }
}
