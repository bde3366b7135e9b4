//! Store tests that only SQLite has: its files, pragmas and in-memory URLs, data planted with
//! SQL, and a full disk.

use super::*;

#[tokio::test]
async fn reopen_reads_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("durable.db").display());
    let (id, all, rec) = {
        let store = SqliteStore::open(&url).await.unwrap();
        let rec = store.create_job(&spec("d", Activation::Ramp, 2, &[("k", "v")]), Some(3), None).await.unwrap();
        let (_, attempt) = claim(&store).await;
        let all = fill(&store, rec.id, 900, 3, &[64]).await;
        store
            .mark_finished(rec.id, attempt, JobState::Succeeded, 20, Some(&summary(Verdict::Healthy)), None)
            .await
            .unwrap();
        let rec = store.get_job(rec.id).await.unwrap().unwrap();
        store.close().await;
        (rec.id, all, rec)
    };
    // Plain path this time.
    let store = SqliteStore::open(dir.path().join("durable.db").to_str().unwrap()).await.unwrap();
    let w = store.writer_pool();
    let page: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(w).await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(w).await.unwrap();
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(w).await.unwrap();
    assert_eq!((page, journal.as_str(), fk), (16384, "wal", 1));
    assert_eq!(store.get_job(id).await.unwrap(), Some(rec));
    let got = store.read_steps(id, 0, usize::MAX).await.unwrap();
    assert_eq!(got.iter().map(bits).collect::<Vec<_>>(), all.iter().map(bits).collect::<Vec<_>>());
    let f = JobFilter { label: Some(("k".into(), Some("v".into()))), ..Default::default() };
    assert_eq!(ids(&store.list_jobs(&f, Order::NEWEST_FIRST, &PageRequest::default()).await.unwrap().0), vec![id.0]);
}

