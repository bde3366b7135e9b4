//! One pass per layer and direction: the elementwise work of a training step fused with what is
//! measured of it, over a row-major (batch x units) layer.
//!
//! - forward: `z += b` (the bias, per unit), `a = φ(z)`, and when recording the sum and sum of
//!   squares of `a` and which units had a non-zero output;
//! - backward: `dz = da · φ'(z)`, the saturation count, `db` (column sums of `dz`) and when
//!   recording the sum of squares of `dz`.
//!
//! Separate passes over the same values cost a fifth of a step at width 64.
//!
//! A layer is cut into blocks of [`BLOCK_ROWS`] rows, always the same blocks: sums run per unit
//! (column) in f32 within a block, then blocks are added in block order (in f64, `db` in f32).
//! Wide layers hand their blocks to rayon, narrow ones run them in a loop; either way the same
//! numbers are added in the same order, so the results do not depend on the thread count.

use rayon::prelude::*;

// All of the parent: the spliced formulas name its helpers and constants.
use super::*;

/// Rows per block: 64 values per f32 column partial sum keeps f32 rounding near 1e-5 relative.
const BLOCK_ROWS: usize = 64;
/// Layers with fewer elements than this run on the calling thread: a rayon task costs a few
/// microseconds.
const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// Per-unit scratch for the fused kernels; any size, grown on use.
#[derive(Clone, Debug, Default)]
pub struct Columns<F> {
    sum: Vec<F>,
    sumsq: Vec<F>,
    /// 1 where the unit had a non-zero output (an `F`, so the loop stays in one lane width).
    alive: Vec<F>,
}

impl<F: Real> Columns<F> {
    /// Zeroed scratch for `units` columns.
    fn reset(&mut self, units: usize) {
        for v in [&mut self.sum, &mut self.sumsq, &mut self.alive] {
            v.clear();
            v.resize(units, F::zero());
        }
    }

    fn dead_units(&self) -> usize {
        self.alive.iter().filter(|&&f| f == F::zero()).count()
    }
}

/// What the forward pass measured of a layer's outputs (zeros when not recording).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OutputStats {
    /// Sum and sum of squares of the finite outputs.
    pub sum: f64,
    pub sumsq: f64,
    /// Units whose output was exactly 0 for every row.
    pub dead_units: usize,
}

/// What the backward pass measured of a layer's pre-activation errors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorStats {
    /// Elements with |φ'(z)| below the saturation threshold (always counted).
    pub saturated: usize,
    /// Sum of squares of dL/dz (0 when not recording).
    pub sumsq: f64,
}

/// Sum of a block's column partial sums, in column order; zeroes them.
#[inline(always)]
fn fold<F: Real>(partial: &mut [F]) -> f64 {
    let mut total = 0.0;
    for v in partial.iter_mut() {
        total += v.f64();
        *v = F::zero();
    }
    total
}

/// The forward loop over one block (see the module docs), φ spliced in by `forward_kernel!`.
/// Non-zero outputs mark `cols.alive` (the sums are taken after, see [`forward_one`]).
macro_rules! forward_rows {
    ($z:expr, $b:expr, $out:expr, $cols:expr, $rec:expr ; |$x:ident| $body:expr) => {{
        let (z, b, out, cols, rec): (&mut [F], &[F], &mut [F], &mut Columns<F>, bool) = ($z, $b, $out, $cols, $rec);
        let w = b.len();
        let alive = &mut cols.alive[..w];
        for (zr, or) in z.chunks_exact_mut(w).zip(out.chunks_exact_mut(w)) {
            // Every slice cut to exactly w: the loop then has no bounds checks, and vectorizes.
            let (zr, or, b) = (&mut zr[..w], &mut or[..w], &b[..w]);
            for j in 0..w {
                let $x = zr[j] + b[j];
                zr[j] = $x;
                let v = $body;
                or[j] = v;
                if rec {
                    alive[j] = if v != F::zero() { F::one() } else { alive[j] };
                }
            }
        }
    }};
}

