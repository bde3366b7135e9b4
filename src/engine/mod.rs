//! Pure numerics: activations, initialization, networks, training, measurement, theory.
//!
//! Invariant: nothing in here imports tokio, sqlx or tonic, and nothing here does I/O but the
//! dataset readers.

pub mod activation;
pub mod fastmath;
pub mod real;

pub use activation::{Activation, ActivationError};
pub use real::Real;
