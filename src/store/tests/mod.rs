//! Store tests against real SQLite files in a temporary directory.

use std::collections::BTreeMap;

use std::sync::Arc;

use super::SqliteStore;
use super::codec::{CHUNK_STEPS, STEP_METRICS};
use crate::engine::activation::Activation;
use crate::engine::spec::JobSpec;
use crate::engine::stats::{Histogram, LayerStats};
use crate::engine::train::{EvalRecord, StepRecord, Summary};
use crate::engine::verdict::{Verdict, VerdictReport};
use crate::runner::history::{self, HistoryPiece};
use crate::runner::{
    HistoryQuery, JobFilter, JobId, JobRecord, JobState, JobSummary, MetricBatch, Order, PageRequest, Series, Store,
    StoreError,
};

/// The worker name tests claim as.
const WORKER: &str = "test-worker";
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Claims the next job as [`WORKER`]: (job, attempt).
async fn claim(store: &dyn Store) -> (JobId, u64) {
    let c = store.claim_next(WORKER, LEASE).await.unwrap().expect("a job to claim");
    (c.record.id, c.attempt)
}

async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
    (dir, store)
}

fn spec(name: &str, activation: Activation, depth: usize, labels: &[(&str, &str)]) -> JobSpec {
    let mut s = JobSpec::default().with_depth(depth, 8);
    s.name = name.into();
    s.activation = activation;
    s.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    s
}

fn summary(verdict: Verdict) -> JobSummary {
    JobSummary {
        run: Summary {
            steps_done: 10,
            train_loss: 0.5,
            train_accuracy: 0.9,
            test_loss: 0.6,
            test_accuracy: 0.8,
            verdict: VerdictReport {
                verdict,
                reason: "test".into(),
                ratio_at_init: Some(1.0),
                ratio_at_end: None,
                nonfinite_seen: false,
            },
            stopped_early: false,
        },
        mean_field: None,
    }
}

/// A value with some awkward cases mixed in: NaN (with a payload), infinities, -0, subnormals.
fn value(step: u64, layer: usize, metric: usize) -> f64 {
    match (step + 3 * layer as u64 + metric as u64) % 41 {
        5 => f64::from_bits(0x7ff8_0000_0000_0000 | step),
        9 => f64::INFINITY,
        13 => f64::NEG_INFINITY,
        17 => -0.0,
        21 => f64::from_bits(1 + step),
        _ => ((step as f64 + 1.0).ln() * (layer as f64 + 1.0) - metric as f64).exp() * 1e-3,
    }
}

fn record(step: u64, layers: usize, hist_every: u64) -> StepRecord {
    let layer_stats = (0..layers)
        .map(|l| {
            let mut v = [0.0; 12];
            for (m, x) in v.iter_mut().enumerate() {
                *x = value(step, l, m);
            }
            LayerStats {
                grad_norm: v[0],
                bias_grad_norm: v[1],
                err_norm: v[2],
                grad_mean_abs: v[3],
                grad_max_abs: v[4],
                weight_norm: v[5],
                update_ratio: v[6],
                act_mean: v[7],
                act_std: v[8],
                saturated: v[9],
                dead: v[10],
                nonfinite: step % 3,
            }
        })
        .collect();
    let histograms = if hist_every > 0 && step.is_multiple_of(hist_every) {
        (0..layers)
            .map(|l| Histogram {
                counts: (0..Histogram::BINS as u64).map(|b| b * step + l as u64).collect(),
                zeros: step,
                underflow: 1,
                overflow: 2,
                nonfinite: l as u64,
            })
            .collect()
    } else {
        Vec::new()
    };
    StepRecord {
        step,
        loss: value(step, 99, 0),
        accuracy: value(step, 99, 1),
        lr: 0.1,
        grad_norm: value(step, 99, 3),
        layers: layer_stats,
        histograms,
    }
}

/// Every bit of a record, for exact comparison (NaN != NaN under PartialEq).
fn bits(r: &StepRecord) -> Vec<u64> {
    let mut out = vec![r.step, r.loss.to_bits(), r.accuracy.to_bits(), r.lr.to_bits(), r.grad_norm.to_bits()];
    for l in &r.layers {
        out.extend(l.values().iter().map(|x| x.to_bits()));
        out.push(l.nonfinite);
    }
    out.push(u64::MAX);
    for h in &r.histograms {
        out.extend([h.counts.len() as u64, h.zeros, h.underflow, h.overflow, h.nonfinite]);
        out.extend(&h.counts);
    }
    out
}

fn batch(id: JobId, steps: Vec<StepRecord>, evals: Vec<EvalRecord>) -> MetricBatch {
    MetricBatch { job: Some(id), attempt: None, steps, evals }
}

/// Appends steps `[0, n)` of a job with `layers` layers in batches of the given sizes (cycled).
async fn fill(store: &dyn Store, id: JobId, n: u64, layers: usize, sizes: &[u64]) -> Vec<StepRecord> {
    let all: Vec<StepRecord> = (0..n).map(|s| record(s, layers, 50)).collect();
    let mut at = 0usize;
    for &size in sizes.iter().cycle() {
        if at >= all.len() {
            break;
        }
        let end = (at + size as usize).min(all.len());
        let evals = vec![EvalRecord { step: at as u64, test_loss: 1.0 / (at as f64 + 1.0), test_accuracy: 0.5 }];
        store.append_metrics(&[batch(id, all[at..end].to_vec(), evals)]).await.unwrap();
        at = end;
    }
    all
}

