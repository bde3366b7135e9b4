//! Mean-field signal propagation theory for deep fully connected networks
//! (Poole et al. 2016, "Exponential expressivity in deep neural networks through transient
//! chaos"; Schoenholz et al. 2017, "Deep information propagation").
//!
//! The network: hidden layers `l = 1..=D` of equal width `N`,
//! `h_l = W_l x_{l-1} + b_l`, `x_l = phi(h_l)`, `x_0` the input, with
//! `W_l ~ N(0, sigma_w^2 / fan_in)` and `b_l ~ N(0, sigma_b^2)`.
//!
//! * `q_l` is the mean squared pre-activation of hidden layer `l`. It follows the *length map*
//!   `q_{l+1} = sigma_w^2 E_z[phi(sqrt(q_l) z)^2] + sigma_b^2` (a second moment, not a variance:
//!   it matters for activations with a non-zero mean), starting from
//!   `q_1 = sigma_w^2 q_in + sigma_b^2`, where `q_in` is the input's mean squared component.
//! * `chi(q) = sigma_w^2 E_z[phi'(sqrt(q) z)^2]` is the factor by which one layer of
//!   backpropagation multiplies a squared gradient norm. At the fixed point `q*` of the length map,
//!   `chi_1 = chi(q*)` decides the regime: ordered (`chi_1 < 1`, vanishing gradients), critical
//!   (`chi_1 = 1`), chaotic (`chi_1 > 1`, exploding gradients).
//!
//! Gaussian expectations are computed by [`expect`]: adaptive Gauss–Legendre quadrature over
//! `|z| <= Z_MAX`, split at the kinks of the integrand (declared by the caller), so that piecewise
//! activations such as the ramp are integrated to ~1e-13 relative accuracy, where plain
//! Gauss–Hermite quadrature is off by up to tens of percent.
//!
//! Activations are taken as closures (`phi`, `dphi`, kink locations) so this module does not
//! depend on the activation module.

use std::sync::OnceLock;

use serde::Serialize;

/// Integration range in `z`: the standard normal density beyond `|z| = 12` is below 6e-32, so
/// truncating there is negligible even for integrands that grow polynomially in `z`.
pub const Z_MAX: f64 = 12.0;

/// `|chi_1 - 1|` at or below which the regime is [`Regime::Critical`].
pub const CRITICAL_TOL: f64 = 1e-8;

/// Number of Gauss–Legendre nodes per panel.
const GL_NODES: usize = 20;
/// Width (in `z`) of the initial panels.
const INITIAL_PANEL: f64 = 1.5;
/// Target for the estimated absolute error, relative to `sum |panel integrals|`.
const QUAD_REL_TOL: f64 = 1e-13;
/// Hard cap on the number of panels (reached only for undeclared discontinuities).
const MAX_PANELS: usize = 4000;
/// Panels narrower than this are not split further.
const MIN_PANEL: f64 = 1e-10;
/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Smallest `q` at which [`MeanFieldInput::chi`] evaluates its `q -> 0+` limit.
const Q_FLOOR: f64 = 1e-250;
/// Fixed-point search range, relative to `max(q_1, 1)` upwards and to `q_1` downwards.
const Q_SEARCH_RANGE: f64 = 1e30;
/// `|map(q) - q| <= FIXED_POINT_TOL * q` is indistinguishable from a fixed point.
const FIXED_POINT_TOL: f64 = 1e-12;

/// Gauss–Legendre nodes and weights on `[-1, 1]` (Newton iteration on `P_n`).
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        let mut z = libm::cos(std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5));
        let mut pp = 1.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 1..=n {
                let p3 = p2;
                p2 = p1;
                let jf = j as f64;
                p1 = ((2.0 * jf - 1.0) * z * p2 - (jf - 1.0) * p3) / jf;
            }
            pp = nf * (z * p1 - p2) / (z * z - 1.0);
            let dz = p1 / pp;
            z -= dz;
            if dz.abs() <= 1e-16 {
                break;
            }
        }
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * pp * pp);
        w[n - 1 - i] = w[i];
    }
    (x, w)
}

fn gl_rule() -> &'static (Vec<f64>, Vec<f64>) {
    static RULE: OnceLock<(Vec<f64>, Vec<f64>)> = OnceLock::new();
    RULE.get_or_init(|| gauss_legendre(GL_NODES))
}

/// Gauss–Legendre approximation of `int_a^b g`.
fn gl_panel(g: &dyn Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let (x, w) = gl_rule();
    let c = 0.5 * (a + b);
    let h = 0.5 * (b - a);
    h * x.iter().zip(w).map(|(&xi, &wi)| wi * g(c + h * xi)).sum::<f64>()
}

/// A panel `[a, b]` with its integral on both halves; `err` is how much the one-panel rule
/// differed from the two half-panel rules (an overestimate of the error of `left + right`).
struct Panel {
    a: f64,
    b: f64,
    left: f64,
    right: f64,
    err: f64,
}

impl Panel {
    fn new(g: &dyn Fn(f64) -> f64, a: f64, b: f64, whole: f64) -> Panel {
        let m = 0.5 * (a + b);
        let left = gl_panel(g, a, m);
        let right = gl_panel(g, m, b);
        let err = if b - a < MIN_PANEL { 0.0 } else { (left + right - whole).abs() };
        Panel { a, b, left, right, err }
    }
}

