//! A trainer's whole state at a step boundary, and its byte format.
//!
//! Everything a [`super::train::Trainer`] carries from one step to the next is here: the
//! parameters, the optimizer's moments, the data order and the position in it, the shuffle
//! stream's position, the step, the last batch's loss and the verdict tracker. What is not here
//! is a function of the spec and seed (the data, its split, the schedule, Adam's step count,
//! the initial parameters), so a trainer built from the same spec and given this state goes on
//! with exactly the bits an uninterrupted one would have. A fork's trainer takes its parent's
//! state with other training settings (`Trainer::restore`).
//!
//! # Format (version 2)
//!
//! Little-endian throughout: the magic `GLCKPT`, u16 version, u16 bytes per value (4 for f32),
//! then the fields in [`TrainState::encode`]'s order (lengths as u64 before every array), and a
//! CRC-32 of everything before it. Values are stored with their bits (NaN payloads included).
//! About 4 bytes per parameter for SGD, 8 with momentum and 12 with Adam (f32), and 24 bytes
//! for every four recorded steps (the verdict's series, their final quarter).
//!
//! Version 1 held the verdict's series whole (24 bytes a recorded step); it still reads.

use super::Real;
use super::loss::BatchLoss;
use super::verdict::Tracker;

const MAGIC: &[u8; 6] = b"GLCKPT";
const VERSION: u16 = 2;
/// The oldest format this build reads.
const OLDEST: u16 = 1;

/// A checkpoint that cannot be read, or that belongs to another network.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckpointError {
    #[error("checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("checkpoint does not fit this job: {0}")]
    Mismatch(String),
}

/// One layer's parameters and optimizer moments (`m` empty for SGD, `v` empty but for Adam).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerState<F> {
    pub rows: usize,
    pub cols: usize,
    pub w: Vec<F>,
    pub b: Vec<F>,
    pub m_w: Vec<F>,
    pub v_w: Vec<F>,
    pub m_b: Vec<F>,
    pub v_b: Vec<F>,
}

/// A trainer's state after `step` steps (see the module docs).
#[derive(Clone, Debug)]
pub struct TrainState<F> {
    pub step: u64,
    /// The step the optimizer's moments started from (0 but in a fork that changed optimizer).
    pub optimizer_since: u64,
    pub layers: Vec<LayerState<F>>,
    /// The current epoch's order of the training examples, and the next batch's place in it.
    pub order: Vec<usize>,
    pub cursor: usize,
    /// Words the shuffle stream has produced.
    pub shuffle_pos: u128,
    pub last_train: BatchLoss,
    pub tracker: Tracker,
}

impl<F: Real> TrainState<F> {
    /// Parameters (weights and biases) of the network.
    pub fn parameters(&self) -> usize {
        self.layers.iter().map(|l| l.w.len() + l.b.len()).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        StateRef {
            step: self.step,
            optimizer_since: self.optimizer_since,
            cursor: self.cursor,
            shuffle_pos: self.shuffle_pos,
            last_train: self.last_train,
            tracker: &self.tracker,
            order: &self.order,
            layers: self
                .layers
                .iter()
                .map(|l| LayerRef {
                    rows: l.rows,
                    cols: l.cols,
                    parts: [&l.w[..], &l.b[..], &l.m_w[..], &l.v_w[..], &l.m_b[..], &l.v_b[..]],
                })
                .collect(),
        }
        .encode()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let body_len = bytes.len().checked_sub(4).ok_or_else(|| malformed("shorter than its checksum"))?;
        let (body, crc) = bytes.split_at(body_len);
        if body.len() < 10 || &body[..6] != MAGIC {
            return Err(malformed("not a gradlab checkpoint"));
        }
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(malformed("checksum does not match (damaged)"));
        }
        let mut d = Dec { b: body, pos: 6 };
        let version = d.u16()?;
        if !(OLDEST..=VERSION).contains(&version) {
            return Err(malformed(format!("version {version}; this gradlab reads versions {OLDEST} to {VERSION}")));
        }
        let width = d.u16()? as usize;
        if width != F::BYTES {
            return Err(CheckpointError::Mismatch(format!("{width}-byte values, the trainer's are {}", F::BYTES)));
        }
        let step = d.u64()?;
        let optimizer_since = d.u64()?;
        let cursor = d.len()?;
        let shuffle_pos = u128::from_le_bytes(d.take(16)?.try_into().expect("16 bytes"));
        let last_train = BatchLoss { loss_sum: d.f64()?, correct: d.len()?, n: d.len()? };
        let tracker = Tracker::load(&mut d, version)?;
        let n = d.count(4)?;
        let order =
            d.take(n * 4)?.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4")) as usize).collect();
        let n_layers = d.count(16)?;
        let mut layers = Vec::with_capacity(n_layers);
        for _ in 0..n_layers {
            let (rows, cols) = (d.len()?, d.len()?);
            let mut part = || -> Result<Vec<F>, CheckpointError> {
                let n = d.count(F::BYTES)?;
                Ok(F::get_all_le(d.take(n * F::BYTES)?))
            };
            let (w, b, m_w, v_w, m_b, v_b) = (part()?, part()?, part()?, part()?, part()?, part()?);
            layers.push(LayerState { rows, cols, w, b, m_w, v_w, m_b, v_b });
        }
        if d.pos != body.len() {
            return Err(malformed(format!("{} bytes after the last layer", body.len() - d.pos)));
        }
        Ok(TrainState { step, optimizer_since, layers, order, cursor, shuffle_pos, last_train, tracker })
    }
}