/// Which records a filter should select.
type Pred = Box<dyn Fn(&JobRecord) -> bool>;

fn ids(jobs: &[JobRecord]) -> Vec<i64> {
    jobs.iter().map(|j| j.id.0).collect()
}

pub(super) async fn create_get_list_filter_and_paginate(store: Arc<dyn Store>) {
    let acts = [Activation::Tanh, Activation::Ramp, Activation::Logistic];
    let mut created = Vec::new();
    for i in 0..23usize {
        let group = if i % 2 == 0 { "even" } else { "odd" };
        let mut labels = vec![("group", group)];
        if i % 5 == 0 {
            labels.push(("special", "yes"));
        }
        let s =
            spec(&format!("run-{i}-{}", if i % 3 == 0 { "deep" } else { "shallow" }), acts[i % 3], 2 + i % 7, &labels);
        let sweep = if i % 4 == 0 { Some(7) } else { None };
        let rec = store.create_job(&s, sweep, None).await.unwrap();
        assert_eq!(rec.state, JobState::Queued);
        assert_eq!(store.get_job(rec.id).await.unwrap().as_ref(), Some(&rec));
        created.push(rec.id);
    }
    // The oldest 15 jobs run (claimed in submission order), the even ones finish with verdicts.
    for (k, &id) in created.iter().enumerate().take(15) {
        let (claimed, attempt) = claim(&*store).await;
        assert_eq!(claimed, id, "claims go in submission order");
        if k % 2 == 0 {
            let v = if k % 4 == 0 { Verdict::Vanishing } else { Verdict::Healthy };
            store.mark_finished(id, attempt, JobState::Succeeded, 2000, Some(&summary(v)), None).await.unwrap();
        }
    }
    let mut all = Vec::new();
    for &id in &created {
        all.push(store.get_job(id).await.unwrap().unwrap());
    }

    let filters: Vec<(JobFilter, Pred)> = vec![
        (JobFilter::default(), Box::new(|_| true)),
        (
            JobFilter { states: vec![JobState::Queued, JobState::Succeeded], ..Default::default() },
            Box::new(|j| matches!(j.state, JobState::Queued | JobState::Succeeded)),
        ),
        (
            JobFilter { activation: Some("ramp".into()), ..Default::default() },
            Box::new(|j| j.spec.activation == Activation::Ramp),
        ),
        (
            JobFilter { min_depth: Some(4), max_depth: Some(6), ..Default::default() },
            Box::new(|j| (4..=6).contains(&j.spec.depth())),
        ),
        (
            JobFilter { label: Some(("special".into(), None)), ..Default::default() },
            Box::new(|j| j.spec.labels.contains_key("special")),
        ),
        (
            JobFilter { label: Some(("group".into(), Some("odd".into()))), ..Default::default() },
            Box::new(|j| j.spec.labels.get("group").map(String::as_str) == Some("odd")),
        ),
        (
            JobFilter { verdict: Some(Verdict::Vanishing), ..Default::default() },
            Box::new(|j| j.verdict() == Some(Verdict::Vanishing)),
        ),
        (
            JobFilter { name_contains: Some("deep".into()), ..Default::default() },
            Box::new(|j| j.spec.name.contains("deep")),
        ),
        (JobFilter { sweep_id: Some(7), ..Default::default() }, Box::new(|j| j.sweep_id == Some(7))),
        (
            JobFilter {
                states: vec![JobState::Running],
                activation: Some("tanh".into()),
                label: Some(("group".into(), None)),
                ..Default::default()
            },
            Box::new(|j| j.state == JobState::Running && j.spec.activation == Activation::Tanh),
        ),
    ];
    for (filter, pred) in &filters {
        let mut want: Vec<i64> = all.iter().filter(|j| pred(j)).map(|j| j.id.0).collect();
        assert!(!want.is_empty(), "filter {filter:?} matches nothing; weak test");
        want.reverse(); // newest first
        for order in [Order::NEWEST_FIRST, Order::OLDEST_FIRST] {
            if order == Order::OLDEST_FIRST {
                want.reverse();
            }
            for size in [0u32, 1, 4, 1000] {
                let mut got = Vec::new();
                let mut token = None;
                let mut pages = 0;
                loop {
                    let (page, next) =
                        store.list_jobs(filter, order, &PageRequest { size, token: token.clone() }).await.unwrap();
                    assert!(page.len() <= if size == 0 { 50 } else { size as usize });
                    for j in &page {
                        assert_eq!(Some(j), all.iter().find(|a| a.id == j.id), "listed record differs from get_job");
                    }
                    got.extend(ids(&page));
                    pages += 1;
                    assert!(pages <= 100);
                    match next {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
                assert_eq!(got, want, "filter {filter:?} order {order:?} size {size}");
            }
        }
    }
    assert!(store.get_job(JobId(999)).await.unwrap().is_none());
}

pub(super) async fn state_transitions(store: Arc<dyn Store>) {
    let a = store.create_job(&spec("a", Activation::Tanh, 3, &[]), None, None).await.unwrap().id;
    let b = store.create_job(&spec("b", Activation::Tanh, 3, &[]), None, None).await.unwrap().id;

    let (got, attempt) = claim(&*store).await;
    assert_eq!((got, attempt), (a, 1));
    let j = store.get_job(a).await.unwrap().unwrap();
    assert_eq!((j.state, j.owner.as_deref(), j.attempt), (JobState::Running, Some(WORKER), 1));
    assert!(j.started_ms.is_some());
    let r = store.mark_finished(a, 1, JobState::Running, 7, None, None).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store.mark_finished(a, 2, JobState::Failed, 9, None, None).await;
    assert!(matches!(r, Err(StoreError::LeaseLost(j)) if j == a), "{r:?}");
    store.mark_finished(a, 1, JobState::Failed, 9, None, Some("boom")).await.unwrap();
    let j = store.get_job(a).await.unwrap().unwrap();
    assert_eq!((j.state, j.finished_ms, j.error.as_deref()), (JobState::Failed, Some(9), Some("boom")));
    let r = store.mark_finished(a, 1, JobState::Succeeded, 10, None, None).await;
    assert!(matches!(r, Err(StoreError::LeaseLost(_))), "{r:?}");
    assert!(matches!(store.request_cancel(a, 10).await, Err(StoreError::Invalid(_))), "an ended job is not cancelled");

    // A queued job is cancelled at once.
    let rec = store.request_cancel(b, 11).await.unwrap();
    assert_eq!((rec.state, rec.finished_ms), (JobState::Cancelled, Some(11)));
    assert!(store.claim_next(WORKER, LEASE).await.unwrap().is_none(), "nothing left to claim");

    // Retried: queued again, with no history; its next claim is a new attempt.
    store.requeue(a).await.unwrap();
    let j = store.get_job(a).await.unwrap().unwrap();
    assert_eq!((j.state, j.started_ms, j.finished_ms, j.error, j.owner), (JobState::Queued, None, None, None, None));
    let (got, attempt) = claim(&*store).await;
    assert_eq!((got, attempt), (a, 2));
    let s = summary(Verdict::Exploding);
    store.mark_finished(a, 2, JobState::Succeeded, 13, Some(&s), None).await.unwrap();
    assert_eq!(store.get_job(a).await.unwrap().unwrap().summary, Some(s));

    let none = JobId(404);
    let r = store.mark_finished(none, 1, JobState::Failed, 1, None, None).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert!(matches!(store.requeue(none).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.request_cancel(none, 1).await, Err(StoreError::NotFound(_))));
}

/// Claims: in submission order, leases renewed by their owner only, a job whose lease ended
/// claimed again (its history cleared in the same transaction), and the writes of the old
/// claim refused from then on.
pub(super) async fn claims_leases_and_fencing(store: Arc<dyn Store>) {
    let short = std::time::Duration::from_millis(300);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(store.create_job(&spec(&format!("j{i}"), Activation::Tanh, 2, &[]), None, None).await.unwrap().id);
    }
    let one = store.claim_next("w1", short).await.unwrap().unwrap();
    let two = store.claim_next("w2", LEASE).await.unwrap().unwrap();
    assert_eq!((one.record.id, two.record.id), (ids[0], ids[1]));
    // w1 writes under its claim.
    let under = |attempt, steps: std::ops::Range<u64>| MetricBatch {
        job: Some(ids[0]),
        attempt: Some(attempt),
        steps: steps.map(|s| record(s, 3, 0)).collect(),
        evals: vec![],
    };
    assert!(store.append_metrics(&[under(1, 0..30)]).await.unwrap().is_empty());
    // Renewing: only the owner's claims hold; w2 cannot renew w1's.
    let r = store.renew_leases("w2", &[(ids[0], 1), (ids[1], 1)], LEASE).await.unwrap();
    assert_eq!(r.lost, vec![ids[0]]);
    // w1 stops renewing; its lease ends and the job is claimed again, before the queued job
    // that was submitted after it.
    tokio::time::sleep(short * 2).await;
    let three = store.claim_next("w3", LEASE).await.unwrap().unwrap();
    assert_eq!((three.record.id, three.attempt), (ids[0], 2));
    assert_eq!((three.record.steps_done, three.record.owner.as_deref()), (0, Some("w3")));
    assert!(store.read_steps(ids[0], 0, 100).await.unwrap().is_empty(), "the last attempt's history is gone");
    // w1, back, can neither renew, write, nor finish.
    let r = store.renew_leases("w1", &[(ids[0], 1)], LEASE).await.unwrap();
    assert_eq!(r.lost, vec![ids[0]]);
    let lost = store.append_metrics(&[under(1, 30..31), under(2, 0..5)]).await.unwrap();
    assert_eq!(lost, vec![ids[0]], "only the old claim's batch is refused");
    assert_eq!(store.get_job(ids[0]).await.unwrap().unwrap().steps_done, 5);
    let r = store.mark_finished(ids[0], 1, JobState::Succeeded, 1, None, None).await;
    assert!(matches!(r, Err(StoreError::LeaseLost(_))), "{r:?}");
    store.mark_finished(ids[0], 2, JobState::Succeeded, 1, None, None).await.unwrap();
    // A running job's cancellation reaches its owner's next renewal.
    let rec = store.request_cancel(ids[1], 5).await.unwrap();
    assert_eq!(rec.state, JobState::Running);
    let r = store.renew_leases("w2", &[(ids[1], 1)], LEASE).await.unwrap();
    assert_eq!((r.lost, r.cancel), (vec![], vec![ids[1]]));
    // Releasing a worker's leases makes its jobs claimable at once.
    store.release_leases("w2").await.unwrap();
    let four = store.claim_next("w4", LEASE).await.unwrap().unwrap();
    assert_eq!((four.record.id, four.attempt), (ids[1], 2));
    let five = store.claim_next("w4", LEASE).await.unwrap().unwrap();
    assert_eq!(five.record.id, ids[2]);
    assert!(store.claim_next("w4", LEASE).await.unwrap().is_none());
}

/// The queue limit holds in the store's transaction: a sweep that would pass it stores nothing.
pub(super) async fn the_queue_limit_is_checked_where_jobs_are_stored(store: Arc<dyn Store>) {
    for i in 0..3 {
        store.create_job(&spec(&format!("q{i}"), Activation::Tanh, 1, &[]), None, Some(3)).await.unwrap();
    }
    let r = store.create_job(&spec("over", Activation::Tanh, 1, &[]), None, Some(3)).await;
    assert!(matches!(r, Err(StoreError::Full(3, 3))), "{r:?}");
    let sweep = sweep_spec("big");
    let r = store.create_sweep(&sweep, &sweep.expand(10).unwrap(), Some(6)).await;
    assert!(matches!(r, Err(StoreError::Full(3, 6))), "{r:?}");
    assert_eq!(store.job_counts().await.unwrap().total(), 3);
    // A finished job frees its place.
    let (id, attempt) = claim(&*store).await;
    store.mark_finished(id, attempt, JobState::Succeeded, 1, None, None).await.unwrap();
    store.create_job(&spec("fits", Activation::Tanh, 1, &[]), None, Some(3)).await.unwrap();
}

pub(super) async fn append_and_read_steps_round_trip_bits(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("r", Activation::Tanh, 3, &[]), None, None).await.unwrap().id;
    let n = 2 * CHUNK_STEPS as u64 + 77;
    // Odd batch sizes exercise tail-chunk filling and chunk boundaries.
    let all = fill(&*store, id, n, 4, &[1, 7, 300, 1, 600]).await;
    assert_eq!(store.get_job(id).await.unwrap().unwrap().steps_done, n);

    let got = store.read_steps(id, 0, usize::MAX).await.unwrap();
    assert_eq!(got.len(), all.len());
    for (g, w) in got.iter().zip(&all) {
        assert_eq!(bits(g), bits(w), "step {}", w.step);
    }
    assert!(got.iter().filter(|r| !r.histograms.is_empty()).count() > 10);

    let mid = store.read_steps(id, 500, 40).await.unwrap();
    assert_eq!(mid.iter().map(|r| r.step).collect::<Vec<_>>(), (500..540).collect::<Vec<_>>());
    assert_eq!(bits(&mid[0]), bits(&all[500]));
    assert!(store.read_steps(id, n, 10).await.unwrap().is_empty());
    assert!(store.read_steps(id, 0, 0).await.unwrap().is_empty());

    // Steps without layers are not stored; repeated steps and wrong layer counts are refused.
    let mut empty = record(n, 4, 0);
    empty.layers.clear();
    store.append_metrics(&[batch(id, vec![empty], vec![])]).await.unwrap();
    assert_eq!(store.get_job(id).await.unwrap().unwrap().steps_done, n);
    let again = store.append_metrics(&[batch(id, vec![record(n - 1, 4, 0)], vec![])]).await;
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");
    let wrong = store.append_metrics(&[batch(id, vec![record(n, 5, 0)], vec![])]).await;
    assert!(matches!(wrong, Err(StoreError::Invalid(_))), "{wrong:?}");
    let no_job = store
        .append_metrics(&[MetricBatch { job: None, attempt: None, steps: vec![record(n, 4, 0)], evals: vec![] }])
        .await;
    assert!(matches!(no_job, Err(StoreError::Invalid(_))));

    let evals = store.read_evals(id, 0).await.unwrap();
    assert!(evals.len() > 3 && evals.windows(2).all(|w| w[0].step < w[1].step));
    assert_eq!(evals[0], EvalRecord { step: 0, test_loss: 1.0, test_accuracy: 0.5 });
}

