//! Verdicts: what a run's history says about its gradients.
//!
//! A [`Tracker`] reads the step records as they come (it never needs the whole history) and
//! [`Tracker::verdict`] names the first matching condition in this order:
//! `exploding` > `dead` > `vanishing` > `collapsing` > `not_learning` > `healthy`.
//!
//! `vanishing` and `exploding` read the backward signal (the weight gradients), `collapsing` the
//! forward one: at `sigma_w = 1` the ramp and logmin shrink the signal by a constant factor a
//! layer (mean field: `q* = 0`, `q_{l+1} = q_l / 2` for the ramp), the output stops depending
//! on the input, and the weight gradients stay balanced (the error shrinks toward the input as
//! fast as the activations grow toward it), so the gradient ratio alone calls such a net
//! healthy. `not_learning` catches what no statistic names, from the held-out accuracy alone.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, Dec, Enc};
use super::spec::FieldError;
use super::stats::LayerStats;

/// Verdict thresholds. Defaults are named constants; every one can be overridden per job.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Vanishing: the first hidden layer's weight-gradient norm, divided by the last hidden
    /// layer's, has its median over the final quarter of recorded steps below this.
    pub vanish_ratio: f64,
    /// Exploding: that median ratio above this (the gradient grows toward the input).
    pub explode_ratio: f64,
    /// Exploding: the largest layer gradient norm grows past this factor times the largest at
    /// step 0.
    pub explode_growth: f64,
    /// Dead: some hidden layer has at least this fraction of dead units (median, final quarter).
    pub dead_fraction: f64,
    /// Not learning: final test accuracy below chance (the most frequent test class's share)
    /// plus this margin.
    pub chance_margin: f64,
    /// Collapsing: at step 0 the last hidden layer's activation standard deviation is below
    /// this fraction of the first hidden layer's.
    pub collapse_ratio: f64,
    /// Not learning: the final test accuracy covers less than this share of the way from
    /// chance to 1, `(accuracy - chance) / (1 - chance)`.
    pub min_learned: f64,
}

/// Calibrated on outcomes (digits, width 32, depths 1-16, nine activations x LeCun/Xavier, SGD
/// lr 0.1, 1,500 steps): every net that learned ended with a first/last ratio of at least 0.95,
/// while the logistic nets that failed at depth 4 sat at 0.08-0.11 and deeper failures far
/// lower. A threshold of 1e-2 (let alone 1e-6) called those depth-4 failures anything but
/// vanishing; 0.1 separates them.
pub const DEFAULT_VANISH_RATIO: f64 = 0.1;
pub const DEFAULT_EXPLODE_RATIO: f64 = 1e2;
/// Nets that start with tiny gradients (a ReLU net at LeCun scale, 16 deep) grow them 1e4-fold
/// while learning normally; explosions go far past that and usually end non-finite.
pub const DEFAULT_EXPLODE_GROWTH: f64 = 1e6;
pub const DEFAULT_DEAD_FRACTION: f64 = 0.5;
pub const DEFAULT_CHANCE_MARGIN: f64 = 0.05;
/// Calibrated on digits (width 64, 1,350 SGD steps, lr 0.03 and 0.1, depths 2-16, LeCun,
/// Xavier and He): at init logmin 12-16 deep and the ramp 16 deep (LeCun, Xavier) carry
/// 0.1-0.9% of the first hidden layer's activation spread to the last (0.65-0.69x a layer; mean
/// field: 0.71x for the ramp) and end at 0.16-0.92 held-out accuracy where shallow nets reach
/// 0.96; the ramp 12 deep keeps 1.5-1.7% and learned to 0.94-0.98, and logsig, softsign,
/// semisigmoid and tanh 16 deep keep 7-30% and reach 0.92-0.98. 1% separates them: a
/// hundredfold loss of signal. Training restores the scale of the last layers within the
/// budget, so the verdict reads step 0; its reason gives the figure at the end too.
pub const DEFAULT_COLLAPSE_RATIO: f64 = 1e-2;
/// On the same runs every net that learned ended at 0.83 or more (half-way is 0.55 on ten
/// balanced classes), the stalled ones at 0.09-0.55; a job at 0.29 after its budget is not
/// healthy, whatever its gradients say. A task whose best attainable accuracy is lower needs
/// this lowered (per job: thresholds.min_learned).
pub const DEFAULT_MIN_LEARNED: f64 = 0.5;

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            vanish_ratio: DEFAULT_VANISH_RATIO,
            explode_ratio: DEFAULT_EXPLODE_RATIO,
            explode_growth: DEFAULT_EXPLODE_GROWTH,
            dead_fraction: DEFAULT_DEAD_FRACTION,
            chance_margin: DEFAULT_CHANCE_MARGIN,
            collapse_ratio: DEFAULT_COLLAPSE_RATIO,
            min_learned: DEFAULT_MIN_LEARNED,
        }
    }
}

