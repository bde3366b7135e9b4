//! Histories on PostgreSQL: appends (chunks planned by `shared::plan_series`, the same as
//! SQLite's) and reads of windows of a series, histograms and evaluations.

use sqlx::{AssertSqlSafe, PgConnection, Postgres, Transaction};

use super::PgStore;
use super::listen::{Note, notify};
use crate::engine::stats::Histogram;
use crate::engine::train::EvalRecord;
use crate::runner::{HistoryMeta, JobId, JobState, MetricBatch, SeriesRows, StoreError};
use crate::store::append_sql::postgres as append_sql;
use crate::store::shared::{self, SeriesWrites, clamp_i64, corrupt, read_failed, step_i64, unsigned};

/// Chunks of one series whose steps may fall in `[$3, $4]`: from the last chunk starting at or
/// before `$3` (it may reach into the range) up to the last one starting at or before `$4`.
const RANGE_CHUNKS: &str = "SELECT data FROM chunks WHERE job_id = $1 AND layer = $2 AND first_step <= $4 \
     AND first_step >= coalesce((SELECT max(first_step) FROM chunks \
         WHERE job_id = $1 AND layer = $2 AND first_step <= $3), 0) \
     ORDER BY first_step LIMIT $5";

pub(super) async fn job_meta(conn: &mut PgConnection, id: JobId) -> Result<HistoryMeta, StoreError> {
    let row = sqlx::query_as(AssertSqlSafe(format!("SELECT {} FROM jobs WHERE id = $1", shared::META_COLUMNS)))
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(read_failed(id))?;
    shared::history_meta(id, row.ok_or(StoreError::NotFound(id))?)
}

/// The job's (state, attempt), its row locked for the rest of the transaction; or NotFound.
pub(super) async fn lock_job(conn: &mut PgConnection, id: JobId) -> Result<(JobState, u64), StoreError> {
    let row: Option<(String, i64)> = sqlx::query_as("SELECT state, attempt FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(read_failed(id))?;
    let (state, attempt) = row.ok_or(StoreError::NotFound(id))?;
    Ok((state.parse().map_err(|e| corrupt(id, e))?, unsigned(id, "attempt", attempt)?))
}

/// Deletes a job's stored history and resets its progress (inside the caller's transaction).
pub(super) async fn clear_history(conn: &mut PgConnection, id: JobId) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM chunks WHERE job_id = $1",
        "DELETE FROM histograms WHERE job_id = $1",
        "DELETE FROM evals WHERE job_id = $1",
        // A fork keeps the checkpoint it starts from, and its layer count.
        "DELETE FROM checkpoints WHERE job_id = $1 AND step <> coalesce((SELECT fork_step FROM jobs WHERE id = $1), -1)",
        "UPDATE jobs SET steps_done = coalesce(fork_step, 0), n_layers = CASE WHEN fork_step IS NULL THEN NULL \
         ELSE n_layers END, resumed_from = NULL WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id.0).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends a checked batch's steps to each of the job's series in three statements, whatever
/// the number of layers: one reads every series' tail chunk, one rewrites the tails, one inserts
/// the new chunks. A statement per layer and write was 35 round trips for a 16-layer job with
/// its row locked: 10 ms a batch to a database 0.3 ms away. (On one machine the two measure
/// alike within the noise of `cargo bench --bench scale_out`.)
async fn append_series(conn: &mut PgConnection, id: JobId, checked: &shared::Checked<'_>) -> Result<(), StoreError> {
    let tails: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT l.layer, c.id, c.data FROM unnest($2::bigint[]) AS l(layer) \
         CROSS JOIN LATERAL (SELECT id, data FROM chunks WHERE job_id = $1 AND layer = l.layer \
                             ORDER BY first_step DESC LIMIT 1) AS c",
    )
    .bind(id.0)
    .bind(shared::series_layers(checked))
    .fetch_all(&mut *conn)
    .await?;
    let SeriesWrites { updates, inserts } = shared::plan_series(id, checked, &tails)?;
    if !updates.is_empty() {
        sqlx::query(
            "UPDATE chunks AS c SET last_step = u.last_step, n = u.n, data = u.data \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[]) AS u(id, last_step, n, data) \
             WHERE c.id = u.id",
        )
        .bind(&updates.key)
        .bind(&updates.last_step)
        .bind(&updates.n)
        .bind(&updates.data)
        .execute(&mut *conn)
        .await?;
    }
    if !inserts.is_empty() {
        sqlx::query(
            "INSERT INTO chunks (job_id, layer, first_step, last_step, n, data) \
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])",
        )
        .bind(id.0)
        .bind(&inserts.layer)
        .bind(&inserts.key)
        .bind(&inserts.last_step)
        .bind(&inserts.n)
        .bind(&inserts.data)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes one job's batch inside the caller's transaction; `LeaseLost` (writing nothing) if the
/// batch's claim is no longer the job's. Returns the last step stored, if any.
async fn append_batch(conn: &mut PgConnection, batch: &MetricBatch) -> Result<Option<u64>, StoreError> {
    let id = shared::batch_job(batch)?;
    let (state, attempt, meta) = append_sql::job(conn, id).await?;
    shared::batch_fenced(id, batch.attempt, state, attempt)?;
    let mut last = None;
    if let Some(checked) = shared::check_batch(id, &meta, batch)? {
        append_series(conn, id, &checked).await?;
        append_sql::progress(conn, id, &checked).await?;
        last = checked.nums.last().copied();
    }
    if !batch.evals.is_empty() {
        let steps = batch.evals.iter().map(|e| step_i64(e.step)).collect::<Result<Vec<_>, _>>()?;
        let loss: Vec<f64> = batch.evals.iter().map(|e| e.test_loss).collect();
        let accuracy: Vec<f64> = batch.evals.iter().map(|e| e.test_accuracy).collect();
        // A step evaluated twice in one batch (a resumed job's) keeps its last evaluation, as
        // one statement per evaluation did.
        sqlx::query(
            "INSERT INTO evals (job_id, step, test_loss, test_accuracy) \
             SELECT DISTINCT ON (step) $1, step, loss, acc \
             FROM unnest($2::bigint[], $3::float8[], $4::float8[]) WITH ORDINALITY AS e(step, loss, acc, i) \
             ORDER BY step, i DESC \
             ON CONFLICT (job_id, step) DO UPDATE SET test_loss = excluded.test_loss, \
             test_accuracy = excluded.test_accuracy",
        )
        .bind(id.0)
        .bind(&steps)
        .bind(&loss)
        .bind(&accuracy)
        .execute(&mut *conn)
        .await?;
    }
    Ok(last.or(batch.evals.last().map(|e| e.step)))
}

/// How often an append that lost a deadlock or a serialization conflict is tried again.
const CONFLICT_RETRIES: u32 = 5;

/// An append's failure: the database's own error kept whole until it is known whether trying
/// again can help.
enum AppendError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        AppendError::Sql(e)
    }
}

