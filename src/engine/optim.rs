//! Optimizers, learning-rate schedules, weight decay and gradient clipping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Real;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    #[default]
    Sgd,
    /// Heavy-ball momentum: v = mu v + g; w -= lr v. Nesterov: w -= lr (g + mu v).
    Momentum { momentum: f64, nesterov: bool },
    /// Adam with bias correction.
    Adam { beta1: f64, beta2: f64, eps: f64 },
}

pub const OPTIMIZER_NAMES: &[&str] = &["sgd", "momentum[:MU]", "nesterov[:MU]", "adam[:BETA1,BETA2,EPS]"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptimizerError {
    #[error("unknown optimizer {0:?}; known: {known}", known = OPTIMIZER_NAMES.join(", "))]
    Unknown(String),
    #[error("optimizer {name}: {problem}")]
    Bad { name: String, problem: String },
}

impl FromStr for Optimizer {
    type Err = OptimizerError;

    /// `sgd`, `momentum`, `momentum:0.95`, `nesterov:0.9`, `adam`, `adam:0.9,0.999,1e-8`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, args) = match lower.split_once(':') {
            Some((n, a)) => (n.trim(), a.split(',').map(str::trim).filter(|a| !a.is_empty()).collect::<Vec<_>>()),
            None => (lower.as_str(), vec![]),
        };
        let num = |i: usize, default: f64, lo: f64, hi: f64, what: &str| -> Result<f64, OptimizerError> {
            let Some(a) = args.get(i) else { return Ok(default) };
            match a.parse::<f64>() {
                Ok(v) if v >= lo && v < hi => Ok(v),
                _ => Err(OptimizerError::Bad {
                    name: name.into(),
                    problem: format!("{what} must be in [{lo}, {hi}), got {a:?}"),
                }),
            }
        };
        let max_args = |n: usize| {
            if args.len() > n {
                Err(OptimizerError::Bad {
                    name: name.into(),
                    problem: format!("takes at most {n} parameters, got {}", args.len()),
                })
            } else {
                Ok(())
            }
        };
        match name {
            "sgd" => max_args(0).map(|_| Optimizer::Sgd),
            "momentum" | "nesterov" => {
                max_args(1)?;
                Ok(Optimizer::Momentum { momentum: num(0, 0.9, 0.0, 1.0, "momentum")?, nesterov: name == "nesterov" })
            }
            "adam" => {
                max_args(3)?;
                Ok(Optimizer::Adam {
                    beta1: num(0, 0.9, 0.0, 1.0, "beta1")?,
                    beta2: num(1, 0.999, 0.0, 1.0, "beta2")?,
                    eps: num(2, 1e-8, f64::MIN_POSITIVE, 1.0, "eps")?,
                })
            }
            _ => Err(OptimizerError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Optimizer::Sgd => f.write_str("sgd"),
            Optimizer::Momentum { momentum, nesterov } => {
                write!(f, "{}:{momentum}", if *nesterov { "nesterov" } else { "momentum" })
            }
            Optimizer::Adam { beta1, beta2, eps } => write!(f, "adam:{beta1},{beta2},{eps:e}"),
        }
    }
}

/// Learning rate as a function of the step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    #[default]
    Constant,
    /// lr * gamma^(step / every).
    Step { every: u64, gamma: f64 },
    /// From lr down to lr * min_factor along half a cosine over the job's steps.
    Cosine { min_factor: f64 },
}

