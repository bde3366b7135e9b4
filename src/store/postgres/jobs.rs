//! `Store` on PostgreSQL: jobs, claims and leases, sweeps; histories are in `history`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection};

use super::PgStore;
use super::QUEUE_LOCK;
use super::history::{clear_history, lock_job, settle};
use super::listen::{Note, notify};
use crate::engine::spec::JobSpec;
use crate::engine::stats::Histogram;
use crate::engine::train::EvalRecord;
use crate::runner::sweep::SweepSpec;
use crate::runner::{
    CheckpointInfo, Claim, HistoryMeta, JobFilter, JobId, JobRecord, JobState, JobSummary, JobUpdate, LeaseReport,
    MetricBatch, Order, PageRequest, SeriesRows, StateCounts, Store, StoreError, StoreEvent, SweepId, SweepRecord,
};
use crate::store::checkpoints::postgres as checkpoints;
use crate::store::list::{self, sorted_page_of};
use crate::store::shared::{
    self, JOB_COLUMNS, corrupt, job_from_row, now_ms, page_of, page_size, page_token, sweep_counts,
};

/// A lease of `d` from now, in the database's clock.
const LEASE_UNTIL: &str = "now() + make_interval(secs => $LEASE)";

/// SQL with the lease expression's seconds bound as parameter `n`.
fn with_lease(sql: &str, n: usize) -> String {
    sql.replace("$LEASE", &format!("${n}"))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn select_job(conn: &mut PgConnection, id: JobId) -> Result<JobRecord, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    let row: PgRow = sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_one(conn).await?;
    job_from_row(&row)
}

/// Fails with `Full` unless `adding` more unfinished jobs stay within `max`; the advisory lock,
/// held to the end of the transaction, makes concurrent submissions count one after another.
async fn check_room(conn: &mut PgConnection, adding: usize, max: Option<u64>) -> Result<(), StoreError> {
    let Some(max) = max else { return Ok(()) };
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(QUEUE_LOCK).execute(&mut *conn).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
        .fetch_one(&mut *conn)
        .await?;
    if n as u64 + adding as u64 > max {
        return Err(StoreError::Full(n as u64, max));
    }
    Ok(())
}

/// Inserts a queued job with its labels (inside the caller's transaction).
async fn insert_job(
    conn: &mut PgConnection,
    spec: &JobSpec,
    sweep_id: Option<i64>,
    created_ms: i64,
) -> Result<JobRecord, StoreError> {
    let spec_json = shared::spec_json(spec)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (sweep_id, spec, name, activation, depth, width, state, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7) RETURNING id",
    )
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
        sqlx::query("INSERT INTO job_labels (job_id, key, value) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *conn)
            .await?;
    }
    Ok(shared::queued_job(JobId(id), sweep_id, spec, created_ms))
}

const SWEEP_COLUMNS: &str = "id, spec, created_ms, cancelled_ms";

impl PgStore {
    /// A sweep's row, completed with its jobs' counts and end time.
    async fn complete_sweep(&self, row: (i64, String, i64, Option<i64>)) -> Result<SweepRecord, StoreError> {
        let (id, json, created_ms, cancelled_ms) = row;
        let id = SweepId(id);
        let corrupt = |problem: String| StoreError::CorruptSweep { sweep: id, problem };
        let spec: SweepSpec = serde_json::from_str(&json).map_err(|e| corrupt(format!("spec: {e}")))?;
        let groups: Vec<(String, i64, Option<i64>)> =
            sqlx::query_as("SELECT state, count(*), max(finished_ms) FROM jobs WHERE sweep_id = $1 GROUP BY state")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await?;
        let (counts, finished_ms) = sweep_counts(groups).map_err(corrupt)?;
        Ok(SweepRecord { id, spec, created_ms, cancelled_ms, finished_ms, counts })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_job(
        &self,
        spec: &JobSpec,
        sweep_id: Option<i64>,
        max_unfinished: Option<u64>,
    ) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin().await?;
        check_room(&mut tx, 1, max_unfinished).await?;
        let record = insert_job(&mut tx, spec, sweep_id, now_ms()).await?;
        notify(&mut tx, &self.origin, Note::Queued).await?;
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
        let mut tx = self.begin().await?;
        let result = async {
            check_room(&mut tx, 1, max_unfinished).await?;
            let id = insert_job(&mut tx, spec, None, now_ms()).await?.id;
            checkpoints::adopt(&mut tx, id, parent, step).await?;
            notify(&mut tx, &self.origin, Note::Queued).await?;
            select_job(&mut tx, id).await
        }
        .await;
        settle(tx, result).await
    }