pub(super) async fn append_is_one_transaction(store: Arc<dyn Store>) {
    let a = store.create_job(&spec("a", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    let b = store.create_job(&spec("b", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    let ok = batch(a, vec![record(0, 2, 0), record(1, 2, 0)], vec![]);
    let bad = batch(b, vec![record(3, 2, 0), record(2, 2, 0)], vec![]);
    assert!(store.append_metrics(&[ok.clone(), bad]).await.is_err());
    assert_eq!(store.get_job(a).await.unwrap().unwrap().steps_done, 0);
    assert!(store.read_steps(a, 0, 10).await.unwrap().is_empty());
    let b2 = batch(b, vec![record(5, 2, 0)], vec![]);
    store.append_metrics(&[ok, b2]).await.unwrap();
    assert_eq!(store.get_job(a).await.unwrap().unwrap().steps_done, 2);
    assert_eq!(store.get_job(b).await.unwrap().unwrap().steps_done, 6);
}

/// An append is a few statements whatever the layer count: a net deeper than one statement's
/// rows, a batch that fills every series' tail and starts a new chunk in each, and evaluations
/// with NaN and a step evaluated twice, all read back exactly.
pub(super) async fn wide_appends_and_many_evaluations_round_trip(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("deep", Activation::Tanh, 3, &[]), None, None).await.unwrap().id;
    let layers = 300;
    let all: Vec<StepRecord> = (0..CHUNK_STEPS as u64 + 9).map(|s| record(s, layers, 0)).collect();
    store.append_metrics(&[batch(id, all[..3].to_vec(), vec![])]).await.unwrap();
    let loss = |s: u64| [f64::NAN, f64::INFINITY, f64::from_bits(1 + s), 1.0 / (s as f64 + 1.0)][s as usize % 4];
    let mut evals: Vec<EvalRecord> =
        (0..400).map(|s| EvalRecord { step: s, test_loss: loss(s), test_accuracy: 0.25 }).collect();
    evals.push(EvalRecord { step: 7, test_loss: 2.0, test_accuracy: 0.75 });
    store.append_metrics(&[batch(id, all[3..].to_vec(), evals.clone())]).await.unwrap();
    let got = store.read_steps(id, 0, usize::MAX).await.unwrap();
    assert_eq!(got.iter().map(bits).collect::<Vec<_>>(), all.iter().map(bits).collect::<Vec<_>>());
    let stored = store.read_evals(id, 0).await.unwrap();
    assert_eq!(stored.len(), 400);
    for (s, want) in stored.iter().zip(&evals) {
        let want = if want.step == 7 { &evals[400] } else { want };
        assert_eq!(s.step, want.step);
        assert_eq!(s.test_loss.is_nan(), want.test_loss.is_nan(), "step {}", s.step);
        if !want.test_loss.is_nan() {
            assert_eq!(s.test_loss.to_bits(), want.test_loss.to_bits(), "step {}", s.step);
        }
        assert_eq!(s.test_accuracy, want.test_accuracy);
    }
}

/// Min, max (NaN skipped) and last per bucket, computed directly.
fn expected_downsample(
    points: &[(u64, f64)],
    lo: u64,
    hi: u64,
    max_points: u64,
) -> (Vec<u64>, Vec<u64>, Vec<f64>, Vec<f64>) {
    let width = (hi - lo + 1).div_ceil(max_points);
    let mut buckets: BTreeMap<u64, Vec<(u64, f64)>> = BTreeMap::new();
    for &(s, v) in points.iter().filter(|(s, _)| (lo..=hi).contains(s)) {
        buckets.entry((s - lo) / width).or_default().push((s, v));
    }
    let (mut steps, mut last, mut min, mut max) = (vec![], vec![], vec![], vec![]);
    for pts in buckets.values() {
        let (s, v) = *pts.last().unwrap();
        steps.push(s);
        last.push(v.to_bits());
        let finite: Vec<f64> = pts.iter().map(|p| p.1).filter(|v| !v.is_nan()).collect();
        min.push(finite.iter().copied().fold(f64::NAN, f64::min));
        max.push(finite.iter().copied().fold(f64::NAN, f64::max));
    }
    (steps, last, min, max)
}

fn same_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

pub(super) async fn history_full_and_downsampled(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("h", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
    let n = 1500u64;
    let all = fill(&*store, id, n, 3, &[250, 13]).await;

    // Full resolution of everything.
    let full = store.history(id, &HistoryQuery::default()).await.unwrap();
    assert_eq!(full.series.len(), 4 + 3 * 12);
    for s in &full.series {
        assert_eq!(s.steps, (0..n).collect::<Vec<_>>());
        assert!(same_f64(&s.values, &s.min) && same_f64(&s.values, &s.max));
    }
    let loss = full.series.iter().find(|s| s.metric == "loss" && s.layer.is_none()).unwrap();
    assert!(same_f64(&loss.values, &all.iter().map(|r| r.loss).collect::<Vec<_>>()));
    let err = full.series.iter().find(|s| s.metric == "err_norm" && s.layer == Some(2)).unwrap();
    assert!(same_f64(&err.values, &all.iter().map(|r| r.layers[2].err_norm).collect::<Vec<_>>()));
    assert_eq!(full.evals.len(), store.read_evals(id, 0).await.unwrap().len());

    // A sub-range, some layers and metrics, downsampled.
    for (lo, hi, p) in [(0u64, n - 1, 100u32), (37, 1203, 17), (100, 100, 5), (10, 5000, 7), (0, n - 1, 5000)] {
        let q = HistoryQuery {
            layers: Some(vec![1, 0]),
            metrics: Some(vec!["grad_norm".into(), "loss".into(), "nonfinite".into()]),
            from_step: Some(lo),
            to_step: Some(hi),
            max_points: Some(p),
        };
        let h = store.history(id, &q).await.unwrap();
        let names: Vec<(Option<u32>, &str)> = h.series.iter().map(|s| (s.layer, s.metric.as_str())).collect();
        assert_eq!(
            names,
            vec![
                (None, "loss"),
                (Some(1), "grad_norm"),
                (Some(1), "nonfinite"),
                (Some(0), "grad_norm"),
                (Some(0), "nonfinite")
            ]
        );
        assert!(h.evals.iter().all(|e| (lo..=hi).contains(&e.step)));
        for s in &h.series {
            assert!(s.steps.len() <= p as usize);
            let points: Vec<(u64, f64)> = all
                .iter()
                .map(|r| {
                    let v = match s.layer {
                        None => r.loss,
                        Some(l) => r.layers[l as usize].metric(&s.metric).unwrap(),
                    };
                    (r.step, v)
                })
                .collect();
            let (steps, last, min, max) = expected_downsample(&points, lo, hi.min(n - 1), p as u64);
            assert_eq!(s.steps, steps, "{lo}..{hi}/{p} {:?} {}", s.layer, s.metric);
            assert_eq!(s.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), last);
            assert!(same_f64(&s.min, &min) && same_f64(&s.max, &max));
        }
    }
}

pub(super) async fn a_single_spike_survives_downsampling(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("s", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    let steps: Vec<StepRecord> = (0..10_000u64)
        .map(|s| {
            let mut r = record(s, 2, 0);
            r.loss = 1.0;
            r.layers[1].grad_norm = if s == 4321 { 1e30 } else { 1.0 };
            r
        })
        .collect();
    store.append_metrics(&[batch(id, steps, vec![])]).await.unwrap();
    let q = HistoryQuery {
        layers: Some(vec![1]),
        metrics: Some(vec!["grad_norm".into()]),
        max_points: Some(10),
        ..Default::default()
    };
    let h = store.history(id, &q).await.unwrap();
    let s: &Series = &h.series[0];
    assert_eq!(s.steps.len(), 10);
    assert_eq!(s.max.iter().filter(|&&m| m == 1e30).count(), 1);
    assert_eq!(s.max[4], 1e30);
    assert!(s.values.iter().chain(&s.min).all(|&v| v == 1.0));
}

pub(super) async fn requeue_clears_history(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("q", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
    claim(&*store).await;
    fill(&*store, id, 700, 3, &[100]).await;
    store.requeue(id).await.unwrap();
    let j = store.get_job(id).await.unwrap().unwrap();
    assert_eq!((j.state, j.steps_done, j.started_ms), (JobState::Queued, 0, None));
    assert!(store.read_steps(id, 0, 100).await.unwrap().is_empty());
    assert!(store.read_evals(id, 0).await.unwrap().is_empty());
    let h = store.history(id, &HistoryQuery::default()).await.unwrap();
    assert!(h.series.iter().all(|s| s.steps.is_empty()) && h.evals.is_empty());
    // The job starts over from step 0.
    let again = fill(&*store, id, 20, 3, &[20]).await;
    let got = store.read_steps(id, 0, 100).await.unwrap();
    assert_eq!(got.iter().map(bits).collect::<Vec<_>>(), again.iter().map(bits).collect::<Vec<_>>());
}

pub(super) async fn bad_requests_are_errors(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("e", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
    for token in ["abc", "-1", "0", "", "1.5", " 3", "99999999999999999999999"] {
        let r = store
            .list_jobs(&JobFilter::default(), Order::OLDEST_FIRST, &PageRequest { size: 5, token: Some(token.into()) })
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "token {token:?}: {r:?}");
    }
    let q = HistoryQuery { metrics: Some(vec!["grad_norm".into(), "gradnorm".into()]), ..Default::default() };
    match store.history(id, &q).await {
        Err(StoreError::Invalid(m)) => {
            assert!(m.contains("\"gradnorm\"") && m.contains("global_grad_norm") && m.contains("update_ratio"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let q = HistoryQuery { layers: Some(vec![3]), ..Default::default() };
    assert!(matches!(store.history(id, &q).await, Err(StoreError::Invalid(_))));
    let q = HistoryQuery { from_step: Some(5), to_step: Some(4), ..Default::default() };
    assert!(matches!(store.history(id, &q).await, Err(StoreError::Invalid(_))));

    let none = JobId(12345);
    assert!(matches!(store.history(none, &HistoryQuery::default()).await, Err(StoreError::NotFound(j)) if j == none));
    assert!(matches!(store.read_steps(none, 0, 1).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.read_evals(none, 0).await, Err(StoreError::NotFound(_))));
    let r = store.append_metrics(&[batch(none, vec![record(0, 2, 0)], vec![])]).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))));
}

pub(super) async fn concurrent_appends_to_different_jobs(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(store.create_job(&spec(&format!("c{i}"), Activation::Tanh, 2, &[]), None, None).await.unwrap().id);
    }
    let mut tasks = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let per = 3 + i as u64;
            let mut step = 0;
            while step < 600 {
                let steps = (step..step + per).map(|s| record(s, 3, 0)).collect();
                store.append_metrics(&[batch(id, steps, vec![])]).await.unwrap();
                step += per;
                if step % 5 == 0 {
                    // Readers run alongside the writers.
                    let got = store.read_steps(id, 0, usize::MAX).await.unwrap();
                    assert_eq!(got.len() as u64, step);
                }
            }
            step
        }));
    }
    for (t, &id) in tasks.into_iter().zip(&ids) {
        let n = t.await.unwrap();
        let got = store.read_steps(id, 0, usize::MAX).await.unwrap();
        assert_eq!(got.iter().map(|r| r.step).collect::<Vec<_>>(), (0..n).collect::<Vec<_>>());
        assert_eq!(
            got.iter().map(bits).collect::<Vec<_>>(),
            (0..n).map(|s| bits(&record(s, 3, 0))).collect::<Vec<_>>()
        );
        assert_eq!(store.get_job(id).await.unwrap().unwrap().steps_done, n);
    }
}

