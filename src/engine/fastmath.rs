//! Branch-free, libm-free `f32` kernels for the hot elementwise loops.
//!
//! Every function here is straight-line `f32`/`u32` arithmetic: clamps are `.min`/`.max`,
//! case splits are `if` expressions on *values* (which LLVM turns into blends), and there are no
//! calls and no early returns, so a loop over a slice that calls them auto-vectorizes.
//! They are what `impl Real for f32` uses for its `*_fast` hooks (see [`crate::engine::Real`]);
//! `f64` keeps libm as the reference. Polynomials and reductions use `mul_add`: one instruction
//! in the loops `wide_fn!` compiles for FMA, which is where these functions belong (elsewhere
//! it is a call to `fmaf`; exact, but slow).
//!
//! Error bounds are in ulps of the result, measured against the `f64` libm value rounded to
//! `f32`, over the grids of this module's tests (every 331st `f32` bit pattern of each sign, a
//! dense linear grid over the interesting range, and the extremes 0, -0, subnormals, ±1, ±88,
//! ±1000, ±`f32::MAX`, ±inf). The tests assert exactly the bounds stated here.
//!
//! All functions return a number (never NaN) for every non-NaN input, infinities included, and
//! pass NaN through.

/// Round-to-nearest-even via the 1.5·2^23 trick: adding it pushes the fraction bits out, and the
/// low mantissa bits of the sum are the integer. Valid for |x| < 2^22.
const ROUND_MAGIC: f32 = 12_582_912.0;
const ROUND_MAGIC_BITS: i32 = 0x4B40_0000;

