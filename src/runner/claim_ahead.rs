//! Claiming a worker's next job while its current one finishes.
//!
//! A claim is a write, and on SQLite it waits behind the history writer's transaction: in a
//! `seed-claims` sweep (jobs of about 55 ms) claims took 1.9 ms on average, 4.5 ms at the 90th
//! percentile and up to 91 ms, and a worker sat idle through each, 4.4% of its time. So each
//! job holds a claim slot besides its training permit and gives the slot back once the steps it
//! has left should take less than [`LOOKAHEAD`] at its pace so far: the dispatcher claims the
//! next job then, and starts it the moment the permit is free. A job is held claimed but not
//! training for about that long, plus the last job's final evaluation, which its pace does not
//! foresee: too short to matter to other servers that could have taken it. A job that ends
//! sooner than its pace said gives the slot back as it ends.

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

/// How long before a job's expected end the dispatcher may claim the worker's next one.
pub const LOOKAHEAD: Duration = Duration::from_millis(25);

/// Steps a job must have taken in this run before its pace is trusted: the first steps are
/// slower (caches, the wide layers' timing of both ways to read W).
const PACE_AFTER: u64 = 8;

/// A running job's claim slot: given back by [`ClaimSlot::observe`] near the job's end, or
/// when dropped.
pub struct ClaimSlot {
    slot: Option<OwnedSemaphorePermit>,
    /// When the pace was first observed, and the steps done then.
    from: Option<(Instant, u64)>,
}

impl ClaimSlot {
    pub fn new(slot: OwnedSemaphorePermit) -> Self {
        ClaimSlot { slot: Some(slot), from: None }
    }

    /// After `done` of the job's `total` steps, at `now`: gives the slot back once the steps
    /// left should take less than [`LOOKAHEAD`] at the pace since the first observation.
    pub fn observe(&mut self, done: u64, total: u64, now: Instant) {
        if self.slot.is_none() {
            return;
        }
        let (t0, done0) = *self.from.get_or_insert((now, done));
        let taken = done.saturating_sub(done0);
        if taken < PACE_AFTER {
            return;
        }
        let per_step = now.duration_since(t0).as_secs_f64() / taken as f64;
        if total.saturating_sub(done) as f64 * per_step < LOOKAHEAD.as_secs_f64() {
            self.slot = None;
        }
    }

    /// Whether the slot has been given back.
    pub fn released(&self) -> bool {
        self.slot.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    fn slot() -> (Arc<Semaphore>, ClaimSlot) {
        let sem = Arc::new(Semaphore::new(1));
        let slot = ClaimSlot::new(sem.clone().try_acquire_owned().unwrap());
        (sem, slot)
    }

    #[test]
    fn gives_the_slot_back_when_the_steps_left_take_less_than_the_lookahead() {
        let (sem, mut s) = slot();
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        // 1 ms a step from step 100 on, of 1,000 steps.
        s.observe(100, 1000, ms(0));
        s.observe(500, 1000, ms(400));
        assert_eq!(sem.available_permits(), 0, "500 ms left");
        s.observe(974, 1000, ms(874));
        assert_eq!(sem.available_permits(), 0, "26 ms left");
        s.observe(976, 1000, ms(876));
        assert!(s.released());
        assert_eq!(sem.available_permits(), 1, "24 ms left: the dispatcher may claim");
    }

    #[test]
    fn trusts_no_pace_before_a_few_steps() {
        let (sem, mut s) = slot();
        let t0 = Instant::now();
        // Two steps of a 4-step job, instantly: no pace yet, so the slot stays.
        s.observe(0, 4, t0);
        s.observe(2, 4, t0);
        assert_eq!(sem.available_permits(), 0);
        drop(s);
        assert_eq!(sem.available_permits(), 1, "a job that ends gives its slot back");
    }

    #[test]
    fn a_slow_job_keeps_its_slot_to_the_last_steps() {
        let (sem, mut s) = slot();
        let t0 = Instant::now();
        // 100 ms a step: even the last step is longer than the lookahead.
        s.observe(0, 50, t0);
        s.observe(49, 50, t0 + Duration::from_millis(4900));
        assert_eq!(sem.available_permits(), 0);
    }
}