// ---------------------------------------------------------------------------------------------
// Sweeps

fn sweep_spec(name: &str) -> crate::runner::sweep::SweepSpec {
    use crate::runner::sweep::{Axis, AxisField, SweepSpec};
    SweepSpec {
        name: name.into(),
        base: JobSpec::default().with_depth(1, 8),
        axes: vec![Axis::new(AxisField::Activation, &["tanh", "ramp"]), Axis::new(AxisField::Seed, &["1", "2"])],
    }
}

pub(super) async fn a_sweep_is_stored_with_its_jobs_and_its_counts_follow_them(store: Arc<dyn Store>) {
    use crate::runner::{StateCounts, SweepId, SweepState};
    let spec = sweep_spec("s");
    let jobs = spec.expand(100).unwrap();
    let (sweep, records) = store.create_sweep(&spec, &jobs, None).await.unwrap();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.sweep_id == Some(sweep.id.0) && r.state == JobState::Queued));
    assert_eq!(sweep.counts, StateCounts { queued: 4, ..Default::default() });
    assert_eq!(sweep.state(), SweepState::Queued);

    let stored = store.get_sweep(sweep.id).await.unwrap().unwrap();
    assert_eq!(stored, sweep, "what create returns is what get reads");
    let listed: Vec<JobId> = store.sweep_jobs(sweep.id).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed, records.iter().map(|r| r.id).collect::<Vec<_>>(), "in expansion order");

    let (first, a0) = claim(&*store).await;
    assert_eq!(first, records[0].id);
    store.mark_finished(first, a0, JobState::Succeeded, 20, Some(&summary(Verdict::Healthy)), None).await.unwrap();
    let (second, a1) = claim(&*store).await;
    assert_eq!(second, records[1].id);
    let s = store.get_sweep(sweep.id).await.unwrap().unwrap();
    assert_eq!((s.counts.queued, s.counts.running, s.counts.succeeded), (2, 1, 1));
    assert_eq!((s.state(), s.finished_ms), (SweepState::Running, None));

    store.mark_sweep_cancelled(sweep.id, 30).await.unwrap();
    store.mark_sweep_cancelled(sweep.id, 40).await.unwrap();
    store.mark_finished(second, a1, JobState::Cancelled, 50 + second.0, None, None).await.unwrap();
    for r in &records[2..] {
        store.request_cancel(r.id, 50 + r.id.0).await.unwrap();
    }
    let s = store.get_sweep(sweep.id).await.unwrap().unwrap();
    assert_eq!(s.cancelled_ms, Some(30), "the first cancellation counts");
    assert_eq!(s.state(), SweepState::Cancelled);
    assert_eq!(s.finished_ms, Some(50 + records[3].id.0), "when the last job ended");

    let none = SweepId(999);
    assert!(store.get_sweep(none).await.unwrap().is_none());
    assert!(matches!(store.sweep_jobs(none).await, Err(StoreError::SweepNotFound(s)) if s == none));
    assert!(matches!(store.mark_sweep_cancelled(none, 1).await, Err(StoreError::SweepNotFound(_))));
}