/// `2^k` for `k` in `[-126, 127]`, built from bits.
#[inline(always)]
fn pow2i(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// Cody–Waite reduction `x = k·ln2 + r`, `|r| <= ln2/2`, and `q = e^r - 1` (Cephes' minimax
/// polynomial). `x` must already be clamped to `[-110, 89]`.
#[inline(always)]
fn exp_reduce(x: f32) -> (i32, f32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 0.693359375, exact in 8 bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    let t = x.mul_add(LOG2E, ROUND_MAGIC);
    let k = t.to_bits() as i32 - ROUND_MAGIC_BITS;
    let kf = t - ROUND_MAGIC;
    let r = (-kf).mul_add(LN2_LO, (-kf).mul_add(LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5); // Cephes: 5.0000001201e-1, which is 0.5 in f32
    (k, (p * r).mul_add(r, r))
}

/// `e^x`. Max error 1 ulp, including subnormal results; `exp(x) = +inf` for `x > 88.7228`
/// (as the correctly rounded value), `0` for `x < -103.98`, `exp(-inf) = 0`, `exp(+inf) = +inf`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp_fast(-110.0, 89.0);
    let (k, q) = exp_reduce(xc);
    // 2^k = 2^k1 · 2^k2 with both halves normal, so subnormal results are rounded once and
    // overflow happens only in the last product.
    let k1 = k >> 1;
    let k2 = k - k1;
    let y = (1.0 + q) * pow2i(k1) * pow2i(k2);
    if x.is_nan() { x } else { y }
}

/// `e^x - 1`. Max error 3 ulps. Exact-to-the-bound relative accuracy near 0 (no cancellation);
/// `expm1(-inf) = -1`, `expm1(+inf) = +inf`.
#[inline(always)]
pub fn expm1(x: f32) -> f32 {
    let xc = x.clamp_fast(-110.0, 89.0);
    let (k, q) = exp_reduce(xc);
    let k1 = k >> 1;
    let k2 = k - k1;
    let big = (1.0 + q) * pow2i(k1) * pow2i(k2) - 1.0;
    let y = if k == 0 { q } else { big };
    if x.is_nan() { x } else { y }
}

/// `ln(1 + x)` for `x > -1`. Max error 2 ulps (relative accuracy holds down to subnormal `x`).
/// `ln_1p(-1) = -inf`, `ln_1p(x < -1) = NaN`, `ln_1p(+inf) = +inf`; `ln_1p(-0) = +0`.
#[inline(always)]
pub fn ln_1p(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SQRT_HALF_BITS: u32 = 0x3F35_04F3;
    let u = 1.0 + x;
    // u - 1 is exact near 1, so c recovers the part of x lost in rounding 1 + x.
    let c = (x - (u - 1.0)) / u;
    // musl's trick: offset the bits so the mantissa lands in [sqrt(1/2), sqrt(2)).
    let ix = u.to_bits().wrapping_sub(SQRT_HALF_BITS);
    let k = (ix as i32) >> 23;
    let m = f32::from_bits((ix & 0x007F_FFFF).wrapping_add(SQRT_HALF_BITS));
    let f = m - 1.0;
    let kf = k as f32;
    let z = f * f;
    let mut p = 7.037_683_6e-2_f32;
    p = p * f - 1.151_461e-1;
    p = p * f + 1.167_699_9e-1;
    p = p * f - 1.242_014_1e-1;
    p = p * f + 1.424_932_3e-1;
    p = p * f - 1.666_805_8e-1;
    p = p * f + 2.000_071_4e-1;
    p = p * f - 2.499_999_4e-1;
    p = p * f + 3.333_333e-1;
    let y = p * f * z + (kf * LN2_LO + c) - 0.5 * z + f + kf * LN2_HI;
    // Outside (0, inf) the bit trick means nothing: patch the edges by value.
    let y = if u == f32::INFINITY { u } else { y };
    let y = if u == 0.0 { f32::NEG_INFINITY } else { y };
    if u < 0.0 || x.is_nan() { f32::NAN } else { y }
}

/// `tanh(x)`: a rational minimax form `x·P(x²)/Q(x²)` (degrees 9 over 8 in x, fitted to the
/// relative error on `[0, 9.02]` by `docs/fits/tanh.py`, coefficients rounded to f32), clamped
/// where it reaches 1. Max error 5 ulps (1 ulp in all but 0.4% of inputs), checked over every f32 in
/// `[0, 10]`; never above 1, `tanh(±inf) = ±1`, `tanh(-0) = -0`, odd exactly. Half the cost of
/// the exp-based form: one division, eight multiply-adds, no range reduction.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 8.107_128; // the form is exactly 1 here, and exceeds 1 soon after
    let x = x.clamp_fast(-CLAMP, CLAMP); // NaN passes through
    let t = x * x;
    let mut p = 1.338_431_05e-8_f32;
    p = p.mul_add(t, 2.063_583_8e-5);
    p = p.mul_add(t, 3.497_458_8e-3);
    p = p.mul_add(t, 1.338_268_8e-1);
    let mut q = 7.790_257_5e-7_f32;
    q = q.mul_add(t, 3.288_519e-4);
    q = q.mul_add(t, 2.588_436_6e-2);
    q = q.mul_add(t, 4.671_601e-1);
    q = q.mul_add(t, 1.0);
    // x + x³·P: the leading term exact, so small |x| keeps full relative accuracy.
    (x * t).mul_add(p, x) / q
}

