//! `gradlab serve` and `gradlab worker`: the gRPC server and the training node over a store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::{info, warn};

use super::CliError;
use super::client::source_chain;
use crate::api::auth::check_token;
use crate::api::server::{ServeOptions, serve};
use crate::runner::{DataPolicy, Leases, Limits, Runner, RunnerConfig};
use crate::store::{is_postgres, mask_url};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GRADLAB_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen on a non-loopback address without --token. Anyone who reaches the address can
    /// then submit, read and cancel jobs: only for a network you trust.
    #[arg(long)]
    pub insecure: bool,
    /// Delete finished jobs older than this (30d, 12h, ...), except those labelled keep=true;
    /// off unless given.
    #[arg(long, env = "GRADLAB_RETAIN_FINISHED", value_name = "DURATION", value_parser = crate::runner::when::duration)]
    pub retain_finished: Option<std::time::Duration>,
}

/// What `serve` and `worker` share: the database, the training, the logs.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The database: sqlite://PATH or a path (created if missing; one server), or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB (shared by any number of servers and workers).
    #[arg(long, env = "GRADLAB_DATABASE", default_value = "sqlite://gradlab.db")]
    pub database: String,
    /// Jobs trained at once (and training threads); default: the CPU count. 0: train nothing
    /// (serve the API over a database `gradlab worker`s train from).
    #[arg(long, env = "GRADLAB_WORKERS")]
    pub workers: Option<usize>,
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9184).
    #[arg(long, env = "GRADLAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Log filter, RUST_LOG syntax (e.g. info, gradlab=debug).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Log format: text for people, json for machines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Jobs may read dataset files (csv:, idx:) under this directory; repeatable, or
    /// colon-separated in GRADLAB_DATA_DIR. Without one the server reads no files for clients:
    /// jobs get only the built-in and generated datasets.
    #[arg(long = "data-dir", value_name = "DIR", env = "GRADLAB_DATA_DIR", value_delimiter = ':')]
    pub data_dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub leases: LeaseArgs,
}

/// `gradlab worker`: trains jobs from a shared database and serves no API.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub node: NodeArgs,
}

/// A started node: its runner, and what its log line says of it.
struct Node {
    runner: Runner,
    workers: usize,
    database: String,
    data_dirs: String,
}

impl NodeArgs {
    /// Checks every flag, then starts logging, opens the database (creating nothing on
    /// PostgreSQL; a bad URL, an unreachable server, a wrong password or a missing database
    /// is one line naming the URL, its password masked) and starts the runner.
    async fn start(&self, default_workers: usize) -> Result<Node> {
        let limits = self.limits.limits()?;
        let leases = self.leases.leases()?;
        let data = DataPolicy::allow(&self.data_dirs).map_err(CliError)?;
        init_logging(&self.log, self.log_format)?;
        let workers = self.workers.unwrap_or(default_workers);
        let database = mask_url(&self.database);
        let store = crate::store::open(&self.database).await.map_err(|e| {
            CliError(format!(
                "cannot open the database {database}: {}",
                e.to_string().replace(&self.database, &database)
            ))
        })?;
        if workers == 0 && !is_postgres(&self.database) {
            warn!("--workers 0 on SQLite: nothing will train the jobs submitted here (workers share PostgreSQL only)");
        }
        if let Some(addr) = self.metrics_addr {
            let handle = crate::api::metrics::install()?;
            let listener =
                TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--metrics-addr)"))?;
            info!(addr = %listener.local_addr()?, "metrics on http");
            tokio::spawn(crate::api::metrics::serve(listener, handle, std::future::pending::<()>()));
        }
        let data_dirs = data.dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":");
        let runner = Runner::start(store, RunnerConfig { workers, limits, data, leases }).await?;
        Ok(Node { runner, workers, database, data_dirs })
    }
}

/// The CPU count: one worker per CPU unless --workers says otherwise.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `gradlab worker`: claims and trains jobs until Ctrl-C or SIGTERM, then stores what it holds
/// and gives its running jobs back (another worker reruns them from step 0).
pub async fn worker(args: WorkerArgs) -> Result<()> {
    if args.node.workers == Some(0) {
        return Err(CliError("--workers: a worker needs at least 1 (0 is for `gradlab serve`)".into()).into());
    }
    let node = args.node.start(cpus()).await?;
    info!(
        worker = node.runner.worker_id(),
        database = %node.database,
        workers = node.workers,
        data_dirs = node.data_dirs,
        "gradlab worker running"
    );
    shutdown_signal().await;
    node.runner.shutdown(FLUSH_TIMEOUT).await;
    info!("gradlab worker stopped");
    Ok(())
}

/// How workers hold the jobs they claim (see [`Leases`]).
#[derive(Args, Debug)]
pub struct LeaseArgs {
    /// How often a worker renews the leases of the jobs it trains, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = Leases::default().heartbeat.as_secs_f64())]
    pub heartbeat: f64,
    /// How long a claim holds without renewal, in seconds: then another worker may take the
    /// job over (a worker that died, or lost the database). Longer than --heartbeat.
    #[arg(long, value_name = "SECONDS", default_value_t = Leases::default().lease.as_secs_f64())]
    pub lease: f64,
}

