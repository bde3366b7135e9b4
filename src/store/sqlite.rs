//! [`SqliteStore`]: the [`Store`] trait over one SQLite file (see the `store` module docs).

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use tokio_stream::StreamExt;

use super::codec::{
    CHUNK_STEPS, Chunk, Malformed, STEP_LAYER, STEP_METRICS, decode_histograms, encode_chunk, encode_histograms,
    layer_stats_from,
};
use super::sweeps;
use crate::engine::spec::JobSpec;
use crate::engine::stats::LayerStats;
use crate::engine::train::{EvalRecord, StepRecord};
use crate::runner::sweep::SweepSpec;
use crate::runner::{
    Claim, HistoryMeta, JobFilter, JobId, JobRecord, JobState, JobSummary, LeaseReport, MetricBatch, Order,
    PageRequest, SeriesRows, StateCounts, Store, StoreError, SweepId, SweepRecord,
};

/// Page size when the request asks for 0.
pub const DEFAULT_PAGE: u32 = 50;
/// Largest page served.
pub const MAX_PAGE: u32 = 1000;

const JOB_COLUMNS: &str =
    "id, sweep_id, spec, state, steps_done, created_ms, started_ms, finished_ms, summary, error, owner, attempt";

/// Chunks of one series whose steps may fall in `[?3, ?4]`: from the last chunk starting at or
/// before `?3` (it may reach into the range) up to the last one starting at or before `?4`.
const RANGE_CHUNKS: &str = "SELECT data FROM chunks WHERE job_id = ?1 AND layer = ?2 AND first_step <= ?4 \
     AND first_step >= coalesce((SELECT max(first_step) FROM chunks \
         WHERE job_id = ?1 AND layer = ?2 AND first_step <= ?3), 0) \
     ORDER BY first_step";

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration: {e}"))
    }
}

fn corrupt(job: JobId, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { job, problem: problem.to_string() }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A step as SQLite stores it (INTEGER is i64).
fn step_i64(step: u64) -> Result<i64, StoreError> {
    i64::try_from(step).map_err(|_| StoreError::Invalid(format!("step {step} is out of range")))
}

/// A bound for a range query: steps past i64::MAX cannot be stored, so clamping is exact.
fn clamp_i64(step: u64) -> i64 {
    step.min(i64::MAX as u64) as i64
}

/// Reads column `name` of a job's row; a value of the wrong type is corrupt data.
fn col<'r, T>(row: &'r SqliteRow, name: &str, job: JobId) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(|e| corrupt(job, format!("column {name}: {e}")))
}

fn job_from_row(row: &SqliteRow) -> Result<JobRecord, StoreError> {
    let id = JobId(row.try_get("id")?);
    let spec_json: String = col(row, "spec", id)?;
    let spec: JobSpec = serde_json::from_str(&spec_json).map_err(|e| corrupt(id, format!("spec: {e}")))?;
    let state: String = col(row, "state", id)?;
    let state = JobState::from_str(&state).map_err(|e| corrupt(id, e))?;
    let steps_done: i64 = col(row, "steps_done", id)?;
    let steps_done = u64::try_from(steps_done).map_err(|_| corrupt(id, format!("steps_done {steps_done}")))?;
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
        steps_done,
        created_ms: col(row, "created_ms", id)?,
        started_ms: col(row, "started_ms", id)?,
        finished_ms: col(row, "finished_ms", id)?,
        summary,
        error: col(row, "error", id)?,
        owner: col(row, "owner", id)?,
        attempt: {
            let a: i64 = col(row, "attempt", id)?;
            u64::try_from(a).map_err(|_| corrupt(id, format!("attempt {a}")))?
        },
    })
}