    async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<PgRow> = sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        order: Order,
        page: &PageRequest,
    ) -> Result<(Vec<JobRecord>, Option<String>), StoreError> {
        let q = list::list_sql(filter, order, page, |n| format!("${n}"), |col, p| format!("strpos({col}, {p}) > 0"))?;
        let rows = q.query(JOB_COLUMNS).fetch_all(&self.pool).await?;
        let jobs = rows
            .iter()
            .map(|row| Ok((job_from_row(row)?, list::sort_value(row, order.key)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(sorted_page_of(jobs, q.size, order.key, |j| j.id.0))
    }

    async fn claim_next(&self, owner: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
        let mut tx = self.begin().await?;
        // The oldest job that is queued, or running under a lease that has ended; rows other
        // workers are claiming right now are skipped, not waited for.
        let next: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM jobs WHERE state IN ('queued', 'running') \
             AND (state = 'queued' OR coalesce(lease_until, '-infinity') < now()) \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, state)) = next else { return Ok(None) };
        let id = JobId(id);
        // Claimed again, or a fork: it goes on from its newest checkpoint.
        match checkpoints::newest(&mut tx, id).await? {
            Some(step) => checkpoints::cut_history(&mut tx, id, step).await?,
            None if state == "running" => clear_history(&mut tx, id).await?,
            None => {}
        }
        let sql = with_lease(
            &format!(
                "UPDATE jobs SET state = 'running', owner = $1, attempt = attempt + 1, lease_until = {LEASE_UNTIL}, \
                 started_ms = coalesce(started_ms, $3) WHERE id = $4"
            ),
            2,
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(secs(lease))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let record = select_job(&mut tx, id).await?;
        notify(&mut tx, &self.origin, Note::State(id)).await?;
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
        let ids: Vec<i64> = claims.iter().map(|c| c.0.0).collect();
        let attempts: Vec<i64> = claims.iter().map(|c| c.1 as i64).collect();
        let sql = with_lease(
            &format!(
                "UPDATE jobs j SET lease_until = {LEASE_UNTIL} FROM unnest($1::bigint[], $2::bigint[]) AS c(id, attempt) \
                 WHERE j.id = c.id AND j.attempt = c.attempt AND j.owner = $3 AND j.state = 'running' \
                 RETURNING j.id, j.cancel_requested"
            ),
            4,
        );
        let mut tx = self.begin().await?;
        lock_in_order(&mut tx, &ids).await?;
        let held: Vec<(i64, bool)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(&ids)
            .bind(&attempts)
            .bind(owner)
            .bind(secs(lease))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        for &(id, _) in claims {
            match held.iter().find(|h| h.0 == id.0) {
                None => report.lost.push(id),
                Some((_, true)) => report.cancel.push(id),
                Some((_, false)) => {}
            }
        }
        Ok(report)
    }

    async fn release_leases(&self, owner: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mine: Vec<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE owner = $1 AND state = 'running'")
            .bind(owner)
            .fetch_all(&mut *tx)
            .await?;
        lock_in_order(&mut tx, &mine).await?;
        let released = sqlx::query("UPDATE jobs SET lease_until = '-infinity' WHERE owner = $1 AND state = 'running'")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        if released.rows_affected() > 0 {
            notify(&mut tx, &self.origin, Note::Queued).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn request_cancel(&self, id: JobId, at_ms: i64) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin().await?;
        let (state, _) = lock_job(&mut tx, id).await?;
        match state {
            JobState::Queued => {
                sqlx::query("UPDATE jobs SET state = 'cancelled', finished_ms = $1 WHERE id = $2")
                    .bind(at_ms)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                notify(&mut tx, &self.origin, Note::State(id)).await?;
            }
            JobState::Running => {
                sqlx::query("UPDATE jobs SET cancel_requested = TRUE WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                notify(&mut tx, &self.origin, Note::Cancel(id)).await?;
            }
            done => return Err(StoreError::Invalid(format!("job {id} already {done}"))),
        }
        let record = select_job(&mut tx, id).await?;
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
        let mut tx = self.begin().await?;
        let result = async {
            if lock_job(&mut tx, id).await? != (JobState::Running, attempt) {
                return Err(StoreError::LeaseLost(id));
            }
            sqlx::query(
                "UPDATE jobs SET state = $1, finished_ms = $2, summary = $3, verdict = $4, test_accuracy = $5, \
                 test_loss = $6, error = $7, lease_until = NULL WHERE id = $8",
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
            notify(&mut tx, &self.origin, Note::State(id)).await
        }
        .await;
        settle(tx, result).await
    }

    async fn save_checkpoint(
        &self,
        id: JobId,
        attempt: u64,
        step: u64,
        data: &[u8],
        keep: u32,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let result = async {
            if lock_job(&mut tx, id).await? != (JobState::Running, attempt) {
                return Err(StoreError::LeaseLost(id));
            }
            checkpoints::save(&mut tx, id, step, now_ms(), data, keep).await
        }
        .await;
        settle(tx, result).await
    }

    async fn forks(&self, id: JobId) -> Result<Vec<JobId>, StoreError> {
        checkpoints::forks_of(&mut *self.pool.acquire().await?, id).await
    }

    async fn read_checkpoint(&self, id: JobId, step: u64) -> Result<Option<Vec<u8>>, StoreError> {
        checkpoints::read(&mut *self.pool.acquire().await?, id, step).await
    }

    async fn checkpoints(&self, id: JobId) -> Result<Vec<CheckpointInfo>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        super::history::job_meta(&mut conn, id).await?;
        checkpoints::list(&mut conn, id).await
    }

    async fn requeue(&self, id: JobId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // Its forks read its history before their steps: it stays.
        checkpoints::refuse_forked(&mut tx, &[id]).await?;
        // The attempt is kept: it only grows, so a write of an old claim stays refused.
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', started_ms = NULL, finished_ms = NULL, summary = NULL, verdict = NULL, \
             test_accuracy = NULL, test_loss = NULL, error = NULL, owner = NULL, lease_until = NULL, \
             cancel_requested = FALSE WHERE id = $1",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(id));
        }
        clear_history(&mut tx, id).await?;
        notify(&mut tx, &self.origin, Note::State(id)).await?;
        notify(&mut tx, &self.origin, Note::Queued).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_metrics(&self, batches: &[MetricBatch]) -> Result<Vec<JobId>, StoreError> {
        self.append(batches).await
    }

    async fn read_histograms(&self, id: JobId, lo: u64, hi: u64) -> Result<Vec<(u64, Vec<Histogram>)>, StoreError> {
        self.histograms(id, lo, hi).await
    }

    async fn read_evals(&self, id: JobId, from_step: u64) -> Result<Vec<EvalRecord>, StoreError> {
        self.evals(id, from_step).await
    }

    async fn history_meta(&self, id: JobId) -> Result<HistoryMeta, StoreError> {
        self.meta(id).await
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
        self.series(id, layer, cols, lo, hi, max_rows).await
    }

    async fn job_counts(&self) -> Result<StateCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
        let mut counts = StateCounts::default();
        for (state, n) in rows {
            counts.add(state.parse().map_err(StoreError::Database)?, n as u64);
        }
        Ok(counts)
    }

    async fn create_sweep(
        &self,
        spec: &SweepSpec,
        jobs: &[JobSpec],
        max_unfinished: Option<u64>,
    ) -> Result<(SweepRecord, Vec<JobRecord>), StoreError> {
        let json = serde_json::to_string(spec).map_err(|e| StoreError::Invalid(format!("sweep spec: {e}")))?;
        let mut tx = self.begin().await?;
        check_room(&mut tx, jobs.len(), max_unfinished).await?;
        let created_ms = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sweeps (name, spec, jobs_total, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&spec.name)
        .bind(json)
        .bind(jobs.len() as i64)
        .bind(created_ms)
        .fetch_one(&mut *tx)
        .await?;
        let mut records = Vec::with_capacity(jobs.len());
        for job in jobs {
            records.push(insert_job(&mut tx, job, Some(id), created_ms).await?);
        }
        notify(&mut tx, &self.origin, Note::Queued).await?;
        tx.commit().await?;
        let counts = StateCounts { queued: jobs.len() as u64, ..Default::default() };
        let sweep = SweepRecord {
            id: SweepId(id),
            spec: spec.clone(),
            created_ms,
            cancelled_ms: None,
            finished_ms: None,
            counts,
        };
        Ok((sweep, records))
    }

    async fn get_sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
        let sql = format!("SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id = $1");
        let row: Option<(i64, String, i64, Option<i64>)> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(id.0).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => Ok(Some(self.complete_sweep(row).await?)),
            None => Ok(None),
        }
    }

    async fn list_sweeps(&self, page: &PageRequest) -> Result<(Vec<SweepRecord>, Option<String>), StoreError> {
        let size = page_size(page);
        let after = page.token.as_deref().map(page_token).transpose()?;
        let sql =
            format!("SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id < $1 ORDER BY id DESC LIMIT {}", size as u64 + 1);
        let rows: Vec<(i64, String, i64, Option<i64>)> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(after.unwrap_or(i64::MAX)).fetch_all(&self.pool).await?;
        let mut sweeps = Vec::with_capacity(rows.len());
        for row in rows {
            sweeps.push(self.complete_sweep(row).await?);
        }
        Ok(page_of(sweeps, size, |s| s.id.0))
    }

    async fn sweep_jobs(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError> {
        if self.get_sweep(id).await?.is_none() {
            return Err(StoreError::SweepNotFound(id));
        }
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE sweep_id = $1 ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn mark_sweep_cancelled(&self, id: SweepId, at_ms: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE sweeps SET cancelled_ms = coalesce(cancelled_ms, $1) WHERE id = $2")
            .bind(at_ms)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::SweepNotFound(id));
        }
        Ok(())
    }

    async fn delete_jobs(&self, ids: &[JobId]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = delete_jobs_in(&mut tx, &self.origin, ids).await;
        settle(tx, done).await
    }

    async fn delete_sweep(&self, id: SweepId) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let done = delete_sweep_in(&mut tx, id).await;
        settle(tx, done).await
    }

    async fn delete_empty_sweeps(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM sweeps WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.sweep_id = sweeps.id)")
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&self.pool).await?;
        Ok(n.max(0) as u64)
    }

    async fn vacuum(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn update_job(&self, id: JobId, update: &JobUpdate) -> Result<JobRecord, StoreError> {
        let mut tx = self.begin().await?;
        let stored: Option<(String,)> = sqlx::query_as("SELECT spec FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let (json, spec) = shared::updated_spec(id, &stored.ok_or(StoreError::NotFound(id))?.0, update)?;
        sqlx::query("UPDATE jobs SET spec = $1, name = $2 WHERE id = $3")
            .bind(json)
            .bind(&spec.name)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        for k in &update.remove_labels {
            sqlx::query("DELETE FROM job_labels WHERE job_id = $1 AND key = $2")
                .bind(id.0)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        for (k, v) in &update.set_labels {
            sqlx::query(
                "INSERT INTO job_labels (job_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(id.0)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        let record = select_job(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }
}

/// Locks these jobs' rows in id order (the order every transaction that locks several uses, so
/// that none waits on another in a cycle: the heartbeat's renewal against the writer's append).
async fn lock_in_order(conn: &mut sqlx::PgConnection, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE").bind(ids).execute(conn).await?;
    Ok(())
}

/// `delete_jobs` inside the caller's transaction: all of them, or an error and nothing.
async fn delete_jobs_in(tx: &mut PgConnection, origin: &str, ids: &[JobId]) -> Result<(), StoreError> {
    let raw: Vec<i64> = ids.iter().map(|j| j.0).collect();
    lock_in_order(&mut *tx, &raw).await?;
    for &id in ids {
        shared::deletable(id, lock_job(&mut *tx, id).await?.0)?;
    }
    checkpoints::refuse_forked(&mut *tx, ids).await?;
    // Chunks, histograms, evaluations and labels go with the rows (ON DELETE CASCADE).
    sqlx::query("DELETE FROM jobs WHERE id = ANY($1)").bind(&raw).execute(&mut *tx).await?;
    for &id in ids {
        // Watchers on other servers look again, and find the job gone.
        notify(&mut *tx, origin, Note::State(id)).await?;
    }
    Ok(())
}

/// `delete_sweep` inside the caller's transaction.
async fn delete_sweep_in(tx: &mut PgConnection, id: SweepId) -> Result<u64, StoreError> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM sweeps WHERE id = $1 FOR UPDATE").bind(id.0).fetch_optional(&mut *tx).await?;
    found.ok_or(StoreError::SweepNotFound(id))?;
    let jobs: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, state FROM jobs WHERE sweep_id = $1 ORDER BY id FOR UPDATE")
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await?;
    for (job, state) in &jobs {
        let job = JobId(*job);
        shared::deletable(job, JobState::from_str(state).map_err(|e| corrupt(job, e))?)?;
    }
    checkpoints::refuse_forked_sweep(&mut *tx, id.0).await?;
    let n = sqlx::query("DELETE FROM jobs WHERE sweep_id = $1").bind(id.0).execute(&mut *tx).await?.rows_affected();
    sqlx::query("DELETE FROM sweeps WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
    Ok(n)
}
