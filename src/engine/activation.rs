//! Activation functions φ, their derivatives, and the slice kernels of the hot loop.
//!
//! Two paths, both generic over [`Real`]:
//! - scalar [`Activation::value`] / [`Activation::derivative`]: std/libm functions, written in
//!   forms without cancellation, so in `f64` they are accurate to a few ulps (used by mean-field
//!   theory and as the reference in tests);
//! - slice kernels [`Activation::forward`], [`Activation::derivative_slice`] and the training
//!   step's fused layer passes [`forward_layer`] and [`backward_layer`] (in `fused.rs`, which add
//!   the bias, sum the bias gradient and measure the layer in the same loop): one `match` outside
//!   the loop, the `*_fast` hooks inside it, so the `f32` loops auto-vectorize. In `f32` they
//!   agree with the `f64` reference to `1e-5·|ref| + 1e-6` (asserted in the tests); the
//!   derivative kernels use the activation `a` where that is cheaper (`tanh' = 1 - a²`,
//!   `logistic' = a(1 - a)`), which costs only absolute accuracy (~1e-7) in the saturated tails.
//!
//! Each formula is written once, in `forward_kernel!` and `derivative_kernel!`, and spliced by
//! macro into every loop that needs it: a closure would be simpler, but LLVM leaves large
//! closures out of line, where they lose the loop's SIMD features.
//!
//! Conventions: `sign(0) = 0`; at a kink the derivative is the left-hand value, as in PyTorch
//! (`ramp'(0) = 0`, `leaky_relu'(0) = slope`, `elu'(0) = alpha`, `selu'(0) = λα`,
//! `logmin'(0) = 0`). No finite input gives NaN, in either path or precision.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Real;

/// SELU's λ (Klambauer et al. 2017).
pub const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
/// SELU's α (Klambauer et al. 2017).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// Slope of `leaky_relu` when none is given.
pub const DEFAULT_LEAKY_SLOPE: f64 = 0.01;
/// `alpha` of `elu` when none is given.
pub const DEFAULT_ELU_ALPHA: f64 = 1.0;
/// sqrt(2/π), the scale inside GELU's tanh approximation.
const GELU_TANH_C: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of GELU's tanh approximation.
const GELU_TANH_K: f64 = 0.044_715;
/// 1/sqrt(2π).
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// Beyond |x| = 40 the tanh-GELU derivative is exactly 0 or 1 in f64 (and f32); clamping there
/// keeps x³ from overflowing into inf·0.
const GELU_TANH_CLAMP: f64 = 40.0;

/// An activation function φ.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// 1 / (1 + e^-x).
    Logistic,
    /// tanh x.
    Tanh,
    /// atan x (alias `arctan`).
    Atan,
    /// x / (|x| + 1).
    Softsign,
    /// sign(x)·ln(|x|+1) / (ln(|x|+1) + 1).
    Logsig,
    /// max(x, 0) (alias `relu`).
    Ramp,
    /// ln(1 + e^x).
    Softplus,
    /// ln(1 + x) for x > 0, else 0.
    Logmin,
    /// sign(x)·ln(|x| + 1) (aliases `logarithmic_semisigmoid`, `log_semisigmoid`).
    Semisigmoid,
    /// x (alias `linear`).
    Identity,
    /// x for x > 0, else slope·x.
    LeakyRelu { slope: f64 },
    /// x for x > 0, else alpha·(e^x - 1).
    Elu { alpha: f64 },
    /// λ·x for x > 0, else λα·(e^x - 1), with the standard constants.
    Selu,
    /// x·Φ(x), Φ the standard normal CDF (the exact, erf, form).
    Gelu,
    /// x·(1 + tanh(sqrt(2/π)·(x + 0.044715x³)))/2, the tanh approximation of GELU.
    GeluTanh,
    /// x·logistic(x) (alias `swish`).
    Silu,
}

/// Why a string is not an activation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ActivationError {
    #[error("unknown activation {name:?}; known: {known}")]
    UnknownName { name: String, known: String },
    #[error("activation {name}: {reason}")]
    BadParameter { name: &'static str, reason: String },
}

/// `out[i] = body(z[i], a[i])`, the body spliced into the loop (see [`map!`]).
macro_rules! map2 {
    ($z:expr, $a:expr, $out:expr ; |$x:pat_param, $y:pat_param| $body:expr) => {{
        let (z, a, out) = ($z, $a, $out);
        assert_eq!(z.len(), out.len(), "activation slice lengths differ");
        assert_eq!(a.len(), out.len(), "activation slice lengths differ");
        for ((o, &$x), &$y) in out.iter_mut().zip(z).zip(a) {
            *o = $body;
        }
    }};
}

