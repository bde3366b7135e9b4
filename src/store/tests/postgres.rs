//! Store tests that only PostgreSQL has: notifications between servers, and opening a database
//! that is missing or laid out by a newer gradlab.

use super::*;
use crate::runner::StoreEvent;
use crate::store::PgStore;
use crate::store::testing::{PgTestDb, within};

async fn next_event(rx: &mut tokio::sync::broadcast::Receiver<StoreEvent>) -> StoreEvent {
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("no notification within 5 s")
        .expect("the event channel closed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_server_reach_the_others() {
    let Some(db) = PgTestDb::create().await else { return };
    within(TEST_LIMIT, "the test", changes_reach_the_others(&db)).await;
}

async fn changes_reach_the_others(db: &PgTestDb) {
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let mut seen = b.events().expect("PostgreSQL stores announce changes");
    // Each listener reports itself once it listens; give it that moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    while seen.try_recv().is_ok() {}

    let id = a.create_job(&spec("n", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    assert!(matches!(next_event(&mut seen).await, StoreEvent::Queued));
    let (claimed, attempt) = claim(&a).await;
    assert_eq!(claimed, id);
    assert!(matches!(next_event(&mut seen).await, StoreEvent::State { job } if job == id));
    fill(&a, id, 10, 2, &[5]).await;
    let mut last = None;
    while let StoreEvent::Progress { job, step } = next_event(&mut seen).await {
        assert_eq!(job, id);
        last = Some(step);
        if step == 9 {
            break;
        }
    }
    assert_eq!(last, Some(9), "progress stops at the last stored step");
    let mut on_a = a.events().unwrap();
    b.request_cancel(id, 20).await.unwrap();
    // The worker training it (on A) hears of the cancel without waiting for a heartbeat.
    while !matches!(next_event(&mut on_a).await, StoreEvent::Cancel { job } if job == id) {}
    a.mark_finished(id, attempt, JobState::Cancelled, 30, None, None).await.unwrap();
    while !matches!(next_event(&mut seen).await, StoreEvent::State { job } if job == id) {}
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_build_is_refused_naming_both_versions() {
    let Some(db) = PgTestDb::create().await else { return };
    within(TEST_LIMIT, "the test", a_newer_schema_is_refused(&db)).await;
}

async fn a_newer_schema_is_refused(db: &PgTestDb) {
    let store = PgStore::open(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', true, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = PgStore::open(&db.url).await.expect_err("a newer schema must be refused");
    let known = crate::store::migrations::postgres().iter().map(|m| m.version).max().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("version 99") && msg.contains(&format!("version {known}")), "{msg}");
}

#[tokio::test]
async fn a_missing_database_is_an_error_naming_it_and_is_not_created() {
    let Some(db) = PgTestDb::create().await else { return };
    let missing = db.url.replace(db.name(), &format!("{}_missing", db.name()));
    let err = PgStore::open(&missing).await.expect_err("no such database");
    assert!(err.to_string().contains(&format!("{}_missing", db.name())), "{err}");
    let err = PgStore::open(&missing).await.expect_err("still missing: opening creates nothing");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_stored_before_result_columns_get_them_filled_in() {
    let Some(db) = PgTestDb::create().await else { return };
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    crate::store::migrations::postgres().run_to(2, &pool).await.unwrap();
    for (id, state, spec, summary) in search::old_rows() {
        sqlx::query(
            "INSERT INTO jobs (id, spec, name, activation, depth, state, created_ms, summary) \
             VALUES ($1, $2, 'old', 'tanh', 1, $3, 0, $4)",
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
    let store = PgStore::open(&db.url).await.unwrap();
    search::old_rows_have_their_results(&store).await;
    store.close().await;
}

/// How many connections to `db` are listening for notifications.
async fn listening(db: &PgTestDb) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    n
}

/// Whether the count of [`listening`] connections reaches `want` within 10 s.
async fn listening_becomes(db: &PgTestDb, want: i64) -> bool {
    for _ in 0..100 {
        if listening(db).await == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_dropped_without_close_stops_listening() {
    let Some(db) = PgTestDb::create().await else { return };
    within(TEST_LIMIT, "the test", async {
        let store = PgStore::open(&db.url).await.unwrap();
        let copy = store.clone();
        assert!(listening_becomes(&db, 1).await, "an open store listens");
        drop(store);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(listening(&db).await, 1, "a clone still in use keeps listening");
        drop(copy);
        assert!(listening_becomes(&db, 0).await, "the last clone dropped, nothing listens");
    })
    .await;
}
