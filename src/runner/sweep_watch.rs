//! Watching a sweep: the sweep as it is, every job's current state (replay), then each job's
//! state changes live, and the sweep once more when its last job has ended.
//!
//! Job state only moves forward (queued -> running -> terminal), so a watcher keeps each job's
//! last sent state and forwards a change only when it moves that state forward: a change seen
//! both in the replay and live is sent once. A watcher that lags behind the broadcast, or hears
//! nothing for [`RESYNC`], re-reads the sweep's jobs from the store and sends what moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::live::{Change, Registry};
use super::{JobId, JobRecord, JobState, RunnerError, StateCounts, Store, SweepId, SweepRecord};

/// What a sweep watcher receives.
#[derive(Clone, Debug)]
pub enum SweepEvent {
    /// The sweep as it is: first when watching starts, and last, once every job has ended.
    Sweep(Arc<SweepRecord>),
    /// A job of the sweep in its current state, and the sweep's counts with it.
    Job { job: Arc<JobRecord>, counts: StateCounts },
}

/// Re-read the store this often: a safety net for changes missed (a lagging subscription, a
/// notification from another server lost while its connection was down).
const RESYNC: Duration = Duration::from_secs(5);

fn rank(state: JobState) -> u8 {
    match state {
        JobState::Queued => 0,
        JobState::Running => 1,
        _ => 2,
    }
}

struct Cursor {
    states: HashMap<JobId, JobState>,
    tx: mpsc::Sender<Result<SweepEvent, RunnerError>>,
}

impl Cursor {
    fn counts(&self) -> StateCounts {
        StateCounts::of(self.states.values())
    }

    fn done(&self) -> bool {
        self.states.values().all(|s| s.is_terminal())
    }

    /// Records the job's state when it moves forward; true when it did.
    fn advance(&mut self, job: &JobRecord) -> bool {
        match self.states.get(&job.id) {
            Some(&old) if rank(job.state) <= rank(old) => false,
            _ => {
                self.states.insert(job.id, job.state);
                true
            }
        }
    }

    async fn send(&self, ev: SweepEvent) -> bool {
        self.tx.send(Ok(ev)).await.is_ok()
    }

    /// Sends every stored job whose state moved forward; false once the client is gone.
    async fn resync(&mut self, store: &dyn Store, id: SweepId) -> Result<bool, RunnerError> {
        let moved: Vec<JobRecord> = store.sweep_jobs(id).await?.into_iter().filter(|j| self.advance(j)).collect();
        for job in moved {
            if !self.send(SweepEvent::Job { job: Arc::new(job), counts: self.counts() }).await {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

pub(super) async fn run(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    id: SweepId,
    tx: mpsc::Sender<Result<SweepEvent, RunnerError>>,
) {
    if let Err(e) = stream(&*store, &registry, id, tx.clone()).await {
        let _ = tx.send(Err(e)).await;
    }
}

async fn stream(
    store: &dyn Store,
    registry: &Registry,
    id: SweepId,
    tx: mpsc::Sender<Result<SweepEvent, RunnerError>>,
) -> Result<(), RunnerError> {
    // Subscribe before reading: a change committed in between is then seen twice, never missed.
    let mut changes = registry.subscribe_changes();
    let sweep = store.get_sweep(id).await?.ok_or(RunnerError::SweepNotFound(id))?;
    let jobs = store.sweep_jobs(id).await?;
    let mut cur = Cursor { states: jobs.iter().map(|j| (j.id, j.state)).collect(), tx };
    if !cur.send(SweepEvent::Sweep(Arc::new(sweep))).await {
        return Ok(());
    }
    let counts = cur.counts();
    for job in jobs {
        if !cur.send(SweepEvent::Job { job: Arc::new(job), counts }).await {
            return Ok(());
        }
    }
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
    while !cur.done() {
        let change = tokio::select! {
            ch = changes.recv() => Ok(ch),
            _ = resync.tick() => Err(()),
        };
        match change {
            Ok(Ok(Change::Progress(_) | Change::Deleted(_))) => {}
            Ok(Ok(Change::State(job))) => {
                if job.sweep_id == Some(id.0)
                    && cur.states.contains_key(&job.id)
                    && cur.advance(&job)
                    && !cur.send(SweepEvent::Job { job, counts: cur.counts() }).await
                {
                    return Ok(());
                }
            }
            Ok(Err(RecvError::Lagged(_))) | Err(_) => {
                if !cur.resync(store, id).await? {
                    return Ok(());
                }
            }
            Ok(Err(RecvError::Closed)) => return Ok(()),
        }
    }
    let sweep = store.get_sweep(id).await?.ok_or(RunnerError::SweepNotFound(id))?;
    cur.send(SweepEvent::Sweep(Arc::new(sweep))).await;
    Ok(())
}