async fn job_meta(conn: &mut SqliteConnection, id: JobId) -> Result<HistoryMeta, StoreError> {
    let row = sqlx::query("SELECT steps_done, n_layers, depth FROM jobs WHERE id = ?")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound(id))?;
    let steps_done: i64 = col(&row, "steps_done", id)?;
    let n_layers: Option<i64> = col(&row, "n_layers", id)?;
    let depth: i64 = col(&row, "depth", id)?;
    Ok(HistoryMeta {
        steps_done: u64::try_from(steps_done).map_err(|_| corrupt(id, format!("steps_done {steps_done}")))?,
        n_layers: match n_layers {
            Some(n) => Some(usize::try_from(n).map_err(|_| corrupt(id, format!("n_layers {n}")))?),
            None => None,
        },
        depth: usize::try_from(depth).map_err(|_| corrupt(id, format!("depth {depth}")))?,
    })
}

/// The chunk BLOBs of series `layer` that may hold steps in `[lo, hi]`, in step order.
async fn range_chunks(
    conn: &mut SqliteConnection,
    id: JobId,
    layer: i64,
    lo: u64,
    hi: u64,
) -> Result<Vec<SqliteRow>, StoreError> {
    Ok(sqlx::query(RANGE_CHUNKS).bind(id.0).bind(layer).bind(clamp_i64(lo)).bind(clamp_i64(hi)).fetch_all(conn).await?)
}

fn chunk_view(row: &SqliteRow, ncols: usize, id: JobId) -> Result<Chunk, StoreError> {
    let data: &[u8] = col(row, "data", id)?;
    Chunk::decode(data, ncols).map_err(|Malformed(m)| corrupt(id, m))
}

/// Appends `steps` (all after the series' last stored step) to series `layer` of job `id`:
/// first fills the tail chunk up to [`CHUNK_STEPS`], then writes full chunks.
async fn append_series(
    conn: &mut SqliteConnection,
    id: JobId,
    layer: i64,
    ncols: usize,
    steps: &[u64],
    value: impl Fn(usize, usize) -> f64,
) -> Result<(), StoreError> {
    let mut start = 0;
    let tail =
        sqlx::query("SELECT rowid, data FROM chunks WHERE job_id = ? AND layer = ? ORDER BY first_step DESC LIMIT 1")
            .bind(id.0)
            .bind(layer)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(row) = tail {
        let rowid: i64 = row.try_get("rowid")?;
        let view = chunk_view(&row, ncols, id)?;
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
            let blob = encode_chunk(&merged, ncols, |i, c| if i < old { view.value(i, c) } else { value(i - old, c) });
            sqlx::query("UPDATE chunks SET last_step = ?, n = ?, data = ? WHERE rowid = ?")
                .bind(step_i64(merged[merged.len() - 1])?)
                .bind(merged.len() as i64)
                .bind(blob)
                .bind(rowid)
                .execute(&mut *conn)
                .await?;
            start = take;
        }
    }
    while start < steps.len() {
        let end = (start + CHUNK_STEPS).min(steps.len());
        let blob = encode_chunk(&steps[start..end], ncols, |i, c| value(start + i, c));
        sqlx::query("INSERT INTO chunks (job_id, layer, first_step, last_step, n, data) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id.0)
            .bind(layer)
            .bind(step_i64(steps[start])?)
            .bind(step_i64(steps[end - 1])?)
            .bind((end - start) as i64)
            .bind(blob)
            .execute(&mut *conn)
            .await?;
        start = end;
    }
    Ok(())
}

