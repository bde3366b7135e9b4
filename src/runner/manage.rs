//! Run management: deleting jobs and sweeps (cancelling them first when asked), and renaming
//! and relabelling jobs.

use super::{JobId, JobRecord, JobUpdate, LiveEvent, Runner, RunnerError, StoreError, SweepId};
use crate::engine::spec::FieldError;
use std::sync::Arc;

/// Longest label key, label value and job name an update may set.
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 1024;
const MAX_NAME: usize = 1024;

/// Checks an update: label keys are non-empty words without `=`, `,` or spaces (the list
/// filter reads `key=value`), and nothing is too long.
pub fn check_update(u: &JobUpdate) -> Result<(), FieldError> {
    if let Some(n) = &u.name
        && n.chars().count() > MAX_NAME
    {
        return Err(FieldError::new("name", format!("longer than {MAX_NAME} characters")));
    }
    for k in u.set_labels.keys().chain(&u.remove_labels) {
        if k.is_empty() || k.len() > MAX_KEY || k.chars().any(|c| c == '=' || c == ',' || c.is_whitespace()) {
            return Err(FieldError::new(
                "labels",
                format!("label key {k:?}: 1-{MAX_KEY} characters, no '=', ',' or spaces"),
            ));
        }
    }
    if let Some((k, _)) = u.set_labels.iter().find(|(_, v)| v.len() > MAX_VALUE) {
        return Err(FieldError::new("labels", format!("label {k}: value longer than {MAX_VALUE} bytes")));
    }
    if let Some(k) = u.remove_labels.iter().find(|k| u.set_labels.contains_key(*k)) {
        return Err(FieldError::new("labels", format!("label {k} is both set and removed")));
    }
    Ok(())
}

impl Runner {
    /// Deletes finished jobs with all they stored, all or none. With `cancel`, queued and
    /// running ones are cancelled first (wherever they train) and then deleted.
    pub async fn delete_jobs(&self, ids: &[JobId], cancel: bool) -> Result<(), RunnerError> {
        if cancel {
            for &id in ids {
                match self.cancel(id).await {
                    // Finished already (or it finished meanwhile): nothing to stop.
                    Ok(_)
                    | Err(RunnerError::FailedPrecondition(_))
                    | Err(RunnerError::Store(StoreError::Invalid(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.inner.store.delete_jobs(ids).await?;
        Ok(())
    }

    /// Deletes a sweep and its jobs; with `cancel`, its unfinished jobs are cancelled first.
    /// Returns how many jobs went.
    pub async fn delete_sweep(&self, id: SweepId, cancel: bool) -> Result<u64, RunnerError> {
        if cancel && !self.get_sweep(id).await?.state().is_terminal() {
            match self.cancel_sweep(id).await {
                Ok(_) | Err(RunnerError::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.inner.store.delete_sweep(id).await?)
    }

    /// Renames a job or changes its labels; watchers and dashboards see the job as it is now.
    pub async fn update_job(&self, id: JobId, update: &JobUpdate) -> Result<JobRecord, RunnerError> {
        check_update(update)?;
        let record = self.inner.store.update_job(id, update).await?;
        self.inner.registry.publish(id, LiveEvent::State(Arc::new(record.clone())));
        Ok(record)
    }
}
