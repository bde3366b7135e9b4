//! Jobs on the rayon pool: queueing, cancellation, persistence through a [`Store`], and the
//! fan-out of live progress to watchers.
//!
//! Threads: training runs only on the runner's rayon pool; the tokio side (dispatcher, writer,
//! watchers) only awaits. Results cross over bounded channels.

mod claim_ahead;
pub mod data_policy;
mod downsample;
mod exec;
pub mod export;
pub mod filter;
pub mod fork;
pub mod histograms;
pub mod history;
pub mod limits;
pub mod lineage;
pub mod live;
pub mod live_series;
pub mod manage;
pub mod metrics;
pub mod model;
pub mod sweep;
mod sweep_ops;
mod sweep_watch;
pub mod trained;
mod trained_cache;
mod watch;
pub mod when;
mod writer;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::hash::BuildHasher;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use claim_ahead::ClaimSlot;
pub use data_policy::DataPolicy;
pub use limits::{Limits, Slot};
use live::Registry;
pub use live::{Change, LiveEvent};
pub use live_series::SeriesEvent;
pub use model::*;
pub use sweep_watch::SweepEvent;
use writer::WriterMsg;

use crate::engine::spec::{FieldError, JobSpec};
use crate::engine::train::{SetupError, check_split, data_shape};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("sweep {0} not found")]
    SweepNotFound(SweepId),
    #[error("{0}")]
    Invalid(#[from] FieldError),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("server is shutting down")]
    ShuttingDown,
    /// Not allowed by this server's configuration (e.g. a dataset outside `--data-dir`).
    #[error("{0}")]
    PermissionDenied(String),
    /// A server-wide limit is reached (queued jobs, watchers); may succeed later.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RunnerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => RunnerError::NotFound(id),
            StoreError::SweepNotFound(id) => RunnerError::SweepNotFound(id),
            other => RunnerError::Store(other),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Jobs training at once, and threads of the rayon pool; 0: this server trains nothing
    /// (it serves the API over a store other servers' workers train from).
    pub workers: usize,
    pub limits: Limits,
    /// Where dataset files may be read from.
    pub data: DataPolicy,
    /// How claims are held (see [`Leases`]).
    pub leases: Leases,
}

/// How a worker holds the jobs it claims: it renews their leases every `heartbeat`; a lease
/// not renewed for `lease` ends, and any worker may claim the job again (it reruns from step 0
/// to the same bits). A worker that could not renew for `lease` stops its jobs: someone else
/// may be training them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leases {
    pub heartbeat: Duration,
    pub lease: Duration,
    /// How often an idle worker looks for jobs when nothing has told it of one.
    pub poll: Duration,
}

impl Default for Leases {
    fn default() -> Self {
        Leases { heartbeat: Duration::from_secs(2), lease: Duration::from_secs(10), poll: Duration::from_secs(1) }
    }
}

impl RunnerConfig {
    /// `workers` workers, default limits, no dataset files.
    pub fn with_workers(workers: usize) -> Self {
        RunnerConfig { workers, limits: Limits::default(), data: DataPolicy::default(), leases: Leases::default() }
    }
}

