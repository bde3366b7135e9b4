//! The networks last restored for predictions and exports. A client asking for one job's
//! network again (a notebook predicting batch after batch, a dashboard exporting it) then skips
//! reading the checkpoint, loading the dataset and building the trainer: 5-10 ms and a 2 MB
//! read for an 8x256 net, per call. Callers look the checkpoint up in the store first, so a
//! deleted job's networks are never found again here; they age out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::model::{CheckpointInfo, JobId};
use crate::engine::train::Trainer;

/// Which checkpoint a network was restored from. The time it was stored tells a checkpoint
/// apart from one stored later at the same step (a job run again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub job: JobId,
    pub step: u64,
    pub created_ms: i64,
}

impl Key {
    pub fn new(job: JobId, at: &CheckpointInfo) -> Key {
        Key { job, step: at.step, created_ms: at.created_ms }
    }
}

/// At most this many networks are kept...
const MAX_ENTRIES: usize = 4;
/// ...holding at most this many parameters and dataset values between them (32 MB as f32; a
/// trainer's other buffers add a few times its parameters). A bigger one is restored every time.
const MAX_VALUES: usize = 8 << 20;

pub struct TrainedCache {
    /// The most recently used first.
    entries: Mutex<VecDeque<(Key, Arc<Trainer<f32>>)>>,
    max_entries: usize,
    max_values: usize,
}

impl Default for TrainedCache {
    fn default() -> Self {
        Self::with_limits(MAX_ENTRIES, MAX_VALUES)
    }
}

impl TrainedCache {
    fn with_limits(max_entries: usize, max_values: usize) -> Self {
        TrainedCache { entries: Mutex::default(), max_entries, max_values }
    }

    /// The network restored from `key`'s checkpoint, if kept; it becomes the most recent.
    pub fn get(&self, key: Key) -> Option<Arc<Trainer<f32>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|(k, _)| *k == key)?;
        let entry = entries.remove(at)?;
        let trainer = entry.1.clone();
        entries.push_front(entry);
        Some(trainer)
    }

    /// Keeps `trainer` as the most recent, dropping the least recent ones over the limits.
    pub fn put(&self, key: Key, trainer: Arc<Trainer<f32>>) {
        let held = |t: &Trainer<f32>| t.held_values();
        if held(&trainer) > self.max_values {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        entries.push_front((key, trainer));
        while entries.len() > self.max_entries || entries.iter().map(|(_, t)| held(t)).sum::<usize>() > self.max_values
        {
            entries.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spec::JobSpec;

    fn trainer(width: usize) -> Arc<Trainer<f32>> {
        let spec = JobSpec { dataset: "spirals:n=64".into(), hidden: vec![width], batch: 16, ..JobSpec::default() };
        Arc::new(Trainer::new(&spec).expect("a valid spec"))
    }

    fn key(job: i64, step: u64) -> Key {
        Key { job: JobId(job), step, created_ms: 7 }
    }

    #[test]
    fn keeps_the_most_recently_used_and_tells_checkpoints_apart() {
        let cache = TrainedCache::default();
        let kept: Vec<_> = (0..MAX_ENTRIES as i64).map(|j| (key(j, 10), trainer(4))).collect();
        for (k, t) in &kept {
            cache.put(*k, t.clone());
        }
        assert!(Arc::ptr_eq(&cache.get(key(0, 10)).expect("kept"), &kept[0].1));
        // Job 0 was used last, so a new entry drops job 1, the least recent.
        cache.put(key(9, 10), trainer(4));
        assert!(cache.get(key(1, 10)).is_none());
        assert!(cache.get(key(0, 10)).is_some() && cache.get(key(2, 10)).is_some());
        // Another step, or the same step stored at another time, is another checkpoint.
        assert!(cache.get(key(0, 20)).is_none());
        assert!(cache.get(Key { created_ms: 8, ..key(0, 10) }).is_none());
    }

    #[test]
    fn holds_no_more_values_than_its_limit() {
        let per = trainer(16).held_values();
        let cache = TrainedCache::with_limits(10, 3 * per + per / 2);
        for j in 1..=4 {
            cache.put(key(j, 1), trainer(16));
        }
        assert!(cache.get(key(1, 1)).is_none(), "the least recent went to stay under the limit");
        assert!((2..=4).all(|j| cache.get(key(j, 1)).is_some()));
        // One network over the limit alone is not kept at all, and drops nothing.
        cache.put(key(5, 1), trainer(256));
        assert!(cache.get(key(5, 1)).is_none());
        assert!((2..=4).all(|j| cache.get(key(j, 1)).is_some()));
    }
}
