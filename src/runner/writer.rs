//! The one task that writes metrics and final states to the store, in batches, and then
//! publishes them to watchers.
//!
//! Batching adapts to load: the writer takes whatever is queued (up to [`MAX_BATCH`] messages)
//! into one transaction, so a fast job's steps are committed many per transaction and a slow
//! job's immediately. The queue in front of it is bounded ([`QUEUE_CAPACITY`]): when the disk is
//! slower than training, training blocks on the queue instead of memory growing. Watchers never
//! slow either: they get a broadcast that drops what they are too slow for, and re-read the
//! store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, warn};

use super::live::{LiveEvent, Registry};
use super::model::{JobId, JobState, JobSummary, MetricBatch, Store, StoreError};
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
        /// The claim the job ran under: its end is recorded only if the job still has it.
        attempt: u64,
        state: JobState,
        summary: Option<Box<JobSummary>>,
        error: Option<String>,
    },
    /// The job's training state after `step` steps; stored after everything sent before it (its
    /// history up to `step`), fenced by the claim like its history.
    Checkpoint {
        job: JobId,
        attempt: u64,
        step: u64,
        data: Vec<u8>,
        keep: u32,
    },
    /// Answered once everything sent before it is stored (tests, shutdown).
    Sync(oneshot::Sender<()>),
}

/// How often the end of a job that could not be recorded (a full disk, say) is tried again.
pub const RETRY_FINISH_EVERY: Duration = Duration::from_secs(1);

/// A job's end, waiting to be recorded.
struct Finish {
    job: JobId,
    attempt: u64,
    state: JobState,
    summary: Option<Box<JobSummary>>,
    error: Option<String>,
}

/// Waits between tries of a write the database could not take (it is unreachable), doubling
/// up to [`RETRY_MAX`]: training waits on the bounded queue meanwhile, and nothing is lost.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub async fn run(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    mut rx: mpsc::Receiver<WriterMsg>,
    healthy: watch::Sender<bool>,
) {
    let set_healthy = |ok: bool| {
        healthy.send_if_modified(|h| std::mem::replace(h, ok) != ok);
    };
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut unrecorded: Vec<Finish> = Vec::new();
    let queue = metrics::gauge!(super::metrics::WRITER_QUEUE);
    let mut pace = Pace::default();
    loop {
        let retry = async {
            if unrecorded.is_empty() {
                std::future::pending::<()>().await
            }
            tokio::time::sleep(RETRY_FINISH_EVERY).await
        };
        tokio::select! {
            n = rx.recv_many(&mut pending, MAX_BATCH) => {
                if n == 0 {
                    return;
                }
                linger(&mut rx, &mut pending, pace.wait(Instant::now())).await;
                queue.set(rx.len() as f64);
                let started = Instant::now();
                flush(&*store, &registry, std::mem::take(&mut pending), &mut unrecorded, &set_healthy).await;
                pace.flushed(started, Instant::now());
            }
            _ = retry => {
                for f in std::mem::take(&mut unrecorded) {
                    finish(&*store, &registry, f, &mut unrecorded).await;
                }
            }
        }
    }
}

/// The shortest time the writer gathers messages after the first before it commits them: a
/// job that records a step every few milliseconds is then stored in batches instead of one
/// transaction per step. Every commit costs the database a WAL flush and, on PostgreSQL, a
/// notification to every server; without this, two servers with a worker each made PostgreSQL
/// do twice the work of one server with two workers (`cargo bench --bench scale_out`).
const LINGER_MIN: Duration = Duration::from_millis(10);
/// The longest: what a watcher of a job on a busy server may wait for its next steps.
const LINGER_MAX: Duration = Duration::from_millis(250);
/// Under load, commits are spaced this many times their own duration apart, so the writer
/// spends at most about 1/20 of the time writing.
const PACE: u32 = 19;

/// When the writer commits next. A commit costs about the same however few steps it carries
/// (each job's tail chunks are read, re-encoded and rewritten: ~2 ms for a 17-layer job), so at
/// a fixed 10 ms two workers of a 32-wide sweep kept the writer and SQLite busy for 11% of the
/// machine (`cargo bench --bench sweep`). Paced, a busy server commits less often, in bigger
/// batches; an idle one still commits a lone message after [`LINGER_MIN`].
#[derive(Debug, Default)]
struct Pace {
    /// When the last commit ended, and the gap it asks of the next one.
    last: Option<(Instant, Duration)>,
}

