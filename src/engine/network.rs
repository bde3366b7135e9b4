//! Fully connected networks: parameters, and the forward and backward pass over a batch.
//!
//! Rows are examples: a layer computes Z = A_prev W + b with W of shape fan_in x fan_out, then
//! A = phi(Z). All buffers of a pass are allocated once per batch size and reused every step.

use ndarray::{Array1, Array2, ArrayView2};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Real;
use super::activation::{Activation, Columns, ErrorStats, OutputStats, backward_layer, forward_layer};
use super::gemm::{matmul, transpose_into};
use super::init::Init;

#[derive(Clone, Debug)]
pub struct Layer<F> {
    pub w: Array2<F>,
    pub b: Array1<F>,
    pub act: Activation,
}

impl<F: Real> Layer<F> {
    pub fn fan_in(&self) -> usize {
        self.w.nrows()
    }
    pub fn fan_out(&self) -> usize {
        self.w.ncols()
    }

    /// Whether the input gradient dZ·Wᵀ may read W itself rather than a transposed copy: from
    /// 128x128 weights on, where packing W in cache-sized blocks can cost less than a whole
    /// transpose, and whether it does is timed per trainer ([`TransposeTuner`]). Below that the
    /// copy pays (2% of a step at width 64 on an Intel Xeon) and every layer keeps one.
    ///
    /// [`TransposeTuner`]: super::tuning::TransposeTuner
    pub fn is_wide(&self) -> bool {
        self.w.len() >= WIDE_WEIGHTS
    }
}

/// See [`Layer::is_wide`].
const WIDE_WEIGHTS: usize = 128 * 128;

/// A multilayer perceptron: hidden layers with one activation, then an output layer with its own.
#[derive(Clone, Debug)]
pub struct Mlp<F> {
    pub layers: Vec<Layer<F>>,
}

impl<F: Real> Mlp<F> {
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        act: Activation,
        output_act: Activation,
        init: &Init,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut dims = vec![input];
        dims.extend_from_slice(hidden);
        dims.push(output);
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(l, d)| {
                let (w, b) = init.sample(d[0], d[1], rng);
                let act = if l == hidden.len() { output_act } else { act };
                Layer { w, b, act }
            })
            .collect();
        Mlp { layers }
    }

    /// Input width, then each layer's output width.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.layers[0].fan_in()];
        d.extend(self.layers.iter().map(|l| l.fan_out()));
        d
    }

    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.w.len() + l.b.len()).sum()
    }

    /// Hidden layers: every layer but the output one.
    pub fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    /// Whether per-layer work that is independent across layers (updates, transposes) should be
    /// spread over the rayon pool's threads: only when there are several and the net is big
    /// enough to pay for the tasks.
    pub fn layers_in_parallel(&self) -> bool {
        rayon::current_num_threads() > 1 && self.param_count() >= PAR_MIN_PARAMS
    }

    /// Whether any layer's input gradient may read W itself (see [`Layer::is_wide`]); the
    /// first layer has no input gradient.
    pub fn has_wide_layers(&self) -> bool {
        self.layers.iter().skip(1).any(Layer::is_wide)
    }
}

/// The buffers of one forward and backward pass over batches of a fixed size.
#[derive(Clone, Debug)]
pub struct Pass<F> {
    /// The batch's inputs (batch x input width); fill it before [`Pass::forward`].
    pub x: Array2<F>,
    /// Pre-activations per layer.
    pub z: Vec<Array2<F>>,
    /// Outputs phi(z) per layer.
    pub a: Vec<Array2<F>>,
    /// dL/da per layer (the last one is written by the loss).
    pub da: Vec<Array2<F>>,
    /// dL/dz per layer.
    pub dz: Vec<Array2<F>>,
    pub dw: Vec<Array2<F>>,
    pub db: Vec<Array1<F>>,
    /// Per layer, Wᵀ (fan_out x fan_in) for the input gradient dZ·Wᵀ, or empty where it reads
    /// W itself: the first layer, which has no input gradient, and the wide layers while
    /// `wide_copies` is off.
    wt: Vec<Array2<F>>,
    /// Whether the wide layers (see [`Layer::is_wide`]) keep copies in `wt`.
    wide_copies: bool,
    /// Whether `wt` holds the transposes of the weights as they are now (see
    /// [`Pass::update_buffers`]); [`Pass::backward`] transposes them itself when not.
    wt_current: bool,
    /// Per layer, what the last recording forward pass measured of the outputs.
    pub outputs: Vec<OutputStats>,
    /// Per layer, what the last backward pass measured of dL/dz (the saturation count always,
    /// the sum of squares when recording).
    pub errors: Vec<ErrorStats>,
    cols: Columns<F>,
}

