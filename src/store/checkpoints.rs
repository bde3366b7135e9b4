//! Checkpoints, cutting a history back to one, and forks: the same SQL on both backends.
//!
//! `checkpoints (job_id, step, created_ms, data)`: a job's training state after `step` steps,
//! as `engine::checkpoint` encodes it, one row each (a 10M-parameter Adam net is ~120 MB, well
//! inside both backends' value limits). The statements use `$N` placeholders, which sqlx binds
//! on SQLite as on PostgreSQL; `ops!` writes them once for each backend's connection type.
//! Every function runs inside the caller's transaction, after the caller's own check of the
//! job's claim (each backend locks a job its own way).

use crate::engine::stats::LayerStats;
use crate::runner::{JobId, StoreError};
use crate::store::codec::{Chunk, STEP_LAYER, STEP_METRICS, encode_chunk};
use crate::store::shared::corrupt;

/// Steps of a stored chunk of `layer` that come before `step`, re-encoded: (last step, count,
/// data); None when none do.
fn cut_chunk(id: JobId, layer: i64, data: &[u8], step: u64) -> Result<Option<(i64, i64, Vec<u8>)>, StoreError> {
    let ncols = if layer == STEP_LAYER { STEP_METRICS.len() } else { LayerStats::METRICS.len() };
    let chunk = Chunk::decode(data, ncols).map_err(|e| corrupt(id, e))?;
    let keep = chunk.lower_bound(step);
    if keep == 0 {
        return Ok(None);
    }
    let steps = chunk.steps(0..keep);
    let data = encode_chunk(steps, ncols, |i, c| chunk.value(i, c));
    Ok(Some((steps[keep - 1] as i64, keep as i64, data)))
}

