//! [`SqliteStore`]: the [`Store`] trait over one SQLite file (see the `store` module docs).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::checkpoints::sqlite as checkpoints;
use super::list::{self, sorted_page_of};
use super::shared::{self, JOB_COLUMNS, META_COLUMNS, clamp_i64, corrupt, job_from_row, now_ms};
use super::sweeps;
use crate::engine::spec::JobSpec;
use crate::engine::stats::Histogram;
use crate::engine::train::EvalRecord;
use crate::runner::sweep::SweepSpec;
use crate::runner::{
    CheckpointInfo, Claim, HistoryMeta, JobFilter, JobId, JobRecord, JobState, JobSummary, JobUpdate, LeaseReport,
    MetricBatch, Order, PageRequest, SeriesRows, StateCounts, Store, StoreError, SweepId, SweepRecord,
};
use history::append_batch;

mod history;

/// Chunks of one series whose steps may fall in `[?3, ?4]`: from the last chunk starting at or
/// before `?3` (it may reach into the range) up to the last one starting at or before `?4`.
const RANGE_CHUNKS: &str = "SELECT data FROM chunks WHERE job_id = ?1 AND layer = ?2 AND first_step <= ?4 \
     AND first_step >= coalesce((SELECT max(first_step) FROM chunks \
         WHERE job_id = ?1 AND layer = ?2 AND first_step <= ?3), 0) \
     ORDER BY first_step";

