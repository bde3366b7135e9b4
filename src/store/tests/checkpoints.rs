//! Checkpoints on every backend: stored under the claim, the newest K kept, a job claimed again
//! going on from its newest one with its history cut back to it, and what a job's end keeps.

use std::sync::Arc;
use std::time::Duration;

use super::{CHUNK_STEPS, LEASE, bits, claim, record, spec, summary};
use crate::engine::activation::Activation;
use crate::engine::train::EvalRecord;
use crate::engine::verdict::Verdict;
use crate::runner::{JobId, JobState, MetricBatch, Store, StoreError};

fn under(id: JobId, attempt: u64, steps: std::ops::Range<u64>, every: u64) -> MetricBatch {
    MetricBatch {
        job: Some(id),
        attempt: Some(attempt),
        // Every `every`-th step recorded, as with record_every; histograms every 50th.
        steps: steps.filter(|s| s % every == 0).map(|s| record(s, 3, 50)).collect(),
        evals: vec![],
    }
}

fn eval(step: u64) -> EvalRecord {
    EvalRecord { step, test_loss: 1.0 / (step as f64 + 1.0), test_accuracy: 0.5 }
}

pub(crate) async fn checkpoints_are_fenced_and_the_newest_kept(store: Arc<dyn Store>) {
    let id = store.create_job(&spec("c", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
    let (_, attempt) = claim(&*store).await;
    for step in [100, 200, 300, 400] {
        store.save_checkpoint(id, attempt, step, &vec![step as u8; step as usize], 3).await.unwrap();
    }
    let kept = store.checkpoints(id).await.unwrap();
    assert_eq!(kept.iter().map(|c| (c.step, c.bytes)).collect::<Vec<_>>(), [(200, 200), (300, 300), (400, 400)]);
    assert_eq!(store.read_checkpoint(id, 300).await.unwrap(), Some(vec![44u8; 300]));
    assert_eq!(store.read_checkpoint(id, 100).await.unwrap(), None, "beyond the newest 3");
    // The same step again replaces it; a smaller keep drops the older ones.
    store.save_checkpoint(id, attempt, 400, b"again", 1).await.unwrap();
    assert_eq!(store.checkpoints(id).await.unwrap().iter().map(|c| c.step).collect::<Vec<_>>(), [400]);
    assert_eq!(store.read_checkpoint(id, 400).await.unwrap().as_deref(), Some(&b"again"[..]));
    // Another claim's checkpoint is refused and stores nothing.
    let r = store.save_checkpoint(id, attempt + 1, 500, b"stale", 2).await;
    assert!(matches!(r, Err(StoreError::LeaseLost(j)) if j == id), "{r:?}");
    assert_eq!(store.checkpoints(id).await.unwrap().len(), 1);
    assert!(matches!(store.checkpoints(JobId(987_654)).await, Err(StoreError::NotFound(_))));
    // At its end the checkpoints go, unless the spec keeps them.
    store.mark_finished(id, attempt, JobState::Succeeded, 5, Some(&summary(Verdict::Healthy)), None).await.unwrap();
    assert!(store.checkpoints(id).await.unwrap().is_empty());
    let kept_spec = crate::engine::spec::JobSpec { keep_checkpoints: true, ..spec("k", Activation::Tanh, 2, &[]) };
    let kept = store.create_job(&kept_spec, None, None).await.unwrap().id;
    let (_, attempt) = claim(&*store).await;
    store.save_checkpoint(kept, attempt, 10, b"state", 2).await.unwrap();
    store.mark_finished(kept, attempt, JobState::Cancelled, 5, None, None).await.unwrap();
    assert_eq!(store.checkpoints(kept).await.unwrap().iter().map(|c| c.step).collect::<Vec<_>>(), [10]);
    // A finished job's checkpoints go with it.
    store.delete_jobs(&[kept]).await.unwrap();
    assert!(matches!(store.checkpoints(kept).await, Err(StoreError::NotFound(_))));
}

/// A job claimed again goes on from its newest checkpoint: its history after that step goes
/// (steps from it on, evaluations after it, histograms from it on), chunks cut in the middle
/// keep exactly their earlier steps, and appending from the checkpoint's step rebuilds the same
/// history an uninterrupted run stores.
pub(crate) async fn a_job_claimed_again_goes_on_from_its_newest_checkpoint(store: Arc<dyn Store>) {
    let short = Duration::from_millis(300);
    let every = 3; // record_every: the checkpoint's step is not always a recorded one
    for at in [CHUNK_STEPS as u64 + 100, CHUNK_STEPS as u64 * 3 + 1, 2 * CHUNK_STEPS as u64 * every] {
        let id = store.create_job(&spec("r", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
        let first = store.claim_next("w1", short).await.unwrap().unwrap();
        assert_eq!((first.record.id, first.record.resumed_from), (id, None));
        let end = at + 2 * CHUNK_STEPS as u64 + 50;
        let evals = |r: std::ops::Range<u64>| r.step_by(100).map(eval).collect::<Vec<_>>();
        for lo in (0..end).step_by(250) {
            let mut b = under(id, 1, lo..(lo + 250).min(end), every);
            b.evals = evals(lo..(lo + 250).min(end));
            store.append_metrics(&[b]).await.unwrap();
            if lo <= at && at < lo + 250 {
                // The writer stores a checkpoint after the steps before it.
                store.save_checkpoint(id, 1, at, b"state at the step", 2).await.unwrap();
            }
        }
        let whole = store.read_steps(id, 0, usize::MAX).await.unwrap();
        tokio::time::sleep(short * 2).await;

        let again = store.claim_next("w2", LEASE).await.unwrap().unwrap();
        assert_eq!((again.record.id, again.attempt, again.record.resumed_from), (id, 2, Some(at)));
        let last_kept = (0..at).rev().find(|s| s % every == 0).unwrap();
        assert_eq!(again.record.steps_done, last_kept + 1, "steps_done follows the last step kept");
        let kept = store.read_steps(id, 0, usize::MAX).await.unwrap();
        let want: Vec<_> = whole.iter().filter(|r| r.step < at).collect();
        assert_eq!(kept.len(), want.len(), "cut at {at}");
        for (k, w) in kept.iter().zip(want) {
            assert_eq!(bits(k), bits(w), "step {}", w.step);
        }
        let evals_left = store.read_evals(id, 0).await.unwrap();
        assert_eq!(evals_left.last().map(|e| e.step), Some((at / 100) * 100), "evaluations up to the checkpoint stay");
        let hist = store.read_histograms(id, 0, u64::MAX).await.unwrap();
        assert!(hist.iter().all(|(s, _)| *s < at) && !hist.is_empty());
        assert_eq!(store.checkpoints(id).await.unwrap().last().map(|c| c.step), Some(at));
        assert_eq!(store.read_checkpoint(id, at).await.unwrap().as_deref(), Some(&b"state at the step"[..]));
        // The old claim can write nothing more; the new one rebuilds the rest.
        assert_eq!(store.append_metrics(&[under(id, 1, at..at + 10, every)]).await.unwrap(), vec![id]);
        let rest = under(id, 2, at..end, every);
        assert!(store.append_metrics(&[rest]).await.unwrap().is_empty());
        let rebuilt = store.read_steps(id, 0, usize::MAX).await.unwrap();
        assert_eq!(rebuilt.iter().map(bits).collect::<Vec<_>>(), whole.iter().map(bits).collect::<Vec<_>>());
        store.mark_finished(id, 2, JobState::Succeeded, 9, None, None).await.unwrap();
    }
}

/// Without a checkpoint a job claimed again starts over; a requeued job loses its checkpoints
/// (kept ones too: it runs again from step 0).
pub(crate) async fn without_a_checkpoint_a_job_starts_over(store: Arc<dyn Store>) {
    let short = Duration::from_millis(300);
    let keep = crate::engine::spec::JobSpec { keep_checkpoints: true, ..spec("s", Activation::Tanh, 2, &[]) };
    let id = store.create_job(&keep, None, None).await.unwrap().id;
    store.claim_next("w1", short).await.unwrap().unwrap();
    store.append_metrics(&[under(id, 1, 0..40, 1)]).await.unwrap();
    tokio::time::sleep(short * 2).await;
    let again = store.claim_next("w2", short).await.unwrap().unwrap();
    assert_eq!((again.record.resumed_from, again.record.steps_done), (None, 0));
    assert!(store.read_steps(id, 0, 100).await.unwrap().is_empty());

    store.append_metrics(&[under(id, 2, 0..40, 1)]).await.unwrap();
    store.save_checkpoint(id, 2, 40, b"s", 2).await.unwrap();
    store.mark_finished(id, 2, JobState::Failed, 3, None, Some("boom")).await.unwrap();
    assert_eq!(store.checkpoints(id).await.unwrap().len(), 1, "kept after its end");
    store.requeue(id).await.unwrap();
    let requeued = store.get_job(id).await.unwrap().unwrap();
    assert_eq!((requeued.resumed_from, requeued.steps_done), (None, 0));
    assert!(store.checkpoints(id).await.unwrap().is_empty());
}
