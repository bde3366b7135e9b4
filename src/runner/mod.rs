//! Jobs on the rayon pool: queueing, cancellation, persistence through a [`Store`], and the
//! fan-out of live progress to watchers.

pub mod model;

pub use model::*;