/// `out[i] = body(z[i])`, with the body spliced into the loop: a closure's body may stay out of
/// line, and then compiles without the caller's SIMD features (and calls libm's `fmaf`).
macro_rules! map {
    ($z:expr, $out:expr ; |$x:ident| $body:expr) => {{
        let (z, out) = ($z, $out);
        assert_eq!(z.len(), out.len(), "activation slice lengths differ");
        for (o, &$x) in out.iter_mut().zip(z) {
            *o = $body;
        }
    }};
}

/// φ applied by `$apply!(args ; |x| φ(x))`: one `match` outside the loop, each activation's
/// formula spliced into the loop `$apply` writes (a plain map, or the fused layer kernels).
macro_rules! forward_kernel {
    ($self:expr, $F:ty, $apply:ident!($($arg:expr),*)) => {{
        #[allow(unused_variables)]
        let zero = <$F>::zero();
        #[allow(unused_variables)]
        let one = <$F>::one();
        match *$self {
            Activation::Logistic => $apply!($($arg),* ; |x| x.logistic_fast()),
            Activation::Tanh => $apply!($($arg),* ; |x| x.tanh_fast()),
            Activation::Atan => $apply!($($arg),* ; |x| x.atan_fast()),
            Activation::Softsign => $apply!($($arg),* ; |x| x / (x.abs() + one)),
            Activation::Logsig => $apply!($($arg),* ; |x| {
                let l = x.abs().ln_1p_fast();
                (l / (l + one)).copysign(x)
            }),
            Activation::Ramp => $apply!($($arg),* ; |x| relu(x)),
            Activation::Softplus => $apply!($($arg),* ; |x| relu(x) + (-x.abs()).exp_fast().ln_1p_fast()),
            Activation::Logmin => $apply!($($arg),* ; |x| relu(x).ln_1p_fast()),
            Activation::Semisigmoid => $apply!($($arg),* ; |x| x.abs().ln_1p_fast().copysign(x)),
            Activation::Identity => $apply!($($arg),* ; |x| x),
            Activation::LeakyRelu { slope } => {
                let s = <$F>::of(slope);
                $apply!($($arg),* ; |x| if x > zero { x } else { s * x })
            }
            Activation::Elu { alpha } => {
                let al = <$F>::of(alpha);
                $apply!($($arg),* ; |x| {
                    let neg = al * x.exp_m1_fast();
                    if x > zero { x } else { neg }
                })
            }
            Activation::Selu => {
                let lambda = <$F>::of(SELU_LAMBDA);
                let la = <$F>::of(SELU_LAMBDA * SELU_ALPHA);
                $apply!($($arg),* ; |x| {
                    let neg = la * x.exp_m1_fast();
                    if x > zero { lambda * x } else { neg }
                })
            }
            Activation::Gelu => {
                let half = <$F>::of(0.5);
                let s = <$F>::of(-std::f64::consts::FRAC_1_SQRT_2);
                // Φ(x) = erfc(-x/√2)/2: no 1 + erf cancellation in the left tail.
                $apply!($($arg),* ; |x| x * (half * (x * s).erfc_fast()))
            }
            Activation::GeluTanh => $apply!($($arg),* ; |x| x * gelu_tanh_2u(x).logistic_fast()),
            Activation::Silu => $apply!($($arg),* ; |x| x * x.logistic_fast()),
        }
    }};
}

