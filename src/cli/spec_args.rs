//! Job-spec flags shared by every command that describes a network (`probe`, `submit`).
//!
//! Every flag is optional: what is not given keeps the value of the base spec (gradlab's
//! defaults, or a `--spec FILE`).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;

use super::client::{CliError, status};
use crate::api::status::FIELD_KEY;
use crate::engine::activation::Activation;
use crate::engine::init::Init;
use crate::engine::loss::Loss;
use crate::engine::optim::{Optimizer, Schedule};
use crate::engine::spec::{FieldError, JobSpec};

#[derive(Args, Clone, Debug, Default)]
pub struct SpecArgs {
    /// Hidden-layer activation [default: tanh]: logistic, tanh, atan, softsign, logsig,
    /// ramp/relu, softplus, logmin, semisigmoid, identity, leaky_relu(:SLOPE), elu(:ALPHA), selu,
    /// gelu, gelu_tanh, silu.
    #[arg(long, short = 'a')]
    pub activation: Option<Activation>,
    /// Output-layer activation [default: identity].
    #[arg(long)]
    pub output_activation: Option<Activation>,
    /// Number of hidden layers [default: 4].
    #[arg(long, short = 'd', value_parser = positive, allow_negative_numbers = true)]
    pub depth: Option<usize>,
    /// Units per hidden layer [default: 64].
    #[arg(long, short = 'w', value_parser = positive, allow_negative_numbers = true)]
    pub width: Option<usize>,
    /// Hidden widths, input side first (instead of --depth/--width): 512,256,128.
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with_all = ["depth", "width"],
        value_parser = positive,
        allow_negative_numbers = true
    )]
    pub widths: Option<Vec<usize>>,
    /// Weight init [default: lecun_normal]: xavier_uniform (glorot_uniform), xavier_normal
    /// (xavier, glorot), he_normal (he, kaiming), he_uniform, orthogonal(:GAIN), custom (with
    /// --sigma-w/--sigma-b).
    #[arg(long)]
    pub init: Option<Init>,
    /// sigma_w of the custom init (W ~ N(0, sigma_w^2/fan_in)); implies --init custom.
    #[arg(long)]
    pub sigma_w: Option<f64>,
    /// sigma_b of the custom init (b ~ N(0, sigma_b^2)).
    #[arg(long, requires = "sigma_w")]
    pub sigma_b: Option<f64>,
    /// Loss [default: cross_entropy]: cross_entropy or mse.
    #[arg(long)]
    pub loss: Option<Loss>,
    /// Optimizer [default: sgd]: momentum(:MU), nesterov(:MU), adam(:B1,B2,EPS).
    #[arg(long)]
    pub optimizer: Option<Optimizer>,
    /// Learning rate [default: 0.05].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule [default: constant]: step:EVERY,GAMMA, cosine(:MIN_FACTOR).
    #[arg(long)]
    pub schedule: Option<Schedule>,
    /// Decoupled weight decay on weights [default: 0].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to this.
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Dataset [default: digits]: gaussian:dim=64,classes=10,n=256, teacher:..., spirals:...,
    /// blobs:..., csv:PATH(,label=COL)(,header=BOOL), idx:IMAGES,LABELS.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Mini-batch size [default: 64].
    #[arg(long, short = 'b', value_parser = positive, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// Seed: fixes every random choice of the job [default: 0].
    #[arg(long, short = 's')]
    pub seed: Option<u64>,
}

/// Flags of a job that is stored and run (not of a probe).
#[derive(Args, Clone, Debug, Default)]
pub struct RunArgs {
    /// Training steps [default: 500].
    #[arg(long)]
    pub steps: Option<u64>,
    /// Evaluate on the held-out split every N steps (0: at start and end only) [default: 100].
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Record per-layer statistics every N steps [default: 1].
    #[arg(long)]
    pub record_every: Option<u64>,
    /// Record log10|g| histograms every N steps (0: never) [default: 0].
    #[arg(long)]
    pub histogram_every: Option<u64>,
    /// Share of the data held out for evaluation [default: 0.25].
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Keep training after a non-finite loss or gradient.
    #[arg(long)]
    pub keep_going_on_nonfinite: bool,
    /// Store the whole training state every N steps (0: never), so a job claimed again goes on
    /// from there [default: 10000].
    #[arg(long)]
    pub checkpoint_every_steps: Option<u64>,
    /// ... but at most once every S seconds (0: no limit) [default: 60].
    #[arg(long)]
    pub checkpoint_every_seconds: Option<f64>,
    /// The newest checkpoints kept [default: 2].
    #[arg(long)]
    pub checkpoint_keep: Option<u32>,
    /// Keep the checkpoints once the job has ended (to fork or export it later).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// A name for people.
    #[arg(long)]
    pub name: Option<String>,
    /// A label KEY=VALUE (repeatable), for filtering.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// A count that must be at least 1 (depths, widths, batches); "-3" reaches here as a value
/// (`allow_negative_numbers`) rather than reading as an unknown flag.
fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("{n} is too large")),
        Ok(n) => Err(format!("must be a positive whole number, got {n}")),
        Err(_) => Err(format!("must be a positive whole number, got {s:?}")),
    }
}

pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

impl SpecArgs {
    /// `base` with every given flag applied.
    pub fn apply(&self, base: JobSpec) -> Result<JobSpec> {
        let mut s = base;
        if let Some(w) = &self.widths {
            s.hidden = w.clone();
        } else if self.depth.is_some() || self.width.is_some() {
            let depth = self.depth.unwrap_or(s.hidden.len());
            let width = self.width.unwrap_or_else(|| s.hidden.first().copied().unwrap_or(64));
            s.hidden = vec![width; depth];
        }
        match (self.sigma_w, self.sigma_b, &self.init) {
            (Some(sigma_w), sigma_b, init) => {
                if let Some(i) = init
                    && !matches!(i, Init::Custom { .. })
                {
                    bail!(CliError(format!("--sigma-w/--sigma-b set the custom init; they cannot go with --init {i}")));
                }
                s.init = Init::Custom { sigma_w, sigma_b: sigma_b.unwrap_or(0.0) };
            }
            (None, _, Some(i)) => s.init = *i,
            (None, _, None) => {}
        }
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    s.$field = v.clone();
                }
            )*};
        }
        set!(activation, output_activation, loss, optimizer, lr, schedule, weight_decay, dataset, batch, seed);
        if self.clip_norm.is_some() {
            s.clip_norm = self.clip_norm;
        }
        Ok(s)
    }

    /// The flag these commands' user typed for a JobSpec `field` (which API clients see), for
    /// messages: `--depth 0` is reported as `--depth: ...`, not `hidden: ...`. None for fields
    /// no flag sets (thresholds: spec files only).
    pub fn flag_for(&self, field: &str, problem: &str) -> Option<String> {
        let flag = match field {
            "hidden" if self.widths.is_some() => "--widths",
            "hidden" if problem.contains("width") && self.width.is_some() => "--width",
            "hidden" if problem.contains("parameters") => "--depth/--width",
            "hidden" => "--depth",
            "init" if self.sigma_w.is_some() => "--sigma-w/--sigma-b",
            "labels" => "--label",
            "stop_on_nonfinite" => "--keep-going-on-nonfinite",
            f if f.contains('.') => return None,
            f => return Some(format!("--{}", f.replace('_', "-"))),
        };
        Some(flag.to_string())
    }

    /// A spec error as the user of these flags should read it.
    pub fn field_error(&self, e: &FieldError) -> CliError {
        match self.flag_for(&e.field, &e.problem) {
            Some(flag) => CliError(format!("{flag}: {}", e.problem)),
            None => CliError(e.to_string()),
        }
    }

    /// A server's INVALID_ARGUMENT about a spec field, with the flag named instead of the field.
    pub fn status_error(&self, e: tonic::Status) -> anyhow::Error {
        let field = e.metadata().get(FIELD_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match field {
            Some(field) if e.code() == tonic::Code::InvalidArgument => {
                let problem = e.message().strip_prefix(&format!("{field}: ")).unwrap_or(e.message());
                CliError(format!("{:?}: {}", e.code(), self.field_error(&FieldError::new(field, problem)))).into()
            }
            _ => status(e),
        }
    }
}

impl RunArgs {
    pub fn apply(&self, base: JobSpec) -> JobSpec {
        let mut s = base;
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    s.$field = v.clone();
                }
            )*};
        }
        set!(steps, eval_every, record_every, histogram_every, test_fraction, name);
        set!(checkpoint_every_steps, checkpoint_every_seconds, checkpoint_keep);
        if self.keep_going_on_nonfinite {
            s.stop_on_nonfinite = false;
        }
        if self.keep_checkpoints {
            s.keep_checkpoints = true;
        }
        s.labels.extend(self.labels.iter().cloned().collect::<BTreeMap<_, _>>());
        s
    }
}
