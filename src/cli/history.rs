//! `gradlab history`: a job's stored series, for people, pandas and R.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use clap::{Args, ValueEnum};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::json;

use super::client::{CliError, ServerArgs, connect, status};
use super::fmt::sci;
use crate::api::pb;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HistoryFormat {
    Table,
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub job: i64,
    /// Layer indices (0 = first hidden layer): 0,3,7. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<u32>,
    /// Metrics: grad_norm, bias_grad_norm, err_norm, grad_mean_abs, grad_max_abs, weight_norm,
    /// update_ratio, act_mean, act_std, saturated, dead, nonfinite, and per step loss, accuracy,
    /// lr, global_grad_norm. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Step range A..B (inclusive; either end may be left out).
    #[arg(long, value_parser = parse_range)]
    pub steps: Option<(Option<u64>, Option<u64>)>,
    /// At most N points per series, keeping each bucket's min, max and last value.
    #[arg(long, default_value_t = 0)]
    pub max_points: u32,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    pub format: HistoryFormat,
}

pub fn parse_range(s: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let num = |t: &str| -> Result<Option<u64>, String> {
        let t = t.trim().trim_start_matches('=');
        if t.is_empty() { Ok(None) } else { t.parse().map(Some).map_err(|_| format!("not a step number: {t:?}")) }
    };
    let (a, b) = (num(a)?, num(b)?);
    if let (Some(x), Some(y)) = (a, b)
        && x > y
    {
        return Err(format!("empty range {s:?}"));
    }
    Ok((a, b))
}

fn request(args: &HistoryArgs) -> pb::HistoryRequest {
    let (from_step, to_step) = args.steps.unwrap_or((None, None));
    pb::HistoryRequest {
        job_id: args.job,
        layers: args.layers.clone(),
        metrics: args.metrics.clone(),
        from_step,
        to_step,
        max_points: args.max_points,
    }
}

/// Streams the history (`StreamHistory`) and writes it as it arrives: CSV and JSON Lines hold
/// one chunk of the stream in memory whatever the job's length; the table gathers every row
/// first (it is for people, on short selections).
pub async fn run(args: HistoryArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    let mut stream = client.stream_history(request(&args)).await.map_err(status)?.into_inner();
    let downsampled = args.max_points > 0;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut table = TableRows::default();
    let mut any = false;
    if let HistoryFormat::Csv = args.format {
        out.write_all(if downsampled { b"step,layer,metric,value,min,max\n" } else { b"step,layer,metric,value\n" })?;
    }
    while let Some(chunk) = stream.message().await.map_err(status)? {
        any |= !chunk.steps.is_empty();
        match args.format {
            HistoryFormat::Csv => write_csv(&mut out, &chunk)?,
            HistoryFormat::Json => write_json_lines(&mut out, &chunk)?,
            HistoryFormat::Table => table.add(&chunk),
        }
    }
    if !any {
        return Err(CliError(format!("job {} has no recorded history for that selection", args.job)).into());
    }
    if let HistoryFormat::Table = args.format {
        writeln!(out, "{}", table.render())?;
    }
    out.flush()?;
    Ok(())
}

/// Long format, one value a row: step,layer,metric,value (and min,max when downsampled), in
/// stream order: series group (step scalars, then layers), step, metric.
pub fn write_csv(out: &mut impl Write, c: &pb::HistoryChunk) -> std::io::Result<()> {
    let layer = c.layer.map_or(String::new(), |l| l.to_string());
    for (i, step) in c.steps.iter().enumerate() {
        for col in &c.columns {
            write!(out, "{step},{layer},{},{:?}", col.metric, col.values[i])?;
            if c.downsampled {
                write!(out, ",{:?},{:?}", col.min[i], col.max[i])?;
            }
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// JSON Lines: a line per metric of each chunk (`{"layer", "metric", "steps", "values"}`, with
/// `min` and `max` when downsampled; pieces of one series follow each other in step order),
/// and a line of evaluations (`{"evals": [...]}`) at the end.
fn write_json_lines(out: &mut impl Write, c: &pb::HistoryChunk) -> Result<()> {
    for col in &c.columns {
        let mut o = json!({"layer": c.layer, "metric": col.metric, "steps": c.steps, "values": floats(&col.values)});
        if c.downsampled {
            o["min"] = json!(floats(&col.min));
            o["max"] = json!(floats(&col.max));
        }
        serde_json::to_writer(&mut *out, &o)?;
        out.write_all(b"\n")?;
    }
    if !c.evals.is_empty() {
        let evals: Vec<_> = c
            .evals
            .iter()
            .map(|e| json!({"step": e.step, "test_loss": floats(&[e.test_loss])[0], "test_accuracy": floats(&[e.test_accuracy])[0]}))
            .collect();
        serde_json::to_writer(&mut *out, &json!({ "evals": evals }))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A table for people: a row per step, a column per (layer, metric).
#[derive(Default)]
struct TableRows {
    names: Vec<String>,
    rows: BTreeMap<u64, Vec<String>>,
}

impl TableRows {
    fn add(&mut self, c: &pb::HistoryChunk) {
        for col in &c.columns {
            let name = c.layer.map_or(col.metric.clone(), |l| format!("L{l} {}", col.metric));
            let k = match self.names.iter().position(|n| *n == name) {
                Some(k) => k,
                None => {
                    self.names.push(name);
                    self.names.len() - 1
                }
            };
            for (step, v) in c.steps.iter().zip(&col.values) {
                let row = self.rows.entry(*step).or_default();
                if row.len() <= k {
                    row.resize(k + 1, String::new());
                }
                row[k] = sci(*v);
            }
        }
    }

    fn render(self) -> Table {
        let mut t = Table::new();
        t.load_style(UTF8_BORDERS_ONLY);
        t.set_header(std::iter::once("step".to_string()).chain(self.names.iter().cloned()));
        let n = self.names.len();
        for (step, mut cells) in self.rows {
            cells.resize(n, String::new());
            t.add_row(std::iter::once(step.to_string()).chain(cells));
        }
        t
    }
}

/// JSON has no NaN or infinity: those become strings.
fn floats(v: &[f64]) -> Vec<serde_json::Value> {
    v.iter().map(|x| if x.is_finite() { json!(x) } else { json!(x.to_string()) }).collect()
}