impl Thresholds {
    pub fn validate(&self) -> Result<(), FieldError> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(FieldError::new(format!("thresholds.{name}"), format!("must be a finite number > 0, got {v}")))
            }
        };
        positive("vanish_ratio", self.vanish_ratio)?;
        positive("explode_ratio", self.explode_ratio)?;
        positive("explode_growth", self.explode_growth)?;
        if !(self.dead_fraction > 0.0 && self.dead_fraction <= 1.0) {
            return Err(FieldError::new(
                "thresholds.dead_fraction",
                format!("must be in (0, 1], got {}", self.dead_fraction),
            ));
        }
        if !(0.0..1.0).contains(&self.chance_margin) {
            return Err(FieldError::new(
                "thresholds.chance_margin",
                format!("must be in [0, 1), got {}", self.chance_margin),
            ));
        }
        for (name, v) in [("collapse_ratio", self.collapse_ratio), ("min_learned", self.min_learned)] {
            if !(0.0..1.0).contains(&v) {
                return Err(FieldError::new(format!("thresholds.{name}"), format!("must be in [0, 1), got {v}")));
            }
        }
        if self.vanish_ratio >= self.explode_ratio {
            return Err(FieldError::new("thresholds.vanish_ratio", "must be below explode_ratio"));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Vanishing,
    Exploding,
    Dead,
    NotLearning,
    Collapsing,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Healthy,
        Verdict::Vanishing,
        Verdict::Exploding,
        Verdict::Dead,
        Verdict::NotLearning,
        Verdict::Collapsing,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Vanishing => "vanishing",
            Verdict::Exploding => "exploding",
            Verdict::Dead => "dead",
            Verdict::NotLearning => "not_learning",
            Verdict::Collapsing => "collapsing",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            format!("unknown verdict {s:?}; known: healthy, vanishing, exploding, dead, not_learning, collapsing")
        })
    }
}

/// The verdict with the figures it was decided on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictReport {
    pub verdict: Verdict,
    /// One sentence: which threshold was crossed, by what value.
    pub reason: String,
    /// First/last hidden-layer gradient-norm ratio at step 0.
    #[serde(with = "crate::engine::nonfinite::option", default)]
    pub ratio_at_init: Option<f64>,
    /// Its median over the final quarter of recorded steps.
    #[serde(with = "crate::engine::nonfinite::option", default)]
    pub ratio_at_end: Option<f64>,
    pub nonfinite_seen: bool,
}

/// Reads step records as they are produced.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    /// First/last hidden gradient-norm ratio per recorded step.
    ratios: LastQuarter,
    /// The first of `ratios`, the ratio at initialization.
    first_ratio: Option<f64>,
    worst_dead: LastQuarter,
    initial_max_norm: Option<f64>,
    growth: f64,
    nonfinite_at: Option<u64>,
    forward_at_init: Option<Forward>,
    forward_ratios: LastQuarter,
}

/// A per-step series of which only the median of its final quarter is ever asked for. That
/// quarter only moves forward as the series grows (it starts at `n - ceil(n/4)`), so values
/// before its start are never needed again and go: a run holds at most about half of what it
/// recorded, and a checkpoint a quarter, instead of all of it.
#[derive(Clone, Debug, Default)]
struct LastQuarter {
    /// Values dropped from the front.
    dropped: u64,
    kept: Vec<f64>,
}

impl LastQuarter {
    fn len(&self) -> u64 {
        self.dropped + self.kept.len() as u64
    }

    /// Where in `kept` the final quarter of the series so far starts.
    fn tail_start(&self) -> usize {
        let n = self.len();
        (n - n.div_ceil(4) - self.dropped) as usize
    }

