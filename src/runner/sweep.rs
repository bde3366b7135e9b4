//! Sweeps: a base [`JobSpec`] crossed with axes of values, the presets that test the claims of
//! a well-known blog post about activations and depth, and the report that aggregates a sweep's
//! finished jobs. Everything here is pure: the store, the API and the CLI wire it in.
//!
//! The post's claim: "logistic, tanh and arctan cannot be trained deeper than two hidden layers;
//! softsign to about four; logsig to eight or more; ramp (ReLU), softplus, logmin and the
//! logarithmic semisigmoid avoid vanishing and exploding gradients."
//!
//! # Expansion rules ([`SweepSpec::expand`])
//!
//! - Checks, in this order, before anything is built: at least one axis; no axis without values;
//!   no axis field twice; `init` not an axis together with `sigma_w`/`sigma_b` (those make the
//!   init custom); the product of the axes' sizes at most `max_jobs`. Then every value is parsed
//!   (an error names the axis and the value), a value repeating another of the same axis (after
//!   canonicalisation: `relu` repeats `ramp`, `0.10` repeats `0.1`) is an error, and every job is
//!   built and validated.
//! - Order: the cross product with the first axis outermost (the last axis varies fastest).
//! - `depth` keeps the base width (the width of the base's first hidden layer); `width` keeps the
//!   base depth; both together give `depth` layers of `width`.
//! - `sigma_w` / `sigma_b` make the init `custom:sigma_w,sigma_b`; the one that is not an axis
//!   comes from the base init's mean-field sigmas (`lecun_normal` is (1, 0)).
//! - Every job gets the labels `sweep.<field>=<value>` for every axis, and the name
//!   `"<sweep name> <field>=<value> ..."` in axis order. Values are written in canonical form
//!   (the `Display` of the parsed value: `relu` is written `ramp`, `1e-1` is written `0.1`).
//! - A job that fails validation is reported against the axis whose value set the bad job field,
//!   e.g. `axes.lr: value "-1": lr: must be a finite number > 0, got -1`; a bad field that no
//!   axis sets is reported as `base.<field>`.
//!
//! # Report rules ([`report`])
//!
//! - Jobs are matched to the sweep by their `sweep.<field>` labels; jobs without a matching label
//!   set are counted as unmatched and otherwise ignored. A job is *finished* when it succeeded
//!   and has a summary; failed and cancelled jobs count in `jobs_total` only.
//! - A *cell* is a combination of all axes except `seed` and `lr`. When `lr` is an axis the cell's
//!   `best_lr` is the lr whose finished jobs have the highest mean final test accuracy (ties: the
//!   lr listed first); all the cell's figures are then over the best lr's finished jobs only.
//!   "Test accuracy" is the accuracy on the held-out split (`test_fraction` of the data), so
//!   choosing the lr on it makes the figure an optimistic, best-of-grid one; that is the
//!   question asked (could this depth be trained at all with some lr of the grid?).
//! - Mean and standard deviation are over those jobs (the seeds); the standard deviation is the
//!   sample one (n - 1 denominator), 0 for a single job. A non-finite test loss is left out of the
//!   loss statistics and counted in `nonfinite_test_loss`; a non-finite accuracy counts as 0.
//! - Gradient ratios (measured first/last hidden-layer weight-gradient norm at init and at the
//!   end, and the mean-field prediction) are averaged geometrically, over the finite positive
//!   values only: ratios span many orders of magnitude and an arithmetic mean would be the
//!   largest one. chi1 is averaged arithmetically.
//! - *Trainable depth* (computed when `depth` is an axis), per group of cells that differ only in
//!   depth (grouped by every other non-seed, non-lr axis, e.g. activation and init): the reference
//!   is the best mean test accuracy among the group's shallow depths, depth <= 2
//!   ([`SHALLOW_DEPTH`]); a depth is *within margin* when its mean test accuracy is
//!   `>= reference - margin` (absolute accuracy, e.g. 0.05). The trainable depth is the largest
//!   depth such that it and every shallower depth of the grid are within margin. A depth with no
//!   finished job breaks the chain like a failing one. Depths beyond the first failure that are
//!   within margin again (a recovery) are listed in `recovered_at` but do not extend the
//!   trainable depth. No trainable depth (`None`) when the shallowest depth already fails or
//!   there is no shallow result.
//! - *Claim checks*, per activation of the post's table ([`CLAIMS`]) that the sweep measured, with
//!   the depth grid `d_0 < d_1 < ...` and `rank(x)` the index of the largest grid depth <= x (-1
//!   below the grid; "no trainable depth" has rank -1):
//!   - "at most c" (logistic, tanh, atan 2; softsign 4): supported when
//!     `|rank(measured) - rank(c)| <= 1`, i.e. within one depth-grid step of the claim;
//!   - "at least c" (logsig 8): supported when `rank(measured) >= rank(c) - 1`;
//!   - "unbounded" (ramp, softplus, logmin, semisigmoid): supported when trainable up to the
//!     deepest depth swept.
//!
//!   A claim is supported when every measured group (e.g. every init) supports it; a group with
//!   no trainable-depth result is not counted; a claim with no measured group is not measured
//!   (a sweep cancelled before its shallow jobs finished, or one without depths <= 2): it is
//!   neither supported nor refuted.
//! - The margin and the step budget (the base's `steps`, unless `steps` is an axis) are written
//!   into the report, with these rules in [`SweepReport::rules`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::{JobRecord, JobState};
use crate::engine::activation::Activation;
use crate::engine::init::Init;
use crate::engine::loss::Loss;
use crate::engine::optim::Optimizer;
use crate::engine::spec::{FieldError, JobSpec};
use crate::engine::verdict::Verdict;

/// A spec field a sweep can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AxisField {
    Activation,
    Depth,
    Width,
    Init,
    SigmaW,
    SigmaB,
    Optimizer,
    Lr,
    Seed,
    Batch,
    Loss,
    OutputActivation,
    Steps,
}

impl AxisField {
    pub const ALL: [AxisField; 13] = [
        AxisField::Activation,
        AxisField::Depth,
        AxisField::Width,
        AxisField::Init,
        AxisField::SigmaW,
        AxisField::SigmaB,
        AxisField::Optimizer,
        AxisField::Lr,
        AxisField::Seed,
        AxisField::Batch,
        AxisField::Loss,
        AxisField::OutputActivation,
        AxisField::Steps,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AxisField::Activation => "activation",
            AxisField::Depth => "depth",
            AxisField::Width => "width",
            AxisField::Init => "init",
            AxisField::SigmaW => "sigma_w",
            AxisField::SigmaB => "sigma_b",
            AxisField::Optimizer => "optimizer",
            AxisField::Lr => "lr",
            AxisField::Seed => "seed",
            AxisField::Batch => "batch",
            AxisField::Loss => "loss",
            AxisField::OutputActivation => "output_activation",
            AxisField::Steps => "steps",
        }
    }

    /// The label key a job of a sweep carries for this axis.
    pub fn label(self) -> String {
        format!("sweep.{self}")
    }

    /// The [`JobSpec`] field (as [`FieldError::field`] names it) that this axis sets.
    fn job_field(self) -> &'static str {
        match self {
            AxisField::Depth | AxisField::Width => "hidden",
            AxisField::SigmaW | AxisField::SigmaB => "init",
            other => other.as_str(),
        }
    }

    fn parse_value(self, text: &str) -> Result<Value, String> {
        let t = text.trim();
        fn num<T: FromStr>(t: &str, what: &str) -> Result<T, String> {
            t.parse::<T>().map_err(|_| format!("not {what}"))
        }
        fn parse_text<T: FromStr>(t: &str) -> Result<T, String>
        where
            T::Err: fmt::Display,
        {
            t.parse::<T>().map_err(|e| e.to_string())
        }
        Ok(match self {
            AxisField::Activation | AxisField::OutputActivation => Value::Activation(parse_text(t)?),
            AxisField::Init => Value::Init(parse_text(t)?),
            AxisField::Optimizer => Value::Optimizer(parse_text(t)?),
            AxisField::Loss => Value::Loss(parse_text(t)?),
            AxisField::Depth | AxisField::Width | AxisField::Batch => Value::Count(num(t, "a non-negative integer")?),
            AxisField::Seed | AxisField::Steps => Value::U64(num(t, "a non-negative integer")?),
            AxisField::Lr | AxisField::SigmaW | AxisField::SigmaB => Value::Real(num(t, "a number")?),
        })
    }
}

impl fmt::Display for AxisField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AxisField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let name = s.trim().to_ascii_lowercase().replace('-', "_");
        AxisField::ALL.into_iter().find(|f| f.as_str() == name).ok_or_else(|| {
            let known: Vec<&str> = AxisField::ALL.iter().map(|f| f.as_str()).collect();
            format!("unknown axis field {s:?}; known: {}", known.join(", "))
        })
    }
}

impl Serialize for AxisField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AxisField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One axis: a field and the values (as text, the form people type) it takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    pub field: AxisField,
    pub values: Vec<String>,
}

impl Axis {
    pub fn new(field: AxisField, values: &[&str]) -> Self {
        Axis { field, values: values.iter().map(|v| v.to_string()).collect() }
    }
}

/// A base job crossed with axes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub name: String,
    pub base: JobSpec,
    pub axes: Vec<Axis>,
}

/// A parsed axis value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Value {
    Activation(Activation),
    Init(Init),
    Optimizer(Optimizer),
    Loss(Loss),
    Count(usize),
    U64(u64),
    Real(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Activation(a) => write!(f, "{a}"),
            Value::Init(i) => write!(f, "{i}"),
            Value::Optimizer(o) => write!(f, "{o}"),
            Value::Loss(l) => write!(f, "{l}"),
            Value::Count(n) => write!(f, "{n}"),
            Value::U64(n) => write!(f, "{n}"),
            Value::Real(x) => write!(f, "{x}"),
        }
    }
}

/// An axis with its values parsed: (raw text, canonical text, value).
struct ParsedAxis {
    field: AxisField,
    values: Vec<(String, String, Value)>,
}

fn axis_error(field: AxisField, problem: impl Into<String>) -> FieldError {
    FieldError::new(format!("axes.{field}"), problem)
}