/// The backward loop over one block (see the module docs), φ' spliced in by
/// `derivative_kernel!`. Column sums of dz go to `cols.sum`, of dz² to `cols.sumsq` (zero on
/// entry); evaluates to the saturation count.
macro_rules! backward_rows {
    ($z:expr, $a:expr, $grad_a:expr, $grad_z:expr, $sat_below:expr, $cols:expr, $rec:expr ;
     |$x:pat_param, $y:pat_param| $body:expr) => {{
        let (z, a, grad_a, grad_z, sat_below, cols, rec): (&[F], &[F], &[F], &mut [F], F, &mut Columns<F>, bool) =
            ($z, $a, $grad_a, $grad_z, $sat_below, $cols, $rec);
        let w = cols.sum.len();
        let (db, sumsq) = (&mut cols.sum[..w], &mut cols.sumsq[..w]);
        let mut count = 0u32;
        for (r, gzr) in grad_z.chunks_exact_mut(w).enumerate() {
            let at = r * w;
            let (zr, ar, gar) = (&z[at..at + w], &a[at..at + w], &grad_a[at..at + w]);
            let gzr = &mut gzr[..w];
            // Each row counts from zero: the row's vector count then needs nothing of the row
            // before but the scalar total, where starting from that total chained every row's
            // horizontal reduction to the next row's first comparison.
            let mut row = 0u32;
            for j in 0..w {
                let dv = {
                    let $x = zr[j];
                    let $y = ar[j];
                    $body
                };
                let g = gar[j] * dv;
                gzr[j] = g;
                row += u32::from(dv.abs() < sat_below);
                db[j] += g;
                if rec {
                    sumsq[j] = g.mul_add(g, sumsq[j]);
                }
            }
            count += row;
        }
        count as usize
    }};
}

crate::engine::fastmath::wide_fn! {
    fn forward_block<F: Real; const RECORD: bool>(
        act: &Activation,
        z: &mut [F],
        b: &[F],
        a: &mut [F],
        cols: &mut Columns<F>,
    ) {
        forward_kernel!(act, F, forward_rows!(z, b, a, cols, RECORD))
    }
}

crate::engine::fastmath::wide_fn! {
    fn backward_block<F: Real; const RECORD: bool>(
        act: &Activation,
        z: &[F],
        a: &[F],
        grad_a: &[F],
        grad_z: &mut [F],
        sat_below: F,
        cols: &mut Columns<F>,
    ) -> usize {
        derivative_kernel!(act, F, backward_rows!(z, a, grad_a, grad_z, sat_below, cols, RECORD))
    }
}

/// One forward block, and its sums (`cols.alive` keeps accumulating).
fn forward_one<F: Real, const RECORD: bool>(
    act: &Activation,
    z: &mut [F],
    b: &[F],
    a: &mut [F],
    cols: &mut Columns<F>,
) -> (f64, f64) {
    forward_block::<F, RECORD>(act, z, b, a, cols);
    if !RECORD {
        return (0.0, 0.0);
    }
    // A second pass over the block, still in L1: cheaper than per-unit sums inside the loop
    // above, which load and store an accumulator per element.
    crate::engine::stats::sum_sumsq(a)
}

/// The forward pass of one layer: `z += b` per row, `a = φ(z)`, and with `RECORD` the
/// statistics of `a`. `z` and `a` are row-major with `b.len()` columns. Panics if the lengths
/// disagree.
pub fn forward_layer<F: Real, const RECORD: bool>(
    act: &Activation,
    z: &mut [F],
    b: &[F],
    a: &mut [F],
    cols: &mut Columns<F>,
) -> OutputStats {
    let w = b.len();
    assert!(z.len() == a.len() && w > 0 && z.len().is_multiple_of(w), "layer buffers disagree with the bias");
    let block = w * BLOCK_ROWS;
    let mut st = OutputStats::default();
    if z.len() <= block || z.len() < PAR_MIN_ELEMENTS || rayon::current_num_threads() < 2 {
        cols.reset(w);
        for (zb, ab) in z.chunks_mut(block).zip(a.chunks_mut(block)) {
            let (s, q) = forward_one::<F, RECORD>(act, zb, b, ab, cols);
            st.sum += s;
            st.sumsq += q;
        }
        if RECORD {
            st.dead_units = cols.dead_units();
        }
        return st;
    }
    let blocks: Vec<((f64, f64), Columns<F>)> = z
        .par_chunks_mut(block)
        .zip(a.par_chunks_mut(block))
        .map(|(zb, ab)| {
            let mut c = Columns::default();
            c.reset(w);
            (forward_one::<F, RECORD>(act, zb, b, ab, &mut c), c)
        })
        .collect();
    cols.reset(w);
    for ((s, q), c) in &blocks {
        st.sum += s;
        st.sumsq += q;
        for (alive, &seen) in cols.alive.iter_mut().zip(&c.alive) {
            *alive = if seen != F::zero() { seen } else { *alive };
        }
    }
    if RECORD {
        st.dead_units = cols.dead_units();
    }
    st
}

