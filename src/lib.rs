//! gradlab: deep-network gradient experiments.
//!
//! Layers, dependencies pointing one way (see ARCHITECTURE.md):
//! `engine` (pure numerics) <- `runner` (jobs, progress) <- `store` (SQLite) and `api` (gRPC)
//! <- `cli`.

pub mod api;
pub mod cli;
pub mod engine;
pub mod runner;
pub mod store;
