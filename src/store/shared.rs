//! What both backends share, free of any SQL dialect: decoding a job's row, checking a batch of
//! metrics, planning the chunk writes of an append, building `ListJobs`' filter, page tokens and
//! a sweep's counts. Each backend runs its own SQL around these.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::codec::{CHUNK_STEPS, Chunk, Malformed, STEP_LAYER, STEP_METRICS, decode_histograms, encode_chunk};
use crate::engine::spec::JobSpec;
use crate::engine::stats::{Histogram, LayerStats};
use crate::engine::train::{EvalRecord, StepRecord};
use crate::runner::{
    ForkPoint, HistoryMeta, JobId, JobRecord, JobState, JobSummary, JobUpdate, MetricBatch, PageRequest, SeriesRows,
    StateCounts, StoreError,
};

/// Page size when the request asks for 0.
pub const DEFAULT_PAGE: u32 = 50;
/// Largest page served.
pub const MAX_PAGE: u32 = 1000;

/// The columns of a job's row that [`job_from_row`] reads, in a SELECT.
pub const JOB_COLUMNS: &str = "id, sweep_id, spec, state, steps_done, created_ms, started_ms, finished_ms, summary, error, owner, attempt, resumed_from, parent_id, fork_step";

impl From<sqlx::Error> for StoreError {
    /// Errors that say the database cannot be reached now (the connection was refused, lost or
    /// timed out; the server is shutting down) are `Unavailable`: the same call may succeed
    /// later. Everything else is a `Database` error.
    fn from(e: sqlx::Error) -> Self {
        let unreachable = match &e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                true
            }
            // PostgreSQL's connection exceptions (class 08) and operator interventions
            // (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now).
            sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
            _ => false,
        };
        if unreachable { StoreError::Unavailable(e.to_string()) } else { StoreError::Database(e.to_string()) }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration: {e}"))
    }
}

pub fn corrupt(job: JobId, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { job, problem: problem.to_string() }
}

/// A failed read of job `job`'s row: a value of the wrong type is corrupt data; anything else
/// is the database's error.
pub fn read_failed(job: JobId) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => corrupt(job, e),
        e => e.into(),
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A step as the databases store it (a signed 64-bit integer).
pub fn step_i64(step: u64) -> Result<i64, StoreError> {
    i64::try_from(step).map_err(|_| StoreError::Invalid(format!("step {step} is out of range")))
}

/// A bound for a range query: steps past i64::MAX cannot be stored, so clamping is exact.
pub fn clamp_i64(step: u64) -> i64 {
    step.min(i64::MAX as u64) as i64
}

/// A stored count or step, which must not be negative.
pub fn unsigned(id: JobId, what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(id, format!("{what} {v}")))
}

/// Reads column `name` of a job's row; a value of the wrong type is corrupt data.
pub fn col<'r, R, T>(row: &'r R, name: &str, job: JobId) -> Result<T, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(|e| corrupt(job, format!("column {name}: {e}")))
}

/// A job record from a row holding [`JOB_COLUMNS`].
pub fn job_from_row<'r, R>(row: &'r R) -> Result<JobRecord, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let id = JobId(row.try_get("id")?);
    let spec_json: String = col(row, "spec", id)?;
    let spec = serde_json::from_str(&spec_json).map_err(|e| corrupt(id, format!("spec: {e}")))?;
    let state: String = col(row, "state", id)?;
    let state = JobState::from_str(&state).map_err(|e| corrupt(id, e))?;
    let summary: Option<String> = col(row, "summary", id)?;
    let summary = match summary {
        Some(s) => Some(serde_json::from_str(&s).map_err(|e| corrupt(id, format!("summary: {e}")))?),
        None => None,
    };
    Ok(JobRecord {
        id,
        sweep_id: col(row, "sweep_id", id)?,
        spec,
        state,
        steps_done: unsigned(id, "steps_done", col(row, "steps_done", id)?)?,
        created_ms: col(row, "created_ms", id)?,
        started_ms: col(row, "started_ms", id)?,
        finished_ms: col(row, "finished_ms", id)?,
        summary,
        error: col(row, "error", id)?,
        owner: col(row, "owner", id)?,
        attempt: unsigned(id, "attempt", col(row, "attempt", id)?)?,
        resumed_from: col::<_, Option<i64>>(row, "resumed_from", id)?
            .map(|s| unsigned(id, "resumed_from", s))
            .transpose()?,
        fork_of: fork_point(id, col(row, "parent_id", id)?, col(row, "fork_step", id)?)?,
    })
}

