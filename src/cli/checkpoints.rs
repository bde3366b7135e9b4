//! `gradlab export` (a job's trained network as a file) and `gradlab fork` (a new job from a
//! job's checkpoint, its training settings changed).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::client::{CliError, ServerArgs, connect, status};
use super::fmt::bytes;
use super::spec_args::parse_label;
use crate::api::pb;
use crate::runner::export::WeightsFormat;

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub job: i64,
    /// The newest checkpoint at or before this step [default: the newest].
    #[arg(long)]
    pub step: Option<u64>,
    /// Where to write: a .safetensors or .npz file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// safetensors or npz [default: from the file's extension].
    #[arg(long)]
    pub format: Option<WeightsFormat>,
}

pub async fn export(args: ExportArgs, server: &ServerArgs) -> Result<()> {
    let path = args.output.to_string_lossy().to_string();
    let format = match args.format {
        Some(f) => f,
        None => WeightsFormat::of_path(&path).ok_or_else(|| {
            CliError(format!("-o {path}: name it .safetensors or .npz, or give --format safetensors|npz"))
        })?,
    };
    let mut client = connect(server).await?;
    let format = match format {
        WeightsFormat::Safetensors => pb::WeightsFormat::Safetensors,
        WeightsFormat::Npz => pb::WeightsFormat::Npz,
    } as i32;
    let mut stream = client
        .export_weights(pb::ExportRequest { job_id: args.job, step: args.step, format })
        .await
        .map_err(status)?
        .into_inner();
    // Written beside the target and renamed at the end: a failed export leaves no half file.
    let dir = args.output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| CliError(format!("-o {path}: {e}")))?;
    let (mut step, mut total) = (0, 0);
    while let Some(chunk) = stream.message().await.map_err(status)? {
        tmp.write_all(&chunk.data).map_err(|e| CliError(format!("-o {path}: {e}")))?;
        (step, total) = (chunk.step, chunk.total_bytes);
    }
    let written = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    if written != total {
        return Err(CliError(format!("the server sent {written} of {total} bytes; nothing written")).into());
    }
    tmp.persist(&args.output).map_err(|e| CliError(format!("-o {path}: {}", e.error)))?;
    println!("job {}: weights at step {step} -> {path} ({})", args.job, bytes(total));
    Ok(())
}

#[derive(Args, Debug)]
pub struct ForkArgs {
    pub job: i64,
    /// Start from the job's newest checkpoint at or before this step.
    #[arg(long)]
    pub at_step: u64,
    /// Learning rate [default: the parent's].
    #[arg(long)]
    pub lr: Option<f64>,
    /// sgd, momentum[:mu], nesterov[:mu], adam[:beta1,beta2,eps] [default: the parent's]; one
    /// that keeps other moments starts them at the fork.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// constant, step:EVERY,GAMMA, cosine[:MIN_FACTOR] [default: the parent's].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Total steps, counted from the parent's step 0 [default: the parent's].
    #[arg(long)]
    pub steps: Option<u64>,
    /// Clip the global gradient norm to this [default: the parent's].
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Decoupled weight decay [default: the parent's].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// A name [default: the parent's].
    #[arg(long)]
    pub name: Option<String>,
    /// A label KEY=VALUE (repeatable), added to the parent's.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Keep the fork's checkpoints once it has ended.
    #[arg(long)]
    pub keep_checkpoints: bool,
}

/// Prints the new job's id (as `gradlab submit` does).
pub async fn fork(args: ForkArgs, server: &ServerArgs) -> Result<()> {
    let changes = pb::JobSpec {
        name: args.name.unwrap_or_default(),
        labels: args.labels.into_iter().collect(),
        optimizer: args.optimizer.unwrap_or_default(),
        schedule: args.schedule.unwrap_or_default(),
        lr: args.lr,
        steps: args.steps,
        clip_norm: args.clip_norm,
        weight_decay: args.weight_decay,
        keep_checkpoints: args.keep_checkpoints.then_some(true),
        ..Default::default()
    };
    let mut client = connect(server).await?;
    let req = pb::ForkRequest { job_id: args.job, at_step: args.at_step, changes: Some(changes) };
    let job = client.fork_job(req).await.map_err(status)?.into_inner();
    println!("{}", job.id);
    Ok(())
}