impl Default for RunnerConfig {
    /// One worker per CPU, default limits, no dataset files.
    fn default() -> Self {
        Self::with_workers(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

struct Inner {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    pool: rayon::ThreadPool,
    /// Reads datasets to validate submissions. Separate from `pool`, whose threads may all be
    /// busy training for hours.
    io_pool: rayon::ThreadPool,
    writer: mpsc::Sender<WriterMsg>,
    /// Wakes the dispatcher: a job was queued (here, or on another server).
    wake: Arc<Notify>,
    /// This process as a worker: the owner of its claims.
    worker_id: String,
    leases: Leases,
    /// Cancelled when the server starts shutting down: watch streams end, submissions stop.
    stopping: CancellationToken,
    limits: Limits,
    data: Arc<DataPolicy>,
    /// Open watch streams.
    watchers: Arc<AtomicUsize>,
    /// Whether the store answers (false while it is unreachable): gRPC health follows it.
    healthy: tokio::sync::watch::Sender<bool>,
    /// Networks restored for predictions and exports, kept for the next call.
    trained: trained_cache::TrainedCache,
}

/// Cheap to clone: every clone drives the same runner.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

/// A worker's name: host, process and a random part, so that a restarted process is a new
/// worker (its old claims end with their leases).
fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "host".to_string() } else { host };
    let nonce = std::collections::hash_map::RandomState::new().hash_one(now_ms()) as u32;
    format!("{host}:{}:{nonce:08x}", std::process::id())
}

impl Runner {
    /// Starts the writer, the heartbeat and (with workers) the dispatcher, which claims queued
    /// jobs, and jobs whose worker stopped renewing its lease, from the store.
    pub async fn start(store: Arc<dyn Store>, config: RunnerConfig) -> Result<Runner, RunnerError> {
        let workers = config.workers;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .thread_name(|i| format!("gradlab-train-{i}"))
            .build()
            .map_err(|e| RunnerError::FailedPrecondition(format!("cannot start the training pool: {e}")))?;
        let io_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("gradlab-io-{i}"))
            .build()
            .map_err(|e| RunnerError::FailedPrecondition(format!("cannot start the I/O pool: {e}")))?;
        let registry = Arc::new(Registry::default());
        let (writer, writer_rx) = mpsc::channel(writer::QUEUE_CAPACITY);
        let (healthy, _) = tokio::sync::watch::channel(true);
        let runner = Runner {
            inner: Arc::new(Inner {
                store,
                registry,
                pool,
                io_pool,
                writer,
                wake: Arc::new(Notify::new()),
                worker_id: worker_id(),
                leases: config.leases,
                stopping: CancellationToken::new(),
                limits: config.limits,
                data: Arc::new(config.data),
                watchers: Arc::default(),
                healthy,
                trained: Default::default(),
            }),
        };
        let inner = &runner.inner;
        tokio::spawn(writer::run(inner.store.clone(), inner.registry.clone(), writer_rx, inner.healthy.clone()));
        metrics::describe();
        tokio::spawn(metrics::refresh_job_counts(inner.store.clone()));
        if let Some(events) = inner.store.events() {
            tokio::spawn(runner.clone().follow(events));
        }
        tokio::spawn(runner.clone().heartbeat());
        if workers > 0 {
            tokio::spawn(runner.clone().dispatch(workers));
        }
        info!(worker = %inner.worker_id, workers, "runner started");
        Ok(runner)
    }

    /// This process's name as a worker (the owner of its claims).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Whether the store answers now, and each change of it.
    pub fn health(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.healthy.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Holds the spec to this server's limits and data policy, then loads its dataset on the
    /// I/O pool, to reject what cannot run (a file that does not parse, a batch larger than the
    /// training split, a network too large for this input) before anything is stored. Returns
    /// the data's (input dimension, classes).
    pub async fn check_data(&self, spec: &JobSpec) -> Result<(usize, usize), RunnerError> {
        let limits = &self.inner.limits;
        limits.check_spec(spec)?;
        let (tx, rx) = oneshot::channel();
        let spec = spec.clone();
        let (data, max_bytes, exact) = (self.inner.data.clone(), limits.max_dataset_bytes, limits.clone());
        self.inner.io_pool.spawn(move || {
            let res = spec
                .dataset_spec()
                .map_err(RunnerError::Invalid)
                .and_then(|d| data.check(&d, max_bytes))
                .and_then(|()| {
                    std::panic::catch_unwind(|| check(&spec, &exact))
                        .unwrap_or_else(|_| Err(FieldError::new("dataset", "internal error while reading the dataset")))
                        .map_err(RunnerError::Invalid)
                });
            let _ = tx.send(res);
        });
        rx.await.map_err(|_| RunnerError::ShuttingDown)?
    }

    /// The refusal of a submission that would pass `--max-queued-jobs` (`adding` jobs).
    fn queue_full(&self, unfinished: u64, adding: usize) -> RunnerError {
        let adding = if adding > 1 {
            format!(" and this sweep adds {}", limits::thousands(adding as u64))
        } else {
            String::new()
        };
        RunnerError::ResourceExhausted(format!(
            "{} jobs are queued or running{adding}, this server's --max-queued-jobs {}; submit again when some have finished",
            limits::thousands(unfinished),
            limits::thousands(self.inner.limits.max_queued_jobs as u64)
        ))
    }

    /// Stores jobs through `create` with the queue limit checked in the store's transaction
    /// (so servers sharing it cannot pass it together), then wakes the dispatcher.
    fn max_unfinished(&self) -> Option<u64> {
        Some(self.inner.limits.max_queued_jobs as u64)
    }

    /// A place among the open watch streams (`--max-watchers`); the stream holds it until it ends.
    pub fn watch_slot(&self) -> Result<Slot, RunnerError> {
        let (slot, open) = Slot::take(&self.inner.watchers);
        let max = self.inner.limits.max_watchers;
        if open >= max {
            return Err(RunnerError::ResourceExhausted(format!(
                "{} watch streams are open, this server's --max-watchers {}; close one or try again later",
                limits::thousands(open as u64),
                limits::thousands(max as u64)
            )));
        }
        Ok(slot)
    }

    /// Starts shutting down: no new jobs are taken and every watch stream ends with
    /// `ShuttingDown`, so the server's graceful stop does not wait on them. Running jobs stay
    /// `running` in the store and start again with the next server.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.cancel();
    }