/// `1 / (1 + e^-x)`, as `r = 1/(1 + e^-|x|)` for `x >= 0` and `e^-|x|·r` below. Max error 3 ulps,
/// subnormal results included; `logistic(-inf) = 0`, `logistic(+inf) = 1`. Unlike
/// `0.5 + 0.5·tanh(x/2)` it keeps relative accuracy in the left tail (no cancellation).
#[inline(always)]
pub fn logistic(x: f32) -> f32 {
    let e = exp(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 || x.is_nan() { r } else { e * r }
}

/// `atan(x)`: Cephes' reduction to `|x| <= tan(π/8)` and its degree-9 odd polynomial, with the
/// three branches folded into one division. Max error 3 ulps; `atan(±inf) = ±π/2`.
#[inline(always)]
pub fn atan(x: f32) -> f32 {
    const TAN_3PI_8: f32 = 2.414_213_5;
    const TAN_PI_8: f32 = 0.414_213_57;
    let ax = x.abs();
    let big = ax > TAN_3PI_8;
    let mid = ax > TAN_PI_8;
    let num = if big {
        -1.0
    } else if mid {
        ax - 1.0
    } else {
        ax
    };
    let den = if big {
        ax
    } else if mid {
        ax + 1.0
    } else {
        1.0
    };
    let base = if big {
        std::f32::consts::FRAC_PI_2
    } else if mid {
        std::f32::consts::FRAC_PI_4
    } else {
        0.0
    };
    let t = num / den;
    let z = t * t;
    let mut p = 8.053_744_5e-2_f32;
    p = p * z - 1.387_768_6e-1;
    p = p * z + 1.997_771_1e-1;
    p = p * z - 3.333_295e-1;
    let y = base + (p * z * t + t);
    y.copysign(x)
}

/// `erfc(z)` for `z >= 0` (any sign accepted, `|z|` used): the Chebyshev fit of Numerical
/// Recipes' `erfcc`, `t·exp(-z² + P(t))` with `t = 1/(1 + z/2)`, relative error < 1.2e-7 in
/// exact arithmetic, for every `z >= 0` (the tail included).
#[inline(always)]
fn erfc_abs(z: f32) -> f32 {
    let z = z.abs().min_fast(12.0); // erfc(12) = 1.4e-64 is 0 in f32; also keeps z² finite
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77_f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    // The argument p - z² reaches -144: rounded to f32 it would be off by up to 4e-6, and so
    // would the result. Split z² = zh² + (z - zh)(z + zh) with zh² exact (zh has 12 bits), add
    // with TwoSum, and apply the low part as exp(hi + lo) = exp(hi)·(1 + lo).
    let zh = f32::from_bits(z.to_bits() & 0xFFFF_F000);
    let a = -(zh * zh);
    let b = p - (z - zh) * (z + zh);
    let hi = a + b;
    let bv = hi - a;
    let lo = (a - (hi - bv)) + (b - bv);
    t * (exp(hi) * (1.0 + lo))
}

/// `erf(x)` for `|x| < 0.75`: the odd Taylor polynomial to x^19 (truncation < 1e-9 relative).
#[inline(always)]
fn erf_small(x: f32) -> f32 {
    const TWO_OVER_SQRT_PI: f32 = std::f32::consts::FRAC_2_SQRT_PI;
    let z = x * x;
    // Σ (-1)^n x^(2n+1) / (n! (2n+1)), n = 0..=9, times 2/√π.
    let mut p = -1.0 / (362_880.0 * 19.0_f32);
    p = p * z + 1.0 / (40_320.0 * 17.0);
    p = p * z - 1.0 / (5_040.0 * 15.0);
    p = p * z + 1.0 / (720.0 * 13.0);
    p = p * z - 1.0 / (120.0 * 11.0);
    p = p * z + 1.0 / (24.0 * 9.0);
    p = p * z - 1.0 / (6.0 * 7.0);
    p = p * z + 1.0 / (2.0 * 5.0);
    p = p * z - 1.0 / 3.0;
    (x * TWO_OVER_SQRT_PI) * (p * z + 1.0)
}

/// `erfc(x) = 1 - erf(x)`, relatively accurate for `x > 0` (the tail Φ(-x) that GELU needs):
/// `1 - erf` for `|x| < 0.75`, the fit above beyond. Max error 6 ulps, subnormal results
/// (`x > 9.2`) included; `erfc(-inf) = 2`, `erfc(+inf) = 0`.
#[inline(always)]
pub fn erfc(x: f32) -> f32 {
    let e = erfc_abs(x);
    let tail = if x < 0.0 { 2.0 - e } else { e };
    let y = if x.abs() < 0.75 { 1.0 - erf_small(x) } else { tail };
    if x.is_nan() { x } else { y }
}

/// `erf(x)`: a polynomial (`erf_small`) for `|x| < 0.75`, `±(1 - erfc(|x|))` above. Max error 3 ulps;
/// `erf(±inf) = ±1`, `erf(-0) = -0`, odd exactly. (For `1 + erf(x)` with `x < -2` use
/// [`erfc`]: `erf` has the absolute error of an `f32` near 1, about 6e-8.)
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let big = (1.0 - erfc_abs(x)).copysign(x);
    if x.abs() < 0.75 || x.is_nan() { erf_small(x) } else { big }
}

