//! A job's network as one of its checkpoints left it: exported as a file, or asked for
//! predictions.

use std::sync::Arc;

use ndarray::Array2;
use tokio::sync::oneshot;

use super::export::{WeightsFormat, weights_file};
use super::model::{CheckpointInfo, JobId, JobRecord};
use super::trained_cache::Key;
use super::{Runner, RunnerError};
use crate::engine::checkpoint::TrainState;
use crate::engine::spec::FieldError;
use crate::engine::train::Trainer;

/// An exported network: the file's bytes and the step its weights are from.
pub struct Exported {
    pub step: u64,
    pub bytes: Vec<u8>,
}

/// The newest of `all` (oldest first) at or before `step` (the newest of all when None), or why
/// there is none (naming `field`, the request's name for `step`).
pub fn checkpoint_at(
    job: &JobRecord,
    all: &[CheckpointInfo],
    step: Option<u64>,
    field: &str,
) -> Result<CheckpointInfo, RunnerError> {
    let id = job.id;
    // A fork that kept nothing still has the checkpoint it started from: not its trained state.
    let ended_without = job.state.is_terminal() && !job.spec.keep_checkpoints;
    let newest = all.last().filter(|_| step.is_some() || !ended_without);
    let Some(newest) = newest else {
        let why = if job.state.is_terminal() {
            "it kept none after it ended (submit it with keep_checkpoints, --keep-checkpoints in the CLI, to keep its trained state)"
                .to_string()
        } else {
            format!(
                "it has stored none yet (every {} steps, at most every {} s)",
                job.spec.checkpoint_every_steps, job.spec.checkpoint_every_seconds
            )
        };
        return Err(RunnerError::FailedPrecondition(format!("job {id} has no checkpoint: {why}")));
    };
    let Some(step) = step else { return Ok(*newest) };
    all.iter().rev().find(|c| c.step <= step).copied().ok_or_else(|| {
        let steps: Vec<String> = all.iter().map(|c| c.step.to_string()).collect();
        RunnerError::FailedPrecondition(format!(
            "{field}: job {id} has no checkpoint at or before step {step}; its checkpoints are at steps {}",
            steps.join(", ")
        ))
    })
}

impl Runner {
    /// Job `id` and its newest checkpoint at or before `step` (see [`checkpoint_at`]).
    pub async fn find_checkpoint(
        &self,
        id: JobId,
        step: Option<u64>,
        field: &str,
    ) -> Result<(JobRecord, CheckpointInfo), RunnerError> {
        let store = self.store();
        let job = store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
        let all = store.checkpoints(id).await?;
        let at = checkpoint_at(&job, &all, step, field)?;
        Ok((job, at))
    }

