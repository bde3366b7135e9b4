//! Several servers on one PostgreSQL: what sharing costs (issue 12's figures), from one run.
//!
//! Each case runs on a database of its own (`store::testing::PgTestDb`, on
//! GRADLAB_TEST_DATABASE_URL or this machine's server) with the "servers" in this process:
//! each a `Runner` over its own `PgStore` (its own connection pool and LISTEN connection), as
//! separate processes would be.
//!
//! - ingest into PostgreSQL: a 17-layer job's steps, 1,000 a call (SQLite beside it);
//! - one layer's 100,000-step history read back (all 12 metrics, and one);
//! - claim latency: a job submitted on a server without workers until another server's idle
//!   worker has it running (woken by NOTIFY);
//! - cross-server watch latency: a step committed by one server until a watcher on another
//!   has it;
//! - the 288-job `seed-claims-mini` sweep on two servers with one worker each, sharing
//!   PostgreSQL, against one server with two workers on SQLite.
//!
//!     cargo bench --bench scale_out

use std::sync::Arc;
use std::time::{Duration, Instant};

use gradlab::engine::spec::JobSpec;
use gradlab::engine::stats::LayerStats;
use gradlab::engine::train::StepRecord;
use gradlab::runner::sweep::preset;
use gradlab::runner::{HistoryQuery, JobId, JobState, LiveEvent, MetricBatch, Runner, RunnerConfig, Store};
use gradlab::store::testing::PgTestDb;
use gradlab::store::{PgStore, SqliteStore};
use tokio::sync::mpsc;

#[path = "support/mod.rs"]
mod support;

const LAYERS: usize = 17;

fn record(step: u64) -> StepRecord {
    let layers = (0..LAYERS)
        .map(|l| {
            let x = ((step as f64 + 1.0).ln() * (l as f64 + 1.0)) as f32 as f64;
            LayerStats {
                grad_norm: x * 1e-3,
                err_norm: x.sin(),
                weight_norm: 1.0 + x,
                act_std: 0.5,
                ..Default::default()
            }
        })
        .collect();
    let mut r = StepRecord {
        step,
        loss: 1.0 / (step as f64 + 1.0),
        accuracy: 0.5,
        lr: 0.01,
        grad_norm: 1.0,
        layers,
        histograms: vec![],
    };
    r.round_to_f32();
    r
}

fn batch(job: JobId, from: u64, n: u64) -> MetricBatch {
    MetricBatch { job: Some(job), attempt: None, steps: (from..from + n).map(record).collect(), evals: vec![] }
}

/// Layer-step rows per second appending 1,000-step batches to a fresh job.
async fn ingest(store: &dyn Store) -> f64 {
    let spec = JobSpec::default().with_depth(LAYERS - 1, 8);
    let job = store.create_job(&spec, None, None).await.unwrap().id;
    let calls = 20;
    let batches: Vec<MetricBatch> = (0..calls).map(|c| batch(job, c * 1000, 1000)).collect();
    let t = Instant::now();
    for b in &batches {
        store.append_metrics(std::slice::from_ref(b)).await.unwrap();
    }
    (calls * 1000 * LAYERS as u64) as f64 / t.elapsed().as_secs_f64()
}

/// Milliseconds to read one layer's 100,000 steps (all 12 metrics, then one).
async fn long_read(store: &dyn Store) -> (f64, f64) {
    let spec = JobSpec::default().with_depth(LAYERS - 1, 8);
    let job = store.create_job(&spec, None, None).await.unwrap().id;
    for from in (0..100_000).step_by(10_000) {
        store.append_metrics(&[batch(job, from, 10_000)]).await.unwrap();
    }
    let all: Vec<String> = LayerStats::METRICS.iter().map(|m| m.to_string()).collect();
    let mut out = [0.0; 2];
    for (k, metrics) in [all, vec!["grad_norm".to_string()]].into_iter().enumerate() {
        let q = HistoryQuery { layers: Some(vec![8]), metrics: Some(metrics), ..Default::default() };
        let mut ms = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let h = store.history(job, &q).await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(h.series[0].steps.len(), 100_000);
        }
        out[k] = support::median(ms);
    }
    (out[0], out[1])
}

async fn pg_runner(url: &str, workers: usize) -> Runner {
    let store = PgStore::open(url).await.unwrap();
    Runner::start(Arc::new(store), RunnerConfig::with_workers(workers)).await.unwrap()
}

async fn until_state(store: &dyn Store, id: JobId, done: impl Fn(JobState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(store.get_job(id).await.unwrap().unwrap().state) {
        assert!(Instant::now() < deadline, "job {id} stuck");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Milliseconds from a submission on one server to the job running on another's idle worker.
async fn claim_latency(url: &str) -> f64 {
    let api = pg_runner(url, 0).await;
    let worker = pg_runner(url, 1).await;
    let spec = JobSpec { steps: 1, ..JobSpec::default().with_depth(1, 4) };
    let mut ms = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let id = api.submit(spec.clone(), None).await.unwrap().id;
        until_state(&**api.store(), id, |s| s != JobState::Queued).await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        until_state(&**api.store(), id, |s| s.is_terminal()).await;
    }
    worker.shutdown(Duration::from_secs(5)).await;
    api.shutdown(Duration::from_secs(5)).await;
    support::median(ms)
}

/// Step arrival times (since `t0`) at a watcher of job `id` on `runner`.
fn watch_times(runner: Runner, id: JobId, t0: Instant) -> tokio::task::JoinHandle<Vec<(u64, f64)>> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::channel(4096);
        let watching = runner.clone();
        tokio::spawn(async move { watching.watch(id, 0, tx).await });
        let mut seen = Vec::new();
        while let Some(Ok(ev)) = rx.recv().await {
            if let LiveEvent::Step(s) = ev {
                seen.push((s.step, t0.elapsed().as_secs_f64() * 1e3));
            }
        }
        seen
    })
}