impl From<StoreError> for AppendError {
    fn from(e: StoreError) -> Self {
        AppendError::Store(e)
    }
}

impl From<AppendError> for StoreError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Sql(e) => e.into(),
            AppendError::Store(e) => e,
        }
    }
}

/// A deadlock (40P01) or a serialization failure (40001): PostgreSQL rolled the transaction
/// back, and the same transaction tried again normally succeeds.
fn is_conflict(e: &AppendError) -> bool {
    matches!(e, AppendError::Sql(sqlx::Error::Database(d)) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

impl PgStore {
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// Commits `tx` if `result` is Ok, else rolls it back now: a dropped transaction's rollback waits
/// for the connection's next use, and until then its row locks make claims skip those jobs.
pub(super) async fn settle<T>(
    tx: Transaction<'static, Postgres>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            // The error that stopped the transaction is the one to report.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

impl PgStore {
    pub(super) async fn append(&self, batches: &[MetricBatch]) -> Result<Vec<JobId>, StoreError> {
        let mut lost = Vec::new();
        if batches.iter().all(|b| b.steps.iter().all(|s| s.layers.is_empty()) && b.evals.is_empty()) {
            return Ok(lost);
        }
        // Job rows are locked in id order, as every transaction that locks several does, so
        // that two of them never wait on each other.
        let mut ordered: Vec<&MetricBatch> = batches.iter().collect();
        ordered.sort_by_key(|b| b.job);
        let mut tries = 0;
        loop {
            lost.clear();
            match self.append_once(&ordered, &mut lost).await {
                Err(e) if is_conflict(&e) && tries < CONFLICT_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << tries)).await;
                }
                Err(e) => return Err(e.into()),
                Ok(()) => return Ok(lost),
            }
        }
    }

    async fn append_once(&self, batches: &[&MetricBatch], lost: &mut Vec<JobId>) -> Result<(), AppendError> {
        let mut tx = self.pool.begin().await?;
        for batch in batches {
            match append_batch(&mut tx, batch).await {
                Err(StoreError::LeaseLost(id)) => lost.push(id),
                Err(e) => return Err(AppendError::Store(e)),
                Ok(Some(step)) => {
                    notify(&mut tx, &self.origin, Note::Progress(shared::batch_job(batch)?, step)).await?
                }
                Ok(None) => {}
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn meta(&self, id: JobId) -> Result<HistoryMeta, StoreError> {
        job_meta(&mut *self.pool.acquire().await?, id).await
    }

    pub(super) async fn series(
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
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(RANGE_CHUNKS)
            .bind(id.0)
            .bind(series)
            .bind(clamp_i64(lo))
            .bind(clamp_i64(hi))
            .bind(shared::chunks_for(max_rows))
            .fetch_all(&self.pool)
            .await
            .map_err(read_failed(id))?;
        shared::rows_of(id, ncols, cols, lo, hi, max_rows, rows.iter().map(|(d,)| d.as_slice()))
    }

    pub(super) async fn histograms(
        &self,
        id: JobId,
        lo: u64,
        hi: u64,
    ) -> Result<Vec<(u64, Vec<Histogram>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT step, data FROM histograms WHERE job_id = $1 AND step >= $2 AND step <= $3 ORDER BY step",
        )
        .bind(id.0)
        .bind(clamp_i64(lo))
        .bind(clamp_i64(hi))
        .fetch_all(&self.pool)
        .await
        .map_err(read_failed(id))?;
        shared::histograms_of(id, rows)
    }

    pub(super) async fn evals(&self, id: JobId, from_step: u64) -> Result<Vec<EvalRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        job_meta(&mut conn, id).await?;
        let rows: Vec<(i64, Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT step, test_loss, test_accuracy FROM evals WHERE job_id = $1 AND step >= $2 ORDER BY step",
        )
        .bind(id.0)
        .bind(clamp_i64(from_step))
        .fetch_all(&mut *conn)
        .await
        .map_err(read_failed(id))?;
        shared::evals_of(id, rows)
    }
}