/// Writes one job's batch inside the caller's transaction; `LeaseLost` (writing nothing) if
/// the batch's claim is no longer the job's.
async fn append_batch(conn: &mut SqliteConnection, batch: &MetricBatch) -> Result<(), StoreError> {
    let id = batch.job.ok_or_else(|| StoreError::Invalid("metric batch without a job id".into()))?;
    if let Some(attempt) = batch.attempt
        && state_and_attempt(conn, id).await? != (JobState::Running, attempt)
    {
        return Err(StoreError::LeaseLost(id));
    }
    let meta = job_meta(conn, id).await?;
    let steps: Vec<&StepRecord> = batch.steps.iter().filter(|s| !s.layers.is_empty()).collect();
    if let Some(first) = steps.first() {
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
        let last = step_i64(nums[nums.len() - 1])?;
        let n_layers = meta.n_layers.unwrap_or(first.layers.len());
        if let Some(bad) = steps.iter().find(|s| s.layers.len() != n_layers) {
            return Err(StoreError::Invalid(format!(
                "job {id}: step {} has {} layers, the job's steps have {n_layers}",
                bad.step,
                bad.layers.len()
            )));
        }
        append_series(conn, id, STEP_LAYER, STEP_METRICS.len(), &nums, |i, c| {
            let s = steps[i];
            [s.loss, s.accuracy, s.lr, s.grad_norm][c]
        })
        .await?;
        for layer in 0..n_layers {
            let vals: Vec<[f64; 12]> = steps.iter().map(|s| s.layers[layer].values()).collect();
            append_series(conn, id, layer as i64, LayerStats::METRICS.len(), &nums, |i, c| vals[i][c]).await?;
        }
        for s in steps.iter().filter(|s| !s.histograms.is_empty()) {
            sqlx::query("INSERT INTO histograms (job_id, step, data) VALUES (?, ?, ?)")
                .bind(id.0)
                .bind(step_i64(s.step)?)
                .bind(encode_histograms(&s.histograms))
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("UPDATE jobs SET steps_done = ?, n_layers = ? WHERE id = ?")
            .bind(last + 1)
            .bind(n_layers as i64)
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
    }
    for e in &batch.evals {
        let real = |x: f64| if x.is_nan() { None } else { Some(x) };
        sqlx::query("INSERT OR REPLACE INTO evals (job_id, step, test_loss, test_accuracy) VALUES (?, ?, ?, ?)")
            .bind(id.0)
            .bind(step_i64(e.step)?)
            .bind(real(e.test_loss))
            .bind(real(e.test_accuracy))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn evals_in(conn: &mut SqliteConnection, id: JobId, lo: u64, hi: u64) -> Result<Vec<EvalRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT step, test_loss, test_accuracy FROM evals WHERE job_id = ? AND step >= ? AND step <= ? ORDER BY step",
    )
    .bind(id.0)
    .bind(clamp_i64(lo))
    .bind(clamp_i64(hi))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let step: i64 = col(r, "step", id)?;
            let loss: Option<f64> = col(r, "test_loss", id)?;
            let acc: Option<f64> = col(r, "test_accuracy", id)?;
            Ok(EvalRecord {
                step: u64::try_from(step).map_err(|_| corrupt(id, format!("eval step {step}")))?,
                test_loss: loss.unwrap_or(f64::NAN),
                test_accuracy: acc.unwrap_or(f64::NAN),
            })
        })
        .collect()
}

/// A value bound into a dynamically built query.
enum Arg {
    Int(i64),
    Text(String),
}

