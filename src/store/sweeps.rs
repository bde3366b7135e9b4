//! The `sweeps` table: a sweep's spec and times. Its job counts and state are read from its
//! jobs (`jobs.sweep_id`), so they can never disagree with them.

use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Row};

use super::shared::{page_size, page_token, sweep_counts};
use crate::runner::sweep::SweepSpec;
use crate::runner::{PageRequest, StateCounts, StoreError, SweepId, SweepRecord};

const SWEEP_COLUMNS: &str = "id, spec, created_ms, cancelled_ms";

fn corrupt(sweep: SweepId, problem: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptSweep { sweep, problem: problem.to_string() }
}

pub(super) async fn insert(
    conn: &mut SqliteConnection,
    spec: &SweepSpec,
    jobs_total: usize,
    created_ms: i64,
) -> Result<SweepRecord, StoreError> {
    let json = serde_json::to_string(spec).map_err(|e| StoreError::Invalid(format!("sweep spec: {e}")))?;
    let id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO sweeps (id, name, spec, jobs_total, created_ms) VALUES ({}, ?, ?, ?, ?) RETURNING id",
        super::sqlite::next_id("sweeps")
    )))
    .bind(&spec.name)
    .bind(json)
    .bind(jobs_total as i64)
    .bind(created_ms)
    .fetch_one(&mut *conn)
    .await?;
    let counts = StateCounts { queued: jobs_total as u64, ..Default::default() };
    Ok(SweepRecord { id: SweepId(id), spec: spec.clone(), created_ms, cancelled_ms: None, finished_ms: None, counts })
}

/// The sweep's row, completed with its jobs' counts and end time.
async fn complete(pool: &SqlitePool, row: &SqliteRow) -> Result<SweepRecord, StoreError> {
    let id = SweepId(row.try_get("id")?);
    let json: String = row.try_get("spec").map_err(|e| corrupt(id, e))?;
    let spec: SweepSpec = serde_json::from_str(&json).map_err(|e| corrupt(id, format!("spec: {e}")))?;
    let groups: Vec<(String, i64, Option<i64>)> =
        sqlx::query_as("SELECT state, count(*), max(finished_ms) FROM jobs WHERE sweep_id = ? GROUP BY state")
            .bind(id.0)
            .fetch_all(pool)
            .await?;
    let (counts, finished_ms) = sweep_counts(groups).map_err(|e| corrupt(id, e))?;
    Ok(SweepRecord {
        id,
        spec,
        created_ms: row.try_get("created_ms")?,
        cancelled_ms: row.try_get("cancelled_ms")?,
        finished_ms,
        counts,
    })
}

pub(super) async fn get(pool: &SqlitePool, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
    let sql = format!("SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id = ?");
    match sqlx::query(AssertSqlSafe(sql)).bind(id.0).fetch_optional(pool).await? {
        Some(row) => Ok(Some(complete(pool, &row).await?)),
        None => Ok(None),
    }
}

/// Newest first; the page token is the decimal id of the page's last sweep.
pub(super) async fn list(
    pool: &SqlitePool,
    page: &PageRequest,
) -> Result<(Vec<SweepRecord>, Option<String>), StoreError> {
    let size = page_size(page);
    let after = page.token.as_deref().map(page_token).transpose()?;
    let sql = format!("SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id < ? ORDER BY id DESC LIMIT {}", size as u64 + 1);
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(after.unwrap_or(i64::MAX)).fetch_all(pool).await?;
    let mut sweeps = Vec::with_capacity(rows.len());
    for row in rows.iter().take(size as usize) {
        sweeps.push(complete(pool, row).await?);
    }
    let next = if rows.len() > size as usize { sweeps.last().map(|s| s.id.0.to_string()) } else { None };
    Ok((sweeps, next))
}
