//! Several gradlab servers on one PostgreSQL (issue 12), as real processes on a database of
//! each test's own: a shared queue, work taken over when a server dies or loses its database,
//! and every call answered the same whichever server it reaches. Skipped (with a line saying
//! so) when no PostgreSQL answers, except under CI=true.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gradlab::api::convert::job_spec;
use gradlab::api::pb::{self, JobState, progress::Event, sweep_progress};
use gradlab::engine::train::Trainer;
use gradlab::store::testing::PgTestDb;

use crate::common::{Client, ServeProcess, connect_retrying, spawn_serve_on, state, wait_for};

/// Short leases, so that a dead server's jobs move on within seconds.
const LEASES: [&str; 4] = ["--heartbeat", "0.3", "--lease", "1.5"];

fn serve(db: &PgTestDb, workers: &str) -> ServeProcess {
    let mut args = vec!["--workers", workers];
    args.extend(LEASES);
    spawn_serve_on(&db.url, &args)
}

pub fn small(seed: u64, steps: u64) -> pb::JobSpec {
    pb::JobSpec {
        activation: "tanh".into(),
        depth: Some(2),
        width: Some(8),
        steps: Some(steps),
        batch: Some(16),
        eval_every: Some(10),
        seed: Some(seed),
        ..Default::default()
    }
}

/// The bits a job must end with: its spec trained here, uninterrupted.
pub fn expected_bits(spec: &pb::JobSpec) -> Vec<(u64, u64, u64)> {
    let spec = job_spec(spec).unwrap();
    let mut t = Trainer::<f32>::new(&spec).unwrap();
    let mut out = Vec::new();
    while !t.finished() {
        let r = t.step();
        if !r.layers.is_empty() {
            out.push((r.step, r.loss.to_bits(), r.layers[0].grad_norm.to_bits()));
        }
    }
    out
}