impl Schedule {
    pub fn lr(&self, base: f64, step: u64, total: u64) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((step / every.max(1)).min(i32::MAX as u64) as i32),
            Schedule::Cosine { min_factor } => {
                let t = if total <= 1 { 0.0 } else { step.min(total) as f64 / (total - 1) as f64 };
                let lo = base * min_factor;
                lo + 0.5 * (base - lo) * (1.0 + libm::cos(std::f64::consts::PI * t))
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("schedule: {0} (constant, step:EVERY,GAMMA, cosine[:MIN_FACTOR])")]
pub struct ScheduleError(String);

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, args) = lower.split_once(':').unwrap_or((lower.as_str(), ""));
        let args: Vec<&str> = args.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        match (name, args.as_slice()) {
            ("constant", []) => Ok(Schedule::Constant),
            ("step", [every, gamma]) => {
                let every =
                    every.parse::<u64>().ok().filter(|&e| e > 0).ok_or_else(|| {
                        ScheduleError(format!("step interval must be a whole number > 0, got {every:?}"))
                    })?;
                let gamma = gamma
                    .parse::<f64>()
                    .ok()
                    .filter(|g| *g > 0.0 && g.is_finite())
                    .ok_or_else(|| ScheduleError(format!("gamma must be > 0, got {gamma:?}")))?;
                Ok(Schedule::Step { every, gamma })
            }
            ("cosine", []) => Ok(Schedule::Cosine { min_factor: 0.0 }),
            ("cosine", [m]) => {
                let min_factor = m
                    .parse::<f64>()
                    .ok()
                    .filter(|m| (0.0..=1.0).contains(m))
                    .ok_or_else(|| ScheduleError(format!("min factor must be in [0, 1], got {m:?}")))?;
                Ok(Schedule::Cosine { min_factor })
            }
            _ => Err(ScheduleError(format!("cannot read {s:?}"))),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Step { every, gamma } => write!(f, "step:{every},{gamma}"),
            Schedule::Cosine { min_factor } => write!(f, "cosine:{min_factor}"),
        }
    }
}

/// Per-parameter-tensor state.
#[derive(Clone, Debug)]
pub struct Slot<F> {
    m: Vec<F>,
    v: Vec<F>,
}

impl<F: Real> Slot<F> {
    pub fn new(opt: &Optimizer, len: usize) -> Self {
        let (m, v) = match opt {
            Optimizer::Sgd => (0, 0),
            Optimizer::Momentum { .. } => (len, 0),
            Optimizer::Adam { .. } => (len, len),
        };
        Slot { m: vec![F::zero(); m], v: vec![F::zero(); v] }
    }

    /// The first and second moments (empty where the optimizer keeps none).
    pub fn moments(&self) -> (&[F], &[F]) {
        (&self.m, &self.v)
    }

    /// Sets the moments from a checkpoint; they must have the lengths this slot's have.
    pub fn set_moments(&mut self, m: Vec<F>, v: Vec<F>) -> Result<(), String> {
        if m.len() != self.m.len() || v.len() != self.v.len() {
            return Err(format!(
                "optimizer moments of {} and {} values, this optimizer keeps {} and {}",
                m.len(),
                v.len(),
                self.m.len(),
                self.v.len()
            ));
        }
        (self.m, self.v) = (m, v);
        Ok(())
    }
}

/// What one update did, measured in the same pass when asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateNorms {
    /// ||W|| before the update.
    pub weight_sumsq: f64,
    /// ||delta W||^2.
    pub update_sumsq: f64,
    /// Sum of squares, sum and largest of |g|, the gradient as passed (before `grad_scale`): the
    /// gradient statistics of a recorded step, read in the pass that reads g anyway. A NaN or
    /// infinite entry makes `grad_sumsq` non-finite (the maximum alone may miss a NaN).
    pub grad_sumsq: f64,
    pub grad_sumabs: f64,
    pub grad_maxabs: f64,
}

/// Lane partial sums of a measured update (see [`UpdateNorms`]).
struct Lanes<F> {
    ws: [F; LANES],
    us: [F; LANES],
    gq: [F; LANES],
    ga: [F; LANES],
    gm: [F; LANES],
}

impl<F: Real> Lanes<F> {
    fn new() -> Self {
        let z = [F::zero(); LANES];
        Lanes { ws: z, us: z, gq: z, ga: z, gm: z }
    }

    /// Adds lane `l`'s share of one element: weight `w`, update `d`, gradient `g`.
    #[inline(always)]
    fn add(&mut self, l: usize, w: F, d: F, g: F) {
        self.ws[l] += w * w;
        self.us[l] += d * d;
        let v = g.abs();
        self.gq[l] = v.mul_add(v, self.gq[l]);
        self.ga[l] += v;
        // A NaN or infinite g makes gq non-finite, which the caller checks; max need not see it.
        self.gm[l] = if v > self.gm[l] { v } else { self.gm[l] };
    }

    fn fold_into(&self, n: &mut UpdateNorms) {
        for l in 0..LANES {
            n.weight_sumsq += self.ws[l].f64();
            n.update_sumsq += self.us[l].f64();
            n.grad_sumsq += self.gq[l].f64();
            n.grad_sumabs += self.ga[l].f64();
            n.grad_maxabs = n.grad_maxabs.max(self.gm[l].f64());
        }
    }
}