/// The `Store` over SQLite. One writer connection (writes are serialized in the process and
/// start with `BEGIN IMMEDIATE`, so they also wait, via `busy_timeout`, for writers in other
/// processes rather than failing on a stale snapshot) and a small pool of readers that, in WAL
/// mode, never block on the writer.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url_or_path` — a `sqlite:` URL such as
    /// `sqlite://gradlab.db` or a plain file path — and brings its schema up to date.
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        if url_or_path.contains(":memory:") || url_or_path.contains("mode=memory") {
            // Separate connections to an in-memory database would share a cache and its
            // table locks: one connection serves both roles.
            return Self::open_in_memory().await;
        }
        let opts = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)
                .map_err(|e| StoreError::Invalid(format!("database URL {url_or_path:?}: {e}")))?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        if opts.get_filename().as_os_str().is_empty() {
            return Err(StoreError::Invalid("empty database path".into()));
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Chunks are ~50 KB BLOBs: 16 KiB pages cut their overflow chains by 4 (only
            // applies when the file is created).
            .page_size(16384)
            .pragma("cache_size", "-32768") // 32 MiB per connection
            // Checkpoint every ~32 MiB of WAL rather than every 4 MiB.
            .pragma("wal_autocheckpoint", "2000");
        let writer = pool(1).connect_with(opts.clone()).await?;
        migrate(&writer).await?;
        // One server per SQLite file: what was running when the last one stopped is this
        // one's to claim now, not when the dead server's leases would have ended.
        sqlx::query("UPDATE jobs SET lease_until_ms = 0 WHERE state = 'running'").execute(&writer).await?;
        let reader = pool(4).connect_with(opts).await?;
        Ok(SqliteStore { writer, reader })
    }

    /// A private in-memory database (one connection, so no concurrent readers), for tests.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let writer = pool(1).min_connections(1).connect_with(opts).await?;
        migrate(&writer).await?;
        Ok(SqliteStore { reader: writer.clone(), writer })
    }

    /// Closes both pools (checkpointing the WAL when the last connection goes).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The writer pool, for tests that plant bad data.
    #[cfg(test)]
    pub(crate) fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        match self.writer.begin_with("BEGIN IMMEDIATE").await {
            // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR),
            // after which sqlx still counts it as open and refuses to begin another on that
            // connection, for good. Replace the connection (found with a full disk; see
            // `a_full_database_fails_the_job_writing_and_nothing_else`).
            Err(e) if e.to_string().contains("non-zero transaction depth") => {
                tracing::warn!(error = %e, "replacing the writer connection after an aborted transaction");
                let _ = self.writer.acquire().await?.close().await;
                Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            res => Ok(res?),
        }
    }
}

/// Brings the schema up to date, refusing a database whose schema is newer than this build's.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = super::migrations::sqlite();
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations").fetch_one(pool).await.unwrap_or(None);
    super::check_schema(applied, &migrator)?;
    Ok(migrator.run(pool).await?)
}

/// Fails with `Full` unless `adding` more unfinished jobs stay within `max` (inside the
/// caller's write transaction, which SQLite serializes).
async fn check_room(conn: &mut SqliteConnection, adding: usize, max: Option<u64>) -> Result<(), StoreError> {
    let Some(max) = max else { return Ok(()) };
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
        .fetch_one(&mut *conn)
        .await?;
    if n as u64 + adding as u64 > max {
        return Err(StoreError::Full(n as u64, max));
    }
    Ok(())
}

/// The job's (state, attempt), or NotFound.
async fn state_and_attempt(conn: &mut SqliteConnection, id: JobId) -> Result<(JobState, u64), StoreError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT state, attempt FROM jobs WHERE id = ?").bind(id.0).fetch_optional(&mut *conn).await?;
    let (state, attempt) = row.ok_or(StoreError::NotFound(id))?;
    Ok((JobState::from_str(&state).map_err(|e| corrupt(id, e))?, attempt as u64))
}

/// Deletes a job's stored history and resets its progress (inside the caller's transaction).
async fn clear_history(conn: &mut SqliteConnection, id: JobId) -> Result<(), StoreError> {
    for table in ["chunks", "histograms", "evals"] {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE job_id = ?")))
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("UPDATE jobs SET steps_done = 0, n_layers = NULL WHERE id = ?").bind(id.0).execute(&mut *conn).await?;
    Ok(())
}

/// Inserts a queued job with its labels (inside the caller's transaction).
pub(super) async fn insert_job(
    conn: &mut SqliteConnection,
    spec: &JobSpec,
    sweep_id: Option<i64>,
    created_ms: i64,
) -> Result<JobRecord, StoreError> {
    let spec_json = serde_json::to_string(spec).map_err(|e| StoreError::Invalid(format!("spec: {e}")))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (sweep_id, spec, name, activation, depth, state, created_ms) \
         VALUES (?, ?, ?, ?, ?, 'queued', ?) RETURNING id",
    )
    .bind(sweep_id)
    .bind(spec_json)
    .bind(&spec.name)
    .bind(spec.activation.to_string())
    .bind(spec.depth() as i64)
    .bind(created_ms)
    .fetch_one(&mut *conn)
    .await?;
    for (k, v) in &spec.labels {
        sqlx::query("INSERT INTO job_labels (job_id, key, value) VALUES (?, ?, ?)")
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *conn)
            .await?;
    }
    Ok(JobRecord {
        id: JobId(id),
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
    })
}