/// A job's stored (step, loss, first layer's grad_norm) bits, read through `client`.
pub async fn stored_bits(client: &mut Client, id: i64) -> Vec<(u64, u64, u64)> {
    let h = client
        .get_history(pb::HistoryRequest {
            job_id: id,
            layers: vec![0],
            metrics: vec!["loss".into(), "grad_norm".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (loss, grad) = (&h.series[0], &h.series[1]);
    assert_eq!(loss.steps, grad.steps);
    loss.steps.iter().zip(&loss.values).zip(&grad.values).map(|((s, l), g)| (*s, l.to_bits(), g.to_bits())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_share_a_sweep_and_one_killed_loses_nothing() {
    let Some(db) = PgTestDb::create().await else { return };
    let a = serve(&db, "1");
    let b = serve(&db, "1");
    let mut c = serve(&db, "1");
    let mut ca = connect_retrying(&a.url).await;
    let mut cb = connect_retrying(&b.url).await;

    // 200 jobs submitted to A, watched from B.
    let sweep = pb::SweepSpec {
        name: "shared".into(),
        base: Some(small(0, 60)),
        axes: vec![pb::Axis { field: "seed".into(), values: (1..=200).map(|s| s.to_string()).collect() }],
    };
    let sweep = ca.submit_sweep(sweep).await.unwrap().into_inner();
    let mut watch = cb.watch_sweep(pb::SweepId { id: sweep.id }).await.unwrap().into_inner();
    // A job trained elsewhere, watched from B step by step.
    let long = ca.submit_job(small(999, 3000)).await.unwrap().into_inner();
    let mut long_watch =
        cb.watch_job(pb::WatchRequest { job_id: long.id, from_step: 0, max_batch: 0 }).await.unwrap().into_inner();
    let long_steps = tokio::spawn(async move {
        let mut steps = Vec::new();
        while let Some(m) = long_watch.message().await.unwrap() {
            if let Some(Event::Step(s)) = m.event {
                steps.push(s.step);
            }
        }
        steps
    });

    // Once work is under way on every server, C dies without a word.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs =
            ca.list_jobs(pb::ListJobsRequest { sweep_id: Some(sweep.id), page_size: 1000, ..Default::default() });
        let jobs = jobs.await.unwrap().into_inner().jobs;
        let done = jobs.iter().filter(|j| state(j) == JobState::Succeeded).count();
        if done >= 30 {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep does not progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.child.kill().unwrap();
    c.child.wait().unwrap();

    let mut ended: HashMap<i64, usize> = HashMap::new();
    let mut last_sweep = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(120), watch.message()).await.unwrap().unwrap() {
        match msg.event {
            Some(sweep_progress::Event::Job(j)) if state(&j) != JobState::Queued && state(&j) != JobState::Running => {
                *ended.entry(j.id).or_default() += 1;
            }
            Some(sweep_progress::Event::Sweep(s)) => last_sweep = Some(s),
            _ => {}
        }
    }
    assert_eq!(last_sweep.unwrap().state, pb::SweepState::Succeeded as i32);
    assert_eq!(ended.len(), 200, "every job's end was seen");
    assert!(ended.values().all(|&n| n == 1), "each job ended once");

    // Every history whole, once each step, and the bits of an uninterrupted run.
    let jobs = cb.list_jobs(pb::ListJobsRequest { sweep_id: Some(sweep.id), page_size: 1000, ..Default::default() });
    let jobs = jobs.await.unwrap().into_inner().jobs;
    let mut taken_over = 0;
    for j in &jobs {
        assert_eq!(state(j), JobState::Succeeded, "{j:?}");
        let spec = j.spec.clone().unwrap();
        assert_eq!(stored_bits(&mut cb, j.id).await, expected_bits(&spec), "job {}", j.id);
        taken_over += usize::from(j.attempt > 1);
    }
    let owners: std::collections::HashSet<String> = jobs.iter().map(|j| j.worker.clone()).collect();
    assert!(owners.len() >= 2, "the work was shared: {owners:?}");
    eprintln!("scale-out: {taken_over} jobs taken over from the killed server; workers {owners:?}");

    let j = wait_for(&mut cb, long.id, |j| state(j) == JobState::Succeeded).await;
    assert_eq!(j.steps_done, 3000);
    assert_eq!(long_steps.await.unwrap(), (0..3000).collect::<Vec<_>>(), "the remote watcher saw every step in order");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cut_from_the_database_stops_writing_and_its_jobs_finish_elsewhere() {
    let Some(db) = PgTestDb::create().await else { return };
    let cut = serve(&db, "2");
    let other = serve(&db, "0");
    let mut client = connect_retrying(&other.url).await;
    // Long enough that neither job can finish in the moments between the check below and the
    // freeze, however fast the engine gets (a 4,000-step job once did, in 0.28 s).
    let specs: Vec<pb::JobSpec> = (1..=2).map(|s| small(s, 20_000)).collect();
    let mut ids = Vec::new();
    for s in &specs {
        ids.push(client.submit_job(s.clone()).await.unwrap().into_inner().id);
    }
    for &id in &ids {
        wait_for(&mut client, id, |j| j.steps_done > 100).await;
    }
    // The first server freezes (a pause, a partition) while its database connections are cut,
    // for longer than a lease; then it wakes up to find its jobs gone. It freezes first, so that
    // its jobs cannot end while the next server starts.
    let pid = cut.child.id();
    // SAFETY: signalling a child process this test started and still owns.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    // Only now a server with workers joins: nothing but a lost lease gives it these jobs.
    let taker = serve(&db, "2");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(format!("gradlab/{pid}"))
            .execute(&pool)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    for (id, spec) in ids.iter().zip(&specs) {
        let j = wait_for(&mut client, *id, |j| state(j) == JobState::Succeeded).await;
        assert!(j.attempt >= 2, "job {id} was taken over: {j:?}");
        assert_eq!(stored_bits(&mut client, *id).await, expected_bits(spec), "job {id}: a clean history");
    }
    pool.close().await;
    drop((cut, taker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_history_through_a_server_that_does_not_train() {
    let Some(db) = PgTestDb::create().await else { return };
    let trainer = serve(&db, "1");
    let api = serve(&db, "0");
    let mut client = connect_retrying(&api.url).await;
    let id = client.submit_job(small(5, 1_000_000)).await.unwrap().into_inner().id;
    let running = wait_for(&mut client, id, |j| j.steps_done > 200).await;
    assert!(!running.worker.is_empty());
    let h = client
        .get_history(pb::HistoryRequest { job_id: id, metrics: vec!["loss".into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(h.series[0].steps.len() >= 200);
    let started = Instant::now();
    let j = client.cancel_job(pb::JobId { id }).await.unwrap().into_inner();
    assert_eq!(state(&j), JobState::Cancelled, "the cancel reached the server training it: {j:?}");
    eprintln!("cancel through another server took {:?}", started.elapsed());
    drop((trainer, api));
}

#[test]
fn a_bad_database_is_one_line_that_names_it_without_its_password() {
    for (url, want) in [
        ("postgres://postgres:s3cret@127.0.0.1:1/gradlab", "postgres://postgres:***@127.0.0.1:1/gradlab"),
        ("postgres://postgres@127.0.0.1:5432/gradlab_no_such_db_x7", "gradlab_no_such_db_x7"),
        ("postgres://postgres:s3cret@127.0.0.1:5432:99/x", "postgres://postgres:***@127.0.0.1:5432:99/x"),
    ] {
        for cmd in ["serve", "worker"] {
            let mut args = vec![cmd, "--database", url];
            if cmd == "serve" {
                args.extend(["--addr", "127.0.0.1:0"]);
            }
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab")).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {url}");
            let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("gradlab:")).collect();
            assert_eq!(lines.len(), 1, "{cmd} {url}: {err}");
            assert!(lines[0].contains(want) && !err.contains("s3cret"), "{cmd} {url}: {err}");
        }
    }
}
