//! `gradlab rm`, `gradlab label` and `gradlab rename`: tidying up what a server stores.

use anyhow::Result;
use clap::Args;

use super::client::{CliError, ServerArgs, connect, status};
use crate::api::pb;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Job ids.
    #[arg(required_unless_present = "sweep")]
    pub jobs: Vec<i64>,
    /// Delete this sweep and all its jobs.
    #[arg(long, conflicts_with = "jobs")]
    pub sweep: Option<i64>,
    /// Cancel queued or running jobs first (without it they are refused).
    #[arg(long)]
    pub cancel: bool,
}

pub async fn rm(args: RmArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    if let Some(id) = args.sweep {
        let r = client.delete_sweep(pb::DeleteSweepRequest { id, cancel: args.cancel }).await.map_err(status)?;
        println!("deleted sweep {id} and its {} jobs", r.get_ref().jobs_deleted);
        return Ok(());
    }
    let mut failed = 0;
    for &id in &args.jobs {
        match client.delete_job(pb::DeleteJobRequest { id, cancel: args.cancel }).await {
            Ok(_) => println!("deleted job {id}"),
            Err(e) => {
                eprintln!("job {id}: {}", e.message());
                failed += 1;
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError(format!("could not delete {failed} of {} jobs", args.jobs.len())).into())
    }
}

#[derive(Args, Debug)]
pub struct LabelArgs {
    pub job: i64,
    /// Labels to set, as key=value.
    #[arg(value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Labels to remove, by key (repeatable).
    #[arg(long, value_name = "KEY")]
    pub remove: Vec<String>,
}

pub async fn label(args: LabelArgs, server: &ServerArgs) -> Result<()> {
    let mut set_labels = std::collections::HashMap::new();
    for kv in &args.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| CliError(format!("label {kv:?}: expected KEY=VALUE (remove one with --remove KEY)")))?;
        set_labels.insert(k.to_string(), v.to_string());
    }
    if set_labels.is_empty() && args.remove.is_empty() {
        return Err(CliError("nothing to change: give KEY=VALUE labels to set, or --remove KEY".into()).into());
    }
    let mut client = connect(server).await?;
    let req = pb::UpdateJobRequest { id: args.job, name: None, set_labels, remove_labels: args.remove };
    let job = client.update_job(req).await.map_err(status)?.into_inner();
    let mut labels: Vec<String> =
        job.spec.map(|s| s.labels.into_iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
    labels.sort();
    println!("job {}: {}", job.id, if labels.is_empty() { "no labels".to_string() } else { labels.join(" ") });
    Ok(())
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub job: i64,
    pub name: String,
}

pub async fn rename(args: RenameArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    let req = pb::UpdateJobRequest { id: args.job, name: Some(args.name), ..Default::default() };
    let job = client.update_job(req).await.map_err(status)?.into_inner();
    println!("job {}: {}", job.id, job.spec.map(|s| s.name).unwrap_or_default());
    Ok(())
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Delete jobs that finished before this date (UTC): 2026-11-01 or 2026-11-01T12:00:00Z.
    #[arg(long, value_name = "DATE", value_parser = crate::runner::when::date_ms, required_unless_present = "older_than", conflicts_with = "older_than")]
    pub finished_before: Option<i64>,
    /// Delete jobs that finished longer ago than this: 30d, 12h, 90m.
    #[arg(long, value_name = "DURATION", value_parser = crate::runner::when::duration)]
    pub older_than: Option<std::time::Duration>,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Then give the space back to the file system (SQLite: VACUUM, which holds writes while
    /// it rewrites the file).
    #[arg(long)]
    pub vacuum: bool,
}

pub async fn gc(args: GcArgs, server: &ServerArgs) -> Result<()> {
    let before = match (args.finished_before, args.older_than) {
        (Some(t), _) => t,
        (None, Some(d)) => crate::runner::now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        (None, None) => unreachable!("clap requires one"),
    };
    let mut client = connect(server).await?;
    let req = pb::GcRequest { finished_before_ms: before, dry_run: args.dry_run, vacuum: args.vacuum };
    let r = client.collect_garbage(req).await.map_err(status)?.into_inner();
    let ids: Vec<String> = r.job_ids.iter().map(|i| i.to_string()).collect();
    let mb = |b: u64| b as f64 / 1e6;
    if args.dry_run {
        println!("would delete {} jobs: {}", ids.len(), ids.join(" "));
    } else {
        println!("deleted {} jobs and {} empty sweeps: {}", ids.len(), r.sweeps_deleted, ids.join(" "));
        println!("database: {:.1} MB -> {:.1} MB", mb(r.bytes_before), mb(r.bytes_after));
    }
    Ok(())
}