/// Globally adaptive integration of `g` over `[pts[0], pts[last]]`, with panel boundaries at
/// every point of the (sorted) `pts`.
fn integrate(g: &dyn Fn(f64) -> f64, pts: &[f64]) -> f64 {
    let mut panels: Vec<Panel> =
        pts.windows(2).filter(|p| p[1] > p[0]).map(|p| Panel::new(g, p[0], p[1], gl_panel(g, p[0], p[1]))).collect();
    loop {
        let (mut total, mut err, mut scale) = (0.0, 0.0, 0.0);
        let mut worst = 0;
        for (i, p) in panels.iter().enumerate() {
            let v = p.left + p.right;
            total += v;
            scale += v.abs();
            err += p.err;
            if p.err > panels[worst].err {
                worst = i;
            }
        }
        if !total.is_finite() || err <= QUAD_REL_TOL * scale || panels.len() >= MAX_PANELS {
            return total;
        }
        let p = panels.swap_remove(worst);
        let m = 0.5 * (p.a + p.b);
        panels.push(Panel::new(g, p.a, m, p.left));
        panels.push(Panel::new(g, m, p.b, p.right));
    }
}

/// `E_z[f(sqrt(q) z)]` for `z ~ N(0, 1)`: the expectation of `f` over `N(0, q)`.
///
/// `kinks` are the points (in `x` units, i.e. arguments of `f`) where `f` or its derivatives
/// are discontinuous (e.g. `[0.0]` for `max(x, 0)^2` or `1{x > 0}`); the integration is split
/// there (the kink in `z` is at `x / sqrt(q)`). Kinks outside `|z| <= Z_MAX` are ignored.
///
/// Accuracy: the adaptive refinement targets an estimated error of 1e-13 relative to `E|f|`
/// (the estimate is pessimistic); the tests see at most ~5e-16 relative error against closed
/// forms (`x^2`, `x^4`, `max(x,0)^2`, `|x|`, steps and shifted ramps with declared kinks) and
/// against a reference for `tanh^2`, for `q` from 1e-6 to 1e4. Integrands must be smooth between
/// the declared kinks and grow at most polynomially. Cost: about 1000–2000 evaluations of `f`.
/// `q = 0` gives `f(0)`; a negative or non-finite `q` gives NaN.
pub fn expect(f: impl Fn(f64) -> f64, q: f64, kinks: &[f64]) -> f64 {
    if !(q >= 0.0 && q.is_finite()) {
        return f64::NAN;
    }
    if q == 0.0 {
        return f(0.0);
    }
    let s = q.sqrt();
    let g = |z: f64| f(s * z) * libm::exp(-0.5 * z * z) * INV_SQRT_2PI;
    let n_grid = (2.0 * Z_MAX / INITIAL_PANEL).round() as usize;
    let mut pts: Vec<f64> = (0..=n_grid).map(|i| -Z_MAX + 2.0 * Z_MAX * i as f64 / n_grid as f64).collect();
    pts.extend(kinks.iter().map(|&x| x / s).filter(|z| z.is_finite() && z.abs() < Z_MAX));
    pts.sort_by(f64::total_cmp);
    pts.dedup();
    integrate(&g, &pts)
}

/// Everything the theory needs to know about a network: its activation (as closures plus kink
/// locations) and its initialization.
#[derive(Clone, Copy)]
pub struct MeanFieldInput<'a> {
    /// The activation `phi`.
    pub phi: &'a dyn Fn(f64) -> f64,
    /// Its derivative `phi'` (any value at the kinks).
    pub dphi: &'a dyn Fn(f64) -> f64,
    /// Points where `phi` or `phi'` is not smooth (e.g. `[0.0]` for the ramp), in `x` units.
    pub kinks: &'a [f64],
    /// Weight scale: `W ~ N(0, sigma_w^2 / fan_in)`. Only `sigma_w^2` matters.
    pub sigma_w: f64,
    /// Bias scale: `b ~ N(0, sigma_b^2)`. Only `sigma_b^2` matters.
    pub sigma_b: f64,
    /// Mean squared component of the input (1 for standardized inputs).
    pub q_in: f64,
}

impl std::fmt::Debug for MeanFieldInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeanFieldInput")
            .field("kinks", &self.kinks)
            .field("sigma_w", &self.sigma_w)
            .field("sigma_b", &self.sigma_b)
            .field("q_in", &self.q_in)
            .finish_non_exhaustive()
    }
}

