//! gradlab's integration tests, one binary with a module per area (as rust-analyzer's and
//! cargo's own suites do): each file under `tests/` would link its own copy of the crate, and
//! linking was most of the test build's time and disk.
//!
//! Every module goes through real parts: a server on 127.0.0.1:0, a real database, the
//! generated client and the built binary (`CARGO_BIN_EXE_gradlab`). Run one area with
//! `cargo test --test it service::`.

mod common;

mod checkpoints;
mod cli;
mod cli_conventions;
mod cli_probe;
mod crash;
mod db_outage;
mod engine_training;
mod history_stream;
mod hostile_input;
mod latency;
mod load;
mod manage;
mod metrics;
mod pinned_bits;
mod scale_out;
mod search;
mod security;
mod service;
mod sweeps;
mod verdicts;
mod web;
