//! Notifications between servers: what a transaction announces (`notify`, delivered at its
//! commit) and what each server's listener hands on as [`StoreEvent`]s.
//!
//! A payload is `KIND JOB STEP ORIGIN MS`: the kind (`q` queued, `p` progress, `s` state, `c`
//! cancel), the job and step (0 where they mean nothing), the sending store's name, and the
//! sender's clock in Unix milliseconds (for the notification-lag metric). Far under the 8000
//! bytes PostgreSQL allows.

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;
use tracing::warn;

use super::CHANNEL;
use crate::runner::metrics::NOTIFY_LAG;
use crate::runner::{JobId, StoreError, StoreEvent};
use crate::store::shared::now_ms;

/// What a transaction announces.
#[derive(Clone, Copy, Debug)]
pub enum Note {
    Queued,
    Progress(JobId, u64),
    State(JobId),
    Cancel(JobId),
}

/// Announces `note` when the caller's transaction commits (nothing if it rolls back).
pub async fn notify(conn: &mut PgConnection, origin: &str, note: Note) -> Result<(), StoreError> {
    let (kind, job, step) = match note {
        Note::Queued => ('q', 0, 0),
        Note::Progress(job, step) => ('p', job.0, step),
        Note::State(job) => ('s', job.0, 0),
        Note::Cancel(job) => ('c', job.0, 0),
    };
    let payload = format!("{kind} {job} {step} {origin} {}", now_ms());
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(conn).await?;
    Ok(())
}

/// A payload as an event (None: one of this store's own, or not gradlab's).
fn parse(payload: &str, own: &str) -> Option<StoreEvent> {
    let mut parts = payload.split(' ');
    let (kind, job, step, origin, ms) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if origin == own {
        return None;
    }
    if let Ok(ms) = ms.parse::<i64>() {
        metrics::histogram!(NOTIFY_LAG).record((now_ms() - ms).max(0) as f64 / 1e3);
    }
    let job = JobId(job.parse().ok()?);
    Some(match kind {
        "q" => StoreEvent::Queued,
        "p" => StoreEvent::Progress { job, step: step.parse().ok()? },
        "s" => StoreEvent::State { job },
        "c" => StoreEvent::Cancel { job },
        _ => return None,
    })
}

/// Listens until its store's `close` aborts it (or the pool closes), reconnecting after a lost
/// connection; notifications sent while it was away are lost, so every reconnection is
/// announced as `Resync`.
pub async fn run(pool: PgPool, events: broadcast::Sender<StoreEvent>, origin: String) {
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot listen for other servers' changes; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            warn!(error = %e, "cannot listen for other servers' changes; trying again");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let _ = events.send(StoreEvent::Resync);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(ev) = parse(n.payload(), &origin) {
                        let _ = events.send(ev);
                    }
                }
                // The connection was lost; the next call reconnects (and listens again).
                Ok(None) => {
                    let _ = events.send(StoreEvent::Resync);
                }
                Err(e) => {
                    warn!(error = %e, "lost the notification connection; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_own_ones_are_skipped() {
        assert_eq!(parse("p 7 120 other 1", "me"), Some(StoreEvent::Progress { job: JobId(7), step: 120 }));
        assert_eq!(parse("q 0 0 other 1", "me"), Some(StoreEvent::Queued));
        assert_eq!(parse("s 3 0 other 1", "me"), Some(StoreEvent::State { job: JobId(3) }));
        assert_eq!(parse("c 3 0 other 1", "me"), Some(StoreEvent::Cancel { job: JobId(3) }));
        assert_eq!(parse("s 3 0 me 1", "me"), None);
        assert_eq!(parse("x 3 0 other 1", "me"), None);
        assert_eq!(parse("garbage", "me"), None);
    }
}