impl MeanFieldInput<'_> {
    fn sw2(&self) -> f64 {
        self.sigma_w * self.sigma_w
    }

    fn sb2(&self) -> f64 {
        self.sigma_b * self.sigma_b
    }

    /// `q_1 = sigma_w^2 q_in + sigma_b^2`, the mean squared pre-activation of hidden layer 1.
    pub fn q1(&self) -> f64 {
        self.sw2() * self.q_in + self.sb2()
    }

    /// `E_z[phi(sqrt(q) z)^2]`: the mean squared post-activation of a layer whose mean squared
    /// pre-activation is `q`.
    pub fn second_moment(&self, q: f64) -> f64 {
        expect(
            |x| {
                let p = (self.phi)(x);
                p * p
            },
            q,
            self.kinks,
        )
    }

    /// The length map `q -> sigma_w^2 E_z[phi(sqrt(q) z)^2] + sigma_b^2`.
    pub fn length_map(&self, q: f64) -> f64 {
        self.sw2() * self.second_moment(q) + self.sb2()
    }

    /// `chi(q) = sigma_w^2 E_z[phi'(sqrt(q) z)^2]`. At `q = 0` this is the limit `q -> 0+`
    /// (evaluated at `q = 1e-250`), so a kink of `phi'` at 0 gives the average of both sides
    /// (`1/2` for the ramp) rather than the arbitrary value of `phi'(0)`.
    pub fn chi(&self, q: f64) -> f64 {
        self.sw2()
            * expect(
                |x| {
                    let d = (self.dphi)(x);
                    d * d
                },
                q.max(Q_FLOOR),
                self.kinks,
            )
    }

    /// Where the length map takes `q`, starting from `q_1`.
    ///
    /// Method: if `q_1` is (to 1e-12 relative) a fixed point, it is [`FixedPoint::Neutral`] when
    /// the map is also the identity at `q_1 / 2` and `2 q_1`, else [`FixedPoint::Converged`].
    /// Otherwise the search walks from `q_1` in the direction the map moves `q` (doubling or
    /// halving) until `map(q) - q` changes sign, then solves `map(q) = q` with Brent's method:
    /// for an increasing map (the usual case) this is the fixed point the iteration converges to.
    /// No sign change up to `1e30 max(q_1, 1)` means [`FixedPoint::DriftsToInfinity`]; none down
    /// to `1e-30 q_1` with `map(0) = 0` means `q -> 0`: [`FixedPoint::Converged`] at 0 if the map's
    /// slope at 0 is below `1 - CRITICAL_TOL` (geometric convergence), else
    /// [`FixedPoint::DriftsToZero`] (marginal, `q_l` decays only algebraically, like `1/(2l)` for
    /// tanh at `sigma_w = 1`).
    pub fn fixed_point(&self) -> FixedPoint {
        let g = |q: f64| self.length_map(q) - q;
        let q1 = self.q1();
        let g1 = g(q1);
        // A sign of `map(q) - q` counts only when it exceeds the quadrature's rounding error.
        let significant = |gq: f64, q: f64| gq.abs() > FIXED_POINT_TOL * q;
        if !g1.is_finite() {
            return FixedPoint::DriftsToInfinity;
        }
        if !significant(g1, q1) {
            if q1 > 0.0 && [0.5 * q1, 2.0 * q1].iter().all(|&q| g(q).abs() <= 1e-10 * q) {
                return FixedPoint::Neutral { q_star: q1 };
            }
            return FixedPoint::Converged { q_star: q1 };
        }
        if g1 > 0.0 {
            let q_max = Q_SEARCH_RANGE * q1.max(1.0);
            let (mut lo, mut g_lo) = (q1, g1);
            let mut hi = if q1 > 0.0 { 2.0 * q1 } else { g1 };
            loop {
                let g_hi = g(hi);
                if !g_hi.is_finite() {
                    return FixedPoint::DriftsToInfinity;
                }
                if g_hi < 0.0 && significant(g_hi, hi) {
                    let q_star = brent(&g, lo, hi, g_lo, g_hi);
                    return FixedPoint::Converged { q_star };
                }
                if g_hi > 0.0 {
                    (lo, g_lo) = (hi, g_hi);
                }
                hi *= 2.0;
                if hi > q_max {
                    return FixedPoint::DriftsToInfinity;
                }
            }
        }
        // g1 < 0: q decreases.
        let q_min = q1 / Q_SEARCH_RANGE;
        let (mut hi, mut g_hi) = (q1, g1);
        let mut lo = 0.5 * q1;
        while lo >= q_min {
            let g_lo = g(lo);
            if g_lo > 0.0 && significant(g_lo, lo) {
                let q_star = brent(&g, lo, hi, g_lo, g_hi);
                return FixedPoint::Converged { q_star };
            }
            if g_lo < 0.0 {
                (hi, g_hi) = (lo, g_lo);
            }
            lo *= 0.5;
        }
        let g0 = g(0.0);
        if g0 > 0.0 {
            let q_star = brent(&g, 0.0, hi, g0, g_hi);
            return FixedPoint::Converged { q_star };
        }
        let q_small = 2.0 * lo;
        let slope = self.length_map(q_small) / q_small;
        if slope < 1.0 - CRITICAL_TOL { FixedPoint::Converged { q_star: 0.0 } } else { FixedPoint::DriftsToZero }
    }
}

/// Brent's root finder on a bracket `[a, b]` with `fa * fb <= 0`, to full f64 precision.
fn brent(f: &dyn Fn(f64) -> f64, mut a: f64, mut b: f64, mut fa: f64, mut fb: f64) -> f64 {
    let (mut c, mut fc) = (b, fb);
    let mut d = b - a;
    let mut e = d;
    for _ in 0..300 {
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            (c, fc) = (a, fa);
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            (a, fa) = (b, fb);
            (b, fb) = (c, fc);
            (c, fc) = (a, fa);
        }
        let tol = 2.0 * f64::EPSILON * b.abs() + 1e-300;
        let xm = 0.5 * (c - b);
        if xm.abs() <= tol || fb == 0.0 {
            return b;
        }
        if e.abs() >= tol && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                p = 2.0 * xm * s;
                q = 1.0 - s;
            } else {
                let qa = fa / fc;
                let r = fb / fc;
                p = s * (2.0 * xm * qa * (qa - r) - (b - a) * (r - 1.0));
                q = (qa - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            }
            p = p.abs();
            let min1 = 3.0 * xm * q - (tol * q).abs();
            let min2 = (e * q).abs();
            if 2.0 * p < min1.min(min2) {
                e = d;
                d = p / q;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        (a, fa) = (b, fb);
        b += if d.abs() > tol { d } else { tol.copysign(xm) };
        fb = f(b);
    }
    b
}

