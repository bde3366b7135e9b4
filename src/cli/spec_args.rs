//! Job-spec flags shared by every command that describes a network (`probe`, later `submit`).

use anyhow::{Result, bail};
use clap::Args;

use crate::engine::activation::Activation;
use crate::engine::init::Init;
use crate::engine::loss::Loss;
use crate::engine::optim::{Optimizer, Schedule};
use crate::engine::spec::JobSpec;

#[derive(Args, Clone, Debug)]
pub struct SpecArgs {
    /// Hidden-layer activation (logistic, tanh, atan, softsign, logsig, ramp/relu, softplus,
    /// logmin, semisigmoid, identity, leaky_relu[:SLOPE], elu[:ALPHA], selu, gelu, gelu_tanh, silu).
    #[arg(long, short = 'a', default_value = "tanh")]
    pub activation: Activation,
    /// Output-layer activation.
    #[arg(long, default_value = "identity")]
    pub output_activation: Activation,
    /// Number of hidden layers (with --width).
    #[arg(long, short = 'd', default_value_t = 4)]
    pub depth: usize,
    /// Units per hidden layer (with --depth).
    #[arg(long, short = 'w', default_value_t = 64)]
    pub width: usize,
    /// Hidden widths, input side first (instead of --depth/--width): 512,256,128.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["depth", "width"])]
    pub widths: Option<Vec<usize>>,
    /// Weight init: lecun_normal, xavier_uniform, xavier_normal, he_normal, he_uniform,
    /// orthogonal[:GAIN], custom (with --sigma-w/--sigma-b).
    #[arg(long, default_value = "lecun_normal")]
    pub init: String,
    /// sigma_w of the custom init (W ~ N(0, sigma_w^2/fan_in)); implies --init custom.
    #[arg(long)]
    pub sigma_w: Option<f64>,
    /// sigma_b of the custom init (b ~ N(0, sigma_b^2)).
    #[arg(long)]
    pub sigma_b: Option<f64>,
    /// Loss: cross_entropy or mse.
    #[arg(long, default_value = "cross_entropy")]
    pub loss: Loss,
    /// Optimizer: sgd, momentum[:MU], nesterov[:MU], adam[:B1,B2,EPS].
    #[arg(long, default_value = "sgd")]
    pub optimizer: Optimizer,
    /// Learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Learning-rate schedule: constant, step:EVERY,GAMMA, cosine[:MIN_FACTOR].
    #[arg(long, default_value = "constant")]
    pub schedule: Schedule,
    /// Decoupled weight decay on weights.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this.
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Dataset: digits, gaussian:dim=64,classes=10,n=256, teacher:..., spirals:..., blobs:...,
    /// csv:PATH[,label=COL][,header=BOOL], idx:IMAGES,LABELS.
    #[arg(long, default_value = "digits")]
    pub dataset: String,
    /// Mini-batch size.
    #[arg(long, short = 'b', default_value_t = 64)]
    pub batch: usize,
    /// Seed: fixes every random choice of the job.
    #[arg(long, short = 's', default_value_t = 0)]
    pub seed: u64,
}

impl SpecArgs {
    /// The spec these flags describe; fields they do not cover keep `base`'s values.
    pub fn to_spec(&self, base: JobSpec) -> Result<JobSpec> {
        let hidden = match &self.widths {
            Some(w) => w.clone(),
            None => vec![self.width; self.depth],
        };
        let init = match (self.sigma_w, self.sigma_b) {
            (None, None) => self.init.parse::<Init>()?,
            (sw, sb) => {
                let lower = self.init.to_ascii_lowercase();
                if lower != "custom" && lower != "lecun_normal" {
                    bail!("--sigma-w/--sigma-b set the custom init; they cannot go with --init {}", self.init);
                }
                let Some(sigma_w) = sw else { bail!("--sigma-b needs --sigma-w too") };
                Init::Custom { sigma_w, sigma_b: sb.unwrap_or(0.0) }
            }
        };
        let spec = JobSpec {
            activation: self.activation,
            output_activation: self.output_activation,
            hidden,
            init,
            loss: self.loss,
            optimizer: self.optimizer,
            lr: self.lr,
            schedule: self.schedule,
            weight_decay: self.weight_decay,
            clip_norm: self.clip_norm,
            dataset: self.dataset.clone(),
            batch: self.batch,
            seed: self.seed,
            ..base
        };
        spec.validate()?;
        Ok(spec)
    }
}
