//! Jobs on the rayon pool: queueing, cancellation, persistence through a [`Store`], and the
//! fan-out of live progress to watchers.
//!
//! Threads: training runs only on the runner's rayon pool; the tokio side (dispatcher, writer,
//! watchers) only awaits. Results cross over bounded channels.

pub mod data_policy;
mod downsample;
mod exec;
pub mod history;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod model;
pub mod sweep;
mod sweep_ops;
mod sweep_watch;
mod watch;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use data_policy::DataPolicy;
pub use limits::{Limits, Slot};
pub use live::LiveEvent;
use live::{Phase, Registry};
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
    /// Jobs training at once, and threads of the rayon pool.
    pub workers: usize,
    pub limits: Limits,
    /// Where dataset files may be read from.
    pub data: DataPolicy,
}

impl RunnerConfig {
    /// `workers` workers, default limits, no dataset files.
    pub fn with_workers(workers: usize) -> Self {
        RunnerConfig { workers, limits: Limits::default(), data: DataPolicy::default() }
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
    queue: mpsc::UnboundedSender<JobRecord>,
    /// Cancelled when the server starts shutting down: watch streams end, submissions stop.
    stopping: CancellationToken,
    limits: Limits,
    data: Arc<DataPolicy>,
    /// Submissions between their queue-limit check and their entry in the registry.
    submitting: Arc<AtomicUsize>,
    /// Open watch streams.
    watchers: Arc<AtomicUsize>,
}

/// Cheap to clone: every clone drives the same runner.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

impl Runner {
    /// Starts the writer and the dispatcher, then queues again whatever the store says was
    /// queued or running when the last server stopped (running jobs restart from step 0).
    pub async fn start(store: Arc<dyn Store>, config: RunnerConfig) -> Result<Runner, RunnerError> {
        let workers = config.workers.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
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
        tokio::spawn(writer::run(store.clone(), registry.clone(), writer_rx));
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let runner = Runner {
            inner: Arc::new(Inner {
                store,
                registry,
                pool,
                io_pool,
                writer,
                queue,
                stopping: CancellationToken::new(),
                limits: config.limits,
                data: Arc::new(config.data),
                submitting: Arc::default(),
                watchers: Arc::default(),
            }),
        };
        tokio::spawn(runner.clone().dispatch(queue_rx, Arc::new(Semaphore::new(workers))));
        metrics::describe();
        tokio::spawn(metrics::refresh_job_counts(runner.inner.store.clone()));
        for job in runner.inner.store.unfinished_jobs().await? {
            if job.state == JobState::Running {
                info!(job = %job.id, "restarting a job interrupted by the last shutdown");
                runner.inner.store.requeue(job.id).await?;
            }
            runner.enqueue(job);
        }
        Ok(runner)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    fn enqueue(&self, job: JobRecord) {
        self.inner.registry.insert(job.id);
        // The dispatcher lives as long as the runner; a send can only fail at shutdown.
        let _ = self.inner.queue.send(job);
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

    /// A place among the server's unfinished jobs (`--max-queued-jobs`), held from before the
    /// checks until the job is in the registry, which counts it from then on.
    fn queue_slot(&self) -> Result<Slot, RunnerError> {
        self.queue_slots(1)
    }

    /// `n` places among the unfinished jobs, all or none.
    fn queue_slots(&self, n: usize) -> Result<Slot, RunnerError> {
        let (slot, submitting) = Slot::take_n(&self.inner.submitting, n);
        let unfinished = self.inner.registry.len() + submitting;
        let max = self.inner.limits.max_queued_jobs;
        if unfinished + n > max {
            let adding =
                if n > 1 { format!(" and this sweep adds {}", limits::thousands(n as u64)) } else { String::new() };
            return Err(RunnerError::ResourceExhausted(format!(
                "{} jobs are queued or running{adding}, this server's --max-queued-jobs {}; submit again when some \
                 have finished",
                limits::thousands(unfinished as u64),
                limits::thousands(max as u64)
            )));
        }
        Ok(slot)
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

    /// Validates, stores as queued (durably) and queues a job.
    pub async fn submit(&self, spec: JobSpec, sweep_id: Option<i64>) -> Result<JobRecord, RunnerError> {
        self.refuse_when_stopping()?;
        spec.validate()?;
        let slot = self.queue_slot()?;
        self.check_data(&spec).await?;
        let record = self.inner.store.create_job(&spec, sweep_id).await?;
        info!(job = %record.id, "job queued");
        self.enqueue(record.clone());
        drop(slot); // the registry counts the job now
        Ok(record)
    }

    /// Cancels a job: a queued one never starts, a running one stops within one step. Waits
    /// (briefly) for the job to reach its terminal state and returns it.
    pub async fn cancel(&self, id: JobId) -> Result<JobRecord, RunnerError> {
        let record = self.inner.store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
        if record.state.is_terminal() {
            return Err(RunnerError::FailedPrecondition(format!("job {id} already {}", record.state)));
        }
        let Some(live) = self.inner.registry.get(id) else {
            return Err(RunnerError::FailedPrecondition(format!("job {id} is not running in this server")));
        };
        let mut events = live.events.subscribe();
        let was_queued = {
            let mut phase = live.phase.lock().expect("phase lock");
            live.cancel.store(true, Ordering::Relaxed);
            let queued = *phase == Phase::Queued;
            if queued {
                *phase = Phase::Done;
            }
            queued
        };
        if was_queued {
            self.inner.store.mark_finished(id, JobState::Cancelled, now_ms(), None, None).await?;
            let rec = self.inner.store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
            self.inner.registry.publish(id, LiveEvent::State(Arc::new(rec.clone())));
            self.inner.registry.remove(id);
            info!(job = %id, "queued job cancelled");
            return Ok(rec);
        }
        // Running: the job stops at its next step; wait for the writer to record it.
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(LiveEvent::State(rec)) if rec.state.is_terminal() => return Ok((*rec).clone()),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
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

    async fn dispatch(self, mut queue: mpsc::UnboundedReceiver<JobRecord>, permits: Arc<Semaphore>) {
        while let Some(record) = queue.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else { break };
            let Some(live) = self.inner.registry.get(record.id) else { continue };
            {
                let mut phase = live.phase.lock().expect("phase lock");
                if *phase != Phase::Queued {
                    continue; // cancelled while queued
                }
                *phase = Phase::Running;
            }
            let started = now_ms();
            if let Err(e) = self.inner.store.mark_running(record.id, started).await {
                warn!(job = %record.id, error = %e, "cannot mark job running");
                live.fail(format!("cannot mark the job running: {e}"));
            }
            if let Ok(Some(rec)) = self.inner.store.get_job(record.id).await {
                self.inner.registry.publish(record.id, LiveEvent::State(Arc::new(rec)));
            }
            let tx = self.inner.writer.clone();
            let (data, max_bytes) = (self.inner.data.clone(), self.inner.limits.max_dataset_bytes);
            self.inner.pool.spawn(move || {
                exec::execute(live, record, tx, |spec| data.check(&spec.dataset_spec()?, max_bytes));
                drop(permit);
            });
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
pub(super) fn network_dims(spec: &JobSpec, (dim, classes): (usize, usize)) -> Vec<usize> {
    std::iter::once(dim).chain(spec.hidden.iter().copied()).chain([classes]).collect()
}
