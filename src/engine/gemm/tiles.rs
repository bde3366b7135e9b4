//! Small products straight to the `gemm` crate's register-tile kernels, without its driver.
//!
//! For the 32- and 64-wide nets of a sweep, the driver's work around the kernels (cache
//! blocking, packing decisions, a zeroed flag vector allocated per call) took about a sixth of
//! the products' time (`perf record` of `seed-claims-mini`). When the kernel can read the
//! operands as they lie, which is what the driver itself decides for these shapes, this calls
//! the same kernels on them directly: the left operand (as the kernel sees it) contiguous down
//! its columns; rows past its last whole vector of rows are copied into a zero-padded panel,
//! as the driver does.
//!
//! Same bits as the driver: each kernel call runs the whole of k (at most the caller's K-block,
//! 512), summing each element from zero by fused multiply-adds in k order, then combining with
//! c as the driver does; that is the canonical order of `matmul_serial`, whichever vector
//! width the CPU's kernels have.

#[cfg(target_arch = "x86_64")]
use gemm_common::microkernel::MicroKernelFn;

#[cfg(target_arch = "x86_64")]
use std::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
use super::K_BLOCK;

/// The largest products taken here: beyond them the driver's overhead is small against the
/// product, and its blocking and packing start to matter.
#[cfg(target_arch = "x86_64")]
const MAX_ROWS: usize = 128;
#[cfg(target_arch = "x86_64")]
const MAX_COLS: usize = 192;
/// Elements of the stack panel for the rows past the last whole vector: one vector's rows by
/// k, for k up to 128 with f32 on AVX-512 (8 KB; 16 KB in f64).
#[cfg(target_arch = "x86_64")]
const PANEL: usize = 2048;

