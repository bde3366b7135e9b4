//! A whole preset sweep on one server, against the peer loops on the same shapes.
//!
//! The sweep (`seed-claims`, 1,296 jobs, unless GRADLAB_BENCH_SWEEP names another preset) runs
//! on an in-process `Runner` over a fresh SQLite file with two workers, as `gradlab serve` on
//! this machine would: submit, train, record every 10th step, evaluate, store, settle. It
//! reports the wall time, jobs/s and the training GFLOP/s it sustained (6·B·fan_in·fan_out
//! per layer per step, the peers' count; evaluations not counted).
//!
//! Beside it, the numpy and JAX loops of `benches/peers` time one step of each depth the sweep
//! holds, at its width and batch, on one core; the time they would take for the sweep's steps,
//! two jobs side by side on the two cores, is what the same sweep costs written as a plain
//! training loop (training alone: no evaluation, no store). GRADLAB_BENCH_PYTHON names a python
//! with numpy, threadpoolctl and jax; GRADLAB_BENCH_PEERS=0 skips them.
//!
//! GRADLAB_BENCH_ROUNDS=N (default 1) runs the service and the engine alone N times each,
//! alternating which goes first, and reports each round's ratio and their median: on a shared VM
//! the host's speed moves between two phases minutes apart, so one round's "service adds"
//! swings by tens of percent, while ratios of adjacent runs hold.
//!
//! GRADLAB_BENCH_RECORD_EVERY=N records every Nth step instead of the preset's every 10th: at
//! 1, two 32-wide jobs send the history writer tens of thousands of steps a second.
//!
//!     cargo bench --bench sweep
//!     GRADLAB_BENCH_SWEEP=seed-claims-mini GRADLAB_BENCH_ROUNDS=4 cargo bench --bench sweep

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gradlab::engine::spec::JobSpec;
use gradlab::engine::train::{Trainer, data_shape};
use gradlab::runner::sweep::{SweepSpec, preset};
use gradlab::runner::{Runner, RunnerConfig, network_dims};
use gradlab::store::SqliteStore;

#[path = "support/mod.rs"]
mod support;

const WORKERS: usize = 2;