/// Expands `$body` once per activation with `$d` bound to its `Fn(z, a) -> φ'(z)` closure, so
/// the slice loops see a concrete, inlinable closure and the `match` stays outside them.
macro_rules! derivative_kernel {
    ($self:expr, $F:ty, $apply:ident!($($arg:expr),*)) => {{
        let zero = <$F>::zero();
        let one = <$F>::one();
        match *$self {
            Activation::Logistic => {
                $apply!($($arg),* ; |_x, a| a * (one - a))
            }
            Activation::Tanh => {
                $apply!($($arg),* ; |_x, a| one - a * a)
            }
            Activation::Atan => {
                $apply!($($arg),* ; |x, _a| one / (one + x * x))
            }
            Activation::Softsign => {
                $apply!($($arg),* ; |x, _a| {
                    let t = one / (one + x.abs());
                    t * t
                })
            }
            Activation::Logsig => {
                $apply!($($arg),* ; |x, _a| {
                    let l1 = one + x.abs().ln_1p_fast();
                    one / ((one + x.abs()) * (l1 * l1))
                })
            }
            Activation::Ramp => {
                $apply!($($arg),* ; |x, _a| if x > zero { one } else { zero })
            }
            Activation::Softplus => {
                $apply!($($arg),* ; |x, _a| x.logistic_fast())
            }
            Activation::Logmin => {
                $apply!($($arg),* ; |x, _a| {
                    let r = one / (one + relu(x));
                    if x > zero { r } else { zero }
                })
            }
            Activation::Semisigmoid => {
                $apply!($($arg),* ; |x, _a| one / (one + x.abs()))
            }
            Activation::Identity => {
                $apply!($($arg),* ; |_x, _a| one)
            }
            Activation::LeakyRelu { slope } => {
                let s = <$F>::of(slope);
                $apply!($($arg),* ; |x, _a| if x > zero { one } else { s })
            }
            Activation::Elu { alpha } => {
                let al = <$F>::of(alpha);
                $apply!($($arg),* ; |x, _a| {
                    let neg = al * x.exp_fast();
                    if x > zero { one } else { neg }
                })
            }
            Activation::Selu => {
                let lambda = <$F>::of(SELU_LAMBDA);
                let la = <$F>::of(SELU_LAMBDA * SELU_ALPHA);
                $apply!($($arg),* ; |x, _a| {
                    let neg = la * x.exp_fast();
                    if x > zero { lambda } else { neg }
                })
            }
            Activation::Gelu => {
                let half = <$F>::of(0.5);
                let s = <$F>::of(-std::f64::consts::FRAC_1_SQRT_2);
                let c = <$F>::of(INV_SQRT_2PI);
                $apply!($($arg),* ; |x, _a| {
                    let cdf = half * (x * s).erfc_fast();
                    cdf + x * c * (-half * x * x).exp_fast()
                })
            }
            Activation::GeluTanh => {
                let lo = <$F>::of(-GELU_TANH_CLAMP);
                let hi = <$F>::of(GELU_TANH_CLAMP);
                let c2 = <$F>::of(2.0 * GELU_TANH_C);
                let k3 = <$F>::of(3.0 * GELU_TANH_K);
                $apply!($($arg),* ; |x, _a| {
                    let x = clamp(x, lo, hi);
                    let s = gelu_tanh_2u(x).logistic_fast();
                    s + x * s * (one - s) * c2 * (one + k3 * x * x)
                })
            }
            Activation::Silu => {
                $apply!($($arg),* ; |x, _a| {
                    let s = x.logistic_fast();
                    s * (one + x * (one - s))
                })
            }
        }
    }};
}

impl Activation {
    /// Canonical names, in declaration order. [`Activation::parse`] also takes [`Self::ALIASES`].
    pub const NAMES: &[&str] = &[
        "logistic",
        "tanh",
        "atan",
        "softsign",
        "logsig",
        "ramp",
        "softplus",
        "logmin",
        "semisigmoid",
        "identity",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "gelu_tanh",
        "silu",
    ];

    /// `(alias, canonical name)`.
    pub const ALIASES: &[(&str, &str)] = &[
        ("arctan", "atan"),
        ("relu", "ramp"),
        ("logarithmic_semisigmoid", "semisigmoid"),
        ("log_semisigmoid", "semisigmoid"),
        ("linear", "identity"),
        ("swish", "silu"),
    ];

    /// Every activation with default parameters, in [`Self::NAMES`] order.
    pub const ALL: &[Activation] = &[
        Activation::Logistic,
        Activation::Tanh,
        Activation::Atan,
        Activation::Softsign,
        Activation::Logsig,
        Activation::Ramp,
        Activation::Softplus,
        Activation::Logmin,
        Activation::Semisigmoid,
        Activation::Identity,
        Activation::LeakyRelu { slope: DEFAULT_LEAKY_SLOPE },
        Activation::Elu { alpha: DEFAULT_ELU_ALPHA },
        Activation::Selu,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
    ];