/// Median milliseconds from a step's commit on one server (its writer's append returning) to
/// that step reaching a watcher on another server (NOTIFY, then the watcher reads the row).
async fn watch_latency(url: &str) -> f64 {
    let watcher = pg_runner(url, 0).await;
    let trainer = PgStore::open(url).await.unwrap();
    let id = trainer.create_job(&JobSpec::default().with_depth(LAYERS - 1, 8), None, None).await.unwrap().id;
    let claim = trainer.claim_next("bench-trainer", Duration::from_secs(60)).await.unwrap().unwrap();
    let t0 = Instant::now();
    let seen = watch_times(watcher.clone(), id, t0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut committed = Vec::new();
    for step in 0..200 {
        let mut b = batch(id, step, 1);
        b.attempt = Some(claim.attempt);
        trainer.append_metrics(&[b]).await.unwrap();
        committed.push(t0.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    trainer.mark_finished(id, claim.attempt, JobState::Succeeded, 0, None, None).await.unwrap();
    let seen = seen.await.unwrap();
    watcher.shutdown(Duration::from_secs(5)).await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (0..200).collect::<Vec<_>>(), "every step, in order");
    support::median(seen.iter().map(|&(step, t)| t - committed[step as usize]).collect())
}

/// CPU seconds used so far by this process and by every `postgres` process on the machine
/// (from /proc; the database's share of a sweep's cost).
fn cpu_seconds() -> (f64, f64) {
    let ticks = |stat: &str| -> f64 {
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (t(11) + t(12)) / 100.0
    };
    let own = std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s));
    let mut pg = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        if std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "postgres") {
            pg += std::fs::read_to_string(p.join("stat")).map_or(0.0, |s| ticks(&s));
        }
    }
    (own, pg)
}

/// Jobs per second of the 288-job seed-claims-mini sweep on these runners (submitted to the
/// first, trained by all).
async fn sweep_rate(runners: &[Runner]) -> f64 {
    let spec = preset("seed-claims-mini").unwrap();
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let sweep = runners[0].submit_sweep(spec).await.unwrap();
    loop {
        let s = runners[0].get_sweep(sweep.id).await.unwrap();
        if s.state().is_terminal() {
            if s.counts.succeeded != 288 {
                let f = gradlab::runner::JobFilter { sweep_id: Some(sweep.id.0), ..Default::default() };
                let page = gradlab::runner::PageRequest { size: 1000, ..Default::default() };
                let (jobs, _) = runners[0].store().list_jobs(&f, Default::default(), &page).await.unwrap();
                for j in jobs.iter().filter(|j| j.state != JobState::Succeeded) {
                    eprintln!("job {} {:?}: {:?}", j.id, j.state, j.error);
                }
                panic!("{} of 288 jobs succeeded", s.counts.succeeded);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds();
    println!(
        "  {} runner(s): {secs:.1} s; CPU s: this process {:.1}, postgres {:.1}",
        runners.len(),
        cpu1.0 - cpu0.0,
        cpu1.1 - cpu0.1
    );
    288.0 / secs
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(dir.path().join("b.db").to_str().unwrap()).await.unwrap();
        let Some(db) = PgTestDb::create().await else {
            eprintln!("no PostgreSQL: nothing to measure");
            return;
        };
        let pg = PgStore::open(&db.url).await.unwrap();
        let cpu = support::cpu_model();
        println!("scale_out bench on {cpu}, PostgreSQL on this machine");
        println!("ingest, layer-step rows/s (1,000 steps x 17 layers a call): PostgreSQL {:.0}, SQLite {:.0}", ingest(&pg).await, ingest(&sqlite).await);
        let (all, one) = long_read(&pg).await;
        println!("one layer's 100,000 steps from PostgreSQL: {all:.1} ms (12 metrics), {one:.1} ms (one metric)");
        println!("claim latency, submit to running on another server's idle worker: median {:.1} ms", claim_latency(&db.url).await);
        println!("cross-server watch latency, commit on one server to the event on another's watcher: median {:.1} ms", watch_latency(&db.url).await);
        drop(pg);

        // The one-server PostgreSQL run first: it also lets the database settle after the
        // ingest above (autovacuum, checkpoint) before the figure that counts.
        let db3 = PgTestDb::create().await.unwrap();
        let one = pg_runner(&db3.url, 2).await;
        let one_pg = sweep_rate(std::slice::from_ref(&one)).await;
        one.shutdown(Duration::from_secs(1)).await;
        let db2 = PgTestDb::create().await.unwrap();
        let shared = [pg_runner(&db2.url, 1).await, pg_runner(&db2.url, 1).await];
        let two_pg = sweep_rate(&shared).await;
        for r in &shared {
            r.shutdown(Duration::from_secs(1)).await;
        }
        // A fresh file: the ingest's jobs above are still queued, and a runner would claim them.
        drop(sqlite);
        let fresh = SqliteStore::open(dir.path().join("sweep.db").to_str().unwrap()).await.unwrap();
        let single = Runner::start(Arc::new(fresh), RunnerConfig::with_workers(2)).await.unwrap();
        let one_sqlite = sweep_rate(&[single]).await;
        println!(
            "seed-claims-mini (288 jobs): two servers x 1 worker on PostgreSQL {two_pg:.1} jobs/s, one server x 2 workers on SQLite {one_sqlite:.1} jobs/s: {:.2}x",
            two_pg / one_sqlite
        );
        println!("  (one server x 2 workers on PostgreSQL: {one_pg:.1} jobs/s, {:.2}x)", one_pg / one_sqlite);
    });
}
