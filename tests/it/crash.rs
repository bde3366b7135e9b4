//! A server killed with SIGKILL in the middle of running jobs loses nothing acknowledged: on
//! restart, finished jobs and acknowledged state changes are intact, and the jobs that were
//! running or queued go on from their newest checkpoint (or run again from step 0 without one)
//! to the same bits as an uninterrupted run, with no duplicated or missing steps in their
//! history.

use crate::common::{Client, connect_retrying, spawn_serve, state, wait_for};
use gradlab::api::pb::{self, JobState};

/// Long enough that a job is still running when a test kills its server a few polls after it
/// started: most of a second at the engine's 60,000 steps/s of this shape (10,000 steps once
/// left a window of 0.16 s).
const JOB_STEPS: u64 = 50_000;
/// Sparse enough that a whole history stays one small gRPC message.
const RECORD_EVERY: u64 = 50;

fn job(seed: u64) -> pb::JobSpec {
    pb::JobSpec {
        activation: "tanh".into(),
        depth: Some(3),
        width: Some(32),
        steps: Some(JOB_STEPS),
        batch: Some(32),
        eval_every: Some(1_000),
        record_every: Some(RECORD_EVERY),
        lr: Some(0.05),
        seed: Some(seed),
        ..Default::default()
    }
}

async fn history(client: &mut Client, id: i64) -> pb::History {
    client.get_history(pb::HistoryRequest { job_id: id, ..Default::default() }).await.unwrap().into_inner()
}

/// One series as comparable bits: layer, metric, steps, value bits.
type SeriesBits = (Option<u32>, String, Vec<u64>, Vec<u64>);

