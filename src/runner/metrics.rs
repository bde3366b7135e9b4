//! The runner's Prometheus metrics, recorded through the `metrics` facade: without an installed
//! recorder (`gradlab serve` without `--metrics-addr`, tests, the CLI) every call is a no-op.

use std::sync::Arc;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, gauge};

use super::model::{JobState, Store};

pub const JOBS: &str = "gradlab_jobs";
pub const TRAINING_STEPS: &str = "gradlab_training_steps_total";
pub const WRITER_QUEUE: &str = "gradlab_writer_queue_depth";
pub const WRITER_COMMIT: &str = "gradlab_writer_commit_seconds";
pub const STREAMS: &str = "gradlab_watch_streams";
pub const JOBS_CLAIMED: &str = "gradlab_jobs_claimed_total";
pub const LEASES_RENEWED: &str = "gradlab_leases_renewed_total";
pub const LEASES_LOST: &str = "gradlab_leases_lost_total";
pub const NOTIFY_LAG: &str = "gradlab_notify_lag_seconds";
pub const CHECKPOINTS: &str = "gradlab_checkpoints_total";
pub const CHECKPOINT_WRITE: &str = "gradlab_checkpoint_write_seconds";

/// How often the per-state job counts are read from the store.
pub const JOB_COUNTS_EVERY: Duration = Duration::from_secs(5);

pub fn describe() {
    describe_gauge!(JOBS, "Jobs in the store, by state.");
    describe_counter!(TRAINING_STEPS, "Training steps taken by this server (rate: steps per second).");
    describe_gauge!(WRITER_QUEUE, "Messages waiting for the history writer.");
    describe_histogram!(WRITER_COMMIT, metrics::Unit::Seconds, "Time to commit one batch of metrics.");
    describe_gauge!(STREAMS, "Watch streams open, by kind (job, sweep).");
    describe_counter!(JOBS_CLAIMED, "Jobs this server's workers claimed (queued, or left by a worker that stopped).");
    describe_counter!(LEASES_RENEWED, "Job leases this server renewed.");
    describe_counter!(LEASES_LOST, "Jobs this server stopped because another worker holds them now.");
    describe_counter!(CHECKPOINTS, "Checkpoints this server stored.");
    describe_histogram!(CHECKPOINT_WRITE, metrics::Unit::Seconds, "Time to store one checkpoint.");
    describe_histogram!(
        NOTIFY_LAG,
        metrics::Unit::Seconds,
        "From a change committed on another server to its notification here (the two clocks differ by their skew)."
    );
}

/// Keeps `gradlab_jobs{state}` current while the runner lives.
pub async fn refresh_job_counts(store: Arc<dyn Store>) {
    loop {
        if let Ok(counts) = store.job_counts().await {
            for state in JobState::ALL {
                gauge!(JOBS, "state" => state.as_str()).set(counts.get(state) as f64);
            }
        }
        tokio::time::sleep(JOB_COUNTS_EVERY).await;
    }
}

/// Counts an open watch stream for as long as it lives.
pub struct StreamGuard(&'static str);

impl StreamGuard {
    pub fn open(kind: &'static str) -> StreamGuard {
        gauge!(STREAMS, "kind" => kind).increment(1.0);
        StreamGuard(kind)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        gauge!(STREAMS, "kind" => self.0).decrement(1.0);
    }
}
