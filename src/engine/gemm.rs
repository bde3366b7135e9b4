//! Matrix products for the training step, split over rayon for wide layers.
//!
//! The kernel is faer's (`gemm-f32` and `gemm-f64`, the real-valued halves of the `gemm`
//! crate, without its complex and f16 kernels, which took a minute of every fresh build),
//! single-threaded: 10-25% faster than ndarray's `matrixmultiply` on the step's shapes
//! (`benches/train_step.rs` runs both).
//!
//! Determinism: a split only ever cuts the output, by rows or by columns, never the inner
//! dimension. Each output element is then computed by the same kernel over the same K-blocks in
//! the same order, so the result is bit-identical however many threads run (tested here on the
//! engine's shapes, and in `engine::train`).

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::Real;

mod tiles;

/// Below this many multiply-adds a product runs on the calling thread: handing work to another
/// rayon worker costs a few microseconds.
const PAR_MIN_MACS: usize = 1 << 19;
/// Row and column blocks stay multiples of this, the widest register tile of the kernels.
const ROW_ALIGN: usize = 16;

/// c = a . b + beta * c.
pub fn matmul<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, beta: F, c: ArrayViewMut2<'_, F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if m * n * k < PAR_MIN_MACS {
        return matmul_serial(a, b, beta, c);
    }
    // Each piece packs its own copy of the operand it shares, so share the smaller one: cut the
    // columns when b is the bigger operand, the rows otherwise.
    let threads = rayon::current_num_threads();
    let (axis, len) = if k * n > m * k && n >= 2 * ROW_ALIGN { (Axis(1), n) } else { (Axis(0), m) };
    split(a, b, beta, c, threads.min(len / ROW_ALIGN).max(1), axis);
}

/// The kernel copies ("packs") an operand that is already laid out as it reads it once the
/// other side has more than this many 6-wide column tiles (its default, 8, packs from 49 columns
/// on). Packing is a copy, so results are the same bits either way; not packing is 4-5% faster
/// on the step's products up to width 256 and batch 128 (`benches/train_step.rs` gemms), and
/// no slower at 1024.
const LHS_PACKING_THRESHOLD: usize = 32;

fn tune_kernel() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| gemm_common::gemm::set_lhs_packing_threshold_single_thread(LHS_PACKING_THRESHOLD));
}

/// The longest run along k that one kernel call sums before adding into c. The `gemm` crate
/// picks its own K-block from the L1 cache's size and ways and the register tile's width: 512 on
/// the machines seen, 1024 on some (an AVX2 kernel on a 12-way L1). Cut here to a length fixed
/// by k alone, no call reaches past its block, so each element's sum runs in the same order on
/// every CPU.
const K_BLOCK: usize = 512;

/// c = a . b + beta * c on the calling thread. Panics if the shapes do not agree.
///
/// Every element is computed in one order, the same on every CPU and every kernel: k is cut
/// into `ceil(k / 512)` blocks as even as can be; each block's products are summed one after
/// another by fused multiply-adds from zero; the first block's sum is added to beta * c (or
/// replaces c when beta is 0), the next ones to c. The `gemm` crate's register-tile kernels do
/// exactly that; its other paths (dot products across SIMD lanes for tiny or one-wide
/// products, and any CPU without FMA) would sum in an order set by the vector width, so those
/// products go to `canonical` instead (`matches_the_canonical_order_bit_for_bit` below).
pub fn matmul_serial<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, beta: F, mut c: ArrayViewMut2<'_, F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(b.nrows() == k && c.dim() == (m, n), "matmul shapes: {:?} . {:?} into {:?}", a.dim(), b.dim(), c.dim());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.map_inplace(|v| *v = if beta == F::zero() { F::zero() } else { *v * beta });
        return;
    }
    if k <= K_BLOCK {
        // One block (the engine's products up to width 512): no views to cut, which showed
        // in the profile of 32-wide nets.
        return block(a, b, beta, c);
    }
    let blocks = k.div_ceil(K_BLOCK);
    let len = k.div_ceil(blocks);
    for (i, k0) in (0..k).step_by(len).enumerate() {
        let ks = k0..(k0 + len).min(k);
        let beta = if i == 0 { beta } else { F::one() };
        block(a.slice(ndarray::s![.., ks.clone()]), b.slice(ndarray::s![ks, ..]), beta, c.view_mut());
    }
}

/// One block of k (at most [`K_BLOCK`]), by the tiled kernels or by [`canonical`].
fn block<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, beta: F, c: ArrayViewMut2<'_, F>) {
    if tiled_kernel_sums_in_order(a, b, c.view()) {
        kernel_block(a, b, beta, c);
    } else {
        canonical(a, b, beta, c);
    }
}

