//! The one task that writes metrics and final states to the store, in batches, and then
//! publishes them to watchers.
//!
//! Batching adapts to load: the writer takes whatever is queued (up to [`MAX_BATCH`] messages)
//! into one transaction, so a fast job's steps are committed many per transaction and a slow
//! job's immediately. The queue in front of it is bounded ([`QUEUE_CAPACITY`]): when the disk is
//! slower than training, training blocks on the queue instead of memory growing. Watchers never
//! slow either: they get a broadcast that drops what they are too slow for, and re-read the
//! store.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::live::{LiveEvent, Registry};
use super::model::{JobId, JobState, JobSummary, MetricBatch, Store};
use crate::engine::train::{EvalRecord, StepRecord};

pub const QUEUE_CAPACITY: usize = 4096;
pub const MAX_BATCH: usize = 4096;

#[derive(Debug)]
pub enum WriterMsg {
    Step(JobId, StepRecord),
    Eval(JobId, EvalRecord),
    /// The job's last message: everything before it is stored before the state changes.
    Finish {
        job: JobId,
        state: JobState,
        summary: Option<Box<JobSummary>>,
        error: Option<String>,
    },
    /// Answered once everything sent before it is stored (tests, shutdown).
    Sync(oneshot::Sender<()>),
}

pub async fn run(store: Arc<dyn Store>, registry: Arc<Registry>, mut rx: mpsc::Receiver<WriterMsg>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let queue = metrics::gauge!(super::metrics::WRITER_QUEUE);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        queue.set(rx.len() as f64);
        flush(&*store, &registry, std::mem::take(&mut pending)).await;
    }
}

async fn flush(store: &dyn Store, registry: &Registry, msgs: Vec<WriterMsg>) {
    // Group metrics per job, keeping each job's order.
    let mut batches: Vec<MetricBatch> = Vec::new();
    let mut tail = Vec::new();
    for msg in msgs {
        match msg {
            WriterMsg::Step(job, rec) => batch_for(&mut batches, job).steps.push(rec),
            WriterMsg::Eval(job, rec) => batch_for(&mut batches, job).evals.push(rec),
            other => tail.push(other),
        }
    }
    if !batches.is_empty() {
        let started = std::time::Instant::now();
        let stored = store.append_metrics(&batches).await;
        metrics::histogram!(super::metrics::WRITER_COMMIT).record(started.elapsed().as_secs_f64());
        match stored {
            Ok(()) => {
                for b in batches {
                    let job = b.job.expect("batch_for sets the job");
                    for s in b.steps {
                        registry.publish(job, LiveEvent::Step(Arc::new(s)));
                    }
                    for e in b.evals {
                        registry.publish(job, LiveEvent::Eval(e));
                    }
                }
            }
            Err(e) => {
                // The jobs cannot keep a complete history: stop them, recording why.
                error!(error = %e, "writing metrics failed");
                for b in &batches {
                    if let Some(live) = registry.get(b.job.expect("set")) {
                        live.fail(format!("storing metrics failed: {e}"));
                    }
                }
            }
        }
    }
    for msg in tail {
        match msg {
            WriterMsg::Finish { job, state, summary, error } => {
                let now = super::now_ms();
                if let Err(e) = store.mark_finished(job, state, now, summary.as_deref(), error.as_deref()).await {
                    error!(job = %job, error = %e, "recording the end of a job failed");
                }
                match store.get_job(job).await {
                    Ok(Some(rec)) => registry.publish(job, LiveEvent::State(Arc::new(rec))),
                    Ok(None) => warn!(job = %job, "finished job vanished from the store"),
                    Err(e) => error!(job = %job, error = %e, "reading a finished job failed"),
                }
                if let Some(live) = registry.get(job) {
                    live.set_done();
                }
                registry.remove(job);
            }
            WriterMsg::Sync(done) => {
                let _ = done.send(());
            }
            WriterMsg::Step(..) | WriterMsg::Eval(..) => unreachable!("grouped above"),
        }
    }
}

fn batch_for(batches: &mut Vec<MetricBatch>, job: JobId) -> &mut MetricBatch {
    let i = match batches.iter().position(|b| b.job == Some(job)) {
        Some(i) => i,
        None => {
            batches.push(MetricBatch { job: Some(job), ..Default::default() });
            batches.len() - 1
        }
    };
    &mut batches[i]
}
