//! Replay-then-live progress streams.
//!
//! The seam: a watcher subscribes to the live broadcast *before* reading the store. Every live
//! event is published only after the writer committed it, so an event is either in the store
//! read or arrives on the subscription (or both: duplicates are dropped by step). A watcher that
//! falls behind the broadcast (lagged) re-reads the store from where it is, so slow readers
//! never stall training and never see a gap.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::RunnerError;
use super::lineage::Lineage;
use super::live::{Change, LiveEvent, Registry};
use super::model::{JobId, Store};

/// Steps read from the store per query while replaying.
pub(super) const REPLAY_CHUNK: usize = 512;
/// How long a watcher gathers live events before sending them on together.
const COALESCE: Duration = Duration::from_millis(50);
/// How often a watcher of a job that is not live in this process looks at the store again
/// when nothing has told it of a change (a safety net under the store's notifications).
const POLL: Duration = Duration::from_secs(1);

struct Cursor {
    /// Next step to send.
    next_step: u64,
    /// Next eval (by step count) to send.
    next_eval: u64,
    tx: mpsc::Sender<Result<LiveEvent, RunnerError>>,
}

impl Cursor {
    async fn send(&self, ev: LiveEvent) -> bool {
        self.tx.send(Ok(ev)).await.is_ok()
    }

    /// Sends stored steps and evals from the cursor on, in order. False if the receiver is gone.
    async fn replay(&mut self, store: &dyn Store, id: JobId) -> Result<bool, RunnerError> {
        let (_, lineage) = Lineage::read(store, id).await?;
        let mut evals = lineage.read_evals(store, self.next_eval).await?.into_iter().peekable();
        loop {
            let steps = store.read_steps(id, self.next_step, REPLAY_CHUNK).await?;
            let n = steps.len();
            for s in steps {
                // An eval after k steps comes after step k-1 and before step k.
                while let Some(e) = evals.next_if(|e| e.step <= s.step) {
                    self.next_eval = e.step + 1;
                    if !self.send(LiveEvent::Eval(e)).await {
                        return Ok(false);
                    }
                }
                self.next_step = s.step + 1;
                if !self.send(LiveEvent::Step(Arc::new(s))).await {
                    return Ok(false);
                }
            }
            if n < REPLAY_CHUNK {
                break;
            }
        }
        for e in evals {
            self.next_eval = e.step + 1;
            if !self.send(LiveEvent::Eval(e)).await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forwards a live event unless it was already sent. A step beyond the next one to send
    /// means steps were published before this watcher subscribed: they are stored (a step is
    /// published only once committed), so they are read from the store first. False if the
    /// receiver is gone.
    async fn live(&mut self, store: &dyn Store, id: JobId, ev: LiveEvent) -> Result<bool, RunnerError> {
        if let LiveEvent::Step(s) = &ev
            && s.step > self.next_step
            && !self.replay(store, id).await?
        {
            return Ok(false);
        }
        Ok(match &ev {
            LiveEvent::Step(s) if s.step < self.next_step => true,
            LiveEvent::Eval(e) if e.step < self.next_eval => true,
            LiveEvent::Step(s) => {
                self.next_step = s.step + 1;
                self.send(ev).await
            }
            LiveEvent::Eval(e) => {
                self.next_eval = e.step + 1;
                self.send(ev).await
            }
            LiveEvent::State(_) => self.send(ev).await,
        })
    }
}

pub async fn run(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    id: JobId,
    from_step: u64,
    tx: mpsc::Sender<Result<LiveEvent, RunnerError>>,
) {
    if let Err(e) = stream(&*store, &registry, id, from_step, tx.clone()).await {
        let _ = tx.send(Err(e)).await;
    }
}

async fn stream(
    store: &dyn Store,
    registry: &Registry,
    id: JobId,
    from_step: u64,
    tx: mpsc::Sender<Result<LiveEvent, RunnerError>>,
) -> Result<(), RunnerError> {
    // Both subscriptions before the first read: anything committed after it is announced.
    let mut changes = registry.subscribe_changes();
    let mut sub = registry.get(id).map(|live| live.events.subscribe());
    let record = store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
    let mut cur = Cursor { next_step: from_step, next_eval: from_step, tx };
    if !cur.send(LiveEvent::State(Arc::new(record))).await || !cur.replay(store, id).await? {
        return Ok(());
    }
    loop {
        let Some(rx) = sub.as_mut() else {
            // Not live here: finished, or never started in this process. Poll the store.
            let record = store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
            if !cur.replay(store, id).await? {
                return Ok(());
            }
            if record.state.is_terminal() {
                cur.send(LiveEvent::State(Arc::new(record))).await;
                return Ok(());
            }
            // Until this job changes (another server stored more of it, or its state moved:
            // claimed here, say), or the poll comes round.
            let change = tokio::time::timeout(POLL, async {
                loop {
                    match changes.recv().await {
                        Ok(ch) if ch.job() == id => return Some(ch),
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                    }
                }
            })
            .await;
            // A state it moved to on the way (running); its end comes after the replay above.
            if let Ok(Some(Change::State(rec))) = change
                && !rec.state.is_terminal()
                && !cur.send(LiveEvent::State(rec)).await
            {
                return Ok(());
            }
            // Subscribed now, after the replay: what was published in between is read back
            // from the store (replay below, and `live` on a step beyond the cursor).
            sub = registry.get(id).map(|live| live.events.subscribe());
            if sub.is_some() && !cur.replay(store, id).await? {
                return Ok(());
            }
            continue;
        };
        // Take what has arrived within a short window and send it as one burst: tonic writes
        // ready messages together, so a fast job costs each watcher one wake-up and one socket
        // write per window instead of per step (measured: ~8 us of server CPU per message).
        let mut burst = Vec::new();
        let mut end = None;
        match rx.recv().await {
            Ok(ev) => burst.push(ev),
            Err(e) => end = Some(e),
        }
        let window = tokio::time::Instant::now() + COALESCE;
        while end.is_none() && !matches!(burst.last(), Some(LiveEvent::State(r)) if r.state.is_terminal()) {
            match tokio::time::timeout_at(window, rx.recv()).await {
                Ok(Ok(ev)) => burst.push(ev),
                Ok(Err(e)) => end = Some(e),
                Err(_) => break,
            }
        }
        for ev in burst {
            match ev {
                LiveEvent::State(rec) if rec.state.is_terminal() => {
                    // Everything before the final state is stored: catch up, then end.
                    if cur.replay(store, id).await? {
                        cur.send(LiveEvent::State(rec)).await;
                    }
                    return Ok(());
                }
                ev => {
                    if !cur.live(store, id, ev).await? {
                        return Ok(());
                    }
                }
            }
        }
        match end {
            Some(RecvError::Lagged(_)) if !cur.replay(store, id).await? => return Ok(()),
            Some(RecvError::Closed) => sub = None,
            _ => {}
        }
    }
}
