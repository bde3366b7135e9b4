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

use super::Series;

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

    /// The first step of the bucket after the one holding `step` (saturating).
    pub fn bucket_end(&self, step: u64) -> u64 {
        let bucket = step.saturating_sub(self.lo) / self.width;
        self.lo.saturating_add(bucket.saturating_add(1).saturating_mul(self.width))
    }

    /// The first step of the bucket holding `step` (`lo` for steps before it).
    pub fn bucket_start(&self, step: u64) -> u64 {
        self.lo + step.saturating_sub(self.lo) / self.width * self.width
    }

    /// Adds points in increasing step order, one bucket's run at a time.
    pub fn push_all(&mut self, steps: &[u64], values: &[f64]) {
        let mut i = 0;
        while i < steps.len() {
            let end = self.bucket_end(steps[i]);
            let j = i + steps[i..].partition_point(|&s| s < end);
            let (mut min, mut max) = (f64::NAN, f64::NAN);
            for &x in &values[i..j] {
                // f64::min/max return the other operand when one is NaN: NaN never wins.
                min = min.min(x);
                max = max.max(x);
            }
            self.push_span(steps[j - 1], values[j - 1], min, max);
            i = j;
        }
    }

    /// Adds a run of points that all fall in the bucket of `last_step`: the run's last point
    /// and its extremes (NaN if none).
    fn push_span(&mut self, last_step: u64, last: f64, min: f64, max: f64) {
        let bucket = last_step.saturating_sub(self.lo) / self.width;
        if self.current != Some(bucket) {
            self.flush();
            self.current = Some(bucket);
            self.min = f64::NAN;
            self.max = f64::NAN;
        }
        self.last_step = last_step;
        self.last = last;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    /// The buckets completed so far (all but the one still filling), taken out: a long read
    /// hands them on as it goes and holds at most one window's worth.
    pub fn take_done(&mut self) -> Series {
        let empty = Series { layer: self.out.layer, metric: self.out.metric.clone(), ..Default::default() };
        std::mem::replace(&mut self.out, empty)
    }

    /// The bucket still filling, as a one-point series (empty when none): what a live view
    /// shows until the bucket completes and `take_done` hands it on.
    pub fn partial(&self) -> Series {
        let mut s = Series { layer: self.out.layer, metric: self.out.metric.clone(), ..Default::default() };
        if self.current.is_some() {
            s.steps.push(self.last_step);
            s.values.push(self.last);
            s.min.push(self.min);
            s.max.push(self.max);
        }
        s
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
        let steps: Vec<u64> = points.iter().map(|p| p.0).collect();
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        // In two calls, split inside a bucket: the result must not depend on how reads cut.
        let cut = points.len() / 2;
        d.push_all(&steps[..cut], &values[..cut]);
        let mut s = d.take_done();
        d.push_all(&steps[cut..], &values[cut..]);
        let rest = d.finish();
        s.steps.extend(rest.steps);
        s.values.extend(rest.values);
        s.min.extend(rest.min);
        s.max.extend(rest.max);
        s
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

    #[test]
    fn the_filling_bucket_shows_as_it_will_complete() {
        let mut d = Downsampler::new(Series::default(), 10, 29, 2); // width 10: [10..20) [20..30)
        assert_eq!(d.bucket_start(25), 20);
        assert_eq!(d.bucket_start(3), 10);
        assert!(d.partial().steps.is_empty());
        d.push_all(&[10, 11, 12], &[5.0, -1.0, 2.0]);
        let p = d.partial();
        assert_eq!((p.steps, p.values, p.min, p.max), (vec![12], vec![2.0], vec![-1.0], vec![5.0]));
        assert!(d.take_done().steps.is_empty(), "the bucket is not complete yet");
        d.push_all(&[19, 20], &[7.0, 1.0]);
        let done = d.take_done();
        assert_eq!((done.steps, done.values, done.min, done.max), (vec![19], vec![7.0], vec![-1.0], vec![7.0]));
        assert_eq!(d.partial().steps, vec![20]);
    }
}
