//! The `gradlab` command line: one binary, one subcommand per job.

mod probe;
mod spec_args;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use spec_args::SpecArgs;

#[derive(Parser, Debug)]
#[command(
    name = "gradlab",
    version,
    about = "Deep-network gradient experiments: where gradients vanish or explode, and why"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a network, optionally train it a few steps, and print every layer's gradient
    /// statistics beside the mean-field prediction. Instant; needs no server.
    Probe(probe::ProbeArgs),
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Probe(args) => probe::run(&args),
    }
}
