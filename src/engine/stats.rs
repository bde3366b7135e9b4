//! What is measured per layer and step, and the reductions that measure it.
//!
//! Reductions run in eight independent lanes over fixed-size blocks whose partial sums are added
//! in f64 in a fixed order: the loop vectorizes, a sum over a million f32 values keeps its
//! precision, and the result never depends on threads or timing.

use serde::{Deserialize, Serialize};

use super::Real;

/// Per-layer measurements of one step. Layer 0 is the first hidden layer; the last one is the
/// output layer. Norms are Frobenius norms over the layer's weight matrix (or bias vector, or the
/// batch of pre-activation errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// ||dL/dW||.
    pub grad_norm: f64,
    /// ||dL/db||.
    pub bias_grad_norm: f64,
    /// ||dL/dz|| over the batch: the back-propagated error at the layer's pre-activations.
    pub err_norm: f64,
    /// Mean of |dL/dW_ij|.
    pub grad_mean_abs: f64,
    /// Max of |dL/dW_ij| (finite entries).
    pub grad_max_abs: f64,
    /// ||W|| before the update.
    pub weight_norm: f64,
    /// ||W_new - W|| / ||W||.
    pub update_ratio: f64,
    /// Mean of the layer's outputs phi(z) over batch and units.
    pub act_mean: f64,
    /// Standard deviation of the layer's outputs over batch and units.
    pub act_std: f64,
    /// Fraction of (example, unit) pairs with |phi'(z)| below 1% of phi's largest derivative.
    pub saturated: f64,
    /// Fraction of units whose output is exactly zero for every example of the batch.
    pub dead: f64,
    /// Count of non-finite entries of dL/dW and dL/db.
    pub nonfinite: u64,
}

impl LayerStats {
    /// The metric names, in the order of [`LayerStats::values`].
    pub const METRICS: [&'static str; 12] = [
        "grad_norm",
        "bias_grad_norm",
        "err_norm",
        "grad_mean_abs",
        "grad_max_abs",
        "weight_norm",
        "update_ratio",
        "act_mean",
        "act_std",
        "saturated",
        "dead",
        "nonfinite",
    ];

    pub fn values(&self) -> [f64; 12] {
        [
            self.grad_norm,
            self.bias_grad_norm,
            self.err_norm,
            self.grad_mean_abs,
            self.grad_max_abs,
            self.weight_norm,
            self.update_ratio,
            self.act_mean,
            self.act_std,
            self.saturated,
            self.dead,
            self.nonfinite as f64,
        ]
    }

    /// Every statistic rounded to the nearest f32 (see `StepRecord::round_to_f32`); NaN and
    /// infinities stay what they are, and a value beyond f32's range becomes infinite.
    pub fn round_to_f32(&mut self) {
        for x in [
            &mut self.grad_norm,
            &mut self.bias_grad_norm,
            &mut self.err_norm,
            &mut self.grad_mean_abs,
            &mut self.grad_max_abs,
            &mut self.weight_norm,
            &mut self.update_ratio,
            &mut self.act_mean,
            &mut self.act_std,
            &mut self.saturated,
            &mut self.dead,
        ] {
            *x = *x as f32 as f64;
        }
    }

    /// Rebuilds statistics from their [`Self::values`]; `nonfinite` must be a count (a
    /// non-negative integer).
    pub fn from_values(v: &[f64; 12]) -> Result<LayerStats, String> {
        let nf = v[11];
        if !(nf >= 0.0 && nf.fract() == 0.0 && nf < 18_446_744_073_709_551_616.0) {
            return Err(format!("nonfinite count {nf} is not a non-negative integer"));
        }
        Ok(LayerStats {
            grad_norm: v[0],
            bias_grad_norm: v[1],
            err_norm: v[2],
            grad_mean_abs: v[3],
            grad_max_abs: v[4],
            weight_norm: v[5],
            update_ratio: v[6],
            act_mean: v[7],
            act_std: v[8],
            saturated: v[9],
            dead: v[10],
            nonfinite: nf as u64,
        })
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        Self::METRICS.iter().position(|m| *m == name).map(|i| self.values()[i])
    }
}

/// Sums over a slice, see [`moments`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub sum: f64,
    pub sumsq: f64,
    pub sumabs: f64,
    pub maxabs: f64,
    pub nonfinite: u64,
}