impl Pace {
    /// How long to gather messages, the first having come in at `now`.
    fn wait(&self, now: Instant) -> Duration {
        match self.last {
            Some((end, gap)) => (end + gap).saturating_duration_since(now).max(LINGER_MIN),
            None => LINGER_MIN,
        }
    }

    /// Notes a commit that ran from `started` to `ended`.
    fn flushed(&mut self, started: Instant, ended: Instant) {
        let gap = (ended.saturating_duration_since(started) * PACE).clamp(LINGER_MIN, LINGER_MAX);
        self.last = Some((ended, gap));
    }
}

/// Queued messages at which a linger ends early: half the queue, so the jobs filling it (a small
/// net recording every step sends tens of thousands a second) go on while the batch is written
/// instead of blocking on a full queue for the rest of a paced wait.
const ENOUGH: usize = QUEUE_CAPACITY / 2;

/// Adds to `pending` what arrives within `wait`, up to [`MAX_BATCH`] messages, ending early
/// once [`ENOUGH`] are queued. It sleeps in slices of [`LINGER_MIN`] and then takes what is
/// queued, rather than waiting on the queue: woken by every message, two jobs of a 32-wide
/// sweep cost the writer thousands of wake-ups a second.
async fn linger(rx: &mut mpsc::Receiver<WriterMsg>, pending: &mut Vec<WriterMsg>, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline || rx.len() >= ENOUGH {
            break;
        }
        tokio::time::sleep((deadline - now).min(LINGER_MIN)).await;
    }
    while pending.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(msg) => pending.push(msg),
            Err(_) => return,
        }
    }
}

/// Records a job's end and tells its watchers. If the store refuses, the end is kept in
/// `unrecorded` and tried again; the job stays live (its watchers wait) until it is recorded.
async fn finish(store: &dyn Store, registry: &Registry, mut f: Finish, unrecorded: &mut Vec<Finish>) {
    // Storing its last steps may have failed after the job ended (the end was queued behind
    // them): then its history is incomplete, and it did not succeed.
    if let Some(failure) = registry.get(f.job).and_then(|l| l.failure()) {
        f.state = JobState::Failed;
        f.error = Some(failure);
    }
    let now = super::now_ms();
    let res = store.mark_finished(f.job, f.attempt, f.state, now, f.summary.as_deref(), f.error.as_deref()).await;
    if let Err(StoreError::LeaseLost(job)) = res {
        // Another worker holds the job now and records its end.
        registry.remove(job);
        return;
    }
    if let Err(e) = res {
        if unrecorded.iter().all(|u| u.job != f.job) {
            error!(job = %f.job, error = %e, "recording the end of a job failed; trying again every second");
        }
        unrecorded.push(f);
        return;
    }
    let job = f.job;
    match store.get_job(job).await {
        Ok(Some(rec)) => registry.publish(job, LiveEvent::State(Arc::new(rec))),
        Ok(None) => warn!(job = %job, "finished job vanished from the store"),
        Err(e) => error!(job = %job, error = %e, "reading a finished job failed"),
    }
    registry.remove(job);
}