/// The backward pass of one layer, given `a = φ(z)` and `grad_a = dL/da`: writes
/// `grad_z = dL/dz` and `db` (its column sums), counts the elements with `|φ'(z)|` below
/// `sat_below`, and with `RECORD` sums `dL/dz` squared. Panics if the lengths disagree.
#[allow(clippy::too_many_arguments)]
pub fn backward_layer<F: Real, const RECORD: bool>(
    act: &Activation,
    z: &[F],
    a: &[F],
    grad_a: &[F],
    grad_z: &mut [F],
    db: &mut [F],
    sat_below: F,
    cols: &mut Columns<F>,
) -> ErrorStats {
    let (w, n) = (db.len(), grad_z.len());
    assert!(
        z.len() == n && a.len() == n && grad_a.len() == n && w > 0 && n.is_multiple_of(w),
        "layer buffers disagree with the bias gradient"
    );
    let block = w * BLOCK_ROWS;
    let one = |gz: &mut [F], at: usize, c: &mut Columns<F>| {
        let end = at + gz.len();
        backward_block::<F, RECORD>(act, &z[at..end], &a[at..end], &grad_a[at..end], gz, sat_below, c)
    };
    db.fill(F::zero());
    let mut st = ErrorStats::default();
    // Adds a block's results in: `db` in f32 and dz² in f64, in block order.
    let mut add = |saturated: usize, c: &mut Columns<F>| {
        st.saturated += saturated;
        for (d, &p) in db.iter_mut().zip(&c.sum) {
            *d += p;
        }
        c.sum.fill(F::zero());
        if RECORD {
            st.sumsq += fold(&mut c.sumsq);
        }
    };
    if n <= block || n < PAR_MIN_ELEMENTS || rayon::current_num_threads() < 2 {
        cols.reset(w);
        for (i, gzb) in grad_z.chunks_mut(block).enumerate() {
            let saturated = one(gzb, i * block, cols);
            add(saturated, cols);
        }
    } else {
        let mut blocks: Vec<(usize, Columns<F>)> = grad_z
            .par_chunks_mut(block)
            .enumerate()
            .map(|(i, gzb)| {
                let mut c = Columns::default();
                c.reset(w);
                (one(gzb, i * block, &mut c), c)
            })
            .collect();
        for (saturated, c) in &mut blocks {
            add(*saturated, c);
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused passes against the plain slice kernels and plain f64 sums, for every activation,
    /// widths that are and are not multiples of the vector width, and more rows than one fold.
    #[test]
    fn fused_passes_match_the_plain_kernels() {
        for name in Activation::NAMES {
            let act: Activation = name.parse().unwrap();
            for (rows, w) in [(3, 1), (70, 13), (130, 64), (300, 256)] {
                let n = rows * w;
                let z0: Vec<f32> = (0..n).map(|i| (i * 7919 % 1000) as f32 / 250.0 - 2.0).collect();
                let b: Vec<f32> = (0..w).map(|j| j as f32 * 0.01 - 0.05).collect();
                let ga: Vec<f32> = (0..n).map(|i| (i * 104_729 % 1000) as f32 / 500.0 - 1.0).collect();
                // A unit that is dead for ramp: large negative pre-activations in column 0.
                let z0: Vec<f32> = z0.iter().enumerate().map(|(i, &v)| if i % w == 0 { -5.0 } else { v }).collect();
                let mut cols = Columns::default();

                let want_z: Vec<f32> = z0.iter().enumerate().map(|(i, &v)| v + b[i % w]).collect();
                let mut want_a = vec![0.0; n];
                act.forward(&want_z, &mut want_a);
                let (mut z, mut a) = (z0.clone(), vec![0.0; n]);
                let st = forward_layer::<f32, true>(&act, &mut z, &b, &mut a, &mut cols);
                assert_eq!(z, want_z, "{act} {rows}x{w}: z");
                assert_eq!(a, want_a, "{act} {rows}x{w}: a");
                let sum: f64 = a.iter().map(|&v| v as f64).sum();
                let sumsq: f64 = a.iter().map(|&v| (v as f64).powi(2)).sum();
                assert!((st.sum - sum).abs() <= 1e-5 * (1.0 + sumsq), "{act} {rows}x{w}: sum {} vs {sum}", st.sum);
                assert!((st.sumsq - sumsq).abs() <= 1e-5 * (1.0 + sumsq), "{act} {rows}x{w}: sumsq");
                let dead = (0..w).filter(|&j| (0..rows).all(|r| a[r * w + j] == 0.0)).count();
                assert_eq!(st.dead_units, dead, "{act} {rows}x{w}: dead units");
                let quiet = forward_layer::<f32, false>(&act, &mut z0.clone(), &b, &mut a, &mut cols);
                assert_eq!(quiet, OutputStats::default());

                let sat = 0.01 * act.max_derivative() as f32;
                let mut d = vec![0.0; n];
                act.derivative_slice(&z, &a, &mut d);
                let want_gz: Vec<f32> = ga.iter().zip(&d).map(|(g, d)| g * d).collect();
                let want_sat = d.iter().filter(|d| d.abs() < sat).count();
                let (mut gz, mut db) = (vec![0.0; n], vec![1.0; w]);
                let st = backward_layer::<f32, true>(&act, &z, &a, &ga, &mut gz, &mut db, sat, &mut cols);
                assert_eq!(gz, want_gz, "{act} {rows}x{w}: dz");
                assert_eq!(st.saturated, want_sat, "{act} {rows}x{w}: saturated");
                for (j, &d) in db.iter().enumerate() {
                    // Rows summed within blocks of BLOCK_ROWS, blocks added in order.
                    let mut s = 0.0f32;
                    for block in (0..rows).collect::<Vec<_>>().chunks(BLOCK_ROWS) {
                        let mut part = 0.0f32;
                        for &r in block {
                            part += gz[r * w + j];
                        }
                        s += part;
                    }
                    assert_eq!(d.to_bits(), s.to_bits(), "{act} {rows}x{w}: db[{j}]");
                }
                let sq: f64 = gz.iter().map(|&v| (v as f64).powi(2)).sum();
                assert!((st.sumsq - sq).abs() <= 1e-5 * (1.0 + sq), "{act} {rows}x{w}: err sumsq");
                let quiet = backward_layer::<f32, false>(&act, &z, &a, &ga, &mut gz, &mut db, sat, &mut cols);
                assert_eq!(quiet, ErrorStats { saturated: want_sat, sumsq: 0.0 });
            }
        }
    }

    /// Every output and statistic of a layer wide enough to be split over rayon, on one thread
    /// and on four, bit for bit.
    #[test]
    fn split_layers_equal_the_serial_pass_bit_for_bit() {
        let (rows, w) = (300, 256);
        let n = rows * w;
        // Column 0 strongly negative: a dead unit for ramp.
        let z0: Vec<f32> =
            (0..n).map(|i| if i % w == 0 { -5.0 } else { (i * 7919 % 1000) as f32 / 250.0 - 2.0 }).collect();
        let b: Vec<f32> = (0..w).map(|j| j as f32 * 0.01 - 0.05).collect();
        let ga: Vec<f32> = (0..n).map(|i| (i * 104_729 % 1000) as f32 / 500.0 - 1.0).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let act = Activation::Ramp;
                let (mut z, mut a, mut gz, mut db) = (z0.clone(), vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; w]);
                let mut cols = Columns::default();
                let fw = forward_layer::<f32, true>(&act, &mut z, &b, &mut a, &mut cols);
                let bw = backward_layer::<f32, true>(&act, &z, &a, &ga, &mut gz, &mut db, 0.01, &mut cols);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (
                    fw.sum.to_bits(),
                    fw.sumsq.to_bits(),
                    fw.dead_units,
                    bw.saturated,
                    bw.sumsq.to_bits(),
                    bits(&a),
                    bits(&gz),
                    bits(&db),
                )
            })
        };
        let one = run(1);
        assert!(one.2 > 0, "the test layer should have a dead unit");
        assert_eq!(one, run(4));
    }

    #[test]
    fn non_finite_outputs_are_left_out_of_the_sums() {
        let act = Activation::Identity;
        let mut z = vec![1.0f32, f32::INFINITY, 2.0, f32::NAN];
        let mut a = vec![0.0; 4];
        let st = forward_layer::<f32, true>(&act, &mut z, &[0.0, 0.0], &mut a, &mut Columns::default());
        assert_eq!((st.sum, st.sumsq, st.dead_units), (3.0, 5.0, 0));
    }
}
