//! The engine end to end: training learns, runs are deterministic bit for bit whatever the
//! thread count and whatever runs beside them, and verdicts follow what happened.

use gradlab::engine::Real;
use gradlab::engine::activation::Activation;
use gradlab::engine::init::Init;
use gradlab::engine::optim::Optimizer;
use gradlab::engine::spec::JobSpec;
use gradlab::engine::train::{Event, Summary, Trainer};
use gradlab::engine::verdict::Verdict;

/// Every number a run produced, as bit patterns: step records, evaluations, final weights.
pub(crate) fn fingerprint<F: Real>(spec: &JobSpec) -> (Vec<u64>, Summary) {
    fingerprint_of(Trainer::<F>::new(spec).expect("valid spec"))
}

fn fingerprint_of<F: Real>(mut t: Trainer<F>) -> (Vec<u64>, Summary) {
    let mut bits = Vec::new();
    let summary = t.run(|e| {
        match e {
            Event::Step(r) => {
                bits.extend([r.step, r.loss.to_bits(), r.accuracy.to_bits(), r.grad_norm.to_bits()]);
                for l in &r.layers {
                    bits.extend(l.values().iter().map(|v| v.to_bits()));
                }
            }
            Event::Eval(e) => bits.extend([e.step, e.test_loss.to_bits(), e.test_accuracy.to_bits()]),
            Event::Settled(_) => {}
        }
        true
    });
    for layer in &t.net().layers {
        bits.extend(layer.w.iter().chain(layer.b.iter()).map(|v| v.f64().to_bits()));
    }
    (bits, summary)
}

fn wide_spec(seed: u64) -> JobSpec {
    // Wide enough that every product is split across threads (see engine::gemm).
    JobSpec {
        activation: Activation::Tanh,
        hidden: vec![160, 160, 160],
        init: Init::XavierNormal,
        optimizer: Optimizer::Momentum { momentum: 0.9, nesterov: true },
        lr: 0.02,
        batch: 128,
        steps: 25,
        eval_every: 10,
        dataset: "digits".into(),
        seed,
        histogram_every: 5,
        ..JobSpec::default()
    }
}

#[test]
fn same_spec_same_bits_alone_or_beside_other_jobs_on_any_thread_count() {
    let spec = wide_spec(42);
    // On one thread each layer updates right after its backward products; on four, this net
    // is big enough that its layers update side by side after the whole backward pass.
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (alone, _) = one.install(|| fingerprint::<f32>(&spec));
    assert!(alone.len() > 25 * 12 * 4, "the fingerprint covers every recorded number");

    let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let ((crowded, _), others) = four.install(|| {
        rayon::join(
            || fingerprint::<f32>(&spec),
            || {
                rayon::join(
                    || fingerprint::<f32>(&wide_spec(7)),
                    || fingerprint::<f32>(&JobSpec { activation: Activation::Ramp, ..wide_spec(42) }),
                )
            },
        )
    });
    assert_eq!(alone.len(), crowded.len());
    let first_diff = alone.iter().zip(&crowded).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "runs differ at word {first_diff:?}");
    // And the seed matters: another seed gives other bits.
    assert_ne!(alone, others.0.0);
}

#[test]
fn wide_layers_give_the_same_bits_reading_w_itself_or_a_copy() {
    let spec = JobSpec { steps: 45, ..wide_spec(5) };
    let fixed = |copies: bool| {
        let mut t = Trainer::<f32>::new(&spec).unwrap();
        t.fix_wide_copies(copies);
        fingerprint_of(t).0
    };
    let (with_copies, without) = (fixed(true), fixed(false));
    // The tuner switches both ways on the first steps and has chosen by the last.
    let tuned = Trainer::<f32>::new(&spec).unwrap();
    assert_eq!(tuned.wide_copies(), None, "160x160 layers are timed both ways");
    let tuned_bits = fingerprint_of(tuned).0;
    let mut t = Trainer::<f32>::new(&spec).unwrap();
    (0..spec.steps).for_each(|_| drop(t.step()));
    assert!(t.wide_copies().is_some(), "chosen within {} steps", spec.steps);
    for (name, run) in [("without copies", &without), ("tuned", &tuned_bits)] {
        let first_diff = with_copies.iter().zip(run.iter()).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "{name}: differs from the run with copies at word {first_diff:?}");
    }
    assert_eq!(without.len(), with_copies.len());

    let narrow = Trainer::<f32>::new(&JobSpec { hidden: vec![64, 64], ..spec }).unwrap();
    assert_eq!(narrow.wide_copies(), Some(true), "nothing to time below 128x128 weights");
}

#[test]
fn a_relu_net_learns_digits() {
    let spec = JobSpec {
        activation: Activation::Ramp,
        hidden: vec![64, 64],
        init: Init::HeNormal,
        optimizer: "adam".parse().unwrap(),
        lr: 3e-3,
        batch: 64,
        steps: 300,
        eval_every: 100,
        seed: 3,
        ..JobSpec::default()
    };
    let (_, s) = fingerprint::<f32>(&spec);
    assert!(s.test_accuracy > 0.9, "test accuracy {}", s.test_accuracy);
    assert_eq!(s.verdict.verdict, Verdict::Healthy, "{:?}", s.verdict);
    assert_eq!(s.steps_done, 300);
}

