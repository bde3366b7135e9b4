//! `gradlab submit`: one job, from flags or a TOML/JSON spec file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::client::{ServerArgs, connect};
use super::spec_args::{RunArgs, SpecArgs};
use super::watch;
use crate::api::convert::job_spec_to_pb;
use crate::engine::spec::JobSpec;

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// A job spec in TOML or JSON (the fields of JobSpec); flags given too override it.
    #[arg(long = "spec", value_name = "FILE")]
    pub spec_file: Option<PathBuf>,
    /// Attach to the job and show its progress.
    #[arg(long)]
    pub watch: bool,
}

/// Reads a spec file (`what`: "job spec", "sweep spec"); the format follows the extension
/// (.toml, else JSON).
pub fn read_spec_file<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let spec = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        toml::from_str(&text).with_context(|| format!("{}: not a valid {what}", path.display()))?
    } else {
        serde_json::from_str(&text).with_context(|| format!("{}: not a valid {what}", path.display()))?
    };
    Ok(spec)
}

pub fn build_spec(args: &SubmitArgs) -> Result<JobSpec> {
    let base = match &args.spec_file {
        Some(p) => read_spec_file(p, "job spec")?,
        None => JobSpec::default(),
    };
    let spec = args.run.apply(args.spec.apply(base)?);
    spec.validate().map_err(|e| args.spec.field_error(&e))?;
    Ok(spec)
}

pub async fn run(args: SubmitArgs, server: &ServerArgs) -> Result<()> {
    let spec = build_spec(&args)?;
    let mut client = connect(server).await?;
    let job = client.submit_job(job_spec_to_pb(&spec)).await.map_err(|e| args.spec.status_error(e))?.into_inner();
    println!("{}", job.id);
    if args.watch {
        let plain = !std::io::stdout().is_terminal();
        let end = watch::watch(&mut client, job.id, 0, plain).await?;
        return watch::finish(end);
    }
    Ok(())
}
