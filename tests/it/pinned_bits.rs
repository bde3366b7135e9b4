//! A job's spec and seed fix every bit of its results on any CPU: a job that started on one
//! server resumes or reruns on another, which may be an AMD with AVX2, an AMD or an Intel with
//! AVX-512, or a machine with another C library. These runs pin the bits of a few short
//! reference jobs: every recorded number, every evaluation and the final weights, hashed.
//!
//! Between them they take every path whose choice depends on the CPU: products past the
//! 512-long K-block (forward, input gradient and weight gradient), products too thin or too
//! small for the register-tile kernels (a batch of one, a two-column input), every activation
//! in its vectorized f32 form, the softmax and its logarithm, Adam with a cosine schedule,
//! clipping and weight decay, f64 throughout (the `libm` crate's functions), and the synthetic
//! datasets (made with sines, cosines and tanh).
//!
//! If one fails, the engine's arithmetic changed: on purpose (a new kernel, a new formula), then
//! update the table with the hashes the failure prints, run on at least two kinds of CPU; or
//! by accident on this CPU, which is what this test is for.

use gradlab::engine::Real;
use gradlab::engine::activation::Activation;
use gradlab::engine::init::Init;
use gradlab::engine::loss::Loss;
use gradlab::engine::optim::{Optimizer, Schedule};
use gradlab::engine::spec::JobSpec;

use super::engine_training::fingerprint;

/// FNV-1a over the little-endian bytes of every number a run produced.
fn run_hash<F: Real>(spec: &JobSpec) -> u64 {
    let (words, _) = fingerprint::<F>(spec);
    assert!(words.len() > 1000, "{}: the hash covers the run", spec.name);
    words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h: u64, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn base(name: &str) -> JobSpec {
    JobSpec {
        name: name.into(),
        activation: Activation::Tanh,
        hidden: vec![64, 64],
        init: Init::XavierNormal,
        optimizer: Optimizer::Sgd,
        lr: 0.05,
        batch: 32,
        steps: 30,
        eval_every: 10,
        dataset: "digits".into(),
        seed: 11,
        ..JobSpec::default()
    }
}

/// (in f64?, spec).
fn references() -> Vec<(bool, JobSpec)> {
    let act = |s: &str| s.parse::<Activation>().expect("a known activation");
    let mut out = vec![
        (false, base("tanh-sgd")),
        (
            false,
            JobSpec {
                // 600 wide at batch 520: forward, input-gradient and weight-gradient products all
                // sum past one K-block.
                activation: act("softplus"),
                hidden: vec![600, 40],
                optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
                schedule: Schedule::Cosine { min_factor: 0.1 },
                weight_decay: 1e-4,
                clip_norm: Some(1.0),
                lr: 0.003,
                batch: 520,
                steps: 4,
                eval_every: 2,
                ..base("wide-adam-cosine")
            },
        ),
        (
            true,
            JobSpec {
                activation: act("logistic"),
                hidden: vec![32, 32],
                optimizer: Optimizer::Momentum { momentum: 0.9, nesterov: true },
                batch: 16,
                steps: 12,
                eval_every: 4,
                ..base("f64-logistic-nesterov")
            },
        ),
        (
            false,
            JobSpec {
                // Two input columns, a batch of one and a squared loss.
                activation: act("gelu"),
                hidden: vec![16, 16],
                loss: Loss::Mse,
                dataset: "spirals:arms=3,n=300,noise=0.1".into(),
                batch: 1,
                steps: 60,
                eval_every: 30,
                ..base("spirals-gelu-batch1")
            },
        ),
    ];
    for name in
        ["logistic", "atan", "softsign", "logsig", "ramp", "logmin", "semisigmoid", "elu", "selu", "gelu_tanh", "silu"]
    {
        out.push((
            false,
            JobSpec {
                activation: act(name),
                hidden: vec![48, 48, 48],
                init: Init::HeNormal,
                dataset: "teacher:dim=20,classes=4,n=400,depth=2,width=32".into(),
                batch: 24,
                steps: 15,
                eval_every: 5,
                ..base(&format!("teacher-{name}"))
            },
        ));
    }
    out
}

/// The hashes, in the order of [`references`]. Seen the same on an AMD EPYC (Zen 3, AVX2 and
/// FMA) and under `qemu-x86_64 -cpu Nehalem` on it (SSE only: no AVX, no FMA), which takes the
/// portable path everywhere.
const PINNED: &[(&str, u64)] = &[
    ("tanh-sgd", 0x7f10fc43acef0520),
    ("wide-adam-cosine", 0x383026abaec4e4ff),
    ("f64-logistic-nesterov", 0x02d6e26937ab33a6),
    ("spirals-gelu-batch1", 0xeec28f270d74b0ed),
    ("teacher-logistic", 0x1795abf185fd45ce),
    ("teacher-atan", 0x5fefc4dbbc3e8246),
    ("teacher-softsign", 0x85dc6aef14e3032d),
    ("teacher-logsig", 0xb496ad82fee90336),
    ("teacher-ramp", 0x26d6a18c22eecc45),
    ("teacher-logmin", 0xb463e0233e9bba8c),
    ("teacher-semisigmoid", 0x84f0aaf569cbe4c8),
    ("teacher-elu", 0x669a2e144ee23451),
    ("teacher-selu", 0x91a17c6705ea78c6),
    ("teacher-gelu_tanh", 0xdf959352f83265ac),
    ("teacher-silu", 0x36e7f30f357770d0),
];

#[test]
fn reference_runs_give_the_same_bits_on_every_cpu() {
    let got: Vec<(String, u64)> = references()
        .into_iter()
        .map(|(f64, spec)| (spec.name.clone(), if f64 { run_hash::<f64>(&spec) } else { run_hash::<f32>(&spec) }))
        .collect();
    let table: String = got.iter().map(|(n, h)| format!("    (\"{n}\", 0x{h:016x}),\n")).collect();
    let want: Vec<(String, u64)> = PINNED.iter().map(|&(n, h)| (n.to_string(), h)).collect();
    assert_eq!(got, want, "the reference runs' bits changed on this CPU; the hashes now:\n{table}");
}