    fn push(&mut self, v: f64) {
        self.kept.push(v);
        // Dropped in bulk once they are half of what is kept, so each value moves at most once.
        if 2 * self.tail_start() >= self.kept.len() {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let stale = self.tail_start();
        self.kept.drain(..stale);
        self.dropped += stale as u64;
    }

    /// The median of the final quarter, NaN values left out (NaN if they are all NaN); None
    /// for an empty series.
    fn median(&self) -> Option<f64> {
        if self.len() == 0 {
            return None;
        }
        let mut s: Vec<f64> = self.kept[self.tail_start()..].iter().copied().filter(|x| !x.is_nan()).collect();
        if s.is_empty() {
            return Some(f64::NAN);
        }
        s.sort_by(f64::total_cmp);
        Some(s[s.len() / 2])
    }

    /// Writes the final quarter and how many values came before it.
    fn save(&self, e: &mut Enc) {
        let start = self.tail_start();
        e.u64(self.dropped + start as u64);
        e.f64s(&self.kept[start..]);
    }

    /// Reads what [`Self::save`] wrote, or, from a checkpoint of format 1, the whole series.
    fn load(d: &mut Dec<'_>, format: u16) -> Result<Self, CheckpointError> {
        if format == 1 {
            return Ok(LastQuarter { dropped: 0, kept: d.f64s()? });
        }
        let (dropped, kept) = (d.u64()?, d.f64s()?);
        // What was kept must hold the final quarter of the whole.
        let whole = dropped.checked_add(kept.len() as u64);
        if whole.is_none_or(|n| (kept.len() as u64) < n.div_ceil(4)) {
            return Err(CheckpointError::Malformed(format!(
                "a verdict series keeps {} values after {dropped} dropped, fewer than its final quarter",
                kept.len()
            )));
        }
        Ok(LastQuarter { dropped, kept })
    }
}

/// The forward signal through the hidden layers at one step.
#[derive(Clone, Copy, Debug)]
struct Forward {
    /// Last hidden layer's activation standard deviation over the first's.
    ratio: f64,
    /// Hidden layers.
    layers: usize,
    /// The back-propagated error at the first hidden layer over the last's.
    err_ratio: f64,
}

/// Forward-signal figures of hidden layers `layers[..D]`, if there are two or more and the first
/// carries any signal.
fn forward(layers: &[LayerStats]) -> Option<Forward> {
    let hidden = layers.len().checked_sub(1).filter(|&h| h >= 2)?;
    let (first, last) = (&layers[0], &layers[hidden - 1]);
    (first.act_std > 0.0 && first.act_std.is_finite() && last.act_std.is_finite()).then(|| Forward {
        ratio: last.act_std / first.act_std,
        layers: hidden,
        err_ratio: first.err_norm / last.err_norm,
    })
}

/// first/last hidden-layer weight-gradient norm, if the net has hidden layers.
pub fn first_last_ratio(layers: &[LayerStats]) -> Option<f64> {
    let hidden = layers.len().checked_sub(1).filter(|&h| h >= 1)?;
    let (first, last) = (layers[0].grad_norm, layers[hidden - 1].grad_norm);
    Some(if last > 0.0 {
        first / last
    } else if first > 0.0 {
        f64::INFINITY
    } else {
        1.0
    })
}

impl Tracker {
    /// Writes the tracker into a checkpoint (`engine::checkpoint`, format 2).
    pub(crate) fn save(&self, e: &mut Enc) {
        self.ratios.save(e);
        e.opt_f64(self.first_ratio);
        self.worst_dead.save(e);
        e.opt_f64(self.initial_max_norm);
        e.f64(self.growth);
        e.opt_f64(self.nonfinite_at.map(f64::from_bits));
        e.opt_f64(self.forward_at_init.map(|f| f.ratio));
        if let Some(f) = self.forward_at_init {
            e.u64(f.layers as u64);
            e.f64(f.err_ratio);
        }
        self.forward_ratios.save(e);
    }