/// One step's hyper-parameters, shared by every tensor.
#[derive(Clone, Copy, Debug)]
pub struct StepParams {
    pub lr: f64,
    /// Decoupled weight decay: w -= lr * wd * w, applied to weights (not biases).
    pub weight_decay: f64,
    /// Multiplies the gradient first (global-norm clipping; 1 otherwise).
    pub grad_scale: f64,
    /// 1-based step count, for Adam's bias correction.
    pub t: u64,
}

/// An element's share of an update: from its scaled gradient and its optimizer state (momentum
/// `m`, second moment `v`; scratch where the optimizer keeps none), the step to subtract.
trait Delta<F>: FnMut(F, &mut F, &mut F) -> F {}
impl<F, D: FnMut(F, &mut F, &mut F) -> F> Delta<F> for D {}

/// `state` cut at `at`, or two empty slices when the optimizer keeps no such state.
fn split_state<F>(state: &mut [F], at: usize) -> (&mut [F], &mut [F]) {
    if state.is_empty() { (&mut [], &mut []) } else { state.split_at_mut(at) }
}

/// The state of elements `range` (of the block `state` covers), or scratch from `spare` when
/// the optimizer keeps no such state.
#[inline(always)]
fn slot_of<'a, F>(state: &'a mut [F], spare: &'a mut [F], range: std::ops::Range<usize>) -> &'a mut [F] {
    if state.is_empty() { &mut spare[..range.len()] } else { &mut state[range] }
}

super::fastmath::wide_fn! {
    @avx512_if(!MEASURE)
    /// One block (a multiple of `N` long) of an update, `N` elements at a time; measured (in
    /// `N = LANES` lanes), returns its lane sums. The state
    /// slices are empty or as long as `w`, and are cut into lanes with it, so the loop has no
    /// per-element bounds checks and vectorizes for every optimizer (indexing the state by
    /// element from the closure kept Adam's and momentum's loops scalar). A function of its own
    /// (like the stats kernels): inlined into the whole update, its measured loop stayed mostly
    /// scalar.
    ///
    /// Measured, it runs on AVX2 even where the CPU has AVX-512: its eight-lane sums gain
    /// nothing from 16-wide registers, and LLVM then pairs two of them into one, whose 512-bit
    /// operations leave the core fewer vector ports for everything else (on an Intel Xeon of
    /// family 6 model 207 that loop took 25-32% longer than the AVX2 one).
    fn update_block<F: Real, D: Delta<F>; const MEASURE: bool; const N: usize>(
        w: &mut [F],
        g: &[F],
        m: &mut [F],
        v: &mut [F],
        scale: F,
        wd: F,
        delta: &mut D,
    ) -> Lanes<F> {
        debug_assert!(!MEASURE || N == LANES, "a measured block runs in its sums' lanes");
        let mut sums = Lanes::new();
        let (mut spare_m, mut spare_v) = ([F::zero(); N], [F::zero(); N]);
        for (c, (wl, gl)) in w.chunks_exact_mut(N).zip(g.chunks_exact(N)).enumerate() {
            let lanes = c * N..(c + 1) * N;
            let ml: &mut [F; N] = slot_of(m, &mut spare_m, lanes.clone()).try_into().expect("a lane block");
            let vl: &mut [F; N] = slot_of(v, &mut spare_v, lanes).try_into().expect("a lane block");
            // Every lane's delta before any store to `w`. Same operations per element as a
            // lane-by-lane loop.
            let mut d = [F::zero(); N];
            for l in 0..N {
                d[l] = delta(gl[l] * scale, &mut ml[l], &mut vl[l]) + wd * wl[l];
            }
            for l in 0..N {
                if MEASURE {
                    sums.add(l, wl[l], d[l], gl[l]);
                }
                wl[l] -= d[l];
            }
        }
        sums
    }
}

/// The last `w.len() < LANES` elements of an update, element `l` in lane `l` (or of an
/// unmeasured one, fewer than [`WIDE`]).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn update_tail<F: Real, const MEASURE: bool>(
    w: &mut [F],
    g: &[F],
    m: &mut [F],
    v: &mut [F],
    scale: F,
    wd: F,
    sums: &mut Lanes<F>,
    mut delta: impl Delta<F>,
) {
    let (mut spare_m, mut spare_v) = ([F::zero(); WIDE], [F::zero(); WIDE]);
    let (m, v) = (slot_of(m, &mut spare_m, 0..w.len()), slot_of(v, &mut spare_v, 0..w.len()));
    for (l, (w, &g)) in w.iter_mut().zip(g).enumerate() {
        let d: F = delta(g * scale, &mut m[l], &mut v[l]) + wd * *w;
        if MEASURE {
            sums.add(l, *w, d, g);
        }
        *w -= d;
    }
}