impl SweepSpec {
    /// The checks that need no parsing, then the product size against `max_jobs`.
    fn check_shape(&self, max_jobs: usize) -> Result<u128, FieldError> {
        if self.axes.is_empty() {
            return Err(FieldError::new("axes", "a sweep needs at least one axis"));
        }
        let mut seen = Vec::new();
        for axis in &self.axes {
            if axis.values.is_empty() {
                return Err(axis_error(axis.field, "has no values"));
            }
            if seen.contains(&axis.field) {
                return Err(axis_error(axis.field, "appears more than once"));
            }
            seen.push(axis.field);
        }
        if seen.contains(&AxisField::Init) && (seen.contains(&AxisField::SigmaW) || seen.contains(&AxisField::SigmaB)) {
            return Err(axis_error(
                AxisField::Init,
                "cannot be an axis together with sigma_w or sigma_b (those make the init custom)",
            ));
        }
        let size = self.axes.iter().fold(1u128, |acc, a| acc.saturating_mul(a.values.len() as u128));
        if size > max_jobs as u128 {
            return Err(FieldError::new(
                "axes",
                format!("the sweep expands to {size} jobs, more than the limit of {max_jobs} (--max-sweep-jobs)"),
            ));
        }
        Ok(size)
    }

    fn parse_axes(&self) -> Result<Vec<ParsedAxis>, FieldError> {
        self.axes
            .iter()
            .map(|axis| {
                let mut values: Vec<(String, String, Value)> = Vec::with_capacity(axis.values.len());
                for raw in &axis.values {
                    let v = axis
                        .field
                        .parse_value(raw)
                        .map_err(|e| axis_error(axis.field, format!("value {raw:?}: {e}")))?;
                    let canonical = v.to_string();
                    if let Some((first, _, _)) = values.iter().find(|(_, c, _)| *c == canonical) {
                        return Err(axis_error(axis.field, format!("value {raw:?} repeats {first:?}")));
                    }
                    values.push((raw.clone(), canonical, v));
                }
                Ok(ParsedAxis { field: axis.field, values })
            })
            .collect()
    }

    /// The cross product of the axes applied to the base, first axis outermost, each job
    /// labelled, named and validated. See the module docs for the rules.
    pub fn expand(&self, max_jobs: usize) -> Result<Vec<JobSpec>, FieldError> {
        let size = self.check_shape(max_jobs)?;
        let axes = self.parse_axes()?;
        let mut jobs = Vec::with_capacity(size as usize);
        let mut idx = vec![0usize; axes.len()];
        loop {
            let choice: Vec<usize> = idx.clone();
            jobs.push(self.build(&axes, &choice)?);
            // Odometer: the last axis varies fastest.
            let mut k = axes.len();
            loop {
                if k == 0 {
                    return Ok(jobs);
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < axes[k].values.len() {
                    break;
                }
                idx[k] = 0;
            }
        }
    }

    fn build(&self, axes: &[ParsedAxis], choice: &[usize]) -> Result<JobSpec, FieldError> {
        let mut job = self.base.clone();
        let (mut depth, mut width, mut sigma_w, mut sigma_b) = (None, None, None, None);
        let mut name_parts = Vec::with_capacity(axes.len() + 1);
        if !self.name.is_empty() {
            name_parts.push(self.name.clone());
        }
        for (axis, &i) in axes.iter().zip(choice) {
            let (_, canonical, value) = &axis.values[i];
            match (axis.field, *value) {
                (AxisField::Activation, Value::Activation(a)) => job.activation = a,
                (AxisField::OutputActivation, Value::Activation(a)) => job.output_activation = a,
                (AxisField::Init, Value::Init(v)) => job.init = v,
                (AxisField::Optimizer, Value::Optimizer(o)) => job.optimizer = o,
                (AxisField::Loss, Value::Loss(l)) => job.loss = l,
                (AxisField::Depth, Value::Count(n)) => depth = Some(n),
                (AxisField::Width, Value::Count(n)) => width = Some(n),
                (AxisField::Batch, Value::Count(n)) => job.batch = n,
                (AxisField::Seed, Value::U64(n)) => job.seed = n,
                (AxisField::Steps, Value::U64(n)) => job.steps = n,
                (AxisField::Lr, Value::Real(x)) => job.lr = x,
                (AxisField::SigmaW, Value::Real(x)) => sigma_w = Some(x),
                (AxisField::SigmaB, Value::Real(x)) => sigma_b = Some(x),
                (field, v) => unreachable!("axis {field} parsed into {v:?}"),
            }
            job.labels.insert(axis.field.label(), canonical.clone());
            name_parts.push(format!("{}={canonical}", axis.field));
        }
        if depth.is_some() || width.is_some() {
            let d = depth.unwrap_or(self.base.hidden.len());
            let Some(w) = width.or_else(|| self.base.hidden.first().copied()) else {
                return Err(axis_error(AxisField::Depth, "the base has no hidden layer to take the width from"));
            };
            job.hidden = vec![w; d];
        }
        if sigma_w.is_some() || sigma_b.is_some() {
            let w = job.hidden.first().copied().unwrap_or(1);
            let (bw, bb) = self.base.init.mean_field_sigmas(w, w);
            job.init = Init::Custom { sigma_w: sigma_w.unwrap_or(bw), sigma_b: sigma_b.unwrap_or(bb) };
        }
        job.name = name_parts.join(" ");
        job.validate().map_err(|e| {
            let culprits: Vec<(&ParsedAxis, usize)> =
                axes.iter().zip(choice).filter(|(a, _)| a.field.job_field() == e.field).map(|(a, &i)| (a, i)).collect();
            match culprits.as_slice() {
                [] => FieldError::new(format!("base.{}", e.field), e.problem.clone()),
                [(a, i)] => axis_error(a.field, format!("value {:?}: {e}", a.values[*i].0)),
                many => {
                    let fields: Vec<&str> = many.iter().map(|(a, _)| a.field.as_str()).collect();
                    let values: Vec<String> = many.iter().map(|(a, i)| format!("{:?}", a.values[*i].0)).collect();
                    FieldError::new(format!("axes.{}", fields.join("+")), format!("values {}: {e}", values.join(", ")))
                }
            }
        })?;
        Ok(job)
    }

    /// The canonical value texts of each axis (the raw text where a value does not parse).
    fn canonical_values(&self) -> Vec<(AxisField, Vec<String>)> {
        self.axes
            .iter()
            .map(|a| {
                let vals = a
                    .values
                    .iter()
                    .map(|raw| {
                        a.field.parse_value(raw).map(|v| v.to_string()).unwrap_or_else(|_| raw.trim().to_string())
                    })
                    .collect();
                (a.field, vals)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Presets

/// The post's nine activations, in its order.
pub const POST_ACTIVATIONS: [&str; 9] =
    ["logistic", "tanh", "atan", "softsign", "logsig", "ramp", "softplus", "logmin", "semisigmoid"];

/// Step budget of `seed-claims`: 1500 SGD steps of batch 32 on the ~1350 training digits
/// (test_fraction 0.25), about 36 epochs. The budget is fixed for every depth, so "trainable"
/// means "trainable within this budget"; it is meant to be long enough for shallow networks to
/// converge at a good lr of the grid (an assumption of the preset, not measured here: check the
/// depth <= 2 rows of the report), so that a deep network far below them has a depth problem
/// rather than a short budget.
pub const SEED_CLAIMS_STEPS: u64 = 1500;
/// Step budget of `edge-of-chaos`.
pub const EDGE_OF_CHAOS_STEPS: u64 = 1000;

/// Name and one-line description of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "seed-claims",
        "the post's nine activations x depths 1-16 x lecun/xavier normal x lr 0.01/0.03/0.1 x 3 seeds \
         on digits, width 32, 1500 SGD steps (1296 jobs)",
    ),
    (
        "seed-claims-mini",
        "seed-claims reduced to one seed and lr 0.03/0.1: nine activations x depths 1-16 x lecun/xavier \
         normal, 1500 steps (288 jobs; what `gradlab demo` runs)",
    ),
    (
        "edge-of-chaos",
        "tanh with custom init sigma_w 0.5-3.0, sigma_b 0.05, depths 2-32, 2 seeds on digits, width 64 \
         (80 jobs): trainability against the mean-field order/chaos boundary",
    ),
];

fn digits_base(name: &str, width: usize, steps: u64) -> JobSpec {
    let mut base = JobSpec {
        name: String::new(),
        activation: Activation::Tanh,
        hidden: vec![width],
        init: Init::LecunNormal,
        optimizer: Optimizer::Sgd,
        lr: 0.1,
        batch: 32,
        steps,
        eval_every: 250,
        dataset: "digits".into(),
        test_fraction: 0.25,
        standardize: true,
        seed: 1,
        // Every 10th step (and the last) keeps the history of a 1296-job sweep small; the
        // verdict's ratios need only step 0 and the final quarter.
        record_every: 10,
        ..Default::default()
    };
    base.labels.insert("preset".into(), name.into());
    base
}

/// A preset sweep by name (see [`PRESETS`]).
pub fn preset(name: &str) -> Result<SweepSpec, FieldError> {
    let depths_full = ["1", "2", "3", "4", "6", "8", "12", "16"];
    let spec = match name.trim() {
        "seed-claims" => SweepSpec {
            name: "seed-claims".into(),
            base: digits_base("seed-claims", 32, SEED_CLAIMS_STEPS),
            axes: vec![
                Axis::new(AxisField::Activation, &POST_ACTIVATIONS),
                Axis::new(AxisField::Depth, &depths_full),
                Axis::new(AxisField::Init, &["lecun_normal", "xavier_normal"]),
                Axis::new(AxisField::Lr, &["0.01", "0.03", "0.1"]),
                Axis::new(AxisField::Seed, &["1", "2", "3"]),
            ],
        },
        "seed-claims-mini" => SweepSpec {
            name: "seed-claims-mini".into(),
            base: digits_base("seed-claims-mini", 32, SEED_CLAIMS_STEPS),
            axes: vec![
                Axis::new(AxisField::Activation, &POST_ACTIVATIONS),
                Axis::new(AxisField::Depth, &depths_full),
                Axis::new(AxisField::Init, &["lecun_normal", "xavier_normal"]),
                // 0.01 of the full grid wins only where nothing trains.
                Axis::new(AxisField::Lr, &["0.03", "0.1"]),
                Axis::new(AxisField::Seed, &["1"]),
            ],
        },
        "edge-of-chaos" => {
            let mut base = digits_base("edge-of-chaos", 64, EDGE_OF_CHAOS_STEPS);
            base.init = Init::Custom { sigma_w: 1.0, sigma_b: 0.05 };
            base.lr = 0.01;
            SweepSpec {
                name: "edge-of-chaos".into(),
                base,
                axes: vec![
                    Axis::new(AxisField::SigmaW, &["0.5", "0.75", "1.0", "1.25", "1.5", "2.0", "2.5", "3.0"]),
                    Axis::new(AxisField::SigmaB, &["0.05"]),
                    // Depth 2 is the shallow reference of trainable depth.
                    Axis::new(AxisField::Depth, &["2", "4", "8", "16", "32"]),
                    Axis::new(AxisField::Seed, &["1", "2"]),
                ],
            }
        }
        other => {
            let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(FieldError::new("preset", format!("unknown preset {other:?}; known: {}", known.join(", "))));
        }
    };
    Ok(spec)
}

// ---------------------------------------------------------------------------------------------
// Claims

/// What the post claims about how deep an activation trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "depth", rename_all = "snake_case")]
pub enum ClaimedDepth {
    /// Cannot be trained deeper than this many hidden layers.
    AtMost(usize),
    /// Trains to at least this many hidden layers.
    AtLeast(usize),
    /// Avoids vanishing and exploding gradients: no depth limit.
    Unbounded,
}

impl fmt::Display for ClaimedDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimedDepth::AtMost(d) => write!(f, "<= {d}"),
            ClaimedDepth::AtLeast(d) => write!(f, ">= {d}"),
            ClaimedDepth::Unbounded => f.write_str("unbounded"),
        }
    }
}

