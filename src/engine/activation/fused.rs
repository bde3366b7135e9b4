//! One pass per layer and direction: the elementwise work of a training step fused with what is
//! measured of it, over a row-major (batch x units) layer.
//!
//! - forward: `z += b` (the bias, per unit), `a = φ(z)`, and when recording the sum and sum of
//!   squares of `a` and which units had a non-zero output;
//! - backward: `dz = da · φ'(z)`, the saturation count, `db` (column sums of `dz`, rows added in
//!   order) and when recording the sum of squares of `dz`.
//!
//! Separate passes over the same values cost a fifth of a step at width 64. Sums run per unit
//! (column) in f32 over at most [`FOLD_ROWS`] rows, then fold into f64 in unit order: a fixed
//! order, so the results depend on nothing but the values.

// All of the parent: the spliced formulas name its helpers and constants.
use super::*;

/// Rows per f32 column partial sum before it is folded into f64.
const FOLD_ROWS: usize = 64;

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
    fn reset(&mut self, units: usize) -> (&mut [F], &mut [F], &mut [F]) {
        for v in [&mut self.sum, &mut self.sumsq, &mut self.alive] {
            v.clear();
            v.resize(units, F::zero());
        }
        (&mut self.sum, &mut self.sumsq, &mut self.alive)
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

/// Adds each column's f32 partial sum into `total` in column order, and zeroes it.
#[inline(always)]
fn fold<F: Real>(partial: &mut [F], total: &mut f64) {
    for v in partial.iter_mut() {
        *total += v.f64();
        *v = F::zero();
    }
}

/// The forward loop (see the module docs), with φ's formula spliced in by `forward_kernel!`.
macro_rules! forward_rows {
    ($z:expr, $b:expr, $out:expr, $cols:expr, $rec:expr ; |$x:ident| $body:expr) => {{
        let (z, b, out, cols, rec) = ($z, $b, $out, $cols, $rec);
        let w = b.len();
        assert!(z.len() == out.len() && w > 0 && z.len() % w == 0, "layer buffers disagree with the bias");
        let (sum, sumsq, alive) = cols.reset(w);
        let mut st = OutputStats::default();
        for (zb, ob) in z.chunks_mut(w * FOLD_ROWS).zip(out.chunks_mut(w * FOLD_ROWS)) {
            for (zr, or) in zb.chunks_exact_mut(w).zip(ob.chunks_exact_mut(w)) {
                // Every slice cut to exactly w: the loop then has no bounds checks, and vectorizes.
                let (zr, or, b) = (&mut zr[..w], &mut or[..w], &b[..w]);
                let (sum, sumsq, alive) = (&mut sum[..w], &mut sumsq[..w], &mut alive[..w]);
                for j in 0..w {
                    let $x = zr[j] + b[j];
                    zr[j] = $x;
                    let v = $body;
                    or[j] = v;
                    if rec {
                        sum[j] += v;
                        sumsq[j] = v.mul_add(v, sumsq[j]);
                        alive[j] = if v != F::zero() { F::one() } else { alive[j] };
                    }
                }
            }
            if rec {
                fold(sum, &mut st.sum);
                fold(sumsq, &mut st.sumsq);
            }
        }
        if rec {
            st.dead_units = alive.iter().filter(|&&f| f == F::zero()).count();
            if !(st.sum.is_finite() && st.sumsq.is_finite()) {
                // Rare (a diverging run): measure again, leaving the non-finite values out.
                let m = crate::engine::stats::moments(out);
                (st.sum, st.sumsq) = (m.sum, m.sumsq);
            }
        }
        st
    }};
}

/// The backward loop (see the module docs), with φ' spliced in by `derivative_kernel!`.
macro_rules! backward_rows {
    ($z:expr, $a:expr, $grad_a:expr, $grad_z:expr, $db:expr, $sat_below:expr, $cols:expr, $rec:expr ;
     |$x:pat_param, $y:pat_param| $body:expr) => {{
        let (z, a, grad_a, grad_z, db, sat_below, cols, rec) = ($z, $a, $grad_a, $grad_z, $db, $sat_below, $cols, $rec);
        let w = db.len();
        let n = grad_z.len();
        assert!(
            z.len() == n && a.len() == n && grad_a.len() == n && w > 0 && n % w == 0,
            "layer buffers disagree with the bias gradient"
        );
        let (sumsq, _, _) = cols.reset(w);
        db.fill(F::zero());
        let mut st = ErrorStats::default();
        // Rows per block: a u32 saturation count per block stays in vector lanes.
        let rows = (BLOCK / w).clamp(1, FOLD_ROWS);
        for (start, gzb) in (0..n).step_by(w * rows).zip(grad_z.chunks_mut(w * rows)) {
            let mut count = 0u32;
            for (r, gzr) in gzb.chunks_exact_mut(w).enumerate() {
                let at = start + r * w;
                let (zr, ar, gar) = (&z[at..at + w], &a[at..at + w], &grad_a[at..at + w]);
                let (gzr, db, sumsq) = (&mut gzr[..w], &mut db[..w], &mut sumsq[..w]);
                for j in 0..w {
                    let dv = {
                        let $x = zr[j];
                        let $y = ar[j];
                        $body
                    };
                    let g = gar[j] * dv;
                    gzr[j] = g;
                    count += u32::from(dv.abs() < sat_below);
                    db[j] += g;
                    if rec {
                        sumsq[j] = g.mul_add(g, sumsq[j]);
                    }
                }
            }
            st.saturated += count as usize;
            if rec {
                fold(sumsq, &mut st.sumsq);
            }
        }
        st
    }};
}

crate::engine::fastmath::wide_fn! {
    /// The forward pass of one layer: `z += b` per row, `a = φ(z)`, and with `RECORD` the
    /// statistics of `a`. `z` and `a` are row-major with `b.len()` columns.
    pub fn forward_layer<F: Real; const RECORD: bool>(
        act: &Activation,
        z: &mut [F],
        b: &[F],
        a: &mut [F],
        cols: &mut Columns<F>,
    ) -> OutputStats {
        forward_kernel!(act, F, forward_rows!(z, b, a, cols, RECORD))
    }
}

crate::engine::fastmath::wide_fn! {
    /// The backward pass of one layer, given `a = φ(z)` and `grad_a = dL/da`: writes
    /// `grad_z = dL/dz` and `db` (its column sums), counts the elements with `|φ'(z)|` below
    /// `sat_below`, and with `RECORD` sums `dL/dz` squared.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_layer<F: Real; const RECORD: bool>(
        act: &Activation,
        z: &[F],
        a: &[F],
        grad_a: &[F],
        grad_z: &mut [F],
        db: &mut [F],
        sat_below: F,
        cols: &mut Columns<F>,
    ) -> ErrorStats {
        derivative_kernel!(act, F, backward_rows!(z, a, grad_a, grad_z, db, sat_below, cols, RECORD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused passes against the plain kernels and plain f64 sums, for every activation,
    /// widths that are and are not multiples of the vector width, and more rows than one fold.
    #[test]
    fn fused_passes_match_the_plain_kernels() {
        for name in Activation::NAMES {
            let act: Activation = name.parse().unwrap();
            for (rows, w) in [(3, 1), (70, 13), (130, 64)] {
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
                let mut want_gz = vec![0.0; n];
                let want_sat = act.backward(&z, &a, &ga, &mut want_gz, sat);
                let (mut gz, mut db) = (vec![0.0; n], vec![1.0; w]);
                let st = backward_layer::<f32, true>(&act, &z, &a, &ga, &mut gz, &mut db, sat, &mut cols);
                assert_eq!(gz, want_gz, "{act} {rows}x{w}: dz");
                assert_eq!(st.saturated, want_sat, "{act} {rows}x{w}: saturated");
                for (j, &d) in db.iter().enumerate() {
                    let mut s = 0.0f32;
                    for r in 0..rows {
                        s += gz[r * w + j];
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

    #[test]
    fn non_finite_outputs_are_left_out_of_the_sums() {
        let act = Activation::Identity;
        let mut z = vec![1.0f32, f32::INFINITY, 2.0, f32::NAN];
        let mut a = vec![0.0; 4];
        let st = forward_layer::<f32, true>(&act, &mut z, &[0.0, 0.0], &mut a, &mut Columns::default());
        assert_eq!((st.sum, st.sumsq, st.dead_units), (3.0, 5.0, 0));
    }
}
