//! Persistence of jobs and their histories in SQLite: [`SqliteStore`] implements
//! [`crate::runner::Store`].
//!
//! # The two hard cases, and the layout chosen for them
//!
//! A job records, at every recorded step, 12 statistics for each of its layers (a "layer-step
//! row"): a 100,000-step, 17-layer job is 1.7 million of them. Metric stores that keep a row per
//! value or per layer-step (MLflow) are slow at both ends: ingest is bound by per-row B-tree
//! work, and reading one layer's long history walks an index and decodes a row per step.
//!
//! Two layouts were measured with the same sqlx/SQLite settings (WAL, synchronous NORMAL,
//! 32 MiB page cache), 17 layers, 1,000 steps per `append_metrics` call:
//!
//! - (a) a row per (job, layer, step), the 12 metrics as REAL columns, index on
//!   (job, layer, step), inserted with 500-row multi-row INSERTs in one transaction;
//! - (b) chunked columnar: a row per (job, series, first_step) holding a BLOB of up to
//!   [`CHUNK_STEPS`] consecutive recorded steps: the steps as u64, then each metric as a
//!   contiguous run of little-endian f64 (see `codec`; compressed since, see below).
//!
//! Measured with `cargo bench --bench store` (release; a fresh temp file; 1,000-step calls;
//! the read cases on a 100,000-step, 17-layer job) on the shared 2-core development VM, whose
//! load from other builds was 3 to 4 during the runs, so each figure is a range over runs:
//!
//! | case                                              | (a) rows        | (b) chunks      |
//! |---------------------------------------------------|-----------------|-----------------|
//! | ingest, layer-step rows/s, 1,000 steps per call   | 0.20 - 0.55 M   | 1.17 - 1.47 M   |
//! | ingest, layer-step rows/s, 10 steps per call      |                 | 73 - 81 k (2.2 ms a call) |
//! | one layer's 100,000 steps, all 12 metrics         | 750 - 1,850 ms  | 10 - 19 ms      |
//! | one layer's 100,000 steps, one metric             |                 | 5 - 9 ms        |
//! | 17 layers x 12 metrics, downsampled to 1,000 pts  |                 | 170 - 240 ms    |
//!
//! For scale: plain Python sqlite3 with a row per layer-step inserts ~369,000 rows/s and reads
//! one layer's 100,000 steps in ~110 ms. Layout (a) through sqlx is slower still (every row and
//! value crosses sqlx's connection thread and is decoded on its own), and it has nothing to
//! gain from batching beyond multi-row INSERTs. Layout (b) is chosen: about 3 to 6 times the
//! ingest rate of (a) (3 to 4 times Python's), and long reads 50 to 100 times faster (6 to 11
//! times Python's), because a 100,000-step layer is ~200 rows of ~52 KB, not 100,000 rows.
//! 16 KiB pages and a WAL checkpoint every ~32 MiB (rather than 4 KiB and 4 MiB) took (b)'s
//! ingest from 0.94 - 1.05 M to the figures above.
//!
//! [`CHUNK_STEPS`] = 512 balances the two: larger chunks mean fewer rows per read but a larger
//! tail chunk to rewrite on every append. Downsampled reads of all layers are bound by reading
//! every chunk (about 10 MB per layer per 100,000 steps); per-chunk or rollup summaries
//! (min/max/last per 64 steps, say) would cut that by an order of magnitude and are not built
//! yet.
//!
//! # Schema (`migrations/0001_init.sql`)
//!
//! - `jobs`: id (creation order), sweep_id, spec JSON, and copies of what `ListJobs` filters on
//!   (name, activation, depth, state, verdict), each indexed with id for keyset pages;
//!   steps_done; `n_layers` (fixed by the first append; every stored step has that many); times;
//!   summary JSON; error.
//! - `job_labels (job_id, key, value)`, indexed by (key, value, job_id).
//! - `chunks (job_id, layer, first_step, last_step, n, data)`, unique on (job_id, layer,
//!   first_step). Layer -1 is the step-scalar series (`loss`, `accuracy`, `lr`,
//!   `global_grad_norm` = `StepRecord::grad_norm`), layers 0.. the `LayerStats` metrics. Values
//!   are stored as f64 bits, so NaN payloads, infinities and -0 come back bit-exact.
//! - `histograms (job_id, step, data)`: one BLOB per step that has histograms, all layers.
//! - `evals (job_id, step, test_loss, test_accuracy)`: REAL columns; SQLite has no NaN REAL, so
//!   NaN is stored as NULL and read back as NaN (the only place a NaN payload is not kept).
//!
//! # Writes
//!
//! Appending fills the series' tail chunk (read, extend, rewrite) up to [`CHUNK_STEPS`] and then
//! writes full chunks, so every chunk but the last of a series is full and a read of N steps
//! touches about N / CHUNK_STEPS rows. The price is that each call rewrites the tail chunks of
//! the job's series (at most `CHUNK_STEPS` rows each): callers should batch steps (a flush every
//! few hundred milliseconds or hundred steps) rather than call once per step: for a 17-layer
//! job a call costs ~2 ms however few steps it carries. A batch must name its job
//! (`job: None` is `Invalid`) and hold steps after the last stored one, in increasing order,
//! all with the job's layer count; records with no layers (steps not recorded) are skipped.
//! All batches of one call are one `BEGIN IMMEDIATE` transaction on the single writer
//! connection.
//!
//! # Reads
//!
//! Reads run on a pool of reader connections (WAL: they never wait for the writer). History is
//! read a window of one series at a time (`read_series`: the chunks from the one holding the
//! window's first step, only the requested columns decoded); `runner::history` plans the
//! query, downsamples and hands the windows on as pieces, so reads of any length hold one
//! window in memory. Jobs list in id order (= creation order) with the last id of a page, in decimal,
//! as the next page's token.
//!
//! # Compression (chunk version 2)
//!
//! Chunks are compressed losslessly: the steps and each column byte-shuffled (every value's
//! byte 0, then byte 1, ...) under one zstd frame (level 3), a column of f32-exact values
//! keeping only its four f32 bytes (`codec::encode_chunk`). Version-1 chunks (raw columns) stay
//! readable; a tail chunk of version 1 is rewritten as version 2 at its next append.
//!
//! Chosen by measurement on the 288 jobs of `seed-claims-mini` (326,160 layer-steps; bytes per
//! layer-step, the step scalars included; Python with numpy, zstandard and lz4 over the chunks
//! the store had written):
//!
//! | encoding of each chunk                              | f64 statistics | f32 statistics |
//! |-----------------------------------------------------|----------------|----------------|
//! | raw (version 1)                                     | 109            |                |
//! | byte-shuffled columns, zstd 3, a frame per column   | 57.2           | 32.0           |
//! | XOR with the previous value, shuffled, zstd 3       | 57.5           | 32.2           |
//! | shuffled columns, one lz4 frame per chunk           |                | 31.8           |
//! | shuffled columns, one zstd 3 frame per chunk        |                | **30.2**       |
//!
//! Statistics summed in f64 from f32 tensors carry about 29 bits of noise below f32's
//! precision, which no encoding removes; the engine records them in f32
//! (`StepRecord::round_to_f32`), and XOR-of-previous (Gorilla's idea) gains nothing over
//! shuffling because the mantissas change in every bit from step to step. `cargo bench --bench
//! store` measures 28.8 bytes per layer-step on a real training run (tanh, 16 layers of 32,
//! every step recorded) and 42.3 on statistics random in every f32 bit.
//! What it costs, same bench and machine (the raw layout's figures above): one layer's 100,000
//! steps with all 12 metrics in 27 ms, one metric in 6 ms (a read decodes only the columns it
//! asks for), all 17 layers downsampled to 1,000 points in 415 ms; ingest at 1.4 - 2.1 M
//! layer-step rows/s with 1,000 steps a call, 1.9 ms a call with 10.
//!
//! Stored data that does not decode (bad BLOBs, JSON, states, negative counts) is reported as
//! `StoreError::Corrupt`, never a panic.

mod append_sql;
mod checkpoints;
mod codec;
mod list;
mod migrations;
mod postgres;
mod shared;
mod sqlite;
mod sweeps;
pub mod testing;
#[cfg(test)]
mod tests;

pub use codec::{CHUNK_STEPS, STEP_METRICS};

pub use postgres::{PgStore, mask_url};
pub use shared::{DEFAULT_PAGE, MAX_PAGE};
pub use sqlite::SqliteStore;

use std::sync::Arc;

use crate::runner::{Store, StoreError};

/// Opens the store a database URL names: `postgres://` or `postgresql://` for PostgreSQL
/// (shared by several servers), else SQLite (`sqlite://PATH` or a plain path; one server).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres(url) { Ok(Arc::new(PgStore::open(url).await?)) } else { Ok(Arc::new(SqliteStore::open(url).await?)) }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