impl Moments {
    pub fn norm(&self) -> f64 {
        self.sumsq.sqrt()
    }
    pub fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum / self.n as f64 }
    }
    pub fn std(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let m = self.mean();
        (self.sumsq / self.n as f64 - m * m).max(0.0).sqrt()
    }
    pub fn mean_abs(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sumabs / self.n as f64 }
    }
}

/// Independent partial sums: 32 keeps four 8-wide (two 16-wide) accumulators in flight, so the
/// loop is bound by throughput, not by one add's latency.
const LANES: usize = 32;
/// Values per block, folded into f64 after it: 64 values per f32 lane partial sum keeps f32
/// rounding near 1e-5 relative.
const BLOCK: usize = 64 * LANES;

/// Sum, sum of squares, sum and max of |x|, and the count of non-finite values. Non-finite values
/// are counted and left out of the other sums, so one inf does not hide every other number.
pub fn moments<F: Real>(x: &[F]) -> Moments {
    let mut out = Moments { n: x.len(), ..Moments::default() };
    let mut maxabs = F::zero();
    for block in x.chunks(BLOCK) {
        let lanes = block_moments(block);
        for l in 0..LANES {
            out.sum += lanes.s[l].f64();
            out.sumsq += lanes.q[l].f64();
            out.sumabs += lanes.a[l].f64();
            out.nonfinite += u64::from(lanes.bad[l]);
            maxabs = maxabs.max(lanes.m[l]);
        }
    }
    out.maxabs = maxabs.f64();
    out
}

/// The lane partial sums of one block, see [`block_moments`].
struct Lanes<F> {
    s: [F; LANES],
    q: [F; LANES],
    a: [F; LANES],
    m: [F; LANES],
    bad: [u32; LANES],
}

super::fastmath::wide_fn! {
    /// Element i of the block goes to lane i % LANES (the tail's to lane 0, in order). A
    /// function of its own, so the per-block fold stays out of the vectorized loop.
    fn block_moments<F: Real>(block: &[F]) -> Lanes<F> {
        let mut s = [F::zero(); LANES];
        let mut q = [F::zero(); LANES];
        let mut a = [F::zero(); LANES];
        let mut m = [F::zero(); LANES];
        let mut bad = [0u32; LANES];
        let big = F::max_value();
        let chunks = block.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                let v = c[l];
                let finite = v.abs() <= big;
                let v = if finite { v } else { F::zero() };
                bad[l] += u32::from(!finite);
                s[l] += v;
                q[l] += v * v;
                a[l] += v.abs();
                m[l] = if v.abs() > m[l] { v.abs() } else { m[l] };
            }
        }
        let mut ln = Lanes { s, q, a, m, bad };
        moments_tail(tail, &mut ln);
        ln
    }
}

/// Kept out of line: a tail loop inside [`block_moments`] stops LLVM vectorizing its main loop.
#[inline(never)]
fn moments_tail<F: Real>(tail: &[F], ln: &mut Lanes<F>) {
    for &v in tail {
        if v.abs() <= F::max_value() {
            ln.s[0] += v;
            ln.q[0] += v * v;
            ln.a[0] += v.abs();
            ln.m[0] = ln.m[0].max(v.abs());
        } else {
            ln.bad[0] += 1;
        }
    }
}

/// [`moments`] without the signed sum (left 0), for gradients, whose mean nobody asks for:
/// the loop keeps no non-finite bookkeeping, and runs [`moments`] instead only when its sums
/// come out non-finite, so the result is the same.
pub fn magnitudes<F: Real>(x: &[F]) -> Moments {
    let mut out = Moments { n: x.len(), ..Moments::default() };
    let mut maxabs = F::zero();
    for block in x.chunks(BLOCK) {
        let (q, a, m) = block_magnitudes(block);
        for l in 0..LANES {
            out.sumsq += q[l].f64();
            out.sumabs += a[l].f64();
            maxabs = maxabs.max(m[l]);
        }
    }
    out.maxabs = maxabs.f64();
    if out.sumsq.is_finite() && out.sumabs.is_finite() && out.maxabs.is_finite() {
        out
    } else {
        Moments { sum: 0.0, ..moments(x) }
    }
}

