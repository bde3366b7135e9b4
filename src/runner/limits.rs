//! What one server accepts: the largest network, the longest job, how many jobs may wait, how
//! many watchers may stream, how large a request or a dataset file may be. Every limit is a
//! `gradlab serve` flag; a refusal names the flag and its value, so the person who hits it
//! knows what to ask the operator for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::engine::spec::{FieldError, JobSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Parameters (weights and biases) of one job's network (`--max-params`).
    pub max_params: u64,
    /// Training steps of one job (`--max-steps`).
    pub max_steps: u64,
    /// Unfinished (queued or running) jobs in the server (`--max-queued-jobs`).
    pub max_queued_jobs: usize,
    /// Jobs one sweep may expand to (`--max-sweep-jobs`), checked before anything is stored.
    pub max_sweep_jobs: usize,
    /// WatchJob streams open at once (`--max-watchers`).
    pub max_watchers: usize,
    /// Size of one decoded request message (`--max-request-bytes`).
    pub max_request_bytes: usize,
    /// Size on disk of one dataset file (`--max-dataset-bytes`).
    pub max_dataset_bytes: u64,
    /// Longest a unary call may take on the server, whatever deadline the client sets
    /// (`--request-timeout`); a shorter client deadline (`grpc-timeout`) wins.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // An 8 x 1024 network has 8.4 million; 10 million f32 parameters with gradients
            // and Adam's moments stay under 200 MB per job.
            max_params: 10_000_000,
            // Hours for a deep network (about 40 steps/s at 32 x 256), minutes for a small one.
            max_steps: 1_000_000,
            max_queued_jobs: 10_000,
            // seed-claims is 1,296.
            max_sweep_jobs: 10_000,
            max_watchers: 1_024,
            // A JobSpec is a few hundred bytes; tonic's own default is 4 MiB.
            max_request_bytes: 1 << 20,
            max_dataset_bytes: 1 << 30,
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Weights and biases of a network with these layer widths, input first.
pub fn param_count(dims: &[usize]) -> u64 {
    dims.windows(2).map(|w| w[0] as u64 * w[1] as u64 + w[1] as u64).sum()
}

impl Limits {
    /// The limits a spec can be held to before its data is read. The parameter count here is
    /// that of the hidden layers with a one-input, one-class frame: a lower bound, checked
    /// exactly once the data's shape is known ([`Limits::check_params`]).
    pub fn check_spec(&self, spec: &JobSpec) -> Result<(), FieldError> {
        if spec.steps > self.max_steps {
            return Err(FieldError::new(
                "steps",
                format!(
                    "{} is more than this server's --max-steps {}",
                    thousands(spec.steps),
                    thousands(self.max_steps)
                ),
            ));
        }
        let frame: Vec<usize> = std::iter::once(1).chain(spec.hidden.iter().copied()).chain([1]).collect();
        self.check_params(&frame)
    }

    /// The network of these layer widths (input first) against `--max-params`.
    pub fn check_params(&self, dims: &[usize]) -> Result<(), FieldError> {
        let n = param_count(dims);
        if n > self.max_params {
            return Err(FieldError::new(
                "hidden",
                format!(
                    "the network has {} parameters, more than this server's --max-params {}",
                    thousands(n),
                    thousands(self.max_params)
                ),
            ));
        }
        Ok(())
    }
}

/// Places counted against a limit, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>, usize);

impl Slot {
    /// Takes a place and returns it with the count before it. Callers compare that count with
    /// their limit and drop the slot to refuse: taking first and deciding after means two racing
    /// callers can never both take the last place.
    pub fn take(counter: &Arc<AtomicUsize>) -> (Slot, usize) {
        Self::take_n(counter, 1)
    }

    /// Takes `n` places at once (a sweep's jobs).
    pub fn take_n(counter: &Arc<AtomicUsize>, n: usize) -> (Slot, usize) {
        let before = counter.fetch_add(n, Ordering::SeqCst);
        (Slot(counter.clone(), n), before)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::SeqCst);
    }
}

/// 12345678 -> "12,345,678": limits are read by people.
pub fn thousands(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1000u64), "1,000");
        assert_eq!(thousands(12_345_678u64), "12,345,678");
    }

    #[test]
    fn params_count_weights_and_biases() {
        // 64 inputs, two hidden layers of 32, 10 classes.
        assert_eq!(param_count(&[64, 32, 32, 10]), 64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10);
    }

    #[test]
    fn spec_limits_name_the_flag_and_value() {
        let limits = Limits { max_params: 1000, max_steps: 50, ..Limits::default() };
        let e = limits.check_spec(&JobSpec { steps: 51, hidden: vec![4], ..JobSpec::default() }).unwrap_err();
        assert_eq!(e.to_string(), "steps: 51 is more than this server's --max-steps 50");
        let e = limits.check_spec(&JobSpec { steps: 50, hidden: vec![40, 40], ..JobSpec::default() }).unwrap_err();
        assert_eq!(e.field, "hidden");
        assert!(e.problem.contains("1,761 parameters") && e.problem.contains("--max-params 1,000"), "{e}");
        limits.check_spec(&JobSpec { steps: 50, hidden: vec![8, 8], ..JobSpec::default() }).unwrap();
        assert!(limits.check_params(&[200, 8, 8, 10]).is_err(), "the exact count includes the input layer");
    }

    #[test]
    fn slots_are_given_back() {
        let counter = Arc::new(AtomicUsize::new(0));
        let (a, before_a) = Slot::take(&counter);
        let (b, before_b) = Slot::take(&counter);
        assert_eq!((before_a, before_b), (0, 1));
        drop(a);
        drop(b);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
    }
}
