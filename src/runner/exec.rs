//! A job's body, run on a rayon worker: build the trainer, train, stream records to the
//! writer, and always end with exactly one `Finish` message, even after a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, info_span, warn};

use super::claim_ahead::ClaimSlot;
use super::live::LiveJob;
use super::model::{JobRecord, JobState, JobSummary, MeanFieldSummary};
use super::writer::WriterMsg;
use crate::engine::checkpoint::TrainState;
use crate::engine::meanfield::{FixedPoint, Prediction, Regime};
use crate::engine::spec::JobSpec;
use crate::engine::theory;
use crate::engine::train::{Event, Trainer};

/// `admit` checks the spec again just before its data is read (the data policy may have changed
/// since it was queued, or a file under it); a refusal fails the job with its message.
/// `resume` is the checkpoint a job claimed again goes on from (`JobRecord::resumed_from`), or
/// why it could not be read (which fails the job). `slot` is given back near the job's end
/// (see [`super::claim_ahead`]), at its end at the latest.
pub fn execute<E: std::fmt::Display>(
    job: Arc<LiveJob>,
    record: JobRecord,
    tx: mpsc::Sender<WriterMsg>,
    resume: Option<Result<Vec<u8>, String>>,
    slot: ClaimSlot,
    admit: impl FnOnce(&JobSpec) -> Result<(), E>,
) {
    let span = info_span!("job", job = %record.id);
    let _enter = span.enter();
    info!(activation = %record.spec.activation, depth = record.spec.depth(), steps = record.spec.steps, "job started");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        admit(&record.spec).map_err(|e| e.to_string())?;
        train(&job, &record, &tx, resume, slot)
    }));
    let (state, summary, error) = match outcome {
        Ok(Ok((state, summary))) => (state, Some(Box::new(summary)), job.failure()),
        Ok(Err(e)) => (JobState::Failed, None, Some(e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            warn!(panic = %msg, "job panicked");
            (JobState::Failed, None, Some(format!("internal error (panic): {msg}")))
        }
    };
    // A server-side failure (store) overrides success or cancellation.
    let state = if job.failure().is_some() { JobState::Failed } else { state };
    if job.is_lost() {
        info!("job stopped: another worker holds it now");
    } else {
        info!(state = %state, "job ended");
    }
    // If the writer is gone the server is shutting down; the job stays resumable.
    let _ = tx.blocking_send(WriterMsg::Finish { job: record.id, attempt: job.attempt, state, summary, error });
}

fn train(
    job: &LiveJob,
    record: &JobRecord,
    tx: &mpsc::Sender<WriterMsg>,
    resume: Option<Result<Vec<u8>, String>>,
    mut slot: ClaimSlot,
) -> Result<(JobState, JobSummary), String> {
    let spec = &record.spec;
    let mut trainer = Trainer::<f32>::new(spec).map_err(|e| e.to_string())?;
    if let Some(data) = resume {
        let at = record.resumed_from.unwrap_or_default();
        data.and_then(|d| TrainState::decode(&d).and_then(|state| trainer.restore(state)).map_err(|e| e.to_string()))
            .map_err(|e| format!("cannot resume from the checkpoint at step {at}: {e}"))?;
        info!(step = at, "job resumed from its checkpoint");
    }
    let dim = trainer.net().dims()[0];
    let mean_field = mean_field(spec, dim, trainer.input_second_moment());
    let mut writer_gone = false;
    let steps = metrics::counter!(super::metrics::TRAINING_STEPS);
    let mut due = Due::new(spec, trainer.steps_done());
    let run = trainer.run(|event| {
        if let Event::Step(r) = event {
            steps.increment(1);
            if !slot.released() {
                slot.observe(r.step + 1, spec.steps, Instant::now());
            }
        }
        let msg = match event {
            Event::Step(r) if r.layers.is_empty() => None,
            Event::Step(r) => Some(WriterMsg::Step(record.id, r.clone())),
            Event::Eval(e) => Some(WriterMsg::Eval(record.id, *e)),
            // The state is copied here, on the training thread, and written by the writer; one
            // at a time per job (training waits while the last is still being written).
            Event::Settled(t) => (due.checkpoint(t.steps_done(), t.finished(), Instant::now())
                && job.begin_checkpoint(|| tx.is_closed() || job.is_lost() || job.cancelled()))
            .then(|| WriterMsg::Checkpoint {
                job: record.id,
                attempt: job.attempt,
                step: t.steps_done(),
                data: t.encode_state(),
                keep: spec.checkpoint_keep,
            }),
        };
        if let Some(msg) = msg
            && tx.blocking_send(msg).is_err()
        {
            writer_gone = true;
        }
        !writer_gone && !job.cancelled()
    });
    if writer_gone {
        return Err("server shutting down".into());
    }
    // A job that keeps its checkpoints keeps its trained state too (a cancelled one's as well):
    // what export and fork read.
    if spec.keep_checkpoints
        && due.last_step != trainer.steps_done()
        && job.begin_checkpoint(|| tx.is_closed() || job.is_lost())
    {
        let msg = WriterMsg::Checkpoint {
            job: record.id,
            attempt: job.attempt,
            step: trainer.steps_done(),
            data: trainer.encode_state(),
            keep: spec.checkpoint_keep,
        };
        if tx.blocking_send(msg).is_err() {
            return Err("server shutting down".into());
        }
    }
    let state = if job.cancelled() { JobState::Cancelled } else { JobState::Succeeded };
    Ok((state, JobSummary { run, mean_field }))
}

