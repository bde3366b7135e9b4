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

/// mimalloc instead of the system's malloc, for the binary, its tests and benches alike. The
/// `gemm` crate allocates (zeroed) and frees a flag vector of 1-3 KB in every product it
/// computes: above glibc's per-thread cache, so each call went through its bins. In a width-32
/// sweep that was about 6% of all CPU time (`perf record`; 2.7% with mimalloc), and 48 jobs of
/// `seed-claims-mini` on one thread trained about 10% faster with mimalloc (median of six
/// alternating runs, Intel Xeon family 6 model 207).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
