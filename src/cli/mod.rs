//! The `gradlab` command line: one binary, one subcommand per job. Server-side commands
//! (`serve`, `probe`) use the engine and runner directly; the others are gRPC clients.

mod cert;
mod checkpoints;
mod client;
mod demo;
mod fmt;
mod history;
mod jobs;
mod manage;
pub mod plot;
mod plot_job;
mod probe;
mod report;
mod report_plot;
mod serve;
mod spec_args;
mod submit;
mod sweep;
mod sweep_watch;
mod watch;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use client::CliError;
pub use spec_args::{RunArgs, SpecArgs};

#[derive(Parser, Debug)]
#[command(
    name = "gradlab",
    version,
    about = "Deep-network gradient experiments: where gradients vanish or explode, and why"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Where client commands find their server (global: before or after the subcommand).
    #[command(flatten, next_help_heading = "Client options")]
    pub client: client::ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a network, optionally train it a few steps, and print every layer's gradient
    /// statistics beside the mean-field prediction. Instant; needs no server.
    Probe(probe::ProbeArgs),
    /// Run the gRPC server: accept jobs, train them, store every layer's history.
    Serve(serve::ServeArgs),
    /// Train jobs from a database shared with `gradlab serve` (PostgreSQL); serve no API.
    Worker(serve::WorkerArgs),
    /// Submit a training job; prints its id.
    Submit(Box<submit::SubmitArgs>),
    /// Follow a job live: progress, loss, every layer's gradient norm.
    Watch(watch::WatchArgs),
    /// List jobs.
    Ls(jobs::LsArgs),
    /// Everything about one job.
    Show(jobs::ShowArgs),
    /// Cancel jobs.
    Cancel(jobs::CancelArgs),
    /// Delete finished jobs (or a whole sweep) and everything stored of them.
    Rm(manage::RmArgs),
    /// Set or remove a job's labels.
    Label(manage::LabelArgs),
    /// Rename a job.
    Rename(manage::RenameArgs),
    /// Delete jobs that finished before a date (not those labelled keep=true) and the sweeps
    /// left empty; --vacuum gives the space back.
    Gc(manage::GcArgs),
    /// A job's recorded series.
    History(history::HistoryArgs),
    /// Write a job's trained network (a checkpoint's weights and biases) as a .safetensors or
    /// .npz file.
    Export(checkpoints::ExportArgs),
    /// Start a new job from a job's checkpoint with other training settings (lr, optimizer,
    /// schedule, steps...); prints its id. Its history reads from step 0, the parent's part
    /// shared.
    Fork(checkpoints::ForkArgs),
    /// Draw a job's history: heat map of gradient norms, per-layer curves, or loss.
    Plot(plot_job::PlotArgs),
    /// Submit a sweep: a base job crossed with axes (a preset, --axis flags or a spec file).
    Sweep(Box<sweep::SweepArgs>),
    /// List sweeps, or show one.
    Sweeps(sweep::SweepsArgs),
    /// A sweep's report: per-cell figures, trainable depth, the post's claims; and its plots.
    Report(report::ReportArgs),
    /// Make a local certificate authority and a server certificate for `serve --tls-cert`
    /// (clients trust the CA with --ca-cert).
    Cert(cert::CertArgs),
    /// Run gradlab end to end on this machine: a server in this process, a reduced seed-claims
    /// sweep, the report, the plots (in ./gradlab-report/).
    Demo(demo::DemoArgs),
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    let server = &cli.client;
    if !matches!(cli.command, Command::Serve(_) | Command::Worker(_)) {
        quiet_on_closed_pipe();
    }
    match cli.command {
        Command::Probe(args) => probe::run(&args),
        Command::Serve(args) => runtime()?.block_on(serve::run(args, server.token.clone())),
        Command::Worker(args) => runtime()?.block_on(serve::worker(args)),
        Command::Submit(args) => runtime()?.block_on(submit::run(*args, server)),
        Command::Watch(args) => runtime()?.block_on(watch::run(args, server)),
        Command::Ls(args) => runtime()?.block_on(jobs::ls(args, server)),
        Command::Show(args) => runtime()?.block_on(jobs::show(args, server)),
        Command::Cancel(args) => runtime()?.block_on(jobs::cancel(args, server)),
        Command::Rm(args) => runtime()?.block_on(manage::rm(args, server)),
        Command::Label(args) => runtime()?.block_on(manage::label(args, server)),
        Command::Rename(args) => runtime()?.block_on(manage::rename(args, server)),
        Command::Gc(args) => runtime()?.block_on(manage::gc(args, server)),
        Command::History(args) => runtime()?.block_on(history::run(args, server)),
        Command::Export(args) => runtime()?.block_on(checkpoints::export(args, server)),
        Command::Fork(args) => runtime()?.block_on(checkpoints::fork(args, server)),
        Command::Plot(args) => runtime()?.block_on(plot_job::run(args, server)),
        Command::Sweep(args) => runtime()?.block_on(sweep::run(*args, server)),
        Command::Sweeps(args) => runtime()?.block_on(sweep::sweeps(args, server)),
        Command::Report(args) => runtime()?.block_on(report::run(args, server)),
        Command::Demo(args) => runtime()?.block_on(demo::run(args)),
        Command::Cert(args) => cert::run(&args),
    }
}

/// A command whose reader goes away (`gradlab ls | head`) ends there, quietly, as `ls` and
/// `git log` do: the default action of SIGPIPE, which Rust's runtime sets to "ignore" (so that
/// `println!` would panic instead). Sockets are unaffected: Rust writes to them with
/// MSG_NOSIGNAL. Not for `serve`, whose log pipe closing must not stop training.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
