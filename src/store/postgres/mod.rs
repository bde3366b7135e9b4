//! [`PgStore`]: the [`Store`] trait over PostgreSQL, for several gradlab servers on one
//! database. The layout is SQLite's (chunked, compressed history BLOBs as `bytea`, see the
//! `store` module docs); what differs is what sharing takes:
//!
//! - Claims take the oldest claimable job with `FOR UPDATE SKIP LOCKED`, so concurrent workers
//!   never wait on, nor take, the same row; leases are in the database's clock (`lease_until`,
//!   compared with `now()`), so the servers' clocks never have to agree.
//! - Every change other servers follow is announced with `NOTIFY gradlab` in the transaction
//!   that makes it (delivered at commit): a job queued, a job's history grown to a step, a
//!   state changed, a cancel asked for. Payloads name the job, never data; listeners read the
//!   committed rows. Each server listens ([`listen`]) and hands on what other servers did as
//!   [`StoreEvent`]s.
//! - The queue limit is counted under a transaction-scoped advisory lock, so concurrent
//!   submissions on different servers are counted one after the other.
//! - Connection errors are `Unavailable`: the runner retries them, with backoff.

mod history;
mod jobs;
mod listen;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::migrations;
use super::shared::check_schema;
use crate::runner::{StoreError, StoreEvent};

/// The notification channel every server listens on.
const CHANNEL: &str = "gradlab";
/// Connections per server: the writer, reads from every watcher and RPC, claims and renewals.
const POOL_SIZE: u32 = 16;
/// How long opening waits for the database, and a call for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Store events a slow follower may fall behind by (it then resyncs).
const EVENTS_CAPACITY: usize = 4096;
/// The advisory lock under which unfinished jobs are counted and added (any constant: it only
/// has to be gradlab's).
const QUEUE_LOCK: i64 = 0x6772_6164_6c61_6200; // "gradlab\0"

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    events: broadcast::Sender<StoreEvent>,
    /// This store's name in the notifications it sends, so that it can skip its own.
    origin: String,
    /// The listener task, stopped by `close` before the pool closes, or when the last clone
    /// of the store is dropped.
    listener: Arc<Listener>,
}

/// The task that listens for other servers' notifications. It holds a connection and a handle
/// to the pool, so a store dropped without `close` would otherwise leave both open for as long
/// as the runtime runs.
#[derive(Debug)]
struct Listener(Mutex<Option<JoinHandle<()>>>);

impl Listener {
    fn take(&self) -> Option<JoinHandle<()>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.take() {
            task.abort();
        }
    }
}

/// `url` with its password, if any, replaced by `***`: what messages and logs may show.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (auth, host),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`), brings
    /// its schema up to date, and starts listening for other servers' changes. Creates no
    /// database: a missing one is an error, as is one whose schema is newer than this build's.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let shown = mask_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("database URL {shown}: {e}")))?
            // So that an operator (or a test) can tell each server's connections apart.
            .application_name(&format!("gradlab/{}", std::process::id()));
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Unavailable(m) => StoreError::Unavailable(format!("{shown}: {m}")),
                StoreError::Database(m) => StoreError::Invalid(format!("{shown}: {m}")),
                other => other,
            })?;
        let migrator = migrations::postgres();
        // The table does not exist before the first migration.
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap_or(None);
        check_schema(applied, &migrator)?;
        // Several servers starting together: sqlx holds an advisory lock while it migrates.
        migrator.run(&pool).await?;
        let (events, _) = broadcast::channel(EVENTS_CAPACITY);
        let nonce = std::collections::hash_map::RandomState::new();
        let origin = format!("{:016x}", std::hash::BuildHasher::hash_one(&nonce, std::process::id()));
        let listener = tokio::spawn(listen::run(pool.clone(), events.clone(), origin.clone()));
        Ok(PgStore { pool, events, origin, listener: Arc::new(Listener(Mutex::new(Some(listener)))) })
    }

    /// Stops the listener, then closes the pool. The listener is stopped here rather than left
    /// to notice the pool's close event: that event is registered after a check of the pool's
    /// state (sqlx's `close_event`), so a close landing between the two is never delivered and
    /// the pool would wait forever for the listener's connection.
    pub async fn close(&self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
            // Cancelled: dropping it hands its connection back.
            let _ = listener.await;
        }
        self.pool.close().await;
    }

    /// The pool, for tests that plant data or cut connections.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
