//! Forks: a new job that starts from another's checkpoint with its training settings changed
//! (never its network, its data or their order). Its history reads as one series from step 0:
//! the parent's part is shared, not copied (`runner::lineage`).

use std::sync::Arc;

use tracing::info;

use super::lineage::{Lineage, MAX_FORK_DEPTH};
use super::live::LiveEvent;
use super::model::{JobId, JobRecord, StoreError};
use super::{Runner, RunnerError};
use crate::engine::spec::{FieldError, JobSpec};

/// What a fork may change, for messages.
pub const CHANGEABLE: &str = "name, labels, lr, optimizer, schedule, weight_decay, clip_norm, steps, eval_every, \
     record_every, histogram_every, stop_on_nonfinite, thresholds and the checkpoint settings";

/// The first spec field a fork may not change that `child` changes.
fn fixed_field_changed(parent: &JobSpec, child: &JobSpec) -> Option<&'static str> {
    let fixed = [
        ("activation", parent.activation == child.activation),
        ("output_activation", parent.output_activation == child.output_activation),
        ("hidden", parent.hidden == child.hidden),
        ("init", parent.init == child.init),
        ("loss", parent.loss == child.loss),
        ("batch", parent.batch == child.batch),
        ("dataset", parent.dataset == child.dataset),
        ("test_fraction", parent.test_fraction == child.test_fraction),
        ("standardize", parent.standardize == child.standardize),
        ("seed", parent.seed == child.seed),
    ];
    fixed.into_iter().find(|(_, same)| !same).map(|(field, _)| field)
}

impl Runner {
    /// Queues a fork of job `id` from its newest checkpoint at or before `at_step`, its spec
    /// the parent's as `change` makes it. Refused, with nothing stored: an unknown job
    /// (NotFound), no such checkpoint (FailedPrecondition naming `at_step`), a change of the
    /// network or data, or steps not past the fork (Invalid naming the field).
    pub async fn fork(
        &self,
        id: JobId,
        at_step: u64,
        change: impl FnOnce(&JobSpec) -> Result<JobSpec, FieldError>,
    ) -> Result<JobRecord, RunnerError> {
        self.refuse_when_stopping()?;
        let (parent, at) = self.find_checkpoint(id, Some(at_step), "at_step").await?;
        let spec = change(&parent.spec)?;
        if let Some(field) = fixed_field_changed(&parent.spec, &spec) {
            return Err(RunnerError::Invalid(FieldError::new(
                field,
                format!(
                    "a fork keeps its parent's {field} (the network, its data and their order); it can change {CHANGEABLE}"
                ),
            )));
        }
        if spec.steps <= at.step {
            return Err(RunnerError::Invalid(FieldError::new(
                "steps",
                format!("{} is not past the fork's step {} (job {id}'s checkpoint there)", spec.steps, at.step),
            )));
        }
        spec.validate()?;
        self.limits().check_spec(&spec)?;
        let (_, lineage) = Lineage::read(&**self.store(), id).await?;
        if lineage.depth() >= MAX_FORK_DEPTH {
            return Err(RunnerError::FailedPrecondition(format!(
                "job {id} is a fork {} deep; forks go at most {MAX_FORK_DEPTH} deep",
                lineage.depth() - 1
            )));
        }
        let record = match self.store().create_fork(&spec, id, at.step, self.max_unfinished()).await {
            Err(StoreError::Full(n, _)) => return Err(self.queue_full(n, 1)),
            Err(StoreError::Invalid(m)) => return Err(RunnerError::FailedPrecondition(m)),
            res => res?,
        };
        info!(job = %record.id, parent = %id, step = at.step, "fork queued");
        self.inner.registry.publish(record.id, LiveEvent::State(Arc::new(record.clone())));
        self.inner.wake.notify_one();
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_settings_change_and_the_network_and_data_do_not() {
        let parent = JobSpec::default();
        let trained_otherwise = JobSpec {
            lr: 0.5,
            optimizer: "adam".parse().unwrap(),
            steps: 9_000,
            clip_norm: Some(1.0),
            name: "hot".into(),
            ..parent.clone()
        };
        assert_eq!(fixed_field_changed(&parent, &trained_otherwise), None);
        assert_eq!(fixed_field_changed(&parent, &JobSpec { hidden: vec![8], ..parent.clone() }), Some("hidden"));
        assert_eq!(fixed_field_changed(&parent, &JobSpec { seed: 9, ..parent.clone() }), Some("seed"));
        assert_eq!(fixed_field_changed(&parent, &JobSpec { batch: 7, ..parent.clone() }), Some("batch"));
    }
}