/// A fork's stored (parent_id, fork_step): both or neither.
pub fn fork_point(id: JobId, parent: Option<i64>, step: Option<i64>) -> Result<Option<ForkPoint>, StoreError> {
    match (parent, step) {
        (None, None) => Ok(None),
        (Some(parent), Some(step)) => {
            Ok(Some(ForkPoint { parent: JobId(parent), step: unsigned(id, "fork_step", step)? }))
        }
        _ => Err(corrupt(id, "a fork's parent without its step, or the other way round")),
    }
}

/// The columns of a job's row that [`history_meta`] reads, in a SELECT.
pub const META_COLUMNS: &str = "steps_done, n_layers, depth, parent_id, fork_step";

/// What history reads need of a job, from its stored [`META_COLUMNS`].
pub fn history_meta(
    id: JobId,
    row: (i64, Option<i64>, i64, Option<i64>, Option<i64>),
) -> Result<HistoryMeta, StoreError> {
    let (steps_done, n_layers, depth, parent, step) = row;
    Ok(HistoryMeta {
        steps_done: unsigned(id, "steps_done", steps_done)?,
        n_layers: n_layers.map(|n| unsigned(id, "n_layers", n).map(|n| n as usize)).transpose()?,
        depth: unsigned(id, "depth", depth)? as usize,
        fork: fork_point(id, parent, step)?,
    })
}

/// A job's `state, attempt`, then its [`META_COLUMNS`]: what an append checks, read in one
/// statement.
pub type AppendRow = (String, i64, i64, Option<i64>, i64, Option<i64>, Option<i64>);

/// The job's state, attempt and history meta, from an [`AppendRow`].
pub fn append_meta(id: JobId, row: AppendRow) -> Result<(JobState, u64, HistoryMeta), StoreError> {
    let (state, attempt, steps_done, n_layers, depth, parent, step) = row;
    let state = JobState::from_str(&state).map_err(|e| corrupt(id, e))?;
    let meta = history_meta(id, (steps_done, n_layers, depth, parent, step))?;
    Ok((state, unsigned(id, "attempt", attempt)?, meta))
}

/// Whether a batch written under `attempt` (None: unfenced) may still be stored: the job is
/// running under that claim.
pub fn batch_fenced(id: JobId, attempt: Option<u64>, state: JobState, current: u64) -> Result<(), StoreError> {
    match attempt {
        Some(a) if (state, current) != (JobState::Running, a) => Err(StoreError::LeaseLost(id)),
        _ => Ok(()),
    }
}

/// A batch's recorded steps, checked against what the job has stored.
pub struct Checked<'a> {
    pub steps: Vec<&'a StepRecord>,
    /// Their step numbers, increasing.
    pub nums: Vec<u64>,
    /// Layers of every step (the job's from its first append on).
    pub n_layers: usize,
}

impl Checked<'_> {
    /// `steps_done` after the batch.
    pub fn steps_done(&self) -> Result<i64, StoreError> {
        Ok(step_i64(self.nums[self.nums.len() - 1])? + 1)
    }
}

/// The batch's job, which it must name.
pub fn batch_job(batch: &MetricBatch) -> Result<JobId, StoreError> {
    batch.job.ok_or_else(|| StoreError::Invalid("metric batch without a job id".into()))
}

/// Checks a batch: steps after the last stored one, in increasing order, all with the job's
/// layer count. Steps with no layers (not recorded) are skipped; None if none is left.
pub fn check_batch<'a>(
    id: JobId,
    meta: &HistoryMeta,
    batch: &'a MetricBatch,
) -> Result<Option<Checked<'a>>, StoreError> {
    let steps: Vec<&StepRecord> = batch.steps.iter().filter(|s| !s.layers.is_empty()).collect();
    let Some(first) = steps.first() else { return Ok(None) };
    let nums: Vec<u64> = steps.iter().map(|s| s.step).collect();
    if first.step < meta.steps_done {
        return Err(StoreError::Invalid(format!(
            "job {id}: step {} is already stored (steps_done {})",
            first.step, meta.steps_done
        )));
    }
    if let Some(w) = nums.windows(2).find(|w| w[1] <= w[0]) {
        return Err(StoreError::Invalid(format!("job {id}: steps not increasing ({} then {})", w[0], w[1])));
    }
    step_i64(nums[nums.len() - 1])?;
    let n_layers = meta.n_layers.unwrap_or(first.layers.len());
    if let Some(bad) = steps.iter().find(|s| s.layers.len() != n_layers) {
        return Err(StoreError::Invalid(format!(
            "job {id}: step {} has {} layers, the job's steps have {n_layers}",
            bad.step,
            bad.layers.len()
        )));
    }
    Ok(Some(Checked { steps, nums, n_layers }))
}