super::fastmath::wide_fn! {
    fn update_wide<F: Real; const MEASURE: bool>(
        opt: &Optimizer,
        w: &mut [F],
        g: &[F],
        slot: &mut Slot<F>,
        p: StepParams,
        decay: bool,
    ) -> UpdateNorms {
        opt.update_in::<F, MEASURE>(w, g, slot, p, decay)
    }
}

const LANES: usize = 8;
/// Elements per iteration of an unmeasured update: with no sums, its elements are independent,
/// so it runs as wide as the CPU's vectors (16 f32 in AVX-512) and gives the same bits at any
/// width. In eight-wide blocks it took about 4% of a 64-wide step on an Intel Xeon.
const WIDE: usize = 16;
/// Elements per f32 lane partial sum before it is folded into f64.
const FOLD: usize = 4096;

impl Optimizer {
    /// Updates `w` in place from `g`. With `MEASURE` it also returns the weight and update norms
    /// and the gradient's sums (see [`UpdateNorms`]), computed in the same pass in lane-parallel
    /// f32 partial sums folded into f64.
    pub fn update<F: Real, const MEASURE: bool>(
        &self,
        w: &mut [F],
        g: &[F],
        slot: &mut Slot<F>,
        p: StepParams,
        decay: bool,
    ) -> UpdateNorms {
        assert_eq!(w.len(), g.len(), "parameter and gradient lengths differ");
        update_wide::<F, MEASURE>(self, w, g, slot, p, decay)
    }

    #[inline(always)]
    pub(crate) fn update_in<F: Real, const MEASURE: bool>(
        &self,
        w: &mut [F],
        g: &[F],
        slot: &mut Slot<F>,
        p: StepParams,
        decay: bool,
    ) -> UpdateNorms {
        let lr = F::of(p.lr);
        let wd = F::of(if decay { p.lr * p.weight_decay } else { 0.0 });
        let scale = F::of(p.grad_scale);
        let mut norms = UpdateNorms::default();
        // Computes the update from (gradient, weight, state...) and applies it. Measured, lane
        // by lane: element i goes to lane i % LANES; the lanes fold into f64 after every FOLD
        // elements. Unmeasured, WIDE elements at a time, in one run.
        // `update_block` keeps a block's lanes in registers, so its loop vectorizes; the last
        // few elements go through `update_tail`, out of line (a tail loop in the same function
        // would stop LLVM vectorizing the main one).
        // The state a closure does not use stays empty (`slot_of` lends scratch instead).
        let (m, v) = (slot.m.as_mut_slice(), slot.v.as_mut_slice());
        assert!([m.len(), v.len()].iter().all(|&n| n == 0 || n == w.len()), "optimizer state length");
        macro_rules! apply {
            ($delta:expr) => {{
                let mut delta = $delta;
                let n = w.len() - w.len() % if MEASURE { LANES } else { WIDE };
                let (w_main, w_tail) = w.split_at_mut(n);
                let (g_main, g_tail) = g.split_at(n);
                let (m_main, m_tail) = split_state(m, n);
                let (v_main, v_tail) = split_state(v, n);
                if !MEASURE {
                    update_block::<F, _, false, WIDE>(w_main, g_main, m_main, v_main, scale, wd, &mut delta);
                    update_tail::<F, false>(w_tail, g_tail, m_tail, v_tail, scale, wd, &mut Lanes::new(), &mut delta);
                } else {
                    let mut m_blocks = m_main.chunks_mut(FOLD);
                    let mut v_blocks = v_main.chunks_mut(FOLD);
                    let mut tail_done = false;
                    for (wb, gb) in w_main.chunks_mut(FOLD).zip(g_main.chunks(FOLD)) {
                        let len = wb.len();
                        let (mb, vb) = (m_blocks.next().unwrap_or_default(), v_blocks.next().unwrap_or_default());
                        let mut sums = update_block::<F, _, true, LANES>(wb, gb, mb, vb, scale, wd, &mut delta);
                        if len < FOLD {
                            update_tail::<F, true>(w_tail, g_tail, m_tail, v_tail, scale, wd, &mut sums, &mut delta);
                            tail_done = true;
                        }
                        sums.fold_into(&mut norms);
                    }
                    if !tail_done {
                        let mut sums = Lanes::new();
                        update_tail::<F, true>(w_tail, g_tail, m_tail, v_tail, scale, wd, &mut sums, &mut delta);
                        sums.fold_into(&mut norms);
                    }
                }
            }};
        }
        match *self {
            // `move`: the kernel reads lr from the closure itself, not through a pointer to a local.
            Optimizer::Sgd => apply!(move |g: F, _: &mut F, _: &mut F| lr * g),
            Optimizer::Momentum { momentum, nesterov } => {
                let mu = F::of(momentum);
                if nesterov {
                    apply!(move |g: F, m: &mut F, _: &mut F| {
                        *m = mu * *m + g;
                        lr * (g + mu * *m)
                    })
                } else {
                    apply!(move |g: F, m: &mut F, _: &mut F| {
                        *m = mu * *m + g;
                        lr * *m
                    })
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                let t = p.t.max(1).min(i32::MAX as u64) as i32;
                // Bias corrections folded into the step size, as Kingma & Ba's section 2.
                let step = F::of(p.lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t)));
                let (b1, b2, e) = (F::of(beta1), F::of(beta2), F::of(eps));
                apply!(move |g: F, m: &mut F, v: &mut F| {
                    *m = b1 * *m + (F::one() - b1) * g;
                    *v = b2 * *v + (F::one() - b2) * g * g;
                    step * *m / (v.sqrt() + e)
                })
            }
        }
        norms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(lr: f64) -> StepParams {
        StepParams { lr, weight_decay: 0.0, grad_scale: 1.0, t: 1 }
    }

