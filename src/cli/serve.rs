//! `gradlab serve`: the gRPC server over a SQLite history.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tracing::info;

use crate::api::server::serve;
use crate::runner::{Runner, RunnerConfig};
use crate::store::SqliteStore;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GRADLAB_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: SocketAddr,
    /// SQLite database (created if missing): sqlite://PATH or a path.
    #[arg(long, env = "GRADLAB_DATABASE", default_value = "sqlite://gradlab.db")]
    pub database: String,
    /// Jobs trained at once (and training threads); default: the CPU count.
    #[arg(long, env = "GRADLAB_WORKERS")]
    pub workers: Option<usize>,
    /// Most jobs one sweep may expand to; larger sweeps are refused before anything is stored.
    #[arg(long, env = "GRADLAB_MAX_SWEEP_JOBS", default_value_t = RunnerConfig::DEFAULT_MAX_SWEEP_JOBS)]
    pub max_sweep_jobs: usize,
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9184).
    #[arg(long, env = "GRADLAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Log filter, RUST_LOG syntax (e.g. info, gradlab=debug).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Log format: text for people, json for machines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init_logging(filter: &str, format: LogFormat) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).with_context(|| format!("--log {filter:?}"))?;
    // Colours only for a person at a terminal, never into a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    res.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

pub async fn run(args: ServeArgs) -> Result<()> {
    init_logging(&args.log, args.log_format)?;
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let store = SqliteStore::open(&args.database)
        .await
        .with_context(|| format!("cannot open the database {}", args.database))?;
    if let Some(addr) = args.metrics_addr {
        let handle = crate::api::metrics::install()?;
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--metrics-addr)"))?;
        info!(addr = %listener.local_addr()?, "metrics on http");
        tokio::spawn(crate::api::metrics::serve(listener, handle, std::future::pending::<()>()));
    }
    let runner = Runner::start(Arc::new(store), RunnerConfig { workers, max_sweep_jobs: args.max_sweep_jobs }).await?;
    let listener = TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    info!(addr = %listener.local_addr()?, database = %args.database, workers, "gradlab serving");
    serve(listener, runner, shutdown_signal()).await?;
    info!("gradlab stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    info!("shutdown requested");
}
