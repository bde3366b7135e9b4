//! The elementwise kernels of a training step, per element: each activation's forward and
//! backward pass, the recording reductions and the optimizer's update, on one layer's worth of
//! values (64 x 64, as in the smallest train_step config, where these kernels weigh most
//! against the products).
//!
//!     cargo bench --bench kernels
//!     cargo bench --bench kernels -- 'forward/tanh'

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gradlab::engine::activation::{Activation, Columns, backward_layer, forward_layer};
use gradlab::engine::gemm::transpose_into;
use gradlab::engine::optim::{Optimizer, Slot, StepParams};
use gradlab::engine::stats::{moments, sumsq};
use gradlab::runner::sweep::POST_ACTIVATIONS;
use ndarray::Array2;

const N: usize = 64 * 64;

/// Pre-activations spread as a trained layer's are: mostly within a few units of 0, some tails.
fn inputs() -> Vec<f32> {
    (0..N).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 6.0 + if i % 97 == 0 { 30.0 } else { 0.0 }).collect()
}

fn benches(c: &mut Criterion) {
    let z = inputs();
    let grad = inputs();
    let mut a = vec![0f32; N];
    let mut out = vec![0f32; N];
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(N as u64));
    for name in Activation::NAMES {
        let act: Activation = name.parse().expect("a known name");
        g.bench_function(*name, |b| b.iter(|| act.forward(black_box(&z), black_box(&mut a))));
    }
    g.finish();
    // The training step's backward pass over a layer of 64 units (derivative, dz, bias
    // gradient, saturation count), not measuring.
    let mut cols = Columns::default();
    let mut db = vec![0f32; 64];
    let mut g = c.benchmark_group("backward");
    g.throughput(Throughput::Elements(N as u64));
    for name in Activation::NAMES {
        let act: Activation = name.parse().expect("a known name");
        act.forward(&z, &mut a);
        let sat = 0.01 * act.max_derivative() as f32;
        g.bench_function(*name, |b| {
            b.iter(|| {
                black_box(backward_layer::<f32, false>(
                    &act,
                    &z,
                    &a,
                    black_box(&grad),
                    &mut out,
                    &mut db,
                    sat,
                    &mut cols,
                ))
            })
        });
    }
    g.finish();
    // The fused layer passes of a training step (64 units), measuring and not.
    let mut g = c.benchmark_group("layer");
    g.throughput(Throughput::Elements(N as u64));
    // Zero: the pass adds the bias into z in place, which must not drift between iterations.
    let bias = vec![0f32; 64];
    let mut zz = z.clone();
    // The sweep presets' nine, whose elementwise work is most of a 32-wide step's besides the
    // products.
    for name in POST_ACTIVATIONS {
        let act: Activation = name.parse().expect("a known name");
        g.bench_function(format!("forward/{name}"), |b| {
            b.iter(|| black_box(forward_layer::<f32, false>(&act, &mut zz, &bias, &mut a, &mut cols)))
        });
        g.bench_function(format!("forward_recording/{name}"), |b| {
            b.iter(|| black_box(forward_layer::<f32, true>(&act, &mut zz, &bias, &mut a, &mut cols)))
        });
        g.bench_function(format!("backward_recording/{name}"), |b| {
            b.iter(|| black_box(backward_layer::<f32, true>(&act, &z, &a, &grad, &mut out, &mut db, 0.01, &mut cols)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("stats");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("moments", |b| b.iter(|| black_box(moments(black_box(&z)))));
    g.bench_function("sumsq", |b| b.iter(|| black_box(sumsq(black_box(&z)))));
    g.finish();
    // One layer's optimizer update, and the same update measuring what a recorded step
    // records of it (weight and update norms, the gradient's sums).
    let mut g = c.benchmark_group("update");
    g.throughput(Throughput::Elements(N as u64));
    let p = StepParams { lr: 1e-7, weight_decay: 0.0, grad_scale: 1.0, t: 1 };
    for opt in ["sgd", "adam"] {
        let optimizer: Optimizer = opt.parse().expect("a known optimizer");
        let mut slot = Slot::new(&optimizer, N);
        let mut w = z.clone();
        g.bench_function(opt, |b| {
            b.iter(|| optimizer.update::<f32, false>(&mut w, black_box(&grad), &mut slot, p, true))
        });
        g.bench_function(format!("{opt}_measured"), |b| {
            b.iter(|| black_box(optimizer.update::<f32, true>(&mut w, black_box(&grad), &mut slot, p, true)))
        });
    }
    g.finish();
    // The weight transpose the backward pass makes for the input gradient's product.
    let mut g = c.benchmark_group("transpose");
    for n in [64, 256] {
        let w = Array2::from_shape_fn((n, n), |(i, j)| (i * n + j) as f32);
        let mut t = Array2::<f32>::zeros((n, n));
        g.throughput(Throughput::Elements((n * n) as u64));
        g.bench_function(format!("{n}x{n}"), |b| b.iter(|| transpose_into(black_box(w.view()), t.view_mut())));
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    targets = benches
}
criterion_main!(kernels);
