//! Jobs alive in this process: their phase, cancellation flag and the broadcast of their
//! progress to watchers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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

/// Where a job is in this process's life cycle; guards the race between cancel and start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Running,
    Done,
}

pub struct LiveJob {
    pub id: JobId,
    pub phase: Mutex<Phase>,
    pub cancel: AtomicBool,
    /// Set when the job must stop because of a server-side failure (e.g. the store).
    pub failure: Mutex<Option<String>>,
    pub events: broadcast::Sender<LiveEvent>,
}

/// Events a lagging watcher may fall behind by before it re-reads the store.
const BROADCAST_CAPACITY: usize = 1024;

impl LiveJob {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn phase(&self) -> Phase {
        *self.phase.lock().expect("phase lock")
    }

    pub fn set_done(&self) {
        *self.phase.lock().expect("phase lock") = Phase::Done;
    }

    /// Stops the job as failed, with the first reason given.
    pub fn fail(&self, why: String) {
        self.failure.lock().expect("failure lock").get_or_insert(why);
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }
}

pub struct Registry {
    jobs: Mutex<HashMap<JobId, Arc<LiveJob>>>,
    /// Every job's state changes, for sweep watchers.
    states: broadcast::Sender<Arc<JobRecord>>,
}

/// State changes a lagging sweep watcher may fall behind by before it re-reads the store.
const STATES_CAPACITY: usize = 4096;

impl Default for Registry {
    fn default() -> Self {
        Registry { jobs: Mutex::default(), states: broadcast::channel(STATES_CAPACITY).0 }
    }
}

impl Registry {
    /// State changes of every job from now on.
    pub fn subscribe_states(&self) -> broadcast::Receiver<Arc<JobRecord>> {
        self.states.subscribe()
    }

    pub fn insert(&self, id: JobId) -> Arc<LiveJob> {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let job = Arc::new(LiveJob {
            id,
            phase: Mutex::new(Phase::Queued),
            cancel: AtomicBool::new(false),
            failure: Mutex::new(None),
            events,
        });
        self.jobs.lock().expect("registry lock").insert(id, job.clone());
        job
    }

    pub fn get(&self, id: JobId) -> Option<Arc<LiveJob>> {
        self.jobs.lock().expect("registry lock").get(&id).cloned()
    }

    pub fn remove(&self, id: JobId) {
        self.jobs.lock().expect("registry lock").remove(&id);
    }

    pub fn publish(&self, id: JobId, event: LiveEvent) {
        if let LiveEvent::State(rec) = &event {
            let _ = self.states.send(rec.clone());
        }
        if let Some(job) = self.get(id) {
            // No receivers is fine: nobody is watching.
            let _ = job.events.send(event);
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.lock().expect("registry lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