#[test]
fn random_labels_are_not_learned_and_say_so() {
    let spec = JobSpec {
        hidden: vec![32],
        dataset: "gaussian:dim=16,classes=4,n=800".into(),
        steps: 100,
        batch: 32,
        ..JobSpec::default()
    };
    let (_, s) = fingerprint::<f32>(&spec);
    assert_eq!(s.verdict.verdict, Verdict::NotLearning, "{:?}", s.verdict);
}

/// A ReLU net far past the He scale with a huge learning rate: its gradients overflow within a
/// few steps.
fn diverging_spec() -> JobSpec {
    JobSpec {
        activation: Activation::Ramp,
        hidden: vec![64; 6],
        init: Init::Custom { sigma_w: 3.0, sigma_b: 0.0 },
        lr: 10.0,
        steps: 200,
        ..JobSpec::default()
    }
}

#[test]
fn a_diverging_run_ends_as_exploding_without_crashing() {
    let spec = JobSpec { stop_on_nonfinite: true, ..diverging_spec() };
    let (_, s) = fingerprint::<f32>(&spec);
    assert_eq!(s.verdict.verdict, Verdict::Exploding, "{:?}", s.verdict);
    assert!(s.stopped_early || s.verdict.nonfinite_seen || s.verdict.reason.contains("grew"), "{:?}", s);
}

/// Without clipping the update measures the gradients it reads; with clipping they are measured
/// in a pass of their own first. A clip that never binds leaves training identical, so both ways
/// must report the same statistics (to f32 summation order), up to and including the first step
/// with a non-finite gradient norm (which does bind the clip).
#[test]
fn gradient_statistics_measured_in_the_update_match_a_separate_pass() {
    let explode = JobSpec { hidden: vec![32; 4], steps: 40, ..diverging_spec() };
    let calm = JobSpec { steps: 30, batch: 96, ..wide_spec(3) };
    let mut saw_nonfinite = false;
    for spec in [calm, explode] {
        let mut fused = Trainer::<f32>::new(&spec).expect("valid spec");
        let mut apart = Trainer::<f32>::new(&JobSpec { clip_norm: Some(f64::MAX), ..spec.clone() }).expect("valid");
        for _ in 0..spec.steps {
            let (a, b) = (fused.step(), apart.step());
            assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "the clip must not bind: step {}", a.step);
            let close = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x - y).abs() <= 1e-5 * x.abs().max(y.abs());
            let both_nan = a.grad_norm.is_nan() && b.grad_norm.is_nan();
            assert!(close(a.grad_norm, b.grad_norm) || both_nan, "step {}: {} vs {}", a.step, a.grad_norm, b.grad_norm);
            for (l, (x, y)) in a.layers.iter().zip(&b.layers).enumerate() {
                let what = format!("step {} layer {l}", a.step);
                assert_eq!(x.nonfinite, y.nonfinite, "{what}");
                for (u, v) in [(x.grad_norm, y.grad_norm), (x.bias_grad_norm, y.bias_grad_norm)]
                    .into_iter()
                    .chain([(x.grad_mean_abs, y.grad_mean_abs), (x.grad_max_abs, y.grad_max_abs)])
                {
                    assert!(close(u, v) || (u.is_nan() && v.is_nan()), "{what}: {u} vs {v}");
                }
                assert_eq!(x.grad_max_abs.to_bits(), y.grad_max_abs.to_bits(), "{what}: a maximum is exact");
            }
            if !a.grad_norm.is_finite() {
                saw_nonfinite = true;
                break;
            }
        }
    }
    // Its squares overflow f32 first: the update's sums come out infinite and the full pass
    // over the gradient takes over.
    assert!(saw_nonfinite, "the exploding run must reach a non-finite gradient norm");
}

#[test]
fn bad_specs_name_their_field() {
    let e = Trainer::<f32>::new(&JobSpec { batch: 5000, ..JobSpec::default() }).err().unwrap().to_string();
    assert!(e.contains("batch") && e.contains("training split"), "{e}");
    let e = Trainer::<f32>::new(&JobSpec { dataset: "csv:/nonexistent/x.csv".into(), ..JobSpec::default() })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/x.csv"), "{e}");
}

/// A trainer keeps its evaluation buffers from one evaluation to the next: what an earlier one
/// left in them must not reach a later one's numbers.
#[test]
fn an_evaluation_does_not_depend_on_the_ones_before_it() {
    let spec = JobSpec { hidden: vec![32; 3], steps: 100, batch: 32, ..Default::default() };
    let (mut evaluated, mut fresh) = (Trainer::<f32>::new(&spec).unwrap(), Trainer::<f32>::new(&spec).unwrap());
    for _ in 0..30 {
        evaluated.step();
        fresh.step();
    }
    let first = evaluated.evaluate();
    for _ in 0..30 {
        evaluated.step();
        fresh.step();
    }
    let bits = |e: gradlab::engine::train::EvalRecord| (e.step, e.test_loss.to_bits(), e.test_accuracy.to_bits());
    assert_ne!(bits(first), bits(evaluated.evaluate()), "the parameters moved between the two");
    assert_eq!(bits(evaluated.evaluate()), bits(fresh.evaluate()));
}