/// Where the length map takes `q` from `q_1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixedPoint {
    /// `q_l` settles at `q_star` (finite, positive or exactly 0), geometrically fast.
    Converged { q_star: f64 },
    /// `q_l -> 0` but only algebraically: 0 is a marginally stable fixed point (map slope 1 at 0),
    /// e.g. tanh at `sigma_w = 1`, `sigma_b = 0`.
    DriftsToZero,
    /// `q_l` grows without bound, e.g. the ramp with `sigma_w^2 > 2`, or `= 2` with `sigma_b > 0`.
    DriftsToInfinity,
    /// The map is the identity around `q_1` (a line of fixed points): `q_l = q_1 = q_star` at every
    /// depth, e.g. the ramp at `sigma_w^2 = 2`, `sigma_b = 0`.
    Neutral { q_star: f64 },
}

impl FixedPoint {
    /// The limit of `q_l`: `Some(0.0)` for [`FixedPoint::DriftsToZero`], `None` for
    /// [`FixedPoint::DriftsToInfinity`].
    pub fn q_star(&self) -> Option<f64> {
        match *self {
            FixedPoint::Converged { q_star } | FixedPoint::Neutral { q_star } => Some(q_star),
            FixedPoint::DriftsToZero => Some(0.0),
            FixedPoint::DriftsToInfinity => None,
        }
    }
}

/// Gradient regime at the fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// `chi_1 < 1`: gradients vanish towards the input.
    Ordered,
    /// `|chi_1 - 1| <= CRITICAL_TOL`.
    Critical,
    /// `chi_1 > 1`: gradients explode towards the input.
    Chaotic,
}

impl Regime {
    /// The regime of a given `chi_1`.
    pub fn of(chi1: f64) -> Regime {
        if (chi1 - 1.0).abs() <= CRITICAL_TOL {
            Regime::Critical
        } else if chi1 < 1.0 {
            Regime::Ordered
        } else {
            Regime::Chaotic
        }
    }
}

/// Mean-field prediction for hidden layer `layer` (1-based) of a net of depth `D`.
///
/// Backpropagation, per example and in the mean-field approximation (independent weights,
/// widths large): with `g_l = dL/dx_l` (gradient at the layer's output),
/// `delta_l = dL/dh_l = phi'(h_l) * g_l` (at its pre-activation) and `g_l = W_{l+1}^T delta_{l+1}`,
///
/// * `|g_l|^2 = sigma_w^2 E[phi'(h_{l+1})^2] |g_{l+1}|^2 = chi_{l+1} |g_{l+1}|^2`,
/// * `|delta_l|^2 = E[phi'(h_l)^2] sigma_w^2 |delta_{l+1}|^2 = chi_l |delta_{l+1}|^2`,
/// * `|dL/dW_l|^2 = |delta_l|^2 |x_{l-1}|^2` (a rank-one outer product),
///
/// where `chi_k = chi(q_k)` uses the pre-activation second moment of layer `k` (the layer whose
/// `phi'` the backward pass multiplies by). These hold for any widths when `W ~ N(0, sigma_w^2 /
/// fan_in)` except for the `|x_{l-1}|^2` factor, which is `N_{l-1} E[phi(h_{l-1})^2]`: the
/// weight-gradient ratio below assumes every hidden layer has the same width and counts the input
/// as a layer of that same width; if the input dimension `N_0` differs from the hidden width `N`,
/// multiply layer 1's `weight_grad_ratio_to_last` by `sqrt(N_0 / N)`. All the ratios take the
/// drift of `q_l` into account (they use `chi(q_k)` along the actual depth, not `chi_1`); at a
/// fixed point all three are `chi_1^((D - l) / 2)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerPrediction {
    /// Hidden-layer index, 1-based.
    pub layer: usize,
    /// Mean squared pre-activation `q_l`.
    pub q: f64,
    /// `chi_l = chi(q_l)`.
    pub chi: f64,
    /// `|dL/dx_l| / |dL/dx_D| = sqrt(prod_{k=l+1}^{D} chi_k)` (gradient at the layer's output).
    pub grad_ratio_to_last: f64,
    /// `|dL/dh_l| / |dL/dh_D| = sqrt(prod_{k=l}^{D-1} chi_k)` (gradient at the pre-activation,
    /// which is also what reaches the bias `b_l`).
    pub delta_ratio_to_last: f64,
    /// `|dL/dW_l| / |dL/dW_D| = sqrt(prod_{k=l}^{D-1} chi_k * m_{l-1} / m_{D-1})` with
    /// `m_k = E[phi(h_k)^2]` the post-activation second moment (`m_0 = q_in`): the weight-gradient
    /// norm, what training measures per weight matrix (equal-width caveat above).
    pub weight_grad_ratio_to_last: f64,
}