    /// The canonical name, without parameters.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Logistic => "logistic",
            Activation::Tanh => "tanh",
            Activation::Atan => "atan",
            Activation::Softsign => "softsign",
            Activation::Logsig => "logsig",
            Activation::Ramp => "ramp",
            Activation::Softplus => "softplus",
            Activation::Logmin => "logmin",
            Activation::Semisigmoid => "semisigmoid",
            Activation::Identity => "identity",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Elu { .. } => "elu",
            Activation::Selu => "selu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Silu => "silu",
        }
    }

    /// Parses a name: case-insensitive, trimmed, `-` and `_` interchangeable, aliases accepted.
    /// Parameters as `leaky_relu:0.2`, `leaky_relu(0.2)`, `leaky_relu(slope=0.2)`, `elu:0.5`,
    /// `elu(alpha=0.5)`; without one the defaults are slope 0.01 and alpha 1.
    pub fn parse(s: &str) -> Result<Activation, ActivationError> {
        let s = s.trim();
        let (raw_name, param) = if let Some(open) = s.find('(') {
            let inner = s[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| ActivationError::UnknownName { name: s.to_string(), known: known_names() })?;
            (&s[..open], Some(inner.trim()))
        } else if let Some((n, p)) = s.split_once(':') {
            (n, Some(p.trim()))
        } else {
            (s, None)
        };
        let name = raw_name.trim().to_ascii_lowercase().replace('-', "_");
        let canonical = Self::ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name.as_str(), |(_, c)| c);
        let act = match canonical {
            "logistic" => Activation::Logistic,
            "tanh" => Activation::Tanh,
            "atan" => Activation::Atan,
            "softsign" => Activation::Softsign,
            "logsig" => Activation::Logsig,
            "ramp" => Activation::Ramp,
            "softplus" => Activation::Softplus,
            "logmin" => Activation::Logmin,
            "semisigmoid" => Activation::Semisigmoid,
            "identity" => Activation::Identity,
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "gelu_tanh" => Activation::GeluTanh,
            "silu" => Activation::Silu,
            "leaky_relu" => {
                return Ok(Activation::LeakyRelu {
                    slope: parameter("leaky_relu", "slope", param, DEFAULT_LEAKY_SLOPE)?,
                });
            }
            "elu" => {
                return Ok(Activation::Elu { alpha: parameter("elu", "alpha", param, DEFAULT_ELU_ALPHA)? });
            }
            _ => {
                return Err(ActivationError::UnknownName { name: s.to_string(), known: known_names() });
            }
        };
        match param {
            Some(p) if !p.is_empty() => Err(ActivationError::BadParameter {
                name: act.name(),
                reason: format!("takes no parameter, got {p:?}"),
            }),
            _ => Ok(act),
        }
    }

    /// φ(x), accurate (std/libm, cancellation-free forms).
    pub fn value<F: Real>(&self, x: F) -> F {
        let zero = F::zero();
        let one = F::one();
        match *self {
            Activation::Logistic => logistic_ref(x),
            Activation::Tanh => x.tanh_ref(),
            Activation::Atan => x.atan_ref(),
            Activation::Softsign => x / (x.abs() + one),
            Activation::Logsig => {
                let l = x.abs().ln_1p_ref();
                (l / (l + one)).copysign(x)
            }
            Activation::Ramp => {
                if x > zero {
                    x
                } else {
                    zero
                }
            }
            Activation::Softplus => relu(x) + (-x.abs()).exp_ref().ln_1p_ref(),
            Activation::Logmin => relu(x).ln_1p_ref(),
            Activation::Semisigmoid => x.abs().ln_1p_ref().copysign(x),
            Activation::Identity => x,
            Activation::LeakyRelu { slope } => {
                if x > zero {
                    x
                } else {
                    F::of(slope) * x
                }
            }
            Activation::Elu { alpha } => {
                if x > zero {
                    x
                } else {
                    F::of(alpha) * x.exp_m1_ref()
                }
            }
            Activation::Selu => {
                let lambda = F::of(SELU_LAMBDA);
                if x > zero { lambda * x } else { lambda * F::of(SELU_ALPHA) * x.exp_m1_ref() }
            }
            Activation::Gelu => x * normal_cdf(x),
            Activation::GeluTanh => x * logistic_ref(gelu_tanh_2u(x)),
            Activation::Silu => x * logistic_ref(x),
        }
    }

    /// φ'(x), accurate (std/libm, cancellation-free forms); left-hand value at kinks.
    pub fn derivative<F: Real>(&self, x: F) -> F {
        let zero = F::zero();
        let one = F::one();
        match *self {
            Activation::Logistic => logistic_prime_ref(x),
            Activation::Softplus => logistic_ref(x),
            Activation::Tanh => {
                // sech² x = 4e/(1+e)², e = e^{-2|x|}: no 1 - tanh² cancellation in the tails.
                let e = (-(x.abs() + x.abs())).exp_ref();
                let r = one / (one + e);
                F::of(4.0) * e * r * r
            }
            Activation::Atan => one / (one + x * x),
            Activation::Softsign => {
                let t = one / (one + x.abs());
                t * t
            }
            Activation::Logsig => {
                let l1 = one + x.abs().ln_1p_ref();
                one / (one + x.abs()) / (l1 * l1)
            }
            Activation::Ramp => {
                if x > zero {
                    one
                } else {
                    zero
                }
            }
            Activation::Logmin => {
                if x > zero {
                    one / (one + x)
                } else {
                    zero
                }
            }
            Activation::Semisigmoid => one / (one + x.abs()),
            Activation::Identity => one,
            Activation::LeakyRelu { slope } => {
                if x > zero {
                    one
                } else {
                    F::of(slope)
                }
            }
            Activation::Elu { alpha } => {
                if x > zero {
                    one
                } else {
                    F::of(alpha) * x.exp_ref()
                }
            }
            Activation::Selu => {
                let lambda = F::of(SELU_LAMBDA);
                if x > zero { lambda } else { lambda * F::of(SELU_ALPHA) * x.exp_ref() }
            }
            Activation::Gelu => normal_cdf(x) + x * normal_pdf(x),
            Activation::GeluTanh => {
                let x = clamp(x, F::of(-GELU_TANH_CLAMP), F::of(GELU_TANH_CLAMP));
                let v = gelu_tanh_2u(x);
                let dv = F::of(2.0 * GELU_TANH_C) * (one + F::of(3.0 * GELU_TANH_K) * x * x);
                logistic_ref(v) + x * logistic_prime_ref(v) * dv
            }
            Activation::Silu => {
                // s + x·s(1-s), with s(1-s) in its cancellation-free form.
                logistic_ref(x) + x * logistic_prime_ref(x)
            }
        }
    }

    /// sup over x of |φ'(x)|. Saturation means |φ'| below 1% of this.
    pub fn max_derivative(&self) -> f64 {
        match *self {
            Activation::Logistic => 0.25,
            Activation::Tanh
            | Activation::Atan
            | Activation::Softsign
            | Activation::Logsig
            | Activation::Ramp
            | Activation::Softplus
            | Activation::Logmin
            | Activation::Semisigmoid
            | Activation::Identity => 1.0,
            Activation::LeakyRelu { slope } => slope.abs().max(1.0),
            Activation::Elu { alpha } => alpha.abs().max(1.0),
            Activation::Selu => SELU_LAMBDA * SELU_ALPHA.max(1.0),
            // GELU'' = φ(x)(2 - x²): the maximum is at x = √2 (the minimum, at -√2, is -0.128).
            Activation::Gelu => self.derivative(std::f64::consts::SQRT_2),
            // Unimodal on [0.5, 4] with the maximum there; the negative-side minima are ~-0.1.
            Activation::GeluTanh | Activation::Silu => golden_max(|x| self.derivative(x), 0.5, 4.0),
        }
    }

    /// Points where φ or φ' is not smooth (split quadrature there). ELU is listed for every alpha:
    /// even at alpha = 1, where φ' is continuous, φ'' jumps at 0 (as for softsign).
    pub fn kinks(&self) -> &'static [f64] {
        match self {
            Activation::Softsign
            | Activation::Logsig
            | Activation::Ramp
            | Activation::Logmin
            | Activation::Semisigmoid
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Selu => &[0.0],
            _ => &[],
        }
    }

    /// `a = φ(z)`, vectorizable. Panics if the lengths differ.
    pub fn forward<F: Real>(&self, z: &[F], a: &mut [F]) {
        forward_wide(self, z, a)
    }

    /// `d = φ'(z)`, given `a = φ(z)`. Vectorizable. Panics if the lengths differ.
    pub fn derivative_slice<F: Real>(&self, z: &[F], a: &[F], d: &mut [F]) {
        derivative_wide(self, z, a, d)
    }
}