/// Row `i`'s column `c` of a series being appended.
pub type Values<'a> = Box<dyn Fn(usize, usize) -> f64 + Send + Sync + 'a>;

/// The series a checked batch appends to, as stored: [`STEP_LAYER`], then each layer.
pub fn series_layers(checked: &Checked<'_>) -> Vec<i64> {
    std::iter::once(STEP_LAYER).chain(0..checked.n_layers as i64).collect()
}

/// The series of a checked batch, in [`series_layers`] order: each one's stored layer, column
/// count and values.
fn series_of<'a>(checked: &'a Checked<'a>) -> Vec<(i64, usize, Values<'a>)> {
    let series = |layer: i64| -> (i64, usize, Values<'a>) {
        if layer == STEP_LAYER {
            let steps = &checked.steps;
            (
                layer,
                STEP_METRICS.len(),
                Box::new(move |i, c| [steps[i].loss, steps[i].accuracy, steps[i].lr, steps[i].grad_norm][c]),
            )
        } else {
            let vals: Vec<[f64; 12]> = checked.steps.iter().map(|s| s.layers[layer as usize].values()).collect();
            (layer, LayerStats::METRICS.len(), Box::new(move |i, c| vals[i][c]))
        }
    };
    series_layers(checked).into_iter().map(series).collect()
}

/// Chunk writes as columns, to bind in one statement each: `key` is the row of an update, the
/// first step of an insert.
#[derive(Default)]
pub struct ChunkColumns {
    pub key: Vec<i64>,
    pub layer: Vec<i64>,
    pub last_step: Vec<i64>,
    pub n: Vec<i64>,
    pub data: Vec<Vec<u8>>,
}

