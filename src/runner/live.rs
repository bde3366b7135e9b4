//! Jobs this process trains (their claim, cancellation and failure flags, and the broadcast of
//! their progress to watchers), and the changes of every job that watchers follow.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::broadcast;

use super::model::{JobId, JobRecord};
use crate::engine::train::{EvalRecord, StepRecord};

/// What watchers receive live. Published only after the writer has committed it, so anything
/// a watcher misses live is in the store.
#[derive(Clone, Debug)]
pub enum LiveEvent {
    Step(Arc<StepRecord>),
    Eval(EvalRecord),
    /// The job after a state change.
    State(Arc<JobRecord>),
}

/// A job claimed by this process and training on its pool.
pub struct LiveJob {
    pub id: JobId,
    /// The claim it trains under: its writes carry it.
    pub attempt: u64,
    pub cancel: AtomicBool,
    /// Set when another worker holds the job now: it stops and writes nothing more.
    lost: AtomicBool,
    /// Set when the job must stop because of a server-side failure (e.g. the store).
    pub failure: Mutex<Option<String>>,
    pub events: broadcast::Sender<LiveEvent>,
    /// A checkpoint of the job is on its way to the store: the next waits for it, so a writer
    /// slower than training holds one state per job, never a queue of them.
    checkpoint_pending: Mutex<bool>,
    checkpoint_written: Condvar,
}

/// Events a lagging watcher may fall behind by before it re-reads the store.
const BROADCAST_CAPACITY: usize = 1024;

impl LiveJob {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn request_cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Blocks (a training thread) until the job's last checkpoint is stored, then marks the
    /// next one as on its way. False, without marking, when `give_up` says to stop waiting
    /// (it is asked every 100 ms).
    pub fn begin_checkpoint(&self, give_up: impl Fn() -> bool) -> bool {
        let mut pending = self.checkpoint_pending.lock().expect("checkpoint lock");
        while *pending {
            if give_up() {
                return false;
            }
            let wait = std::time::Duration::from_millis(100);
            pending = self.checkpoint_written.wait_timeout(pending, wait).expect("checkpoint lock").0;
        }
        *pending = true;
        true
    }

    /// The writer is done with the job's checkpoint (stored or not).
    pub fn end_checkpoint(&self) {
        *self.checkpoint_pending.lock().expect("checkpoint lock") = false;
        self.checkpoint_written.notify_all();
    }

    /// Stops the job as failed, with the first reason given.
    pub fn fail(&self, why: String) {
        self.failure.lock().expect("failure lock").get_or_insert(why);
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    /// Stops the job without recording anything: its claim is another worker's now.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::Relaxed);
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

/// A change of any job, for watchers of jobs this process does not train: its state changed,
/// or its history grew (told by another server sharing the store).
#[derive(Clone, Debug)]
pub enum Change {
    State(Arc<JobRecord>),
    Progress(JobId),
    /// The job was deleted.
    Deleted(JobId),
}

impl Change {
    pub fn job(&self) -> JobId {
        match self {
            Change::State(r) => r.id,
            Change::Progress(id) | Change::Deleted(id) => *id,
        }
    }
}

pub struct Registry {
    jobs: Mutex<HashMap<JobId, Arc<LiveJob>>>,
    /// Every job's changes, for sweep watchers and watchers of jobs trained elsewhere.
    changes: broadcast::Sender<Change>,
}

/// Changes a lagging watcher may fall behind by before it re-reads the store.
const CHANGES_CAPACITY: usize = 4096;

impl Default for Registry {
    fn default() -> Self {
        Registry { jobs: Mutex::default(), changes: broadcast::channel(CHANGES_CAPACITY).0 }
    }
}

impl Registry {
    /// Changes of every job from now on.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Whether anything follows the changes of every job now.
    pub fn has_change_listeners(&self) -> bool {
        self.changes.receiver_count() > 0
    }

    pub fn insert(&self, id: JobId, attempt: u64) -> Arc<LiveJob> {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let job = Arc::new(LiveJob {
            id,
            attempt,
            cancel: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            failure: Mutex::new(None),
            events,
            checkpoint_pending: Mutex::new(false),
            checkpoint_written: Condvar::new(),
        });
        self.jobs.lock().expect("registry lock").insert(id, job.clone());
        job
    }

    pub fn get(&self, id: JobId) -> Option<Arc<LiveJob>> {
        self.jobs.lock().expect("registry lock").get(&id).cloned()
    }

    /// The claims this process holds: (job, attempt).
    pub fn claims(&self) -> Vec<(JobId, u64)> {
        self.jobs.lock().expect("registry lock").values().map(|j| (j.id, j.attempt)).collect()
    }

    pub fn remove(&self, id: JobId) {
        self.jobs.lock().expect("registry lock").remove(&id);
    }

    pub fn publish(&self, id: JobId, event: LiveEvent) {
        if let LiveEvent::State(rec) = &event {
            let _ = self.changes.send(Change::State(rec.clone()));
        }
        if let Some(job) = self.get(id) {
            // No receivers is fine: nobody is watching.
            let _ = job.events.send(event);
        }
    }

    /// Job `id` is gone (deleted here or by another server).
    pub fn deleted(&self, id: JobId) {
        let _ = self.changes.send(Change::Deleted(id));
    }

    /// Another server stored more of job `id`'s history.
    pub fn poke(&self, id: JobId) {
        let _ = self.changes.send(Change::Progress(id));
    }

    pub fn len(&self) -> usize {
        self.jobs.lock().expect("registry lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