async fn job_meta(conn: &mut SqliteConnection, id: JobId) -> Result<HistoryMeta, StoreError> {
    let row = sqlx::query_as(AssertSqlSafe(format!("SELECT {META_COLUMNS} FROM jobs WHERE id = ?")))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(shared::read_failed(id))?;
    shared::history_meta(id, row.ok_or(StoreError::NotFound(id))?)
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
    shared::check_schema(applied, &migrator)?;
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

/// SQL for a new row's id in `table`: above every id it has and every id it had (schema 4).
pub(super) fn next_id(table: &'static str) -> String {
    format!(
        "(SELECT max(coalesce(max(id), 0), coalesce((SELECT max_id FROM id_floor WHERE tbl = '{table}'), 0)) + 1 \
         FROM {table})"
    )
}

/// Records the table's largest id before rows of it are deleted: new rows take ids above it
/// (schema 4), so an id is never given to a second job or sweep.
async fn keep_id_floor(conn: &mut SqliteConnection, table: &'static str) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO id_floor (tbl, max_id) SELECT '{table}', coalesce(max(id), 0) FROM {table} WHERE true \
         ON CONFLICT (tbl) DO UPDATE SET max_id = max(max_id, excluded.max_id)"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes a job's stored history and resets its progress (inside the caller's transaction).
async fn clear_history(conn: &mut SqliteConnection, id: JobId) -> Result<(), StoreError> {
    for table in ["chunks", "histograms", "evals"] {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE job_id = ?")))
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
    }
    // A fork keeps the checkpoint it starts from, and its layer count.
    for sql in [
        "DELETE FROM checkpoints WHERE job_id = ?1 AND step <> coalesce((SELECT fork_step FROM jobs WHERE id = ?1), -1)",
        "UPDATE jobs SET steps_done = coalesce(fork_step, 0), n_layers = CASE WHEN fork_step IS NULL THEN NULL \
         ELSE n_layers END, resumed_from = NULL WHERE id = ?1",
    ] {
        sqlx::query(sql).bind(id.0).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts a queued job with its labels (inside the caller's transaction).
pub(super) async fn insert_job(
    conn: &mut SqliteConnection,
    spec: &JobSpec,
    sweep_id: Option<i64>,
    created_ms: i64,
) -> Result<JobRecord, StoreError> {
    let spec_json = shared::spec_json(spec)?;
    let id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO jobs (id, sweep_id, spec, name, activation, depth, width, state, created_ms) \
         VALUES ({}, ?, ?, ?, ?, ?, ?, 'queued', ?) RETURNING id",
        next_id("jobs")
    )))
    .bind(sweep_id)
    .bind(spec_json)
    .bind(&spec.name)
    .bind(spec.activation.to_string())
    .bind(spec.depth() as i64)
    .bind(shared::width(spec))
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
    Ok(shared::queued_job(JobId(id), sweep_id, spec, created_ms))
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

    async fn create_fork(
        &self,
        spec: &JobSpec,
        parent: JobId,
        step: u64,
        max_unfinished: Option<u64>,
    ) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        check_room(&mut tx, 1, max_unfinished).await?;
        let id = insert_job(&mut tx, spec, None, now_ms()).await?.id;
        checkpoints::adopt(&mut tx, id, parent, step).await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let record = job_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_one(&mut *tx).await?)?;
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
        let q = list::list_sql(filter, order, page, |_| "?".to_string(), |col, p| format!("instr({col}, {p}) > 0"))?;
        let rows = q.query(JOB_COLUMNS).fetch_all(&self.reader).await?;
        let jobs = rows
            .iter()
            .map(|row| Ok((job_from_row(row)?, list::sort_value(row, order.key)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(sorted_page_of(jobs, q.size, order.key, |j| j.id.0))
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
        // Claimed again, or a fork: it goes on from its newest checkpoint.
        match checkpoints::newest(&mut tx, JobId(id)).await? {
            Some(step) => checkpoints::cut_history(&mut tx, JobId(id), step).await?,
            None if state == "running" => clear_history(&mut tx, JobId(id)).await?,
            None => {}
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
        let end = shared::end_columns(state, summary)?;
        let error = error.map(str::to_owned);
        let mut tx = self.begin_write().await?;
        if state_and_attempt(&mut tx, id).await? != (JobState::Running, attempt) {
            return Err(StoreError::LeaseLost(id));
        }
        sqlx::query(
            "UPDATE jobs SET state = ?, finished_ms = ?, summary = ?, verdict = ?, test_accuracy = ?, test_loss = ?, \
             error = ?, lease_until_ms = NULL WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(finished_ms)
        .bind(end.summary)
        .bind(end.verdict)
        .bind(end.test_accuracy)
        .bind(end.test_loss)
        .bind(error)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        checkpoints::drop_unless_kept(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_checkpoint(
        &self,
        id: JobId,
        attempt: u64,
        step: u64,
        data: &[u8],
        keep: u32,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if state_and_attempt(&mut tx, id).await? != (JobState::Running, attempt) {
            return Err(StoreError::LeaseLost(id));
        }
        checkpoints::save(&mut tx, id, step, now_ms(), data, keep).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forks(&self, id: JobId) -> Result<Vec<JobId>, StoreError> {
        checkpoints::forks_of(&mut *self.reader.acquire().await?, id).await
    }

    async fn read_checkpoint(&self, id: JobId, step: u64) -> Result<Option<Vec<u8>>, StoreError> {
        checkpoints::read(&mut *self.reader.acquire().await?, id, step).await
    }

    async fn checkpoints(&self, id: JobId) -> Result<Vec<CheckpointInfo>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        job_meta(&mut conn, id).await?;
        checkpoints::list(&mut conn, id).await
    }

    /// Allowed from any state: also how a failed or cancelled job is retried.
    async fn requeue(&self, id: JobId) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // Its forks read its history before their steps: it stays.
        checkpoints::refuse_forked(&mut tx, &[id]).await?;
        // The attempt is kept: it only grows, so a write of an old claim stays refused.
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', started_ms = NULL, finished_ms = NULL, summary = NULL, \
             verdict = NULL, test_accuracy = NULL, test_loss = NULL, error = NULL, owner = NULL, lease_until_ms = NULL, cancel_requested = 0 WHERE id = ?",
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

    async fn read_histograms(&self, id: JobId, lo: u64, hi: u64) -> Result<Vec<(u64, Vec<Histogram>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT step, data FROM histograms WHERE job_id = ? AND step >= ? AND step <= ? ORDER BY step",
        )
        .bind(id.0)
        .bind(clamp_i64(lo))
        .bind(clamp_i64(hi))
        .fetch_all(&self.reader)
        .await
        .map_err(shared::read_failed(id))?;
        shared::histograms_of(id, rows)
    }

    async fn read_evals(&self, id: JobId, from_step: u64) -> Result<Vec<EvalRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        job_meta(&mut conn, id).await?;
        let rows: Vec<(i64, Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT step, test_loss, test_accuracy FROM evals WHERE job_id = ? AND step >= ? ORDER BY step",
        )
        .bind(id.0)
        .bind(clamp_i64(from_step))
        .fetch_all(&mut *conn)
        .await
        .map_err(shared::read_failed(id))?;
        shared::evals_of(id, rows)
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
        let (series, ncols) = shared::series_key(layer, cols)?;
        if max_rows == 0 || lo > hi {
            return Ok(SeriesRows { steps: Vec::new(), columns: vec![Vec::new(); cols.len()] });
        }
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(AssertSqlSafe(format!("{RANGE_CHUNKS} LIMIT ?5")))
            .bind(id.0)
            .bind(series)
            .bind(clamp_i64(lo))
            .bind(clamp_i64(hi))
            .bind(shared::chunks_for(max_rows))
            .fetch_all(&self.reader)
            .await
            .map_err(shared::read_failed(id))?;
        shared::rows_of(id, ncols, cols, lo, hi, max_rows, rows.iter().map(|(d,)| d.as_slice()))
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

    async fn delete_jobs(&self, ids: &[JobId]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        keep_id_floor(&mut tx, "jobs").await?;
        checkpoints::refuse_forked(&mut tx, ids).await?;
        for &id in ids {
            shared::deletable(id, state_and_attempt(&mut tx, id).await?.0)?;
            // Its chunks, histograms, evaluations and labels go with it (ON DELETE CASCADE).
            sqlx::query("DELETE FROM jobs WHERE id = ?").bind(id.0).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_sweep(&self, id: SweepId) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM sweeps WHERE id = ?").bind(id.0).fetch_optional(&mut *tx).await?;
        found.ok_or(StoreError::SweepNotFound(id))?;
        let active: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM jobs WHERE sweep_id = ? AND state IN ('queued', 'running') ORDER BY id LIMIT 1",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((job, state)) = active {
            let job = JobId(job);
            return Err(StoreError::Active(job, JobState::from_str(&state).map_err(|e| corrupt(job, e))?));
        }
        checkpoints::refuse_forked_sweep(&mut tx, id.0).await?;
        keep_id_floor(&mut tx, "jobs").await?;
        keep_id_floor(&mut tx, "sweeps").await?;
        let jobs =
            sqlx::query("DELETE FROM jobs WHERE sweep_id = ?").bind(id.0).execute(&mut *tx).await?.rows_affected();
        sqlx::query("DELETE FROM sweeps WHERE id = ?").bind(id.0).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    async fn delete_empty_sweeps(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        keep_id_floor(&mut tx, "sweeps").await?;
        let n = sqlx::query("DELETE FROM sweeps WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.sweep_id = sweeps.id)")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&self.reader).await?;
        let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&self.reader).await?;
        Ok((pages * size).max(0) as u64)
    }

    async fn vacuum(&self) -> Result<(), StoreError> {
        // On the writer's one connection: the writer waits for it, readers go on.
        sqlx::query("VACUUM").execute(&self.writer).await?;
        // In WAL mode the rewritten pages sit in the log until a checkpoint: move them into
        // the file and cut both, so the space is back now.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await?;
        Ok(())
    }

    async fn update_job(&self, id: JobId, update: &JobUpdate) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT spec FROM jobs WHERE id = ?").bind(id.0).fetch_optional(&mut *tx).await?;
        let (json, spec) = shared::updated_spec(id, &stored.ok_or(StoreError::NotFound(id))?.0, update)?;
        sqlx::query("UPDATE jobs SET spec = ?, name = ? WHERE id = ?")
            .bind(json)
            .bind(&spec.name)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        for k in &update.remove_labels {
            sqlx::query("DELETE FROM job_labels WHERE job_id = ? AND key = ?")
                .bind(id.0)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        for (k, v) in &update.set_labels {
            sqlx::query(
                "INSERT INTO job_labels (job_id, key, value) VALUES (?, ?, ?) \
                 ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(id.0)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let record = job_from_row(&sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_one(&mut *tx).await?)?;
        tx.commit().await?;
        Ok(record)
    }
}