/// The id a keyset page token names (the decimal id of the previous page's last row).
pub(super) fn page_token(token: &str) -> Result<i64, StoreError> {
    token
        .parse()
        .ok()
        .filter(|&id: &i64| id > 0 && token.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| StoreError::Invalid(format!("bad page token {token:?}")))
}

/// The page size a request asks for, capped.
pub(super) fn page_size(page: &PageRequest) -> u32 {
    match page.size {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

fn pool(max: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(120))
        .idle_timeout(None)
        .max_lifetime(None)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_job(
        &self,
        spec: &JobSpec,
        sweep_id: Option<i64>,
        max_unfinished: Option<u64>,
    ) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        check_room(&mut tx, 1, max_unfinished).await?;
        let record = insert_job(&mut tx, spec, sweep_id, now_ms()).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_optional(&self.reader).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs in id order, which is creation order (ids are assigned increasing and never
    /// reused). The page token is the decimal id of the page's last job; `name_contains` is a
    /// case-sensitive substring match.
    async fn list_jobs(
        &self,
        filter: &JobFilter,
        order: Order,
        page: &PageRequest,
    ) -> Result<(Vec<JobRecord>, Option<String>), StoreError> {
        let size = page_size(page);
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        if !filter.states.is_empty() {
            conds.push(format!("state IN ({})", vec!["?"; filter.states.len()].join(", ")));
            args.extend(filter.states.iter().map(|s| Arg::Text(s.as_str().into())));
        }
        if let Some(a) = &filter.activation {
            conds.push("activation = ?".into());
            args.push(Arg::Text(a.clone()));
        }
        if let Some(d) = filter.min_depth {
            conds.push("depth >= ?".into());
            args.push(Arg::Int(d.into()));
        }
        if let Some(d) = filter.max_depth {
            conds.push("depth <= ?".into());
            args.push(Arg::Int(d.into()));
        }
        if let Some((key, value)) = &filter.label {
            args.push(Arg::Text(key.clone()));
            match value {
                Some(v) => {
                    conds.push(
                        "EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = jobs.id AND l.key = ? AND l.value = ?)"
                            .into(),
                    );
                    args.push(Arg::Text(v.clone()));
                }
                None => conds.push("EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = jobs.id AND l.key = ?)".into()),
            }
        }
        if let Some(v) = &filter.verdict {
            conds.push("verdict = ?".into());
            args.push(Arg::Text(v.as_str().into()));
        }
        if let Some(s) = &filter.name_contains {
            conds.push("instr(name, ?) > 0".into());
            args.push(Arg::Text(s.clone()));
        }
        if let Some(s) = filter.sweep_id {
            conds.push("sweep_id = ?".into());
            args.push(Arg::Int(s));
        }
        let (cmp, dir) = match order {
            Order::CreatedDesc => ("<", "DESC"),
            Order::CreatedAsc => (">", "ASC"),
        };
        if let Some(token) = &page.token {
            let after = page_token(token)?;
            conds.push(format!("id {cmp} ?"));
            args.push(Arg::Int(after));
        }
        let where_ = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs {where_} ORDER BY id {dir} LIMIT {}", size as u64 + 1);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Arg::Int(i) => q.bind(i),
                Arg::Text(t) => q.bind(t),
            };
        }
        let rows = q.fetch_all(&self.reader).await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if jobs.len() > size as usize {
            jobs.truncate(size as usize);
            jobs.last().map(|j| j.id.0.to_string())
        } else {
            None
        };
        Ok((jobs, next))
    }

    async fn claim_next(&self, owner: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let next: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM jobs WHERE state = 'queued' \
             OR (state = 'running' AND coalesce(lease_until_ms, 0) < ?) \
             ORDER BY id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, state)) = next else { return Ok(None) };
        if state == "running" {
            clear_history(&mut tx, JobId(id)).await?;
        }
        sqlx::query(
            "UPDATE jobs SET state = 'running', owner = ?, attempt = attempt + 1, lease_until_ms = ?, \
             started_ms = coalesce(started_ms, ?) WHERE id = ?",
        )
        .bind(owner)
        .bind(now.saturating_add(lease.as_millis() as i64))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let record = job_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx).await?)?;
        tx.commit().await?;
        let attempt = record.attempt;
        Ok(Some(Claim { record, attempt }))
    }

    async fn renew_leases(
        &self,
        owner: &str,
        claims: &[(JobId, u64)],
        lease: Duration,
    ) -> Result<LeaseReport, StoreError> {
        let mut report = LeaseReport::default();
        if claims.is_empty() {
            return Ok(report);
        }
        let until = now_ms().saturating_add(lease.as_millis() as i64);
        let mut tx = self.begin_write().await?;
        for &(id, attempt) in claims {
            let held: Option<bool> = sqlx::query_scalar(
                "UPDATE jobs SET lease_until_ms = ? WHERE id = ? AND owner = ? AND attempt = ? AND state = 'running' \
                 RETURNING cancel_requested != 0",
            )
            .bind(until)
            .bind(id.0)
            .bind(owner)
            .bind(attempt as i64)
            .fetch_optional(&mut *tx)
            .await?;
            match held {
                None => report.lost.push(id),
                Some(true) => report.cancel.push(id),
                Some(false) => {}
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn release_leases(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET lease_until_ms = 0 WHERE owner = ? AND state = 'running'")
            .bind(owner)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn request_cancel(&self, id: JobId, at_ms: i64) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let (state, _) = state_and_attempt(&mut tx, id).await?;
        match state {
            JobState::Queued => {
                sqlx::query("UPDATE jobs SET state = 'cancelled', finished_ms = ? WHERE id = ?")
                    .bind(at_ms)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
            }
            JobState::Running => {
                sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?").bind(id.0).execute(&mut *tx).await?;
            }
            done => return Err(StoreError::Invalid(format!("job {id} already {done}"))),
        }
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let record = job_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_one(&mut *tx).await?)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn mark_finished(
        &self,
        id: JobId,
        attempt: u64,
        state: JobState,
        finished_ms: i64,
        summary: Option<&JobSummary>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        if !state.is_terminal() {
            return Err(StoreError::Invalid(format!("{state} is not a terminal state")));
        }
        let summary_json =
            summary.map(serde_json::to_string).transpose().map_err(|e| StoreError::Invalid(format!("summary: {e}")))?;
        let verdict = summary.map(|s| s.run.verdict.verdict.as_str());
        let error = error.map(str::to_owned);
        let mut tx = self.begin_write().await?;
        if state_and_attempt(&mut tx, id).await? != (JobState::Running, attempt) {
            return Err(StoreError::LeaseLost(id));
        }
        sqlx::query(
            "UPDATE jobs SET state = ?, finished_ms = ?, summary = ?, verdict = ?, error = ?, lease_until_ms = NULL \
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(finished_ms)
        .bind(summary_json)
        .bind(verdict)
        .bind(error)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Allowed from any state: also how a failed or cancelled job is retried.
    async fn requeue(&self, id: JobId) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // The attempt is kept: it only grows, so a write of an old claim stays refused.
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', started_ms = NULL, finished_ms = NULL, summary = NULL, \
             verdict = NULL, error = NULL, owner = NULL, lease_until_ms = NULL, cancel_requested = 0 WHERE id = ?",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(id));
        }
        clear_history(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_metrics(&self, batches: &[MetricBatch]) -> Result<Vec<JobId>, StoreError> {
        let mut lost = Vec::new();
        if batches.iter().all(|b| b.steps.iter().all(|s| s.layers.is_empty()) && b.evals.is_empty()) {
            return Ok(lost);
        }
        let mut tx = self.begin_write().await?;
        for batch in batches {
            match append_batch(&mut tx, batch).await {
                Err(StoreError::LeaseLost(id)) => lost.push(id),
                res => res?,
            }
        }
        tx.commit().await?;
        Ok(lost)
    }

    async fn read_steps(&self, id: JobId, from_step: u64, limit: usize) -> Result<Vec<StepRecord>, StoreError> {
        let mut tx = self.reader.begin().await?;
        let meta = job_meta(&mut tx, id).await?;
        if limit == 0 || from_step >= meta.steps_done {
            return Ok(Vec::new());
        }
        let mut out: Vec<StepRecord> = Vec::new();
        {
            let mut rows = sqlx::query(RANGE_CHUNKS)
                .bind(id.0)
                .bind(STEP_LAYER)
                .bind(clamp_i64(from_step))
                .bind(i64::MAX)
                .fetch(&mut *tx);
            while let Some(row) = rows.next().await {
                let row = row?;
                let view = chunk_view(&row, STEP_METRICS.len(), id)?;
                for i in view.rows_in(from_step, u64::MAX) {
                    out.push(StepRecord {
                        step: view.step(i),
                        loss: view.value(i, 0),
                        accuracy: view.value(i, 1),
                        lr: view.value(i, 2),
                        grad_norm: view.value(i, 3),
                        layers: Vec::new(),
                        histograms: Vec::new(),
                    });
                    if out.len() == limit {
                        break;
                    }
                }
                if out.len() == limit {
                    break;
                }
            }
        }
        let (Some(first), Some(last)) = (out.first().map(|r| r.step), out.last().map(|r| r.step)) else {
            return Ok(out);
        };
        let n_layers = meta.n_layers.ok_or_else(|| corrupt(id, "steps stored without a layer count"))?;
        for layer in 0..n_layers {
            let rows = range_chunks(&mut tx, id, layer as i64, first, last).await?;
            let mut k = 0;
            for row in &rows {
                let view = chunk_view(row, LayerStats::METRICS.len(), id)?;
                for i in view.rows_in(first, last) {
                    let rec = out.get_mut(k).filter(|r| r.step == view.step(i)).ok_or_else(|| {
                        corrupt(id, format!("layer {layer} has step {} that the step series lacks", view.step(i)))
                    })?;
                    let mut v = [0.0; 12];
                    for (c, x) in v.iter_mut().enumerate() {
                        *x = view.value(i, c);
                    }
                    rec.layers.push(layer_stats_from(&v).map_err(|Malformed(m)| corrupt(id, m))?);
                    k += 1;
                }
            }
            if k != out.len() {
                return Err(corrupt(id, format!("layer {layer} lacks step {}", out[k].step)));
            }
        }
        let hists = sqlx::query("SELECT step, data FROM histograms WHERE job_id = ? AND step >= ? AND step <= ?")
            .bind(id.0)
            .bind(clamp_i64(first))
            .bind(clamp_i64(last))
            .fetch_all(&mut *tx)
            .await?;
        for row in &hists {
            let step: i64 = col(row, "step", id)?;
            let data: &[u8] = col(row, "data", id)?;
            let Ok(at) = out.binary_search_by_key(&step, |r| r.step as i64) else {
                return Err(corrupt(id, format!("histograms at step {step}, which has no record")));
            };
            out[at].histograms = decode_histograms(data).map_err(|Malformed(m)| corrupt(id, m))?;
        }
        Ok(out)
    }

    async fn read_evals(&self, id: JobId, from_step: u64) -> Result<Vec<EvalRecord>, StoreError> {
        let mut tx = self.reader.begin().await?;
        job_meta(&mut tx, id).await?;
        evals_in(&mut tx, id, from_step, u64::MAX).await
    }

    async fn history_meta(&self, id: JobId) -> Result<HistoryMeta, StoreError> {
        job_meta(&mut *self.reader.acquire().await?, id).await
    }

    async fn read_series(
        &self,
        id: JobId,
        layer: Option<u32>,
        cols: &[usize],
        lo: u64,
        hi: u64,
        max_rows: usize,
    ) -> Result<SeriesRows, StoreError> {
        let (series, ncols) = match layer {
            None => (STEP_LAYER, STEP_METRICS.len()),
            Some(l) => (i64::from(l), LayerStats::METRICS.len()),
        };
        if let Some(&c) = cols.iter().find(|&&c| c >= ncols) {
            return Err(StoreError::Invalid(format!("column {c} out of range: series have {ncols}")));
        }
        let mut out = SeriesRows { steps: Vec::new(), columns: vec![Vec::new(); cols.len()] };
        if max_rows == 0 || lo > hi {
            return Ok(out);
        }
        // Whole chunks from the one holding `lo`: enough of them for `max_rows` rows.
        let limit = (max_rows / CHUNK_STEPS + 2) as i64;
        let rows = sqlx::query(AssertSqlSafe(format!("{RANGE_CHUNKS} LIMIT ?5")))
            .bind(id.0)
            .bind(series)
            .bind(clamp_i64(lo))
            .bind(clamp_i64(hi))
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        for row in &rows {
            let data: &[u8] = col(row, "data", id)?;
            let chunk = Chunk::decode_columns(data, ncols, Some(cols)).map_err(|Malformed(m)| corrupt(id, m))?;
            let range = chunk.rows_in(lo, hi);
            let take = range.start..range.end.min(range.start + (max_rows - out.steps.len()));
            out.steps.extend_from_slice(chunk.steps(take.clone()));
            for (dst, &c) in out.columns.iter_mut().zip(cols) {
                dst.extend_from_slice(chunk.column(c, take.clone()));
            }
            if out.steps.len() == max_rows {
                break;
            }
        }
        Ok(out)
    }

    async fn job_counts(&self) -> Result<StateCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state").fetch_all(&self.reader).await?;
        let mut counts = StateCounts::default();
        for (state, n) in rows {
            let state = JobState::from_str(&state).map_err(StoreError::Database)?;
            counts.add(state, n as u64);
        }
        Ok(counts)
    }

    async fn create_sweep(
        &self,
        spec: &SweepSpec,
        jobs: &[JobSpec],
        max_unfinished: Option<u64>,
    ) -> Result<(SweepRecord, Vec<JobRecord>), StoreError> {
        let mut tx = self.begin_write().await?;
        check_room(&mut tx, jobs.len(), max_unfinished).await?;
        let created_ms = now_ms();
        let sweep = sweeps::insert(&mut tx, spec, jobs.len(), created_ms).await?;
        let mut records = Vec::with_capacity(jobs.len());
        for job in jobs {
            records.push(insert_job(&mut tx, job, Some(sweep.id.0), created_ms).await?);
        }
        tx.commit().await?;
        Ok((sweep, records))
    }

    async fn get_sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
        sweeps::get(&self.reader, id).await
    }

    async fn list_sweeps(&self, page: &PageRequest) -> Result<(Vec<SweepRecord>, Option<String>), StoreError> {
        sweeps::list(&self.reader, page).await
    }

    async fn sweep_jobs(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError> {
        if sweeps::get(&self.reader, id).await?.is_none() {
            return Err(StoreError::SweepNotFound(id));
        }
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE sweep_id = ? ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_all(&self.reader).await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn mark_sweep_cancelled(&self, id: SweepId, at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE sweeps SET cancelled_ms = coalesce(cancelled_ms, ?) WHERE id = ?")
            .bind(at_ms)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::SweepNotFound(id));
        }
        tx.commit().await?;
        Ok(())
    }
}