super::fastmath::wide_fn! {
    fn block_magnitudes<F: Real>(block: &[F]) -> ([F; LANES], [F; LANES], [F; LANES]) {
        let mut q = [F::zero(); LANES];
        let mut a = [F::zero(); LANES];
        let mut m = [F::zero(); LANES];
        let chunks = block.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                let v = c[l].abs();
                q[l] = v.mul_add(v, q[l]);
                a[l] += v;
                // NaN-propagating, so a NaN reaches the check in `magnitudes`.
                m[l] = if v > m[l] || v.is_nan() { v } else { m[l] };
            }
        }
        magnitudes_tail(tail, &mut q, &mut a, &mut m);
        (q, a, m)
    }
}

#[inline(never)]
fn magnitudes_tail<F: Real>(tail: &[F], q: &mut [F; LANES], a: &mut [F; LANES], m: &mut [F; LANES]) {
    for &v in tail {
        let v = v.abs();
        q[0] = v.mul_add(v, q[0]);
        a[0] += v;
        m[0] = if v > m[0] || v.is_nan() { v } else { m[0] };
    }
}

/// [`moments`]' sum and sum of squares, from a loop without its non-finite bookkeeping: like
/// [`magnitudes`], it runs [`moments`] instead only when its sums come out non-finite.
pub fn sum_sumsq<F: Real>(x: &[F]) -> (f64, f64) {
    let (mut sum, mut sumsq) = (0.0, 0.0);
    for block in x.chunks(BLOCK) {
        let (s, q) = block_sum_sumsq(block);
        for l in 0..LANES {
            sum += s[l].f64();
            sumsq += q[l].f64();
        }
    }
    if sum.is_finite() && sumsq.is_finite() {
        (sum, sumsq)
    } else {
        let m = moments(x);
        (m.sum, m.sumsq)
    }
}

super::fastmath::wide_fn! {
    fn block_sum_sumsq<F: Real>(block: &[F]) -> ([F; LANES], [F; LANES]) {
        let mut s = [F::zero(); LANES];
        let mut q = [F::zero(); LANES];
        let chunks = block.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                s[l] += c[l];
                q[l] = c[l].mul_add(c[l], q[l]);
            }
        }
        sum_sumsq_tail(tail, &mut s, &mut q);
        (s, q)
    }
}

#[inline(never)]
fn sum_sumsq_tail<F: Real>(tail: &[F], s: &mut [F; LANES], q: &mut [F; LANES]) {
    for &v in tail {
        s[0] += v;
        q[0] = v.mul_add(v, q[0]);
    }
}

/// Sum of squares only (a cheaper [`moments`] for norms on the hot path).
pub fn sumsq<F: Real>(x: &[F]) -> f64 {
    let mut total = 0.0;
    for block in x.chunks(BLOCK) {
        total += block_sumsq(block).iter().map(|v| v.f64()).sum::<f64>();
    }
    total
}

super::fastmath::wide_fn! {
    fn block_sumsq<F: Real>(block: &[F]) -> [F; LANES] {
        let mut q = [F::zero(); LANES];
        let chunks = block.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                q[l] += c[l] * c[l];
            }
        }
        sumsq_tail(tail, &mut q);
        q
    }
}

#[inline(never)]
fn sumsq_tail<F: Real>(tail: &[F], q: &mut [F; LANES]) {
    for &v in tail {
        q[0] += v * v;
    }
}

/// Histogram of log10|g| on fixed bins, so histograms of different steps, layers and jobs add
/// and compare bin by bin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Counts per bin; bin i covers [10^(LO + i/PER_DECADE), 10^(LO + (i+1)/PER_DECADE)).
    pub counts: Vec<u64>,
    /// Exact zeros.
    pub zeros: u64,
    /// Non-zero magnitudes below 10^LO.
    pub underflow: u64,
    /// Magnitudes at or above 10^HI.
    pub overflow: u64,
    pub nonfinite: u64,
}

impl Histogram {
    pub const LOG10_LO: i32 = -12;
    pub const LOG10_HI: i32 = 4;
    pub const PER_DECADE: usize = 4;
    pub const BINS: usize = (Self::LOG10_HI - Self::LOG10_LO) as usize * Self::PER_DECADE;