async fn flush(
    store: &dyn Store,
    registry: &Registry,
    msgs: Vec<WriterMsg>,
    unrecorded: &mut Vec<Finish>,
    set_healthy: &impl Fn(bool),
) {
    // Group metrics per job, keeping each job's order. A job whose metrics already failed to be
    // stored has stopped: what it sent after the failure is dropped, so its history ends at the
    // failure instead of going on after a gap.
    let mut batches: Vec<MetricBatch> = Vec::new();
    let mut tail = Vec::new();
    let mut failed: HashMap<JobId, bool> = HashMap::new();
    let mut has_failed = |job: JobId| {
        *failed.entry(job).or_insert_with(|| registry.get(job).is_some_and(|l| l.failure().is_some() || l.is_lost()))
    };
    for msg in msgs {
        match msg {
            WriterMsg::Step(job, _) | WriterMsg::Eval(job, _) if has_failed(job) => {}
            WriterMsg::Step(job, rec) => batch_for(&mut batches, job).steps.push(rec),
            WriterMsg::Eval(job, rec) => batch_for(&mut batches, job).evals.push(rec),
            other => tail.push(other),
        }
    }
    if !batches.is_empty() {
        for b in &mut batches {
            b.attempt = b.job.and_then(|j| registry.get(j)).map(|l| l.attempt);
        }
        match append(store, &batches, set_healthy).await {
            Ok(lost) => publish(registry, batches, &lost),
            // One job's batch the store refuses must not stop the jobs it was written with:
            // each is stored on its own, and only those refused again stop.
            Err(e) if batches.len() > 1 => {
                warn!(error = %e, jobs = batches.len(), "writing metrics failed; writing each job's on its own");
                for b in batches {
                    match append(store, std::slice::from_ref(&b), set_healthy).await {
                        Ok(lost) => publish(registry, vec![b], &lost),
                        Err(e) => fail(registry, &[b], &e),
                    }
                }
            }
            Err(e) => fail(registry, &batches, &e),
        }
    }
    for msg in tail {
        match msg {
            WriterMsg::Finish { job, attempt, state, summary, error } => {
                finish(store, registry, Finish { job, attempt, state, summary, error }, unrecorded).await
            }
            WriterMsg::Checkpoint { job, attempt, step, data, keep } => {
                let live = registry.get(job);
                // Not after a failed write of its steps (the history would end before it).
                if !live.as_ref().is_some_and(|l| l.failure().is_some() || l.is_lost()) {
                    checkpoint(store, registry, job, attempt, step, &data, keep, set_healthy).await;
                }
                if let Some(live) = live {
                    live.end_checkpoint();
                }
            }
            WriterMsg::Sync(done) => {
                let _ = done.send(());
            }
            WriterMsg::Step(..) | WriterMsg::Eval(..) => unreachable!("grouped above"),
        }
    }
}

