//! gradlab: deep-network gradient experiments.
//!
//! Layers, dependencies pointing one way (see ARCHITECTURE.md):
//! `engine` (pure numerics) <- `cli`.

pub mod cli;
pub mod engine;
