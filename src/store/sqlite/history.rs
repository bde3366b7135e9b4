//! Appends to a job's history on SQLite: a handful of statements per job and batch, whatever
//! the number of layers.
//!
//! Every statement is a round trip to the connection's worker thread, which wakes it and then
//! the writer's task, interrupting a training thread on a machine whose cores all train. A
//! statement per series and write was about 20 a job per batch in a width-32 sweep: the
//! `seed-claims-mini` sweep bench made 146,000-160,000 context switches, against 83,000-85,000
//! now.

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

use crate::runner::{JobId, MetricBatch, StoreError};
use crate::store::append_sql::sqlite as append_sql;
use crate::store::shared::{self, SeriesWrites, step_i64};

/// Rows per multi-row statement: at most 6 parameters a row, far below SQLite's limit on a
/// statement's parameters.
const ROWS_PER_STATEMENT: usize = 256;

/// The last chunk of each series named by the JSON array `?2`, as (layer, rowid, data).
const TAILS: &str = "SELECT l.value, c.rowid, c.data FROM json_each(?2) AS l \
     JOIN chunks AS c ON c.rowid = (SELECT rowid FROM chunks WHERE job_id = ?1 AND layer = l.value \
                                    ORDER BY first_step DESC LIMIT 1)";

/// Writes one job's batch inside the caller's transaction; `LeaseLost` (writing nothing) if
/// the batch's claim is no longer the job's.
pub(super) async fn append_batch(conn: &mut SqliteConnection, batch: &MetricBatch) -> Result<(), StoreError> {
    let id = shared::batch_job(batch)?;
    let (state, attempt, meta) = append_sql::job(conn, id).await?;
    shared::batch_fenced(id, batch.attempt, state, attempt)?;
    if let Some(checked) = shared::check_batch(id, &meta, batch)? {
        append_series(conn, id, &checked).await?;
        append_sql::progress(conn, id, &checked).await?;
    }
    // NaN is stored as NULL (SQLite has no NaN REAL). A step evaluated twice keeps its last.
    let real = |x: f64| if x.is_nan() { None } else { Some(x) };
    for evals in batch.evals.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT OR REPLACE INTO evals (job_id, step, test_loss, test_accuracy) VALUES {}",
            placeholders(evals.len(), 4)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for e in evals {
            q = q.bind(id.0).bind(step_i64(e.step)?).bind(real(e.test_loss)).bind(real(e.test_accuracy));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends a checked batch's steps to each of the job's series (see `shared::plan_series`):
/// one statement reads every tail chunk, one batch of statements rewrites the tails, one
/// statement inserts the new chunks (per 256 series).
async fn append_series(
    conn: &mut SqliteConnection,
    id: JobId,
    checked: &shared::Checked<'_>,
) -> Result<(), StoreError> {
    let layers: Vec<String> = shared::series_layers(checked).iter().map(i64::to_string).collect();
    let tails: Vec<(i64, i64, Vec<u8>)> =
        sqlx::query_as(TAILS).bind(id.0).bind(format!("[{}]", layers.join(","))).fetch_all(&mut *conn).await?;
    let SeriesWrites { updates, inserts } = shared::plan_series(id, checked, &tails)?;
    let mut updates = updates.into_rows();
    while !updates.is_empty() {
        let rows: Vec<_> = updates.drain(..updates.len().min(ROWS_PER_STATEMENT)).collect();
        // One statement per row, sent together (one round trip): `UPDATE ... FROM (VALUES
        // ...)` would first copy every BLOB into a temporary table (its plan materializes them).
        let sql = "UPDATE chunks SET last_step = ?, n = ?, data = ? WHERE rowid = ?;".repeat(rows.len());
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (key, _, last_step, n, data) in rows {
            q = q.bind(last_step).bind(n).bind(data).bind(key);
        }
        q.execute(&mut *conn).await?;
    }
    let mut inserts = inserts.into_rows();
    while !inserts.is_empty() {
        let rows: Vec<_> = inserts.drain(..inserts.len().min(ROWS_PER_STATEMENT)).collect();
        let sql = format!(
            "INSERT INTO chunks (job_id, layer, first_step, last_step, n, data) VALUES {}",
            placeholders(rows.len(), 6)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (first_step, layer, last_step, n, data) in rows {
            q = q.bind(id.0).bind(layer).bind(first_step).bind(last_step).bind(n).bind(data);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `(?, ?), (?, ?)` for `rows` rows of `cols` parameters.
fn placeholders(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}