/// Below this many parameters, per-layer work stays on the calling thread: a rayon task costs
/// a few microseconds.
const PAR_MIN_PARAMS: usize = 1 << 15;

/// A unit counts as saturated where |phi'(z)| is below this fraction of phi's largest derivative.
pub const SATURATION_FRACTION: f64 = 0.01;

impl<F: Real> Pass<F> {
    pub fn new(net: &Mlp<F>, batch: usize) -> Self {
        Pass {
            da: Self::per_layer(net, batch),
            dz: Self::per_layer(net, batch),
            dw: net.layers.iter().map(|l| Array2::zeros(l.w.raw_dim())).collect(),
            db: net.layers.iter().map(|l| Array1::zeros(l.b.raw_dim())).collect(),
            wt: net
                .layers
                .iter()
                .enumerate()
                .map(|(l, layer)| Array2::zeros(Self::transpose_shape(l, layer, true)))
                .collect(),
            wide_copies: true,
            errors: vec![ErrorStats::default(); net.layers.len()],
            ..Self::forward_only(net, batch)
        }
    }

    /// A pass for the forward direction only (evaluation, prediction): the inputs, and each
    /// layer's pre-activations and outputs, without the gradient buffers a training pass zeroes
    /// as well (about half of its memory). It cannot go [`Self::backward`].
    pub fn forward_only(net: &Mlp<F>, batch: usize) -> Self {
        Pass {
            x: Array2::zeros((batch, net.layers[0].fan_in())),
            z: Self::per_layer(net, batch),
            a: Self::per_layer(net, batch),
            da: Vec::new(),
            dz: Vec::new(),
            dw: Vec::new(),
            db: Vec::new(),
            wt: Vec::new(),
            wide_copies: false,
            wt_current: false,
            outputs: vec![OutputStats::default(); net.layers.len()],
            errors: Vec::new(),
            cols: Columns::default(),
        }
    }

    /// The shape of layer `l`'s Wᵀ buffer: empty where the layer has none.
    fn transpose_shape(l: usize, layer: &Layer<F>, wide_copies: bool) -> (usize, usize) {
        if l > 0 && (wide_copies || !layer.is_wide()) { (layer.fan_out(), layer.fan_in()) } else { (0, 0) }
    }

    /// Whether the wide layers' input gradients read transposed copies of W (the default) or W
    /// itself. Same values, same order, same bits; only the speed differs, by CPU (see
    /// [`TransposeTuner`](super::tuning::TransposeTuner)). Turning the copies on makes the next
    /// backward pass transpose again; turning them off frees them.
    pub fn set_wide_copies(&mut self, net: &Mlp<F>, on: bool) {
        if on == self.wide_copies || self.dz.is_empty() {
            return;
        }
        self.wide_copies = on;
        for (l, (layer, wt)) in net.layers.iter().zip(&mut self.wt).enumerate() {
            if layer.is_wide() {
                *wt = Array2::zeros(Self::transpose_shape(l, layer, on));
            }
        }
        if on {
            self.wt_current = false;
        }
    }

    /// One batch x fan_out buffer per layer.
    fn per_layer(net: &Mlp<F>, batch: usize) -> Vec<Array2<F>> {
        net.layers.iter().map(|l| Array2::zeros((batch, l.fan_out()))).collect()
    }

    /// What an optimizer step needs of the pass: the gradients (dW, db per layer), and the Wᵀ
    /// buffers to refresh, each right after its layer's update with [`refresh_transpose`]:
    /// while the new weights are still in cache the transpose takes half the time it does cold
    /// at the start of the next backward pass (measured at 32x256x128 when that width kept
    /// its transposes: 3.4% of a step instead of 6.5%).
    /// The pass then takes the transposes as current.
    #[allow(clippy::type_complexity)]
    pub fn update_buffers(&mut self) -> (&[Array2<F>], &[Array1<F>], &mut [Array2<F>]) {
        self.wt_current = true;
        (&self.dw, &self.db, &mut self.wt)
    }