    /// Reads what [`Self::save`] wrote, or what format 1 did: each series whole, the first
    /// ratio the first of them.
    pub(crate) fn load(d: &mut Dec<'_>, format: u16) -> Result<Self, CheckpointError> {
        let ratios = LastQuarter::load(d, format)?;
        let first_ratio = if format == 1 { ratios.kept.first().copied() } else { d.opt_f64()? };
        let worst_dead = LastQuarter::load(d, format)?;
        let initial_max_norm = d.opt_f64()?;
        let growth = d.f64()?;
        let nonfinite_at = d.opt_f64()?.map(f64::to_bits);
        let forward_at_init = match d.opt_f64()? {
            Some(ratio) => Some(Forward { ratio, layers: d.len()?, err_ratio: d.f64()? }),
            None => None,
        };
        let forward_ratios = LastQuarter::load(d, format)?;
        Ok(Tracker {
            ratios,
            first_ratio,
            worst_dead,
            initial_max_norm,
            growth,
            nonfinite_at,
            forward_at_init,
            forward_ratios,
        })
    }

    pub fn observe(&mut self, step: u64, layers: &[LayerStats], loss: f64) {
        let nonfinite = !loss.is_finite() || layers.iter().any(|l| l.nonfinite > 0 || !l.grad_norm.is_finite());
        if nonfinite && self.nonfinite_at.is_none() {
            self.nonfinite_at = Some(step);
        }
        // Largest layer against largest layer: a layer that starts near zero and recovers is
        // not an explosion.
        let max_norm = layers.iter().map(|l| l.grad_norm).filter(|n| n.is_finite()).fold(0.0, f64::max);
        let base = *self.initial_max_norm.get_or_insert(max_norm);
        if base > 0.0 {
            self.growth = self.growth.max(max_norm / base);
        }
        if let Some(r) = first_last_ratio(layers) {
            self.first_ratio.get_or_insert(r);
            self.ratios.push(r);
        }
        if let Some(f) = forward(layers) {
            self.forward_at_init.get_or_insert(f);
            self.forward_ratios.push(f.ratio);
        }
        let hidden = layers.len().saturating_sub(1);
        self.worst_dead.push(layers[..hidden].iter().map(|l| l.dead).fold(0.0, f64::max));
    }

    /// A step that was not recorded in full but had a non-finite loss or gradient norm.
    pub fn observe_nonfinite(&mut self, step: u64) {
        self.nonfinite_at.get_or_insert(step);
    }

    pub fn nonfinite_at(&self) -> Option<u64> {
        self.nonfinite_at
    }

