//! `gradlab plot`: pictures of one job's history.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::client::{CliError, ServerArgs, connect, status};
use super::fmt::{shape, state_name};
use super::plot::{self, Size};
use crate::api::pb;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// log10 gradient norm, layers down, steps across.
    Heatmap,
    /// Per-layer gradient-norm curves on a log axis.
    Lines,
    /// Loss and accuracy, train and test.
    Loss,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    pub job: i64,
    /// Output file: .png or .svg.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value_t = Kind::Heatmap)]
    pub kind: Kind,
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    #[arg(long, default_value_t = 700)]
    pub height: u32,
    /// Steps drawn at most (longer histories are downsampled, keeping each bucket's extremes).
    #[arg(long, default_value_t = 2000)]
    pub max_points: u32,
}

pub async fn run(args: PlotArgs, server: &ServerArgs) -> Result<()> {
    plot::ImageFormat::from_path(&args.output)?;
    let mut client = connect(server).await?;
    let job = client.get_job(pb::JobId { id: args.job }).await.map_err(status)?.into_inner();
    let spec = job.spec.clone().unwrap_or_default();
    let what = format!(
        "job {} — {}, init {}, {} lr {}, batch {}, {} ({})",
        job.id,
        shape(&spec),
        spec.init,
        spec.optimizer,
        spec.lr.unwrap_or_default(),
        spec.batch.unwrap_or_default(),
        spec.dataset,
        state_name(&job)
    );
    let metrics = match args.kind {
        Kind::Heatmap | Kind::Lines => vec!["grad_norm".to_string()],
        Kind::Loss => vec!["loss".to_string(), "accuracy".to_string()],
    };
    let req = pb::HistoryRequest { job_id: args.job, metrics, max_points: args.max_points, ..Default::default() };
    let h = client.get_history(req).await.map_err(status)?.into_inner();
    let size = Size { width: args.width, height: args.height };
    let nothing = || CliError(format!("job {} has no recorded steps to plot yet", args.job));
    match args.kind {
        Kind::Heatmap | Kind::Lines => {
            let mut layers: Vec<&pb::Series> = h.series.iter().filter(|s| s.layer.is_some()).collect();
            layers.sort_by_key(|s| s.layer);
            let steps = layers.first().ok_or_else(nothing)?.steps.clone();
            if steps.is_empty() {
                return Err(nothing().into());
            }
            let depth = spec.hidden.len() as u32;
            // Layers 0..depth are hidden; the one after them is the output layer.
            let is_output = |s: &pb::Series| s.layer == Some(depth);
            if let Kind::Heatmap = args.kind {
                // The bucket's largest norm: a spike must show.
                let rows: Vec<(String, Vec<f64>)> = layers
                    .iter()
                    .map(|s| {
                        let name = if is_output(s) { "output".into() } else { s.layer.unwrap_or_default().to_string() };
                        (name, s.max.clone())
                    })
                    .collect();
                plot::heatmap(&args.output, size, &format!("{what}: log10 ||dL/dW|| per layer"), &steps, &rows)?;
            } else {
                let series: Vec<(String, Vec<f64>)> = layers
                    .iter()
                    .map(|s| {
                        let name = if is_output(s) {
                            "output".into()
                        } else {
                            format!("layer {}", s.layer.unwrap_or_default())
                        };
                        (name, s.values.clone())
                    })
                    .collect();
                plot::lines(&args.output, size, &format!("{what}: gradient norm per layer"), &steps, &series)?;
            }
        }
        Kind::Loss => {
            let find = |m: &str| h.series.iter().find(|s| s.layer.is_none() && s.metric == m);
            let (loss, acc) = (find("loss").ok_or_else(nothing)?, find("accuracy").ok_or_else(nothing)?);
            let train: Vec<(u64, f64, f64)> =
                loss.steps.iter().zip(&loss.values).zip(&acc.values).map(|((s, l), a)| (*s, *l, *a)).collect();
            let test: Vec<(u64, f64, f64)> = h.evals.iter().map(|e| (e.step, e.test_loss, e.test_accuracy)).collect();
            if train.is_empty() {
                return Err(nothing().into());
            }
            plot::loss(&args.output, size, &format!("{what}: loss and accuracy"), &train, &test)?;
        }
    }
    println!("{}", args.output.display());
    Ok(())
}