pub(super) async fn sweeps_list_newest_first_in_pages(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let spec = sweep_spec(&format!("s{i}"));
        ids.push(store.create_sweep(&spec, &spec.expand(10).unwrap(), None).await.unwrap().0.id);
    }
    ids.reverse();
    let mut page = PageRequest { size: 2, token: None };
    let mut seen = Vec::new();
    loop {
        let (sweeps, next) = store.list_sweeps(&page).await.unwrap();
        assert!(sweeps.len() <= 2);
        seen.extend(sweeps.iter().map(|s| s.id));
        match next {
            Some(t) => page.token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let bad = PageRequest { size: 2, token: Some("x".into()) };
    assert!(matches!(store.list_sweeps(&bad).await, Err(StoreError::Invalid(_))));
}

// ---------------------------------------------------------------------------------------------
// A full disk while jobs run

/// Every piece of a read, in order.
async fn pieces(store: &dyn Store, id: JobId, q: &HistoryQuery) -> Vec<HistoryPiece> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let reading = async move { history::read(store, id, q, &tx).await };
    let gathering = async {
        let mut out = Vec::new();
        while let Some(p) = rx.recv().await {
            out.push(p);
        }
        out
    };
    let (res, out) = tokio::join!(reading, gathering);
    res.unwrap();
    out
}

