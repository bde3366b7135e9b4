//! The training loop: batches, steps, measurement, evaluation, verdict.
//!
//! A [`Trainer`] is driven one step at a time by its caller (the runner checks cancellation
//! between steps); [`Trainer::run`] is the plain loop for callers that need no control.

use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Instant;

use super::Real;
use super::awake::Helpers;
use super::checkpoint::{CheckpointError, LayerRef, LayerState, StateRef, TrainState};
use super::data::{self, DataError, Split, Standardization};
use super::loss::BatchLoss;
use super::network::{Layer, Mlp, Pass, refresh_transpose};
use super::optim::{Optimizer, Slot, StepParams, UpdateNorms};
use super::rng::{Purpose, stream};
use super::spec::{FieldError, JobSpec};
use super::stats::{Histogram, LayerStats, Moments, magnitudes, moments, sumsq};
use super::tuning::TransposeTuner;
use super::verdict::{Tracker, VerdictReport};

/// What one training step measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 0-based: step 0's gradients are those at initialization.
    pub step: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub lr: f64,
    /// Global gradient norm over all weights and biases (before clipping).
    pub grad_norm: f64,
    /// Per layer, input side first; the output layer last. Empty on steps not recorded.
    pub layers: Vec<LayerStats>,
    /// log10|dL/dW| histograms per layer, on steps where they are due.
    pub histograms: Vec<Histogram>,
}

impl StepRecord {
    /// Rounds the measured statistics (every layer's, the loss and the global gradient norm) to
    /// f32, the precision of the tensors they measure: what is recorded, watched and verdicted.
    /// Their f64 sums carry some 29 more bits that say nothing about the network and cannot
    /// be compressed; in f32 a layer-step stores in about 30 bytes instead of 57 (the store's
    /// module docs). `accuracy` and `lr` are kept as they are (fractions and settings).
    pub fn round_to_f32(&mut self) {
        self.loss = round_f32(self.loss);
        self.grad_norm = round_f32(self.grad_norm);
        for l in &mut self.layers {
            l.round_to_f32();
        }
    }
}

fn round_f32(x: f64) -> f64 {
    x as f32 as f64
}

/// Held-out evaluation after `step` steps have been taken.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    pub test_loss: f64,
    pub test_accuracy: f64,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub steps_done: u64,
    #[serde(with = "crate::engine::nonfinite")]
    pub train_loss: f64,
    #[serde(with = "crate::engine::nonfinite")]
    pub train_accuracy: f64,
    #[serde(with = "crate::engine::nonfinite")]
    pub test_loss: f64,
    #[serde(with = "crate::engine::nonfinite")]
    pub test_accuracy: f64,
    pub verdict: VerdictReport,
    /// True when training stopped at a non-finite value (`stop_on_nonfinite`).
    pub stopped_early: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("dataset: {0}")]
    Data(#[from] DataError),
}

pub struct Trainer<F: Real> {
    spec: JobSpec,
    net: Mlp<F>,
    pass: Pass<F>,
    slots_w: Vec<Slot<F>>,
    slots_b: Vec<Slot<F>>,
    train_x: Array2<F>,
    train_y: Vec<u32>,
    test_x: Array2<F>,
    test_y: Vec<u32>,
    classes: usize,
    order: Vec<usize>,
    cursor: usize,
    shuffle: ChaCha8Rng,
    labels: Vec<u32>,
    step: u64,
    tracker: Tracker,
    last_train: BatchLoss,
    /// How a raw example becomes the network's input (None: as it is).
    input_map: Option<Standardization>,
    /// The step the optimizer's moments started from: 0, or a fork's step if it changed the
    /// optimizer to one that keeps other moments.
    optimizer_since: u64,
    /// Times the first steps of a net with wide layers both ways (see [`TransposeTuner`]);
    /// None once it has chosen, or where there is nothing to choose.
    tuner: Option<TransposeTuner>,
    /// What each layer's update measured, for steps that update as they go back (see
    /// [`Self::gradients_updating`]).
    updates: Vec<LayerUpdate>,
    /// Keep the pool's other threads awake while steps split their work among them.
    helpers: Helpers,
    /// The evaluations' pass, kept between them when small (see [`EVAL_KEEP`]): made afresh,
    /// its zeroed buffers cost about 1% of a 32-wide sweep job. A lock, because `evaluate` reads
    /// a shared trainer; nothing else takes it.
    eval_pass: Mutex<Option<Pass<F>>>,
}