/// When a job's next checkpoint is due: `checkpoint_every_steps` steps after the last one (or
/// the job's start here), and no sooner than `checkpoint_every_seconds` after it; never at its
/// end (a job ended needs none to go on; one that keeps its checkpoints stores its end after
/// `run`).
struct Due {
    every_steps: u64,
    every: Option<Duration>,
    last_step: u64,
    last_time: Instant,
}

impl Due {
    fn new(spec: &JobSpec, step: u64) -> Self {
        let every =
            (spec.checkpoint_every_seconds > 0.0).then(|| Duration::from_secs_f64(spec.checkpoint_every_seconds));
        Due { every_steps: spec.checkpoint_every_steps, every, last_step: step, last_time: Instant::now() }
    }

    fn checkpoint(&mut self, step: u64, finished: bool, now: Instant) -> bool {
        let by_steps = self.every_steps > 0 && step - self.last_step >= self.every_steps;
        let due = !finished && by_steps && self.every.is_none_or(|d| now.duration_since(self.last_time) >= d);
        if due {
            (self.last_step, self.last_time) = (step, now);
        }
        due
    }
}

/// The prediction for a job's network, remembered by everything it depends on: a sweep's jobs
/// share a few (seed-claims: 144 among 1,296 jobs), and each took 3.5 ms of the job's core
/// (a 1,500-step 32-wide job trains in about 90).
fn mean_field(spec: &JobSpec, input_dim: usize, q_in: f64) -> Option<MeanFieldSummary> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    type Key = (String, String, usize, usize, usize, u64);
    static SEEN: LazyLock<Mutex<HashMap<Key, Option<MeanFieldSummary>>>> = LazyLock::new(Default::default);
    const MOST: usize = 4096;
    let width = spec.hidden.last().copied().unwrap_or(input_dim);
    let key =
        (format!("{:?}", spec.activation), format!("{:?}", spec.init), input_dim, width, spec.depth(), q_in.to_bits());
    if let Some(hit) = SEEN.lock().expect("mean-field cache").get(&key) {
        return hit.clone();
    }
    let summary = theory::for_spec(spec, input_dim, q_in).ok().map(|p| summarize(&p, spec));
    let mut seen = SEEN.lock().expect("mean-field cache");
    if seen.len() >= MOST {
        seen.clear();
    }
    seen.insert(key, summary.clone());
    summary
}

fn summarize(p: &Prediction, spec: &JobSpec) -> MeanFieldSummary {
    let width = spec.hidden.last().copied().unwrap_or(1);
    let (sigma_w, sigma_b) = spec.init.mean_field_sigmas(width, width);
    MeanFieldSummary {
        sigma_w,
        sigma_b,
        q_star: p.fixed_point.q_star(),
        fixed_point: match p.fixed_point {
            FixedPoint::Converged { .. } => "converged",
            FixedPoint::DriftsToZero => "drifts_to_zero",
            FixedPoint::DriftsToInfinity => "drifts_to_infinity",
            FixedPoint::Neutral { .. } => "neutral",
        }
        .into(),
        chi1: p.chi1,
        regime: match p.regime {
            Regime::Ordered => "ordered",
            Regime::Critical => "critical",
            Regime::Chaotic => "chaotic",
        }
        .into(),
        depth_scale: p.depth_scale,
        first_last_ratio: p.weight_first_last_ratio,
        layer_ratios: p.layers.iter().map(|l| l.weight_grad_ratio_to_last).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_come_every_n_steps_but_not_more_often_than_the_limit() {
        let spec =
            |seconds| JobSpec { checkpoint_every_steps: 10, checkpoint_every_seconds: seconds, ..Default::default() };
        let now = Instant::now();
        let mut due = Due::new(&spec(0.0), 0);
        let at: Vec<u64> = (1..=35).filter(|&s| due.checkpoint(s, false, now)).collect();
        assert_eq!(at, [10, 20, 30]);
        assert!(!Due::new(&spec(0.0), 0).checkpoint(10, true, now), "never at the end");
        // A resumed job counts from its step; the time limit holds them back.
        let mut due = Due::new(&spec(3600.0), 500);
        let start = due.last_time;
        assert!((501..=600).all(|s| !due.checkpoint(s, false, start + Duration::from_secs(3599))));
        let later = start + Duration::from_secs(3600);
        assert!(due.checkpoint(600, false, later) && !due.checkpoint(610, false, later + Duration::from_secs(1)));
        let off = JobSpec { checkpoint_every_steps: 0, checkpoint_every_seconds: 0.0, ..Default::default() };
        let mut never = Due::new(&off, 0);
        assert!((1..=100).all(|s| !never.checkpoint(s, false, now)));
    }
}
