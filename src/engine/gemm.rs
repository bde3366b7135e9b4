//! Matrix products for the training step, split over rayon for wide layers.
//!
//! The kernel is the `gemm` crate's (faer's), single-threaded: 10-25% faster than ndarray's
//! `matrixmultiply` on the step's shapes (`benches/train_step.rs` runs both).
//!
//! Determinism: a split only ever cuts the output, by rows or by columns, never the inner
//! dimension. Each output element is then computed by the same kernel over the same K-blocks in
//! the same order, so the result is bit-identical however many threads run (tested here on the
//! engine's shapes, and in `engine::train`).

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::Real;

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

/// c = a . b + beta * c on the calling thread. Panics if the shapes do not agree.
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
    let [a_rs, a_cs] = [a.strides()[0], a.strides()[1]];
    let [b_rs, b_cs] = [b.strides()[0], b.strides()[1]];
    let [c_rs, c_cs] = [c.strides()[0], c.strides()[1]];
    // SAFETY: the three views are valid for their shapes and strides (checked above to agree),
    // and `c` is borrowed mutably, so it overlaps neither `a` nor `b`. gemm computes
    // dst = alpha * dst + beta * lhs . rhs, reading dst only when told to.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            beta != F::zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            F::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
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
