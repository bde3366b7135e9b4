//! Verdicts on real runs (digits, width 64, 1,350 SGD steps at lr 0.1, batch 32, a quarter held
//! out, LeCun init unless said): a net whose forward signal collapses with depth is not called
//! healthy, and nets that learn are.

use gradlab::engine::activation::Activation;
use gradlab::engine::init::Init;
use gradlab::engine::spec::JobSpec;
use gradlab::engine::train::{Summary, Trainer};
use gradlab::engine::verdict::Verdict;
use rayon::prelude::*;

fn run(activation: Activation, depth: usize, init: Init) -> Summary {
    let spec = JobSpec {
        activation,
        hidden: vec![64; depth],
        init,
        lr: 0.1,
        batch: 32,
        steps: 1350,
        eval_every: 0,
        dataset: "digits".into(),
        test_fraction: 0.25,
        standardize: true,
        record_every: 10,
        seed: 1,
        ..JobSpec::default()
    };
    Trainer::<f32>::new(&spec).expect("valid spec").run(|_| true)
}

/// Runs the cases on rayon's pool (each job is single-threaded at this width).
fn verdicts(cases: &[(Activation, usize, Init)]) -> Vec<Summary> {
    cases.par_iter().map(|(a, d, i)| run(*a, *d, *i)).collect()
}

#[test]
fn a_collapsing_forward_signal_is_not_healthy() {
    let cases = [(Activation::Ramp, 16, Init::LecunNormal), (Activation::Logmin, 16, Init::LecunNormal)];
    for ((act, ..), s) in cases.iter().zip(verdicts(&cases)) {
        let v = &s.verdict;
        assert!(matches!(v.verdict, Verdict::Collapsing | Verdict::NotLearning), "{act}: {v:?}");
        if v.verdict == Verdict::Collapsing {
            assert!(v.reason.contains("forward signal collapses"), "{}", v.reason);
        }
    }
}

#[test]
fn nets_that_learn_stay_healthy() {
    let mut cases: Vec<(Activation, usize, Init)> = [Activation::Tanh, Activation::Softsign, Activation::Semisigmoid]
        .into_iter()
        .map(|a| (a, 16, Init::LecunNormal))
        .collect();
    // Ramp at its critical point.
    cases.push((Activation::Ramp, 16, Init::HeNormal));
    for name in Activation::NAMES.iter().take(9) {
        cases.push((name.parse().unwrap(), 2, Init::LecunNormal));
    }
    for ((act, depth, init), s) in cases.iter().zip(verdicts(&cases)) {
        assert_eq!(s.verdict.verdict, Verdict::Healthy, "{act} x{depth} {init:?}: {:?}", s.verdict);
    }
}