/// One layer's share of an update: its parameters, their optimizer slots (weights, biases),
/// their gradients and the buffer for the new weights' transpose.
type LayerParts<'a, F> =
    ((((&'a mut Layer<F>, &'a mut Slot<F>), &'a mut Slot<F>), (&'a Array2<F>, &'a Array1<F>)), &'a mut Array2<F>);

/// What a layer's update measured: of its weights, and of its biases when their gradient's
/// statistics were measured in the update too.
type LayerUpdate = (UpdateNorms, Option<UpdateNorms>);

/// One layer's optimizer update, then its Wᵀ refreshed. With `record` it measures the update
/// (norms of W and of the step), and with `grad_stats` the gradients of W and b it reads.
fn update_layer<F: Real>(
    opt: Optimizer,
    params: StepParams,
    record: bool,
    grad_stats: bool,
    ((((layer, sw), sb), (gw, gb)), wt): LayerParts<'_, F>,
) -> LayerUpdate {
    let (w, gw) = (layer.w.as_slice_mut().expect("contiguous"), gw.as_slice().expect("contiguous"));
    let (b, gb) = (layer.b.as_slice_mut().expect("contiguous"), gb.as_slice().expect("contiguous"));
    let norms = if !record {
        opt.update::<F, false>(w, gw, sw, params, true);
        opt.update::<F, false>(b, gb, sb, params, false);
        (UpdateNorms::default(), None)
    } else {
        let n = opt.update::<F, true>(w, gw, sw, params, true);
        if grad_stats {
            (n, Some(opt.update::<F, true>(b, gb, sb, params, false)))
        } else {
            opt.update::<F, false>(b, gb, sb, params, false);
            (n, None)
        }
    };
    refresh_transpose(layer, wt);
    norms
}

/// Fills a layer's gradient statistics from the magnitudes of its weight and bias gradients;
/// returns their summed squares, its share of the global norm.
fn set_grad_stats(s: &mut LayerStats, gw: &Moments, gb: &Moments) -> f64 {
    s.grad_norm = gw.norm();
    s.bias_grad_norm = gb.norm();
    s.grad_mean_abs = gw.mean_abs();
    s.grad_max_abs = gw.maxabs;
    s.nonfinite = gw.nonfinite + gb.nonfinite;
    gw.sumsq + gb.sumsq
}

/// [`magnitudes`] of `g` as a measured update saw it, or from `g` itself when those sums are
/// not finite (the full pass then counts the non-finite entries).
fn grad_magnitudes<F: Real>(n: &UpdateNorms, g: &[F]) -> Moments {
    if n.grad_sumsq.is_finite() && n.grad_sumabs.is_finite() && n.grad_maxabs.is_finite() {
        Moments { n: g.len(), sumsq: n.grad_sumsq, sumabs: n.grad_sumabs, maxabs: n.grad_maxabs, ..Moments::default() }
    } else {
        magnitudes(g)
    }
}

/// Hints the CPU to bring `data` into cache; no effect on results, nothing where there is no
/// such hint.
#[inline]
fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        let base = data.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(data)).step_by(LINE) {
            // SAFETY: SSE is part of every x86_64 target, and a prefetch never faults (the
            // address lies inside `data` anyway).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Rows per forward pass when evaluating.
const EVAL_CHUNK: usize = 512;
/// The most elements of an evaluation pass kept between evaluations (4 MB in f32).
const EVAL_KEEP: usize = 1 << 20;

/// Loads and prepares a spec's data: load, split, standardize, all seeded by the job.
pub fn prepare_data(spec: &JobSpec) -> Result<Split, SetupError> {
    let ds = spec.dataset_spec()?.load(spec.seed)?;
    // test_fraction 0: no held-out data; "test" figures are then on the training set (probes).
    let mut split = if spec.test_fraction == 0.0 {
        Split { test: ds.clone(), train: ds, standardization: None }
    } else {
        data::split(ds, spec.test_fraction, spec.seed)?
    };
    if spec.standardize {
        data::standardize(&mut split);
    }
    Ok(split)
}

/// The shape of a spec's prepared data, found without preparing it (no split, no
/// standardization): what a submission is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    pub dim: usize,
    pub classes: usize,
    pub n_train: usize,
    pub n_test: usize,
}

impl DataShape {
    fn of(split: &Split) -> DataShape {
        DataShape {
            dim: split.train.features.ncols(),
            classes: split.train.classes.max(split.test.classes),
            n_train: split.train.labels.len(),
            n_test: split.test.labels.len(),
        }
    }
}

/// Loads a spec's dataset and says what [`prepare_data`] would make of it.
pub fn data_shape(spec: &JobSpec) -> Result<DataShape, SetupError> {
    let ds = spec.dataset_spec()?.load(spec.seed)?;
    let (n_train, n_test) =
        if spec.test_fraction == 0.0 { (ds.len(), ds.len()) } else { data::split_sizes(&ds, spec.test_fraction)? };
    Ok(DataShape { dim: ds.features.ncols(), classes: ds.classes, n_train, n_test })
}

/// What a spec needs of its prepared data: a full batch from the training split, and something
/// to evaluate on.
pub fn check_split(spec: &JobSpec, shape: &DataShape) -> Result<(), FieldError> {
    let n_train = shape.n_train;
    if spec.batch > n_train {
        return Err(FieldError::new(
            "batch",
            format!("{} is larger than the training split ({n_train} examples)", spec.batch),
        ));
    }
    if shape.n_test == 0 {
        return Err(FieldError::new("test_fraction", "leaves no test examples"));
    }
    Ok(())
}

impl<F: Real> Trainer<F> {
    pub fn new(spec: &JobSpec) -> Result<Self, SetupError> {
        spec.validate()?;
        let split = prepare_data(spec)?;
        Self::with_data(spec, split)
    }

    /// Builds on data already prepared by [`prepare_data`] (a caller may cache it).
    pub fn with_data(spec: &JobSpec, split: Split) -> Result<Self, SetupError> {
        spec.validate()?;
        check_split(spec, &DataShape::of(&split))?;
        let n_train = split.train.labels.len();
        let classes = split.train.classes.max(split.test.classes);
        let dim = split.train.features.ncols();
        let net = Mlp::new(
            dim,
            &spec.hidden,
            classes,
            spec.activation,
            spec.output_activation,
            &spec.init,
            &mut stream(spec.seed, Purpose::Init),
        );
        let pass = Pass::new(&net, spec.batch);
        let tuner = net.has_wide_layers().then(TransposeTuner::default);
        let slots_w = net.layers.iter().map(|l| Slot::new(&spec.optimizer, l.w.len())).collect();
        let slots_b = net.layers.iter().map(|l| Slot::new(&spec.optimizer, l.b.len())).collect();
        let mut t = Trainer {
            spec: spec.clone(),
            net,
            pass,
            slots_w,
            slots_b,
            train_x: split.train.features.mapv(|v| F::of(v as f64)),
            train_y: split.train.labels,
            test_x: split.test.features.mapv(|v| F::of(v as f64)),
            test_y: split.test.labels,
            classes,
            order: (0..n_train).collect(),
            cursor: n_train,
            shuffle: stream(spec.seed, Purpose::Shuffle),
            labels: vec![0; spec.batch],
            step: 0,
            tracker: Tracker::default(),
            last_train: BatchLoss::default(),
            input_map: split.standardization,
            optimizer_since: 0,
            tuner,
            updates: Vec::new(),
            helpers: Helpers::default(),
            eval_pass: Mutex::new(None),
        };
        t.order.shrink_to_fit();
        Ok(t)
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }
    pub fn net(&self) -> &Mlp<F> {
        &self.net
    }
    /// The network's parameters and the dataset's values: what a kept trainer's memory grows
    /// with (its other buffers are a few times the parameters, or the size of a batch).
    pub fn held_values(&self) -> usize {
        self.net.param_count() + self.train_x.len() + self.test_x.len()
    }
    pub fn steps_done(&self) -> u64 {
        self.step
    }
    pub fn finished(&self) -> bool {
        self.step >= self.spec.steps
    }
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// Mean squared input component of the training split: the q_in of mean-field theory.
    pub fn input_second_moment(&self) -> f64 {
        moments(self.train_x.as_slice().expect("contiguous")).sumsq / self.train_x.len().max(1) as f64
    }

    /// Everything the next step depends on that the spec does not fix, borrowed.
    fn state_ref(&self) -> StateRef<'_, F> {
        let layers = self
            .net
            .layers
            .iter()
            .zip(self.slots_w.iter().zip(&self.slots_b))
            .map(|(l, (sw, sb))| {
                let ((m_w, v_w), (m_b, v_b)) = (sw.moments(), sb.moments());
                let (w, b) = (l.w.as_slice().expect("contiguous"), l.b.as_slice().expect("contiguous"));
                LayerRef { rows: l.w.nrows(), cols: l.w.ncols(), parts: [w, b, m_w, v_w, m_b, v_b] }
            })
            .collect();
        StateRef {
            step: self.step,
            optimizer_since: self.optimizer_since,
            cursor: self.cursor,
            shuffle_pos: self.shuffle.get_word_pos(),
            last_train: self.last_train,
            tracker: &self.tracker,
            order: &self.order,
            layers,
        }
    }

    /// A copy of everything the next step depends on that the spec does not fix.
    pub fn state(&self) -> TrainState<F> {
        self.state_ref().to_state()
    }

    /// [`Self::state`], encoded (`engine::checkpoint`) without a copy in between: what a
    /// checkpoint stores.
    pub fn encode_state(&self) -> Vec<u8> {
        self.state_ref().encode()
    }

    /// Continues from `state`, taken by [`Self::state`] of a trainer of the same network and
    /// data. Its optimizer settings may differ (a fork): moments of the same shape are kept,
    /// others start again from zero at the state's step (Adam's bias correction with them).
    /// Nothing changes unless the state fits this trainer's network and data.
    pub fn restore(&mut self, state: TrainState<F>) -> Result<(), CheckpointError> {
        let mismatch = |m: String| Err(CheckpointError::Mismatch(m));
        if state.layers.len() != self.net.layers.len() {
            return mismatch(format!("{} layers, the job's network has {}", state.layers.len(), self.net.layers.len()));
        }
        for (i, (s, l)) in state.layers.iter().zip(&self.net.layers).enumerate() {
            let (rows, cols) = l.w.dim();
            if (s.rows, s.cols, s.w.len(), s.b.len()) != (rows, cols, rows * cols, cols) {
                return mismatch(format!("layer {i} is {}x{}, the job's is {rows}x{cols}", s.rows, s.cols));
            }
        }
        let n = self.order.len();
        let mut seen = vec![false; n];
        if state.order.len() != n || state.order.iter().any(|&i| i >= n || std::mem::replace(&mut seen[i], true)) {
            return mismatch(format!("the data order is not a permutation of the {n} training examples"));
        }
        if state.cursor > n || state.step > self.spec.steps || state.optimizer_since > state.step {
            return mismatch(format!("step {} or data position {} is past the job's end", state.step, state.cursor));
        }
        let shapes = |s: &LayerState<F>| (s.m_w.len(), s.v_w.len(), s.m_b.len(), s.v_b.len());
        let same_optimizer = state.layers.iter().zip(self.slots_w.iter().zip(&self.slots_b)).all(|(s, (sw, sb))| {
            shapes(s) == (sw.moments().0.len(), sw.moments().1.len(), sb.moments().0.len(), sb.moments().1.len())
        });
        for (i, s) in state.layers.into_iter().enumerate() {
            let layer = &mut self.net.layers[i];
            layer.w.as_slice_mut().expect("contiguous").copy_from_slice(&s.w);
            layer.b.as_slice_mut().expect("contiguous").copy_from_slice(&s.b);
            if same_optimizer {
                self.slots_w[i].set_moments(s.m_w, s.v_w).map_err(CheckpointError::Mismatch)?;
                self.slots_b[i].set_moments(s.m_b, s.v_b).map_err(CheckpointError::Mismatch)?;
            }
        }
        self.pass.weights_changed();
        self.optimizer_since = if same_optimizer { state.optimizer_since } else { state.step };
        self.order = state.order;
        self.cursor = state.cursor;
        self.shuffle = stream(self.spec.seed, Purpose::Shuffle);
        self.shuffle.set_word_pos(state.shuffle_pos);
        self.step = state.step;
        self.last_train = state.last_train;
        self.tracker = state.tracker;
        Ok(())
    }

    fn next_batch(&mut self) {
        let b = self.spec.batch;
        if self.cursor + b > self.order.len() {
            // A fresh permutation each epoch; the tail that does not fill a batch is skipped.
            self.order.shuffle(&mut self.shuffle);
            self.cursor = 0;
        }
        let dim = self.train_x.ncols();
        let src = self.train_x.as_slice().expect("contiguous");
        let dst = self.pass.x.as_slice_mut().expect("contiguous");
        let batch = &self.order[self.cursor..self.cursor + b];
        for (row, &idx) in dst.chunks_exact_mut(dim.max(1)).zip(batch) {
            row.copy_from_slice(&src[idx * dim..(idx + 1) * dim]);
        }
        for (label, &idx) in self.labels.iter_mut().zip(batch) {
            *label = self.train_y[idx];
        }
        self.cursor += b;
        // The rows are scattered over the training set, which can outgrow the caches: ask for
        // the next batch's rows now, so they arrive while this step computes (2% of a step at
        // 4x64x64 on 8,192 examples).
        if let Some(next) = self.order.get(self.cursor..self.cursor + b) {
            for &idx in next {
                prefetch(&src[idx * dim..(idx + 1) * dim]);
            }
        }
    }

    fn records_step(&self, step: u64) -> bool {
        step.is_multiple_of(self.spec.record_every) || step + 1 == self.spec.steps
    }

    /// Takes one training step: gradients at the current parameters, then the update.
    /// The record holds per-layer statistics when this step is one to record. A net with wide
    /// layers also times its first steps, to choose how they read W (see [`TransposeTuner`]).
    pub fn step(&mut self) -> StepRecord {
        let started = self.tuner.as_ref().map(|tuner| {
            self.pass.set_wide_copies(&self.net, tuner.copies_next());
            Instant::now()
        });
        let rec = self.train_step();
        if let (Some(started), Some(tuner)) = (started, self.tuner.as_mut())
            && let Some(copies) = tuner.observe(!rec.layers.is_empty(), started.elapsed().as_secs_f64())
        {
            self.fix_wide_copies(copies);
        }
        rec
    }

    /// Whether the wide layers' input gradients read transposed copies of W: None while the
    /// trainer is still timing both ways (see [`TransposeTuner`]).
    pub fn wide_copies(&self) -> Option<bool> {
        if self.tuner.is_some() { None } else { Some(self.pass.wide_copies()) }
    }

    /// Sets how the wide layers' input gradients read W, instead of timing it: for benchmarks
    /// and tests. The results are the same bits either way.
    pub fn fix_wide_copies(&mut self, copies: bool) {
        self.tuner = None;
        self.pass.set_wide_copies(&self.net, copies);
    }

    fn train_step(&mut self) -> StepRecord {
        let _awake = self.net.layers_in_parallel().then(|| self.helpers.awake());
        let step = self.step;
        let record = self.records_step(step);
        let hist = self.spec.histogram_every > 0 && step.is_multiple_of(self.spec.histogram_every);
        // Unless clipping needs the gradient norm first, the update measures the gradients in
        // the pass that reads them anyway.
        let in_update = record && self.spec.clip_norm.is_none();
        let mut rec = if self.spec.clip_norm.is_none() && !self.net.layers_in_parallel() {
            self.gradients_updating(record, hist)
        } else {
            let mut rec = self.gradients(record, !in_update, hist);
            self.apply(&mut rec, in_update);
            rec
        };
        self.step += 1;
        if record {
            rec.round_to_f32();
            self.tracker.observe(step, &rec.layers, rec.loss);
        } else if !rec.loss.is_finite() || !rec.grad_norm.is_finite() {
            // Unrecorded steps still count for non-finite detection.
            self.tracker.observe_nonfinite(step);
        }
        rec
    }

    /// [`Self::gradients`] and [`Self::apply`] in one backward pass, for steps that do not
    /// clip: nothing waits for the global norm, so each layer updates as soon as its backward
    /// products are done, while W and dW are still in cache, instead of in a pass of its own
    /// that reads every layer's W and dW again. A recorded update measures the gradients.
    fn gradients_updating(&mut self, record: bool, hist: bool) -> StepRecord {
        let batch_loss = self.forward_loss(record);
        let params = self.step_params(self.lr(), 1.0);
        let (opt, slots_w, slots_b) = (self.spec.optimizer, &mut self.slots_w, &mut self.slots_b);
        // Reused step after step: the step allocates nothing for it.
        let updates = &mut self.updates;
        updates.resize(slots_w.len(), LayerUpdate::default());
        self.pass.backward_updating(&mut self.net, record, |l, layer, gw, gb, wt| {
            let parts = ((((layer, &mut slots_w[l]), &mut slots_b[l]), (gw, gb)), wt);
            updates[l] = update_layer(opt, params, record, record, parts);
        });
        let mut rec = self.gradient_record(batch_loss, record, false, hist);
        self.record_update(&mut rec, &self.updates, record);
        rec
    }

    /// Measures the gradients on the next batch without updating anything: what a probe
    /// reports. `update_ratio` is 0 and `weight_norm` the current one.
    pub fn measure(&mut self) -> StepRecord {
        let mut rec = self.gradients(true, true, true);
        for (s, layer) in rec.layers.iter_mut().zip(&self.net.layers) {
            s.weight_norm = sumsq(layer.w.as_slice().expect("contiguous")).sqrt();
        }
        rec
    }

    /// Forward, loss and backward on the next batch, and the statistics of what they computed;
    /// with `record` but not `grad_stats`, the gradients' own statistics and the global norm
    /// are left for [`Self::apply`] to measure.
    fn gradients(&mut self, record: bool, grad_stats: bool, hist: bool) -> StepRecord {
        let batch_loss = self.forward_loss(record);
        self.pass.backward(&self.net, record);
        self.gradient_record(batch_loss, record, grad_stats, hist)
    }

    /// The forward pass and the loss on the next batch, which writes the output layer's dL/da.
    fn forward_loss(&mut self, record: bool) -> BatchLoss {
        self.next_batch();
        self.pass.forward(&self.net, record);
        let out = self.pass.a.last().expect("output layer").view();
        let da = self.pass.da.last_mut().expect("output layer");
        let batch_loss = self.spec.loss.eval(out, &self.labels, Some(da.view_mut()));
        self.last_train = batch_loss;
        batch_loss
    }

    /// The learning rate of the step about to be taken.
    fn lr(&self) -> f64 {
        self.spec.schedule.lr(self.spec.lr, self.step, self.spec.steps)
    }

    fn step_params(&self, lr: f64, grad_scale: f64) -> StepParams {
        // Adam's bias correction counts the optimizer's own steps (a fork may switch to it).
        let t = self.step + 1 - self.optimizer_since;
        StepParams { lr, weight_decay: self.spec.weight_decay, grad_scale, t }
    }

    /// The record of a step whose backward pass is done: what the passes measured, and (see
    /// [`Self::gradients`]) the gradients' statistics.
    fn gradient_record(&self, batch_loss: BatchLoss, record: bool, grad_stats: bool, hist: bool) -> StepRecord {
        let n_layers = self.net.layers.len();
        let mut layers = vec![LayerStats::default(); if record { n_layers } else { 0 }];
        let mut total_sumsq = 0.0;
        if record {
            for (l, s) in layers.iter_mut().enumerate() {
                if grad_stats {
                    let gw = magnitudes(self.pass.dw[l].as_slice().expect("contiguous"));
                    let gb = magnitudes(self.pass.db[l].as_slice().expect("contiguous"));
                    total_sumsq += set_grad_stats(s, &gw, &gb);
                }
                let cells = self.pass.a[l].len();
                let out = self.pass.outputs[l];
                let act = Moments { n: cells, sum: out.sum, sumsq: out.sumsq, ..Moments::default() };
                s.err_norm = self.pass.errors[l].sumsq.sqrt();
                s.act_mean = act.mean();
                s.act_std = act.std();
                s.saturated = self.pass.errors[l].saturated as f64 / cells.max(1) as f64;
                let units = self.pass.a[l].ncols();
                s.dead = if units == 0 { 0.0 } else { out.dead_units as f64 / units as f64 };
            }
        } else {
            for l in 0..n_layers {
                total_sumsq += sumsq(self.pass.dw[l].as_slice().expect("contiguous"))
                    + sumsq(self.pass.db[l].as_slice().expect("contiguous"));
            }
        }
        let histograms = if hist {
            self.pass.dw.iter().map(|g| Histogram::of(g.as_slice().expect("contiguous"))).collect()
        } else {
            Vec::new()
        };
        StepRecord {
            step: self.step,
            loss: batch_loss.loss(),
            accuracy: batch_loss.accuracy(),
            lr: self.lr(),
            grad_norm: total_sumsq.sqrt(),
            layers,
            histograms,
        }
    }

    /// The optimizer's update from the gradients in the pass buffers; with `grad_stats`, also
    /// the gradient statistics and global norm [`Self::gradients`] left out.
    fn apply(&mut self, rec: &mut StepRecord, grad_stats: bool) {
        let grad_scale = match self.spec.clip_norm {
            Some(c) if rec.grad_norm > c => c / rec.grad_norm,
            _ => 1.0,
        };
        let params = self.step_params(rec.lr, grad_scale);
        let (opt, record) = (self.spec.optimizer, !rec.layers.is_empty());
        // Layers update independently, so wide nets on several threads update them side by
        // side; each layer's sums are the same either way.
        let update = |parts: LayerParts<'_, F>| update_layer(opt, params, record, grad_stats, parts);
        let parallel = self.net.layers_in_parallel();
        let (dw, db, wt) = self.pass.update_buffers();
        let norms: Vec<_> = if parallel {
            let parts = self.net.layers.par_iter_mut().zip(&mut self.slots_w).zip(&mut self.slots_b);
            parts.zip(dw.par_iter().zip(db)).zip(wt).map(update).collect()
        } else {
            let parts = self.net.layers.iter_mut().zip(&mut self.slots_w).zip(&mut self.slots_b);
            parts.zip(dw.iter().zip(db)).zip(wt).map(update).collect()
        };
        self.record_update(rec, &norms, grad_stats);
    }

    /// Fills a recorded step's weight norms and update ratios from what each layer's update
    /// measured; with `grad_stats`, also the gradient statistics and the global norm.
    fn record_update(&self, rec: &mut StepRecord, norms: &[LayerUpdate], grad_stats: bool) {
        if rec.layers.is_empty() {
            return;
        }
        let mut total_sumsq = 0.0;
        for (l, (s, &(n, nb))) in rec.layers.iter_mut().zip(norms).enumerate() {
            s.weight_norm = n.weight_sumsq.sqrt();
            s.update_ratio = if n.weight_sumsq > 0.0 { (n.update_sumsq / n.weight_sumsq).sqrt() } else { 0.0 };
            if let Some(nb) = nb {
                let (gw, gb) =
                    (self.pass.dw[l].as_slice().expect("contiguous"), self.pass.db[l].as_slice().expect("contiguous"));
                total_sumsq += set_grad_stats(s, &grad_magnitudes(&n, gw), &grad_magnitudes(&nb, gb));
            }
        }
        if grad_stats {
            rec.grad_norm = total_sumsq.sqrt();
        }
    }

    /// True once a non-finite loss or gradient has been seen.
    pub fn saw_nonfinite(&self) -> bool {
        self.tracker.nonfinite_at().is_some()
    }

    /// Loss and accuracy on the held-out split at the current parameters.
    pub fn evaluate(&self) -> EvalRecord {
        let mut total = BatchLoss::default();
        let n = self.test_y.len();
        let mut kept = self.eval_pass.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pass = &mut *kept;
        for start in (0..n).step_by(EVAL_CHUNK) {
            let end = (start + EVAL_CHUNK).min(n);
            if pass.as_ref().is_none_or(|p| p.batch() != end - start) {
                *pass = Some(Pass::forward_only(&self.net, end - start));
            }
            let p = pass.as_mut().expect("just made");
            p.x.assign(&self.test_x.slice_axis(Axis(0), (start..end).into()));
            p.forward(&self.net, false);
            total.add(self.spec.loss.eval(p.output(), &self.test_y[start..end], None));
        }
        // A wide net's evaluation buffers are large next to what zeroing them costs it: not kept.
        if pass.as_ref().is_some_and(|p| p.x.len() + p.z.iter().chain(&p.a).map(|v| v.len()).sum::<usize>() > EVAL_KEEP)
        {
            *pass = None;
        }
        EvalRecord { step: self.step, test_loss: total.loss(), test_accuracy: total.accuracy() }
    }

    /// How a raw example becomes the network's input: the training split's standardization,
    /// or None when the spec does not standardize.
    pub fn input_map(&self) -> Option<&Standardization> {
        self.input_map.as_ref()
    }

    /// The network's outputs at the current parameters for raw examples (one a row, mapped
    /// as the training data was).
    pub fn predict(&self, raw: &Array2<f32>) -> Result<Array2<F>, FieldError> {
        let dim = self.train_x.ncols();
        if raw.ncols() != dim {
            return Err(FieldError::new(
                "inputs",
                format!("rows of {} values; the job's inputs have {dim}", raw.ncols()),
            ));
        }
        let mut x = raw.clone();
        if let Some(map) = &self.input_map {
            map.apply(&mut x);
        }
        let outputs = self.net.layers.last().map_or(dim, |l| l.fan_out());
        let mut out = Array2::zeros((x.nrows(), outputs));
        for start in (0..x.nrows()).step_by(EVAL_CHUNK) {
            let end = (start + EVAL_CHUNK).min(x.nrows());
            let mut pass = Pass::forward_only(&self.net, end - start);
            pass.x.assign(&x.slice_axis(Axis(0), (start..end).into()).mapv(|v| F::of(v as f64)));
            pass.forward(&self.net, false);
            out.slice_axis_mut(Axis(0), (start..end).into()).assign(&pass.output());
        }
        Ok(out)
    }

    /// The share of the most frequent class in the test split: the accuracy of always guessing.
    pub fn chance_accuracy(&self) -> f64 {
        let mut counts = vec![0usize; self.classes];
        for &y in &self.test_y {
            counts[y as usize] += 1;
        }
        *counts.iter().max().unwrap_or(&0) as f64 / self.test_y.len().max(1) as f64
    }

    pub fn summary(&self, final_eval: &EvalRecord) -> Summary {
        Summary {
            steps_done: self.step,
            train_loss: self.last_train.loss(),
            train_accuracy: self.last_train.accuracy(),
            test_loss: final_eval.test_loss,
            test_accuracy: final_eval.test_accuracy,
            verdict: self.tracker.verdict(&self.spec.thresholds, final_eval.test_accuracy, self.chance_accuracy()),
            stopped_early: self.step < self.spec.steps,
        }
    }

    /// Runs to the end (or to the first non-finite value, if the spec says so), evaluating at
    /// step 0, every `eval_every` steps and at the end. `on_event` returning false stops early.
    /// A trainer restored from a checkpoint goes on from its step (its evaluation there was
    /// reported before the checkpoint).
    pub fn run(&mut self, mut on_event: impl FnMut(Event<'_, F>) -> bool) -> Summary {
        let mut last_eval = None;
        if self.step == 0 {
            let eval = self.evaluate();
            last_eval = Some(eval);
            if !on_event(Event::Eval(&eval)) {
                return self.summary(&eval);
            }
        }
        while !self.finished() {
            let rec = self.step();
            let go_on = on_event(Event::Step(&rec));
            let stop_nonfinite = self.spec.stop_on_nonfinite && self.saw_nonfinite();
            let due = self.spec.eval_every > 0 && self.step.is_multiple_of(self.spec.eval_every);
            if due || self.finished() || stop_nonfinite || !go_on {
                let eval = self.evaluate();
                last_eval = Some(eval);
                on_event(Event::Eval(&eval));
            }
            if stop_nonfinite || !go_on || !on_event(Event::Settled(self)) {
                break;
            }
        }
        let last_eval = last_eval.unwrap_or_else(|| self.evaluate());
        self.summary(&last_eval)
    }
}

pub enum Event<'a, F: Real> {
    Step(&'a StepRecord),
    Eval(&'a EvalRecord),
    /// A step and its evaluation are reported: the trainer's state is one a run can resume
    /// from ([`Trainer::state`]).
    Settled(&'a Trainer<F>),
}
