//! A PostgreSQL database of its own for each test, dropped when the test ends (passing or not).
//!
//! Tests reach the server named by `GRADLAB_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, this project's machines' server). When none
//! answers, PostgreSQL tests print that they were skipped and why, and pass; under `CI=true`
//! they fail instead, so that CI never passes without them.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server tests use when GRADLAB_TEST_DATABASE_URL is not set.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long making or dropping a test database may take before the test fails saying so.
const DATABASE_LIMIT: Duration = Duration::from_secs(60);

/// `fut`'s output, or a panic naming `what` once `limit` has passed: a hang in a test against a
/// real database fails it, naming the stage, instead of stalling the whole run.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// A database created for one test.
pub struct PgTestDb {
    /// Its URL, for a store or a server process.
    pub url: String,
    admin_url: String,
    name: String,
}

fn admin_url() -> String {
    std::env::var("GRADLAB_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_string())
}

/// The URL of database `name` on the server `admin` points at.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
    let at = base.rfind('/').filter(|&i| i > base.find("://").map_or(0, |j| j + 2)).unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..at]);
    if let Some(q) = query {
        url = format!("{url}?{q}");
    }
    url
}

impl PgTestDb {
    /// Creates a fresh, empty database; None (after saying why) when no PostgreSQL answers and
    /// CI is not set.
    pub async fn create() -> Option<PgTestDb> {
        within(DATABASE_LIMIT, "creating a test database", Self::create_now()).await
    }

    async fn create_now() -> Option<PgTestDb> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let admin_url = admin_url();
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                let why = format!("no PostgreSQL at {} ({e})", crate::store::mask_url(&admin_url));
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{why}; CI needs it (start it, or set GRADLAB_TEST_DATABASE_URL)");
                }
                eprintln!("skipping a PostgreSQL test: {why}");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("gradlab_test_{}_{}_{nanos:08x}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        Some(PgTestDb { url: with_database(&admin_url, &name), admin_url, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgTestDb {
    /// Drops the database, forcing off whatever is still connected (a server process the test
    /// killed, a pool not yet closed). On a thread of its own: drop cannot await. The limit is
    /// [`within`], whose timer starts inside the runtime: a `timeout` built before `block_on`
    /// panicked for want of a timer, and every test database was left behind.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(within(DATABASE_LIMIT, "dropping a test database", async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            }))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}: {dropped:?}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[should_panic(expected = "the stalled part did not finish within 20ms")]
    async fn a_stage_past_its_limit_fails_naming_it() {
        within(Duration::from_millis(20), "the stalled part", std::future::pending::<()>()).await;
    }

    #[tokio::test]
    async fn a_stage_within_its_limit_gives_its_output() {
        assert_eq!(within(Duration::from_secs(5), "a quick part", async { 7 }).await, 7);
    }

    async fn exists(name: &str) -> bool {
        let mut admin = PgConnection::connect(&admin_url()).await.expect("the test server");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .expect("pg_database");
        n == 1
    }

    #[tokio::test]
    async fn a_test_database_is_gone_once_dropped() {
        let Some(db) = PgTestDb::create().await else { return };
        let name = db.name().to_string();
        // Connected when dropped, as a store a test forgot to close would be.
        let _conn = PgConnection::connect(&db.url).await.expect("the test database");
        assert!(exists(&name).await, "{name} was created");
        drop(db);
        assert!(!exists(&name).await, "{name} is left behind");
    }

    #[test]
    fn database_urls_keep_their_server_and_options() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u:p@h/test?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