    /// Runs `f` on a trainer of job `id` restored from its checkpoint at or before `step`, on
    /// the I/O pool (building the trainer reads the job's dataset, checked against this
    /// server's data policy as a job's start is). The last few restored are kept for the next
    /// call.
    async fn with_trained<T: Send + 'static>(
        &self,
        id: JobId,
        step: Option<u64>,
        f: impl FnOnce(&JobRecord, &Trainer<f32>) -> Result<T, RunnerError> + Send + 'static,
    ) -> Result<T, RunnerError> {
        let (job, at) = self.find_checkpoint(id, step, "step").await?;
        let key = Key::new(id, &at);
        let trainer = match self.inner.trained.get(key) {
            Some(trainer) => trainer,
            None => {
                let trainer = Arc::new(self.restore(job.clone(), at).await?);
                self.inner.trained.put(key, trainer.clone());
                trainer
            }
        };
        let (tx, rx) = oneshot::channel();
        self.inner.io_pool.spawn(move || {
            let _ = tx.send(f(&job, &trainer));
        });
        rx.await.map_err(|_| RunnerError::ShuttingDown)?
    }

    /// Job `job`'s trainer restored from its checkpoint `at`, built on the I/O pool.
    async fn restore(&self, job: JobRecord, at: CheckpointInfo) -> Result<Trainer<f32>, RunnerError> {
        let id = job.id;
        let data = self.store().read_checkpoint(id, at.step).await?.ok_or_else(|| {
            RunnerError::FailedPrecondition(format!("job {id}'s checkpoint at step {} is gone", at.step))
        })?;
        let (policy, max_bytes) = (self.inner.data.clone(), self.inner.limits.max_dataset_bytes);
        let (tx, rx) = oneshot::channel();
        self.inner.io_pool.spawn(move || {
            let res = (|| {
                policy.check(&job.spec.dataset_spec()?, max_bytes)?;
                let mut trainer =
                    Trainer::<f32>::new(&job.spec).map_err(|e| RunnerError::FailedPrecondition(e.to_string()))?;
                let corrupt = |e: String| {
                    RunnerError::FailedPrecondition(format!("job {id}'s checkpoint at step {}: {e}", at.step))
                };
                let state = TrainState::decode(&data).map_err(|e| corrupt(e.to_string()))?;
                trainer.restore(state).map_err(|e| corrupt(e.to_string()))?;
                Ok(trainer)
            })();
            let _ = tx.send(res);
        });
        rx.await.map_err(|_| RunnerError::ShuttingDown)?
    }

    /// Job `id`'s network at its checkpoint at or before `step`, as a file.
    pub async fn export(&self, id: JobId, step: Option<u64>, format: WeightsFormat) -> Result<Exported, RunnerError> {
        self.with_trained(id, step, move |job, trainer| {
            let step = trainer.steps_done();
            let bytes = weights_file(job.id, &job.spec, step, trainer.net(), trainer.input_map(), format)
                .map_err(|e| RunnerError::FailedPrecondition(format!("exporting job {id}: {e}")))?;
            Ok(Exported { step, bytes })
        })
        .await
    }

    /// The outputs of job `id`'s network at its checkpoint at or before `step` for raw examples
    /// (a row each, standardized as its training data was): (the checkpoint's step, outputs).
    pub async fn predict(
        &self,
        id: JobId,
        step: Option<u64>,
        inputs: Array2<f32>,
    ) -> Result<(u64, Array2<f32>), RunnerError> {
        self.with_trained(id, step, move |_, trainer| {
            let out = trainer.predict(&inputs).map_err(RunnerError::Invalid)?;
            Ok((trainer.steps_done(), out))
        })
        .await
    }
}

/// Rows of `width` values from a flat list, or why they are not.
pub fn rows(values: Vec<f32>, width: usize, field: &str) -> Result<Array2<f32>, FieldError> {
    if width == 0 || values.is_empty() || !values.len().is_multiple_of(width) {
        return Err(FieldError::new(field, format!("{} values do not make whole rows of {width}", values.len())));
    }
    Array2::from_shape_vec((values.len() / width, width), values).map_err(|e| FieldError::new(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spec::JobSpec;
    use crate::runner::{ForkPoint, JobState};

    fn job_record(id: i64, state: JobState) -> JobRecord {
        JobRecord {
            id: JobId(id),
            sweep_id: None,
            spec: JobSpec::default(),
            state,
            steps_done: 0,
            created_ms: 0,
            started_ms: None,
            finished_ms: None,
            summary: None,
            error: None,
            owner: None,
            attempt: 1,
            resumed_from: None,
            fork_of: None,
        }
    }

    fn at(step: u64) -> CheckpointInfo {
        CheckpointInfo { step, bytes: 1, created_ms: 0 }
    }

    #[test]
    fn the_newest_checkpoint_at_or_before_a_step_or_why_there_is_none() {
        let mut job = job_record(3, JobState::Running);
        let all = [at(100), at(200)];
        assert_eq!(checkpoint_at(&job, &all, None, "step").unwrap().step, 200);
        assert_eq!(checkpoint_at(&job, &all, Some(199), "step").unwrap().step, 100);
        let e = checkpoint_at(&job, &all, Some(99), "at_step").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "at_step: job 3 has no checkpoint at or before step 99; its checkpoints are at steps 100, 200"
            ),
            "{e}"
        );
        let e = checkpoint_at(&job, &[], None, "step").unwrap_err().to_string();
        assert!(e.contains("stored none yet"), "{e}");
        // A finished fork that kept nothing has only the checkpoint it started from: its
        // trained state is not there, and the newest is not it.
        job.state = JobState::Succeeded;
        job.fork_of = Some(ForkPoint { parent: JobId(1), step: 100 });
        let e = checkpoint_at(&job, &[at(100)], None, "step").unwrap_err().to_string();
        assert!(e.contains("--keep-checkpoints"), "{e}");
        assert_eq!(checkpoint_at(&job, &[at(100)], Some(150), "at_step").unwrap().step, 100);
        job.spec.keep_checkpoints = true;
        assert_eq!(checkpoint_at(&job, &all, None, "step").unwrap().step, 200);
    }
}
