//! Weight initialization schemes.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::Real;

/// How a layer's weights (fan_in x fan_out) and biases are drawn. Biases are 0 except for
/// `Custom`, whose `sigma_b` is the mean-field bias scale.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Init {
    /// N(0, 1/fan_in).
    LecunNormal,
    /// U(+-sqrt(6/(fan_in+fan_out))).
    XavierUniform,
    /// N(0, 2/(fan_in+fan_out)) (Glorot).
    XavierNormal,
    /// N(0, 2/fan_in).
    HeNormal,
    /// U(+-sqrt(6/fan_in)).
    HeUniform,
    /// A random orthogonal matrix (Haar measure) times `gain`.
    Orthogonal { gain: f64 },
    /// W ~ N(0, sigma_w^2/fan_in), b ~ N(0, sigma_b^2): the mean-field parametrisation.
    Custom { sigma_w: f64, sigma_b: f64 },
}

pub const INIT_NAMES: &[&str] = &[
    "lecun_normal",
    "xavier_uniform",
    "xavier_normal",
    "he_normal",
    "he_uniform",
    "orthogonal[:gain]",
    "custom:sigma_w,sigma_b",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InitError {
    #[error("unknown init {0:?}; known: {known}", known = INIT_NAMES.join(", "))]
    Unknown(String),
    #[error("init {name}: {problem}")]
    BadParameter { name: &'static str, problem: String },
}

impl Init {
    /// The mean-field (sigma_w, sigma_b) that describes this init for a layer of the given
    /// shape: Var(W_ij) = sigma_w^2 / fan_in.
    pub fn mean_field_sigmas(&self, fan_in: usize, fan_out: usize) -> (f64, f64) {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        match *self {
            Init::LecunNormal => (1.0, 0.0),
            Init::XavierUniform | Init::XavierNormal => ((2.0 * fi / (fi + fo)).sqrt(), 0.0),
            Init::HeNormal | Init::HeUniform => (2f64.sqrt(), 0.0),
            Init::Orthogonal { gain } => (gain * (fi / fi.max(fo)).sqrt(), 0.0),
            Init::Custom { sigma_w, sigma_b } => (sigma_w, sigma_b),
        }
    }

    /// Draws one layer. Samples are taken in f64 and rounded, so an f32 and an f64 network
    /// built from the same seed agree to rounding.
    pub fn sample<F: Real>(&self, fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng) -> (Array2<F>, Array1<F>) {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        let normal = |std: f64, rng: &mut ChaCha8Rng| {
            Array2::from_shape_fn((fan_in, fan_out), |_| {
                let z: f64 = StandardNormal.sample(rng);
                F::of(std * z)
            })
        };
        let uniform = |limit: f64, rng: &mut ChaCha8Rng| {
            Array2::from_shape_fn((fan_in, fan_out), |_| F::of(rng.random_range(-limit..limit)))
        };
        let w = match *self {
            Init::LecunNormal => normal((1.0 / fi).sqrt(), rng),
            Init::XavierNormal => normal((2.0 / (fi + fo)).sqrt(), rng),
            Init::HeNormal => normal((2.0 / fi).sqrt(), rng),
            Init::XavierUniform => uniform((6.0 / (fi + fo)).sqrt(), rng),
            Init::HeUniform => uniform((6.0 / fi).sqrt(), rng),
            Init::Custom { sigma_w, .. } => normal(sigma_w / fi.sqrt(), rng),
            Init::Orthogonal { gain } => orthogonal(fan_in, fan_out, rng).mapv(|x| F::of(gain * x)),
        };
        let b = match *self {
            Init::Custom { sigma_b, .. } if sigma_b > 0.0 => Array1::from_shape_fn(fan_out, |_| {
                let z: f64 = StandardNormal.sample(rng);
                F::of(sigma_b * z)
            }),
            _ => Array1::zeros(fan_out),
        };
        (w, b)
    }
}

/// A fan_in x fan_out matrix with orthonormal rows or columns (whichever are fewer), drawn
/// uniformly: QR of a Gaussian matrix by modified Gram-Schmidt (run twice, for orthogonality to
/// rounding), with the signs fixed as Mezzadri (2007) prescribes.
fn orthogonal(fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let (rows, cols) = (fan_in.max(fan_out), fan_in.min(fan_out));
    let mut q = Array2::<f64>::from_shape_fn((rows, cols), |_| StandardNormal.sample(rng));
    for j in 0..cols {
        let mut r_jj = 0.0;
        for _pass in 0..2 {
            for k in 0..j {
                let dot = q.column(k).dot(&q.column(j));
                let qk = q.column(k).to_owned();
                q.column_mut(j).scaled_add(-dot, &qk);
            }
            let norm = q.column(j).dot(&q.column(j)).sqrt();
            if _pass == 0 {
                r_jj = norm;
            }
            q.column_mut(j).mapv_inplace(|x| x / norm);
        }
        // Sign of the diagonal of R: makes the distribution Haar rather than biased.
        if r_jj < 0.0 {
            q.column_mut(j).mapv_inplace(|x| -x);
        }
    }
    if fan_in >= fan_out { q } else { q.reversed_axes().as_standard_layout().to_owned() }
}

impl FromStr for Init {
    type Err = InitError;

    /// `lecun_normal`, `xavier_uniform`, `glorot_normal`, `he_normal`, `orthogonal`,
    /// `orthogonal:1.5`, `custom:1.5,0.05` (sigma_w, sigma_b), `custom:sigma_w=1.5,sigma_b=0.05`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase().replace('-', "_");
        let (name, args) = match lower.split_once([':', '(']) {
            Some((n, a)) => (n.trim(), Some(a.trim_end_matches(')').trim())),
            None => (lower.as_str(), None),
        };
        let no_args = |init: Init| match args {
            None | Some("") => Ok(init),
            Some(a) => {
                Err(InitError::BadParameter { name: "init", problem: format!("{name} takes no parameters, got {a:?}") })
            }
        };
        match name {
            "lecun_normal" | "lecun" => no_args(Init::LecunNormal),
            "xavier_uniform" | "glorot_uniform" => no_args(Init::XavierUniform),
            "xavier_normal" | "glorot_normal" | "xavier" | "glorot" => no_args(Init::XavierNormal),
            "he_normal" | "kaiming_normal" | "he" | "kaiming" => no_args(Init::HeNormal),
            "he_uniform" | "kaiming_uniform" => no_args(Init::HeUniform),
            "orthogonal" => {
                let gain = match args {
                    None | Some("") => 1.0,
                    Some(a) => parse_param("gain", a.strip_prefix("gain=").unwrap_or(a))?,
                };
                Ok(Init::Orthogonal { gain })
            }
            "custom" => {
                let a = args.unwrap_or("");
                let parts: Vec<&str> = a.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
                let mut sigma_w = None;
                let mut sigma_b = 0.0;
                for (i, p) in parts.iter().enumerate() {
                    match p.split_once('=') {
                        Some(("sigma_w", v)) => sigma_w = Some(parse_param("sigma_w", v)?),
                        Some(("sigma_b", v)) => sigma_b = parse_param("sigma_b", v)?,
                        Some((k, _)) => {
                            return Err(InitError::BadParameter {
                                name: "custom",
                                problem: format!("unknown parameter {k:?} (sigma_w, sigma_b)"),
                            });
                        }
                        None if i == 0 => sigma_w = Some(parse_param("sigma_w", p)?),
                        None if i == 1 => sigma_b = parse_param("sigma_b", p)?,
                        None => {
                            return Err(InitError::BadParameter {
                                name: "custom",
                                problem: format!("too many parameters in {a:?}"),
                            });
                        }
                    }
                }
                let sigma_w = sigma_w.ok_or(InitError::BadParameter {
                    name: "custom",
                    problem: "needs sigma_w, as custom:SIGMA_W[,SIGMA_B]".into(),
                })?;
                Ok(Init::Custom { sigma_w, sigma_b })
            }
            _ => Err(InitError::Unknown(s.to_string())),
        }
    }
}

fn parse_param(name: &'static str, v: &str) -> Result<f64, InitError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(InitError::BadParameter { name, problem: format!("must be a finite number >= 0, got {v:?}") }),
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::LecunNormal => f.write_str("lecun_normal"),
            Init::XavierUniform => f.write_str("xavier_uniform"),
            Init::XavierNormal => f.write_str("xavier_normal"),
            Init::HeNormal => f.write_str("he_normal"),
            Init::HeUniform => f.write_str("he_uniform"),
            Init::Orthogonal { gain } => write!(f, "orthogonal:{gain}"),
            Init::Custom { sigma_w, sigma_b } => write!(f, "custom:{sigma_w},{sigma_b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{Purpose, stream};

    fn moments(w: &Array2<f64>) -> (f64, f64) {
        let n = w.len() as f64;
        let mean = w.sum() / n;
        (mean, w.mapv(|x| (x - mean).powi(2)).sum() / n)
    }

    #[test]
    fn variances_match_their_definitions() {
        let (fi, fo) = (400, 300);
        let cases = [
            (Init::LecunNormal, 1.0 / 400.0),
            (Init::XavierNormal, 2.0 / 700.0),
            (Init::XavierUniform, 2.0 / 700.0),
            (Init::HeNormal, 2.0 / 400.0),
            (Init::HeUniform, 2.0 / 400.0),
            (Init::Custom { sigma_w: 1.5, sigma_b: 0.0 }, 2.25 / 400.0),
        ];
        for (init, var) in cases {
            let (w, b) = init.sample::<f64>(fi, fo, &mut stream(7, Purpose::Init));
            let (m, v) = moments(&w);
            assert!(m.abs() < 3.0 * (var / (fi * fo) as f64).sqrt() + 1e-12, "{init}: mean {m}");
            assert!((v / var - 1.0).abs() < 0.02, "{init}: var {v} vs {var}");
            assert!(b.iter().all(|&x| x == 0.0));
            // The mean-field description agrees with the drawn variance.
            let (sw, _) = init.mean_field_sigmas(fi, fo);
            assert!((sw * sw / fi as f64 / var - 1.0).abs() < 1e-12, "{init}");
        }
    }

    #[test]
    fn custom_bias_has_sigma_b() {
        let init = Init::Custom { sigma_w: 1.0, sigma_b: 0.5 };
        let (_, b) = init.sample::<f64>(10, 20_000, &mut stream(3, Purpose::Init));
        let var = b.mapv(|x| x * x).sum() / b.len() as f64;
        assert!((var / 0.25 - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn orthogonal_is_orthogonal_both_ways() {
        for (fi, fo) in [(64, 64), (100, 30), (30, 100)] {
            let (w, _) = Init::Orthogonal { gain: 2.0 }.sample::<f64>(fi, fo, &mut stream(1, Purpose::Init));
            let gram = if fi >= fo { w.t().dot(&w) } else { w.dot(&w.t()) };
            let k = fi.min(fo);
            for i in 0..k {
                for j in 0..k {
                    let want = if i == j { 4.0 } else { 0.0 };
                    assert!((gram[[i, j]] - want).abs() < 1e-10, "({fi},{fo}) [{i},{j}] {}", gram[[i, j]]);
                }
            }
        }
    }

    #[test]
    fn same_seed_same_bits_and_f32_matches_f64() {
        let a = Init::HeNormal.sample::<f32>(50, 40, &mut stream(9, Purpose::Init)).0;
        let b = Init::HeNormal.sample::<f32>(50, 40, &mut stream(9, Purpose::Init)).0;
        let c = Init::HeNormal.sample::<f64>(50, 40, &mut stream(9, Purpose::Init)).0;
        assert_eq!(a, b);
        assert!(a.iter().zip(&c).all(|(&x, &y)| x == y as f32));
        let d = Init::HeNormal.sample::<f32>(50, 40, &mut stream(10, Purpose::Init)).0;
        assert_ne!(a, d);
    }

    #[test]
    fn parses_names_and_parameters() {
        assert_eq!("LeCun-Normal".parse::<Init>(), Ok(Init::LecunNormal));
        assert_eq!("glorot_uniform".parse::<Init>(), Ok(Init::XavierUniform));
        assert_eq!("orthogonal:1.5".parse::<Init>(), Ok(Init::Orthogonal { gain: 1.5 }));
        assert_eq!("orthogonal".parse::<Init>(), Ok(Init::Orthogonal { gain: 1.0 }));
        assert_eq!("custom:sigma_w=1.5,sigma_b=0.05".parse::<Init>(), Ok(Init::Custom { sigma_w: 1.5, sigma_b: 0.05 }));
        assert_eq!("custom(2,0.1)".parse::<Init>(), Ok(Init::Custom { sigma_w: 2.0, sigma_b: 0.1 }));
        for init in [Init::HeUniform, Init::Orthogonal { gain: 0.5 }, Init::Custom { sigma_w: 1.2, sigma_b: 0.3 }] {
            assert_eq!(init.to_string().parse::<Init>(), Ok(init));
        }
        let err = "kaiming_magic".parse::<Init>().unwrap_err().to_string();
        assert!(err.contains("kaiming_magic") && err.contains("lecun_normal") && err.contains("orthogonal"), "{err}");
        assert!("custom".parse::<Init>().unwrap_err().to_string().contains("sigma_w"));
        assert!("custom:-1".parse::<Init>().unwrap_err().to_string().contains("sigma_w"));
        assert!("he_normal:3".parse::<Init>().is_err());
    }
}