    #[test]
    fn sgd_and_momentum_follow_their_definitions() {
        let mut w = vec![1.0f64, -2.0];
        let mut slot = Slot::new(&Optimizer::Sgd, 2);
        let n = Optimizer::Sgd.update::<f64, true>(&mut w, &[0.5, 1.0], &mut slot, params(0.1), true);
        assert_eq!(w, vec![0.95, -2.1]);
        assert!((n.weight_sumsq - 5.0).abs() < 1e-12);
        assert!((n.update_sumsq - (0.05f64 * 0.05 + 0.01)).abs() < 1e-12);

        let opt = Optimizer::Momentum { momentum: 0.5, nesterov: false };
        let mut w = vec![0.0f64];
        let mut slot = Slot::new(&opt, 1);
        opt.update::<f64, false>(&mut w, &[1.0], &mut slot, params(1.0), true); // v=1, w=-1
        opt.update::<f64, false>(&mut w, &[1.0], &mut slot, params(1.0), true); // v=1.5, w=-2.5
        assert_eq!(w, vec![-2.5]);

        let opt = Optimizer::Momentum { momentum: 0.5, nesterov: true };
        let mut w = vec![0.0f64];
        let mut slot = Slot::new(&opt, 1);
        opt.update::<f64, false>(&mut w, &[1.0], &mut slot, params(1.0), true); // v=1, w -= 1+0.5
        assert_eq!(w, vec![-1.5]);
    }

    #[test]
    fn adam_first_step_moves_by_lr_times_sign() {
        let opt: Optimizer = "adam".parse().unwrap();
        let mut w = vec![0.0f64, 0.0, 0.0];
        let mut slot = Slot::new(&opt, 3);
        opt.update::<f64, false>(&mut w, &[3.0, -0.01, 100.0], &mut slot, params(0.1), true);
        for (x, s) in w.iter().zip([-1.0, 1.0, -1.0]) {
            // eps enters after the bias correction (Kingma & Ba's eps-hat), hence 1e-5.
            assert!((x - 0.1 * s).abs() < 1e-5, "{x}");
        }
    }

    #[test]
    fn weight_decay_is_decoupled_and_clipping_scales() {
        let mut w = vec![2.0f64];
        let mut slot = Slot::new(&Optimizer::Sgd, 1);
        let p = StepParams { lr: 0.1, weight_decay: 0.5, grad_scale: 0.5, t: 1 };
        Optimizer::Sgd.update::<f64, false>(&mut w, &[1.0], &mut slot, p, true);
        assert!((w[0] - (2.0 - 0.1 * 0.5 - 0.1 * 0.5 * 2.0)).abs() < 1e-12);
        let mut b = vec![2.0f64];
        Optimizer::Sgd.update::<f64, false>(&mut b, &[1.0], &mut slot, p, false);
        assert!((b[0] - 1.95).abs() < 1e-12);
    }