impl LeaseArgs {
    pub fn leases(&self) -> Result<Leases> {
        let secs = |flag: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(CliError(format!("{flag}: must be a number of seconds in (0, 86400], got {v}")))
            }
        };
        let (heartbeat, lease) = (secs("--heartbeat", self.heartbeat)?, secs("--lease", self.lease)?);
        if lease <= heartbeat {
            return Err(CliError(format!(
                "--lease {} must be longer than --heartbeat {}: a lease would end before it is renewed",
                self.lease, self.heartbeat
            ))
            .into());
        }
        Ok(Leases { heartbeat, lease, ..Leases::default() })
    }
}

/// `gradlab serve`'s limits; see [`Limits`] for what each bounds and why its default.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Largest network of a job, in parameters (weights and biases).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_params)]
    pub max_params: u64,
    /// Most training steps of a job.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    pub max_steps: u64,
    /// Most unfinished (queued or running) jobs; further submissions get RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_queued_jobs)]
    pub max_queued_jobs: usize,
    /// Most jobs one sweep may expand to; larger sweeps are refused before anything is stored.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sweep_jobs)]
    pub max_sweep_jobs: usize,
    /// Most watch streams (WatchJob and WatchSweep) open at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_watchers)]
    pub max_watchers: usize,
    /// Largest request message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_request_bytes)]
    pub max_request_bytes: usize,
    /// Largest dataset file, in bytes on disk.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_dataset_bytes)]
    pub max_dataset_bytes: u64,
    /// Longest a call may run on the server, in seconds; a client's shorter deadline
    /// (grpc-timeout) wins. Watch streams are not cut: this bounds the call's start.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().request_timeout.as_secs())]
    pub request_timeout: u64,
}

impl LimitArgs {
    fn limits(&self) -> Result<Limits> {
        if self.request_timeout == 0 {
            return Err(CliError("--request-timeout: must be at least 1 second".into()).into());
        }
        Ok(Limits {
            max_params: self.max_params,
            max_steps: self.max_steps,
            max_queued_jobs: self.max_queued_jobs,
            max_sweep_jobs: self.max_sweep_jobs,
            max_watchers: self.max_watchers,
            max_request_bytes: self.max_request_bytes,
            max_dataset_bytes: self.max_dataset_bytes,
            request_timeout: Duration::from_secs(self.request_timeout),
        })
    }
}

/// Refuses to expose an open server: on a non-loopback address a token is needed, or an
/// explicit --insecure.
fn check_exposure(args: &ServeArgs, token: bool) -> Result<()> {
    let addr = args.addr;
    if addr.ip().is_loopback() || token || args.insecure {
        return Ok(());
    }
    Err(CliError(format!(
        "refusing to listen on {addr} without a token: anyone who can reach it could submit jobs, read every \
         result and cancel jobs. Start it with --token TOKEN (or GRADLAB_TOKEN) and give clients the same token, \
         listen on 127.0.0.1, or pass --insecure if every host that can reach it is trusted"
    ))
    .into())
}

/// Reads and checks the certificate and key, so that a bad file is reported by its flag before
/// anything is opened (tonic would only parse them when the server starts, and name neither).
fn tls_identity(args: &ServeArgs) -> Result<Option<Identity>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else { return Ok(None) };
    let read = |flag: &str, path: &PathBuf, marker: &str, what: &str| {
        let pem = std::fs::read(path).map_err(|e| CliError(format!("{flag} {}: {e}", path.display())))?;
        if !String::from_utf8_lossy(&pem).contains(marker) {
            return Err(CliError(format!("{flag} {}: no PEM {what} in it", path.display())));
        }
        Ok(pem)
    };
    let identity = Identity::from_pem(
        read("--tls-cert", cert, "-----BEGIN CERTIFICATE-----", "certificate")?,
        read("--tls-key", key, "PRIVATE KEY-----", "private key")?,
    );
    Server::builder().tls_config(ServerTlsConfig::new().identity(identity.clone())).map_err(|e| {
        CliError(format!("--tls-cert {} with --tls-key {}: {}", cert.display(), key.display(), source_chain(&e)))
    })?;
    Ok(Some(identity))
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

/// `token`: the global --token (GRADLAB_TOKEN), which every call but gRPC health must then carry.
pub async fn run(args: ServeArgs, token: Option<String>) -> Result<()> {
    // Every flag is checked before anything is opened or created.
    check_exposure(&args, token.is_some())?;
    if let Some(t) = &token {
        check_token(t).map_err(CliError)?;
    }
    let tls = tls_identity(&args)?;
    let Node { runner, workers, database, data_dirs } = args.node.start(cpus()).await?;
    let listener = TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && token.is_some() && tls.is_none() {
        warn!("the token crosses the network in clear text: serve TLS with --tls-cert and --tls-key");
    }
    info!(
        %addr,
        database = %database,
        workers,
        tls = tls.is_some(),
        token = token.is_some(),
        data_dirs,
        "gradlab serving"
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(url = %format!("{scheme}://{addr}/"), "dashboard");
    if let Some(keep) = args.retain_finished {
        info!(retain_finished_s = keep.as_secs_f64(), "retention on: finished jobs older than this are deleted");
        tokio::spawn(runner.clone().retain_finished(keep));
    }
    let options = ServeOptions { token, tls };
    let stopping = runner.clone();
    serve(listener, runner, options, shutdown_signal()).await?;
    // Store what the writer holds, then end this worker's leases: its running jobs rerun from
    // step 0 on whichever worker claims them next (this one, restarted, on SQLite).
    stopping.shutdown(FLUSH_TIMEOUT).await;
    info!("gradlab stopped");
    Ok(())
}

/// How long a stopping server waits for the history writer.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
