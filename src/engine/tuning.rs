//! Choices that change only speed, made at run time by timing a trainer's own steps.
//!
//! Which way is faster can differ between CPUs in ways their cache sizes do not predict, and
//! a choice that leaves every bit of the results as it is can be made by measurement: the
//! trainer tries both ways on its first steps, in context, and keeps the faster.

/// Whether the input gradient dZ·Wᵀ of the wide layers (see
/// [`Layer::is_wide`](super::network::Layer::is_wide)) reads a transposed copy of W, made
/// after each update, or W itself, which the product kernel then packs as it goes. Both read
/// the same values in the same order, so the bits are the same either way; the speed is not,
/// and not the same way round on every CPU. At 8x1024x256 reading W itself was 17% faster on an
/// Intel Xeon (model 167), whose transposes took 2.3 ms each inside the step, and 12% slower
/// on an AMD EPYC Zen 4, whose transposes are cheaper and whose kernel packs W's columns more
/// slowly (18% of the step in packing, against 5% with the copy).
///
/// The tuner runs the steps in pairs, alternating the two ways, and times the second step of
/// each pair (the first pays for the switch: the copies' first transposes, cold). It compares
/// only steps that recorded alike, and keeps the way whose fastest step was faster, the copy
/// on a tie.
#[derive(Clone, Debug, Default)]
pub struct TransposeTuner {
    /// Steps seen so far, the warm-up step included.
    steps: u32,
    /// Timed steps, by [recorded][reads a copy].
    samples: [[Vec<f64>; 2]; 2],
}

/// Timed steps each way, of one kind (recorded or not), before the tuner decides.
const SAMPLES: usize = 3;
/// The tuner decides after this many steps at the most, on what it has.
const MAX_STEPS: u32 = 1 + 2 * 20;

impl TransposeTuner {
    /// Whether the next step is to read transposed copies.
    pub fn copies_next(&self) -> bool {
        // Step 0 warms up (first touches of every buffer) with the copies; then pairs of
        // steps, without and with.
        self.steps == 0 || (self.steps - 1) / 2 % 2 == 1
    }

    /// Takes the time of the step [`Self::copies_next`] was asked for, and whether it recorded
    /// statistics. Returns the choice, once made: whether to keep the copies.
    pub fn observe(&mut self, recorded: bool, secs: f64) -> Option<bool> {
        let copies = self.copies_next();
        let timed = self.steps > 0 && (self.steps - 1) % 2 == 1;
        self.steps += 1;
        if timed {
            self.samples[recorded as usize][copies as usize].push(secs);
        }
        let enough = |kind: &[Vec<f64>; 2]| kind.iter().all(|s| s.len() >= SAMPLES);
        if self.samples.iter().any(enough) || self.steps >= MAX_STEPS { Some(self.choice()) } else { None }
    }

    /// The kind with the most steps timed both ways decides; with none, the copies.
    fn choice(&self) -> bool {
        let both = |kind: &&[Vec<f64>; 2]| kind.iter().all(|s| !s.is_empty());
        let Some(kind) = self.samples.iter().filter(both).max_by_key(|k| k[0].len().min(k[1].len())) else {
            return true;
        };
        let fastest = |s: &[f64]| s.iter().copied().fold(f64::INFINITY, f64::min);
        fastest(&kind[1]) <= fastest(&kind[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the tuner steps that take `secs(copies, recorded)` until it decides.
    fn decide(recorded: impl Fn(u32) -> bool, secs: impl Fn(bool, bool) -> f64) -> (bool, u32) {
        let mut t = TransposeTuner::default();
        for step in 0.. {
            let copies = t.copies_next();
            let rec = recorded(step);
            if let Some(choice) = t.observe(rec, secs(copies, rec)) {
                return (choice, step + 1);
            }
        }
        unreachable!()
    }

    #[test]
    fn alternates_pairs_after_a_warm_up_with_the_copies() {
        let mut t = TransposeTuner::default();
        let mut ways = Vec::new();
        for _ in 0..9 {
            ways.push(t.copies_next());
            assert_eq!(t.observe(false, 1.0), None);
        }
        assert_eq!(ways, [true, false, false, true, true, false, false, true, true]);
    }

    #[test]
    fn keeps_the_faster_way() {
        // Three timed steps each way: 1 warm-up + 6 pairs.
        assert_eq!(decide(|_| false, |copies, _| if copies { 2.0 } else { 1.0 }), (false, 13));
        assert_eq!(decide(|_| false, |copies, _| if copies { 1.0 } else { 2.0 }), (true, 13));
        assert_eq!(decide(|_| true, |_, _| 1.0), (true, 13), "a tie keeps the copies");
        // A job recording every tenth step: its recorded timed step is left out.
        assert_eq!(decide(|step| step % 10 == 0, |copies, _| if copies { 2.0 } else { 1.0 }), (false, 15));
    }

    #[test]
    fn compares_only_steps_that_recorded_alike() {
        // Without the copies every timed step records, with them every other one, and
        // recording takes ten times as long. The copies are slower step for step; compared
        // across kinds, their plain steps would make them look faster.
        let recorded = |step: u32| step % 4 == 2 || step % 8 == 4;
        let secs = |copies: bool, rec: bool| (if rec { 10.0 } else { 1.0 }) * if copies { 1.1 } else { 1.0 };
        assert_eq!(decide(recorded, secs), (false, 21));
    }

    #[test]
    fn decides_by_the_last_step_it_allows() {
        // Only recorded steps without copies and plain steps with them: no kind has both.
        let (choice, steps) = decide(|step| step % 4 == 2, |copies, _| if copies { 2.0 } else { 1.0 });
        assert_eq!(steps, MAX_STEPS);
        assert!(choice, "with nothing to compare, the copies");
    }
}