/// The report's rule on the verdicts a table's cells count (src/engine/verdict.rs has the
/// thresholds and their calibration).
pub const VERDICT_RULE: &str = "verdicts: collapsing when at init the last hidden layer's activation spread is under \
    1% of the first's (the forward signal shrinks with depth until the output barely depends on the input; the \
    gradient ratio misses it), not_learning when held-out accuracy is less than half-way from chance to 1; \
    vanishing, exploding and dead read the gradients and units";

/// The post's claims, activation (canonical name) -> claimed maximum trainable depth.
pub const CLAIMS: &[(&str, ClaimedDepth)] = &[
    ("logistic", ClaimedDepth::AtMost(2)),
    ("tanh", ClaimedDepth::AtMost(2)),
    ("atan", ClaimedDepth::AtMost(2)),
    ("softsign", ClaimedDepth::AtMost(4)),
    ("logsig", ClaimedDepth::AtLeast(8)),
    ("ramp", ClaimedDepth::Unbounded),
    ("softplus", ClaimedDepth::Unbounded),
    ("logmin", ClaimedDepth::Unbounded),
    ("semisigmoid", ClaimedDepth::Unbounded),
];

/// Shallow depths (depth <= this) give the reference accuracy of trainable depth.
pub const SHALLOW_DEPTH: usize = 2;

/// Default absolute test-accuracy margin of trainable depth: a depth is trainable when its mean
/// test accuracy is at most this far below the best shallow one.
pub const DEFAULT_MARGIN: f64 = 0.05;

// ---------------------------------------------------------------------------------------------
// The report

/// One axis value of a cell or group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AxisValue {
    pub field: AxisField,
    pub value: String,
}

/// Mean and sample standard deviation of `n` values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
}

impl Stat {
    /// None for no values; std uses n - 1 and is 0 for one value.
    pub fn of(xs: &[f64]) -> Option<Stat> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std =
            if n > 1 { (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Some(Stat { n, mean, std })
    }
}

/// Geometric mean of the finite positive values; None when there are none.
pub fn geometric_mean(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let logs: Vec<f64> = xs.into_iter().filter(|x| x.is_finite() && *x > 0.0).map(f64::ln).collect();
    if logs.is_empty() { None } else { Some((logs.iter().sum::<f64>() / logs.len() as f64).exp()) }
}

/// Mean test accuracy of one lr of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrResult {
    pub lr: String,
    pub finished: usize,
    pub mean_test_accuracy: Option<f64>,
}

/// One combination of the axes other than seed and lr.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    pub values: Vec<AxisValue>,
    /// Jobs of the cell (all lrs and seeds), and those finished (succeeded, with a summary).
    pub jobs_total: usize,
    pub jobs_finished: usize,
    /// The lr with the highest mean test accuracy, when lr is an axis; the figures below are
    /// over its finished jobs.
    pub best_lr: Option<String>,
    pub by_lr: Vec<LrResult>,
    /// Final held-out test accuracy over seeds.
    pub test_accuracy: Option<Stat>,
    /// Final held-out test loss over seeds with a finite loss.
    pub test_loss: Option<Stat>,
    pub nonfinite_test_loss: usize,
    /// Verdict name -> jobs.
    pub verdicts: BTreeMap<String, usize>,
    /// Geometric means of the measured first/last hidden-layer gradient ratio.
    pub ratio_at_init_geomean: Option<f64>,
    pub ratio_at_end_geomean: Option<f64>,
    /// Geometric mean of the mean-field predicted first/last ratio.
    pub predicted_ratio_geomean: Option<f64>,
    /// Arithmetic mean of the mean-field chi_1.
    pub chi1_mean: Option<f64>,
}

impl CellReport {
    fn get(&self, field: AxisField) -> Option<&str> {
        self.values.iter().find(|v| v.field == field).map(|v| v.value.as_str())
    }
}

/// One depth of a trainable-depth group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthPoint {
    pub depth: usize,
    pub mean_test_accuracy: Option<f64>,
    /// Mean test accuracy >= reference - margin.
    pub within_margin: bool,
}

/// Trainable depth of a group of cells differing only in depth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainableDepth {
    /// The group's axis values (every cell axis but depth).
    pub group: Vec<AxisValue>,
    /// The group's activation (its axis value, or the base's).
    pub activation: String,
    /// Best mean test accuracy among depths <= SHALLOW_DEPTH.
    pub reference_accuracy: Option<f64>,
    pub points: Vec<DepthPoint>,
    /// Largest depth such that it and every shallower depth are within margin.
    pub trainable_depth: Option<usize>,
    pub deepest_swept: usize,
    /// Depths beyond the first failure that are within margin again.
    pub recovered_at: Vec<usize>,
}

/// One measured group for a claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredDepth {
    /// The group's other axis values (e.g. init), activation left out.
    pub group: Vec<AxisValue>,
    pub trainable_depth: Option<usize>,
    pub deepest_swept: usize,
    /// None when the group has no shallow reference to measure against.
    pub supported: Option<bool>,
}

/// What a sweep says of a claim. A claim nothing measured (no finished shallow result to
/// measure against: a sweep cancelled early, or one without depths <= 2) is not measured,
/// never refuted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimVerdict {
    Supported,
    NotSupported,
    NotMeasured,
}

impl ClaimVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimVerdict::Supported => "supported",
            ClaimVerdict::NotSupported => "not_supported",
            ClaimVerdict::NotMeasured => "not_measured",
        }
    }
}

impl std::str::FromStr for ClaimVerdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [ClaimVerdict::Supported, ClaimVerdict::NotSupported, ClaimVerdict::NotMeasured]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown claim verdict {s:?}"))
    }
}

/// A claim of the post against the sweep's measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimCheck {
    pub activation: String,
    pub claimed: ClaimedDepth,
    pub measured: Vec<MeasuredDepth>,
    /// `verdict == Supported`.
    pub supported: bool,
    pub verdict: ClaimVerdict,
    pub note: String,
}

/// What a sweep's jobs show. See the module docs for every rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub sweep: String,
    /// The cell axes, in sweep order (seed and lr left out).
    pub cell_axes: Vec<AxisField>,
    pub lr_is_axis: bool,
    /// Absolute test-accuracy margin of trainable depth.
    pub margin: f64,
    /// Training steps of every job (None when steps is an axis).
    pub steps: Option<u64>,
    pub jobs_total: usize,
    pub jobs_finished: usize,
    /// Jobs whose labels match no cell of this sweep.
    pub jobs_unmatched: usize,
    pub cells: Vec<CellReport>,
    pub trainable: Vec<TrainableDepth>,
    pub claims: Vec<ClaimCheck>,
    /// The rules the figures follow, in words.
    pub rules: Vec<String>,
}

fn finished(job: &JobRecord) -> bool {
    job.state == JobState::Succeeded && job.summary.is_some()
}

fn accuracy(job: &JobRecord) -> f64 {
    let a = job.summary.as_ref().map_or(0.0, |s| s.run.test_accuracy);
    if a.is_finite() { a } else { 0.0 }
}