/// One layer's parameters and moments, borrowed: w, b, m_w, v_w, m_b, v_b.
pub struct LayerRef<'a, F> {
    pub rows: usize,
    pub cols: usize,
    pub parts: [&'a [F]; 6],
}

/// A [`TrainState`] borrowed from wherever it lives, so that a trainer encodes its state
/// without copying it first (a 10M-parameter Adam net: one 127 MB buffer instead of two).
pub struct StateRef<'a, F> {
    pub step: u64,
    pub optimizer_since: u64,
    pub cursor: usize,
    pub shuffle_pos: u128,
    pub last_train: BatchLoss,
    pub tracker: &'a Tracker,
    pub order: &'a [usize],
    pub layers: Vec<LayerRef<'a, F>>,
}

impl<F: Real> StateRef<'_, F> {
    /// The state, copied.
    pub fn to_state(&self) -> TrainState<F> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let [w, b, m_w, v_w, m_b, v_b] = l.parts.map(<[F]>::to_vec);
                LayerState { rows: l.rows, cols: l.cols, w, b, m_w, v_w, m_b, v_b }
            })
            .collect();
        TrainState {
            step: self.step,
            optimizer_since: self.optimizer_since,
            layers,
            order: self.order.to_vec(),
            cursor: self.cursor,
            shuffle_pos: self.shuffle_pos,
            last_train: self.last_train,
            tracker: self.tracker.clone(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let values: usize = self.layers.iter().flat_map(|l| l.parts.iter().map(|p| p.len())).sum();
        let ratios = 8 * 1024; // the tracker's series (a quarter of the recorded steps); grows if need be
        let mut e = Enc(Vec::with_capacity(256 + ratios + values * F::BYTES + self.order.len() * 4));
        e.0.extend_from_slice(MAGIC);
        e.0.extend_from_slice(&VERSION.to_le_bytes());
        e.0.extend_from_slice(&(F::BYTES as u16).to_le_bytes());
        e.u64(self.step);
        e.u64(self.optimizer_since);
        e.u64(self.cursor as u64);
        e.0.extend_from_slice(&self.shuffle_pos.to_le_bytes());
        e.f64(self.last_train.loss_sum);
        e.u64(self.last_train.correct as u64);
        e.u64(self.last_train.n as u64);
        self.tracker.save(&mut e);
        e.u64(self.order.len() as u64);
        e.0.extend(self.order.iter().flat_map(|&i| (i as u32).to_le_bytes()));
        e.u64(self.layers.len() as u64);
        for l in &self.layers {
            e.u64(l.rows as u64);
            e.u64(l.cols as u64);
            for part in l.parts {
                e.u64(part.len() as u64);
                F::put_all_le(part, &mut e.0);
            }
        }
        let crc = crc32fast::hash(&e.0);
        e.0.extend_from_slice(&crc.to_le_bytes());
        e.0
    }
}

fn malformed(m: impl Into<String>) -> CheckpointError {
    CheckpointError::Malformed(m.into())
}

/// Appends little-endian fields.
pub(crate) struct Enc(pub(crate) Vec<u8>);

impl Enc {
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        self.0.push(v.is_some() as u8);
        self.f64(v.unwrap_or(0.0));
    }
    pub(crate) fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        v.iter().for_each(|&x| self.f64(x));
    }
}

