//! A training job's full description, and its validation.
//!
//! The spec and its seed fix every bit of a run: nothing else (thread count, load, time) may
//! change a result.

use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::data::DatasetSpec;
use super::init::Init;
use super::loss::Loss;
use super::optim::{Optimizer, Schedule};
use super::verdict::Thresholds;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSpec {
    /// A free-form name, for people.
    pub name: String,
    /// Free-form key=value labels, for filtering.
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(with = "as_text")]
    pub activation: Activation,
    #[serde(with = "as_text")]
    pub output_activation: Activation,
    /// Widths of the hidden layers, input side first.
    pub hidden: Vec<usize>,
    #[serde(with = "as_text")]
    pub init: Init,
    #[serde(with = "as_text")]
    pub loss: Loss,
    #[serde(with = "as_text")]
    pub optimizer: Optimizer,
    pub lr: f64,
    #[serde(with = "as_text")]
    pub schedule: Schedule,
    /// Decoupled weight decay on weights (not biases).
    pub weight_decay: f64,
    /// Clip the global gradient norm (weights and biases of all layers) to this, if set.
    pub clip_norm: Option<f64>,
    pub batch: usize,
    pub steps: u64,
    /// Evaluate on the held-out split every this many steps (0: only at start and end).
    pub eval_every: u64,
    /// A dataset spec string, see `engine::data`.
    pub dataset: String,
    /// Share of the data held out for evaluation; 0 evaluates on the training data itself.
    pub test_fraction: f64,
    pub standardize: bool,
    pub seed: u64,
    /// Record per-layer statistics every this many steps (1: every step). The last step is
    /// always recorded.
    pub record_every: u64,
    /// Record log10|g| histograms every this many steps (0: never).
    pub histogram_every: u64,
    /// Stop at the first non-finite loss or gradient (the verdict is then `exploding`).
    pub stop_on_nonfinite: bool,
    pub thresholds: Thresholds,
    /// Store the whole training state every this many steps (0: never), so a job that is
    /// restarted or claimed again goes on from there. Checkpoints never change results.
    pub checkpoint_every_steps: u64,
    /// ... but at most once every this many seconds (0: no limit): what bounds their cost for
    /// fast jobs.
    pub checkpoint_every_seconds: f64,
    /// The newest checkpoints kept per job.
    pub checkpoint_keep: u32,
    /// Keep the checkpoints once the job has ended (to fork or export it later); else they go
    /// when it ends.
    pub keep_checkpoints: bool,
}

/// Most checkpoints a job keeps.
pub const MAX_CHECKPOINT_KEEP: u32 = 100;

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            name: String::new(),
            labels: Default::default(),
            activation: Activation::Tanh,
            output_activation: Activation::Identity,
            hidden: vec![64; 4],
            init: Init::LecunNormal,
            loss: Loss::CrossEntropy,
            optimizer: Optimizer::Sgd,
            lr: 0.05,
            schedule: Schedule::Constant,
            weight_decay: 0.0,
            clip_norm: None,
            batch: 64,
            steps: 500,
            eval_every: 100,
            dataset: "digits".into(),
            test_fraction: 0.25,
            standardize: true,
            seed: 0,
            record_every: 1,
            histogram_every: 0,
            stop_on_nonfinite: true,
            thresholds: Thresholds::default(),
            // Under 1% of training for any net (`cargo bench --bench checkpoint`): a fast job
            // stores one a minute, a 10M-parameter Adam net (127 MB) one every ~8 minutes.
            checkpoint_every_steps: 10_000,
            checkpoint_every_seconds: 60.0,
            checkpoint_keep: 2,
            keep_checkpoints: false,
        }
    }
}

/// Spec fields that have a text form (`tanh`, `custom:1.5,0.05`, `adam`) are written as that
/// text in JSON and TOML, the form people type.
mod as_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Largest accepted values, so that a typo cannot ask for a petabyte.
pub const MAX_WIDTH: usize = 1 << 16;
pub const MAX_DEPTH: usize = 1024;
pub const MAX_STEPS: u64 = 100_000_000;

/// A spec field that is not acceptable, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError { field: field.into(), problem: problem.into() }
    }
}