/// A column's name and the bits of its values, min and max.
type ColumnBits = (&'static str, Vec<u64>, Vec<u64>, Vec<u64>);

fn piece_bits(p: &HistoryPiece) -> (Option<u32>, Vec<u64>, Vec<ColumnBits>) {
    let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    (p.layer, p.steps.clone(), p.columns.iter().map(|c| (c.metric, b(&c.values), b(&c.min), b(&c.max))).collect())
}

pub(super) async fn streamed_reads_come_in_bounded_pieces_and_add_up_to_the_whole(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("long", Activation::Tanh, 3, &[]), None, None).await.unwrap().id;
    let n = 20_000;
    fill(&*store, id, n, 4, &[4096, 1000, 7]).await;
    for max_points in [None, Some(700)] {
        let q = HistoryQuery { max_points, ..Default::default() };
        let all = pieces(&*store, id, &q).await;
        for p in &all {
            let per = if p.downsampled { 3 } else { 1 };
            let values = p.steps.len() * p.columns.len() * per + p.evals.len() * 3;
            assert!(values <= history::PIECE_VALUES, "a piece of {values} values");
            assert!(p.columns.iter().all(|c| c.values.len() == p.steps.len()));
        }
        assert!(all.len() > 10, "a long read is cut into pieces: {}", all.len());
        // The whole, gathered, is what the pieces hold.
        let whole = store.history(id, &q).await.unwrap();
        let grad_norm_0 = whole.series.iter().find(|s| s.layer == Some(0) && s.metric == "grad_norm").unwrap();
        match max_points {
            // Buckets of ceil(20,000 / 700) = 29 steps: 690 of them.
            Some(_) => assert_eq!(grad_norm_0.steps.len(), 690),
            None => assert_eq!(grad_norm_0.steps, (0..n).collect::<Vec<_>>()),
        }
        // The full read equals the step scalars alone followed by each layer read alone.
        let mut parts =
            pieces(&*store, id, &HistoryQuery { metrics: Some(STEP_METRICS.map(String::from).to_vec()), ..q.clone() })
                .await;
        parts.retain(|p| p.evals.is_empty());
        let layer_metrics: Vec<String> = LayerStats::METRICS.iter().map(|m| m.to_string()).collect();
        for l in 0..4 {
            let one = HistoryQuery { layers: Some(vec![l]), metrics: Some(layer_metrics.clone()), ..q.clone() };
            parts.extend(pieces(&*store, id, &one).await.into_iter().filter(|p| p.evals.is_empty()));
        }
        let full: Vec<_> = all.iter().filter(|p| p.evals.is_empty()).map(piece_bits).collect();
        assert_eq!(full, parts.iter().map(piece_bits).collect::<Vec<_>>());
        let evals: usize = all.iter().map(|p| p.evals.len()).sum();
        assert_eq!(evals, whole.evals.len());
    }
}