    /// Validates, stores as queued (durably) and wakes a worker.
    pub async fn submit(&self, spec: JobSpec, sweep_id: Option<i64>) -> Result<JobRecord, RunnerError> {
        self.refuse_when_stopping()?;
        spec.validate()?;
        self.check_data(&spec).await?;
        let record = match self.inner.store.create_job(&spec, sweep_id, self.max_unfinished()).await {
            Err(StoreError::Full(n, _)) => return Err(self.queue_full(n, 1)),
            res => res?,
        };
        info!(job = %record.id, "job queued");
        self.inner.registry.publish(record.id, LiveEvent::State(Arc::new(record.clone())));
        self.inner.wake.notify_one();
        Ok(record)
    }

    /// Cancels a job: a queued one never starts, a running one stops within one step wherever
    /// it trains. Waits (briefly) for the job to reach its terminal state and returns it.
    pub async fn cancel(&self, id: JobId) -> Result<JobRecord, RunnerError> {
        let mut changes = self.inner.registry.subscribe_changes();
        let record = match self.inner.store.request_cancel(id, now_ms()).await {
            Err(StoreError::Invalid(m)) => return Err(RunnerError::FailedPrecondition(m)),
            res => res?,
        };
        if record.state.is_terminal() {
            info!(job = %id, "queued job cancelled");
            self.inner.registry.publish(id, LiveEvent::State(Arc::new(record.clone())));
            return Ok(record);
        }
        // Running: here, it stops at its next step; elsewhere its worker hears of it.
        if let Some(live) = self.inner.registry.get(id) {
            live.request_cancel();
        }
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ch = changes.recv() => match ch {
                    Ok(live::Change::State(rec)) if rec.id == id && rec.state.is_terminal() => return Ok((*rec).clone()),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let rec = self.inner.store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
                        if rec.state.is_terminal() {
                            return Ok(rec);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = &mut deadline => {
                    warn!(job = %id, "cancelled job has not stopped within 10 s");
                    break;
                }
            }
        }
        self.inner.store.get_job(id).await?.ok_or(RunnerError::NotFound(id))
    }

