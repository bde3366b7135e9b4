//! A fork's history: its parent's steps before the fork (the parent's own lineage, for a fork
//! of a fork), then its own. Nothing is copied; every read goes to each job in turn. Every
//! history read of the runner (windows of a series, replayed steps, evaluations, histograms)
//! goes through here, so a fork reads as one series from step 0 everywhere.
//!
//! A part `(job, from, until)` holds the job's recorded steps and histograms in
//! `[from, until)`, and its evaluations in `(from, until]` (`[0, until]` for the first part):
//! the evaluation at the fork's step was the parent's.

use super::model::{HistoryMeta, JobId, SeriesRows, Store, StoreError};
use crate::engine::stats::Histogram;
use crate::engine::train::EvalRecord;

/// Forks deeper than this are refused when made (see `Runner::fork`), and are corrupt here.
pub const MAX_FORK_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// Oldest first; the last part is the job itself (to the end).
    parts: Vec<(JobId, u64, u64)>,
}

impl Lineage {
    /// The lineage of job `id`, whose meta the caller has read.
    pub async fn of<S: Store + ?Sized>(store: &S, id: JobId, meta: &HistoryMeta) -> Result<Lineage, StoreError> {
        let mut parts = vec![(id, meta.fork.map_or(0, |f| f.step), u64::MAX)];
        let mut fork = meta.fork;
        while let Some(f) = fork {
            if parts.len() > MAX_FORK_DEPTH {
                return Err(StoreError::Corrupt { job: id, problem: format!("forks deeper than {MAX_FORK_DEPTH}") });
            }
            let parent = store.history_meta(f.parent).await?;
            parts.push((f.parent, parent.fork.map_or(0, |g| g.step), f.step));
            fork = parent.fork;
        }
        parts.reverse();
        Ok(Lineage { parts })
    }

    /// Job `id`'s lineage, its meta read here.
    pub async fn read<S: Store + ?Sized>(store: &S, id: JobId) -> Result<(HistoryMeta, Lineage), StoreError> {
        let meta = store.history_meta(id).await?;
        let lineage = Lineage::of(store, id, &meta).await?;
        Ok((meta, lineage))
    }

    /// Jobs whose history this one reads: 1 for a job that is not a fork.
    pub fn depth(&self) -> usize {
        self.parts.len()
    }

    /// The parts holding steps in `[lo, hi]`, each with its share of the range.
    fn ranges(&self, lo: u64, hi: u64) -> impl Iterator<Item = (JobId, u64, u64)> + '_ {
        self.parts.iter().filter_map(move |&(job, from, until)| {
            let (a, b) = (lo.max(from), hi.min(until.checked_sub(1)?));
            (a <= b).then_some((job, a, b))
        })
    }

    /// `Store::read_series` over the lineage: rows with steps in `[lo, hi]`, in step order, at
    /// most `max_rows` (the first ones).
    pub async fn read_series<S: Store + ?Sized>(
        &self,
        store: &S,
        layer: Option<u32>,
        cols: &[usize],
        lo: u64,
        hi: u64,
        max_rows: usize,
    ) -> Result<SeriesRows, StoreError> {
        let mut out = SeriesRows { steps: Vec::new(), columns: vec![Vec::new(); cols.len()] };
        for (job, a, b) in self.ranges(lo, hi) {
            let left = max_rows - out.steps.len();
            if left == 0 {
                break;
            }
            let rows = store.read_series(job, layer, cols, a, b, left).await?;
            if self.parts.len() == 1 {
                return Ok(rows);
            }
            out.steps.extend(rows.steps);
            for (all, part) in out.columns.iter_mut().zip(rows.columns) {
                all.extend(part);
            }
        }
        Ok(out)
    }

    /// `Store::read_histograms` over the lineage: steps in `[lo, hi]`.
    pub async fn read_histograms<S: Store + ?Sized>(
        &self,
        store: &S,
        lo: u64,
        hi: u64,
    ) -> Result<Vec<(u64, Vec<Histogram>)>, StoreError> {
        let mut out = Vec::new();
        for (job, a, b) in self.ranges(lo, hi) {
            out.extend(store.read_histograms(job, a, b).await?);
        }
        Ok(out)
    }

    /// `Store::read_evals` over the lineage: evaluations at `from_step` and after.
    pub async fn read_evals<S: Store + ?Sized>(
        &self,
        store: &S,
        from_step: u64,
    ) -> Result<Vec<EvalRecord>, StoreError> {
        let mut out = Vec::new();
        for (i, &(job, from, until)) in self.parts.iter().enumerate() {
            if until < from_step {
                continue;
            }
            let evals = store.read_evals(job, from_step).await?;
            out.extend(evals.into_iter().filter(|e| (i == 0 || e.step > from) && e.step <= until));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_a_read_at_each_fork() {
        let l = Lineage { parts: vec![(JobId(1), 0, 100), (JobId(2), 100, 250), (JobId(3), 250, u64::MAX)] };
        let got: Vec<_> = l.ranges(50, 300).collect();
        assert_eq!(got, [(JobId(1), 50, 99), (JobId(2), 100, 249), (JobId(3), 250, 300)]);
        assert_eq!(l.ranges(120, 130).collect::<Vec<_>>(), [(JobId(2), 120, 130)]);
        assert_eq!(l.ranges(0, 0).collect::<Vec<_>>(), [(JobId(1), 0, 0)]);
        let fork_at_zero = Lineage { parts: vec![(JobId(1), 0, 0), (JobId(2), 0, u64::MAX)] };
        assert_eq!(fork_at_zero.ranges(0, 9).collect::<Vec<_>>(), [(JobId(2), 0, 9)]);
    }
}
