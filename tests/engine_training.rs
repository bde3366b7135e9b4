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
fn fingerprint<F: Real>(spec: &JobSpec) -> (Vec<u64>, Summary) {
    let mut t = Trainer::<F>::new(spec).expect("valid spec");
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

#[test]
fn a_diverging_run_ends_as_exploding_without_crashing() {
    let spec = JobSpec {
        activation: Activation::Ramp,
        hidden: vec![64; 6],
        init: Init::Custom { sigma_w: 3.0, sigma_b: 0.0 },
        lr: 10.0,
        steps: 200,
        stop_on_nonfinite: true,
        ..JobSpec::default()
    };
    let (_, s) = fingerprint::<f32>(&spec);
    assert_eq!(s.verdict.verdict, Verdict::Exploding, "{:?}", s.verdict);
    assert!(s.stopped_early || s.verdict.nonfinite_seen || s.verdict.reason.contains("grew"), "{:?}", s);
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
