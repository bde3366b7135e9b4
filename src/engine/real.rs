//! The float types the engine computes in: `f32` for training, `f64` for checking.
//!
//! Everything numeric in the engine is generic over [`Real`], so the very code that trains in f32
//! is the code the finite-difference tests run in f64.

use std::fmt::{Debug, Display};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::Float;

use super::fastmath;

/// A training float. The `*_fast` functions are the elementwise kernels of the hot loops: for
/// `f64` they are the `*_ref` ones (the `libm` crate's), for `f32` accurate forms that vectorize
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

    /// Appends every value's bits, little-endian: [`Self::put_le`] of each, in one copy on a
    /// little-endian machine (a 10M-parameter checkpoint: ~20 ms instead of ~150).
    fn put_all_le(values: &[Self], out: &mut Vec<u8>) {
        #[cfg(target_endian = "little")]
        {
            debug_assert_eq!(std::mem::size_of::<Self>(), Self::BYTES);
            // SAFETY: f32 and f64 (the only `Real`s) have no padding and their bytes are their
            // bits; on a little-endian machine those are the little-endian bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) };
            out.extend_from_slice(bytes);
        }
        #[cfg(not(target_endian = "little"))]
        values.iter().for_each(|&x| x.put_le(out));
    }

    /// Reads values [`Self::put_all_le`] wrote; `bytes.len()` is a multiple of [`Self::BYTES`].
    fn get_all_le(bytes: &[u8]) -> Vec<Self> {
        let mut out = vec![Self::zero(); bytes.len() / Self::BYTES];
        #[cfg(target_endian = "little")]
        {
            // SAFETY: as in `put_all_le`; every bit pattern is a valid f32 or f64, and `out` holds
            // exactly `bytes.len()` bytes.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), bytes.len()) };
            dst.copy_from_slice(bytes);
        }
        #[cfg(not(target_endian = "little"))]
        for (x, c) in out.iter_mut().zip(bytes.chunks_exact(Self::BYTES)) {
            *x = Self::get_le(c);
        }
        out
    }
    fn f64(self) -> f64;

    fn tanh_fast(self) -> Self {
        self.tanh_ref()
    }
    fn exp_fast(self) -> Self {
        self.exp_ref()
    }
    /// ln(1 + x) for x > -1.
    fn ln_1p_fast(self) -> Self {
        self.ln_1p_ref()
    }
    /// e^x - 1.
    fn exp_m1_fast(self) -> Self {
        self.exp_m1_ref()
    }
    /// The logistic sigmoid 1 / (1 + e^-x), with relative accuracy in both tails.
    fn logistic_fast(self) -> Self {
        let e = (-self.abs()).exp_fast();
        let r = Self::one() / (Self::one() + e);
        if self >= Self::zero() { r } else { e * r }
    }
    fn atan_fast(self) -> Self {
        self.atan_ref()
    }
    fn erf_fast(self) -> Self {
        self.erf_ref()
    }
    /// 1 - erf(x), relatively accurate for x > 0.
    fn erfc_fast(self) -> Self {
        self.erfc_ref()
    }

    // The references, from the `libm` crate rather than the platform's C library: pure Rust,
    // so the same bits on every CPU and every system a job may run or resume on (glibc picks
    // among implementations by CPU, and its results have changed between versions).
    /// The error function (not named `erf`, which std reserves for an inherent method).
    fn erf_ref(self) -> Self;
    /// The complementary error function 1 - erf(x); accurate where erf(x) is near 1.
    fn erfc_ref(self) -> Self;
    fn tanh_ref(self) -> Self;
    fn exp_ref(self) -> Self;
    fn exp_m1_ref(self) -> Self;
    /// The natural logarithm.
    fn ln_ref(self) -> Self;
    fn ln_1p_ref(self) -> Self;
    fn atan_ref(self) -> Self;
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
    #[inline]
    fn tanh_ref(self) -> Self {
        libm::tanh(self)
    }
    #[inline]
    fn exp_ref(self) -> Self {
        libm::exp(self)
    }
    #[inline]
    fn exp_m1_ref(self) -> Self {
        libm::expm1(self)
    }
    #[inline]
    fn ln_ref(self) -> Self {
        libm::log(self)
    }
    #[inline]
    fn ln_1p_ref(self) -> Self {
        libm::log1p(self)
    }
    #[inline]
    fn atan_ref(self) -> Self {
        libm::atan(self)
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
    #[inline]
    fn tanh_ref(self) -> Self {
        libm::tanhf(self)
    }
    #[inline]
    fn exp_ref(self) -> Self {
        libm::expf(self)
    }
    #[inline]
    fn exp_m1_ref(self) -> Self {
        libm::expm1f(self)
    }
    #[inline]
    fn ln_ref(self) -> Self {
        libm::logf(self)
    }
    #[inline]
    fn ln_1p_ref(self) -> Self {
        libm::log1pf(self)
    }
    #[inline]
    fn atan_ref(self) -> Self {
        libm::atanf(self)
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
