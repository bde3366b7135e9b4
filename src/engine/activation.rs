//! TEMPORARY stub, replaced by the real module from branch `act`.
use super::Real;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    Tanh,
    Ramp,
    Identity,
    Logistic,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown activation {0:?}")]
pub struct ActivationError(String);

impl std::str::FromStr for Activation {
    type Err = ActivationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

pub const NAMES: &[&str] = &["tanh", "ramp", "identity", "logistic"];

impl Activation {
    pub fn parse(s: &str) -> Result<Self, ActivationError> {
        match s.to_ascii_lowercase().as_str() {
            "tanh" => Ok(Self::Tanh),
            "ramp" | "relu" => Ok(Self::Ramp),
            "identity" => Ok(Self::Identity),
            "logistic" => Ok(Self::Logistic),
            _ => Err(ActivationError(s.into())),
        }
    }
    pub fn value<F: Real>(&self, x: F) -> F {
        match self {
            Self::Tanh => x.tanh_fast(),
            Self::Ramp => x.max(F::zero()),
            Self::Identity => x,
            Self::Logistic => F::one() / (F::one() + (-x).exp()),
        }
    }
    pub fn derivative<F: Real>(&self, x: F) -> F {
        match self {
            Self::Tanh => F::one() - x.tanh() * x.tanh(),
            Self::Ramp => {
                if x > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Self::Identity => F::one(),
            Self::Logistic => {
                let s = self.value(x);
                s * (F::one() - s)
            }
        }
    }
    pub fn max_derivative(&self) -> f64 {
        match self {
            Self::Logistic => 0.25,
            _ => 1.0,
        }
    }
    pub fn kinks(&self) -> &'static [f64] {
        match self {
            Self::Ramp => &[0.0],
            _ => &[],
        }
    }
    pub fn forward<F: Real>(&self, z: &[F], a: &mut [F]) {
        for (a, &z) in a.iter_mut().zip(z) {
            *a = self.value(z);
        }
    }
    pub fn backward<F: Real>(&self, z: &[F], _a: &[F], grad_a: &[F], grad_z: &mut [F], sat_below: F) -> usize {
        let mut n = 0;
        for ((gz, &ga), &z) in grad_z.iter_mut().zip(grad_a).zip(z) {
            let d = self.derivative(z);
            n += (d.abs() < sat_below) as usize;
            *gz = ga * d;
        }
        n
    }
}
