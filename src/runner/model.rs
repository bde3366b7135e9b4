//! The runner's vocabulary: jobs, their states and records, metric batches, history queries,
//! and the [`Store`] trait that persistence implements.
//!
//! The store depends on these types, never the other way round: the runner and the API see only
//! the trait, so a second backend (PostgreSQL) plugs in without touching either.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::sweep::SweepSpec;
use crate::engine::spec::JobSpec;
use crate::engine::stats::Histogram;
use crate::engine::train::{EvalRecord, StepRecord, Summary};
use crate::engine::verdict::Verdict;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] =
        [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed, JobState::Cancelled];

    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown state {s:?}; known: queued, running, succeeded, failed, cancelled"))
    }
}

/// What mean-field theory predicted for a job's network at initialization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanFieldSummary {
    #[serde(with = "crate::engine::nonfinite")]
    pub sigma_w: f64,
    #[serde(with = "crate::engine::nonfinite")]
    pub sigma_b: f64,
    /// The fixed point q*, if the length map settles (0 when q drifts to 0).
    #[serde(with = "crate::engine::nonfinite::option", default)]
    pub q_star: Option<f64>,
    /// converged, drifts_to_zero, drifts_to_infinity or neutral.
    pub fixed_point: String,
    #[serde(with = "crate::engine::nonfinite")]
    pub chi1: f64,
    /// ordered, critical or chaotic.
    pub regime: String,
    /// 1/|ln chi_1| layers (infinite at chi_1 = 1).
    #[serde(with = "crate::engine::nonfinite")]
    pub depth_scale: f64,
    /// Predicted first/last hidden-layer weight-gradient-norm ratio.
    #[serde(with = "crate::engine::nonfinite")]
    pub first_last_ratio: f64,
    /// Predicted per hidden layer: weight-gradient norm over the last hidden layer's.
    #[serde(with = "crate::engine::nonfinite::vec")]
    pub layer_ratios: Vec<f64>,
}

/// How a job ended, with the prediction it is compared with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    #[serde(flatten)]
    pub run: Summary,
    pub mean_field: Option<MeanFieldSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub sweep_id: Option<i64>,
    pub spec: JobSpec,
    pub state: JobState,
    /// Training steps completed (as stored: the last stored step + 1).
    pub steps_done: u64,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub summary: Option<JobSummary>,
    /// Why the job failed, if it did.
    pub error: Option<String>,
    /// The worker that claimed the job (running, or last ran it); None before any claim.
    pub owner: Option<String>,
    /// Claims so far: 1 once started, more when a worker died and another took the job over.
    pub attempt: u64,
    /// The checkpoint's step the latest claim went on from; None when it started at step 0.
    pub resumed_from: Option<u64>,
    /// The job and step this job was forked from (`Runner::fork`); its history before that
    /// step is its parent's (`runner::lineage`).
    pub fork_of: Option<ForkPoint>,
}

/// Where a fork starts: its parent's checkpoint at `step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkPoint {
    pub parent: JobId,
    pub step: u64,
}

impl JobRecord {
    pub fn verdict(&self) -> Option<Verdict> {
        self.summary.as_ref().map(|s| s.run.verdict.verdict)
    }
}

/// Filters for listing jobs; every set field must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFilter {
    /// Any of these states (empty: any state).
    pub states: Vec<JobState>,
    /// Canonical activation name (as `Activation`'s Display writes it).
    pub activation: Option<String>,
    pub min_depth: Option<u32>,
    pub max_depth: Option<u32>,
    /// A label key, and optionally the value it must have.
    pub label: Option<(String, Option<String>)>,
    pub verdict: Option<Verdict>,
    /// Substring of the job's name.
    pub name_contains: Option<String>,
    pub sweep_id: Option<i64>,
    /// Finished before this time (Unix ms); unfinished jobs never match.
    pub finished_before_ms: Option<i64>,
    /// Not labelled with this key and value (retention spares `keep=true`).
    pub without_label: Option<(String, String)>,
    /// A parsed `filter` (see [`super::filter`]): all of them hold.
    pub conditions: Vec<super::filter::Cond>,
}