    #[test]
    fn measured_norms_fold_long_slices_exactly() {
        let n = 10_000;
        let mut w = vec![1.0f32; n];
        let mut slot = Slot::new(&Optimizer::Sgd, n);
        let g = vec![2.0f32; n];
        let norms = Optimizer::Sgd.update::<f32, true>(&mut w, &g, &mut slot, params(0.5), true);
        assert_eq!(norms.weight_sumsq, n as f64);
        assert_eq!(norms.update_sumsq, n as f64);
    }

    /// The lane kernel against a plain element-by-element loop, bit for bit, at lengths around
    /// LANES and FOLD; measuring must not change the update, and its norms match f64 sums.
    #[test]
    fn vectorized_update_matches_a_plain_loop_bit_for_bit() {
        let p = StepParams { lr: 0.03, weight_decay: 0.1, grad_scale: 0.7, t: 3 };
        for n in [1, 7, 8, 9, 15, 16, 17, 4095, 4096, 4097, 10_003] {
            let w0: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 300.0).collect();
            let g: Vec<f32> = (0..n).map(|i| ((i * 104_729 % 997) as f32 - 498.0) / 50.0).collect();
            let (lr, wd, scale) = (p.lr as f32, (p.lr * p.weight_decay) as f32, p.grad_scale as f32);
            let want: Vec<f32> = w0.iter().zip(&g).map(|(&w, &g)| w - (lr * (g * scale) + wd * w)).collect();
            let mut w = w0.clone();
            let norms = Optimizer::Sgd.update::<f32, true>(&mut w, &g, &mut Slot::new(&Optimizer::Sgd, n), p, true);
            assert!(w.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "sgd n {n}");
            let ws: f64 = w0.iter().map(|&v| (v as f64).powi(2)).sum();
            let us: f64 = w0.iter().zip(&want).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
            assert!((norms.weight_sumsq / ws - 1.0).abs() < 1e-5 && (norms.update_sumsq / us - 1.0).abs() < 1e-4);
            // The gradient's own sums, of g as passed (before grad_scale).
            let gq: f64 = g.iter().map(|&v| (v as f64).powi(2)).sum();
            let ga: f64 = g.iter().map(|&v| (v as f64).abs()).sum();
            let gm = g.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!((norms.grad_sumsq / gq - 1.0).abs() < 1e-5 && (norms.grad_sumabs / ga - 1.0).abs() < 1e-5, "n {n}");
            assert_eq!(norms.grad_maxabs, gm as f64, "n {n}");
            for opt in [
                Optimizer::Sgd,
                "momentum:0.9".parse().unwrap(),
                "nesterov:0.9".parse().unwrap(),
                "adam".parse().unwrap(),
            ] {
                let (mut a, mut b) = (w0.clone(), w0.clone());
                let (mut sa, mut sb) = (Slot::new(&opt, n), Slot::new(&opt, n));
                // The definitions, element by element, over two steps (t = 3, 4).
                let (mut want, mut m, mut v) = (w0.clone(), vec![0f32; n], vec![0f32; n]);
                for t in 3..5 {
                    let p = StepParams { t, ..p };
                    opt.update::<f32, true>(&mut a, &g, &mut sa, p, true);
                    opt.update::<f32, false>(&mut b, &g, &mut sb, p, true);
                    for i in 0..n {
                        let gi = g[i] * scale;
                        let d = match opt {
                            Optimizer::Sgd => lr * gi,
                            Optimizer::Momentum { momentum, nesterov } => {
                                let mu = momentum as f32;
                                m[i] = mu * m[i] + gi;
                                if nesterov { lr * (gi + mu * m[i]) } else { lr * m[i] }
                            }
                            Optimizer::Adam { beta1, beta2, eps } => {
                                let t = t as i32;
                                let step = (p.lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t))) as f32;
                                let (b1, b2) = (beta1 as f32, beta2 as f32);
                                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                                step * m[i] / (v[i].sqrt() + eps as f32)
                            }
                        };
                        want[i] -= d + wd * want[i];
                    }
                }
                assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{opt} n {n}");
                assert!(a.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "{opt} n {n} vs its definition");
            }
        }
    }

    /// A measured SGD update element by element, in the order the sums are defined to take:
    /// element i of a FOLD-long block in lane i % LANES, each block's lanes folded into f64 in
    /// lane order after it, and a tensor's last `len % LANES` elements in the lanes of its
    /// last block when that is short, in lanes of their own otherwise.
    fn measured_sgd_by_definition(w: &mut [f32], g: &[f32], lr: f32, wd: f32) -> UpdateNorms {
        let n8 = w.len() - w.len() % LANES;
        let mut blocks: Vec<_> = (0..n8).step_by(FOLD).map(|s| s..(s + FOLD).min(n8)).collect();
        match blocks.last_mut() {
            Some(last) if !n8.is_multiple_of(FOLD) => last.end = w.len(),
            _ => blocks.push(n8..w.len()),
        }
        let mut n = UpdateNorms::default();
        for block in blocks {
            let mut sums = Lanes::<f32>::new();
            for i in block.clone() {
                let d = lr * g[i] + wd * w[i];
                sums.add((i - block.start) % LANES, w[i], d, g[i]);
                w[i] -= d;
            }
            sums.fold_into(&mut n);
        }
        n
    }

    /// The order of a measured update's sums is part of a recorded step's bits, whichever
    /// path this CPU takes (a measured update runs on AVX2 even where an unmeasured one runs
    /// on AVX-512): the kernel against that definition, bit for bit.
    #[test]
    fn measured_sums_take_their_defined_order() {
        let p = StepParams { lr: 0.03, weight_decay: 0.1, grad_scale: 1.0, t: 3 };
        let (lr, wd) = (p.lr as f32, (p.lr * p.weight_decay) as f32);
        let data = |n: usize, k: usize| -> Vec<f32> {
            (0..n).map(|i| ((i * k % 1009) as f32 - 504.0) / 97.0 * (1.0 + (i % 13) as f32 * 1e-3)).collect()
        };
        let bits = |n: &UpdateNorms| {
            [n.weight_sumsq, n.update_sumsq, n.grad_sumsq, n.grad_sumabs, n.grad_maxabs].map(f64::to_bits)
        };
        for n in [0, 3, 8, 640, 4096, 4099, 4104, 8192, 8195, 12_301] {
            let g = data(n, 7919);
            let mut want = data(n, 31);
            let want_norms = measured_sgd_by_definition(&mut want, &g, lr, wd);
            let mut w = data(n, 31);
            let norms = Optimizer::Sgd.update::<f32, true>(&mut w, &g, &mut Slot::new(&Optimizer::Sgd, n), p, true);
            assert_eq!(bits(&norms), bits(&want_norms), "n {n}");
            assert!(w.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "n {n}");
        }
    }

    #[test]
    fn schedules() {
        assert_eq!(Schedule::Constant.lr(0.1, 50, 100), 0.1);
        let s: Schedule = "step:10,0.5".parse().unwrap();
        assert!((s.lr(1.0, 25, 100) - 0.25).abs() < 1e-15);
        let c: Schedule = "cosine:0.1".parse().unwrap();
        assert!((c.lr(1.0, 0, 101) - 1.0).abs() < 1e-15);
        assert!((c.lr(1.0, 100, 101) - 0.1).abs() < 1e-12);
        assert!((c.lr(1.0, 50, 101) - 0.55).abs() < 1e-12);
        for s in [Schedule::Constant, s, c] {
            assert_eq!(s.to_string().parse::<Schedule>().unwrap(), s);
        }
        assert!("step:0,0.5".parse::<Schedule>().is_err());
        assert!("linear".parse::<Schedule>().unwrap_err().to_string().contains("cosine"));
    }

    #[test]
    fn optimizer_names_round_trip() {
        for s in ["sgd", "momentum:0.95", "nesterov:0.9", "adam:0.9,0.99,1e-6"] {
            let o: Optimizer = s.parse().unwrap();
            assert_eq!(o.to_string().parse::<Optimizer>().unwrap(), o);
        }
        assert!(matches!("momentum:1.5".parse::<Optimizer>(), Err(OptimizerError::Bad { .. })));
        assert!("rmsprop".parse::<Optimizer>().unwrap_err().to_string().contains("adam"));
    }
}
