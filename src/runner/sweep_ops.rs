//! The runner's side of sweeps: submission (expand, check the data, store every job in one
//! transaction, queue), cancellation, and the report over the stored jobs.

use std::collections::HashMap;

use tokio::task::JoinSet;
use tracing::info;

use super::sweep::{self, SweepReport, SweepSpec};
use super::{JobId, Runner, RunnerError, StoreError, SweepId, SweepRecord, network_dims, now_ms};
use crate::engine::spec::{FieldError, JobSpec};

/// Names the job in a refusal: "batch: job \"s activation=tanh depth=8\": ...".
fn in_job(job: &JobSpec, e: RunnerError) -> RunnerError {
    match e {
        RunnerError::Invalid(f) => {
            RunnerError::Invalid(FieldError::new(f.field, format!("job {:?}: {}", job.name, f.problem)))
        }
        other => other,
    }
}

/// What a dataset check depends on: jobs that agree on these need one check between them.
fn data_key(job: &JobSpec) -> (String, u64, usize) {
    (job.dataset.clone(), job.test_fraction.to_bits(), job.batch)
}

impl Runner {
    /// Expands the sweep (its size checked against the limit first), checks each distinct
    /// dataset setup once, then stores the sweep and all its jobs in one transaction and
    /// queues them. Nothing is stored when any check fails.
    pub async fn submit_sweep(&self, spec: SweepSpec) -> Result<SweepRecord, RunnerError> {
        self.refuse_when_stopping()?;
        let jobs = spec.expand(self.inner.limits.max_sweep_jobs)?;
        // What the request asks for first (INVALID_ARGUMENT whatever the load), then room for it.
        for job in &jobs {
            self.inner.limits.check_spec(job).map_err(|e| in_job(job, e.into()))?;
        }
        // Each distinct dataset setup is read once; every job's network is then held to
        // --max-params on its data's shape.
        let mut shapes = HashMap::new();
        for job in &jobs {
            let shape = match shapes.get(&data_key(job)) {
                Some(&shape) => shape,
                None => {
                    let shape = self.check_data(job).await.map_err(|e| in_job(job, e))?;
                    shapes.insert(data_key(job), shape);
                    shape
                }
            };
            self.inner.limits.check_params(&network_dims(job, shape)).map_err(|e| in_job(job, e.into()))?;
        }
        let (sweep, records) = match self.inner.store.create_sweep(&spec, &jobs, self.max_unfinished()).await {
            Err(StoreError::Full(n, _)) => return Err(self.queue_full(n, jobs.len())),
            res => res?,
        };
        info!(sweep = %sweep.id, jobs = records.len(), name = %spec.name, "sweep queued");
        self.inner.wake.notify_one();
        Ok(sweep)
    }

    pub async fn get_sweep(&self, id: SweepId) -> Result<SweepRecord, RunnerError> {
        self.inner.store.get_sweep(id).await?.ok_or(RunnerError::SweepNotFound(id))
    }

    /// Cancels every unfinished job of the sweep (queued ones never start, running ones stop
    /// within a step) and returns the sweep as it is then.
    pub async fn cancel_sweep(&self, id: SweepId) -> Result<SweepRecord, RunnerError> {
        let sweep = self.get_sweep(id).await?;
        if sweep.state().is_terminal() {
            return Err(RunnerError::FailedPrecondition(format!("sweep {id} already {}", sweep.state())));
        }
        self.inner.store.mark_sweep_cancelled(id, now_ms()).await?;
        let unfinished: Vec<JobId> = self
            .inner
            .store
            .sweep_jobs(id)
            .await?
            .into_iter()
            .filter(|j| !j.state.is_terminal())
            .map(|j| j.id)
            .collect();
        // All at once: the running ones stop together instead of one wait after another.
        let mut cancels = JoinSet::new();
        for job in unfinished {
            let runner = self.clone();
            cancels.spawn(async move { runner.cancel(job).await });
        }
        while let Some(res) = cancels.join_next().await {
            match res {
                // Ended on its own meanwhile.
                Ok(Ok(_)) | Ok(Err(RunnerError::FailedPrecondition(_))) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(RunnerError::FailedPrecondition(format!("cancelling a job failed: {e}"))),
            }
        }
        info!(sweep = %id, "sweep cancelled");
        self.get_sweep(id).await
    }

    /// The report over the sweep's jobs as they are now (finished jobs only count; see
    /// [`sweep::report`]). `margin`: the trainable-depth margin, in [0, 1].
    pub async fn sweep_report(&self, id: SweepId, margin: f64) -> Result<(SweepRecord, SweepReport), RunnerError> {
        if !(0.0..=1.0).contains(&margin) {
            return Err(FieldError::new("margin", format!("must be in [0, 1], got {margin}")).into());
        }
        let sweep = self.get_sweep(id).await?;
        let jobs = self.inner.store.sweep_jobs(id).await?;
        let report = sweep::report(&sweep.spec, &jobs, margin);
        Ok((sweep, report))
    }
}
