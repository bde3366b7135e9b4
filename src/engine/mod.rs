//! Pure numerics: activations, initialization, networks, training, measurement, theory.
//!
//! Invariant: nothing in here imports tokio, sqlx or tonic, and nothing here does I/O but the
//! dataset readers.

pub mod activation;
pub mod awake;
pub mod checkpoint;
pub mod data;
pub mod fastmath;
pub mod gemm;
pub mod init;
pub mod loss;
pub mod meanfield;
pub mod network;
pub mod nonfinite;
pub mod optim;
pub mod real;
pub mod rng;
pub mod spec;
pub mod stats;
pub mod theory;
pub mod train;
pub mod tuning;
pub mod verdict;

pub use activation::{Activation, ActivationError};
pub use real::Real;
