//! Job-spec flags shared by every command that describes a network (`probe`, `submit`).
//!
//! Every flag is optional: what is not given keeps the value of the base spec (gradlab's
//! defaults, or a `--spec FILE`).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::Args;

use crate::engine::activation::Activation;
use crate::engine::init::Init;
use crate::engine::loss::Loss;
use crate::engine::optim::{Optimizer, Schedule};
use crate::engine::spec::JobSpec;

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
    #[arg(long, short = 'd')]
    pub depth: Option<usize>,
    /// Units per hidden layer [default: 64].
    #[arg(long, short = 'w')]
    pub width: Option<usize>,
    /// Hidden widths, input side first (instead of --depth/--width): 512,256,128.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["depth", "width"])]
    pub widths: Option<Vec<usize>>,
    /// Weight init [default: lecun_normal]: xavier_uniform, xavier_normal, he_normal,
    /// he_uniform, orthogonal(:GAIN), custom (with --sigma-w/--sigma-b).
    #[arg(long)]
    pub init: Option<String>,
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
    #[arg(long, short = 'b')]
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
    /// A name for people.
    #[arg(long)]
    pub name: Option<String>,
    /// A label KEY=VALUE (repeatable), for filtering.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
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
                    && !i.eq_ignore_ascii_case("custom")
                {
                    bail!("--sigma-w/--sigma-b set the custom init; they cannot go with --init {i}");
                }
                s.init = Init::Custom { sigma_w, sigma_b: sigma_b.unwrap_or(0.0) };
            }
            (None, _, Some(i)) => s.init = i.parse()?,
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
        if self.keep_going_on_nonfinite {
            s.stop_on_nonfinite = false;
        }
        s.labels.extend(self.labels.iter().cloned().collect::<BTreeMap<_, _>>());
        s
    }
}
