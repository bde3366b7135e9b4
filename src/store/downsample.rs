//! Min/max/last downsampling of one series into fixed step buckets.
//!
//! Buckets are fixed by the queried step range, not by the data: bucket `k` covers steps
//! `[lo + k*w, lo + (k+1)*w)` with `w = ceil((hi - lo + 1) / max_points)`, so every series of a
//! query shares the same buckets and at most `max_points` of them are non-empty. Each non-empty
//! bucket yields its last point (`steps`, `values`) and its extremes (`min`, `max`).
//!
//! Non-finite values: NaN is left out of `min`/`max` (a NaN would otherwise make every
//! comparison false and hide the real extremes), so `min`/`max` are NaN only for a bucket whose
//! values are all NaN; `values` keeps the bucket's last value as stored, NaN included. Infinities
//! are ordinary extremes: an exploding layer shows `max = inf`. A NaN in the middle of a bucket
//! is therefore not visible in that metric's downsampled series; the `nonfinite` layer metric
//! (whose bucket max counts it) and the `loss` series are where non-finite training shows.

use crate::runner::Series;

/// Accumulates points (in increasing step order) into buckets.
pub struct Downsampler {
    lo: u64,
    width: u64,
    current: Option<u64>,
    last_step: u64,
    last: f64,
    min: f64,
    max: f64,
    out: Series,
}

impl Downsampler {
    /// Buckets over `[lo, hi]` for at most `max_points` (> 0) points.
    pub fn new(series: Series, lo: u64, hi: u64, max_points: u32) -> Self {
        let span = hi.saturating_sub(lo).saturating_add(1);
        let width = span.div_ceil(u64::from(max_points.max(1))).max(1);
        Downsampler {
            lo,
            width,
            current: None,
            last_step: 0,
            last: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            out: series,
        }
    }

    /// Adds one point (the span form is what reads use).
    #[cfg(test)]
    pub fn push(&mut self, step: u64, v: f64) {
        self.push_span(step, v, v, v);
    }

    /// The first step of the bucket after the one holding `step` (saturating).
    pub fn bucket_end(&self, step: u64) -> u64 {
        let bucket = step.saturating_sub(self.lo) / self.width;
        self.lo.saturating_add(bucket.saturating_add(1).saturating_mul(self.width))
    }

    /// Adds a run of points that all fall in the bucket of `last_step`: the run's last point
    /// and its extremes (NaN if none).
    pub fn push_span(&mut self, last_step: u64, last: f64, min: f64, max: f64) {
        let bucket = last_step.saturating_sub(self.lo) / self.width;
        if self.current != Some(bucket) {
            self.flush();
            self.current = Some(bucket);
            self.min = f64::NAN;
            self.max = f64::NAN;
        }
        self.last_step = last_step;
        self.last = last;
        // f64::min/max return the other operand when one is NaN: NaN never wins.
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    fn flush(&mut self) {
        if self.current.is_some() {
            self.out.steps.push(self.last_step);
            self.out.values.push(self.last);
            self.out.min.push(self.min);
            self.out.max.push(self.max);
        }
    }

    pub fn finish(mut self) -> Series {
        self.flush();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(points: &[(u64, f64)], lo: u64, hi: u64, max_points: u32) -> Series {
        let mut d = Downsampler::new(Series::default(), lo, hi, max_points);
        for &(s, v) in points {
            d.push(s, v);
        }
        d.finish()
    }

    #[test]
    fn buckets_keep_min_max_last() {
        let pts: Vec<(u64, f64)> = (0..10).map(|s| (s, if s == 3 { 100.0 } else { s as f64 })).collect();
        let s = run(&pts, 0, 9, 3); // width 4: [0..4) [4..8) [8..10)
        assert_eq!(s.steps, vec![3, 7, 9]);
        assert_eq!(s.values, vec![100.0, 7.0, 9.0]);
        assert_eq!(s.min, vec![0.0, 4.0, 8.0]);
        assert_eq!(s.max, vec![100.0, 7.0, 9.0]);
    }

    #[test]
    fn nan_skipped_in_extremes_inf_kept() {
        let s = run(&[(0, 1.0), (1, f64::NAN), (2, f64::INFINITY), (3, f64::NAN), (4, f64::NAN)], 0, 5, 2);
        assert_eq!(s.steps, vec![2, 4]);
        assert_eq!(s.min[0], 1.0);
        assert_eq!(s.max[0], f64::INFINITY);
        assert!(s.values[1].is_nan() && s.min[1].is_nan() && s.max[1].is_nan());
    }
}