pub(super) async fn a_reader_that_stops_reading_stops_the_read(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("long", Activation::Tanh, 3, &[]), None, None).await.unwrap().id;
    fill(&*store, id, 30_000, 4, &[4096]).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let store2 = store.clone();
    let q = HistoryQuery::default();
    let reading = tokio::spawn(async move { history::read(&*store2, id, &q, &tx).await });
    assert!(rx.recv().await.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Dozens of pieces are due; the read waits on the one it could not hand over.
    assert!(!reading.is_finished(), "the read went on without its reader");
    drop(rx);
    reading.await.unwrap().unwrap();
}

mod postgres;
mod sqlite;

mod checkpoints;
mod manage;
pub(super) mod search;
use checkpoints::{
    a_fork_reads_its_parents_history_and_keeps_its_parent, a_job_claimed_again_goes_on_from_its_newest_checkpoint,
    a_sweep_with_a_forked_job_stays, checkpoints_are_fenced_and_the_newest_kept,
    without_a_checkpoint_a_job_starts_over,
};
use manage::{
    a_delete_takes_a_job_whole_or_nothing, a_sweep_is_deleted_with_its_jobs,
    an_update_renames_and_relabels_and_nothing_else, empty_sweeps_go_and_the_size_is_known,
    ids_are_never_reused_after_a_delete,
};
use search::filters_and_sorts_agree_with_the_records;

