//! The float types the engine computes in: `f32` for training, `f64` for checking.
//!
//! Everything numeric in the engine is generic over [`Real`], so the very code that trains in f32
//! is the code the finite-difference tests run in f64.

use std::fmt::{Debug, Display};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::Float;

/// A training float. The `*_fast` functions are the elementwise kernels of the hot loops: for
/// `f64` they are libm's (the reference), for `f32` accurate forms that vectorize
/// (see `engine::fastmath` for their error bounds).
pub trait Real:
    Float
    + LinalgScalar
    + ScalarOperand
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    const NAME: &'static str;

    fn of(x: f64) -> Self;
    fn f64(self) -> f64;

    fn tanh_fast(self) -> Self {
        self.tanh()
    }
    fn exp_fast(self) -> Self {
        self.exp()
    }
    /// ln(1 + x) for x >= 0.
    fn ln_1p_fast(self) -> Self {
        self.ln_1p()
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn f64(self) -> f64 {
        self as f64
    }
}
