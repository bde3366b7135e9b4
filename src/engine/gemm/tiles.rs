//! Small products straight to the `gemm` crate's register-tile kernels, without its driver.
//!
//! For the 32- and 64-wide nets of a sweep, the driver's work around the kernels (cache
//! blocking, packing decisions, a zeroed flag vector allocated per call) took about a sixth of
//! the products' time (`perf record` of `seed-claims-mini`). When the kernel can read the
//! operands as they lie, which is what the driver itself decides for these shapes, this calls
//! the same kernels on them directly: the left operand (as the kernel sees it) contiguous down
//! its columns, with a row count that is a multiple of the vector width.
//!
//! Same bits as the driver: each kernel call runs the whole of k (at most the caller's K-block,
//! 512, which the driver also takes in one piece below 64 x 64 outputs), summing each element
//! from zero by fused multiply-adds in k order, then combining with c as the driver does.

#[cfg(target_arch = "x86_64")]
use gemm_common::microkernel::MicroKernelFn;

#[cfg(target_arch = "x86_64")]
use super::K_BLOCK;

/// The largest products taken here: beyond them the driver's overhead is small against the
/// product, and its blocking and packing start to matter.
const MAX_ROWS: usize = 128;
const MAX_COLS: usize = 192;

/// One product as the kernel sees it: dst (m x n) = alpha * dst + lhs (m x k) . rhs (k x n),
/// alpha 0 writing without reading dst. Strides in elements.
pub(super) struct Tiled<T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub dst: *mut T,
    pub dst_cs: isize,
    pub dst_rs: isize,
    pub lhs: *const T,
    pub lhs_cs: isize,
    pub lhs_rs: isize,
    pub rhs: *const T,
    pub rhs_cs: isize,
    pub rhs_rs: isize,
    pub alpha: T,
}

/// `try_f32` and `try_f64`: run `p` on the calling thread if it is small and laid out for the
/// kernels, and say whether they did; if not, nothing is written. The kernels are the crate's
/// own choice for the CPU (x86-v4 is on), so its tiles and these agree.
///
/// # Safety
/// The pointers and strides describe valid, non-negative-strided views of the given shapes;
/// dst overlaps neither operand.
macro_rules! try_kernels {
    ($name:ident, $t:ident, $krate:ident, $v4_lanes:expr, $v3_lanes:expr) => {
        pub(super) unsafe fn $name(p: &Tiled<$t>) -> bool {
            #[cfg(target_arch = "x86_64")]
            {
                use $krate::microkernel::{avx512f::$t as v4, fma::$t as v3};
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: forwarded from the caller; the CPU has the kernels' features.
                    return unsafe { run(p, &v4::UKR, $v4_lanes, 0.0, 1.0) };
                }
                if std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { run(p, &v3::UKR, $v3_lanes, 0.0, 1.0) };
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = p;
            false
        }
    };
}

try_kernels!(try_f32, f32, gemm_f32, 16, 8);
try_kernels!(try_f64, f64, gemm_f64, 8, 4);

/// Walks `p`'s output in register tiles of `lanes * MD` rows by `NR` columns, as the driver
/// does for an unpacked left operand, calling the kernel for each tile's shape.
#[cfg(target_arch = "x86_64")]
unsafe fn run<T: Copy + PartialEq, const NR: usize, const MD: usize>(
    p: &Tiled<T>,
    kernels: &[[MicroKernelFn<T>; NR]; MD],
    lanes: usize,
    zero: T,
    one: T,
) -> bool {
    let mr = lanes * MD;
    let small = p.m <= MAX_ROWS && p.n <= MAX_COLS && (1..=K_BLOCK).contains(&p.k);
    if !small || p.lhs_rs != 1 || !p.m.is_multiple_of(lanes) {
        return false;
    }
    // As the driver grades alpha: 0 writes without reading dst, 1 adds with one rounding.
    let alpha_status = if p.alpha == zero {
        0
    } else if p.alpha == one {
        1
    } else {
        2
    };
    for j0 in (0..p.n).step_by(NR) {
        let cols = NR.min(p.n - j0);
        for i0 in (0..p.m).step_by(mr) {
            let rows = mr.min(p.m - i0);
            let kernel = kernels[rows / lanes - 1][cols - 1];
            // SAFETY: the tile lies inside the caller's views; rows is a multiple of the
            // vector width, so the kernel's full-vector loads of lhs columns stay in the view.
            unsafe {
                kernel(
                    rows,
                    cols,
                    p.k,
                    p.dst.offset(i0 as isize * p.dst_rs + j0 as isize * p.dst_cs),
                    p.lhs.add(i0),
                    p.rhs.offset(j0 as isize * p.rhs_cs),
                    p.dst_cs,
                    p.dst_rs,
                    p.lhs_cs,
                    p.rhs_rs,
                    p.rhs_cs,
                    p.alpha,
                    one,
                    alpha_status,
                    false,
                    false,
                    false,
                    std::ptr::null(),
                );
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path is taken where it should be: without it, `matches_the_canonical_order_bit_for_bit`
    /// would test only the driver.
    #[test]
    fn takes_small_column_major_products_only() {
        let (a, b) = (vec![1.0f32; 64 * 48], vec![2.0f32; 48 * 30]);
        let mut c = vec![0.0f32; 64 * 30];
        let p = |m: usize, lhs_rs: isize, c: &mut Vec<f32>| Tiled {
            m,
            n: 30,
            k: 48,
            dst: c.as_mut_ptr(),
            dst_cs: m as isize,
            dst_rs: 1,
            lhs: a.as_ptr(),
            lhs_cs: if lhs_rs == 1 { m as isize } else { 1 },
            lhs_rs,
            rhs: b.as_ptr(),
            rhs_cs: 48,
            rhs_rs: 1,
            alpha: 0.0,
        };
        let fma = cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("fma");
        // SAFETY: every view fits its buffer: lhs m x 48, rhs 48 x 30, dst m x 30.
        unsafe {
            assert_eq!(try_f32(&p(64, 1, &mut c)), fma);
            assert!(!try_f32(&p(60, 1, &mut c)), "rows not a multiple of the vector width");
            assert!(!try_f32(&p(64, 48, &mut c)), "lhs not contiguous down its columns");
        }
        if fma {
            assert!(c.iter().all(|&v| v == 96.0), "each output is 48 products of 1 and 2");
        }
    }
}
