//! Matrix products for the training step, split over rayon for wide layers.
//!
//! Determinism: a split only ever cuts the *rows of the output*. Each output element is then
//! computed by the same `matrixmultiply` kernel over the same K-blocks in the same order, so the
//! result is bit-identical however many threads run (tested in `engine::train`).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::Real;

/// Below this many multiply-adds a product runs on the calling thread: handing work to another
/// rayon worker costs a few microseconds.
const PAR_MIN_MACS: usize = 1 << 19;
/// Row blocks stay multiples of this, the widest register tile of the kernels.
const ROW_ALIGN: usize = 16;

/// c = a . b + beta * c.
pub fn matmul<F: Real>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>, beta: F, c: ArrayViewMut2<'_, F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let pieces = if m * n * k < PAR_MIN_MACS { 1 } else { rayon::current_num_threads().min(m / ROW_ALIGN).max(1) };
    split_rows(a, b, beta, c, pieces);
}

fn split_rows<F: Real>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
    pieces: usize,
) {
    if pieces <= 1 {
        general_mat_mul(F::one(), &a, &b, beta, &mut c);
        return;
    }
    let m = a.nrows();
    let left = pieces / 2;
    let cut = (m * left / pieces).div_ceil(ROW_ALIGN) * ROW_ALIGN;
    let cut = cut.min(m);
    let (a0, a1) = a.split_at(Axis(0), cut);
    let (c0, c1) = c.split_at(Axis(0), cut);
    rayon::join(|| split_rows(a0, b, beta, c0, left), || split_rows(a1, b, beta, c1, pieces - left));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn split_products_equal_the_whole_bit_for_bit() {
        let (m, k, n) = (200, 300, 170);
        let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 13 + j * 7) % 89) as f32 / 89.0 - 0.5);
        let mut whole = Array2::<f32>::zeros((m, n));
        general_mat_mul(1.0, &a, &b, 0.0, &mut whole);
        for pieces in [2, 3, 4, 7] {
            let mut c = Array2::<f32>::zeros((m, n));
            split_rows(a.view(), b.view(), 0.0, c.view_mut(), pieces);
            assert!(whole.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()), "{pieces} pieces");
        }
        // And through a transposed operand, as the weight-gradient product uses.
        let at = a.t().as_standard_layout().to_owned();
        let mut whole = Array2::<f32>::zeros((k, n));
        let g = Array2::from_shape_fn((m, n), |(i, j)| ((i + 3 * j) % 11) as f32 - 5.0);
        general_mat_mul(1.0, &at.view(), &g, 0.0, &mut whole);
        let mut c = Array2::<f32>::zeros((k, n));
        split_rows(a.t(), g.view(), 0.0, c.view_mut(), 3);
        assert!(whole.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