fn bits(h: &pb::History) -> Vec<SeriesBits> {
    h.series
        .iter()
        .map(|s| (s.layer, s.metric.clone(), s.steps.clone(), s.values.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn done(j: &pb::Job) -> bool {
    matches!(state(j), JobState::Succeeded | JobState::Failed | JobState::Cancelled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_resumes_every_job_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut server = spawn_serve(&db, &[]);
    let mut client = connect_retrying(&server.url).await;

    // A job that finishes before the crash.
    let mut short = job(9);
    short.steps = Some(200);
    let finished = client.submit_job(short).await.unwrap().into_inner().id;
    let finished = wait_for(&mut client, finished, done).await;
    assert_eq!(state(&finished), JobState::Succeeded);
    // Two run, one waits, one is cancelled while it waits (an acknowledged state change).
    let ids: Vec<i64> = {
        let mut v = Vec::new();
        for seed in 1..=4 {
            v.push(client.submit_job(job(seed)).await.unwrap().into_inner().id);
        }
        v
    };
    let cancelled = client.cancel_job(pb::JobId { id: ids[3] }).await.unwrap().into_inner();
    assert_eq!(state(&cancelled), JobState::Cancelled);
    let running = wait_for(&mut client, ids[0], |j| j.steps_done > 500).await;
    assert_eq!(state(&running), JobState::Running, "killed mid-run");
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().unwrap();

    let mut server = spawn_serve(&db, &[]);
    let mut client = connect_retrying(&server.url).await;
    let again = client.get_job(pb::JobId { id: finished.id }).await.unwrap().into_inner();
    assert_eq!(again, finished, "a job finished before the crash is untouched");
    assert_eq!(state(&client.get_job(pb::JobId { id: ids[3] }).await.unwrap().into_inner()), JobState::Cancelled);
    let mut resumed = Vec::new();
    for &id in &ids[..3] {
        let j = wait_for(&mut client, id, done).await;
        assert_eq!(state(&j), JobState::Succeeded, "{j:?}");
        resumed.push(j);
    }

    // The same specs, uninterrupted, on the same server.
    for (j, seed) in resumed.iter().zip(1..) {
        let fresh = client.submit_job(job(seed)).await.unwrap().into_inner().id;
        let fresh = wait_for(&mut client, fresh, done).await;
        let (a, b) = (j.summary.as_ref().unwrap(), fresh.summary.as_ref().unwrap());
        assert_eq!(a.test_loss.to_bits(), b.test_loss.to_bits());
        assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits());
        assert_eq!(a.test_accuracy.to_bits(), b.test_accuracy.to_bits());
        let (ha, hb) = (history(&mut client, j.id).await, history(&mut client, fresh.id).await);
        assert_eq!(bits(&ha), bits(&hb), "job {} and its uninterrupted twin {} differ", j.id, fresh.id);
        assert_eq!(ha.evals, hb.evals);
        // Recorded every RECORD_EVERY steps and at the last. No gap, no repeat.
        let want: Vec<u64> = (0..JOB_STEPS).step_by(RECORD_EVERY as usize).chain([JOB_STEPS - 1]).collect();
        for s in &ha.series {
            assert_eq!(s.steps, want, "job {} layer {:?} {}", j.id, s.layer, s.metric);
        }
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_promptly_and_the_next_server_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("term.db");
    let mut server = spawn_serve(&db, &[]);
    let mut client = connect_retrying(&server.url).await;
    let id = client.submit_job(job(5)).await.unwrap().into_inner().id;
    wait_for(&mut client, id, |j| j.steps_done > 200).await;
    let mut watcher = connect_retrying(&server.url).await;
    let mut stream =
        watcher.watch_job(pb::WatchRequest { job_id: id, from_step: 0, max_batch: 0 }).await.unwrap().into_inner();

    let asked = std::time::Instant::now();
    let term = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    // The watcher is told, with a clear status, rather than cut off.
    let end = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    let status = end.expect_err("the stream ends with a status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(asked.elapsed() < std::time::Duration::from_secs(15), "stopped in {:?}", asked.elapsed());

    let mut server = spawn_serve(&db, &[]);
    let mut client = connect_retrying(&server.url).await;
    let j = wait_for(&mut client, id, done).await;
    assert_eq!(state(&j), JobState::Succeeded);
    assert_eq!(j.steps_done, JOB_STEPS);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// A job killed twice goes on each time from its newest checkpoint, not from step 0, and ends
/// with the bits of a run that was never interrupted (and never checkpointed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_goes_on_from_its_newest_checkpoint_to_the_same_bits() {
    const STEPS: u64 = 20_000;
    const EVERY: u64 = 2_000;
    let spec = |every_steps: u64| pb::JobSpec {
        width: Some(128),
        steps: Some(STEPS),
        optimizer: "adam".into(),
        lr: Some(1e-3),
        checkpoint_every_steps: Some(every_steps),
        checkpoint_every_seconds: Some(0.0),
        ..job(11)
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("resume.db");
    let mut server = spawn_serve(&db, &[]);
    let mut client = connect_retrying(&server.url).await;
    let id = client.submit_job(spec(EVERY)).await.unwrap().into_inner().id;

    let mut resumed_from = 0;
    for kill in 1..=2 {
        // Killed at least two checkpoints after the last start, so one is certain to be stored.
        let killed_at = wait_for(&mut client, id, |j| j.steps_done > resumed_from + 2 * EVERY + 500).await;
        assert_eq!(state(&killed_at), JobState::Running, "kill {kill}: {killed_at:?}");
        let stored = killed_at.checkpoints.iter().map(|c| c.step).max();
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().unwrap();

        server = spawn_serve(&db, &[]);
        client = connect_retrying(&server.url).await;
        let again = wait_for(&mut client, id, |j| j.attempt == kill + 1).await;
        let from = again.resumed_from.expect("goes on from a checkpoint");
        assert!(from % EVERY == 0 && from > resumed_from && from < killed_at.steps_done + EVERY, "{from}");
        assert!(stored.is_none_or(|s| from >= s), "the newest checkpoint ({stored:?}) is the one used, not {from}");
        assert!(again.checkpoints.iter().all(|c| c.step <= from), "{:?}", again.checkpoints);
        resumed_from = from;
    }
    let resumed = wait_for(&mut client, id, done).await;
    assert_eq!(state(&resumed), JobState::Succeeded, "{resumed:?}");
    assert_eq!((resumed.attempt, resumed.resumed_from), (3, Some(resumed_from)));
    assert!(resumed.checkpoints.is_empty(), "checkpoints go when the job ends: {:?}", resumed.checkpoints);

    let twin = client.submit_job(spec(0)).await.unwrap().into_inner().id;
    let twin = wait_for(&mut client, twin, done).await;
    let (a, b) = (resumed.summary.as_ref().unwrap(), twin.summary.as_ref().unwrap());
    assert_eq!(
        (a.test_loss.to_bits(), a.train_loss.to_bits(), a.test_accuracy.to_bits(), a.verdict),
        (b.test_loss.to_bits(), b.train_loss.to_bits(), b.test_accuracy.to_bits(), b.verdict)
    );
    let (ha, hb) = (history(&mut client, id).await, history(&mut client, twin.id).await);
    assert_eq!(bits(&ha), bits(&hb), "the resumed job and its uninterrupted twin differ");
    assert_eq!(ha.evals, hb.evals);
    let want: Vec<u64> = (0..STEPS).step_by(RECORD_EVERY as usize).chain([STEPS - 1]).collect();
    for s in &ha.series {
        assert_eq!(s.steps, want, "layer {:?} {}", s.layer, s.metric);
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Killed again and again while it stores large checkpoints back to back (most kills land in
/// the middle of one), a job still goes on each time from a whole checkpoint and ends with the
/// bits of an uninterrupted run: a checkpoint is one transaction, so a torn one never exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_in_the_middle_of_checkpoints_leave_the_last_whole_one() {
    const STEPS: u64 = 400;
    // 3 x 1024 with Adam: 2.2M parameters, 26 MB a checkpoint, one every 5 steps.
    let spec = |every: u64| pb::JobSpec {
        width: Some(1024),
        steps: Some(STEPS),
        eval_every: Some(100),
        record_every: Some(1),
        optimizer: "adam".into(),
        lr: Some(1e-3),
        checkpoint_every_steps: Some(every),
        checkpoint_every_seconds: Some(0.0),
        ..job(21)
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("torn.db");
    let mut server = spawn_serve(&db, &["--workers", "1"]);
    let mut client = connect_retrying(&server.url).await;
    let id = client.submit_job(spec(5)).await.unwrap().into_inner().id;
    let mut resumed = Vec::new();
    for kill in 1..=4u64 {
        // Kills spread over a checkpoint's cycle: after a few more steps each time, plus a
        // different fraction of a step's time.
        let at = resumed.last().copied().unwrap_or(0) + 12 + kill;
        wait_for(&mut client, id, |j| j.steps_done >= at).await;
        tokio::time::sleep(std::time::Duration::from_millis(7 * kill)).await;
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().unwrap();
        server = spawn_serve(&db, &["--workers", "1"]);
        client = connect_retrying(&server.url).await;
        let again = wait_for(&mut client, id, |j| j.attempt == kill + 1).await;
        let from = again.resumed_from.expect("goes on from a checkpoint");
        assert!(from % 5 == 0 && from >= at.saturating_sub(15), "kill {kill} at step >= {at}: resumed from {from}");
        resumed.push(from);
    }
    let j = wait_for(&mut client, id, done).await;
    assert_eq!(state(&j), JobState::Succeeded, "{j:?}");
    let twin = client.submit_job(spec(0)).await.unwrap().into_inner().id;
    let twin = wait_for(&mut client, twin, done).await;
    let (ha, hb) = (history(&mut client, id).await, history(&mut client, twin.id).await);
    assert_eq!(bits(&ha), bits(&hb), "resumed from {resumed:?}: the history differs from an uninterrupted run's");
    assert_eq!(ha.evals, hb.evals);
    assert_eq!(j.summary.unwrap().test_loss.to_bits(), twin.summary.unwrap().test_loss.to_bits());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