#[tokio::test]
async fn bad_stored_data_is_corrupt_not_a_panic() {
    let (_dir, store) = temp_store().await;
    let id = store.create_job(&spec("c", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    fill(&store, id, 10, 2, &[10]).await;
    let w = store.writer_pool();
    sqlx::query("UPDATE chunks SET data = x'47010c00ffffffff' WHERE job_id = ? AND layer = 1")
        .bind(id.0)
        .execute(w)
        .await
        .unwrap();
    assert!(matches!(store.read_steps(id, 0, 10).await, Err(StoreError::Corrupt { .. })));
    assert!(matches!(store.history(id, &HistoryQuery::default()).await, Err(StoreError::Corrupt { .. })));
    let h = store.create_job(&spec("h", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    fill(&store, h, 10, 2, &[10]).await;
    sqlx::query("UPDATE histograms SET data = x'4801000005000000' WHERE job_id = ?")
        .bind(h.0)
        .execute(w)
        .await
        .unwrap();
    assert!(matches!(store.read_steps(h, 0, 10).await, Err(StoreError::Corrupt { .. })));
    sqlx::query("UPDATE chunks SET data = x'47010400ffffffff' WHERE job_id = ? AND layer = -1")
        .bind(h.0)
        .execute(w)
        .await
        .unwrap();
    assert!(matches!(store.read_steps(h, 0, 10).await, Err(StoreError::Corrupt { .. })));
    sqlx::query("UPDATE jobs SET spec = '{not json' WHERE id = ?").bind(id.0).execute(w).await.unwrap();
    assert!(matches!(store.get_job(id).await, Err(StoreError::Corrupt { .. })));
    sqlx::query("UPDATE jobs SET spec = '{}', steps_done = -5 WHERE id = ?").bind(id.0).execute(w).await.unwrap();
    assert!(matches!(store.get_job(id).await, Err(StoreError::Corrupt { .. })));
    sqlx::query("UPDATE jobs SET steps_done = 'many' WHERE id = ?").bind(id.0).execute(w).await.unwrap();
    assert!(matches!(store.get_job(id).await, Err(StoreError::Corrupt { .. })));
    assert!(matches!(store.read_steps(id, 0, 1).await, Err(StoreError::Corrupt { .. })));
}

#[tokio::test]
async fn in_memory_urls_work() {
    for url in ["sqlite::memory:", "sqlite://:memory:"] {
        let store = SqliteStore::open(url).await.unwrap();
        let id = store.create_job(&spec("m", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
        fill(&store, id, 30, 2, &[7]).await;
        assert_eq!(store.read_steps(id, 0, 100).await.unwrap().len(), 30);
    }
    assert!(matches!(SqliteStore::open("").await, Err(StoreError::Invalid(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_fails_the_job_writing_and_nothing_else() {
    use std::sync::Arc;

    use crate::runner::{Runner, RunnerConfig};
    let (_dir, store) = temp_store().await;
    let runner = Runner::start(Arc::new(store.clone()), RunnerConfig::with_workers(2)).await.unwrap();
    let small = JobSpec { steps: 60, ..JobSpec::default().with_depth(2, 8) };
    let a = runner.submit(small.clone(), None).await.unwrap().id;
    let a_done = until(&store, a, |j| j.state.is_terminal()).await;
    assert_eq!(a_done.state, JobState::Succeeded);
    let a_history = store.history(a, &HistoryQuery::default()).await.unwrap();

    // A job that writes a lot; once it runs, the database may not grow any more.
    let big = JobSpec { steps: 100_000, histogram_every: 1, ..JobSpec::default().with_depth(4, 64) };
    let b = runner.submit(big, None).await.unwrap().id;
    until(&store, b, |j| j.steps_done > 0).await;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(store.writer_pool()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {}", pages + 4)))
        .execute(store.writer_pool())
        .await
        .unwrap();

    // The job stops on the failed write. Recording its end may need a page too: the writer keeps
    // trying, and the store keeps answering reads meanwhile.
    let mut last = (0, std::time::Instant::now());
    while last.1.elapsed() < std::time::Duration::from_millis(500) {
        let now = store.get_job(b).await.unwrap().unwrap();
        if now.state.is_terminal() {
            break;
        }
        if now.steps_done != last.0 {
            last = (now.steps_done, std::time::Instant::now());
        }
        assert_eq!(store.get_job(a).await.unwrap().unwrap(), a_done);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sqlx::query("PRAGMA max_page_count = 1073741823").execute(store.writer_pool()).await.unwrap();
    let b_done = until(&store, b, |j| j.state.is_terminal()).await;
    assert_eq!(b_done.state, JobState::Failed);
    let why = b_done.error.unwrap_or_default();
    assert!(why.contains("full"), "the failure says why: {why}");
    assert!(b_done.steps_done < 100_000);
    // Its history is whole up to where it stopped: every stored step, in order, no torn chunk.
    let b_history = store.history(b, &HistoryQuery { metrics: Some(vec!["loss".into()]), ..Default::default() }).await;
    let steps = &b_history.unwrap().series[0].steps;
    assert_eq!(steps, &(0..steps.len() as u64).collect::<Vec<_>>());

    // The other job is untouched, and the store still answers.
    assert_eq!(store.get_job(a).await.unwrap().unwrap(), a_done);
    assert_eq!(store.history(a, &HistoryQuery::default()).await.unwrap(), a_history);
    // Room again: jobs run as before.
    let c = runner.submit(small, None).await.unwrap().id;
    assert_eq!(until(&store, c, |j| j.state.is_terminal()).await.state, JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_job_the_store_refused_is_recorded_once_it_accepts() {
    use std::sync::Arc;

    use crate::runner::{Runner, RunnerConfig};
    let (_dir, store) = temp_store().await;
    let runner = Runner::start(Arc::new(store.clone()), RunnerConfig::with_workers(1)).await.unwrap();
    let job = JobSpec { steps: 1_000_000, ..JobSpec::default().with_depth(2, 8) };
    let id = runner.submit(job, None).await.unwrap().id;
    until(&store, id, |j| j.steps_done > 10).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let watching = runner.clone();
    let watcher = tokio::spawn(async move { watching.watch(id, 0, tx).await });

    // Every write now fails: the job's metrics, then the record of its end.
    sqlx::query("PRAGMA query_only = 1").execute(store.writer_pool()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let meanwhile = store.get_job(id).await.unwrap().unwrap();
    assert_eq!(meanwhile.state, JobState::Running, "its end could not be recorded yet");
    let stuck_at = meanwhile.steps_done;

    sqlx::query("PRAGMA query_only = 0").execute(store.writer_pool()).await.unwrap();
    let ended = until(&store, id, |j| j.state.is_terminal()).await;
    assert_eq!(ended.state, JobState::Failed);
    assert!(ended.error.as_deref().unwrap_or("").contains("storing metrics failed"), "{ended:?}");
    assert_eq!(ended.steps_done, stuck_at, "nothing stored after the failure");
    // The watcher hears the end once it is recorded.
    let mut last = None;
    while let Some(ev) = rx.recv().await {
        if let Ok(crate::runner::LiveEvent::State(rec)) = ev {
            last = Some(rec.state);
        }
    }
    watcher.await.unwrap();
    assert_eq!(last, Some(JobState::Failed));
}

#[tokio::test]
async fn chunks_written_before_compression_still_read() {
    let (_dir, store) = temp_store().await;
    let id = store.create_job(&spec("v1", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    let recs = fill(&store, id, 600, 2, &[600]).await;
    let before = store.history(id, &HistoryQuery::default()).await.unwrap();
    // Rewrite every chunk as version 1 (raw columns) from its decoded contents.
    let w = store.writer_pool();
    let rows: Vec<(i64, i64, Vec<u8>)> =
        sqlx::query_as("SELECT rowid, layer, data FROM chunks WHERE job_id = ?").bind(id.0).fetch_all(w).await.unwrap();
    for (rowid, layer, data) in rows {
        let ncols = if layer < 0 { STEP_METRICS.len() } else { LayerStats::METRICS.len() };
        let c = crate::store::codec::Chunk::decode(&data, ncols).unwrap();
        let mut v1 = vec![0x47, 1, ncols as u8, 0];
        v1.extend_from_slice(&(c.len() as u32).to_le_bytes());
        for i in 0..c.len() {
            v1.extend_from_slice(&c.step(i).to_le_bytes());
        }
        for col in 0..ncols {
            for i in 0..c.len() {
                v1.extend_from_slice(&c.value(i, col).to_bits().to_le_bytes());
            }
        }
        sqlx::query("UPDATE chunks SET data = ? WHERE rowid = ?").bind(v1).bind(rowid).execute(w).await.unwrap();
    }
    let series_bits = |h: &crate::runner::HistoryResult| {
        h.series
            .iter()
            .map(|s| {
                (s.layer, s.metric.clone(), s.steps.clone(), s.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(series_bits(&store.history(id, &HistoryQuery::default()).await.unwrap()), series_bits(&before));
    let read = store.read_steps(id, 0, 1000).await.unwrap();
    assert_eq!(read.iter().map(bits).collect::<Vec<_>>(), recs.iter().map(bits).collect::<Vec<_>>());
    // Appending to a version-1 tail chunk rewrites it in the current version.
    let more: Vec<StepRecord> = (600..700).map(|s| record(s, 2, 50)).collect();
    store.append_metrics(&[batch(id, more.clone(), vec![])]).await.unwrap();
    let read = store.read_steps(id, 0, 1000).await.unwrap();
    assert_eq!(read.len(), 700);
    assert_eq!(read[650..].iter().map(bits).collect::<Vec<_>>(), more[50..].iter().map(bits).collect::<Vec<_>>());
}

async fn until(store: &SqliteStore, id: JobId, done: impl Fn(&JobRecord) -> bool) -> JobRecord {
    for _ in 0..3000 {
        let j = store.get_job(id).await.unwrap().unwrap();
        if done(&j) {
            return j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("job {id} never got there: {:?}", store.get_job(id).await);
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', 1, x'00', 0)",
    )
    .execute(store.writer_pool())
    .await
    .unwrap();
    store.close().await;
    let err = SqliteStore::open(path.to_str().unwrap()).await.expect_err("a newer schema must be refused");
    let known = crate::store::migrations::sqlite().iter().map(|m| m.version).max().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("version 99") && msg.contains(&format!("version {known}")), "{msg}");
}

#[tokio::test]
async fn jobs_stored_before_result_columns_get_them_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    crate::store::migrations::sqlite().run_to(4, &pool).await.unwrap();
    for (id, state, spec, summary) in search::old_rows() {
        sqlx::query(
            "INSERT INTO jobs (id, spec, name, activation, depth, state, created_ms, summary) \
             VALUES (?, ?, 'old', 'tanh', 1, ?, 0, ?)",
        )
        .bind(id)
        .bind(spec)
        .bind(state)
        .bind(summary)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    search::old_rows_have_their_results(&store).await;
}