/// The mean-field prediction for a net of a given depth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Where the length map takes `q` from `q_1`.
    pub fixed_point: FixedPoint,
    /// `chi` at the limit of `q`: `chi(q*)` (the `q -> 0+` limit when `q* = 0`); for
    /// [`FixedPoint::DriftsToInfinity`], `chi` at `q = 1e30 max(q_1, 1)` (standing in for
    /// `q -> inf`; exact for positively homogeneous activations such as the ramp).
    pub chi1: f64,
    /// Regime of `chi1`.
    pub regime: Regime,
    /// Gradient depth scale `xi = 1 / |ln chi_1|`: squared gradient norms change by a factor `e`
    /// every `xi` layers (shrinking towards the input when ordered, growing when chaotic); the
    /// usual `-1 / ln chi_1` of the ordered phase. Infinite at `chi_1 = 1` (serialized by
    /// serde_json as `null`).
    pub depth_scale: f64,
    /// Hidden layers `1..=D`.
    pub layers: Vec<LayerPrediction>,
    /// First to last hidden layer: `layers[0].grad_ratio_to_last`, i.e.
    /// `sqrt(prod_{k=2}^{D} chi_k)`.
    pub first_last_ratio: f64,
    /// First to last hidden layer weight gradients: `layers[0].weight_grad_ratio_to_last`.
    pub weight_first_last_ratio: f64,
}

/// Invalid input to [`predict`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeanFieldError {
    #[error("invalid mean-field parameter: {0}")]
    InvalidParameter(&'static str),
}

