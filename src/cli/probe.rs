//! `gradlab probe`: gradients of one network, measured and predicted, with no server.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;

use super::SpecArgs;
use crate::engine::meanfield::Prediction;
use crate::engine::spec::JobSpec;
use crate::engine::stats::LayerStats;
use crate::engine::theory;
use crate::engine::train::Trainer;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Training steps before measuring (0: the gradients at initialization).
    #[arg(long, default_value_t = 0)]
    pub steps: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One layer of the probe's answer.
#[derive(Serialize)]
struct LayerRow {
    /// 0 = first hidden layer; the last row is the output layer.
    layer: usize,
    kind: &'static str,
    fan_in: usize,
    fan_out: usize,
    #[serde(flatten)]
    stats: LayerStats,
    /// grad_norm over the last hidden layer's grad_norm.
    ratio_to_last_hidden: Option<f64>,
    /// The mean-field prediction of that ratio (hidden layers only).
    predicted_ratio: Option<f64>,
    /// Mean-field mean squared pre-activation q_l.
    predicted_q: Option<f64>,
}

pub fn run(args: &ProbeArgs) -> Result<()> {
    // A probe measures: no held-out split, every example can be in the batch.
    let base = JobSpec { steps: args.steps, test_fraction: 0.0, eval_every: 0, ..JobSpec::default() };
    let spec = args.spec.apply(base)?;
    spec.validate().map_err(|e| args.spec.field_error(&e))?;
    let mut trainer = Trainer::<f32>::new(&spec).context("cannot build the probe")?;
    while !trainer.finished() {
        trainer.step();
    }
    let rec = trainer.measure();
    let dims = trainer.net().dims();
    let depth = spec.depth();
    let width = spec.hidden[depth - 1];
    let prediction = theory::for_spec(&spec, dims[0], trainer.input_second_moment()).ok();
    let last_hidden = rec.layers[depth - 1].grad_norm;
    let rows: Vec<LayerRow> = rec
        .layers
        .iter()
        .enumerate()
        .map(|(l, s)| {
            let hidden = l < depth;
            let p = prediction.as_ref().filter(|_| hidden).map(|p| &p.layers[l]);
            LayerRow {
                layer: l,
                kind: if hidden { "hidden" } else { "output" },
                fan_in: dims[l],
                fan_out: dims[l + 1],
                stats: *s,
                ratio_to_last_hidden: hidden.then(|| s.grad_norm / last_hidden),
                predicted_ratio: p.map(|p| p.weight_grad_ratio_to_last),
                predicted_q: p.map(|p| p.q),
            }
        })
        .collect();
    let (sigma_w, sigma_b) = spec.init.mean_field_sigmas(width, width);
    match args.format {
        Format::Json => {
            let out = json!({
                "spec": spec,
                "steps": trainer.steps_done(),
                "params": trainer.net().param_count(),
                "loss": rec.loss,
                "accuracy": rec.accuracy,
                "grad_norm": rec.grad_norm,
                "mean_field": prediction.as_ref().map(|p| mean_field_json(p, sigma_w, sigma_b)),
                "layers": rows,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            print_table(&spec, trainer.steps_done(), rec.loss, &rows, prediction.as_ref(), sigma_w, sigma_b)
        }
    }
    Ok(())
}

fn mean_field_json(p: &Prediction, sigma_w: f64, sigma_b: f64) -> serde_json::Value {
    json!({
        "sigma_w": sigma_w,
        "sigma_b": sigma_b,
        "fixed_point": p.fixed_point,
        "chi1": p.chi1,
        "regime": p.regime,
        "depth_scale": if p.depth_scale.is_finite() { json!(p.depth_scale) } else { json!("inf") },
        "first_last_ratio": p.weight_first_last_ratio,
    })
}

fn print_table(
    spec: &JobSpec,
    steps: u64,
    loss: f64,
    rows: &[LayerRow],
    p: Option<&Prediction>,
    sigma_w: f64,
    sigma_b: f64,
) {
    println!(
        "{} x{} hidden ({}), init {}, dataset {}, batch {}, seed {}, after {steps} steps: loss {loss:.4}",
        spec.activation,
        spec.depth(),
        spec.hidden.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(","),
        spec.init,
        spec.dataset,
        spec.batch,
        spec.seed
    );
    if let Some(p) = p {
        println!(
            "mean field: sigma_w {sigma_w:.4}, sigma_b {sigma_b:.4}, fixed point {:?}, chi_1 {:.4} ({:?}), depth scale {}, predicted first/last {:.3e}",
            p.fixed_point,
            p.chi1,
            p.regime,
            if p.depth_scale < 1e6 { format!("{:.2} layers", p.depth_scale) } else { "unbounded".into() },
            p.weight_first_last_ratio
        );
    }
    println!(
        "{:>5} {:>6} {:>6} {:>6} {:>11} {:>11} {:>11} {:>11} {:>9} {:>8} {:>7} {:>6}",
        "layer",
        "kind",
        "fan_in",
        "fan_out",
        "grad_norm",
        "ratio",
        "predicted",
        "err_norm",
        "act_std",
        "satur",
        "dead",
        "nonfin"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3e}"));
    for r in rows {
        println!(
            "{:>5} {:>6} {:>6} {:>6} {:>11.3e} {:>11} {:>11} {:>11.3e} {:>9.4} {:>7.1}% {:>6.1}% {:>6}",
            r.layer,
            r.kind,
            r.fan_in,
            r.fan_out,
            r.stats.grad_norm,
            opt(r.ratio_to_last_hidden),
            opt(r.predicted_ratio),
            r.stats.err_norm,
            r.stats.act_std,
            r.stats.saturated * 100.0,
            r.stats.dead * 100.0,
            r.stats.nonfinite
        );
    }
}