    /// The weights changed other than by an optimizer step (a restored checkpoint): the next
    /// backward pass transposes them again.
    pub fn weights_changed(&mut self) {
        self.wt_current = false;
    }

    pub fn batch(&self) -> usize {
        self.x.nrows()
    }

    /// See [`Self::set_wide_copies`].
    pub fn wide_copies(&self) -> bool {
        self.wide_copies
    }

    /// The network's outputs after [`Pass::forward`].
    pub fn output(&self) -> ArrayView2<'_, F> {
        self.a.last().expect("a network has an output layer").view()
    }

    /// The forward pass; with `record`, also measures each layer's outputs into `outputs`.
    pub fn forward(&mut self, net: &Mlp<F>, record: bool) {
        for (l, layer) in net.layers.iter().enumerate() {
            let (before, rest) = self.a.split_at_mut(l);
            let input = if l == 0 { self.x.view() } else { before[l - 1].view() };
            let z = &mut self.z[l];
            matmul(input, layer.w.view(), F::zero(), z.view_mut());
            let (b, a) = (layer.b.as_slice().expect("contiguous bias"), slice_mut(&mut rest[0]));
            self.outputs[l] = if record {
                forward_layer::<F, true>(&layer.act, slice_mut(z), b, a, &mut self.cols)
            } else {
                forward_layer::<F, false>(&layer.act, slice_mut(z), b, a, &mut self.cols)
            };
        }
    }

    /// Back-propagates from dL/da of the output layer, which the loss has written into
    /// `self.da.last_mut()`, filling dz, dw, db and `errors` (with `record`, their norms too).
    pub fn backward(&mut self, net: &Mlp<F>, record: bool) {
        self.refresh_stale_transposes(net);
        for l in (0..net.layers.len()).rev() {
            self.backward_through(&net.layers[l], l, record);
        }
    }

    /// [`Self::backward`], with each layer's update right after its backward products, which
    /// have just read W and written dW: `update` gets the layer's index, the layer and what
    /// [`Self::update_buffers`] would give of it (dW, db, the Wᵀ buffer to refresh). The
    /// layer below reads nothing of this layer but the input gradient, computed before the
    /// update, so the results are those of the whole backward pass followed by the updates.
    pub fn backward_updating(
        &mut self,
        net: &mut Mlp<F>,
        record: bool,
        mut update: impl FnMut(usize, &mut Layer<F>, &Array2<F>, &Array1<F>, &mut Array2<F>),
    ) {
        self.refresh_stale_transposes(net);
        for l in (0..net.layers.len()).rev() {
            self.backward_through(&net.layers[l], l, record);
            update(l, &mut net.layers[l], &self.dw[l], &self.db[l], &mut self.wt[l]);
        }
        self.wt_current = true;
    }

    /// Every Wᵀ the input gradients need, unless the last update left them current.
    fn refresh_stale_transposes(&mut self, net: &Mlp<F>) {
        assert_eq!(self.dz.len(), net.layers.len(), "a forward-only pass has no gradient buffers");
        if self.wt_current {
            return;
        }
        // Wide nets on several threads do them side by side, as they are otherwise the only
        // serial part of the pass.
        let transpose = |(layer, wt): (&Layer<F>, &mut Array2<F>)| refresh_transpose(layer, wt);
        if net.layers_in_parallel() {
            net.layers.par_iter().zip(&mut self.wt).for_each(transpose);
        } else {
            net.layers.iter().zip(&mut self.wt).for_each(transpose);
        }
        self.wt_current = true;
    }

    /// Layer `l`'s share of the backward pass: dz and db from the dL/da above, then dW and
    /// (below the first layer) the input gradient dL/da of the layer below.
    fn backward_through(&mut self, layer: &Layer<F>, l: usize, record: bool) {
        let sat_below = F::of(SATURATION_FRACTION * layer.act.max_derivative());
        let (z, a, da) = (slice(&self.z[l]), slice(&self.a[l]), slice(&self.da[l]));
        let (dz, db) = (slice_mut(&mut self.dz[l]), self.db[l].as_slice_mut().expect("contiguous bias gradient"));
        self.errors[l] = if record {
            backward_layer::<F, true>(&layer.act, z, a, da, dz, db, sat_below, &mut self.cols)
        } else {
            backward_layer::<F, false>(&layer.act, z, a, da, dz, db, sat_below, &mut self.cols)
        };
        let input = if l == 0 { self.x.view() } else { self.a[l - 1].view() };
        matmul(input.t(), self.dz[l].view(), F::zero(), self.dw[l].view_mut());
        if l > 0 {
            let w_t = if self.wt[l].is_empty() { layer.w.t() } else { self.wt[l].view() };
            matmul(self.dz[l].view(), w_t, F::zero(), self.da[l - 1].view_mut());
        }
    }
}