/// Mean-field prediction for a net of `depth` hidden layers (`depth >= 1`).
///
/// `q_l` for `l = 1..=depth` is iterated from `q_1` with the length map (so drift towards or
/// away from the fixed point is captured), and the gradient ratios use `chi(q_l)` along the way;
/// see [`LayerPrediction`] for which `chi_k` enter which ratio.
pub fn predict(input: &MeanFieldInput, depth: usize) -> Result<Prediction, MeanFieldError> {
    use MeanFieldError::InvalidParameter;
    if depth == 0 {
        return Err(InvalidParameter("depth must be at least 1"));
    }
    if !input.sigma_w.is_finite() {
        return Err(InvalidParameter("sigma_w must be finite"));
    }
    if !input.sigma_b.is_finite() {
        return Err(InvalidParameter("sigma_b must be finite"));
    }
    if !(input.q_in.is_finite() && input.q_in >= 0.0) {
        return Err(InvalidParameter("q_in must be finite and non-negative"));
    }

    let fixed_point = input.fixed_point();
    let chi1 = match fixed_point.q_star() {
        Some(q) => input.chi(q),
        None => input.chi(Q_SEARCH_RANGE * input.q1().max(1.0)),
    };
    let regime = Regime::of(chi1);
    let depth_scale = 1.0 / libm::log(chi1).abs();

    // q[i], chi[i] for hidden layer l = i + 1; m_prev[i] = m_{l-1} (m_0 = q_in).
    let mut q = Vec::with_capacity(depth);
    let mut m_prev = Vec::with_capacity(depth);
    let (mut ql, mut m) = (input.q1(), input.q_in);
    for _ in 0..depth {
        q.push(ql);
        m_prev.push(m);
        m = input.second_moment(ql);
        ql = input.sw2() * m + input.sb2();
    }
    let chi: Vec<f64> = q.iter().map(|&ql| input.chi(ql)).collect();
    let ln_chi: Vec<f64> = chi.iter().map(|&c| libm::log(c)).collect();

    // Suffix sums: post[i] = sum_{j=i+1}^{D-1} ln chi[j], pre[i] = sum_{j=i}^{D-2} ln chi[j].
    let mut post = vec![0.0; depth];
    let mut pre = vec![0.0; depth];
    for i in (0..depth - 1).rev() {
        post[i] = post[i + 1] + ln_chi[i + 1];
        pre[i] = pre[i + 1] + ln_chi[i];
    }
    let m_last = m_prev[depth - 1];
    let layers: Vec<LayerPrediction> = (0..depth)
        .map(|i| LayerPrediction {
            layer: i + 1,
            q: q[i],
            chi: chi[i],
            grad_ratio_to_last: libm::exp(0.5 * post[i]),
            delta_ratio_to_last: libm::exp(0.5 * pre[i]),
            weight_grad_ratio_to_last: libm::exp(0.5 * pre[i]) * (m_prev[i] / m_last).sqrt(),
        })
        .collect();
    let first_last_ratio = layers[0].grad_ratio_to_last;
    let weight_first_last_ratio = layers[0].weight_grad_ratio_to_last;
    Ok(Prediction { fixed_point, chi1, regime, depth_scale, layers, first_last_ratio, weight_first_last_ratio })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QS: [f64; 7] = [1e-6, 1e-3, 0.1, 1.0, 3.7, 100.0, 1e4];

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    /// Very fine trapezoid for `E_z[f(sqrt(q) z)]` (spectrally accurate for smooth `f`).
    fn trapezoid(f: impl Fn(f64) -> f64, q: f64) -> f64 {
        let n = 2_000_000;
        let h = 2.0 * Z_MAX / n as f64;
        let s = q.sqrt();
        // Kahan summation: a plain sum of 2e6 terms would be off by ~1e-13.
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        for i in 0..=n {
            let z = -Z_MAX + h * i as f64;
            let w = if i == 0 || i == n { 0.5 } else { 1.0 };
            let y = w * f(s * z) * (-0.5 * z * z).exp() - comp;
            let t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
        sum * h * INV_SQRT_2PI
    }

    /// Physicists' Gauss–Hermite nodes and weights (weight `exp(-x^2)`).
    fn gauss_hermite(n: usize) -> (Vec<f64>, Vec<f64>) {
        let pim4 = std::f64::consts::PI.powf(-0.25);
        let nf = n as f64;
        let mut x = vec![0.0; n];
        let mut w = vec![0.0; n];
        let mut z: f64 = 0.0;
        for i in 0..n.div_ceil(2) {
            z = match i {
                0 => (2.0 * nf + 1.0).sqrt() - 1.85575 * (2.0 * nf + 1.0).powf(-0.16667),
                1 => z - 1.14 * nf.powf(0.426) / z,
                2 => 1.86 * z - 0.86 * x[0],
                3 => 1.91 * z - 0.91 * x[1],
                _ => 2.0 * z - x[i - 2],
            };
            let mut pp = 1.0;
            for _ in 0..100 {
                let (mut p1, mut p2) = (pim4, 0.0);
                for j in 1..=n {
                    let p3 = p2;
                    p2 = p1;
                    let jf = j as f64;
                    p1 = z * (2.0 / jf).sqrt() * p2 - ((jf - 1.0) / jf).sqrt() * p3;
                }
                pp = (2.0 * nf).sqrt() * p2;
                let dz = p1 / pp;
                z -= dz;
                if dz.abs() <= 1e-15 {
                    break;
                }
            }
            x[i] = z;
            x[n - 1 - i] = -z;
            w[i] = 2.0 / (pp * pp);
            w[n - 1 - i] = w[i];
        }
        (x, w)
    }

    fn ramp(x: f64) -> f64 {
        x.max(0.0)
    }
    fn step(x: f64) -> f64 {
        if x > 0.0 { 1.0 } else { 0.0 }
    }
    fn dtanh(x: f64) -> f64 {
        1.0 - x.tanh().powi(2)
    }
    fn logistic(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    fn dlogistic(x: f64) -> f64 {
        let s = logistic(x);
        s * (1.0 - s)
    }

    fn input<'a>(
        phi: &'a dyn Fn(f64) -> f64,
        dphi: &'a dyn Fn(f64) -> f64,
        kinks: &'a [f64],
        sigma_w: f64,
        sigma_b: f64,
    ) -> MeanFieldInput<'a> {
        MeanFieldInput { phi, dphi, kinks, sigma_w, sigma_b, q_in: 1.0 }
    }

    #[test]
    fn gauss_legendre_is_exact_for_polynomials() {
        let (x, w) = gl_rule();
        for k in 0..GL_NODES {
            let got: f64 = x.iter().zip(w).map(|(&x, &w)| w * x.powi(2 * k as i32)).sum();
            let want = 2.0 / (2 * k + 1) as f64;
            assert!(rel(got, want) < 1e-14, "k={k}: {got} vs {want}");
        }
    }

    #[test]
    fn expectations_match_closed_forms() {
        let sqrt_2_pi = (2.0 / std::f64::consts::PI).sqrt();
        for &q in &QS {
            let cases: [(f64, f64, &str); 6] = [
                (expect(|x| x * x, q, &[]), q, "x^2"),
                (expect(|x| x.powi(4), q, &[]), 3.0 * q * q, "x^4"),
                (expect(|x| ramp(x).powi(2), q, &[0.0]), 0.5 * q, "ramp^2"),
                (expect(f64::abs, q, &[0.0]), q.sqrt() * sqrt_2_pi, "|x|"),
                (expect(step, q, &[0.0]), 0.5, "step"),
                (expect(|_| 1.0, q, &[]), 1.0, "1"),
            ];
            for (got, want, name) in cases {
                assert!(rel(got, want) < 1e-13, "q={q} {name}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn kinks_away_from_zero_scale_with_sqrt_q() {
        // 1 - Phi(1) and 1 - Phi(2).
        let tail1 = 0.158_655_253_931_457_05;
        let tail2 = 0.022_750_131_948_179_21;
        for &q in &QS {
            let s = q.sqrt();
            let got = expect(|x| if x > s { 1.0 } else { 0.0 }, q, &[s]);
            assert!(rel(got, tail1) < 1e-12, "q={q}: {got}");
            let got = expect(|x| if x < -2.0 * s { 1.0 } else { 0.0 }, q, &[-2.0 * s]);
            assert!(rel(got, tail2) < 1e-12, "q={q}: {got}");
            // E[max(x - s, 0)] = s (pdf(1) - tail1).
            let pdf1 = INV_SQRT_2PI * (-0.5f64).exp();
            let got = expect(|x| (x - s).max(0.0), q, &[s]);
            assert!(rel(got, s * (pdf1 - tail1)) < 1e-12, "q={q}: {got}");
        }
    }

    #[test]
    fn smooth_expectations_match_fine_trapezoid() {
        for &q in &QS {
            let got = expect(|x| x.tanh().powi(2), q, &[]);
            let want = trapezoid(|x| x.tanh().powi(2), q);
            assert!(rel(got, want) < 1e-13, "q={q}: {got} vs {want}");
            let got = expect(|x| dtanh(x).powi(2), q, &[]);
            let want = trapezoid(|x| dtanh(x).powi(2), q);
            assert!(rel(got, want) < 1e-13, "q={q}: {got} vs {want}");
        }
    }

    #[test]
    fn kinks_beat_plain_gauss_hermite() {
        let (x, w) = gauss_hermite(20);
        let gh = |f: &dyn Fn(f64) -> f64| -> f64 {
            x.iter().zip(&w).map(|(&x, &w)| w * f(std::f64::consts::SQRT_2 * x)).sum::<f64>()
                / std::f64::consts::PI.sqrt()
        };
        // The Gauss-Hermite rule itself is right on smooth functions...
        assert!(rel(gh(&|z| z.powi(4)), 3.0) < 1e-12);
        // ...but not across a kink.
        // (E[max(z, 0)^2] and E[1{z > 0}] come out exact by symmetry; E[max(z, 0)] does not.)
        let gh_err = rel(gh(&ramp), INV_SQRT_2PI);
        let our_err = rel(expect(ramp, 1.0, &[0.0]), INV_SQRT_2PI);
        assert!(gh_err > 1e-2, "{gh_err}");
        assert!(our_err < 1e-14, "{our_err}");
        // An undeclared kink (off the panel grid) costs accuracy: E[max(z - 1, 0)].
        let want = INV_SQRT_2PI * (-0.5f64).exp() - 0.158_655_253_931_457_05;
        let with_kink = rel(expect(|z| (z - 1.0).max(0.0), 1.0, &[1.0]), want);
        let without = rel(expect(|z| (z - 1.0).max(0.0), 1.0, &[]), want);
        assert!(with_kink < 1e-13 && without > 10.0 * with_kink, "{with_kink} {without}");
    }

    #[test]
    fn ramp_he_init_is_critical_with_constant_q() {
        let inp = input(&ramp, &step, &[0.0], 2f64.sqrt(), 0.0);
        let p = predict(&inp, 20).unwrap();
        assert!(
            matches!(p.fixed_point, FixedPoint::Neutral { q_star } if rel(q_star, 2.0) < 1e-12),
            "{:?}",
            p.fixed_point
        );
        assert!((p.chi1 - 1.0).abs() < 1e-9, "{}", p.chi1);
        assert_eq!(p.regime, Regime::Critical);
        for l in &p.layers {
            assert!(rel(l.q, 2.0) < 1e-9 && (l.chi - 1.0).abs() < 1e-9, "{l:?}");
            assert!((l.grad_ratio_to_last - 1.0).abs() < 1e-8);
            assert!((l.weight_grad_ratio_to_last - 1.0).abs() < 1e-8);
        }
        assert!(p.depth_scale > 1e6);
    }

    #[test]
    fn ramp_off_criticality() {
        // sigma_w^2 = 1: q halves every layer, chi = 1/2.
        let inp = input(&ramp, &step, &[0.0], 1.0, 0.0);
        let p = predict(&inp, 5).unwrap();
        assert_eq!(p.fixed_point, FixedPoint::Converged { q_star: 0.0 });
        assert!(rel(p.chi1, 0.5) < 1e-12);
        assert_eq!(p.regime, Regime::Ordered);
        assert!(rel(p.depth_scale, 1.0 / 2f64.ln()) < 1e-10);
        assert!(rel(p.first_last_ratio, 0.5f64.powi(2)) < 1e-10);
        assert!(rel(p.layers[4].q, 1.0 / 16.0) < 1e-12);
        // sigma_w^2 = 3: q grows by 3/2 per layer.
        let inp = input(&ramp, &step, &[0.0], 3f64.sqrt(), 0.0);
        let p = predict(&inp, 5).unwrap();
        assert_eq!(p.fixed_point, FixedPoint::DriftsToInfinity);
        assert!(rel(p.chi1, 1.5) < 1e-12);
        assert_eq!(p.regime, Regime::Chaotic);
        // He init with bias: q grows linearly, chi stays 1.
        let inp = input(&ramp, &step, &[0.0], 2f64.sqrt(), 0.1);
        let p = predict(&inp, 5).unwrap();
        assert_eq!(p.fixed_point, FixedPoint::DriftsToInfinity);
        assert_eq!(p.regime, Regime::Critical);
        assert!(rel(p.layers[4].q, 2.01 + 4.0 * 0.01) < 1e-12);
    }

    #[test]
    fn tanh_sigma_w_one_drifts_to_zero() {
        let inp = input(&f64::tanh, &dtanh, &[], 1.0, 0.0);
        let p = predict(&inp, 50).unwrap();
        assert!(
            matches!(p.fixed_point, FixedPoint::DriftsToZero | FixedPoint::Converged { q_star: 0.0 }),
            "{:?}",
            p.fixed_point
        );
        assert!((p.chi1 - 1.0).abs() < 1e-9, "{}", p.chi1);
        assert_eq!(p.regime, Regime::Critical);
        // q decays slowly (algebraically); chi_l < 1 along the way, so gradients still shrink.
        assert!(p.layers.windows(2).all(|w| w[1].q < w[0].q));
        assert!(p.layers[49].q > 0.005);
        assert!(p.first_last_ratio < 1.0);
    }

    #[test]
    fn tanh_small_sigma_w_is_ordered() {
        let inp = input(&f64::tanh, &dtanh, &[], 0.5, 0.0);
        let p = predict(&inp, 10).unwrap();
        assert_eq!(p.fixed_point, FixedPoint::Converged { q_star: 0.0 });
        assert!((p.chi1 - 0.25).abs() < 1e-9, "{}", p.chi1);
        assert_eq!(p.regime, Regime::Ordered);
    }

    #[test]
    fn tanh_large_sigma_w_is_chaotic() {
        let inp = input(&f64::tanh, &dtanh, &[], 2.5, 0.0);
        let p = predict(&inp, 10).unwrap();
        let FixedPoint::Converged { q_star } = p.fixed_point else { panic!("{:?}", p.fixed_point) };
        assert!(q_star > 0.1);
        assert!(rel(inp.length_map(q_star), q_star) < 1e-9);
        // Independent check of the fixed-point equation.
        let direct = 6.25 * trapezoid(|x| x.tanh().powi(2), q_star);
        assert!(rel(direct, q_star) < 1e-9, "{direct} vs {q_star}");
        assert!(p.chi1 > 1.0);
        assert_eq!(p.regime, Regime::Chaotic);
        assert!(p.first_last_ratio > 1.0);
    }

    #[test]
    fn tanh_with_bias_converges_to_positive_fixed_point() {
        let inp = input(&f64::tanh, &dtanh, &[], 1.0, 0.3);
        let FixedPoint::Converged { q_star } = inp.fixed_point() else { panic!() };
        assert!(q_star > 0.0 && rel(inp.length_map(q_star), q_star) < 1e-12);
        // Starting below the fixed point (tiny input) goes up to the same q*.
        let low = MeanFieldInput { q_in: 0.0, ..inp };
        let FixedPoint::Converged { q_star: q_low } = low.fixed_point() else { panic!() };
        assert!(rel(q_low, q_star) < 1e-14);
    }

    #[test]
    fn logistic_uses_the_second_moment() {
        let inp = input(&logistic, &dlogistic, &[], 1.0, 0.0);
        let p = predict(&inp, 10).unwrap();
        let FixedPoint::Converged { q_star } = p.fixed_point else { panic!("{:?}", p.fixed_point) };
        // E[sigma^2] >= E[sigma]^2 = 1/4, so q* >= 1/4 (a variance-based map would give less).
        assert!(q_star > 0.25);
        let direct = trapezoid(|x| logistic(x).powi(2), q_star);
        assert!(rel(direct, q_star) < 1e-9, "{direct} vs {q_star}");
        let chi_direct = trapezoid(|x| dlogistic(x).powi(2), q_star);
        assert!(rel(p.chi1, chi_direct) < 1e-9);
        assert_eq!(p.regime, Regime::Ordered);
    }

    #[test]
    fn layer_ratios_multiply_consistently() {
        let inp = MeanFieldInput { q_in: 4.0, ..input(&f64::tanh, &dtanh, &[], 1.3, 0.1) };
        let d = 12;
        let p = predict(&inp, d).unwrap();
        let ls = &p.layers;
        assert_eq!(ls.len(), d);
        assert!(rel(ls[0].q, 1.69 * 4.0 + 0.01) < 1e-15);
        let last = &ls[d - 1];
        assert_eq!((last.grad_ratio_to_last, last.delta_ratio_to_last), (1.0, 1.0));
        assert!((last.weight_grad_ratio_to_last - 1.0).abs() < 1e-15);
        let mut product = 1.0;
        let mut product_w = 1.0;
        for l in 0..d - 1 {
            assert!(rel(ls[l + 1].q, inp.length_map(ls[l].q)) < 1e-14);
            let step = ls[l].grad_ratio_to_last / ls[l + 1].grad_ratio_to_last;
            assert!(rel(step, ls[l + 1].chi.sqrt()) < 1e-12);
            let step_delta = ls[l].delta_ratio_to_last / ls[l + 1].delta_ratio_to_last;
            assert!(rel(step_delta, ls[l].chi.sqrt()) < 1e-12);
            product *= step;
            product_w *= ls[l].weight_grad_ratio_to_last / ls[l + 1].weight_grad_ratio_to_last;
        }
        assert!(rel(p.first_last_ratio, product) < 1e-12);
        assert!(rel(p.weight_first_last_ratio, product_w) < 1e-12);
        // Weight ratio = delta ratio * sqrt(m_{l-1} / m_{D-1}), m_0 = q_in.
        let m_last = inp.second_moment(ls[d - 2].q);
        assert!(rel(ls[0].weight_grad_ratio_to_last, ls[0].delta_ratio_to_last * (4.0 / m_last).sqrt()) < 1e-12);
    }

    #[test]
    fn rejects_bad_input_and_serializes() {
        let inp = input(&f64::tanh, &dtanh, &[], 1.0, 0.0);
        assert!(predict(&inp, 0).is_err());
        assert!(predict(&input(&f64::tanh, &dtanh, &[], f64::NAN, 0.0), 3).is_err());
        assert!(predict(&MeanFieldInput { q_in: -1.0, ..inp }, 3).is_err());
        let p = predict(&inp, 3).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"regime\":\"critical\""), "{json}");
        assert!(json.contains("\"kind\":\"drifts_to_zero\""), "{json}");
    }
}
