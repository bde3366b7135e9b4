//! A job's body, run on a rayon worker: build the trainer, train, stream records to the
//! writer, and always end with exactly one `Finish` message, even after a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{info, info_span, warn};

use super::live::LiveJob;
use super::model::{JobRecord, JobState, JobSummary, MeanFieldSummary};
use super::writer::WriterMsg;
use crate::engine::meanfield::{FixedPoint, Prediction, Regime};
use crate::engine::spec::JobSpec;
use crate::engine::theory;
use crate::engine::train::{Event, Trainer};

/// `admit` checks the spec again just before its data is read (the data policy may have changed
/// since it was queued, or a file under it); a refusal fails the job with its message.
pub fn execute<E: std::fmt::Display>(
    job: Arc<LiveJob>,
    record: JobRecord,
    tx: mpsc::Sender<WriterMsg>,
    admit: impl FnOnce(&JobSpec) -> Result<(), E>,
) {
    let span = info_span!("job", job = %record.id);
    let _enter = span.enter();
    info!(activation = %record.spec.activation, depth = record.spec.depth(), steps = record.spec.steps, "job started");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        admit(&record.spec).map_err(|e| e.to_string())?;
        train(&job, &record, &tx)
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

fn train(job: &LiveJob, record: &JobRecord, tx: &mpsc::Sender<WriterMsg>) -> Result<(JobState, JobSummary), String> {
    let spec = &record.spec;
    let mut trainer = Trainer::<f32>::new(spec).map_err(|e| e.to_string())?;
    let dim = trainer.net().dims()[0];
    let mean_field = theory::for_spec(spec, dim, trainer.input_second_moment()).ok().map(|p| summarize(&p, spec));
    let mut writer_gone = false;
    let steps = metrics::counter!(super::metrics::TRAINING_STEPS);
    let run = trainer.run(|event| {
        if let Event::Step(_) = event {
            steps.increment(1);
        }
        let msg = match event {
            Event::Step(r) if r.layers.is_empty() => None,
            Event::Step(r) => Some(WriterMsg::Step(record.id, r.clone())),
            Event::Eval(e) => Some(WriterMsg::Eval(record.id, *e)),
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
    let state = if job.cancelled() { JobState::Cancelled } else { JobState::Succeeded };
    Ok((state, JobSummary { run, mean_field }))
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