/// Whether the `gemm` crate (0.19) computes this product, k <= [`K_BLOCK`], with its register
/// tiles, which sum each element in the canonical order. It does when the CPU has FMA (its
/// scalar fallback may round a multiply and an add apart) and the product is none of those
/// it sends elsewhere (`gemm_basic_generic`): k <= 2 (an outer product), one row or one
/// column (matrix-vector), or at most 256 outputs with both operands contiguous along k (dot
/// products across SIMD lanes). The strides are named as the kernel sees them, after the swap
/// in [`kernel_block`].
fn tiled_kernel_sums_in_order<F>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, c: ArrayView2<'_, F>) -> bool {
    let ((m, k), n) = (a.dim(), b.ncols());
    let (lhs_cs, rhs_rs) = if c.strides()[1].abs() < c.strides()[0].abs() {
        (b.strides()[0], a.strides()[1])
    } else {
        (a.strides()[1], b.strides()[0])
    };
    let horizontal = lhs_cs == 1 && rhs_rs == 1 && m * n <= 16 * 16;
    cpu_has_fma() && k > 2 && m > 1 && n > 1 && !horizontal
}

fn cpu_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("neon");
    #[allow(unreachable_code)]
    false
}

super::fastmath::wide_fn! {
    /// c = a . b + beta * c, each element summed in the canonical order (see [`matmul_serial`])
    /// by plain loops: the path for the products the tiled kernels do not take, all small or
    /// thin. k <= [`K_BLOCK`].
    fn canonical<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, beta: F, c: ArrayViewMut2<'_, F>) {
        let mut c = c;
        for (i, mut row) in c.outer_iter_mut().enumerate() {
            let a_row = a.row(i);
            for (j, out) in row.iter_mut().enumerate() {
                let sum = a_row.iter().zip(b.column(j)).fold(F::zero(), |acc, (&x, &y)| x.mul_add(y, acc));
                // As the tiled kernels combine: beta = 0 writes the sum, 1 adds it with one
                // rounding, and any other beta rounds beta * c before the add.
                *out = if beta == F::zero() {
                    sum
                } else if beta == F::one() {
                    sum + *out
                } else {
                    beta * *out + sum
                };
            }
        }
    }
}