impl ChunkColumns {
    fn push(&mut self, key: i64, layer: i64, last_step: i64, n: i64, data: Vec<u8>) {
        self.key.push(key);
        self.layer.push(layer);
        self.last_step.push(last_step);
        self.n.push(n);
        self.data.push(data);
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The writes as rows of (key, layer, last step, n, BLOB).
    pub fn into_rows(self) -> Vec<(i64, i64, i64, i64, Vec<u8>)> {
        let cols = self.key.into_iter().zip(self.layer).zip(self.last_step).zip(self.n).zip(self.data);
        cols.map(|((((key, layer), last), n), data)| (key, layer, last, n, data)).collect()
    }
}

/// What appending a checked batch writes to all of the job's series: their tail chunks
/// rewritten, and new chunks.
pub struct SeriesWrites {
    pub updates: ChunkColumns,
    pub inserts: ChunkColumns,
}

/// Plans an append to every series of a checked batch (see [`plan_append`]), given the tail
/// chunks read of them as `(layer, row key, BLOB)`: a backend reads every tail in one statement
/// and writes the plan in two, whatever the number of layers.
pub fn plan_series(
    id: JobId,
    checked: &Checked<'_>,
    tails: &[(i64, i64, Vec<u8>)],
) -> Result<SeriesWrites, StoreError> {
    let mut out = SeriesWrites { updates: ChunkColumns::default(), inserts: ChunkColumns::default() };
    for (layer, ncols, value) in series_of(checked) {
        let tail = tails.iter().find(|(l, ..)| *l == layer).map(|(_, key, data)| (*key, data.as_slice()));
        for write in plan_append(id, layer, ncols, tail, &checked.nums, &*value)? {
            match write {
                ChunkWrite::Update { key, last_step, n, data } => out.updates.push(key, layer, last_step, n, data),
                ChunkWrite::Insert { first_step, last_step, n, data } => {
                    out.inserts.push(first_step, layer, last_step, n, data)
                }
            }
        }
    }
    Ok(out)
}

/// A write of one chunk row.
enum ChunkWrite {
    /// The series' tail chunk, `key` its row, rewritten with more steps.
    Update {
        key: i64,
        last_step: i64,
        n: i64,
        data: Vec<u8>,
    },
    Insert {
        first_step: i64,
        last_step: i64,
        n: i64,
        data: Vec<u8>,
    },
}

/// The writes that append `steps` (after every stored step) to a series whose tail chunk is
/// `tail` (its row key and BLOB): first the tail filled up to [`CHUNK_STEPS`], then full chunks.
/// So every chunk but the last of a series is full, and a read of N steps touches about
/// N / CHUNK_STEPS rows.
fn plan_append(
    id: JobId,
    layer: i64,
    ncols: usize,
    tail: Option<(i64, &[u8])>,
    steps: &[u64],
    value: &(dyn Fn(usize, usize) -> f64 + Send + Sync),
) -> Result<Vec<ChunkWrite>, StoreError> {
    let mut writes = Vec::new();
    let mut start = 0;
    if let Some((key, data)) = tail {
        let view = Chunk::decode(data, ncols).map_err(|Malformed(m)| corrupt(id, m))?;
        let old = view.len();
        if !view.is_empty() && view.step(old - 1) >= steps[0] {
            return Err(corrupt(
                id,
                format!("series {layer} holds step {} but steps_done is lower", view.step(old - 1)),
            ));
        }
        if old < CHUNK_STEPS {
            let take = (CHUNK_STEPS - old).min(steps.len());
            let merged: Vec<u64> = (0..old).map(|i| view.step(i)).chain(steps[..take].iter().copied()).collect();
            let data = encode_chunk(&merged, ncols, |i, c| if i < old { view.value(i, c) } else { value(i - old, c) });
            writes.push(ChunkWrite::Update {
                key,
                last_step: step_i64(merged[merged.len() - 1])?,
                n: merged.len() as i64,
                data,
            });
            start = take;
        }
    }
    while start < steps.len() {
        let end = (start + CHUNK_STEPS).min(steps.len());
        writes.push(ChunkWrite::Insert {
            first_step: step_i64(steps[start])?,
            last_step: step_i64(steps[end - 1])?,
            n: (end - start) as i64,
            data: encode_chunk(&steps[start..end], ncols, |i, c| value(start + i, c)),
        });
        start = end;
    }
    Ok(writes)
}

/// The series and column count a read of `layer` (None: the step scalars) addresses, with
/// `cols` checked against it.
pub fn series_key(layer: Option<u32>, cols: &[usize]) -> Result<(i64, usize), StoreError> {
    let (series, ncols) = match layer {
        None => (STEP_LAYER, STEP_METRICS.len()),
        Some(l) => (i64::from(l), LayerStats::METRICS.len()),
    };
    match cols.iter().find(|&&c| c >= ncols) {
        Some(&c) => Err(StoreError::Invalid(format!("column {c} out of range: series have {ncols}"))),
        None => Ok((series, ncols)),
    }
}

/// How many chunks, from the one holding a window's first step, cover `max_rows` rows.
pub fn chunks_for(max_rows: usize) -> i64 {
    (max_rows / CHUNK_STEPS + 2) as i64
}

/// The rows in `[lo, hi]`, at most `max_rows`, of a series' consecutive chunk BLOBs: only the
/// columns `cols` decoded.
pub fn rows_of<'a>(
    id: JobId,
    ncols: usize,
    cols: &[usize],
    lo: u64,
    hi: u64,
    max_rows: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<SeriesRows, StoreError> {
    let mut out = SeriesRows { steps: Vec::new(), columns: vec![Vec::new(); cols.len()] };
    for data in chunks {
        if out.steps.len() == max_rows {
            break;
        }
        let chunk = Chunk::decode_columns(data, ncols, Some(cols)).map_err(|Malformed(m)| corrupt(id, m))?;
        let range = chunk.rows_in(lo, hi);
        let take = range.start..range.end.min(range.start + (max_rows - out.steps.len()));
        out.steps.extend_from_slice(chunk.steps(take.clone()));
        for (dst, &c) in out.columns.iter_mut().zip(cols) {
            dst.extend_from_slice(chunk.column(c, take.clone()));
        }
    }
    Ok(out)
}

/// Stored (step, BLOB) histogram rows, decoded.
pub fn histograms_of(id: JobId, rows: Vec<(i64, Vec<u8>)>) -> Result<Vec<(u64, Vec<Histogram>)>, StoreError> {
    rows.into_iter()
        .map(|(step, data)| {
            let h = decode_histograms(&data).map_err(|Malformed(m)| corrupt(id, m))?;
            Ok((unsigned(id, "histogram step", step)?, h))
        })
        .collect()
}

/// Stored (step, loss, accuracy) evaluation rows; a missing value reads as NaN.
pub fn evals_of(id: JobId, rows: Vec<(i64, Option<f64>, Option<f64>)>) -> Result<Vec<EvalRecord>, StoreError> {
    rows.into_iter()
        .map(|(step, loss, acc)| {
            Ok(EvalRecord {
                step: unsigned(id, "eval step", step)?,
                test_loss: loss.unwrap_or(f64::NAN),
                test_accuracy: acc.unwrap_or(f64::NAN),
            })
        })
        .collect()
}

/// A page of `rows` read with one more than `size`: the page, and the next page's token.
pub fn page_of<T>(mut rows: Vec<T>, size: u32, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
    if rows.len() > size as usize {
        rows.truncate(size as usize);
        let next = rows.last().map(|r| id(r).to_string());
        (rows, next)
    } else {
        (rows, None)
    }
}

/// The id a keyset page token names (the decimal id of the previous page's last row).
pub fn page_token(token: &str) -> Result<i64, StoreError> {
    token
        .parse()
        .ok()
        .filter(|&id: &i64| id > 0 && token.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| StoreError::Invalid(format!("bad page token {token:?}")))
}

/// The page size a request asks for, capped.
pub fn page_size(page: &PageRequest) -> u32 {
    match page.size {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// A sweep's counts and end from its jobs' (state, count, latest end) groups: it has ended
/// when none of its jobs is queued or running.
pub fn sweep_counts(
    groups: impl IntoIterator<Item = (String, i64, Option<i64>)>,
) -> Result<(StateCounts, Option<i64>), String> {
    let mut counts = StateCounts::default();
    let mut last_end: Option<i64> = None;
    for (state, n, last) in groups {
        counts.add(JobState::from_str(&state)?, n as u64);
        last_end = last_end.max(last);
    }
    let finished = if counts.queued + counts.running == 0 { last_end } else { None };
    Ok((counts, finished))
}

/// Refuses a database whose schema (the highest migration it has applied) is newer than the
/// newest this build knows: an older server must not write what a newer one laid out.
pub fn check_schema(applied: Option<i64>, migrator: &sqlx::migrate::Migrator) -> Result<(), StoreError> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        Some(found) if found > known => Err(StoreError::Invalid(format!(
            "the database's schema is version {found}, newer than this gradlab knows (version {known}): \
             run a gradlab at least as new as the one that last upgraded it"
        ))),
        _ => Ok(()),
    }
}

/// A stored spec (JSON) with an update applied: the new JSON and the new spec.
pub fn updated_spec(id: JobId, stored: &str, update: &JobUpdate) -> Result<(String, JobSpec), StoreError> {
    let mut spec: JobSpec = serde_json::from_str(stored).map_err(|e| corrupt(id, format!("spec: {e}")))?;
    update.apply(&mut spec);
    Ok((spec_json(&spec)?, spec))
}

/// `Active` for a job that is not finished yet: it may not be deleted.
pub fn deletable(id: JobId, state: JobState) -> Result<(), StoreError> {
    if state.is_terminal() { Ok(()) } else { Err(StoreError::Active(id, state)) }
}

/// A job's spec as stored: JSON.
pub fn spec_json(spec: &JobSpec) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|e| StoreError::Invalid(format!("spec: {e}")))
}