/// Aggregates a sweep's jobs (see the module docs). `margin` is the absolute test-accuracy
/// margin of trainable depth, e.g. 0.05.
pub fn report(spec: &SweepSpec, jobs: &[JobRecord], margin: f64) -> SweepReport {
    let axes = spec.canonical_values();
    let cell_axes: Vec<&(AxisField, Vec<String>)> =
        axes.iter().filter(|(f, _)| !matches!(f, AxisField::Seed | AxisField::Lr)).collect();
    let lr_values: Option<&Vec<String>> = axes.iter().find(|(f, _)| *f == AxisField::Lr).map(|(_, v)| v);

    // Jobs by cell key (values of the cell axes, in order), matched by their labels.
    let mut by_cell: HashMap<Vec<String>, Vec<&JobRecord>> = HashMap::new();
    let mut unmatched = 0;
    'jobs: for job in jobs {
        for (field, values) in &axes {
            match job.spec.labels.get(&field.label()) {
                Some(v) if values.contains(v) => {}
                _ => {
                    unmatched += 1;
                    continue 'jobs;
                }
            }
        }
        let key: Vec<String> = cell_axes.iter().map(|(f, _)| job.spec.labels[&f.label()].clone()).collect();
        by_cell.entry(key).or_default().push(job);
    }

    // Cells in cross-product order, first axis outermost.
    let mut cells = Vec::new();
    let mut idx = vec![0usize; cell_axes.len()];
    loop {
        let key: Vec<String> = cell_axes.iter().zip(&idx).map(|((_, v), &i)| v[i].clone()).collect();
        let values = cell_axes.iter().zip(&key).map(|((f, _), v)| AxisValue { field: *f, value: v.clone() }).collect();
        let cell_jobs = by_cell.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        cells.push(cell_report(values, cell_jobs, lr_values));
        let mut k = cell_axes.len();
        let done = loop {
            if k == 0 {
                break true;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < cell_axes[k].1.len() {
                break false;
            }
            idx[k] = 0;
        };
        if done {
            break;
        }
    }

    let trainable = if cell_axes.iter().any(|(f, _)| *f == AxisField::Depth) {
        trainable_depths(spec, &cells, margin)
    } else {
        Vec::new()
    };
    let claims = claim_checks(&trainable);
    let steps_axis = axes.iter().any(|(f, _)| *f == AxisField::Steps);
    let steps = if steps_axis { None } else { Some(spec.base.steps) };
    let budget = match steps {
        Some(s) => format!("{s} training steps per job (batch {}, optimizer {})", spec.base.batch, spec.base.optimizer),
        None => "the step budget varies: steps is an axis".to_string(),
    };
    let rules = vec![
        format!("step budget: {budget}"),
        "test accuracy and test loss: final figures on the held-out split (test_fraction of the data)".into(),
        if lr_values.is_some() {
            "best lr per cell: the lr with the highest mean test accuracy over seeds (ties: the first listed); \
             the cell's figures are over that lr's finished jobs"
                .into()
        } else {
            "lr is not an axis: the cell's figures are over all its finished jobs".into()
        },
        "std: sample standard deviation over seeds (n - 1), 0 for one job".into(),
        "gradient ratios (first/last hidden layer, measured and mean-field): geometric means over finite positive \
         values; chi1: arithmetic mean"
            .into(),
        format!(
            "trainable depth: the largest depth such that it and every shallower depth have mean test accuracy \
             >= (best mean test accuracy at depth <= {SHALLOW_DEPTH}) - {margin} (absolute); a depth without finished \
             jobs fails; later depths back within the margin are listed as recoveries only"
        ),
        VERDICT_RULE.into(),
        "claims: 'at most c' supported when the trainable depth is within one depth-grid step of c; 'at least c' \
         when it is at least one grid step below c or deeper; 'unbounded' when trainable to the deepest depth \
         swept; a claim is supported when every measured group (e.g. init) supports it, and not measured (never \
         refuted) when no group has a finished shallow result"
            .into(),
    ];
    SweepReport {
        sweep: spec.name.clone(),
        cell_axes: cell_axes.iter().map(|(f, _)| *f).collect(),
        lr_is_axis: lr_values.is_some(),
        margin,
        steps,
        jobs_total: cells.iter().map(|c| c.jobs_total).sum(),
        jobs_finished: cells.iter().map(|c| c.jobs_finished).sum(),
        jobs_unmatched: unmatched,
        cells,
        trainable,
        claims,
        rules,
    }
}

fn cell_report(values: Vec<AxisValue>, jobs: &[&JobRecord], lr_values: Option<&Vec<String>>) -> CellReport {
    let done: Vec<&JobRecord> = jobs.iter().copied().filter(|j| finished(j)).collect();
    let mean_acc = |js: &[&JobRecord]| Stat::of(&js.iter().map(|j| accuracy(j)).collect::<Vec<_>>()).map(|s| s.mean);
    let (best_lr, by_lr, chosen) = match lr_values {
        None => (None, Vec::new(), done),
        Some(lrs) => {
            let mut by_lr = Vec::new();
            let mut best: Option<(usize, f64)> = None;
            let mut groups = Vec::new();
            for (i, lr) in lrs.iter().enumerate() {
                let group: Vec<&JobRecord> =
                    done.iter().copied().filter(|j| j.spec.labels.get(&AxisField::Lr.label()) == Some(lr)).collect();
                let m = mean_acc(&group);
                if let Some(m) = m
                    && best.is_none_or(|(_, b)| m > b)
                {
                    best = Some((i, m));
                }
                by_lr.push(LrResult { lr: lr.clone(), finished: group.len(), mean_test_accuracy: m });
                groups.push(group);
            }
            match best {
                Some((i, _)) => (Some(lrs[i].clone()), by_lr, std::mem::take(&mut groups[i])),
                None => (None, by_lr, Vec::new()),
            }
        }
    };
    let summaries: Vec<_> = chosen.iter().filter_map(|j| j.summary.as_ref()).collect();
    let accs: Vec<f64> = chosen.iter().map(|j| accuracy(j)).collect();
    let losses: Vec<f64> = summaries.iter().map(|s| s.run.test_loss).filter(|l| l.is_finite()).collect();
    let mut verdicts = BTreeMap::new();
    for s in &summaries {
        *verdicts.entry(s.run.verdict.verdict.to_string()).or_insert(0) += 1;
    }
    let mf: Vec<_> = summaries.iter().filter_map(|s| s.mean_field.as_ref()).collect();
    let chi1s: Vec<f64> = mf.iter().map(|m| m.chi1).filter(|c| c.is_finite()).collect();
    CellReport {
        values,
        jobs_total: jobs.len(),
        jobs_finished: jobs.iter().filter(|j| finished(j)).count(),
        best_lr,
        by_lr,
        test_accuracy: Stat::of(&accs),
        test_loss: Stat::of(&losses),
        nonfinite_test_loss: summaries.len() - losses.len(),
        verdicts,
        ratio_at_init_geomean: geometric_mean(summaries.iter().filter_map(|s| s.run.verdict.ratio_at_init)),
        ratio_at_end_geomean: geometric_mean(summaries.iter().filter_map(|s| s.run.verdict.ratio_at_end)),
        predicted_ratio_geomean: geometric_mean(mf.iter().map(|m| m.first_last_ratio)),
        chi1_mean: Stat::of(&chi1s).map(|s| s.mean),
    }
}

/// (depth, mean test accuracy) of one cell.
type DepthAccuracy = (usize, Option<f64>);

fn trainable_depths(spec: &SweepSpec, cells: &[CellReport], margin: f64) -> Vec<TrainableDepth> {
    let mut groups: Vec<(Vec<AxisValue>, Vec<DepthAccuracy>)> = Vec::new();
    for cell in cells {
        let Some(depth) = cell.get(AxisField::Depth).and_then(|d| d.parse::<usize>().ok()) else { continue };
        let key: Vec<AxisValue> = cell.values.iter().filter(|v| v.field != AxisField::Depth).cloned().collect();
        let acc = cell.test_accuracy.map(|s| s.mean);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, points)) => points.push((depth, acc)),
            None => groups.push((key, vec![(depth, acc)])),
        }
    }
    groups
        .into_iter()
        .map(|(group, mut points)| {
            points.sort_by_key(|(d, _)| *d);
            let activation = group
                .iter()
                .find(|v| v.field == AxisField::Activation)
                .map_or_else(|| spec.base.activation.to_string(), |v| v.value.clone());
            trainable_depth(group, activation, &points, margin)
        })
        .collect()
}

/// The trainable depth of one group; `points` sorted by depth.
fn trainable_depth(group: Vec<AxisValue>, activation: String, points: &[DepthAccuracy], margin: f64) -> TrainableDepth {
    let reference = points
        .iter()
        .filter(|(d, _)| *d <= SHALLOW_DEPTH)
        .filter_map(|(_, a)| *a)
        .fold(None, |best: Option<f64>, a| Some(best.map_or(a, |b| b.max(a))));
    let within = |a: Option<f64>| match (reference, a) {
        (Some(r), Some(a)) => a >= r - margin,
        _ => false,
    };
    let points: Vec<DepthPoint> = points
        .iter()
        .map(|&(depth, a)| DepthPoint { depth, mean_test_accuracy: a, within_margin: within(a) })
        .collect();
    let chain = points.iter().take_while(|p| p.within_margin).count();
    let trainable_depth = chain.checked_sub(1).map(|i| points[i].depth);
    let recovered_at = points.iter().skip(chain).filter(|p| p.within_margin).map(|p| p.depth).collect();
    TrainableDepth {
        group,
        activation,
        reference_accuracy: reference,
        deepest_swept: points.last().map_or(0, |p| p.depth),
        points,
        trainable_depth,
        recovered_at,
    }
}

/// Index of the largest grid depth <= x; -1 below the grid.
fn rank(grid: &[usize], x: usize) -> i64 {
    grid.iter().filter(|d| **d <= x).count() as i64 - 1
}

/// Whether a measured trainable depth supports a claim, on a depth grid (sorted).
pub fn claim_supported(claim: ClaimedDepth, measured: Option<usize>, grid: &[usize]) -> bool {
    let m = measured.map_or(-1, |d| rank(grid, d));
    match claim {
        ClaimedDepth::AtMost(c) => (m - rank(grid, c)).abs() <= 1,
        ClaimedDepth::AtLeast(c) => m >= rank(grid, c) - 1,
        ClaimedDepth::Unbounded => measured.is_some() && measured == grid.last().copied(),
    }
}

fn claim_checks(trainable: &[TrainableDepth]) -> Vec<ClaimCheck> {
    let mut out = Vec::new();
    for &(activation, claimed) in CLAIMS {
        let groups: Vec<&TrainableDepth> = trainable.iter().filter(|t| t.activation == activation).collect();
        if groups.is_empty() {
            continue;
        }
        let measured: Vec<MeasuredDepth> = groups
            .iter()
            .map(|t| {
                let grid: Vec<usize> = t.points.iter().map(|p| p.depth).collect();
                MeasuredDepth {
                    group: t.group.iter().filter(|v| v.field != AxisField::Activation).cloned().collect(),
                    trainable_depth: t.trainable_depth,
                    deepest_swept: t.deepest_swept,
                    supported: t.reference_accuracy.map(|_| claim_supported(claimed, t.trainable_depth, &grid)),
                }
            })
            .collect();
        let decided: Vec<bool> = measured.iter().filter_map(|m| m.supported).collect();
        let verdict = match (decided.is_empty(), decided.iter().all(|s| *s)) {
            (true, _) => ClaimVerdict::NotMeasured,
            (false, true) => ClaimVerdict::Supported,
            (false, false) => ClaimVerdict::NotSupported,
        };
        let supported = verdict == ClaimVerdict::Supported;
        let describe = |m: &MeasuredDepth| {
            let g = if m.group.is_empty() { "all".to_string() } else { group_text(&m.group) };
            let d = m.trainable_depth.map_or("none".to_string(), |d| d.to_string());
            let s = match m.supported {
                Some(true) => "supports",
                Some(false) => "contradicts",
                None => "not measured",
            };
            format!("{g}: trainable to {d} of {} ({s})", m.deepest_swept)
        };
        let note = if decided.is_empty() {
            "not measured: no group has a finished shallow (depth <= 2) result to measure against".to_string()
        } else {
            measured.iter().map(describe).collect::<Vec<_>>().join("; ")
        };
        out.push(ClaimCheck { activation: activation.to_string(), claimed, measured, supported, verdict, note });
    }
    out
}

