//! `gradlab demo`: the whole of gradlab in one command. Starts a server in this process on a
//! free loopback port over a database in a temporary folder, runs a reduced `seed-claims`
//! sweep with progress shown, prints the report and the post's claims checked against it, and
//! writes the plots and a markdown report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::client::{CliError, ServerArgs, connect, status};
use super::report::{fetch, tables, terminal_width, write_all};
use super::sweep_watch;
use crate::api::convert_sweep::sweep_spec_to_pb;
use crate::api::server::{ServeOptions, serve};
use crate::runner::sweep::preset;
use crate::runner::{Runner, RunnerConfig};
use crate::store::SqliteStore;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The sweep to run (see `gradlab sweep --list-presets`).
    #[arg(long, default_value = "seed-claims-mini")]
    pub preset: String,
    /// Training steps per job, instead of the preset's budget.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Keep the results in this SQLite database (default: a temporary one, deleted at the end).
    #[arg(long)]
    pub database: Option<String>,
    /// Where the plots and report.md go.
    #[arg(long, default_value = "gradlab-report")]
    pub out: PathBuf,
    /// Jobs trained at once; default: the CPU count.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Plain lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Keep the server up after the report, for the dashboard, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Where the demo's server listens (loopback only; default: a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let mut spec = preset(&args.preset)?;
    if let Some(steps) = args.steps {
        spec.base.steps = steps;
        spec.base.eval_every = spec.base.eval_every.min(steps.max(1));
    }
    let tmp = tempfile::tempdir().context("cannot create a temporary folder for the database")?;
    let database = match &args.database {
        Some(d) => d.clone(),
        None => tmp.path().join("gradlab.db").to_string_lossy().into_owned(),
    };
    let store = SqliteStore::open(&database).await.with_context(|| format!("cannot open the database {database}"))?;
    let mut config = RunnerConfig::default();
    if let Some(w) = args.workers {
        config.workers = w;
    }
    let workers = config.workers;
    let runner = Runner::start(Arc::new(store), config).await?;
    if !args.addr.ip().is_loopback() {
        return Err(CliError(format!("--addr {}: the demo serves loopback only, without a token", args.addr)).into());
    }
    let listener =
        TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {} (--addr)", args.addr))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    // Loopback, plaintext, no token: the server lives and dies with this command.
    let server = tokio::spawn(serve(listener, runner, ServeOptions::default(), async {
        let _ = stopped.await;
    }));
    eprintln!("gradlab demo: server on {addr}, database {database}, {workers} workers");

    let outcome = async {
        let mut client = connect(&ServerArgs::local(addr)).await?;
        let sweep = client.submit_sweep(sweep_spec_to_pb(&spec)).await.map_err(status)?.into_inner();
        let total = sweep.counts.map_or(0, |c| c.total);
        eprintln!("sweep {} ({}): {total} jobs, {} steps each", sweep.id, spec.name, spec.base.steps);
        eprintln!("dashboard: http://{addr}/sweeps/{}", sweep.id);
        let plain = args.plain || !std::io::stdout().is_terminal();
        let Some(_) = sweep_watch::watch(&mut client, sweep.id, plain, true).await? else {
            return Err(CliError("demo interrupted".into()).into());
        };
        let report = fetch(&mut client, sweep.id, None).await?;
        println!();
        print!("{}", tables(&report, terminal_width()));
        let written = write_all(&report, &args.out)?;
        if report.claims.is_empty() {
            println!("\n(this preset does not test the post's claims)");
        }
        println!("\nwrote {} files to {}/:", written.len(), args.out.display());
        for p in &written {
            println!("  {}", p.display());
        }
        if args.serve {
            println!("\ndashboard: http://{addr}/sweeps/{} (Ctrl-C stops the server)", sweep.id);
            super::serve::shutdown_signal().await;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = stop.send(());
    server.await.context("the demo server panicked")??;
    outcome
}