/// What a job list is sorted by and which way; jobs without the key (no result yet) come last
/// either way, and ties go by creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub key: super::filter::SortKey,
    pub descending: bool,
}

impl Order {
    pub const NEWEST_FIRST: Order = Order { key: super::filter::SortKey::Created, descending: true };
    pub const OLDEST_FIRST: Order = Order { key: super::filter::SortKey::Created, descending: false };
}

impl Default for Order {
    fn default() -> Self {
        Order::NEWEST_FIRST
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many records (the store caps it).
    pub size: u32,
    /// The `next_token` of the previous page, opaque to callers.
    pub token: Option<String>,
}

/// What `UpdateJob` changes of a job: its name and labels, nothing else.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobUpdate {
    pub name: Option<String>,
    pub set_labels: std::collections::BTreeMap<String, String>,
    pub remove_labels: Vec<String>,
}

impl JobUpdate {
    /// The job's spec with this applied.
    pub fn apply(&self, spec: &mut JobSpec) {
        if let Some(n) = &self.name {
            spec.name = n.clone();
        }
        for k in &self.remove_labels {
            spec.labels.remove(k);
        }
        spec.labels.extend(self.set_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Records of one job, written together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricBatch {
    pub job: Option<JobId>,
    /// The claim the records were made under: the store refuses them once the job has been
    /// claimed again (None: not checked, for tools and tests that own the store).
    pub attempt: Option<u64>,
    /// Recorded steps in increasing step order (records with empty `layers` are not stored).
    pub steps: Vec<StepRecord>,
    pub evals: Vec<EvalRecord>,
}

/// Which part of a job's history to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryQuery {
    /// Layer indices (0 = first hidden layer); None: all layers.
    pub layers: Option<Vec<u32>>,
    /// Names from `LayerStats::METRICS`, plus the per-step `loss`, `accuracy`, `lr` and
    /// `global_grad_norm` (reported with `layer: None`). None: every metric.
    pub metrics: Option<Vec<String>>,
    /// Inclusive step range.
    pub from_step: Option<u64>,
    pub to_step: Option<u64>,
    /// Downsample each series to at most this many points, keeping each bucket's min, max and
    /// last value. None or 0: full resolution.
    pub max_points: Option<u32>,
}

/// One metric of one layer (or of the whole step, `layer: None`) over steps. At full
/// resolution `min == max == values`; downsampled, `steps[i]`/`values[i]` are the bucket's last
/// point and `min[i]`/`max[i]` its extremes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub layer: Option<u32>,
    pub metric: String,
    pub steps: Vec<u64>,
    pub values: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

/// What a history read needs of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryMeta {
    pub steps_done: u64,
    /// Layers per stored step (None before the first append).
    pub n_layers: Option<usize>,
    /// Hidden layers of the job's spec.
    pub depth: usize,
    /// A fork's parent and step: its history before that step is the parent's.
    pub fork: Option<ForkPoint>,
}

/// Consecutive stored rows of one series: `columns[k][i]` is the k-th requested column at
/// `steps[i]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesRows {
    pub steps: Vec<u64>,
    pub columns: Vec<Vec<f64>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryResult {
    pub series: Vec<Series>,
    pub evals: Vec<EvalRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SweepId(pub i64);

impl fmt::Display for SweepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Jobs of a sweep by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl StateCounts {
    fn slot(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Queued => &mut self.queued,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
            JobState::Cancelled => &mut self.cancelled,
        }
    }

    /// Jobs in `state`.
    pub fn get(&self, state: JobState) -> u64 {
        *self.clone().slot(state)
    }

    pub fn add(&mut self, state: JobState, n: u64) {
        *self.slot(state) += n;
    }

    pub fn total(&self) -> u64 {
        self.queued + self.running + self.done()
    }

    /// Jobs in a terminal state.
    pub fn done(&self) -> u64 {
        self.succeeded + self.failed + self.cancelled
    }

    pub fn of<'a>(states: impl IntoIterator<Item = &'a JobState>) -> StateCounts {
        let mut c = StateCounts::default();
        for s in states {
            c.add(*s, 1);
        }
        c
    }
}

