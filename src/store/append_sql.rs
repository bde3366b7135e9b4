//! The statements of an append that are the same on both backends, written once with `$N`
//! placeholders (which sqlx binds on SQLite as on PostgreSQL) and expanded for each backend's
//! connection by `ops!`, as `checkpoints.rs` does. Each runs inside the caller's transaction.

macro_rules! ops {
    ($backend:ident, $conn:ty, $lock:literal) => {
        pub mod $backend {
            use sqlx::AssertSqlSafe;

            use crate::runner::{HistoryMeta, JobId, JobState, StoreError};
            use crate::store::codec::encode_histograms;
            use crate::store::shared::{self, AppendRow, Checked, step_i64};

            /// The job's state, claim and history meta, read in one statement (and its row
            /// locked for the transaction where the backend locks rows); NotFound if it is gone.
            pub async fn job(conn: &mut $conn, id: JobId) -> Result<(JobState, u64, HistoryMeta), StoreError> {
                let sql = format!("SELECT state, attempt, {} FROM jobs WHERE id = $1{}", shared::META_COLUMNS, $lock);
                let row: Option<AppendRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(shared::read_failed(id))?;
                shared::append_meta(id, row.ok_or(StoreError::NotFound(id))?)
            }

            /// Stores a checked batch's histograms and the job's progress after it.
            pub async fn progress(conn: &mut $conn, id: JobId, checked: &Checked<'_>) -> Result<(), StoreError> {
                for s in checked.steps.iter().filter(|s| !s.histograms.is_empty()) {
                    sqlx::query("INSERT INTO histograms (job_id, step, data) VALUES ($1, $2, $3)")
                        .bind(id.0)
                        .bind(step_i64(s.step)?)
                        .bind(encode_histograms(&s.histograms))
                        .execute(&mut *conn)
                        .await?;
                }
                sqlx::query("UPDATE jobs SET steps_done = $1, n_layers = $2 WHERE id = $3")
                    .bind(checked.steps_done()?)
                    .bind(checked.n_layers as i64)
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
        }
    };
}

ops!(sqlite, sqlx::SqliteConnection, "");
// Locked either way: a claim of this job waits for the batch, and the batch for a claim.
ops!(postgres, sqlx::PgConnection, " FOR UPDATE");
