//! `gradlab serve`: the gRPC server over a SQLite history.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9184).
    #[arg(long, env = "GRADLAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Log filter, RUST_LOG syntax (e.g. info, gradlab=debug).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Log format: text for people, json for machines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
    let limits = args.limits.limits()?;
    let leases = args.leases.leases()?;
    let data = DataPolicy::allow(&args.data_dirs).map_err(CliError)?;
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
    let data_dirs = data.dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":");
    let runner = Runner::start(Arc::new(store), RunnerConfig { workers, limits, data, leases }).await?;
    let listener = TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && token.is_some() && tls.is_none() {
        warn!("the token crosses the network in clear text: serve TLS with --tls-cert and --tls-key");
    }
    info!(
        %addr,
        database = %args.database,
        workers,
        tls = tls.is_some(),
        token = token.is_some(),
        data_dirs,
        "gradlab serving"
    );
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