/// Where a sweep is, derived from its jobs' states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepState {
    /// No job has started yet.
    Queued,
    Running,
    /// Every job ended and every one succeeded.
    Succeeded,
    /// Every job ended, some failed (and none was cancelled).
    Failed,
    /// Every job ended, some were cancelled.
    Cancelled,
}

impl SweepState {
    pub fn as_str(self) -> &'static str {
        match self {
            SweepState::Queued => "queued",
            SweepState::Running => "running",
            SweepState::Succeeded => "succeeded",
            SweepState::Failed => "failed",
            SweepState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, SweepState::Succeeded | SweepState::Failed | SweepState::Cancelled)
    }
}

impl fmt::Display for SweepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub id: SweepId,
    pub spec: SweepSpec,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// When `CancelSweep` was called, if it was.
    pub cancelled_ms: Option<i64>,
    /// When the last job ended, once every job has.
    pub finished_ms: Option<i64>,
    pub counts: StateCounts,
}

impl SweepRecord {
    pub fn state(&self) -> SweepState {
        let c = &self.counts;
        if c.queued + c.running > 0 {
            if c.running == 0 && c.done() == 0 { SweepState::Queued } else { SweepState::Running }
        } else if c.cancelled > 0 {
            SweepState::Cancelled
        } else if c.failed > 0 {
            SweepState::Failed
        } else {
            SweepState::Succeeded
        }
    }
}

/// A job claimed by a worker, and the attempt its writes must carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub record: JobRecord,
    pub attempt: u64,
}

/// A stored checkpoint of a job: its step, size and when it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointInfo {
    pub step: u64,
    pub bytes: u64,
    pub created_ms: i64,
}

/// What renewing a worker's leases found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseReport {
    /// Jobs the worker no longer holds (claimed again elsewhere, or ended): stop them and
    /// write nothing more.
    pub lost: Vec<JobId>,
    /// Jobs it holds whose cancellation was asked for (on any server).
    pub cancel: Vec<JobId>,
}

/// What the store tells every server sharing it (PostgreSQL's LISTEN/NOTIFY); a store with one
/// server (SQLite) tells nothing. Each names what changed, never the data: the receiver reads
/// the committed rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// A job was queued: an idle worker may claim it.
    Queued,
    /// A job's history was stored up to `step`.
    Progress { job: JobId, step: u64 },
    /// A job's state changed (claimed, finished, cancelled).
    State { job: JobId },
    /// Cancelling a running job was asked for: its worker stops it.
    Cancel { job: JobId },
    /// Notifications may have been missed (the connection was lost and is back): re-read.
    Resync,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("sweep {0} not found")]
    SweepNotFound(SweepId),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached now (connection refused, lost or timed out): the same
    /// call may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A write under a claim the job no longer has (another worker took it over).
    #[error("job {0} is claimed by another worker")]
    LeaseLost(JobId),
    /// Queued or running jobs fill the limit given: (unfinished now, the limit).
    #[error("{0} jobs are queued or running, the limit is {1}")]
    Full(u64, u64),
    /// A delete of a job that is still queued or running.
    #[error("job {0} is {1}")]
    Active(JobId, JobState),
    /// A delete or requeue of jobs that others were forked from: (the job, its forks).
    #[error("job {0} has forks ({forks}): delete them first", forks = .1.iter().map(|f| format!("job {f}")).collect::<Vec<_>>().join(", "))]
    HasForks(JobId, Vec<JobId>),
    #[error("corrupt stored data for job {job}: {problem}")]
    Corrupt { job: JobId, problem: String },
    #[error("corrupt stored data for sweep {sweep}: {problem}")]
    CorruptSweep { sweep: SweepId, problem: String },
}