    /// Lower edge of bin i, as log10 of the magnitude.
    pub fn bin_lower_log10(i: usize) -> f64 {
        Self::LOG10_LO as f64 + i as f64 / Self::PER_DECADE as f64
    }

    pub fn of<F: Real>(values: &[F]) -> Self {
        let mut h = Histogram { counts: vec![0; Self::BINS], ..Default::default() };
        let lo = Self::LOG10_LO as f64;
        for &v in values {
            let a = v.f64().abs();
            if !a.is_finite() {
                h.nonfinite += 1;
            } else if a == 0.0 {
                h.zeros += 1;
            } else {
                let pos = (a.log10() - lo) * Self::PER_DECADE as f64;
                if pos < 0.0 {
                    h.underflow += 1;
                } else if pos >= Self::BINS as f64 {
                    h.overflow += 1;
                } else {
                    h.counts[pos as usize] += 1;
                }
            }
        }
        h
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.zeros + self.underflow + self.overflow + self.nonfinite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_a_plain_f64_loop() {
        let x: Vec<f32> = (0..10_007).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
        let m = moments(&x);
        let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let sum: f64 = xs.iter().sum();
        let sq: f64 = xs.iter().map(|v| v * v).sum();
        let sumabs: f64 = xs.iter().map(|v| v.abs()).sum();
        let maxabs = xs.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!((m.sum - sum).abs() <= 1e-5 * sumabs);
        assert!((m.sumsq / sq - 1.0).abs() < 1e-5);
        assert!((m.sumabs / sumabs - 1.0).abs() < 1e-5);
        assert_eq!(m.maxabs, maxabs);
        assert_eq!(m.nonfinite, 0);
        assert_eq!(m.n, x.len());
        assert!((sumsq(&x) / m.sumsq - 1.0).abs() < 1e-12);
        let (s, q) = sum_sumsq(&x);
        assert!((s - m.sum).abs() <= 1e-5 * sumabs && (q / m.sumsq - 1.0).abs() < 1e-6);
        let mut y = x.clone();
        y[17] = f32::INFINITY;
        let m = moments(&y);
        assert_eq!(sum_sumsq(&y), (m.sum, m.sumsq));
    }

    #[test]
    fn magnitudes_agree_with_moments() {
        let x: Vec<f32> = (0..10_007).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
        let (g, m) = (magnitudes(&x), moments(&x));
        assert!((g.sumsq / m.sumsq - 1.0).abs() < 1e-6 && (g.sumabs / m.sumabs - 1.0).abs() < 1e-6);
        assert_eq!((g.maxabs, g.nonfinite, g.n, g.sum), (m.maxabs, 0, m.n, 0.0));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut y = x.clone();
            y[5000] = bad;
            let (g, m) = (magnitudes(&y), moments(&y));
            assert_eq!(g, Moments { sum: 0.0, ..m }, "{bad}");
            assert_eq!(g.nonfinite, 1);
        }
    }

    #[test]
    fn non_finite_values_are_counted_not_summed() {
        let x = [1.0f32, f32::NAN, -2.0, f32::INFINITY, f32::NEG_INFINITY, 3.0, 0.0, 0.0, 0.0, 4.0];
        let m = moments(&x);
        assert_eq!(m.nonfinite, 3);
        assert_eq!(m.sum, 6.0);
        assert_eq!(m.sumsq, 30.0);
        assert_eq!(m.maxabs, 4.0);
    }

    #[test]
    fn histogram_bins_by_decade_quarter() {
        let x = [0.0f32, 1e-20, 1.1e-12, 1.5e-12, 1.0, 9.99e3, 1e4, f32::NAN, -0.5];
        let h = Histogram::of(&x);
        assert_eq!(h.zeros, 1);
        assert_eq!(h.underflow, 1);
        assert_eq!(h.overflow, 1);
        assert_eq!(h.nonfinite, 1);
        assert_eq!(h.counts[0], 2); // 1.1e-12 and 1.5e-12 (log10 < -11.75)
        assert_eq!(h.counts[48], 1); // 1.0 -> log10 0 -> (0 + 12) * 4
        assert_eq!(h.counts[46], 1); // 0.5 -> -0.30 -> 46.8
        assert_eq!(h.counts[Histogram::BINS - 1], 1);
        assert_eq!(h.total(), x.len() as u64);
    }
}