/// "activation=tanh init=lecun_normal".
pub fn group_text(values: &[AxisValue]) -> String {
    values.iter().map(|v| format!("{}={}", v.field, v.value)).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn opt<T>(x: Option<T>, f: impl Fn(T) -> String) -> String {
    x.map_or_else(String::new, f)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Markdown table cells cannot hold a bare `|`.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// "0.9712 ± 0.0040 (n=3)"; one value has no spread to show: "0.9712 (n=1)".
fn mean_spread(mean: f64, std: f64, n: usize) -> String {
    if n > 1 { format!("{mean:.4} ± {std:.4} (n={n})") } else { format!("{mean:.4} (n={n})") }
}

impl SweepReport {
    /// The columns of [`Self::to_csv`].
    pub fn csv_header(&self) -> Vec<String> {
        let mut h: Vec<String> = self.cell_axes.iter().map(|f| f.to_string()).collect();
        for c in [
            "best_lr",
            "jobs_finished",
            "jobs_total",
            "n",
            "test_accuracy_mean",
            "test_accuracy_std",
            "test_loss_mean",
            "test_loss_std",
            "nonfinite_test_loss",
        ] {
            h.push(c.into());
        }
        h.extend(Verdict::ALL.iter().map(|v| format!("verdict_{v}")));
        for c in ["ratio_at_init_geomean", "ratio_at_end_geomean", "predicted_ratio_geomean", "chi1_mean"] {
            h.push(c.into());
        }
        h
    }

    /// One row per cell, with a header; empty fields for figures that do not exist.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |fields: Vec<String>| fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\n";
        out.push_str(&line(self.csv_header()));
        for c in &self.cells {
            let mut row: Vec<String> = c.values.iter().map(|v| v.value.clone()).collect();
            row.push(c.best_lr.clone().unwrap_or_default());
            row.push(c.jobs_finished.to_string());
            row.push(c.jobs_total.to_string());
            row.push(c.test_accuracy.map_or(0, |s| s.n).to_string());
            row.push(opt(c.test_accuracy, |s| s.mean.to_string()));
            row.push(opt(c.test_accuracy, |s| s.std.to_string()));
            row.push(opt(c.test_loss, |s| s.mean.to_string()));
            row.push(opt(c.test_loss, |s| s.std.to_string()));
            row.push(c.nonfinite_test_loss.to_string());
            row.extend(Verdict::ALL.iter().map(|v| c.verdicts.get(v.as_str()).copied().unwrap_or(0).to_string()));
            row.push(opt(c.ratio_at_init_geomean, |x| x.to_string()));
            row.push(opt(c.ratio_at_end_geomean, |x| x.to_string()));
            row.push(opt(c.predicted_ratio_geomean, |x| x.to_string()));
            row.push(opt(c.chi1_mean, |x| x.to_string()));
            out.push_str(&line(row));
        }
        out
    }

    /// A human report: the rules, the cells, trainable depths and claim checks.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Sweep {}\n", md(&self.sweep));
        let _ = writeln!(
            s,
            "{} jobs, {} finished{}. Margin {} (absolute test accuracy); step budget: {}.\n",
            self.jobs_total,
            self.jobs_finished,
            if self.jobs_unmatched > 0 { format!(", {} unmatched", self.jobs_unmatched) } else { String::new() },
            self.margin,
            self.steps.map_or("varies (steps is an axis)".to_string(), |s| format!("{s} steps")),
        );
        let _ = writeln!(s, "## Rules\n");
        for r in &self.rules {
            let _ = writeln!(s, "- {}", md(r));
        }
        let _ = writeln!(s, "\n## Cells\n");
        if self.lr_is_axis {
            let _ = writeln!(
                s,
                "Test accuracy, loss and verdicts are over the best lr's jobs; done/total counts every lr.\n"
            );
        }
        let mut head: Vec<String> = self.cell_axes.iter().map(|f| f.to_string()).collect();
        if self.lr_is_axis {
            head.push("best lr".into());
        }
        head.extend(
            ["done/total", "test acc (mean ± std)", "test loss (mean ± std)", "verdicts", "ratio init", "ratio end"]
                .map(String::from),
        );
        head.extend(["predicted ratio", "chi1"].map(String::from));
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
        for c in &self.cells {
            let mut row: Vec<String> = c.values.iter().map(|v| md(&v.value)).collect();
            if self.lr_is_axis {
                row.push(c.best_lr.clone().unwrap_or_else(|| "-".into()));
            }
            row.push(format!("{}/{}", c.jobs_finished, c.jobs_total));
            row.push(c.test_accuracy.map_or("-".into(), |a| mean_spread(a.mean, a.std, a.n)));
            row.push(c.test_loss.map_or("-".into(), |l| mean_spread(l.mean, l.std, l.n)));
            let verdicts: Vec<String> = c.verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
            row.push(if verdicts.is_empty() { "-".into() } else { verdicts.join(", ") });
            for r in [c.ratio_at_init_geomean, c.ratio_at_end_geomean, c.predicted_ratio_geomean] {
                row.push(r.map_or("-".into(), |r| format!("{r:.3e}")));
            }
            row.push(c.chi1_mean.map_or("-".into(), |x| format!("{x:.4}")));
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        if !self.trainable.is_empty() {
            let _ = writeln!(s, "\n## Trainable depth\n");
            let _ = writeln!(
                s,
                "Largest depth such that it and every shallower depth reach the best shallow (depth <= {SHALLOW_DEPTH}) \
                 mean test accuracy minus {}.\n",
                self.margin
            );
            let _ = writeln!(s, "| group | reference acc | trainable depth | deepest swept | recovered at |");
            let _ = writeln!(s, "|---|---|---|---|---|");
            for t in &self.trainable {
                let recovered: Vec<String> = t.recovered_at.iter().map(|d| d.to_string()).collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    md(&if t.group.is_empty() { format!("activation={}", t.activation) } else { group_text(&t.group) }),
                    t.reference_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
                    t.trainable_depth.map_or("none".into(), |d| d.to_string()),
                    t.deepest_swept,
                    if recovered.is_empty() { "-".into() } else { recovered.join(", ") },
                );
            }
        }
        if !self.claims.is_empty() {
            let _ = writeln!(s, "\n## Claims of the post\n");
            let _ = writeln!(s, "| activation | claimed depth | measured | supported |");
            let _ = writeln!(s, "|---|---|---|---|");
            for c in &self.claims {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    c.activation,
                    c.claimed,
                    md(&c.note),
                    match c.verdict {
                        ClaimVerdict::Supported => "yes",
                        ClaimVerdict::NotSupported => "no",
                        ClaimVerdict::NotMeasured => "not measured",
                    }
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::train::Summary;
    use crate::engine::verdict::VerdictReport;
    use crate::runner::model::{JobId, JobSummary, MeanFieldSummary};

    fn base() -> JobSpec {
        JobSpec { hidden: vec![16; 3], steps: 100, ..Default::default() }
    }

    fn sweep(axes: Vec<Axis>) -> SweepSpec {
        SweepSpec { name: "t".into(), base: base(), axes }
    }

    fn label(job: &JobSpec, f: AxisField) -> &str {
        job.labels[&f.label()].as_str()
    }

    #[test]
    fn axis_field_names_round_trip_and_unknown_lists_known() {
        for f in AxisField::ALL {
            assert_eq!(f.to_string().parse::<AxisField>().unwrap(), f);
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<AxisField>(&json).unwrap(), f);
        }
        assert_eq!("Sigma-W".parse::<AxisField>().unwrap(), AxisField::SigmaW);
        let e = "depht".parse::<AxisField>().unwrap_err();
        assert!(e.contains("depht") && e.contains("output_activation") && e.contains("sigma_b"), "{e}");
        let e = serde_json::from_str::<Axis>(r#"{"field": "widht", "values": []}"#).unwrap_err().to_string();
        assert!(e.contains("known: activation"), "{e}");
    }

    #[test]
    fn expansion_order_is_first_axis_outermost() {
        let s = sweep(vec![
            Axis::new(AxisField::Activation, &["tanh", "relu"]),
            Axis::new(AxisField::Depth, &["1", "2", "3"]),
            Axis::new(AxisField::Seed, &["7", "8"]),
        ]);
        let jobs = s.expand(100).unwrap();
        assert_eq!(jobs.len(), 12);
        let got: Vec<(String, usize, u64)> =
            jobs.iter().map(|j| (j.activation.to_string(), j.depth(), j.seed)).collect();
        let mut want = Vec::new();
        for a in ["tanh", "ramp"] {
            for d in [1, 2, 3] {
                for seed in [7, 8] {
                    want.push((a.to_string(), d, seed));
                }
            }
        }
        assert_eq!(got, want);
        // Depth keeps the base width; everything else is the base's.
        assert!(jobs.iter().all(|j| j.hidden.iter().all(|w| *w == 16)));
        assert!(jobs.iter().all(|j| j.steps == 100 && j.lr == 0.05));
        assert_eq!(jobs, s.expand(12).unwrap(), "deterministic");
    }

    #[test]
    fn labels_and_names_use_canonical_values() {
        let mut s = sweep(vec![
            Axis::new(AxisField::Activation, &["relu"]),
            Axis::new(AxisField::Lr, &["1e-1", "0.3"]),
            Axis::new(AxisField::Width, &["8"]),
        ]);
        s.base.labels.insert("owner".into(), "me".into());
        let jobs = s.expand(10).unwrap();
        assert_eq!(jobs[0].name, "t activation=ramp lr=0.1 width=8");
        assert_eq!(jobs[1].name, "t activation=ramp lr=0.3 width=8");
        assert_eq!(label(&jobs[0], AxisField::Activation), "ramp");
        assert_eq!(label(&jobs[0], AxisField::Lr), "0.1");
        assert_eq!(label(&jobs[1], AxisField::Width), "8");
        assert_eq!(jobs[0].labels.len(), 4, "base labels kept: {:?}", jobs[0].labels);
        assert_eq!(jobs[0].labels["owner"], "me");
        // Width keeps the base depth.
        assert_eq!(jobs[0].hidden, vec![8; 3]);
        s.name.clear();
        assert_eq!(s.expand(10).unwrap()[0].name, "activation=ramp lr=0.1 width=8");
    }

    #[test]
    fn depth_and_width_combine_and_every_field_applies() {
        let s = sweep(vec![
            Axis::new(AxisField::Depth, &["5"]),
            Axis::new(AxisField::Width, &["7"]),
            Axis::new(AxisField::Init, &["xavier_normal"]),
            Axis::new(AxisField::Optimizer, &["adam"]),
            Axis::new(AxisField::Batch, &["8"]),
            Axis::new(AxisField::Loss, &["mse"]),
            Axis::new(AxisField::OutputActivation, &["logistic"]),
            Axis::new(AxisField::Steps, &["9"]),
        ]);
        let j = &s.expand(1).unwrap()[0];
        assert_eq!(j.hidden, vec![7; 5]);
        assert_eq!(j.init, Init::XavierNormal);
        assert!(matches!(j.optimizer, Optimizer::Adam { .. }));
        assert_eq!((j.batch, j.steps, j.loss), (8, 9, Loss::Mse));
        assert_eq!(j.output_activation, Activation::Logistic);
    }

    #[test]
    fn sigma_axes_make_the_init_custom_and_combine() {
        let both =
            sweep(vec![Axis::new(AxisField::SigmaW, &["1.5", "2"]), Axis::new(AxisField::SigmaB, &["0", "0.05"])]);
        let inits: Vec<Init> = both.expand(4).unwrap().iter().map(|j| j.init).collect();
        assert_eq!(
            inits,
            vec![
                Init::Custom { sigma_w: 1.5, sigma_b: 0.0 },
                Init::Custom { sigma_w: 1.5, sigma_b: 0.05 },
                Init::Custom { sigma_w: 2.0, sigma_b: 0.0 },
                Init::Custom { sigma_w: 2.0, sigma_b: 0.05 },
            ]
        );
        // The other sigma comes from the base init: lecun_normal is (1, 0), a custom base its own.
        let only_w = sweep(vec![Axis::new(AxisField::SigmaW, &["2"])]);
        assert_eq!(only_w.expand(1).unwrap()[0].init, Init::Custom { sigma_w: 2.0, sigma_b: 0.0 });
        let mut only_b = sweep(vec![Axis::new(AxisField::SigmaB, &["0.1"])]);
        only_b.base.init = Init::Custom { sigma_w: 1.3, sigma_b: 0.5 };
        assert_eq!(only_b.expand(1).unwrap()[0].init, Init::Custom { sigma_w: 1.3, sigma_b: 0.1 });
    }

    fn err(s: &SweepSpec, max: usize) -> FieldError {
        s.expand(max).unwrap_err()
    }

    #[test]
    fn shape_errors() {
        let e = err(&sweep(vec![]), 10);
        assert_eq!(e.field, "axes");
        let e = err(&sweep(vec![Axis::new(AxisField::Lr, &[])]), 10);
        assert_eq!(e.to_string(), "axes.lr: has no values");
        let e = err(&sweep(vec![Axis::new(AxisField::Lr, &["0.1"]), Axis::new(AxisField::Lr, &["0.2"])]), 10);
        assert_eq!(e.to_string(), "axes.lr: appears more than once");
        let e = err(&sweep(vec![Axis::new(AxisField::Init, &["he_normal"]), Axis::new(AxisField::SigmaB, &["0"])]), 10);
        assert_eq!(e.field, "axes.init");
        assert!(e.problem.contains("sigma_w or sigma_b"), "{e}");
    }

    #[test]
    fn size_is_checked_before_anything_is_built_or_parsed() {
        // 10^12 jobs of unparseable values: only the size can be reported, and promptly.
        let many: Vec<String> = (0..10_000).map(|i| format!("bad{i}")).collect();
        let axis = |f| Axis { field: f, values: many.clone() };
        let s = sweep(vec![axis(AxisField::Lr), axis(AxisField::Seed), axis(AxisField::Batch)]);
        let e = err(&s, 1000);
        assert_eq!(e.field, "axes");
        assert!(e.problem.contains("1000000000000") && e.problem.contains("1000"), "{e}");
        // Exactly at the limit is fine, one over is not.
        let s = sweep(vec![Axis::new(AxisField::Seed, &["1", "2"]), Axis::new(AxisField::Lr, &["0.1", "0.2"])]);
        assert_eq!(s.expand(4).unwrap().len(), 4);
        let e = err(&s, 3);
        assert!(e.problem.contains("4 jobs") && e.problem.contains("limit of 3"), "{e}");
    }

    #[test]
    fn value_errors_name_axis_value_and_field() {
        let e = err(&sweep(vec![Axis::new(AxisField::Lr, &["0.1", "-1"])]), 10);
        assert_eq!(e.to_string(), "axes.lr: value \"-1\": lr: must be a finite number > 0, got -1");
        let e = err(&sweep(vec![Axis::new(AxisField::Lr, &["fast"])]), 10);
        assert_eq!(e.to_string(), "axes.lr: value \"fast\": not a number");
        let e = err(&sweep(vec![Axis::new(AxisField::Activation, &["tanh", "sigmoidish"])]), 10);
        assert_eq!(e.field, "axes.activation");
        assert!(e.problem.starts_with("value \"sigmoidish\": unknown activation"), "{e}");
        let e = err(&sweep(vec![Axis::new(AxisField::Depth, &["2", "0"])]), 10);
        assert_eq!(e.field, "axes.depth");
        assert!(e.problem.starts_with("value \"0\": hidden: needs at least one hidden layer"), "{e}");
        let e = err(&sweep(vec![Axis::new(AxisField::Batch, &["0"])]), 10);
        assert_eq!(e.to_string(), "axes.batch: value \"0\": batch: must be at least 1");
        let e = err(&sweep(vec![Axis::new(AxisField::SigmaW, &["-2"])]), 10);
        assert_eq!(e.field, "axes.sigma_w");
        assert!(e.problem.contains("\"-2\": init:"), "{e}");
        let e = err(&sweep(vec![Axis::new(AxisField::Init, &["custom:x,1"])]), 10);
        assert_eq!(e.field, "axes.init");
        let e = err(&sweep(vec![Axis::new(AxisField::Steps, &["1e3"])]), 10);
        assert_eq!(e.to_string(), "axes.steps: value \"1e3\": not a non-negative integer");
        let e = err(&sweep(vec![Axis::new(AxisField::Optimizer, &["sgd", "lbfgs"])]), 10);
        assert_eq!(e.field, "axes.optimizer");
        let e = err(&sweep(vec![Axis::new(AxisField::Loss, &["hinge"])]), 10);
        assert_eq!(e.field, "axes.loss");
        // Repeats, after canonicalisation.
        let e = err(&sweep(vec![Axis::new(AxisField::Activation, &["ramp", "relu"])]), 10);
        assert_eq!(e.to_string(), "axes.activation: value \"relu\" repeats \"ramp\"");
        let e = err(&sweep(vec![Axis::new(AxisField::Lr, &["0.1", "0.10"])]), 10);
        assert_eq!(e.field, "axes.lr");
        // Both depth and width set the bad field.
        let e = err(&sweep(vec![Axis::new(AxisField::Depth, &["2"]), Axis::new(AxisField::Width, &["0"])]), 10);
        assert_eq!(e.field, "axes.depth+width");
        assert!(e.problem.starts_with("values \"2\", \"0\": hidden:"), "{e}");
        // A bad base field that no axis sets.
        let mut s = sweep(vec![Axis::new(AxisField::Seed, &["1"])]);
        s.base.test_fraction = 1.5;
        assert_eq!(err(&s, 10).field, "base.test_fraction");
        // No base width for a depth axis.
        let mut s = sweep(vec![Axis::new(AxisField::Depth, &["2"])]);
        s.base.hidden.clear();
        assert_eq!(err(&s, 10).field, "axes.depth");
        // But a width axis supplies it.
        s.axes.push(Axis::new(AxisField::Width, &["4"]));
        assert_eq!(s.expand(10).unwrap()[0].hidden, vec![4, 4]);
    }

    #[test]
    fn sweep_spec_round_trips_through_json() {
        let s = preset("seed-claims").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""field":"activation""#), "{json}");
        assert_eq!(serde_json::from_str::<SweepSpec>(&json).unwrap(), s);
    }

    #[test]
    fn presets_expand_and_validate() {
        for (name, want) in [("seed-claims", 1296), ("seed-claims-mini", 288), ("edge-of-chaos", 80)] {
            let s = preset(name).unwrap();
            assert_eq!(s.name, name);
            let jobs = s.expand(10_000).unwrap();
            assert_eq!(jobs.len(), want, "{name}");
            assert!(PRESETS.iter().any(|(n, d)| *n == name && !d.is_empty()));
        }
        let claims = preset("seed-claims").unwrap().expand(2000).unwrap();
        assert!(claims.iter().all(|j| j.steps == SEED_CLAIMS_STEPS && j.eval_every == 250 && j.batch == 32));
        assert!(claims.iter().all(|j| j.hidden.iter().all(|w| *w == 32) && j.test_fraction == 0.25));
        assert_eq!(claims[0].activation, Activation::Logistic);
        assert_eq!(claims.last().unwrap().activation, Activation::Semisigmoid);
        assert_eq!(claims.last().unwrap().depth(), 16);
        let eoc = preset("edge-of-chaos").unwrap().expand(100).unwrap();
        assert_eq!(eoc[0].init, Init::Custom { sigma_w: 0.5, sigma_b: 0.05 });
        assert!(eoc.iter().all(|j| j.activation == Activation::Tanh && j.hidden[0] == 64));
        assert_eq!(eoc.last().unwrap().depth(), 32);
        let mini = preset("seed-claims-mini").unwrap().expand(300).unwrap();
        assert!(mini.iter().all(|j| j.steps == SEED_CLAIMS_STEPS && j.seed == 1 && (j.lr == 0.1 || j.lr == 0.03)));
        assert!(
            mini.iter().all(|j| claims.iter().any(|c| c.name.replace("seed-claims", "seed-claims-mini") == j.name))
        );
        let e = preset("nope").unwrap_err();
        assert!(e.problem.contains("seed-claims-mini"), "{e}");
    }

    // --- the report ---

    struct Outcome {
        acc: f64,
        loss: f64,
        verdict: Verdict,
        r_init: Option<f64>,
        r_end: Option<f64>,
        mf: Option<(f64, f64)>,
    }

    fn ok(acc: f64) -> Outcome {
        Outcome { acc, loss: 1.0 - acc, verdict: Verdict::Healthy, r_init: None, r_end: None, mf: None }
    }

    fn record(id: i64, spec: JobSpec, out: Option<Outcome>) -> JobRecord {
        let summary = out.map(|o| JobSummary {
            run: Summary {
                steps_done: spec.steps,
                train_loss: o.loss,
                train_accuracy: o.acc,
                test_loss: o.loss,
                test_accuracy: o.acc,
                verdict: VerdictReport {
                    verdict: o.verdict,
                    reason: String::new(),
                    ratio_at_init: o.r_init,
                    ratio_at_end: o.r_end,
                    nonfinite_seen: false,
                },
                stopped_early: false,
            },
            mean_field: o.mf.map(|(ratio, chi1)| MeanFieldSummary {
                sigma_w: 1.0,
                sigma_b: 0.0,
                q_star: None,
                fixed_point: "drifts_to_zero".into(),
                chi1,
                regime: "ordered".into(),
                depth_scale: 1.0,
                first_last_ratio: ratio,
                layer_ratios: vec![],
            }),
        });
        JobRecord {
            id: JobId(id),
            sweep_id: Some(1),
            state: if summary.is_some() { JobState::Succeeded } else { JobState::Failed },
            steps_done: spec.steps,
            spec,
            created_ms: 0,
            started_ms: None,
            finished_ms: None,
            summary,
            error: None,
            owner: None,
            attempt: 1,
            resumed_from: None,
            fork_of: None,
        }
    }

    /// Records for every expanded job, outcomes from `f`.
    fn records(s: &SweepSpec, f: impl Fn(&JobSpec) -> Option<Outcome>) -> Vec<JobRecord> {
        s.expand(10_000).unwrap().into_iter().enumerate().map(|(i, j)| record(i as i64, j.clone(), f(&j))).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn a_claim_nothing_measured_is_not_measured_never_refuted() {
        let s = sweep(vec![
            Axis::new(AxisField::Activation, &["tanh", "ramp"]),
            Axis::new(AxisField::Depth, &["1", "2", "3", "4", "8"]),
        ]);
        // Cancelled before anything finished: no job has a result.
        let none = report(&s, &records(&s, |_| None), 0.05);
        assert_eq!(none.claims.len(), 2);
        for c in &none.claims {
            assert_eq!((c.verdict, c.supported), (ClaimVerdict::NotMeasured, false), "{c:?}");
            assert!(c.note.starts_with("not measured"), "{}", c.note);
        }
        // Only the deep jobs finished: still no shallow reference to measure against.
        let deep_only = records(&s, |j| (j.depth() == 8).then(|| ok(0.9)));
        assert!(report(&s, &deep_only, 0.05).claims.iter().all(|c| c.verdict == ClaimVerdict::NotMeasured));
        // Everything finished, every depth trainable: tanh's "at most 2" is refuted, ramp's holds.
        let all = records(&s, |_| Some(ok(0.9)));
        let r = report(&s, &all, 0.05);
        let v = |a: &str| r.claims.iter().find(|c| c.activation == a).unwrap().verdict;
        assert_eq!((v("tanh"), v("ramp")), (ClaimVerdict::NotSupported, ClaimVerdict::Supported));
    }

    #[test]
    fn aggregation_matches_hand_computed_figures() {
        let s = sweep(vec![Axis::new(AxisField::Depth, &["1", "2"]), Axis::new(AxisField::Seed, &["1", "2", "3"])]);
        let jobs = records(&s, |j| {
            let (acc, loss, verdict) = match (j.depth(), j.seed) {
                (1, 1) => (0.9, 0.3, Verdict::Healthy),
                (1, 2) => (0.8, 0.5, Verdict::Healthy),
                (1, 3) => (0.7, f64::INFINITY, Verdict::Exploding),
                (2, 1) => (0.5, 1.0, Verdict::Vanishing),
                (2, 2) => (0.6, 2.0, Verdict::Vanishing),
                _ => return None, // failed
            };
            Some(Outcome {
                acc,
                loss,
                verdict,
                r_init: Some([2.0, 8.0, 4.0][j.seed as usize - 1]),
                r_end: Some(if j.seed == 1 { 1e-6 } else { 0.0 }),
                mf: Some((100.0_f64.powi(j.seed as i32), 0.5 * j.seed as f64)),
            })
        });
        let r = report(&s, &jobs, 0.05);
        assert_eq!((r.jobs_total, r.jobs_finished, r.jobs_unmatched), (6, 5, 0));
        assert_eq!(r.cell_axes, vec![AxisField::Depth]);
        assert!(!r.lr_is_axis);
        let c1 = &r.cells[0];
        assert_eq!(c1.values, vec![AxisValue { field: AxisField::Depth, value: "1".into() }]);
        assert_eq!((c1.jobs_finished, c1.jobs_total), (3, 3));
        let acc = c1.test_accuracy.unwrap();
        assert_eq!(acc.n, 3);
        assert!(close(acc.mean, 0.8), "{acc:?}");
        // Sample std of 0.9, 0.8, 0.7: sqrt((0.01 + 0 + 0.01) / 2) = 0.1.
        assert!(close(acc.std, 0.1), "{acc:?}");
        // Loss over the finite ones: 0.3, 0.5 -> mean 0.4, std sqrt(0.02) .
        let loss = c1.test_loss.unwrap();
        assert_eq!(loss.n, 2);
        assert!(close(loss.mean, 0.4) && close(loss.std, 0.02f64.sqrt()), "{loss:?}");
        assert_eq!(c1.nonfinite_test_loss, 1);
        assert_eq!(c1.verdicts, BTreeMap::from([("exploding".to_string(), 1), ("healthy".to_string(), 2)]));
        // Geometric mean of 2, 8, 4 = 64^(1/3) = 4 (the arithmetic one would be 14/3); ratio_at_end: 1e-6 and two zeros (skipped).
        assert!(close(c1.ratio_at_init_geomean.unwrap(), 4.0));
        assert!(close(c1.ratio_at_end_geomean.unwrap(), 1e-6));
        // Predicted: 100, 1e4, 1e6 -> 1e4; chi1 0.5, 1.0, 1.5 -> 1.0.
        assert!(close(c1.predicted_ratio_geomean.unwrap(), 1e4));
        assert!(close(c1.chi1_mean.unwrap(), 1.0));
        let c2 = &r.cells[1];
        assert_eq!((c2.jobs_finished, c2.jobs_total), (2, 3));
        let acc = c2.test_accuracy.unwrap();
        assert!(close(acc.mean, 0.55) && close(acc.std, 0.005f64.sqrt()), "{acc:?}");
        assert_eq!(c2.verdicts["vanishing"], 2);
        // A job of another sweep is unmatched.
        let mut stray = jobs[0].clone();
        stray.spec.labels.insert(AxisField::Depth.label(), "99".into());
        assert_eq!(report(&s, &[stray], 0.05).jobs_unmatched, 1);
        // The report round-trips through JSON.
        // (serde_json's default float parsing may differ from the original in the last bit.)
        let json = serde_json::to_string(&r).unwrap();
        let back = serde_json::from_str::<SweepReport>(&json).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::from_str::<serde_json::Value>(&json).unwrap());
        assert_eq!((back.cells.len(), &back.claims), (2, &r.claims));
    }

    #[test]
    fn best_lr_is_the_highest_mean_accuracy_over_seeds() {
        let s = sweep(vec![
            Axis::new(AxisField::Activation, &["tanh"]),
            Axis::new(AxisField::Lr, &["0.01", "0.1", "1"]),
            Axis::new(AxisField::Seed, &["1", "2"]),
        ]);
        let jobs = records(&s, |j| {
            // lr 0.01: 0.7, 0.7 -> 0.7; lr 0.1: 0.95, 0.55 -> 0.75 (best, despite lr 1's single best
            // seed); lr 1: 0.99 and a failed job.
            match (j.lr, j.seed) {
                (0.01, _) => Some(ok(0.7)),
                (0.1, 1) => Some(ok(0.95)),
                (0.1, _) => Some(ok(0.55)),
                (_, 1) => Some(ok(0.99)),
                _ => None,
            }
        });
        let r = report(&s, &jobs, 0.05);
        assert!(r.lr_is_axis);
        let c = &r.cells[0];
        assert_eq!(r.cells.len(), 1);
        // lr 1 has mean 0.99 over its one finished job: it is the best.
        assert_eq!(c.best_lr.as_deref(), Some("1"));
        assert_eq!(c.test_accuracy.unwrap().n, 1);
        assert_eq!((c.jobs_finished, c.jobs_total), (5, 6));
        assert_eq!(c.by_lr.iter().map(|l| l.finished).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert!(close(c.by_lr[1].mean_test_accuracy.unwrap(), 0.75));
        // Without the lr 1 result, lr 0.1 wins with mean 0.75 over 0.7.
        let jobs: Vec<JobRecord> = jobs.into_iter().filter(|j| j.spec.lr != 1.0).collect();
        let c = report(&s, &jobs, 0.05).cells.remove(0);
        assert_eq!(c.best_lr.as_deref(), Some("0.1"));
        let acc = c.test_accuracy.unwrap();
        assert!(close(acc.mean, 0.75) && close(acc.std, (0.08f64).sqrt()), "{acc:?}");
        // Ties go to the lr listed first; nothing finished: no best lr.
        let tie = records(&s, |_| Some(ok(0.5)));
        assert_eq!(report(&s, &tie, 0.05).cells[0].best_lr.as_deref(), Some("0.01"));
        let none = records(&s, |_| None);
        let c = report(&s, &none, 0.05).cells.remove(0);
        assert_eq!((c.best_lr, c.test_accuracy, c.jobs_finished, c.jobs_total), (None, None, 0, 6));
    }

    /// A table of mean accuracies by (activation, init, depth) for depths 1,2,4,8,16.
    fn depth_table() -> (SweepSpec, Vec<JobRecord>) {
        let s = sweep(vec![
            Axis::new(AxisField::Activation, &["tanh", "ramp", "softsign", "logsig"]),
            Axis::new(AxisField::Depth, &["1", "2", "4", "8", "16"]),
            Axis::new(AxisField::Init, &["lecun_normal", "xavier_normal"]),
        ]);
        let jobs = records(&s, |j| {
            let xavier = j.init == Init::XavierNormal;
            let acc = match (j.activation, j.depth()) {
                // tanh: fails at 4 (0.80 < 0.93 - 0.05), recovers at 16: trainable 2, recovered [16].
                (Activation::Tanh, 1) => 0.93,
                (Activation::Tanh, 2) => 0.92,
                (Activation::Tanh, 4) => 0.80,
                (Activation::Tanh, 8) => 0.10,
                (Activation::Tanh, _) => 0.90,
                // ramp: all within 0.05 of 0.95 (0.90 is exactly at the edge): trainable to 16.
                (Activation::Ramp, 16) => 0.90,
                (Activation::Ramp, _) => 0.95,
                // softsign: lecun trains to 8, xavier to 4.
                (Activation::Softsign, d) if d <= 4 => 0.9,
                (Activation::Softsign, 8) if !xavier => 0.88,
                (Activation::Softsign, _) => 0.3,
                // logsig: the reference is depth 2's 0.9 (depth 1 only 0.8), so depth 1 itself
                // fails: no trainable depth.
                (Activation::Logsig, 1) => 0.8,
                (Activation::Logsig, _) => 0.9,
                _ => unreachable!(),
            };
            Some(ok(acc))
        });
        (s, jobs)
    }

    #[test]
    fn trainable_depth_from_a_known_table() {
        let (s, jobs) = depth_table();
        let r = report(&s, &jobs, 0.05);
        assert_eq!(r.trainable.len(), 8);
        let find = |act: &str, init: &str| {
            r.trainable
                .iter()
                .find(|t| t.activation == act && t.group.iter().any(|v| v.field == AxisField::Init && v.value == init))
                .unwrap()
        };
        let tanh = find("tanh", "lecun_normal");
        assert_eq!(tanh.group.len(), 2, "grouped by activation and init: {:?}", tanh.group);
        assert!(close(tanh.reference_accuracy.unwrap(), 0.93));
        assert_eq!(tanh.trainable_depth, Some(2));
        assert_eq!(tanh.recovered_at, vec![16]);
        assert_eq!(tanh.points.iter().map(|p| p.within_margin).collect::<Vec<_>>(), [true, true, false, false, true]);
        assert_eq!(tanh.deepest_swept, 16);
        let ramp = find("ramp", "xavier_normal");
        assert_eq!((ramp.trainable_depth, ramp.recovered_at.clone()), (Some(16), vec![]));
        assert_eq!(find("softsign", "lecun_normal").trainable_depth, Some(8));
        assert_eq!(find("softsign", "xavier_normal").trainable_depth, Some(4));
        let logsig = find("logsig", "lecun_normal");
        assert_eq!(logsig.trainable_depth, None);
        assert_eq!(logsig.recovered_at, vec![2, 4, 8, 16]);
        // A wider margin lets tanh through 4 (0.80 >= 0.93 - 0.15) but not 8.
        let wide = report(&s, &jobs, 0.15);
        assert_eq!(wide.trainable[0].trainable_depth, Some(4));
        assert_eq!(wide.margin, 0.15);
        // A depth without finished jobs breaks the chain.
        let holed: Vec<JobRecord> =
            jobs.iter().filter(|j| !(j.spec.activation == Activation::Ramp && j.spec.depth() == 4)).cloned().collect();
        let r = report(&s, &holed, 0.05);
        let ramp = r.trainable.iter().find(|t| t.activation == "ramp").unwrap();
        assert_eq!((ramp.trainable_depth, ramp.recovered_at.clone()), (Some(2), vec![8, 16]));
        // No shallow depth in the grid: no reference, no trainable depth.
        let deep = sweep(vec![Axis::new(AxisField::Depth, &["4", "8"])]);
        let r = report(&deep, &records(&deep, |_| Some(ok(0.9))), 0.05);
        assert_eq!(r.trainable[0].activation, "tanh", "the base's activation");
        assert_eq!((r.trainable[0].reference_accuracy, r.trainable[0].trainable_depth), (None, None));
    }

    #[test]
    fn claim_rule_on_a_grid() {
        let grid = [1, 2, 3, 4, 6, 8, 12, 16];
        let at_most_2 = ClaimedDepth::AtMost(2);
        assert!(claim_supported(at_most_2, Some(1), &grid));
        assert!(claim_supported(at_most_2, Some(2), &grid));
        assert!(claim_supported(at_most_2, Some(3), &grid));
        assert!(!claim_supported(at_most_2, Some(4), &grid));
        assert!(!claim_supported(at_most_2, None, &grid));
        // A claim between grid depths ranks with the grid depth below it.
        assert!(claim_supported(ClaimedDepth::AtMost(5), Some(6), &grid));
        assert!(!claim_supported(ClaimedDepth::AtMost(5), Some(8), &grid));
        let at_least_8 = ClaimedDepth::AtLeast(8);
        assert!(claim_supported(at_least_8, Some(6), &grid));
        assert!(claim_supported(at_least_8, Some(16), &grid));
        assert!(!claim_supported(at_least_8, Some(4), &grid));
        assert!(claim_supported(ClaimedDepth::Unbounded, Some(16), &grid));
        assert!(!claim_supported(ClaimedDepth::Unbounded, Some(12), &grid));
        assert!(!claim_supported(ClaimedDepth::Unbounded, None, &grid));
    }

    #[test]
    fn claim_checks_on_a_synthetic_table() {
        let (s, jobs) = depth_table();
        let r = report(&s, &jobs, 0.05);
        let names: Vec<&str> = r.claims.iter().map(|c| c.activation.as_str()).collect();
        assert_eq!(names, ["tanh", "softsign", "logsig", "ramp"], "claims table order, measured only");
        let claim = |a: &str| r.claims.iter().find(|c| c.activation == a).unwrap();
        // tanh trains to 2 under both inits (the recovery at 16 does not count): supported.
        let tanh = claim("tanh");
        assert_eq!(tanh.claimed, ClaimedDepth::AtMost(2));
        assert_eq!(tanh.measured.len(), 2);
        assert_eq!(tanh.measured[0].group, vec![AxisValue { field: AxisField::Init, value: "lecun_normal".into() }]);
        assert!(tanh.supported, "{}", tanh.note);
        // softsign, claimed 4 on the grid 1,2,4,8,16: lecun's 8 and xavier's 4 are both within a step.
        let softsign = claim("softsign");
        assert_eq!(softsign.measured.iter().map(|m| m.trainable_depth).collect::<Vec<_>>(), [Some(8), Some(4)]);
        assert!(softsign.supported, "{}", softsign.note);
        // logsig never trains (depth 1 fails): contradicts "8 or more".
        let logsig = claim("logsig");
        assert!(!logsig.supported);
        assert!(logsig.note.contains("trainable to none of 16 (contradicts)"), "{}", logsig.note);
        assert!(claim("ramp").supported);
        // One init contradicting makes the claim unsupported.
        let (s, mut jobs) = depth_table();
        for j in &mut jobs {
            if j.spec.activation == Activation::Ramp && j.spec.init == Init::XavierNormal && j.spec.depth() == 16 {
                j.summary.as_mut().unwrap().run.test_accuracy = 0.1;
            }
        }
        let r = report(&s, &jobs, 0.05);
        let ramp = r.claims.iter().find(|c| c.activation == "ramp").unwrap();
        assert_eq!(ramp.measured.iter().map(|m| m.supported).collect::<Vec<_>>(), [Some(true), Some(false)]);
        assert!(!ramp.supported);
        assert!(ramp.note.contains("init=xavier_normal: trainable to 8 of 16 (contradicts)"), "{}", ramp.note);
        // Nothing finished: nothing decided, not supported.
        let r = report(&s, &records(&s, |_| None), 0.05);
        assert!(r.claims.iter().all(|c| !c.supported && c.note.contains("no group")));
    }

    /// Splits CSV text into records, honouring quotes.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        rows
    }

    #[test]
    fn csv_and_markdown_parse_back() {
        let (mut s, jobs) = depth_table();
        s.axes.push(Axis::new(AxisField::Lr, &["0.05"]));
        s.axes.push(Axis::new(AxisField::Seed, &["0"]));
        let jobs: Vec<JobRecord> = jobs
            .into_iter()
            .map(|mut j| {
                j.spec.labels.insert(AxisField::Lr.label(), "0.05".into());
                j.spec.labels.insert(AxisField::Seed.label(), "0".into());
                j
            })
            .collect();
        let mut r = report(&s, &jobs, 0.05);
        r.cells[0].values[0].value = "odd, \"quoted\" | value".into();
        let rows = parse_csv(&r.to_csv());
        assert_eq!(rows.len(), r.cells.len() + 1);
        assert_eq!(rows[0], r.csv_header());
        assert_eq!(&rows[0][..4], ["activation", "depth", "init", "best_lr"]);
        assert!(rows.iter().all(|row| row.len() == rows[0].len()));
        assert_eq!(rows[1][0], "odd, \"quoted\" | value");
        let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
        let c = &r.cells[1];
        assert_eq!(rows[2][col("test_accuracy_mean")].parse::<f64>().unwrap(), c.test_accuracy.unwrap().mean);
        assert_eq!(rows[2][col("best_lr")], "0.05");
        assert_eq!(rows[2][col("verdict_healthy")], "1");
        assert_eq!(rows[2][col("chi1_mean")], "");

        let md = r.to_markdown();
        assert!(md.contains("Margin 0.05") && md.contains("100 steps"), "{md}");
        let tables: Vec<Vec<&str>> = md
            .split("\n## ")
            .map(|section| section.lines().filter(|l| l.starts_with('|')).collect::<Vec<_>>())
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(tables.len(), 3, "cells, trainable depth, claims");
        // Header + separator + one line per row; every line has the header's column count.
        let columns = |line: &str| line.replace("\\|", "").matches('|').count();
        for (table, rows) in tables.iter().zip([r.cells.len(), r.trainable.len(), r.claims.len()]) {
            assert_eq!(table.len(), rows + 2, "{table:#?}");
            assert!(table.iter().all(|l| columns(l) == columns(table[0])), "{table:#?}");
        }
        assert!(tables[0][0].contains("best lr") && tables[0][0].starts_with("| activation | depth | init |"));
        assert!(tables[2].iter().any(|l| l.starts_with("| tanh | <= 2 |") && l.ends_with("| yes |")), "{md}");
    }
}