/// Persistence of jobs and their histories. Every method is one transaction: a state change
/// is durable when the call returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new job as queued and returns it with its id; `Full` if queued and running jobs
    /// would then be more than `max_unfinished` (checked in the same transaction, so servers
    /// sharing the store cannot together pass the limit).
    async fn create_job(
        &self,
        spec: &JobSpec,
        sweep_id: Option<i64>,
        max_unfinished: Option<u64>,
    ) -> Result<JobRecord, StoreError>;
    async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;
    /// A page of jobs matching `filter`, and the token of the next page if there is one.
    async fn list_jobs(
        &self,
        filter: &JobFilter,
        order: Order,
        page: &PageRequest,
    ) -> Result<(Vec<JobRecord>, Option<String>), StoreError>;
    /// Claims the job to train next for worker `owner`, for `lease`: the oldest queued job, or
    /// else the oldest running one whose lease has ended (its worker stopped renewing it). The
    /// job becomes running under `owner` with its attempt increased. A job claimed again goes on
    /// from its newest checkpoint (`JobRecord::resumed_from`): the history its last attempt
    /// stored after that step goes, in the same transaction; without a checkpoint it all goes
    /// and the job runs again from step 0. Two workers never claim the same attempt. None: nothing to claim.
    async fn claim_next(&self, owner: &str, lease: std::time::Duration) -> Result<Option<Claim>, StoreError>;
    /// Extends `owner`'s leases on these (job, attempt) claims to `lease` from now.
    async fn renew_leases(
        &self,
        owner: &str,
        claims: &[(JobId, u64)],
        lease: std::time::Duration,
    ) -> Result<LeaseReport, StoreError>;
    /// Ends `owner`'s leases now (a server stopping gracefully): its running jobs can be
    /// claimed at once.
    async fn release_leases(&self, owner: &str) -> Result<(), StoreError>;
    /// Cancels job `id`: a queued one is cancelled at once; a running one is marked for its
    /// worker to stop (`StoreEvent::Cancel`). Returns the job as it is then; `Invalid` if it
    /// had already ended.
    async fn request_cancel(&self, id: JobId, at_ms: i64) -> Result<JobRecord, StoreError>;
    /// A claimed job -> a terminal state, with the summary or the error; `LeaseLost` unless
    /// the job is still running under `attempt`.
    async fn mark_finished(
        &self,
        id: JobId,
        attempt: u64,
        state: JobState,
        finished_ms: i64,
        summary: Option<&JobSummary>,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Stores a new queued job, a fork of `parent` at its checkpoint at `step`: the checkpoint
    /// is the fork's first (copied), its history before `step` is read from the parent. All or
    /// nothing, in one transaction; `Full` as for `create_job`, `Invalid` when the parent's
    /// checkpoint at `step` is gone.
    async fn create_fork(
        &self,
        spec: &JobSpec,
        parent: JobId,
        step: u64,
        max_unfinished: Option<u64>,
    ) -> Result<JobRecord, StoreError>;
    /// Jobs forked from job `id`, oldest first.
    async fn forks(&self, id: JobId) -> Result<Vec<JobId>, StoreError>;
    /// Stores a claimed job's training state after `step` steps (`engine::checkpoint`), its
    /// history up to that step being stored already, and keeps only the newest `keep` of its
    /// checkpoints; in one transaction, so a crash leaves the previous ones whole. `LeaseLost`
    /// unless the job is still running under `attempt`.
    async fn save_checkpoint(
        &self,
        id: JobId,
        attempt: u64,
        step: u64,
        data: &[u8],
        keep: u32,
    ) -> Result<(), StoreError>;
    /// The bytes of job `id`'s checkpoint at `step`, if it is stored.
    async fn read_checkpoint(&self, id: JobId, step: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Job `id`'s stored checkpoints, oldest first (`NotFound` for an unknown job).
    async fn checkpoints(&self, id: JobId) -> Result<Vec<CheckpointInfo>, StoreError>;
    /// Back to queued with no history, from any state (how a failed or cancelled job is
    /// retried).
    async fn requeue(&self, id: JobId) -> Result<(), StoreError>;
    /// Appends recorded steps and evaluations of one or more jobs in one transaction, and
    /// advances each job's `steps_done`. A batch whose `attempt` is no longer the job's claim
    /// is not written; the jobs of such batches are returned (the others are stored).
    async fn append_metrics(&self, batches: &[MetricBatch]) -> Result<Vec<JobId>, StoreError>;
    /// Recorded steps with `step >= from_step`, in step order, at most `limit` of them, each
    /// with its per-layer statistics and histograms: what a watcher replays.
    async fn read_steps(&self, id: JobId, from_step: u64, limit: usize) -> Result<Vec<StepRecord>, StoreError> {
        super::history::read_steps(self, id, from_step, limit).await
    }
    /// The histograms stored for steps in `[lo, hi]`, by step, each step's for every layer.
    async fn read_histograms(&self, id: JobId, lo: u64, hi: u64) -> Result<Vec<(u64, Vec<Histogram>)>, StoreError>;
    async fn read_evals(&self, id: JobId, from_step: u64) -> Result<Vec<EvalRecord>, StoreError>;
    /// Series for a history query, all at once (`runner::history::collect`; long histories
    /// are better read in pieces with `runner::history::read`).
    async fn history(&self, id: JobId, query: &HistoryQuery) -> Result<HistoryResult, StoreError> {
        super::history::collect(self, id, query).await
    }
    /// What a history read needs to know before it reads (see `runner::history`).
    async fn history_meta(&self, id: JobId) -> Result<HistoryMeta, StoreError>;
    /// Stored rows of one series (None: the step scalars, `STEP_METRICS`; Some(l): layer l's
    /// `LayerStats::METRICS`) with steps in `[lo, hi]`, in step order, at most `max_rows` of
    /// them (the first ones); only the columns `cols` (indices into those metric lists).
    async fn read_series(
        &self,
        id: JobId,
        layer: Option<u32>,
        cols: &[usize],
        lo: u64,
        hi: u64,
        max_rows: usize,
    ) -> Result<SeriesRows, StoreError>;
    /// Jobs in the store by state.
    async fn job_counts(&self) -> Result<StateCounts, StoreError>;
    /// Stores a sweep and all its jobs (queued, in the given order) in one transaction: either
    /// all of it is stored or nothing is (`Full` as for `create_job`).
    async fn create_sweep(
        &self,
        spec: &SweepSpec,
        jobs: &[JobSpec],
        max_unfinished: Option<u64>,
    ) -> Result<(SweepRecord, Vec<JobRecord>), StoreError>;
    async fn get_sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError>;
    /// A page of sweeps, newest first, and the token of the next page if there is one.
    async fn list_sweeps(&self, page: &PageRequest) -> Result<(Vec<SweepRecord>, Option<String>), StoreError>;
    /// All jobs of a sweep, in creation (expansion) order.
    async fn sweep_jobs(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError>;
    /// Records that the sweep was cancelled (the first time only).
    async fn mark_sweep_cancelled(&self, id: SweepId, at_ms: i64) -> Result<(), StoreError>;
    /// Deletes finished jobs and everything stored of them (history, histograms, evaluations,
    /// labels), all or none in one transaction: `NotFound` for an unknown id, `Active` for a
    /// queued or running job, and then nothing is deleted.
    async fn delete_jobs(&self, ids: &[JobId]) -> Result<(), StoreError>;
    /// Deletes a sweep with its jobs (all finished, else `Active`) in one transaction; returns
    /// how many jobs went.
    async fn delete_sweep(&self, id: SweepId) -> Result<u64, StoreError>;
    /// Deletes the sweeps none of whose jobs are left; returns how many.
    async fn delete_empty_sweeps(&self) -> Result<u64, StoreError>;
    /// Bytes the database takes (SQLite: its file's pages; PostgreSQL: the database's size).
    async fn size_bytes(&self) -> Result<u64, StoreError>;
    /// Gives the space of deleted rows back to the file system where the backend can (SQLite:
    /// VACUUM, which rewrites the file and holds the writer meanwhile); PostgreSQL leaves it to
    /// its autovacuum, which makes it reusable for new rows.
    async fn vacuum(&self) -> Result<(), StoreError>;
    /// Renames a job and sets or removes its labels (in its spec and its label index); returns
    /// the job as it is now.
    async fn update_job(&self, id: JobId, update: &JobUpdate) -> Result<JobRecord, StoreError>;
    /// What other servers sharing the store did, as it happens; None for a store only one
    /// server uses.
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }
}