fn main() {
    let name = std::env::var("GRADLAB_BENCH_SWEEP").unwrap_or_else(|_| "seed-claims".into());
    let mut spec: SweepSpec = preset(&name).expect("a preset sweep");
    if let Ok(every) = std::env::var("GRADLAB_BENCH_RECORD_EVERY") {
        spec.base.record_every = every.parse().expect("GRADLAB_BENCH_RECORD_EVERY: a step count");
    }
    let jobs = spec.expand(usize::MAX).expect("the preset expands");
    let cpu = support::cpu_model();
    println!(
        "sweep bench on {cpu}: {name}, {} jobs recording every {} steps, one server with {WORKERS} workers on SQLite",
        jobs.len(),
        spec.base.record_every
    );

    // Per (depth, width, batch): the jobs' steps, and the FLOPs they make.
    let mut shapes: BTreeMap<(usize, usize, usize), u64> = BTreeMap::new();
    let mut data: HashMap<String, (usize, usize)> = HashMap::new();
    let mut flops = 0.0;
    for job in &jobs {
        // The network as the job builds it: its dataset sets the input and output sizes.
        let shape = *data.entry(job.dataset.clone()).or_insert_with(|| {
            let d = data_shape(job).expect("the preset's dataset loads");
            (d.dim, d.classes)
        });
        let dims = network_dims(job, shape);
        let widths = &job.hidden;
        assert!(
            widths.windows(2).all(|p| p[0] == p[1]) && dims[0] == 64 && dims[dims.len() - 1] == 10,
            "the peers run uniform widths from 64 inputs to 10 classes"
        );
        flops += support::step_flops(&dims, job.batch) * job.steps as f64;
        *shapes.entry((widths.len(), widths[0], job.batch)).or_default() += job.steps;
    }

    let rounds: usize =
        std::env::var("GRADLAB_BENCH_ROUNDS").map_or(1, |r| r.parse().expect("GRADLAB_BENCH_ROUNDS: a count"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(WORKERS).build().unwrap();
    let (mut services, mut ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (secs, engine) = if round % 2 == 0 {
            let secs = service(&rt, &spec, jobs.len());
            (secs, engine_alone(&pool, &jobs))
        } else {
            let engine = engine_alone(&pool, &jobs);
            (service(&rt, &spec, jobs.len()), engine)
        };
        println!(
            "round {}: gradlab {secs:.1} s, {:.2} jobs/s, {:.1} training GFLOP/s on {WORKERS} cores; the engine alone \
             (Trainer::run, two jobs at a time, nothing stored) {engine:.1} s, {:.1} GFLOP/s; the service adds {:.0}%",
            round + 1,
            jobs.len() as f64 / secs,
            flops / secs / 1e9,
            flops / engine / 1e9,
            100.0 * (secs / engine - 1.0)
        );
        services.push(secs);
        ratios.push(secs / engine);
    }
    let secs = support::median(services);
    if rounds > 1 {
        let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "median of {rounds} rounds: gradlab {secs:.1} s, {:.2} jobs/s; the service adds {:.0}% (rounds: {:.0}% to {:.0}%)",
            jobs.len() as f64 / secs,
            100.0 * (support::median(ratios.clone()) - 1.0),
            100.0 * (lo - 1.0),
            100.0 * (hi - 1.0)
        );
    }

    if !support::peers_wanted() {
        return;
    }
    for peer in ["np_mlp", "jax_mlp"] {
        let rates: Result<Vec<(usize, u64, f64)>, String> = shapes
            .iter()
            .map(|(&(d, w, b), &steps)| support::peer_rate(peer, (d, w, b), 1).map(|r| (d, steps, r)))
            .collect();
        let rates = match rates {
            Ok(r) => r,
            Err(e) => {
                println!("{peer}: did not run ({e})");
                continue;
            }
        };
        let wall = rates.iter().map(|&(_, steps, r)| steps as f64 / r).sum::<f64>() / WORKERS as f64;
        let rates: Vec<String> = rates.iter().map(|&(d, _, r)| format!("D{d} {r:.0}")).collect();
        println!(
            "{peer}, one core per job, the sweep's steps two at a time: {wall:.1} s, {:.1} GFLOP/s; gradlab {:.2}x faster (steps/s by depth: {})",
            flops / wall / 1e9,
            wall / secs,
            rates.join(", ")
        );
    }
}

/// The sweep on a fresh server, from submission until it settles: its wall time in seconds.
fn service(rt: &tokio::runtime::Runtime, spec: &SweepSpec, jobs: usize) -> f64 {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("sweep.db").to_str().unwrap()).await.unwrap();
        let runner = Runner::start(Arc::new(store), RunnerConfig::with_workers(WORKERS)).await.unwrap();
        let t = Instant::now();
        let sweep = runner.submit_sweep(spec.clone()).await.unwrap();
        let counts = loop {
            let s = runner.get_sweep(sweep.id).await.unwrap();
            if s.state().is_terminal() {
                break s.counts;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(counts.succeeded as usize, jobs, "every job succeeds: {counts:?}");
        runner.shutdown(Duration::from_secs(1)).await;
        secs
    })
}

/// The same jobs trained two at a time on a two-thread pool, nothing stored: the difference is
/// what the service adds (claims, history, evaluations stored).
fn engine_alone(pool: &rayon::ThreadPool, jobs: &[JobSpec]) -> f64 {
    let t = Instant::now();
    pool.install(|| {
        use rayon::prelude::*;
        jobs.par_iter().with_max_len(1).for_each(|job| {
            let mut trainer = Trainer::<f32>::new(job).expect("a valid job");
            trainer.run(|_| true);
        })
    });
    t.elapsed().as_secs_f64()
}
