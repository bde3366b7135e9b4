//! The float types the engine computes in: `f32` for training, `f64` for checking.
//!
//! Everything numeric in the engine is generic over [`Real`], so the very code that trains in f32
//! is the code the finite-difference tests run in f64.

use std::fmt::{Debug, Display};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::Float;

use super::fastmath;

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
    /// Bytes of one value in a checkpoint ([`Self::put_le`]).
    const BYTES: usize;

    fn of(x: f64) -> Self;
    /// Appends the value's bits, little-endian (checkpoints keep parameters bit for bit).
    fn put_le(self, out: &mut Vec<u8>);
    /// Reads a value [`Self::put_le`] wrote; `bytes` is exactly [`Self::BYTES`] long.
    fn get_le(bytes: &[u8]) -> Self;
    fn f64(self) -> f64;

    fn tanh_fast(self) -> Self {
        self.tanh()
    }
    fn exp_fast(self) -> Self {
        self.exp()
    }
    /// ln(1 + x) for x > -1.
    fn ln_1p_fast(self) -> Self {
        self.ln_1p()
    }
    /// e^x - 1.
    fn exp_m1_fast(self) -> Self {
        self.exp_m1()
    }
    /// The logistic sigmoid 1 / (1 + e^-x), with relative accuracy in both tails.
    fn logistic_fast(self) -> Self {
        let e = (-self.abs()).exp_fast();
        let r = Self::one() / (Self::one() + e);
        if self >= Self::zero() { r } else { e * r }
    }
    fn atan_fast(self) -> Self {
        self.atan()
    }
    fn erf_fast(self) -> Self {
        self.erf_ref()
    }
    /// 1 - erf(x), relatively accurate for x > 0.
    fn erfc_fast(self) -> Self {
        self.erfc_ref()
    }

    /// The error function, from libm (not named `erf`, which std reserves for an inherent method).
    fn erf_ref(self) -> Self;
    /// The complementary error function 1 - erf(x), from libm; accurate where erf(x) is near 1.
    fn erfc_ref(self) -> Self;
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const BYTES: usize = 8;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get_le(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn f64(self) -> f64 {
        self
    }
    #[inline]
    fn erf_ref(self) -> Self {
        libm::erf(self)
    }
    #[inline]
    fn erfc_ref(self) -> Self {
        libm::erfc(self)
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const BYTES: usize = 4;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn erf_ref(self) -> Self {
        libm::erff(self)
    }
    #[inline]
    fn erfc_ref(self) -> Self {
        libm::erfcf(self)
    }
    #[inline(always)]
    fn tanh_fast(self) -> Self {
        fastmath::tanh(self)
    }
    #[inline(always)]
    fn exp_fast(self) -> Self {
        fastmath::exp(self)
    }
    #[inline(always)]
    fn ln_1p_fast(self) -> Self {
        fastmath::ln_1p(self)
    }
    #[inline(always)]
    fn exp_m1_fast(self) -> Self {
        fastmath::expm1(self)
    }
    #[inline(always)]
    fn logistic_fast(self) -> Self {
        fastmath::logistic(self)
    }
    #[inline(always)]
    fn atan_fast(self) -> Self {
        fastmath::atan(self)
    }
    #[inline(always)]
    fn erf_fast(self) -> Self {
        fastmath::erf(self)
    }
    #[inline(always)]
    fn erfc_fast(self) -> Self {
        fastmath::erfc(self)
    }
}
