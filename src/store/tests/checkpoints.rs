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

/// A fork: created from its parent's checkpoint (copied), claimed from its fork step, its history
/// read through the parent's before that step; the parent stays while it has forks.
pub(crate) async fn a_fork_reads_its_parents_history_and_keeps_its_parent(store: Arc<dyn Store>) {
    use crate::runner::history;
    let parent = store.create_job(&spec("p", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
    let (_, attempt) = claim(&*store).await;
    let mut first = under(parent, attempt, 0..300, 1);
    first.evals = (0..300).step_by(50).map(eval).collect();
    store.append_metrics(&[first]).await.unwrap();
    store.save_checkpoint(parent, attempt, 200, b"at 200", 2).await.unwrap();
    store.save_checkpoint(parent, attempt, 250, b"at 250", 2).await.unwrap();

    let fork_spec = crate::engine::spec::JobSpec { lr: 0.5, ..spec("f", Activation::Tanh, 2, &[]) };
    let fork = store.create_fork(&fork_spec, parent, 200, None).await.unwrap();
    assert_eq!(fork.fork_of, Some(crate::runner::ForkPoint { parent, step: 200 }));
    assert_eq!((fork.state, fork.steps_done, fork.spec.lr), (JobState::Queued, 200, 0.5));
    assert_eq!(store.read_checkpoint(fork.id, 200).await.unwrap().as_deref(), Some(&b"at 200"[..]));
    let r = store.create_fork(&fork_spec, parent, 100, None).await;
    assert!(matches!(&r, Err(StoreError::Invalid(m)) if m.contains("step 100 is gone")), "{r:?}");

    // Claimed, it goes on from its fork step, and writes its own steps from there.
    let c = store.claim_next("w", LEASE).await.unwrap().unwrap();
    assert_eq!((c.record.id, c.record.resumed_from, c.record.steps_done), (fork.id, Some(200), 200));
    let mut own: Vec<_> = (200..260).map(|s| record(s + 1_000, 3, 50)).collect();
    for (r, s) in own.iter_mut().zip(200..) {
        r.step = s;
    }
    let evals = vec![eval(250)];
    store
        .append_metrics(&[MetricBatch { job: Some(fork.id), attempt: Some(c.attempt), steps: own.clone(), evals }])
        .await
        .unwrap();
    let whole = history::read_steps(&*store, fork.id, 0, usize::MAX).await.unwrap();
    let parents = store.read_steps(parent, 0, 200).await.unwrap();
    assert_eq!(whole.len(), 260);
    assert_eq!(whole[..200].iter().map(bits).collect::<Vec<_>>(), parents.iter().map(bits).collect::<Vec<_>>());
    assert_eq!(whole[200..].iter().map(bits).collect::<Vec<_>>(), own.iter().map(bits).collect::<Vec<_>>());
    let tail = history::read_steps(&*store, fork.id, 190, 15).await.unwrap();
    assert_eq!(tail.iter().map(|r| r.step).collect::<Vec<_>>(), (190..205).collect::<Vec<_>>());
    let hist = crate::runner::lineage::Lineage::read(&*store, fork.id).await.unwrap().1;
    let evals: Vec<u64> = hist.read_evals(&*store, 0).await.unwrap().iter().map(|e| e.step).collect();
    assert_eq!(evals, [0, 50, 100, 150, 200, 250], "the parent's up to the fork (200 included), then the fork's");
    let hs: Vec<u64> = hist.read_histograms(&*store, 0, u64::MAX).await.unwrap().iter().map(|h| h.0).collect();
    assert_eq!(hs, [0, 50, 100, 150, 200, 250]);

    // The parent stays while it has forks; with them, or after them, it goes.
    store.mark_finished(parent, attempt, JobState::Succeeded, 5, None, None).await.unwrap();
    store.mark_finished(fork.id, c.attempt, JobState::Succeeded, 6, None, None).await.unwrap();
    let r = store.delete_jobs(&[parent]).await;
    assert!(matches!(&r, Err(StoreError::HasForks(p, f)) if *p == parent && f == &[fork.id]), "{r:?}");
    assert!(r.unwrap_err().to_string().contains(&format!("has forks (job {})", fork.id)));
    assert!(matches!(store.requeue(parent).await, Err(StoreError::HasForks(..))));
    assert_eq!(store.read_steps(parent, 0, 10).await.unwrap().len(), 10, "refused: nothing deleted");
    // A fork keeps the checkpoint it starts from after its end; its own others go.
    assert_eq!(store.checkpoints(fork.id).await.unwrap().iter().map(|c| c.step).collect::<Vec<_>>(), [200]);
    store.delete_jobs(&[parent, fork.id]).await.unwrap();
    assert!(store.get_job(parent).await.unwrap().is_none() && store.get_job(fork.id).await.unwrap().is_none());
}

/// A sweep whose job has a fork outside it stays until the fork goes.
pub(crate) async fn a_sweep_with_a_forked_job_stays(store: Arc<dyn Store>) {
    let sweep = super::sweep_spec("s");
    let (record, jobs) = store.create_sweep(&sweep, &sweep.expand(10).unwrap(), None).await.unwrap();
    let parent = jobs[0].id;
    let (claimed, attempt) = claim(&*store).await;
    assert_eq!(claimed, parent);
    store.save_checkpoint(parent, attempt, 10, b"s", 2).await.unwrap();
    let fork = store.create_fork(&jobs[0].spec, parent, 10, None).await.unwrap();
    store.mark_finished(parent, attempt, JobState::Succeeded, 5, None, None).await.unwrap();
    // The rest of the sweep, then the fork.
    for _ in 0..jobs.len() {
        let (id, a) = claim(&*store).await;
        store.mark_finished(id, a, JobState::Succeeded, 5, None, None).await.unwrap();
    }
    assert!(store.claim_next("w", LEASE).await.unwrap().is_none());
    let r = store.delete_sweep(record.id).await;
    assert!(matches!(&r, Err(StoreError::HasForks(p, f)) if *p == parent && f == &[fork.id]), "{r:?}");
    store.delete_jobs(&[fork.id]).await.unwrap();
    assert_eq!(store.delete_sweep(record.id).await.unwrap(), jobs.len() as u64);
}