/// c = a . b + beta * c by the `gemm` crate's kernel, for k <= [`K_BLOCK`].
fn kernel_block<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, beta: F, mut c: ArrayViewMut2<'_, F>) {
    tune_kernel();
    let (m, k) = a.dim();
    let n = b.ncols();
    let [a_rs, a_cs] = [a.strides()[0], a.strides()[1]];
    let [b_rs, b_cs] = [b.strides()[0], b.strides()[1]];
    let [c_rs, c_cs] = [c.strides()[0], c.strides()[1]];
    assert!(
        [a_rs, a_cs, b_rs, b_cs, c_rs, c_cs].iter().all(|&s| s >= 0),
        "matmul takes views with non-negative strides"
    );
    // As the `gemm` crate's entry point does: the kernels prefer a column-major destination, so
    // a row-major one is computed as the transposed product (c' = b' . a').
    let transpose = c_cs.abs() < c_rs.abs();
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if transpose {
        (n, m, c_rs, c_cs, b.as_ptr(), b_rs, b_cs, a.as_ptr(), a_rs, a_cs)
    } else {
        (m, n, c_cs, c_rs, a.as_ptr(), a_cs, a_rs, b.as_ptr(), b_cs, b_rs)
    };
    let (dst, read_dst, alpha, parallelism) = (c.as_mut_ptr(), beta != F::zero(), beta, gemm_common::Parallelism::None);
    // SAFETY: the three views are valid for their shapes and strides (checked above to agree
    // and to be non-negative), and `c` is borrowed mutably, so it overlaps neither `a` nor `b`.
    // The kernel computes dst = alpha * dst + beta * lhs . rhs, reading dst only when told to;
    // F is f32 or f64 (the only `Real`s), checked by TypeId before the pointer casts.
    unsafe {
        if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() {
            let f = |x: F| *(&x as *const F as *const f32);
            let (dst, lhs, rhs, alpha) = (dst as *mut f32, lhs as *const f32, rhs as *const f32, f(alpha));
            let p = tiles::Tiled { m, n, k, dst, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, alpha };
            if tiles::try_f32(&p) {
                return;
            }
            gemm_f32::gemm::f32::get_gemm_fn()(
                m,
                n,
                k,
                dst,
                dst_cs,
                dst_rs,
                read_dst,
                lhs,
                lhs_cs,
                lhs_rs,
                rhs,
                rhs_cs,
                rhs_rs,
                alpha,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        } else {
            assert_eq!(std::any::TypeId::of::<F>(), std::any::TypeId::of::<f64>(), "Real is f32 or f64");
            let f = |x: F| *(&x as *const F as *const f64);
            let (dst, lhs, rhs, alpha) = (dst as *mut f64, lhs as *const f64, rhs as *const f64, f(alpha));
            let p = tiles::Tiled { m, n, k, dst, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, alpha };
            if tiles::try_f64(&p) {
                return;
            }
            gemm_f64::gemm::f64::get_gemm_fn()(
                m,
                n,
                k,
                dst,
                dst_cs,
                dst_rs,
                read_dst,
                lhs,
                lhs_cs,
                lhs_rs,
                rhs,
                rhs_cs,
                rhs_rs,
                alpha,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// `dst = srcᵀ` for row-major `src` (r x c) into row-major `dst` (c x r). Panics if the shapes
/// disagree. A copy: the same bits on every path.
pub fn transpose_into<F: Real>(src: ArrayView2<'_, F>, mut dst: ArrayViewMut2<'_, F>) {
    let (r, c) = src.dim();
    assert_eq!(dst.dim(), (c, r), "transpose shapes");
    let src = src.as_slice().expect("row-major source");
    let dst = dst.as_slice_mut().expect("row-major destination");
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: F is f32 (checked just above), so the casts only rename the element type;
        // the CPU has AVX.
        unsafe {
            let src = std::slice::from_raw_parts(src.as_ptr().cast::<f32>(), src.len());
            let dst = std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<f32>(), dst.len());
            return transpose_f32_avx(src, dst, r, c);
        }
    }
    transpose_edges(src, dst, r, c, 0, 0);
}

/// Element by element, all but the `rt x ct` top-left block (already done by a tiled pass).
fn transpose_edges<F: Copy>(src: &[F], dst: &mut [F], r: usize, c: usize, rt: usize, ct: usize) {
    for i in 0..r {
        for j in if i < rt { ct } else { 0 }..c {
            dst[j * r + i] = src[i * c + j];
        }
    }
}

/// 8x8 tiles transposed in registers. Each register is loaded as two 4-wide halves, of row i
/// and row i + 4, so that two rounds of in-lane shuffles leave whole columns: 16 shuffles a
/// tile instead of 24 with a third, cross-lane round. A plain loop moves one element at a time
/// (five times slower at 64x64), and the product kernel's own packing of a transposed operand
/// is slower still.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose_f32_avx(src: &[f32], dst: &mut [f32], r: usize, c: usize) {
    use std::arch::x86_64::*;
    const T: usize = 8;
    assert!(src.len() >= r * c && dst.len() >= r * c, "transpose buffers");
    let (rt, ct) = (r - r % T, c - c % T);
    let (from, to) = (src.as_ptr(), dst.as_mut_ptr());
    for i0 in (0..rt).step_by(T) {
        for j0 in (0..ct).step_by(T) {
            // SAFETY: rows i0..i0+8 and columns j0..j0+8 of src (r x c), and rows j0..j0+8 and
            // columns i0..i0+8 of dst (c x r), are inside the buffers checked above.
            unsafe {
                let tile = from.add(i0 * c + j0);
                // Columns h..h+4 of tile rows a (low lane) and a + 4 (high lane).
                let halves = |a: usize, h: usize| {
                    let lo = _mm_loadu_ps(tile.add(a * c + h));
                    _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(lo), _mm_loadu_ps(tile.add((a + 4) * c + h)))
                };
                let out = to.add(j0 * r + i0);
                // A 4x4 transpose in each lane of four such registers gives columns h..h+4.
                let four = |h: usize| {
                    let (r0, r1, r2, r3) = (halves(0, h), halves(1, h), halves(2, h), halves(3, h));
                    let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
                    let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
                    _mm256_storeu_ps(out.add(h * r), _mm256_shuffle_ps::<0x44>(t0, t2));
                    _mm256_storeu_ps(out.add((h + 1) * r), _mm256_shuffle_ps::<0xEE>(t0, t2));
                    _mm256_storeu_ps(out.add((h + 2) * r), _mm256_shuffle_ps::<0x44>(t1, t3));
                    _mm256_storeu_ps(out.add((h + 3) * r), _mm256_shuffle_ps::<0xEE>(t1, t3));
                };
                four(0);
                four(4);
            }
        }
    }
    transpose_edges(src, dst, r, c, rt, ct);
}