macro_rules! ops {
    ($backend:ident, $conn:ty) => {
        pub mod $backend {
            use super::cut_chunk;
            use crate::runner::{CheckpointInfo, JobId, StoreError};
            use crate::engine::spec::JobSpec;
            use crate::store::shared::{corrupt, step_i64, unsigned};

            /// Stores (or replaces) the checkpoint at `step` and drops all but the newest `keep`.
            pub async fn save(
                conn: &mut $conn,
                id: JobId,
                step: u64,
                created_ms: i64,
                data: &[u8],
                keep: u32,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO checkpoints (job_id, step, created_ms, data) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (job_id, step) DO UPDATE SET created_ms = excluded.created_ms, data = excluded.data",
                )
                .bind(id.0)
                .bind(step_i64(step)?)
                .bind(created_ms)
                .bind(data)
                .execute(&mut *conn)
                .await?;
                // A fork's first checkpoint stays: it starts there if it is ever requeued.
                sqlx::query(
                    "DELETE FROM checkpoints WHERE job_id = $1 AND step < (SELECT min(step) FROM \
                     (SELECT step FROM checkpoints WHERE job_id = $1 ORDER BY step DESC LIMIT $2) AS newest) \
                     AND step <> coalesce((SELECT fork_step FROM jobs WHERE id = $1), -1)",
                )
                .bind(id.0)
                .bind(i64::from(keep.max(1)))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub async fn read(conn: &mut $conn, id: JobId, step: u64) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(sqlx::query_scalar("SELECT data FROM checkpoints WHERE job_id = $1 AND step = $2")
                    .bind(id.0)
                    .bind(step_i64(step)?)
                    .fetch_optional(conn)
                    .await?)
            }

            pub async fn list(conn: &mut $conn, id: JobId) -> Result<Vec<CheckpointInfo>, StoreError> {
                let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT step, CAST(length(data) AS BIGINT), created_ms FROM checkpoints WHERE job_id = $1 ORDER BY step",
                )
                .bind(id.0)
                .fetch_all(conn)
                .await?;
                rows.into_iter()
                    .map(|(step, bytes, created_ms)| {
                        Ok(CheckpointInfo {
                            step: unsigned(id, "checkpoint step", step)?,
                            bytes: unsigned(id, "checkpoint size", bytes)?,
                            created_ms,
                        })
                    })
                    .collect()
            }

            /// The step of the job's newest checkpoint.
            pub async fn newest(conn: &mut $conn, id: JobId) -> Result<Option<u64>, StoreError> {
                let step: Option<i64> = sqlx::query_scalar("SELECT max(step) FROM checkpoints WHERE job_id = $1")
                    .bind(id.0)
                    .fetch_one(conn)
                    .await?;
                step.map(|s| unsigned(id, "checkpoint step", s)).transpose()
            }

            /// Removes the checkpoints of a job that has ended, unless its spec asks to keep them.
            pub async fn drop_unless_kept(conn: &mut $conn, id: JobId) -> Result<(), StoreError> {
                let spec: String = sqlx::query_scalar("SELECT spec FROM jobs WHERE id = $1")
                    .bind(id.0)
                    .fetch_one(&mut *conn)
                    .await?;
                let spec: JobSpec = serde_json::from_str(&spec).map_err(|e| corrupt(id, format!("spec: {e}")))?;
                if !spec.keep_checkpoints {
                    sqlx::query(
                        "DELETE FROM checkpoints WHERE job_id = $1 \
                         AND step <> coalesce((SELECT fork_step FROM jobs WHERE id = $1), -1)",
                    )
                    .bind(id.0)
                    .execute(conn)
                    .await?;
                }
                Ok(())
            }

            /// Makes the new job `child` a fork of `parent` at its checkpoint at `step`: the
            /// checkpoint copied as the child's first, the fork recorded, the child's progress
            /// at the step and its layer count the parent's. `Invalid` if the checkpoint is gone.
            pub async fn adopt(conn: &mut $conn, child: JobId, parent: JobId, step: u64) -> Result<(), StoreError> {
                let at = step_i64(step)?;
                let copied = sqlx::query(
                    "INSERT INTO checkpoints (job_id, step, created_ms, data) \
                     SELECT $1, step, created_ms, data FROM checkpoints WHERE job_id = $2 AND step = $3",
                )
                .bind(child.0)
                .bind(parent.0)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                if copied.rows_affected() != 1 {
                    return Err(StoreError::Invalid(format!(
                        "job {parent}'s checkpoint at step {step} is gone (a newer one replaced it); fork again"
                    )));
                }
                sqlx::query(
                    "UPDATE jobs SET parent_id = $2, fork_step = $3, steps_done = $3, \
                     n_layers = (SELECT n_layers FROM jobs WHERE id = $2) WHERE id = $1",
                )
                .bind(child.0)
                .bind(parent.0)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Jobs forked from `id`, oldest first.
            pub async fn forks_of(conn: &mut $conn, id: JobId) -> Result<Vec<JobId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE parent_id = $1 ORDER BY id")
                    .bind(id.0)
                    .fetch_all(conn)
                    .await?;
                Ok(ids.into_iter().map(JobId).collect())
            }

            /// `HasForks` unless every fork of the jobs `ids` is among them (deleted with them).
            pub async fn refuse_forked(conn: &mut $conn, ids: &[JobId]) -> Result<(), StoreError> {
                for &id in ids {
                    let outside: Vec<JobId> = forks_of(conn, id).await?.into_iter().filter(|f| !ids.contains(f)).collect();
                    if !outside.is_empty() {
                        return Err(StoreError::HasForks(id, outside));
                    }
                }
                Ok(())
            }

            /// `HasForks` if a job of the sweep has a fork outside it.
            pub async fn refuse_forked_sweep(conn: &mut $conn, sweep: i64) -> Result<(), StoreError> {
                let rows: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT p.id, j.id FROM jobs j JOIN jobs p ON p.id = j.parent_id \
                     WHERE p.sweep_id = $1 AND (j.sweep_id IS NULL OR j.sweep_id <> $1) ORDER BY p.id, j.id",
                )
                .bind(sweep)
                .fetch_all(conn)
                .await?;
                match rows.first() {
                    None => Ok(()),
                    Some(&(parent, _)) => Err(StoreError::HasForks(
                        JobId(parent),
                        rows.iter().filter(|r| r.0 == parent).map(|r| JobId(r.1)).collect(),
                    )),
                }
            }

            /// Cuts the job's history back to what a run resumed after `step` steps has not yet
            /// recorded: recorded steps and histograms before `step`, evaluations at or before
            /// it, checkpoints up to it. `steps_done` follows the last step kept, and
            /// `resumed_from` says where the job goes on from.
            pub async fn cut_history(conn: &mut $conn, id: JobId, step: u64) -> Result<(), StoreError> {
                let at = step_i64(step)?;
                sqlx::query("DELETE FROM chunks WHERE job_id = $1 AND first_step >= $2")
                    .bind(id.0)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                let straddling: Vec<(i64, i64, Vec<u8>)> =
                    sqlx::query_as("SELECT layer, first_step, data FROM chunks WHERE job_id = $1 AND last_step >= $2")
                        .bind(id.0)
                        .bind(at)
                        .fetch_all(&mut *conn)
                        .await?;
                for (layer, first_step, data) in straddling {
                    let Some((last_step, n, data)) = cut_chunk(id, layer, &data, step)? else { continue };
                    sqlx::query(
                        "UPDATE chunks SET last_step = $1, n = $2, data = $3 \
                         WHERE job_id = $4 AND layer = $5 AND first_step = $6",
                    )
                    .bind(last_step)
                    .bind(n)
                    .bind(data)
                    .bind(id.0)
                    .bind(layer)
                    .bind(first_step)
                    .execute(&mut *conn)
                    .await?;
                }
                for sql in [
                    "DELETE FROM histograms WHERE job_id = $1 AND step >= $2",
                    "DELETE FROM evals WHERE job_id = $1 AND step > $2",
                    "DELETE FROM checkpoints WHERE job_id = $1 AND step > $2",
                    // A fork's own history starts at its fork step: before its own steps, its
                    // progress is that step.
                    "UPDATE jobs SET resumed_from = $2, steps_done = coalesce((SELECT max(last_step) + 1 \
                     FROM chunks WHERE job_id = $1 AND layer = -1), fork_step, 0) WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(id.0).bind(at).execute(&mut *conn).await?;
                }
                Ok(())
            }
        }
    };
}

ops!(sqlite, sqlx::SqliteConnection);
ops!(postgres, sqlx::PgConnection);
