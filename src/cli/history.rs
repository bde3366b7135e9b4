//! `gradlab history`: a job's stored series, for people, pandas and R.

use std::collections::BTreeMap;

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

pub async fn fetch(args: &HistoryArgs, server: &ServerArgs) -> Result<pb::History> {
    let mut client = connect(server).await?;
    let (from_step, to_step) = args.steps.unwrap_or((None, None));
    let req = pb::HistoryRequest {
        job_id: args.job,
        layers: args.layers.clone(),
        metrics: args.metrics.clone(),
        from_step,
        to_step,
        max_points: args.max_points,
    };
    Ok(client.get_history(req).await.map_err(status)?.into_inner())
}

pub async fn run(args: HistoryArgs, server: &ServerArgs) -> Result<()> {
    let h = fetch(&args, server).await?;
    if h.series.is_empty() {
        return Err(CliError(format!("job {} has no recorded history for that selection", args.job)).into());
    }
    let downsampled = args.max_points > 0;
    match args.format {
        HistoryFormat::Csv => print!("{}", to_csv(&h, downsampled)),
        HistoryFormat::Json => {
            let series: Vec<_> = h
                .series
                .iter()
                .map(|s| {
                    let mut o =
                        json!({"layer": s.layer, "metric": s.metric, "steps": s.steps, "values": floats(&s.values)});
                    if downsampled {
                        o["min"] = json!(floats(&s.min));
                        o["max"] = json!(floats(&s.max));
                    }
                    o
                })
                .collect();
            let evals: Vec<_> = h
                .evals
                .iter()
                .map(|e| json!({"step": e.step, "test_loss": e.test_loss, "test_accuracy": e.test_accuracy}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"job_id": h.job_id, "series": series, "evals": evals}))?
            );
        }
        HistoryFormat::Table => {
            let name = |s: &pb::Series| s.layer.map_or(s.metric.clone(), |l| format!("L{l} {}", s.metric));
            let mut rows: BTreeMap<u64, Vec<String>> = BTreeMap::new();
            let n = h.series.len();
            for (i, s) in h.series.iter().enumerate() {
                for (step, v) in s.steps.iter().zip(&s.values) {
                    rows.entry(*step).or_insert_with(|| vec!["".into(); n])[i] = sci(*v);
                }
            }
            let mut t = Table::new();
            t.load_style(UTF8_BORDERS_ONLY);
            t.set_header(std::iter::once("step".to_string()).chain(h.series.iter().map(name)));
            for (step, cells) in rows {
                t.add_row(std::iter::once(step.to_string()).chain(cells));
            }
            println!("{t}");
        }
    }
    Ok(())
}

/// JSON has no NaN or infinity: those become strings.
fn floats(v: &[f64]) -> Vec<serde_json::Value> {
    v.iter().map(|x| if x.is_finite() { json!(x) } else { json!(x.to_string()) }).collect()
}

/// Long format, one value a row: step,layer,metric,value (and min,max when downsampled).
pub fn to_csv(h: &pb::History, downsampled: bool) -> String {
    let mut out =
        String::from(if downsampled { "step,layer,metric,value,min,max\n" } else { "step,layer,metric,value\n" });
    for s in &h.series {
        let layer = s.layer.map_or(String::new(), |l| l.to_string());
        for (i, (step, v)) in s.steps.iter().zip(&s.values).enumerate() {
            out += &format!("{step},{layer},{},{v:?}", s.metric);
            if downsampled {
                out += &format!(",{:?},{:?}", s.min[i], s.max[i]);
            }
            out.push('\n');
        }
    }
    out
}
