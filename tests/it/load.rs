//! Load, bounded and on loopback: 50 clients submit 1,000 small jobs in all while 100 watchers
//! stream and 4 readers list and query. Every job ends, every history holds exactly its steps,
//! no watcher sees a gap or a step out of order, nothing fails that should not, and the server
//! process's peak memory stays bounded. Prints the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Client, connect_retrying, spawn_serve};
use gradlab::api::pb::{self, JobState, progress::Event};
use tokio::task::JoinSet;

const CLIENTS: usize = 50;
const JOBS: usize = 1_000;
const WATCHERS: usize = 100;
const READERS: usize = 4;
const STEPS: u64 = 40;
/// Peak resident memory the server may reach (it holds no history in memory: the writer queue
/// is bounded and watchers re-read the store when they lag).
const MAX_RSS_MB: u64 = 400;

fn tiny(seed: u64) -> pb::JobSpec {
    pb::JobSpec {
        activation: if seed.is_multiple_of(2) { "tanh".into() } else { "relu".into() },
        depth: Some(2),
        width: Some(8),
        steps: Some(STEPS),
        batch: Some(16),
        eval_every: Some(20),
        dataset: "gaussian:dim=8,classes=3,n=128".into(),
        seed: Some(seed),
        ..Default::default()
    }
}

fn rss_peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Watches a job to its end; checks steps come 0, 1, 2, ... with no gap or repeat. Half the
/// watchers (odd job ids) take steps in batches.
async fn watch_checked(mut client: Client, id: i64) -> u64 {
    let req = pb::WatchRequest { job_id: id, from_step: 0, max_batch: if id % 2 == 1 { 16 } else { 0 } };
    let mut stream = client.watch_job(req).await.unwrap().into_inner();
    let mut next = 0;
    let mut last_state = None;
    while let Some(msg) = stream.message().await.expect("a watch stream never fails") {
        match msg.event.unwrap() {
            Event::Step(s) => {
                assert_eq!(s.step, next, "job {id}: step {} after {}", s.step, next as i64 - 1);
                next += 1;
            }
            Event::Steps(b) => {
                for s in b.steps {
                    assert_eq!(s.step, next, "job {id}: step {} after {}", s.step, next as i64 - 1);
                    next += 1;
                }
            }
            Event::Job(j) => last_state = Some(JobState::try_from(j.state).unwrap()),
            Event::Eval(_) => {}
        }
    }
    assert_eq!(last_state, Some(JobState::Succeeded), "job {id}");
    assert_eq!(next, STEPS, "job {id}: every step seen");
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_a_thousand_jobs_a_hundred_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_serve(&dir.path().join("load.db"), &[]);
    let pid = server.child.id();
    let url = server.url.clone();
    let started = Instant::now();

    // Submitters: 50 clients, 20 jobs each; the first ids they get go to the watchers.
    let (ids_tx, mut ids_rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let mut submitters = JoinSet::new();
    for c in 0..CLIENTS {
        let (url, ids_tx) = (url.clone(), ids_tx.clone());
        submitters.spawn(async move {
            let mut client = connect_retrying(&url).await;
            let mut ids = Vec::new();
            for k in 0..JOBS / CLIENTS {
                let job = client.submit_job(tiny((c * 1000 + k) as u64)).await.expect("submit").into_inner();
                let _ = ids_tx.send(job.id);
                ids.push(job.id);
            }
            ids
        });
    }
    drop(ids_tx);

    // Watchers: 100, each on one of the first jobs submitted (some will replay, some live).
    let mut watchers = JoinSet::new();
    for _ in 0..WATCHERS {
        let id = ids_rx.recv().await.expect("jobs are submitted");
        let client = connect_retrying(&url).await;
        watchers.spawn(watch_checked(client, id));
    }

    // Readers: list and query until the submitters and watchers are done.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = JoinSet::new();
    for r in 0..READERS {
        let (url, stop, reads) = (url.clone(), stop.clone(), reads.clone());
        readers.spawn(async move {
            let mut client = connect_retrying(&url).await;
            while !stop.load(Ordering::Relaxed) {
                let page = client
                    .list_jobs(pb::ListJobsRequest {
                        page_size: 100,
                        oldest_first: r.is_multiple_of(2),
                        ..Default::default()
                    })
                    .await
                    .expect("list")
                    .into_inner();
                if let Some(j) = page.jobs.first() {
                    client
                        .get_history(pb::HistoryRequest { job_id: j.id, max_points: 10, ..Default::default() })
                        .await
                        .expect("history");
                }
                reads.fetch_add(2, Ordering::Relaxed);
            }
        });
    }

    let mut all_ids = Vec::new();
    while let Some(ids) = submitters.join_next().await {
        all_ids.extend(ids.unwrap());
    }
    let submitted_in = started.elapsed();
    let mut watched_steps = 0;
    while let Some(n) = watchers.join_next().await {
        watched_steps += n.unwrap();
    }
    // Every job reaches a terminal state (succeeded), with exactly its steps stored.
    let mut client = connect_retrying(&url).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    for &id in &all_ids {
        loop {
            let j = client.get_job(pb::JobId { id }).await.unwrap().into_inner();
            match JobState::try_from(j.state).unwrap() {
                JobState::Succeeded => {
                    assert_eq!(j.steps_done, STEPS);
                    break;
                }
                JobState::Queued | JobState::Running => {
                    assert!(Instant::now() < deadline, "job {id} did not finish");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("job {id} ended {other:?}: {}", j.error),
            }
        }
    }
    let all_done_in = started.elapsed();
    for &id in all_ids.iter().step_by(37) {
        let h = client
            .get_history(pb::HistoryRequest { job_id: id, metrics: vec!["loss".into()], ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(h.series[0].steps, (0..STEPS).collect::<Vec<_>>(), "job {id}");
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = readers.join_next().await {
        r.unwrap();
    }
    let peak_mb = rss_peak_kb(pid) / 1024;
    println!(
        "load: {JOBS} jobs from {CLIENTS} clients submitted in {:.1} s, all done in {:.1} s; \
         {WATCHERS} watchers saw {watched_steps} steps; {READERS} readers made {} calls; server peak RSS {peak_mb} MB",
        submitted_in.as_secs_f64(),
        all_done_in.as_secs_f64(),
        reads.load(Ordering::Relaxed)
    );
    assert_eq!(all_ids.len(), JOBS);
    assert!(peak_mb > 0 && peak_mb < MAX_RSS_MB, "server peak RSS {peak_mb} MB");
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