/// Reads what [`Enc`] wrote; every read checks the bytes are there.
pub(crate) struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    #[cfg(test)]
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Dec { b, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CheckpointError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| malformed("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, CheckpointError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, CheckpointError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, CheckpointError> {
        Ok(f64::from_bits(self.u64()?))
    }
    pub(crate) fn opt_f64(&mut self) -> Result<Option<f64>, CheckpointError> {
        let some = self.take(1)?[0];
        let v = self.f64()?;
        match some {
            0 => Ok(None),
            1 => Ok(Some(v)),
            _ => Err(malformed("bad option flag")),
        }
    }
    pub(crate) fn f64s(&mut self) -> Result<Vec<f64>, CheckpointError> {
        let n = self.count(8)?;
        (0..n).map(|_| self.f64()).collect()
    }
    /// A length or position that must fit in memory.
    pub(crate) fn len(&mut self) -> Result<usize, CheckpointError> {
        usize::try_from(self.u64()?).map_err(|_| malformed("length too large"))
    }
    /// A count of items of at least `item_bytes` each, checked against the bytes left.
    fn count(&mut self, item_bytes: usize) -> Result<usize, CheckpointError> {
        let n = self.len()?;
        if n.saturating_mul(item_bytes) > self.b.len() - self.pos {
            return Err(malformed("an array runs past the end"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::optim::{Optimizer, Schedule};
    use crate::engine::spec::JobSpec;
    use crate::engine::train::{Event, Trainer};

    /// A run's events (step records and evaluations) as text that keeps every bit (`{:?}` of
    /// f64 prints the shortest string that reads back the same), and its summary.
    fn events<F: Real>(t: &mut Trainer<F>, stop_at: Option<u64>, saved: &mut Option<Vec<u8>>) -> (Vec<String>, String) {
        let mut out = Vec::new();
        let summary = t.run(|e| match e {
            Event::Step(r) => {
                out.push(format!("{r:?}"));
                true
            }
            Event::Eval(e) => {
                out.push(format!("{e:?}"));
                true
            }
            Event::Settled(t) if Some(t.steps_done()) == stop_at => {
                *saved = Some(t.state().encode());
                false
            }
            Event::Settled(_) => true,
        });
        (out, format!("{summary:?}"))
    }

    fn specs() -> Vec<JobSpec> {
        let base = JobSpec {
            hidden: vec![16, 12],
            batch: 32,
            steps: 120,
            eval_every: 25,
            record_every: 3,
            histogram_every: 10,
            seed: 7,
            ..Default::default()
        };
        vec![
            JobSpec { clip_norm: Some(0.5), ..base.clone() },
            JobSpec {
                optimizer: Optimizer::Momentum { momentum: 0.9, nesterov: true },
                schedule: Schedule::Cosine { min_factor: 0.1 },
                ..base.clone()
            },
            JobSpec { optimizer: "adam".parse().unwrap(), weight_decay: 1e-3, lr: 0.01, ..base },
        ]
    }

    /// Stopped at `at`, saved, restored into a new trainer and run on: the same steps,
    /// evaluations and summary as a run that never stopped, bit for bit.
    fn resumes_exactly<F: Real>() {
        for spec in specs() {
            let (all, summary) = events(&mut Trainer::<F>::new(&spec).unwrap(), None, &mut None);
            // 1: after the first step; 25: at an evaluation; 42 and 43: either side of the
            // first epoch's end (1,347 training examples, 32 a batch); 119: before the last.
            for at in [1, 25, 42, 43, 119] {
                let mut saved = None;
                let (before, _) = events(&mut Trainer::<F>::new(&spec).unwrap(), Some(at), &mut saved);
                let bytes = saved.expect("saved at the step");
                let state = TrainState::<F>::decode(&bytes).unwrap();
                assert_eq!(state.step, at);
                let mut resumed = Trainer::<F>::new(&spec).unwrap();
                resumed.restore(state).unwrap();
                let (after, resumed_summary) = events(&mut resumed, None, &mut None);
                assert_eq!(before.len() + after.len(), all.len(), "{} at {at}", spec.optimizer);
                assert_eq!(&all[before.len()..], &after[..], "{} at {at}", spec.optimizer);
                assert_eq!(resumed_summary, summary, "{} at {at}", spec.optimizer);
                // Into a trainer that had already trained on: nothing it derived from its own
                // weights (the backward pass's transposes) outlives the restore.
                let mut stepped = Trainer::<F>::new(&spec).unwrap();
                for _ in 0..3 {
                    stepped.step();
                }
                stepped.restore(TrainState::<F>::decode(&bytes).unwrap()).unwrap();
                let (again, _) = events(&mut stepped, None, &mut None);
                assert_eq!(again, after, "{} at {at}, restored over 3 steps", spec.optimizer);
            }
        }
    }

    #[test]
    fn a_restored_trainer_goes_on_with_the_same_bits_f64() {
        resumes_exactly::<f64>();
    }

    #[test]
    fn a_restored_trainer_goes_on_with_the_same_bits_f32() {
        resumes_exactly::<f32>();
    }

    #[test]
    fn encoding_round_trips_and_damage_is_caught() {
        let spec = &specs()[2];
        let mut t = Trainer::<f32>::new(spec).unwrap();
        for _ in 0..5 {
            t.step();
        }
        let bytes = t.state().encode();
        assert_eq!(t.encode_state(), bytes, "the trainer encodes what its state() does");
        assert_eq!(TrainState::<f32>::decode(&bytes).unwrap().encode(), bytes);
        // Adam: weights, biases and two moments of each, 4 bytes a value, plus the data order.
        let params = t.state().parameters();
        assert!(bytes.len() > params * 12 && bytes.len() < params * 12 + 6_000, "{} bytes", bytes.len());

        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        assert!(
            matches!(TrainState::<f32>::decode(&flipped), Err(CheckpointError::Malformed(m)) if m.contains("checksum"))
        );
        for cut in [0, 3, 10, bytes.len() - 1] {
            assert!(matches!(TrainState::<f32>::decode(&bytes[..cut]), Err(CheckpointError::Malformed(_))), "{cut}");
        }
        assert!(matches!(TrainState::<f64>::decode(&bytes), Err(CheckpointError::Mismatch(_))));
    }

    #[test]
    fn a_state_from_another_network_is_refused_and_changes_nothing() {
        let spec = &specs()[0];
        let state = Trainer::<f32>::new(spec).unwrap().state();
        let wider = JobSpec { hidden: vec![16, 13], ..spec.clone() };
        let mut t = Trainer::<f32>::new(&wider).unwrap();
        let before = t.state().encode();
        let e = t.restore(state.clone()).unwrap_err();
        assert!(e.to_string().contains("layer 1 is 16x12"), "{e}");
        assert_eq!(t.state().encode(), before);

        let mut bad = state;
        bad.order[0] = bad.order[1];
        let e = Trainer::<f32>::new(spec).unwrap().restore(bad).unwrap_err();
        assert!(e.to_string().contains("permutation"), "{e}");
    }
}

#[cfg(test)]
mod fork_tests {
    use super::*;
    use crate::engine::spec::JobSpec;
    use crate::engine::train::Trainer;

    fn run_to(t: &mut Trainer<f64>, step: u64) -> Vec<String> {
        let mut out = Vec::new();
        while t.steps_done() < step {
            out.push(format!("{:?}", t.step()));
        }
        out
    }

    /// A fork that changes nothing is the parent from there on; one that changes the learning
    /// rate or the optimizer goes its own way, the same way every time.
    #[test]
    fn forks_go_on_from_the_parents_state_with_their_own_settings() {
        let parent = JobSpec { hidden: vec![12, 12], batch: 32, steps: 80, seed: 5, ..Default::default() };
        let mut p = Trainer::<f64>::new(&parent).unwrap();
        run_to(&mut p, 30);
        let at_30 = p.state().encode();
        let rest = run_to(&mut p, 80);
        let fork = |spec: &JobSpec| {
            let mut t = Trainer::<f64>::new(spec).unwrap();
            t.restore(TrainState::decode(&at_30).unwrap()).unwrap();
            run_to(&mut t, spec.steps)
        };
        assert_eq!(fork(&parent), rest, "nothing changed: the parent's steps");
        let hotter = JobSpec { lr: 0.2, ..parent.clone() };
        assert_ne!(fork(&hotter), rest);
        assert_eq!(fork(&hotter), fork(&hotter));
        let adam = JobSpec { optimizer: "adam".parse().unwrap(), lr: 1e-3, ..parent.clone() };
        let (a, b) = (fork(&adam), fork(&adam));
        assert_eq!(a, b);
        assert_ne!(a, rest);
        // Adam's moments start at the fork: its first update is lr * sign(g) * (1 - eps-ish),
        // bias-corrected as a first step, not as the 31st.
        let mut t = Trainer::<f64>::new(&adam).unwrap();
        t.restore(TrainState::decode(&at_30).unwrap()).unwrap();
        let before = t.state();
        t.step();
        let after = t.state();
        let w0 = (before.layers[1].w[0], after.layers[1].w[0]);
        assert!(((w0.0 - w0.1).abs() - 1e-3).abs() < 1e-5, "{w0:?}");
        assert_eq!(after.optimizer_since, 30);
    }
}