    /// Resolves once the server begins to stop: long-lived streams end then.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.inner.stopping.clone().cancelled_owned()
    }

    fn refuse_when_stopping(&self) -> Result<(), RunnerError> {
        if self.inner.stopping.is_cancelled() { Err(RunnerError::ShuttingDown) } else { Ok(()) }
    }

    /// Streams a job's progress into `tx`: the stored history from `from_step`, then live, then
    /// the terminal state. Returns when the job has ended or the receiver hung up.
    pub async fn watch(&self, id: JobId, from_step: u64, tx: mpsc::Sender<Result<LiveEvent, RunnerError>>) {
        let (store, registry) = (self.inner.store.clone(), self.inner.registry.clone());
        let _open = metrics::StreamGuard::open("job");
        self.until_stopping(watch::run(store, registry, id, from_step, tx.clone()), tx).await
    }

    /// Streams job `id`'s series for `query`, downsampled over the whole planned run: stored
    /// buckets, then live ones (see [`live_series`]). Returns when the job has ended and all is
    /// sent, or the receiver hung up.
    pub async fn watch_series(
        &self,
        id: JobId,
        query: HistoryQuery,
        tx: mpsc::Sender<Result<SeriesEvent, RunnerError>>,
    ) {
        let (store, registry) = (self.inner.store.clone(), self.inner.registry.clone());
        let _open = metrics::StreamGuard::open("series");
        self.until_stopping(live_series::run(store, registry, id, query, tx.clone()), tx).await
    }

    /// Every job's state changes from now on (this server's, and other servers' through the
    /// store); a receiver that lags must re-read the store.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.inner.registry.subscribe_changes()
    }

    /// Streams a sweep into `tx` (see [`SweepEvent`]). Returns when every job of the sweep has
    /// ended or the receiver hung up.
    pub async fn watch_sweep(&self, id: SweepId, tx: mpsc::Sender<Result<SweepEvent, RunnerError>>) {
        let (store, registry) = (self.inner.store.clone(), self.inner.registry.clone());
        let _open = metrics::StreamGuard::open("sweep");
        self.until_stopping(sweep_watch::run(store, registry, id, tx.clone()), tx).await
    }

    /// Runs a watcher until it ends or the server starts stopping; then its stream ends with
    /// `ShuttingDown`.
    async fn until_stopping<T>(
        &self,
        watcher: impl std::future::Future<Output = ()>,
        tx: mpsc::Sender<Result<T, RunnerError>>,
    ) {
        let hung_up = tx.clone();
        tokio::select! {
            _ = watcher => {}
            // A client that hangs up frees its watcher (and its --max-watchers place) at once,
            // not at the job's next event, which may be hours away for a queued job.
            _ = hung_up.closed() => {}
            _ = self.inner.stopping.cancelled() => {
                let _ = tx.send(Err(RunnerError::ShuttingDown)).await;
            }
        }
    }

    /// Resolves once everything sent to the writer so far is stored.
    pub async fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(WriterMsg::Sync(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stores what the writer holds, then ends this worker's leases so that another server
    /// can claim its running jobs at once (they rerun from step 0 to the same bits).
    pub async fn shutdown(&self, flush_within: Duration) {
        self.begin_shutdown();
        if tokio::time::timeout(flush_within, self.sync()).await.is_err() {
            warn!("the history writer did not flush within {flush_within:?}; unflushed steps are recorded again");
        }
        if let Err(e) = self.inner.store.release_leases(&self.inner.worker_id).await {
            warn!(error = %e, "cannot end this worker's leases; its jobs move on when they run out");
        }
    }

    /// Claims jobs while there are free workers: the oldest queued (or abandoned) job first. A
    /// job holds a claim slot until it is about to end and a training permit until it has
    /// ended, so the next job is claimed while the last one finishes (see [`claim_ahead`]).
    async fn dispatch(self, workers: usize) {
        let inner = &self.inner;
        let claimed = ::metrics::counter!(metrics::JOBS_CLAIMED);
        let (slots, training) = (Arc::new(Semaphore::new(workers)), Arc::new(Semaphore::new(workers)));
        loop {
            let slot = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = inner.stopping.cancelled() => return,
            };
            let claim = loop {
                if inner.stopping.is_cancelled() {
                    return;
                }
                match inner.store.claim_next(&inner.worker_id, inner.leases.lease).await {
                    Ok(Some(claim)) => break claim,
                    Ok(None) => {
                        self.set_healthy(true);
                        tokio::select! {
                            _ = inner.wake.notified() => {}
                            _ = tokio::time::sleep(inner.leases.poll) => {}
                            _ = inner.stopping.cancelled() => return,
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot claim a job; trying again");
                        self.store_failed(&e);
                        tokio::time::sleep(inner.leases.poll).await;
                    }
                }
            };
            claimed.increment(1);
            let Claim { record, attempt } = claim;
            if attempt > 1 {
                info!(job = %record.id, attempt, "job claimed again: its last worker stopped renewing its lease");
            }
            let live = inner.registry.insert(record.id, attempt);
            inner.registry.publish(record.id, LiveEvent::State(Arc::new(record.clone())));
            // Only a job claimed again after its worker stopped has one: rare, so read here.
            let resume = match record.resumed_from {
                Some(step) => Some(self.read_checkpoint(record.id, step).await),
                None => None,
            };
            // Stopping here leaves the job claimed: shutdown releases this worker's leases.
            let permit = tokio::select! {
                p = training.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = inner.stopping.cancelled() => return,
            };
            let tx = inner.writer.clone();
            let (data, max_bytes) = (inner.data.clone(), inner.limits.max_dataset_bytes);
            let slot = ClaimSlot::new(slot);
            inner.pool.spawn(move || {
                exec::execute(live, record, tx, resume, slot, |spec| data.check(&spec.dataset_spec()?, max_bytes));
                drop(permit);
            });
        }
    }

    /// The checkpoint a claimed job goes on from, read again while the database is unreachable
    /// (the job's lease is renewed meanwhile); an error fails the job.
    async fn read_checkpoint(&self, id: JobId, step: u64) -> Result<Vec<u8>, String> {
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            match self.inner.store.read_checkpoint(id, step).await {
                Ok(Some(data)) => return Ok(data),
                Ok(None) => return Err(format!("its checkpoint at step {step} is gone")),
                Err(StoreError::Unavailable(e)) if !self.inner.stopping.is_cancelled() => {
                    warn!(job = %id, error = %e, "cannot read the job's checkpoint; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(format!("reading its checkpoint at step {step}: {e}")),
            }
        }
    }

    /// Renews the leases of the jobs training here; stops those another worker holds now, and
    /// those asked to be cancelled. A worker that cannot renew for a whole lease stops them all.
    async fn heartbeat(self) {
        let inner = &self.inner;
        let (renewed, lost_count) =
            (::metrics::counter!(metrics::LEASES_RENEWED), ::metrics::counter!(metrics::LEASES_LOST));
        let mut last_renewal = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(inner.leases.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = inner.stopping.cancelled() => return,
            }
            let claims = inner.registry.claims();
            match inner.store.renew_leases(&inner.worker_id, &claims, inner.leases.lease).await {
                Ok(report) => {
                    self.set_healthy(true);
                    last_renewal = tokio::time::Instant::now();
                    renewed.increment((claims.len() - report.lost.len()) as u64);
                    for id in report.lost {
                        lost_count.increment(1);
                        warn!(job = %id, "lost the job's lease: another worker holds it; stopping here");
                        if let Some(live) = inner.registry.get(id) {
                            live.lose();
                        }
                    }
                    for id in report.cancel {
                        if let Some(live) = inner.registry.get(id) {
                            live.request_cancel();
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, jobs = claims.len(), "cannot renew this worker's leases");
                    self.store_failed(&e);
                    if last_renewal.elapsed() >= inner.leases.lease {
                        for (id, _) in claims {
                            if let Some(live) = inner.registry.get(id) {
                                lost_count.increment(1);
                                warn!(job = %id, "no lease renewed for a whole lease: stopping the job here");
                                live.lose();
                            }
                        }
                    }
                }
            }
        }
    }

    /// What other servers sharing the store did: wakes the dispatcher for queued jobs, tells
    /// watchers of progress and state changes, stops jobs cancelled elsewhere.
    async fn follow(self, mut events: tokio::sync::broadcast::Receiver<StoreEvent>) {
        use tokio::sync::broadcast::error::RecvError;
        let inner = &self.inner;
        loop {
            let ev = tokio::select! {
                ev = events.recv() => ev,
                _ = inner.stopping.cancelled() => return,
            };
            match ev {
                Ok(StoreEvent::Queued) => inner.wake.notify_one(),
                Ok(StoreEvent::Progress { job, .. }) => inner.registry.poke(job),
                // Read the job only for someone who listens (watchers, dashboards, a cancel
                // waiting for the end): each state change of every job would cost every server
                // a read.
                Ok(StoreEvent::State { .. }) if !inner.registry.has_change_listeners() => {}
                Ok(StoreEvent::State { job }) => match inner.store.get_job(job).await {
                    Ok(Some(rec)) => inner.registry.publish(job, LiveEvent::State(Arc::new(rec))),
                    Ok(None) => inner.registry.deleted(job),
                    Err(e) => warn!(job = %job, error = %e, "cannot read a job another server changed"),
                },
                Ok(StoreEvent::Cancel { job }) => {
                    if let Some(live) = inner.registry.get(job) {
                        live.request_cancel();
                    }
                }
                // Missed notifications: look for work; watchers re-read on their own timers.
                Ok(StoreEvent::Resync) | Err(RecvError::Lagged(_)) => inner.wake.notify_one(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn set_healthy(&self, ok: bool) {
        self.inner.healthy.send_if_modified(|h| std::mem::replace(h, ok) != ok);
    }

    /// A store error: unhealthy while the database cannot be reached.
    fn store_failed(&self, e: &StoreError) {
        if matches!(e, StoreError::Unavailable(_)) {
            self.set_healthy(false);
        }
    }
}

fn check(spec: &JobSpec, limits: &Limits) -> Result<(usize, usize), FieldError> {
    let data = data_shape(spec).map_err(|e| match e {
        SetupError::Field(f) => f,
        SetupError::Data(d) => FieldError::new("dataset", d.to_string()),
    })?;
    check_split(spec, &data)?;
    let shape = (data.dim, data.classes);
    limits.check_params(&network_dims(spec, shape))?;
    Ok(shape)
}

/// Layer widths of the spec's network on data of this (input dimension, classes).
pub fn network_dims(spec: &JobSpec, (dim, classes): (usize, usize)) -> Vec<usize> {
    std::iter::once(dim).chain(spec.hidden.iter().copied()).chain([classes]).collect()
}