    /// `test_accuracy` and `chance` are the final evaluation's accuracy and the share of the
    /// most frequent class in the test split.
    pub fn verdict(&self, t: &Thresholds, test_accuracy: f64, chance: f64) -> VerdictReport {
        let ratio_at_end = self.ratios.median();
        let report = |verdict, reason: String| VerdictReport {
            verdict,
            reason,
            ratio_at_init: self.first_ratio,
            ratio_at_end,
            nonfinite_seen: self.nonfinite_at.is_some(),
        };
        if let Some(step) = self.nonfinite_at {
            return report(Verdict::Exploding, format!("non-finite loss or gradient at step {step}"));
        }
        if self.growth > t.explode_growth {
            return report(
                Verdict::Exploding,
                format!(
                    "the largest layer gradient norm grew {:.3e}x from step 0 (threshold {:.0e})",
                    self.growth, t.explode_growth
                ),
            );
        }
        if let Some(r) = ratio_at_end
            && r > t.explode_ratio
        {
            return report(
                Verdict::Exploding,
                format!("first/last hidden gradient-norm ratio {r:.3e} > {:.0e}", t.explode_ratio),
            );
        }
        if let Some(d) = self.worst_dead.median()
            && d >= t.dead_fraction
        {
            return report(
                Verdict::Dead,
                format!("{:.0}% of a hidden layer's units dead (threshold {:.0}%)", d * 100.0, t.dead_fraction * 100.0),
            );
        }
        if let Some(r) = ratio_at_end
            && r < t.vanish_ratio
        {
            return report(
                Verdict::Vanishing,
                format!("first/last hidden gradient-norm ratio {r:.3e} < {:.0e}", t.vanish_ratio),
            );
        }
        if let Some(f) = self.forward_at_init
            && f.ratio < t.collapse_ratio
        {
            let per_layer = libm::pow(f.ratio, 1.0 / (f.layers - 1) as f64);
            let end = self.forward_ratios.median().map_or("n/a".into(), |r| format!("{r:.2}"));
            return report(
                Verdict::Collapsing,
                format!(
                    "the forward signal collapses with depth: at init the last hidden layer's activation spread is \
                     {:.2e} of the first's ({per_layer:.2}x a layer, threshold {:.0e}; error norm first/last {:.2e}), \
                     so the output barely depends on the input; {end} at the end, test accuracy {test_accuracy:.3}",
                    f.ratio, t.collapse_ratio, f.err_ratio
                ),
            );
        }
        if test_accuracy < chance + t.chance_margin {
            return report(
                Verdict::NotLearning,
                format!("test accuracy {test_accuracy:.3} within {:.2} of chance {chance:.3}", t.chance_margin),
            );
        }
        let learned = (test_accuracy - chance) / (1.0 - chance);
        if learned < t.min_learned {
            return report(
                Verdict::NotLearning,
                format!(
                    "test accuracy {test_accuracy:.3} is {:.0}% of the way from chance {chance:.3} to 1 (threshold {:.0}%)",
                    learned * 100.0,
                    t.min_learned * 100.0
                ),
            );
        }
        report(
            Verdict::Healthy,
            format!(
                "test accuracy {test_accuracy:.3}, gradient ratio {}",
                ratio_at_end.map_or("n/a".into(), |r| format!("{r:.3e}"))
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(norms: &[f64], dead: f64) -> Vec<LayerStats> {
        norms.iter().map(|&n| LayerStats { grad_norm: n, dead, ..Default::default() }).collect()
    }

    fn run(steps: &[Vec<LayerStats>], acc: f64) -> VerdictReport {
        let mut t = Tracker::default();
        for (i, l) in steps.iter().enumerate() {
            t.observe(i as u64, l, 1.0);
        }
        t.verdict(&Thresholds::default(), acc, 0.1)
    }

    /// The median of the final quarter of a whole series, as the tracker defined it when it
    /// kept every value.
    fn median_of_whole(v: &[f64]) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let mut s: Vec<f64> = v[v.len() - v.len().div_ceil(4)..].iter().copied().filter(|x| !x.is_nan()).collect();
        s.sort_by(f64::total_cmp);
        Some(if s.is_empty() { f64::NAN } else { s[s.len() / 2] })
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        a.map(f64::to_bits) == b.map(f64::to_bits)
    }

    #[test]
    fn a_series_keeps_what_its_final_quarter_needs_and_nothing_more() {
        // Values that rise, fall and are sometimes NaN: a median over the wrong window differs.
        let value = |i: usize| if i % 7 == 3 { f64::NAN } else { (i as f64 * 0.37).sin() * i as f64 };
        let (mut whole, mut series) = (Vec::new(), LastQuarter::default());
        for n in 1..=400 {
            whole.push(value(n - 1));
            series.push(value(n - 1));
            assert!(same(series.median(), median_of_whole(&whole)), "after {n}");
            assert!(series.kept.len() <= n / 2 + 2, "{} kept of {n}", series.kept.len());
            // Saved and read back, it holds the final quarter only and goes on the same.
            let mut e = Enc(Vec::new());
            series.save(&mut e);
            let mut read = LastQuarter::load(&mut Dec::new(&e.0), 2).unwrap();
            assert_eq!(read.kept.len(), n.div_ceil(4), "saved after {n}");
            for m in n..(n + 9) {
                read.push(value(m));
            }
            let on: Vec<f64> = (0..n + 9).map(value).collect();
            assert!(same(read.median(), median_of_whole(&on)), "saved after {n}, then 9 more");
        }
        assert_eq!(LastQuarter::default().median(), None);
    }

    #[test]
    fn a_series_that_drops_part_of_its_final_quarter_is_refused() {
        let mut e = Enc(Vec::new());
        e.u64(100);
        e.f64s(&[1.0; 24]);
        let err = LastQuarter::load(&mut Dec::new(&e.0), 2).unwrap_err();
        assert!(matches!(&err, CheckpointError::Malformed(m) if m.contains("24 values after 100 dropped")), "{err:?}");
        let mut e = Enc(Vec::new());
        e.u64(u64::MAX);
        e.f64s(&[1.0]);
        assert!(LastQuarter::load(&mut Dec::new(&e.0), 2).is_err());
    }

    /// A tracker over `n` recorded steps whose ratio and forward signal drift, and its verdict.
    fn drifting(n: usize) -> (Tracker, Vec<Vec<LayerStats>>) {
        let steps: Vec<Vec<LayerStats>> = (0..n)
            .map(|i| {
                let mut l = layers(&[0.05 + i as f64 * 1e-3, 1.0, 1.0, 1.0], (i % 5) as f64 * 0.1);
                for (k, layer) in l.iter_mut().enumerate() {
                    layer.act_std = 1.0 / (1.0 + k as f64 * (1.0 + i as f64 * 1e-2));
                    layer.err_norm = 1.0 + k as f64;
                }
                l
            })
            .collect();
        let mut t = Tracker::default();
        for (i, l) in steps.iter().enumerate() {
            t.observe(i as u64, l, 1.0);
        }
        (t, steps)
    }

    #[test]
    fn a_saved_tracker_holds_a_quarter_of_each_series_and_gives_the_same_verdict() {
        let (t, _) = drifting(4000);
        let mut e = Enc(Vec::new());
        t.save(&mut e);
        // Three series of 1,000 values at 8 bytes: 24 KB, where the whole series took 96 KB.
        assert!(e.0.len() > 24_000 && e.0.len() < 24_200, "{} bytes", e.0.len());
        let read = Tracker::load(&mut Dec::new(&e.0), 2).unwrap();
        for acc in [0.05, 0.9] {
            assert_eq!(read.verdict(&Thresholds::default(), acc, 0.1), t.verdict(&Thresholds::default(), acc, 0.1));
        }
    }

    #[test]
    fn trackers_in_checkpoints_of_format_1_still_read() {
        let (t, steps) = drifting(300);
        // Format 1: each series whole, in the order the fields are now.
        let forward: Vec<Forward> = steps.iter().filter_map(|l| forward(l)).collect();
        let mut e = Enc(Vec::new());
        e.f64s(&steps.iter().filter_map(|l| first_last_ratio(l)).collect::<Vec<_>>());
        e.f64s(&steps.iter().map(|l| l[..3].iter().map(|x| x.dead).fold(0.0, f64::max)).collect::<Vec<_>>());
        e.opt_f64(t.initial_max_norm);
        e.f64(t.growth);
        e.opt_f64(None);
        e.opt_f64(Some(forward[0].ratio));
        e.u64(forward[0].layers as u64);
        e.f64(forward[0].err_ratio);
        e.f64s(&forward.iter().map(|f| f.ratio).collect::<Vec<_>>());
        let read = Tracker::load(&mut Dec::new(&e.0), 1).unwrap();
        for acc in [0.05, 0.9] {
            let (a, b) = (read.verdict(&Thresholds::default(), acc, 0.1), t.verdict(&Thresholds::default(), acc, 0.1));
            assert_eq!(a, b);
        }
        assert_eq!(read.first_ratio, Some(0.05));
    }

    #[test]
    fn each_verdict_from_a_history() {
        let healthy = vec![layers(&[0.5, 1.0, 1.0], 0.0); 8];
        // Just above and below the vanishing threshold.
        assert_eq!(run(&vec![layers(&[0.11, 1.0, 1.0], 0.0); 8], 0.9).verdict, Verdict::Healthy);
        assert_eq!(run(&vec![layers(&[0.09, 1.0, 1.0], 0.0); 8], 0.9).verdict, Verdict::Vanishing);
        assert_eq!(run(&healthy, 0.9).verdict, Verdict::Healthy);
        assert_eq!(run(&healthy, 0.12).verdict, Verdict::NotLearning);
        let vanish = vec![layers(&[1e-4, 1.0, 1.0], 0.0); 8];
        let v = run(&vanish, 0.9);
        assert_eq!(v.verdict, Verdict::Vanishing);
        assert_eq!(v.ratio_at_end, Some(1e-4));
        assert!(v.reason.contains("1.000e-4"), "{}", v.reason);
        let dead = vec![layers(&[1.0, 1.0, 1.0], 0.8); 8];
        assert_eq!(run(&dead, 0.9).verdict, Verdict::Dead);
        let mut grow = vec![layers(&[1.0, 1.0, 1.0], 0.0)];
        grow.push(layers(&[1e7, 1e7, 1.0], 0.0));
        assert_eq!(run(&grow, 0.9).verdict, Verdict::Exploding);
        let toward_input = vec![layers(&[1e3, 1.0, 1.0], 0.0); 4];
        assert_eq!(run(&toward_input, 0.9).verdict, Verdict::Exploding);
        let mut nan = healthy.clone();
        nan[3][1].nonfinite = 2;
        let v = run(&nan, 0.9);
        assert_eq!(v.verdict, Verdict::Exploding);
        assert!(v.reason.contains("step 3"));
    }

    /// Balanced gradients, activation spread falling from 1 to `last` over four hidden layers at
    /// step 0 and back to 1 by the end.
    fn forward_run(last: f64, acc: f64) -> VerdictReport {
        let at = |last: f64| {
            let mut l = layers(&[1.0, 1.0, 1.0, 1.0, 1.0], 0.0);
            for (i, layer) in l.iter_mut().enumerate().take(4) {
                layer.act_std = last.powf(i as f64 / 3.0);
                layer.err_norm = 1.0;
            }
            l
        };
        let mut h = vec![at(last)];
        h.extend(vec![at(1.0); 7]);
        run(&h, acc)
    }

    #[test]
    fn a_collapsing_forward_signal_at_init() {
        assert_eq!(forward_run(0.011, 0.9).verdict, Verdict::Healthy);
        let v = forward_run(0.009, 0.9);
        assert_eq!(v.verdict, Verdict::Collapsing);
        assert!(v.reason.contains("9.00e-3 of the first's (0.21x a layer"), "{}", v.reason);
        assert!(v.reason.contains("1.00 at the end"), "{}", v.reason);
        // The gradient verdicts come first.
        let mut h = vec![layers(&[1e-4, 1.0, 1.0], 0.0); 8];
        h[0][0].act_std = 1.0;
        h[0][1].act_std = 1e-4;
        assert_eq!(run(&h, 0.9).verdict, Verdict::Vanishing);
        // A net of one hidden layer has no depth to collapse over.
        let mut one = vec![layers(&[1.0, 1.0], 0.0); 4];
        one[0][0].act_std = 1e-9;
        assert_eq!(run(&one, 0.9).verdict, Verdict::Healthy);
    }

    #[test]
    fn learning_barely_past_chance_is_not_learning() {
        let healthy = vec![layers(&[0.5, 1.0, 1.0], 0.0); 8];
        // Half-way from chance 0.1 to 1 is 0.55.
        assert_eq!(run(&healthy, 0.56).verdict, Verdict::Healthy);
        let v = run(&healthy, 0.29);
        assert_eq!(v.verdict, Verdict::NotLearning);
        assert!(v.reason.contains("21% of the way from chance 0.100 to 1 (threshold 50%)"), "{}", v.reason);
        let mut t = Tracker::default();
        for (i, l) in healthy.iter().enumerate() {
            t.observe(i as u64, l, 1.0);
        }
        let lenient = Thresholds { min_learned: 0.1, ..Default::default() };
        assert_eq!(t.verdict(&lenient, 0.29, 0.1).verdict, Verdict::Healthy);
    }

    #[test]
    fn a_recovery_late_in_the_run_is_what_counts() {
        // Vanishing early, recovered over the final quarter: not vanishing.
        let mut h = vec![layers(&[1e-5, 1.0, 1.0], 0.0); 6];
        h.extend(vec![layers(&[0.5, 1.0, 1.0], 0.0); 2]);
        assert_eq!(run(&h, 0.9).verdict, Verdict::Healthy);
    }

    #[test]
    fn thresholds_validate() {
        Thresholds::default().validate().unwrap();
        let e = Thresholds { vanish_ratio: -1.0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.field, "thresholds.vanish_ratio");
        let e = Thresholds { collapse_ratio: 1.5, ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.field, "thresholds.collapse_ratio");
        let e = Thresholds { min_learned: f64::NAN, ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.field, "thresholds.min_learned");
        assert!("exploding".parse::<Verdict>().is_ok());
        assert_eq!("Collapsing".parse::<Verdict>(), Ok(Verdict::Collapsing));
    }
}
