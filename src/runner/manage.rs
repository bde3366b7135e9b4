//! Run management: deleting jobs and sweeps (cancelling them first when asked), and renaming
//! and relabelling jobs.

use super::{JobId, JobRecord, JobUpdate, LiveEvent, Runner, RunnerError, StoreError, SweepId};
use crate::engine::spec::FieldError;
use std::sync::Arc;

/// Longest label key, label value and job name an update may set.
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 1024;
const MAX_NAME: usize = 1024;
/// The prefix of the labels a sweep gives its jobs.
const SWEEP_LABELS: &str = "sweep.";

/// Checks an update: label keys are non-empty words without `=`, `,` or spaces (the list
/// filter reads `key=value`), and nothing is too long.
pub fn check_update(u: &JobUpdate) -> Result<(), FieldError> {
    if u.name.is_none() && u.set_labels.is_empty() && u.remove_labels.is_empty() {
        return Err(FieldError::new("name", "nothing to change: give a name, labels to set or labels to remove"));
    }
    if let Some(n) = &u.name {
        if n.chars().count() > MAX_NAME {
            return Err(FieldError::new("name", format!("longer than {MAX_NAME} characters")));
        }
        if n.chars().any(char::is_control) {
            return Err(FieldError::new("name", "control characters (newlines, tabs) are not allowed"));
        }
    }
    for k in u.set_labels.keys().chain(&u.remove_labels) {
        // The sweep report matches a sweep's jobs to its cells by these.
        if k.starts_with(SWEEP_LABELS) {
            return Err(FieldError::new(
                "labels",
                format!("label {k}: the sweep's own labels ({SWEEP_LABELS}*) cannot change"),
            ));
        }
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
                    Ok(_) | Err(RunnerError::FailedPrecondition(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.inner.store.delete_jobs(ids).await?;
        for &id in ids {
            self.inner.registry.deleted(id);
        }
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

/// What a garbage collection removed (or would remove, on a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub jobs: Vec<JobId>,
    pub sweeps: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Jobs deleted per transaction: a long collection never holds the writer for long.
const GC_BATCH: usize = 100;

/// The label that spares a job from retention.
pub const KEEP: (&str, &str) = ("keep", "true");

impl Runner {
    /// Deletes finished jobs that ended before `before_ms` (not those labelled keep=true) in
    /// batches, then the sweeps left empty; with `vacuum`, gives the space back to the file
    /// system where the store can. A dry run lists and deletes nothing.
    pub async fn collect_garbage(&self, before_ms: i64, dry_run: bool, vacuum: bool) -> Result<GcReport, RunnerError> {
        let store = &self.inner.store;
        let filter = super::JobFilter {
            states: vec![super::JobState::Succeeded, super::JobState::Failed, super::JobState::Cancelled],
            finished_before_ms: Some(before_ms),
            without_label: Some((KEEP.0.into(), KEEP.1.into())),
            ..Default::default()
        };
        let mut report = GcReport { bytes_before: store.size_bytes().await?, ..Default::default() };
        let mut page = super::PageRequest { size: 1000, token: None };
        let mut candidates = Vec::new();
        loop {
            let (jobs, next) = store.list_jobs(&filter, super::Order::OLDEST_FIRST, &page).await?;
            candidates.extend(jobs.iter().map(|j| j.id));
            match next {
                Some(t) => page.token = Some(t),
                None => break,
            }
        }
        report.jobs = self.without_parents_of_kept_forks(candidates).await?;
        if !dry_run {
            report.jobs = self.delete_sparing_parents(&report.jobs).await?;
            report.sweeps = store.delete_empty_sweeps().await?;
            if vacuum {
                store.vacuum().await?;
            }
        }
        report.bytes_after = store.size_bytes().await?;
        Ok(report)
    }
}

impl Runner {
    /// The `candidates` (oldest first) that can go: not those with a fork that stays (not a
    /// candidate, or kept itself), since a fork reads its parent's history. Forks are newer
    /// than their parents, so one pass from the newest keeps every ancestor of a kept fork.
    async fn without_parents_of_kept_forks(&self, candidates: Vec<JobId>) -> Result<Vec<JobId>, RunnerError> {
        let going: std::collections::HashSet<JobId> = candidates.iter().copied().collect();
        let mut kept: std::collections::HashSet<JobId> = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(candidates.len());
        for &id in candidates.iter().rev() {
            let forks = self.inner.store.forks(id).await?;
            if forks.iter().any(|f| !going.contains(f) || kept.contains(f)) {
                kept.insert(id);
            } else {
                out.push(id);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Deletes `jobs` in batches; returns those deleted. A job with forks goes after its forks
    /// when they are among `jobs`, and stays otherwise (a fork reads its parent's history).
    async fn delete_sparing_parents(&self, jobs: &[JobId]) -> Result<Vec<JobId>, RunnerError> {
        let candidates: std::collections::HashSet<JobId> = jobs.iter().copied().collect();
        let (mut pending, mut deleted) = (jobs.to_vec(), Vec::new());
        loop {
            let mut deferred = Vec::new();
            let before = deleted.len();
            for batch in pending.chunks(GC_BATCH) {
                let mut batch = batch.to_vec();
                while !batch.is_empty() {
                    match self.inner.store.delete_jobs(&batch).await {
                        Ok(()) => {
                            deleted.append(&mut batch);
                        }
                        Err(StoreError::HasForks(parent, forks)) => {
                            batch.retain(|&j| j != parent);
                            if forks.iter().all(|f| candidates.contains(f)) {
                                deferred.push(parent);
                            } else {
                                tracing::info!(job = %parent, "kept: it has forks that stay");
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if deferred.is_empty() || deleted.len() == before {
                return Ok(deleted);
            }
            pending = deferred;
        }
    }

    /// Retention: while the server runs, deletes jobs that finished longer than `keep` ago
    /// (except those labelled keep=true), looking every `keep / 4`, at least every hour and at
    /// most every second. The space freed is reused for new data (no vacuum: that would hold
    /// the writer while the file is rewritten).
    pub async fn retain_finished(self, keep: std::time::Duration) {
        let every = (keep / 4).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3600));
        let stopping = self.stopping();
        tokio::pin!(stopping);
        loop {
            let before = super::now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            match self.collect_garbage(before, false, false).await {
                Ok(r) if !r.jobs.is_empty() => {
                    tracing::info!(jobs = r.jobs.len(), sweeps = r.sweeps, "retention: deleted finished jobs")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention: could not delete old jobs; trying again later"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stopping => return,
            }
        }
    }
}