/// Runs a write until the database answers: while it is unreachable, waits (doubling up to
/// [`RETRY_MAX`]) with gRPC health saying so; each try's time goes to the `seconds` histogram.
async fn until_reachable<T, F: Future<Output = Result<T, StoreError>>>(
    what: &str,
    seconds: &'static str,
    set_healthy: &impl Fn(bool),
    mut write: impl FnMut() -> F,
) -> Result<T, StoreError> {
    let mut wait = RETRY_FIRST;
    loop {
        let started = std::time::Instant::now();
        let stored = write().await;
        metrics::histogram!(seconds).record(started.elapsed().as_secs_f64());
        match stored {
            Err(StoreError::Unavailable(e)) => {
                warn!(error = %e, "the database is unreachable; writing {what} again in {wait:?}");
                set_healthy(false);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
            other => {
                set_healthy(true);
                return other;
            }
        }
    }
}

/// Stores batches in one transaction, trying again while the database is unreachable: the
/// jobs whose claim another worker holds now (their batches were not stored), or the error.
async fn append(
    store: &dyn Store,
    batches: &[MetricBatch],
    set_healthy: &impl Fn(bool),
) -> Result<Vec<JobId>, StoreError> {
    until_reachable("metrics", super::metrics::WRITER_COMMIT, set_healthy, || store.append_metrics(batches)).await
}

/// Stores a checkpoint, trying again while the database is unreachable. One that cannot be
/// stored costs nothing but the time to redo its steps after a crash: the job goes on.
#[allow(clippy::too_many_arguments)]
async fn checkpoint(
    store: &dyn Store,
    registry: &Registry,
    job: JobId,
    attempt: u64,
    step: u64,
    data: &[u8],
    keep: u32,
    set_healthy: &impl Fn(bool),
) {
    let save = || store.save_checkpoint(job, attempt, step, data, keep);
    match until_reachable("a checkpoint", super::metrics::CHECKPOINT_WRITE, set_healthy, save).await {
        Ok(()) => metrics::counter!(super::metrics::CHECKPOINTS).increment(1),
        Err(StoreError::LeaseLost(_)) => {
            if let Some(live) = registry.get(job) {
                live.lose();
            }
        }
        Err(e) => error!(job = %job, step, error = %e, "storing a checkpoint failed; the job goes on"),
    }
}

/// Tells watchers what was stored; jobs another worker holds now stop here.
fn publish(registry: &Registry, batches: Vec<MetricBatch>, lost: &[JobId]) {
    for job in lost {
        warn!(job = %job, "not storing the job's steps: another worker holds it now");
        if let Some(live) = registry.get(*job) {
            live.lose();
        }
    }
    for b in batches {
        let job = b.job.expect("batch_for sets the job");
        if lost.contains(&job) {
            continue;
        }
        for s in b.steps {
            registry.publish(job, LiveEvent::Step(Arc::new(s)));
        }
        for e in b.evals {
            registry.publish(job, LiveEvent::Eval(e));
        }
    }
}

/// The jobs cannot keep a complete history: stop them, recording why.
fn fail(registry: &Registry, batches: &[MetricBatch], e: &StoreError) {
    error!(error = %e, "writing metrics failed");
    for b in batches {
        if let Some(live) = registry.get(b.job.expect("batch_for sets the job")) {
            live.fail(format!("storing metrics failed: {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(step: u64) -> WriterMsg {
        WriterMsg::Eval(JobId(1), EvalRecord { step, test_loss: 0.0, test_accuracy: 0.0 })
    }

    fn steps(msgs: &[WriterMsg]) -> Vec<u64> {
        msgs.iter().map(|m| if let WriterMsg::Eval(_, e) = m { e.step } else { u64::MAX }).collect()
    }

    #[tokio::test]
    async fn a_linger_takes_what_arrived_in_order_up_to_a_batch() {
        let (tx, mut rx) = mpsc::channel(2 * MAX_BATCH);
        for step in 0..MAX_BATCH as u64 + 5 {
            tx.send(eval(step)).await.unwrap();
        }
        // As `run` does: the first message wakes the writer, the linger gathers the rest.
        let mut pending = vec![rx.recv().await.unwrap()];
        linger(&mut rx, &mut pending, LINGER_MIN).await;
        assert_eq!(steps(&pending), (0..MAX_BATCH as u64).collect::<Vec<_>>());
        assert_eq!(rx.len(), 5, "the rest waits for the next batch");

        // What is sent while the writer lingers joins the batch.
        let mut pending = vec![rx.recv().await.unwrap()];
        let sender = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.send(eval(99_999)).await.unwrap();
        });
        linger(&mut rx, &mut pending, LINGER_MIN).await;
        sender.await.unwrap();
        let rest = MAX_BATCH as u64..MAX_BATCH as u64 + 5;
        assert_eq!(steps(&pending), rest.chain([99_999]).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_linger_ends_early_once_half_the_queue_is_waiting() {
        let (tx, mut rx) = mpsc::channel(QUEUE_CAPACITY);
        let long = Duration::from_secs(600);
        let within = Duration::from_secs(60);
        // Already queued: no wait at all.
        for step in 0..ENOUGH as u64 {
            tx.send(eval(step)).await.unwrap();
        }
        let mut pending = Vec::new();
        tokio::time::timeout(within, linger(&mut rx, &mut pending, long))
            .await
            .expect("a linger with a half-full queue ends");
        assert_eq!(pending.len(), ENOUGH);

        // Arriving during the wait: it ends at the next slice.
        let mut pending = Vec::new();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(LINGER_MIN).await;
            for step in 0..ENOUGH as u64 + 1 {
                tx.send(eval(step)).await.unwrap();
            }
            tx
        });
        tokio::time::timeout(within, linger(&mut rx, &mut pending, long)).await.expect("a linger that fills up ends");
        let tx = sender.await.unwrap();
        assert!(pending.len() >= ENOUGH);

        // A few messages do not end it.
        tx.send(eval(0)).await.unwrap();
        let mut pending = Vec::new();
        let short = tokio::time::timeout(4 * LINGER_MIN, linger(&mut rx, &mut pending, long)).await;
        assert!(short.is_err(), "a linger with little queued waits its time");
    }

    #[test]
    fn a_busy_writer_spaces_its_commits_and_an_idle_one_commits_soon() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pace = Pace::default();
        assert_eq!(pace.wait(t0), LINGER_MIN, "the first message");
        // A 2 ms commit: the next comes 38 ms after it, wherever in that gap its first message came.
        pace.flushed(t0, t0 + ms(2));
        assert_eq!(pace.wait(t0 + ms(2)), ms(38));
        assert_eq!(pace.wait(t0 + ms(35)), LINGER_MIN, "never less than LINGER_MIN");
        // Idle since: a lone message waits LINGER_MIN only.
        assert_eq!(pace.wait(t0 + ms(1000)), LINGER_MIN);
        // Quick commits keep the minimum; slow ones the maximum.
        pace.flushed(t0, t0 + Duration::from_micros(100));
        assert_eq!(pace.wait(t0 + Duration::from_micros(100)), LINGER_MIN);
        pace.flushed(t0, t0 + ms(100));
        assert_eq!(pace.wait(t0 + ms(100)), LINGER_MAX);
    }
}
