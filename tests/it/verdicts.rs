//! Verdicts on real runs (digits, width 64, 1,350 SGD steps at lr 0.1, batch 32, a quarter held
//! out, LeCun init unless said): a net whose forward signal collapses with depth is not called
//! healthy, and nets that learn are.

use gradlab::api::pb;
use gradlab::engine::activation::Activation;
use gradlab::engine::init::Init;
use gradlab::engine::spec::JobSpec;
use gradlab::engine::theory;
use gradlab::engine::train::{Summary, Trainer};
use gradlab::engine::verdict::Verdict;
use rayon::prelude::*;

use crate::common::TestServer;

fn spec(activation: Activation, depth: usize, init: Init) -> JobSpec {
    JobSpec {
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
    }
}

fn run(activation: Activation, depth: usize, init: Init) -> Summary {
    Trainer::<f32>::new(&spec(activation, depth, init)).expect("valid spec").run(|_| true)
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

/// What the collapsing verdict reads is what mean field predicts: for the ramp the activation
/// spread is proportional to sqrt(q), so the last hidden layer's over the first's is
/// sqrt(q_D / q_1), 2^-7.5 at 16 layers and sigma_w = 1.
#[test]
fn the_collapse_at_init_follows_the_mean_field_line() {
    for (init, collapses) in [(Init::LecunNormal, true), (Init::HeNormal, false)] {
        let mut t = Trainer::<f32>::new(&spec(Activation::Ramp, 16, init)).unwrap();
        let layers = t.step().layers;
        let measured = layers[15].act_std / layers[0].act_std;
        let p = theory::for_spec(t.spec(), t.net().dims()[0], t.input_second_moment()).unwrap();
        let predicted = (p.layers[15].q / p.layers[0].q).sqrt();
        assert!(
            measured / predicted > 0.5 && measured / predicted < 2.0,
            "{init:?}: measured {measured:.3e}, mean field {predicted:.3e}"
        );
        assert_eq!(measured < gradlab::engine::verdict::DEFAULT_COLLAPSE_RATIO, collapses, "{init:?}: {measured:.3e}");
    }
}

/// The whole `seed-claims` preset (1,296 jobs; under a minute on two cores in a release build):
/// no cell whose mean held-out accuracy is below 0.5 is called healthy by most of its jobs.
/// `cargo test --release --test it -- --ignored seed_claims`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes: the full seed-claims sweep"]
async fn seed_claims_has_no_healthy_majority_below_half_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = TestServer::start(&dir.path().join("g.db"), workers).await;
    let mut client = server.client().await;
    let presets = client.list_presets(pb::ListPresetsRequest {}).await.unwrap().into_inner().presets;
    let spec = presets.into_iter().find(|p| p.name == "seed-claims").unwrap().spec.unwrap();
    let sweep = client.submit_sweep(spec).await.unwrap().into_inner();
    crate::sweeps::watch_sweep(&mut client, sweep.id).await;
    let report = client
        .get_sweep_report(pb::SweepReportRequest { sweep_id: sweep.id, margin: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.cells.len(), 9 * 8 * 2);
    let mut collapsing = 0;
    for c in &report.cells {
        let name: Vec<&str> = c.values.iter().map(|v| v.value.as_str()).collect();
        let acc = c.test_accuracy.as_ref().expect("every cell finished").mean;
        let total: u32 = c.verdicts.values().sum();
        let healthy = c.verdicts.get("healthy").copied().unwrap_or(0);
        assert!(acc >= 0.5 || 2 * healthy <= total, "{name:?}: accuracy {acc:.3}, verdicts {:?}", c.verdicts);
        collapsing += c.verdicts.get("collapsing").copied().unwrap_or(0);
    }
    assert!(collapsing > 0, "deep ramp and logmin nets collapse at LeCun and Xavier init");
    server.stop().await;
}