/// Far beyond what any store test takes (seconds), even on a loaded CI machine.
const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs each generic store test against every backend.
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, store) = super::temp_store().await;
                super::$name(std::sync::Arc::new(store)).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                use crate::store::testing::{PgTestDb, within};
                let Some(db) = PgTestDb::create().await else { return };
                let store = crate::store::PgStore::open(&db.url).await.expect("open the test database");
                within(super::TEST_LIMIT, "the test", super::$name(std::sync::Arc::new(store.clone()))).await;
                within(super::TEST_LIMIT, "closing the store", store.close()).await;
            })*
        }
    };
}

every_backend!(
    create_get_list_filter_and_paginate,
    state_transitions,
    claims_leases_and_fencing,
    the_queue_limit_is_checked_where_jobs_are_stored,
    append_and_read_steps_round_trip_bits,
    append_is_one_transaction,
    wide_appends_and_many_evaluations_round_trip,
    history_full_and_downsampled,
    a_single_spike_survives_downsampling,
    requeue_clears_history,
    bad_requests_are_errors,
    concurrent_appends_to_different_jobs,
    a_sweep_is_stored_with_its_jobs_and_its_counts_follow_them,
    sweeps_list_newest_first_in_pages,
    streamed_reads_come_in_bounded_pieces_and_add_up_to_the_whole,
    a_reader_that_stops_reading_stops_the_read,
    a_delete_takes_a_job_whole_or_nothing,
    ids_are_never_reused_after_a_delete,
    a_sweep_is_deleted_with_its_jobs,
    an_update_renames_and_relabels_and_nothing_else,
    empty_sweeps_go_and_the_size_is_known,
    filters_and_sorts_agree_with_the_records,
    checkpoints_are_fenced_and_the_newest_kept,
    a_job_claimed_again_goes_on_from_its_newest_checkpoint,
    without_a_checkpoint_a_job_starts_over,
    a_fork_reads_its_parents_history_and_keeps_its_parent,
    a_sweep_with_a_forked_job_stays,
);