/// Defines `$name` (const generics after a `;`: `fn f<F: Real; const M: bool>`), which runs
/// `$body` compiled for AVX-512 (with FMA) or else AVX2 where the CPU has it (detected once,
/// cached by std), and as is elsewhere.
///
/// For the elementwise loops and lane-parallel reductions: `$body` and the `#[inline(always)]`
/// kernels it calls are vectorized 16 or 8 wide instead of SSE2's 4. Results are bit-identical
/// on every path: Rust never contracts `a * b + c` into an FMA nor reorders float operations, and
/// the kernels' explicit `mul_add`s are exactly rounded everywhere (an FMA instruction here, libm's
/// `fmaf` without one, which is slow but exact). So only the vector width changes, never an
/// operation or its order. Keep `mul_add` to code that runs inside these functions.
///
/// `@avx512_if(cond)` before the function takes the AVX-512 path only where `cond` holds (it
/// may name the function's const generics), and AVX2 otherwise: for loops that gain nothing
/// from 16-wide registers and lose by them.
macro_rules! wide_fn {
    (
        @avx512_if($use_avx512:expr)
        $(#[$meta:meta])*
        $vis:vis fn $name:ident $(<$($gen:ident : $bound:path),* $(; const $cg:ident : $cty:ty)*>)?
        ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name $(<$($gen: $bound),* $(, const $cg: $cty)*>)? ($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable $(<$($gen: $bound),* $(, const $cg: $cty)*>)? ($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn avx512 $(<$($gen: $bound),* $(, const $cg: $cty)*>)? ($($arg: $ty),*) $(-> $ret)? {
                    portable $(::<$($gen),* $(, $cg)*>)? ($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2 $(<$($gen: $bound),* $(, const $cg: $cty)*>)? ($($arg: $ty),*) $(-> $ret)? {
                    portable $(::<$($gen),* $(, $cg)*>)? ($($arg),*)
                }
                if $use_avx512 && crate::engine::fastmath::has_avx512() {
                    // SAFETY: the CPU has just been checked for every feature enabled above.
                    return unsafe { avx512 $(::<$($gen),* $(, $cg)*>)? ($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has just been checked for AVX2 and FMA.
                    return unsafe { avx2 $(::<$($gen),* $(, $cg)*>)? ($($arg),*) };
                }
            }
            portable $(::<$($gen),* $(, $cg)*>)? ($($arg),*)
        }
    };
    // Only a plain function: a malformed `@avx512_if` form must not wrap itself again.
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => {
        crate::engine::fastmath::wide_fn! { @avx512_if(true) $(#[$meta])* $vis fn $($rest)* }
    };
}
pub(crate) use wide_fn;

/// Whether the CPU has what [`wide_fn`]'s AVX-512 variant is compiled for.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") && has!("avx2") && has!("fma")
}

/// `min`/`max` without NaN bookkeeping (NaN is patched by the callers), which compiles to plain
/// `minps`/`maxps`.
trait ClampFast {
    fn clamp_fast(self, lo: Self, hi: Self) -> Self;
    fn min_fast(self, hi: Self) -> Self;
}

impl ClampFast for f32 {
    #[inline(always)]
    fn clamp_fast(self, lo: f32, hi: f32) -> f32 {
        let a = if self < lo { lo } else { self };
        if a > hi { hi } else { a }
    }
    #[inline(always)]
    fn min_fast(self, hi: f32) -> f32 {
        if self > hi { hi } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in ulps between an `f32` and the `f64` reference rounded to `f32`.
    fn ulps(got: f32, want: f64) -> u64 {
        let w = want as f32;
        if got == w || (got.is_nan() && w.is_nan()) {
            return 0;
        }
        if got.is_nan() || w.is_nan() {
            return u64::MAX;
        }
        fn ordered(v: f32) -> i64 {
            let b = v.to_bits() as i32 as i64;
            if b < 0 { i32::MIN as i64 - b } else { b }
        }
        (ordered(got) - ordered(w)).unsigned_abs()
    }

    /// The grid: sparse-but-uniform over all bit patterns, dense over [-100, 100], and extremes.
    fn grid() -> Vec<f32> {
        let mut v = Vec::new();
        let mut b: u32 = 0;
        while b < 0x7F80_0000 {
            v.push(f32::from_bits(b));
            v.push(-f32::from_bits(b));
            b += 331;
        }
        for i in -200_000..=200_000 {
            v.push(i as f32 * 5e-4);
        }
        v.extend_from_slice(&[
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            1e-30,
            -1e-30,
            1.0,
            -1.0,
            88.0,
            -88.0,
            88.72,
            88.7228,
            88.8,
            -87.33,
            -103.9,
            -104.0,
            1000.0,
            -1000.0,
            1e30,
            -1e30,
            f32::MAX,
            -f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        v
    }

    fn max_ulps(
        name: &str,
        domain: impl Fn(f32) -> bool,
        fast: impl Fn(f32) -> f32,
        reference: impl Fn(f64) -> f64,
    ) -> u64 {
        let mut worst = (0u64, 0.0f32);
        for x in grid().into_iter().filter(|&x| domain(x)) {
            let got = fast(x);
            assert!(!got.is_nan(), "{name}({x:e}) is NaN");
            let e = ulps(got, reference(x as f64));
            if e > worst.0 {
                worst = (e, x);
            }
        }
        eprintln!("{name}: max {} ulps at x = {:e}", worst.0, worst.1);
        worst.0
    }

    #[test]
    fn exp_within_1_ulp() {
        assert!(max_ulps("exp", |_| true, exp, f64::exp) <= 1);
    }

    #[test]
    fn expm1_within_3_ulps() {
        assert!(max_ulps("expm1", |_| true, expm1, f64::exp_m1) <= 3);
    }

    #[test]
    fn ln_1p_within_2_ulps() {
        assert!(max_ulps("ln_1p", |x| x > -1.0, ln_1p, f64::ln_1p) <= 2);
        assert_eq!(ln_1p(-1.0), f32::NEG_INFINITY);
        assert!(ln_1p(-2.0).is_nan());
        assert_eq!(ln_1p(f32::INFINITY), f32::INFINITY);
        assert_eq!(ln_1p(1e-40), 1e-40);
    }

    #[test]
    fn tanh_within_5_ulps_and_never_above_1() {
        assert!(max_ulps("tanh", |_| true, tanh, f64::tanh) <= 5);
        assert!(grid().into_iter().all(|x| tanh(x).abs() <= 1.0));
        assert_eq!(tanh(8.107_128), 1.0);
        assert_eq!(tanh(9.0), 1.0);
    }

    /// The bound stated on [`tanh`], over every f32 in [0, 10] (tanh is odd exactly, and 1 past
    /// 10). About a minute in release: `cargo test --release -- --ignored tanh_every`.
    #[test]
    #[ignore]
    fn tanh_every_f32_within_5_ulps() {
        let worst =
            (0..=10f32.to_bits()).map(|b| ulps(tanh(f32::from_bits(b)), f64::from(f32::from_bits(b)).tanh())).max();
        assert!(worst <= Some(5), "{worst:?}");
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(-0.0).is_sign_negative());
    }

    #[test]
    fn logistic_within_3_ulps() {
        assert!(max_ulps("logistic", |_| true, logistic, |x| 1.0 / (1.0 + (-x).exp())) <= 3);
        assert_eq!(logistic(f32::NEG_INFINITY), 0.0);
        assert_eq!(logistic(f32::INFINITY), 1.0);
    }

    #[test]
    fn atan_within_3_ulps() {
        assert!(max_ulps("atan", |_| true, atan, f64::atan) <= 3);
        assert_eq!(atan(f32::INFINITY), std::f32::consts::FRAC_PI_2);
    }

    #[test]
    fn erf_within_3_ulps() {
        assert!(max_ulps("erf", |_| true, erf, libm::erf) <= 3);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(-0.0).is_sign_negative());
    }

    #[test]
    fn erfc_within_6_ulps() {
        assert!(max_ulps("erfc", |_| true, erfc, libm::erfc) <= 6);
        assert_eq!(erfc(f32::INFINITY), 0.0);
        assert_eq!(erfc(f32::NEG_INFINITY), 2.0);
    }

    #[test]
    fn nan_passes_through() {
        for f in [exp, expm1, ln_1p, tanh, logistic, atan, erf, erfc] {
            assert!(f(f32::NAN).is_nan());
        }
    }
}