/// Cuts the output along `axis` (0: rows, with `a`'s rows; 1: columns, with `b`'s columns) into
/// `pieces` blocks, multiples of [`ROW_ALIGN`], computed on rayon.
fn split<F: Real>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    c: ArrayViewMut2<'_, F>,
    pieces: usize,
    axis: Axis,
) {
    if pieces <= 1 {
        matmul_serial(a, b, beta, c);
        return;
    }
    let len = c.len_of(axis);
    let left = pieces / 2;
    let cut = ((len * left / pieces).div_ceil(ROW_ALIGN) * ROW_ALIGN).min(len);
    let (c0, c1) = c.split_at(axis, cut);
    let ((a0, b0), (a1, b1)) = if axis == Axis(0) {
        let (a0, a1) = a.split_at(axis, cut);
        ((a0, b), (a1, b))
    } else {
        let (b0, b1) = b.split_at(axis, cut);
        ((a, b0), (a, b1))
    };
    rayon::join(|| split(a0, b0, beta, c0, left, axis), || split(a1, b1, beta, c1, pieces - left, axis));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn filled(m: usize, n: usize, salt: usize) -> Array2<f32> {
        Array2::from_shape_fn((m, n), |(i, j)| ((i * 31 + j * 17 + salt) % 97) as f32 / 97.0 - 0.5)
    }

    fn assert_bits_eq(x: &Array2<f32>, y: &Array2<f32>, what: &str) {
        assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()), "{what}");
    }

    #[test]
    fn products_match_a_plain_f64_loop() {
        let (m, k, n) = (37, 70, 19);
        let a = filled(m, k, 1);
        let b = filled(k, n, 2);
        for beta in [0.0f32, 1.0, -0.5] {
            let mut c = filled(m, n, 3);
            let c0 = c.clone();
            matmul(a.view(), b.view(), beta, c.view_mut());
            // And with a transposed operand on each side, as the backward pass uses.
            let at = a.t().as_standard_layout().to_owned();
            let bt = b.t().as_standard_layout().to_owned();
            let mut ct = c0.clone();
            matmul(at.t(), bt.t(), beta, ct.view_mut());
            for ((i, j), &got) in c.indexed_iter() {
                let want: f64 =
                    (0..k).map(|l| a[[i, l]] as f64 * b[[l, j]] as f64).sum::<f64>() + beta as f64 * c0[[i, j]] as f64;
                assert!((got as f64 - want).abs() < 1e-5, "beta {beta} ({i},{j}): {got} vs {want}");
                assert_eq!(got.to_bits(), ct[[i, j]].to_bits(), "transposed operands, beta {beta}");
            }
        }
        // Degenerate shapes: an empty inner dimension scales c by beta.
        let mut c = filled(3, 4, 0);
        let want = c.mapv(|v| v * 2.0);
        matmul(Array2::<f32>::zeros((3, 0)).view(), Array2::<f32>::zeros((0, 4)).view(), 2.0, c.view_mut());
        assert_eq!(c, want);
    }

    /// The canonical order written out with no kernel: k cut into even blocks of at most
    /// 512, each block summed by FMAs from zero, then combined with c.
    fn in_canonical_order(a: &Array2<f32>, b: &Array2<f32>, beta: f32, c: &Array2<f32>) -> Array2<f32> {
        let k = a.ncols();
        let len = k.div_ceil(k.div_ceil(K_BLOCK).max(1)).max(1);
        let mut out = c.clone();
        for ((i, j), o) in out.indexed_iter_mut() {
            for (block, k0) in (0..k).step_by(len).enumerate() {
                let sum = (k0..(k0 + len).min(k)).fold(0f32, |acc, l| a[[i, l]].mul_add(b[[l, j]], acc));
                let beta = if block == 0 { beta } else { 1.0 };
                *o = if beta == 0.0 {
                    sum
                } else if beta == 1.0 {
                    sum + *o
                } else {
                    beta * *o + sum
                };
            }
            if k == 0 {
                *o = if beta == 0.0 { 0.0 } else { beta * *o };
            }
        }
        out
    }

    #[test]
    fn matches_the_canonical_order_bit_for_bit() {
        // Each of the `gemm` crate's paths: register tiles (with edges, and blocks of k either
        // side of 512), an outer product (k <= 2), matrix-vector (one row or one column), lane
        // dot products (few outputs, both operands contiguous along k); and the engine's own
        // products at widths past 512. Values spread over many binades, so that a different
        // order or an unfused multiply-add shows in the last bits.
        let shapes = [
            (37, 70, 19),
            (64, 512, 64),
            (64, 513, 48),
            (33, 1000, 70),
            (256, 1024, 96),
            (96, 1536, 40),
            (17, 1, 23),
            (17, 2, 23),
            (1, 300, 40),
            (40, 300, 1),
            (1, 700, 1),
            (8, 600, 8),
            (16, 100, 16),
            (12, 40, 20),
            // Small enough for the kernels called directly (`tiles`): whole tiles, edges of
            // fewer columns and of fewer vector rows, and one that falls back for its rows.
            (32, 32, 32),
            (10, 64, 32),
            (30, 70, 48),
            (128, 96, 64),
            (32, 33, 10),
        ];
        let spread = |m: usize, n: usize, salt: usize| {
            Array2::from_shape_fn((m, n), |(i, j)| {
                let h = (i * 7919 + j * 104_729 + salt * 15_485_863) % 1_000_003;
                ((h % 997) as f32 / 997.0 - 0.5) * 2f32.powi((h % 23) as i32 - 11)
            })
        };
        for &(m, k, n) in &shapes {
            let a = spread(m, k, 1);
            let b = spread(k, n, 2);
            let at = a.t().as_standard_layout().to_owned();
            let bt = b.t().as_standard_layout().to_owned();
            for beta in [0.0f32, 1.0, -0.75] {
                let c0 = spread(m, n, 3);
                let want = in_canonical_order(&a, &b, beta, &c0);
                let operands = [(a.view(), b.view()), (at.t(), b.view()), (a.view(), bt.t()), (at.t(), bt.t())];
                for (which, (x, y)) in operands.into_iter().enumerate() {
                    // Row-major and column-major destinations.
                    let mut c = c0.clone();
                    matmul(x, y, beta, c.view_mut());
                    assert_bits_eq(&want, &c, &format!("{m}x{k}x{n}, beta {beta}, operands {which}"));
                    let mut ct = c0.t().as_standard_layout().to_owned();
                    matmul(x, y, beta, ct.view_mut().reversed_axes());
                    assert_bits_eq(
                        &want,
                        &ct.t().to_owned(),
                        &format!("{m}x{k}x{n}, beta {beta}, operands {which}, c'"),
                    );
                }
            }
        }
    }

    #[test]
    fn transposes_any_shape() {
        for (r, c) in [(1, 1), (3, 5), (8, 8), (16, 24), (13, 70), (64, 64), (70, 9)] {
            let a = filled(r, c, 3);
            let mut t = Array2::<f32>::zeros((c, r));
            transpose_into(a.view(), t.view_mut());
            assert_eq!(t, a.t(), "{r}x{c}");
            // f64 takes the element-by-element path.
            let a = a.mapv(f64::from);
            let mut t = Array2::<f64>::zeros((c, r));
            transpose_into(a.view(), t.view_mut());
            assert_eq!(t, a.t(), "f64 {r}x{c}");
        }
    }

    #[test]
    fn split_products_equal_the_whole_bit_for_bit() {
        // Odd sizes, and the engine's own: (batch x fan_in) . (fan_in x fan_out), the weight
        // gradient's transposed product, and the error's product with a transposed weight.
        for (m, k, n) in [(200, 300, 170), (256, 1024, 1024), (1024, 256, 1024), (128, 256, 256)] {
            let a = filled(m, k, 5);
            let b = filled(k, n, 7);
            let mut whole = Array2::<f32>::zeros((m, n));
            matmul_serial(a.view(), b.view(), 0.0, whole.view_mut());
            let bt = b.t().as_standard_layout().to_owned();
            let mut whole_t = Array2::<f32>::zeros((m, n));
            matmul_serial(a.view(), bt.t(), 0.0, whole_t.view_mut());
            let at = a.t().as_standard_layout().to_owned();
            let mut whole_at = Array2::<f32>::zeros((m, n));
            matmul_serial(at.t(), b.view(), 0.0, whole_at.view_mut());
            let cases = [
                ("", a.view(), b.view(), &whole),
                (", b transposed", a.view(), bt.t(), &whole_t),
                (", a transposed", at.t(), b.view(), &whole_at),
            ];
            for pieces in [2, 3, 4, 7] {
                for (what, x, y, want) in &cases {
                    for (how, axis) in [("row", Axis(0)), ("column", Axis(1))] {
                        let mut c = Array2::<f32>::zeros((m, n));
                        split(*x, *y, 0.0, c.view_mut(), pieces, axis);
                        assert_bits_eq(want, &c, &format!("{m}x{k}x{n}{what}, in {pieces} {how} pieces"));
                    }
                }
            }
        }
    }
}