/// One product as the kernel sees it: dst (m x n) = alpha * dst + lhs (m x k) . rhs (k x n),
/// alpha 0 writing without reading dst. Strides in elements. (Only the x86_64 kernels read it.)
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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
    // Rows past the last whole vector are copied, zero-padded, into a panel the kernel can
    // read a whole vector of (as the driver packs them); the panel lives on the stack.
    let (full, rest) = (p.m - p.m % lanes, p.m % lanes);
    let small = p.m <= MAX_ROWS && p.n <= MAX_COLS && (1..=K_BLOCK).contains(&p.k);
    if !small || p.lhs_rs != 1 || (rest > 0 && lanes * p.k > PANEL) {
        return false;
    }
    let mut panel = [MaybeUninit::<T>::uninit(); PANEL];
    if rest > 0 {
        for (kk, column) in panel.chunks_exact_mut(lanes).take(p.k).enumerate() {
            for (i, v) in column.iter_mut().enumerate() {
                // SAFETY: row full + i < m and column kk < k of the caller's lhs.
                v.write(if i < rest {
                    unsafe { *p.lhs.offset((full + i) as isize + kk as isize * p.lhs_cs) }
                } else {
                    zero
                });
            }
        }
    }
    // As the driver grades alpha: 0 writes without reading dst, 1 adds with one rounding.
    let alpha_status = if p.alpha == zero {
        0
    } else if p.alpha == one {
        1
    } else {
        2
    };
    // One tile: `rows` outputs from row i0, `cols` from column j0, lhs read from `lhs`.
    let tile =
        |kernel: MicroKernelFn<T>, rows: usize, cols: usize, i0: usize, j0: usize, lhs: *const T, lhs_cs: isize| {
            // SAFETY: the tile lies inside the caller's views; the kernel reads whole vectors of
            // lhs down each column, which `lhs` holds: whole vectors of the caller's rows, or the
            // panel.
            unsafe {
                kernel(
                    rows,
                    cols,
                    p.k,
                    p.dst.offset(i0 as isize * p.dst_rs + j0 as isize * p.dst_cs),
                    lhs,
                    p.rhs.offset(j0 as isize * p.rhs_cs),
                    p.dst_cs,
                    p.dst_rs,
                    lhs_cs,
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
        };
    for j0 in (0..p.n).step_by(NR) {
        let cols = NR.min(p.n - j0);
        for i0 in (0..full).step_by(mr) {
            let rows = mr.min(full - i0);
            // SAFETY: row i0 of lhs, inside the caller's view.
            tile(kernels[rows / lanes - 1][cols - 1], rows, cols, i0, j0, unsafe { p.lhs.add(i0) }, p.lhs_cs);
        }
        if rest > 0 {
            tile(kernels[0][cols - 1], rest, cols, full, j0, panel.as_ptr().cast(), lanes as isize);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dst (m x n) = alpha * dst + a (m x k) . b (k x n), all three column-major.
    fn column_major(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], alpha: f32) -> Tiled<f32> {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        Tiled {
            m,
            n,
            k,
            dst: c.as_mut_ptr(),
            dst_cs: m as isize,
            dst_rs: 1,
            lhs: a.as_ptr(),
            lhs_cs: m as isize,
            lhs_rs: 1,
            rhs: b.as_ptr(),
            rhs_cs: k as isize,
            rhs_rs: 1,
            alpha,
        }
    }

    /// The path is taken where it should be: without it, `matches_the_canonical_order_bit_for_bit`
    /// would test only the driver.
    #[test]
    fn takes_small_column_contiguous_products_only() {
        let (a, b) = (vec![1.0f32; 200 * 48], vec![2.0f32; 512 * 30]);
        let fma = cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("fma");
        let run = |m: usize, k: usize, lhs_rs: isize| {
            let mut c = vec![0.0f32; m * 30];
            let p = column_major(m, k, 30, &a, &b, &mut c, 0.0);
            let p = if lhs_rs == 1 { p } else { Tiled { lhs_cs: 1, lhs_rs, ..p } };
            // SAFETY: every view fits its buffer: lhs m x k, rhs k x 30, dst m x 30.
            let taken = unsafe { try_f32(&p) };
            (taken, c.iter().all(|&v| v == 2.0 * k as f32))
        };
        // Whole vectors of rows, and rows past them (through the panel).
        assert_eq!(run(64, 48, 1), (fma, fma));
        assert_eq!(run(60, 48, 1), (fma, fma));
        assert_eq!(run(10, 128, 1), (fma, fma));
        assert!(!run(64, 48, 48).0, "lhs not contiguous down its columns");
        assert!(!run(130, 16, 1).0, "too many rows");
        assert!(!run(10, 300, 1).0, "rows past the last vector, and k too long for the panel");
    }

    /// The AVX2 kernels (8 lanes, 16-row tiles) give the AVX-512 ones' bits, so a CPU without
    /// AVX-512 sums as this one does; run where the CPU has both.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn both_vector_widths_give_the_same_bits() {
        use gemm_f32::microkernel::{avx512f::f32 as v4, fma::f32 as v3};
        if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")) {
            return;
        }
        let value = |i: usize| {
            let h = (i * 7919 + 104_729) % 1_000_003;
            ((h % 997) as f32 / 997.0 - 0.5) * 2f32.powi((h % 23) as i32 - 11)
        };
        for (m, k, n) in [(32, 32, 32), (10, 64, 32), (40, 70, 30), (128, 96, 64), (16, 128, 192)] {
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
            for alpha in [0.0, 1.0, -0.75] {
                let out = |v4_kernels: bool| {
                    let mut c: Vec<f32> = (0..m * n).map(|i| value(i + 9)).collect();
                    let p = column_major(m, k, n, &a, &b, &mut c, alpha);
                    // SAFETY: lhs m x k, rhs k x n and dst m x n fit their buffers; the CPU has
                    // both kernels' features (checked above).
                    let taken = unsafe {
                        if v4_kernels { run(&p, &v4::UKR, 16, 0.0, 1.0) } else { run(&p, &v3::UKR, 8, 0.0, 1.0) }
                    };
                    assert!(taken, "{m}x{k}x{n} takes the direct path");
                    c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                };
                assert_eq!(out(true), out(false), "{m}x{k}x{n}, alpha {alpha}");
            }
        }
    }
}