/// Writes a layer's Wᵀ into its buffer of [`Pass::update_buffers`]: nothing where the
/// buffer is empty (the input gradient reads W itself; see `Pass::transpose_shape`).
pub fn refresh_transpose<F: Real>(layer: &Layer<F>, wt: &mut Array2<F>) {
    if !wt.is_empty() {
        transpose_into(layer.w.view(), wt.view_mut());
    }
}

fn slice<F>(a: &Array2<F>) -> &[F] {
    a.as_slice().expect("pass buffers are contiguous")
}

fn slice_mut<F>(a: &mut Array2<F>) -> &mut [F] {
    a.as_slice_mut().expect("pass buffers are contiguous")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::loss::Loss;
    use crate::engine::rng::{Purpose, stream};

    fn loss_of(net: &Mlp<f64>, x: &Array2<f64>, y: &[u32], loss: Loss) -> f64 {
        let mut p = Pass::forward_only(net, x.nrows());
        p.x.assign(x);
        p.forward(net, false);
        loss.eval(p.output(), y, None).loss()
    }

    fn param_mut(net: &mut Mlp<f64>, l: usize, idx: usize) -> &mut f64 {
        let nw = net.layers[l].w.len();
        if idx < nw { &mut net.layers[l].w.as_slice_mut().unwrap()[idx] } else { &mut net.layers[l].b[idx - nw] }
    }

    /// Whole-network gradients against central differences in f64, for every activation and
    /// both losses, through a net deep enough that errors would compound.
    pub(crate) fn check_network_gradients(act: Activation, out_act: Activation, loss: Loss) {
        let mut rng = stream(11, Purpose::Init);
        // sigma_b > 0 so biases are non-zero and every pre-activation sits off the kinks.
        let init = Init::Custom { sigma_w: 1.3, sigma_b: 0.3 };
        let mut net = Mlp::<f64>::new(5, &[7, 6, 4], 3, act, out_act, &init, &mut rng);
        let x = Array2::from_shape_fn((9, 5), |(i, j)| ((i * 5 + j) as f64 * 0.731).sin() * 1.5);
        let y: Vec<u32> = (0..9).map(|i| (i % 3) as u32).collect();
        let mut p = Pass::new(&net, 9);
        p.x.assign(&x);
        p.forward(&net, false);
        let out = p.output().to_owned();
        let da_last = p.da.last_mut().unwrap();
        loss.eval(out.view(), &y, Some(da_last.view_mut()));
        p.backward(&net, false);
        let h = 1e-6;
        for l in 0..net.layers.len() {
            for idx in 0..net.layers[l].w.len() + net.layers[l].b.len() {
                let nw = net.layers[l].w.len();
                let analytic = if idx < nw { p.dw[l].as_slice().unwrap()[idx] } else { p.db[l][idx - nw] };
                let orig = *param_mut(&mut net, l, idx);
                *param_mut(&mut net, l, idx) = orig + h;
                let up = loss_of(&net, &x, &y, loss);
                *param_mut(&mut net, l, idx) = orig - h;
                let down = loss_of(&net, &x, &y, loss);
                *param_mut(&mut net, l, idx) = orig;
                let fd = (up - down) / (2.0 * h);
                let tol = 1e-6 * (1.0 + fd.abs().max(analytic.abs()));
                assert!(
                    (fd - analytic).abs() < tol,
                    "{act}/{out_act}/{loss}: layer {l} param {idx}: fd {fd} vs analytic {analytic}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences_for_every_activation_and_loss() {
        for name in Activation::NAMES {
            let act: Activation = name.parse().unwrap();
            for loss in [Loss::CrossEntropy, Loss::Mse] {
                check_network_gradients(act, Activation::Identity, loss);
            }
        }
        // The seed post's setting: a sigmoid on the output layer only, with squared error.
        check_network_gradients(Activation::Tanh, Activation::Logistic, Loss::Mse);
    }
}