impl fmt::Display for Activation {
    /// The canonical name; parameters only when not the default (`leaky_relu:0.2`, `elu:0.5`).
    /// Round-trips through [`Activation::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Activation::LeakyRelu { slope } if slope != DEFAULT_LEAKY_SLOPE => {
                write!(f, "leaky_relu:{slope}")
            }
            Activation::Elu { alpha } if alpha != DEFAULT_ELU_ALPHA => write!(f, "elu:{alpha}"),
            _ => f.write_str(self.name()),
        }
    }
}

impl FromStr for Activation {
    type Err = ActivationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::parse(s)
    }
}

fn known_names() -> String {
    let mut out = Activation::NAMES.join(", ");
    out.push_str(" (aliases: ");
    let aliases: Vec<String> = Activation::ALIASES.iter().map(|(a, c)| format!("{a} = {c}")).collect();
    out.push_str(&aliases.join(", "));
    out.push_str("; parameters as leaky_relu:0.2, leaky_relu(slope=0.2), elu:0.5, elu(alpha=0.5))");
    out
}

/// The value of `key` in `param` (`"0.2"` or `"key=0.2"`), `default` when absent or empty.
fn parameter(name: &'static str, key: &str, param: Option<&str>, default: f64) -> Result<f64, ActivationError> {
    let bad = |reason: String| ActivationError::BadParameter { name, reason };
    let Some(p) = param.filter(|p| !p.is_empty()) else {
        return Ok(default);
    };
    let v = match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case(key) => v.trim(),
        Some((k, _)) => {
            return Err(bad(format!("unknown parameter {:?}, expected {key:?}", k.trim())));
        }
        None => p,
    };
    let value: f64 = v.parse().map_err(|_| bad(format!("{key} {v:?} is not a number")))?;
    if value.is_finite() { Ok(value) } else { Err(bad(format!("{key} must be finite, got {v:?}"))) }
}