/// The record of a job just inserted.
pub fn queued_job(id: JobId, sweep_id: Option<i64>, spec: &JobSpec, created_ms: i64) -> JobRecord {
    JobRecord {
        id,
        sweep_id,
        spec: spec.clone(),
        state: JobState::Queued,
        steps_done: 0,
        created_ms,
        started_ms: None,
        finished_ms: None,
        summary: None,
        error: None,
        owner: None,
        attempt: 0,
        resumed_from: None,
        fork_of: None,
    }
}

/// What a job's end stores beside its state: the summary as JSON, its verdict, and the held-out
/// accuracy and loss as columns to filter and sort on (NaN as NULL: no result); `Invalid` if
/// `state` is not an end.
pub struct EndColumns {
    pub summary: Option<String>,
    pub verdict: Option<&'static str>,
    pub test_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
}

pub fn end_columns(state: JobState, summary: Option<&JobSummary>) -> Result<EndColumns, StoreError> {
    if !state.is_terminal() {
        return Err(StoreError::Invalid(format!("{state} is not a terminal state")));
    }
    let json =
        summary.map(serde_json::to_string).transpose().map_err(|e| StoreError::Invalid(format!("summary: {e}")))?;
    let result = |x: f64| Some(x).filter(|x| !x.is_nan());
    Ok(EndColumns {
        summary: json,
        verdict: summary.map(|s| s.run.verdict.verdict.as_str()),
        test_accuracy: summary.and_then(|s| result(s.run.test_accuracy)),
        test_loss: summary.and_then(|s| result(s.run.test_loss)),
    })
}

/// The width a job is filtered and sorted by: its widest hidden layer.
pub fn width(spec: &JobSpec) -> Option<i64> {
    spec.hidden.iter().max().map(|&w| w as i64)
}