impl JobSpec {
    /// `depth` hidden layers of `width` units.
    pub fn with_depth(mut self, depth: usize, width: usize) -> Self {
        self.hidden = vec![width; depth];
        self
    }

    pub fn depth(&self) -> usize {
        self.hidden.len()
    }

    pub fn dataset_spec(&self) -> Result<DatasetSpec, FieldError> {
        self.dataset.parse().map_err(|e| FieldError::new("dataset", format!("{e}")))
    }

    /// Checks everything that can be checked without loading the data. The first bad field is
    /// reported, by name.
    pub fn validate(&self) -> Result<(), FieldError> {
        let err = |f: &str, p: String| Err(FieldError::new(f, p));
        if self.hidden.is_empty() {
            return err("hidden", "needs at least one hidden layer (depth >= 1)".into());
        }
        if self.hidden.len() > MAX_DEPTH {
            return err("hidden", format!("depth {} exceeds the limit {MAX_DEPTH}", self.hidden.len()));
        }
        if let Some((i, w)) = self.hidden.iter().enumerate().find(|(_, w)| **w == 0 || **w > MAX_WIDTH) {
            return err("hidden", format!("layer {i} has width {w}; widths must be 1..={MAX_WIDTH}"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return err("lr", format!("must be a finite number > 0, got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return err("weight_decay", format!("must be a finite number >= 0, got {}", self.weight_decay));
        }
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return err("clip_norm", format!("must be a finite number > 0, got {c}"));
        }
        if self.batch == 0 {
            return err("batch", "must be at least 1".into());
        }
        if self.steps > MAX_STEPS {
            return err("steps", format!("{} exceeds the limit {MAX_STEPS}", self.steps));
        }
        if self.record_every == 0 {
            return err("record_every", "must be at least 1 (1 records every step)".into());
        }
        if !(self.test_fraction >= 0.0 && self.test_fraction < 1.0) {
            return err("test_fraction", format!("must be in [0, 1), got {}", self.test_fraction));
        }
        if let Init::Custom { sigma_w, sigma_b } = self.init
            && !(sigma_w.is_finite() && sigma_w >= 0.0 && sigma_b.is_finite() && sigma_b >= 0.0)
        {
            return err("init", format!("sigma_w and sigma_b must be finite and >= 0, got {sigma_w}, {sigma_b}"));
        }
        if !(self.checkpoint_every_seconds.is_finite() && self.checkpoint_every_seconds >= 0.0) {
            return err(
                "checkpoint_every_seconds",
                format!("must be a finite number >= 0 (0: no limit), got {}", self.checkpoint_every_seconds),
            );
        }
        if !(1..=MAX_CHECKPOINT_KEEP).contains(&self.checkpoint_keep) {
            return err("checkpoint_keep", format!("must be 1..={MAX_CHECKPOINT_KEEP}, got {}", self.checkpoint_keep));
        }
        self.thresholds.validate()?;
        self.dataset_spec()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_json() {
        let spec = JobSpec::default();
        spec.validate().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<JobSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(JobSpec, &str)> = vec![
            (JobSpec { hidden: vec![], ..Default::default() }, "hidden"),
            (JobSpec { hidden: vec![8, 0], ..Default::default() }, "hidden"),
            (JobSpec { lr: 0.0, ..Default::default() }, "lr"),
            (JobSpec { lr: f64::NAN, ..Default::default() }, "lr"),
            (JobSpec { batch: 0, ..Default::default() }, "batch"),
            (JobSpec { record_every: 0, ..Default::default() }, "record_every"),
            (JobSpec { test_fraction: 1.0, ..Default::default() }, "test_fraction"),
            (JobSpec { clip_norm: Some(-1.0), ..Default::default() }, "clip_norm"),
            (JobSpec { dataset: "mnist-please".into(), ..Default::default() }, "dataset"),
            (JobSpec { checkpoint_every_seconds: -1.0, ..Default::default() }, "checkpoint_every_seconds"),
            (JobSpec { checkpoint_keep: 0, ..Default::default() }, "checkpoint_keep"),
        ];
        for (spec, field) in cases {
            let e = spec.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn unknown_json_fields_are_refused() {
        let e = serde_json::from_str::<JobSpec>(r#"{"activaton": "tanh"}"#).unwrap_err().to_string();
        assert!(e.contains("activaton"), "{e}");
    }
}