super::fastmath::wide_fn! {
    fn forward_wide<F: Real>(act: &Activation, z: &[F], a: &mut [F]) {
        forward_kernel!(act, F, map!(z, a))
    }
}

super::fastmath::wide_fn! {
    fn derivative_wide<F: Real>(act: &Activation, z: &[F], a: &[F], d: &mut [F]) {
        derivative_kernel!(act, F, map2!(z, a, d))
    }
}

#[inline(always)]
fn relu<F: Real>(x: F) -> F {
    if x > F::zero() { x } else { F::zero() }
}

#[inline(always)]
fn clamp<F: Real>(x: F, lo: F, hi: F) -> F {
    let x = if x < lo { lo } else { x };
    if x > hi { hi } else { x }
}

/// 2·sqrt(2/π)·(x + 0.044715x³): tanh-GELU is x·logistic of this.
#[inline(always)]
fn gelu_tanh_2u<F: Real>(x: F) -> F {
    F::of(2.0 * GELU_TANH_C) * (x + F::of(GELU_TANH_K) * x * x * x)
}

/// 1/(1+e^-x), with e^-|x| so that the left tail keeps relative accuracy down to subnormals.
fn logistic_ref<F: Real>(x: F) -> F {
    let e = (-x.abs()).exp_ref();
    let r = F::one() / (F::one() + e);
    if x >= F::zero() { r } else { e * r }
}

/// logistic'(x) = e/(1+e)² with e = e^{-|x|}: accurate in both tails.
fn logistic_prime_ref<F: Real>(x: F) -> F {
    let e = (-x.abs()).exp_ref();
    let r = F::one() / (F::one() + e);
    e * r * r
}

/// Φ(x) = erfc(-x/√2)/2: accurate in the left tail, where 1 + erf would cancel.
fn normal_cdf<F: Real>(x: F) -> F {
    F::of(0.5) * (-x * F::of(std::f64::consts::FRAC_1_SQRT_2)).erfc_ref()
}

fn normal_pdf<F: Real>(x: F) -> F {
    F::of(INV_SQRT_2PI) * (-F::of(0.5) * x * x).exp_ref()
}

/// Maximum of a unimodal `f` on `[lo, hi]` by golden-section search (to ~1e-12 in x, so the
/// value is exact to rounding at a smooth maximum).
fn golden_max(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - g * (hi - lo);
    let mut b = lo + g * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    while hi - lo > 1e-12 {
        if fa < fb {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = f(b);
        } else {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = f(a);
        }
    }
    fa.max(fb)
}

mod fused;
pub use fused::{Columns, ErrorStats, OutputStats, backward_layer, forward_layer};

#[cfg(test)]
mod tests;
