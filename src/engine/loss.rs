//! Losses on the network's outputs: value, batch accuracy and dL/d(output).

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use super::Real;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax over the outputs, then the mean over the batch of -log p(label).
    #[default]
    CrossEntropy,
    /// Mean over batch and outputs of (output - onehot(label))^2, as the seed post's nets.
    Mse,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown loss {0:?}; known: cross_entropy (alias ce, softmax), mse")]
pub struct UnknownLoss(String);

impl FromStr for Loss {
    type Err = UnknownLoss;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "cross_entropy" | "ce" | "softmax" | "xent" => Ok(Loss::CrossEntropy),
            "mse" | "mean_squared_error" => Ok(Loss::Mse),
            _ => Err(UnknownLoss(s.to_string())),
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        })
    }
}

/// Summed (not averaged) loss and correct count over a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    pub loss_sum: f64,
    pub correct: usize,
    pub n: usize,
}

impl BatchLoss {
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.n.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n.max(1) as f64
    }
    pub fn add(&mut self, other: BatchLoss) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.n += other.n;
    }
}

impl Loss {
    /// Evaluates the loss on `out` (batch x classes) and, if `grad` is given, writes
    /// dL/d(out) of the *batch mean* into it.
    pub fn eval<F: Real>(
        &self,
        out: ArrayView2<'_, F>,
        labels: &[u32],
        mut grad: Option<ArrayViewMut2<'_, F>>,
    ) -> BatchLoss {
        let (n, k) = out.dim();
        let mut res = BatchLoss { n, ..Default::default() };
        let inv_n = F::one() / F::of(n as f64);
        let want_grad = grad.is_some();
        match self {
            Loss::CrossEntropy => {
                // Each row's logits shifted by the row's maximum, exponentiated in one pass over
                // the whole batch (a scalar `exp` per element cost a tenth of a small step),
                // in the gradient's own buffer when it has one: this runs every step.
                let mut scratch = Vec::new();
                let e: &mut [F] = match grad.as_mut().and_then(|g| g.as_slice_mut()) {
                    Some(g) => g,
                    None => {
                        scratch.resize(n * k, F::zero());
                        &mut scratch
                    }
                };
                let mut shifted_y = Vec::with_capacity(n);
                for (i, row) in out.rows().into_iter().enumerate() {
                    let row = row.to_slice().expect("contiguous output rows");
                    let arg = argmax(row);
                    res.correct += (arg == labels[i] as usize) as usize;
                    let m = row[arg];
                    for (e, &v) in e[i * k..(i + 1) * k].iter_mut().zip(row) {
                        *e = v - m;
                    }
                    shifted_y.push(row[labels[i] as usize] - m);
                }
                exp_in_place(e);
                for i in 0..n {
                    let y = labels[i] as usize;
                    let e = &mut e[i * k..(i + 1) * k];
                    let mut s = F::zero();
                    for &v in e.iter() {
                        s += v;
                    }
                    res.loss_sum -= (shifted_y[i] - s.ln_ref()).f64();
                    if want_grad {
                        // dL/dlogit_j = (p_j - [j = y]) / n, written back into `e`.
                        for (j, v) in e.iter_mut().enumerate() {
                            *v = (*v / s - if j == y { F::one() } else { F::zero() }) * inv_n;
                        }
                    }
                }
                // A gradient view that is not one slice got `scratch` instead.
                if let Some(g) = grad.as_mut().filter(|_| !scratch.is_empty()) {
                    g.iter_mut().zip(&scratch).for_each(|(g, &v)| *g = v);
                }
            }
            Loss::Mse => {
                let scale = F::of(2.0) * inv_n / F::of(k as f64);
                for (i, row) in out.rows().into_iter().enumerate() {
                    let y = labels[i] as usize;
                    res.correct += (argmax(row.to_slice().expect("contiguous output rows")) == y) as usize;
                    let mut sq = 0.0;
                    for (j, &v) in row.iter().enumerate() {
                        let d = v - if j == y { F::one() } else { F::zero() };
                        sq += (d * d).f64();
                        if let Some(g) = grad.as_mut() {
                            g[[i, j]] = d * scale;
                        }
                    }
                    res.loss_sum += sq / k as f64;
                }
            }
        }
        res
    }
}

/// First index of the maximum: ties go to the lower class, deterministically.
fn argmax<F: Real>(row: &[F]) -> usize {
    let mut arg = 0;
    let mut best = row[0];
    for (j, &v) in row.iter().enumerate().skip(1) {
        // Selects, not branches: which logit is largest is as good as random to a predictor.
        arg = if v > best { j } else { arg };
        best = if v > best { v } else { best };
    }
    arg
}

super::fastmath::wide_fn! {
    fn exp_in_place<F: Real>(v: &mut [F]) {
        for x in v.iter_mut() {
            *x = x.exp_fast();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn gradients_match_finite_differences() {
        let out = array![[0.3, -1.2, 2.0], [0.0, 0.5, -0.5]];
        let labels = [2, 0];
        for loss in [Loss::CrossEntropy, Loss::Mse] {
            let mut g = Array2::<f64>::zeros((2, 3));
            loss.eval(out.view(), &labels, Some(g.view_mut()));
            for i in 0..2 {
                for j in 0..3 {
                    let h = 1e-6;
                    let mut p = out.clone();
                    p[[i, j]] += h;
                    let mut m = out.clone();
                    m[[i, j]] -= h;
                    let fd = (loss.eval(p.view(), &labels, None).loss() - loss.eval(m.view(), &labels, None).loss())
                        / (2.0 * h);
                    assert!((fd - g[[i, j]]).abs() < 1e-8, "{loss} [{i},{j}] fd {fd} vs {}", g[[i, j]]);
                }
            }
        }
    }

    #[test]
    fn cross_entropy_is_stable_for_huge_logits() {
        let out = array![[1000.0f32, -1000.0, 0.0]];
        let r = Loss::CrossEntropy.eval(out.view(), &[1], None);
        assert!(r.loss().is_finite() && (r.loss() - 2000.0).abs() < 1e-3, "{}", r.loss());
        assert_eq!(r.correct, 0);
        let r = Loss::CrossEntropy.eval(out.view(), &[0], None);
        assert_eq!(r.loss(), 0.0);
        assert_eq!(r.correct, 1);
    }

    #[test]
    fn parses() {
        assert_eq!("CE".parse::<Loss>().unwrap(), Loss::CrossEntropy);
        assert_eq!("mse".parse::<Loss>().unwrap(), Loss::Mse);
        assert!("hinge".parse::<Loss>().unwrap_err().to_string().contains("cross_entropy"));
    }
}
