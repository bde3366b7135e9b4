//! One training step (`Trainer::step`) against the plain GEMMs it is built on, against the
//! machine's best GEMM on the same products, and against the peer loops.
//!
//! - The best GEMM: numpy's BLAS (OpenBLAS), on one thread and on two, run beside it by
//!   `benches/blas_reference.py` on the step's own products.
//! - The peers: `benches/peers/np_mlp.py` and `jax_mlp.py`, the same training loop in numpy and
//!   in jax.jit, on one core and on two (GRADLAB_BENCH_PEERS=0 skips them).
//!
//! GRADLAB_BENCH_PYTHON names a python with numpy, threadpoolctl and jax (default python3);
//! without them those columns stay empty and the table says why.
//!
//! Configs (D hidden tanh layers of width W, batch B) as the peer loops: input 64 -> D x W ->
//! 10-class softmax cross-entropy, plain SGD, f32, per-layer statistics recorded every step;
//! 6x32x32 is the shape of the `seed-claims` sweep's jobs. Each config runs on a one-thread
//! rayon pool, with recording on and off and with Adam instead of SGD, and on a two-thread
//! pool. In the same run: a plain 1024³ f32 GEMM and the plain GEMMs of one step on one thread.
//!
//! After criterion's own report, tables print steps/s, effective GFLOP/s (6·B·fan_in·fan_out
//! summed over layers, as the peers count), the ratio to OpenBLAS on the step's products, the
//! recording overhead, Adam's cost over SGD and the two-thread speed-up, from each benchmark's
//! fastest sample (on a shared machine other work only adds time) and from its median sample;
//! then the recording overhead again, from interleaved pairs of steps; then gradlab beside the
//! peers. README's "Speed" section holds the last runs' figures.
//!
//!     cargo bench --bench train_step
//!     cargo bench --bench train_step -- 'w64'      # a subset (the tables show what ran)

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gradlab::engine::activation::Activation;
use gradlab::engine::gemm::matmul;
use gradlab::engine::init::Init;
use gradlab::engine::optim::Optimizer;
use gradlab::engine::spec::{JobSpec, MAX_STEPS};
use gradlab::engine::train::Trainer;
use ndarray::Array2;
use ndarray::linalg::general_mat_mul;
use rayon::{ThreadPool, ThreadPoolBuilder};

#[path = "support/mod.rs"]
mod support;

const INPUT: usize = 64;
const CLASSES: usize = 10;

/// (D, W, B): the peers' configs, and 6x32x32, the shape of the `seed-claims` sweep's jobs.
const CONFIGS: &[(usize, usize, usize)] = &[(6, 32, 32), (4, 64, 64), (8, 256, 128), (32, 256, 128), (8, 1024, 256)];

/// Per-iteration seconds of every sample, by benchmark id.
static TIMES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn note(id: &str, iters: u64, elapsed: Duration) {
    let mut t = TIMES.lock().unwrap();
    t.entry(id.to_string()).or_default().push(elapsed.as_secs_f64() / iters.max(1) as f64);
}

/// Which per-iteration time of a benchmark's samples the table uses.
#[derive(Clone, Copy)]
enum Pick {
    /// The fastest sample: on a shared machine other work only ever adds time.
    Best,
    Median,
}

fn pick(id: &str, how: Pick) -> Option<f64> {
    let t = TIMES.lock().unwrap();
    let mut v = t.get(id)?.clone();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(match how {
        Pick::Best => v[0],
        Pick::Median => v[v.len() / 2],
    })
}

fn make_pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool")
}

fn spec(d: usize, w: usize, b: usize, record: bool) -> JobSpec {
    JobSpec {
        name: format!("bench d{d} w{w} b{b}"),
        activation: Activation::Tanh,
        hidden: vec![w; d],
        init: Init::LecunNormal,
        optimizer: Optimizer::Sgd,
        lr: 0.01,
        batch: b,
        steps: MAX_STEPS,
        eval_every: 0,
        dataset: format!("gaussian:dim={INPUT},classes={CLASSES},n=8192"),
        test_fraction: 0.1,
        record_every: if record { 1 } else { MAX_STEPS },
        histogram_every: 0,
        stop_on_nonfinite: false,
        ..JobSpec::default()
    }
}

fn dims(d: usize, w: usize) -> Vec<usize> {
    let mut dims = vec![INPUT];
    dims.extend(std::iter::repeat_n(w, d));
    dims.push(CLASSES);
    dims
}

fn id(d: usize, w: usize, b: usize, what: &str) -> String {
    format!("d{d}_w{w}_b{b}/{what}")
}

fn bench_step(c: &mut Criterion, d: usize, w: usize, b: usize, threads: usize, record: bool) {
    let name = id(d, w, b, &format!("step_{threads}t{}", if record { "" } else { "_norec" }));
    bench_spec(c, name, threads, spec(d, w, b, record));
}

/// The same step with Adam instead of SGD (one thread, recording).
fn bench_step_adam(c: &mut Criterion, d: usize, w: usize, b: usize) {
    let adam = JobSpec { optimizer: "adam".parse().expect("a known optimizer"), ..spec(d, w, b, true) };
    bench_spec(c, id(d, w, b, "step_1t_adam"), 1, adam);
}

/// Steps `trainer` past the steps a job times both ways (engine::tuning); how many it took.
fn past_tuning(trainer: &mut Trainer<f32>) -> usize {
    let mut tuning = 0;
    while trainer.wide_copies().is_none() {
        black_box(trainer.step());
        tuning += 1;
    }
    tuning
}

/// The configs this run benched (a filter may have left some out).
fn benched() -> impl Iterator<Item = (usize, usize, usize)> {
    CONFIGS.iter().copied().filter(|&(d, w, b)| pick(&id(d, w, b, "step_1t"), Pick::Best).is_some())
}

fn bench_spec(c: &mut Criterion, name: String, threads: usize, spec: JobSpec) {
    let pool = make_pool(threads);
    let mut trainer = pool.install(|| Trainer::<f32>::new(&spec)).expect("valid bench spec");
    // A job times its first steps both ways where it has wide layers (engine::tuning); the
    // bench measures the steps after, as almost every step of a job is.
    let tuning = pool.install(|| past_tuning(&mut trainer));
    if tuning > 0 {
        let way = if trainer.wide_copies() == Some(true) { "transposed copies of W" } else { "W itself" };
        println!("{name}: the wide layers' input gradients read {way} (timed on its first {tuning} steps)");
    }
    c.bench_function(&name, |bench| {
        bench.iter_custom(|iters| {
            pool.install(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(trainer.step());
                }
                let el = start.elapsed();
                note(&name, iters, el);
                el
            })
        })
    });
}

/// The plain products of one step on one thread: per layer A·W (forward), Aᵀ·dZ (weight
/// gradient) and dZ·Wᵀ (input gradient), with the peers' shapes.
fn bench_step_gemms(c: &mut Criterion, d: usize, w: usize, b: usize) {
    let name = id(d, w, b, "gemms_1t");
    let dims = dims(d, w);
    let fill = |r: usize, k: usize| Array2::from_shape_fn((r, k), |(i, j)| ((i * 7 + j * 13) % 17) as f32 / 17.0 - 0.5);
    let acts: Vec<Array2<f32>> = dims.iter().map(|&n| fill(b, n)).collect();
    let ws: Vec<Array2<f32>> = dims.windows(2).map(|p| fill(p[0], p[1])).collect();
    let mut dws: Vec<Array2<f32>> = dims.windows(2).map(|p| Array2::zeros((p[0], p[1]))).collect();
    let mut outs: Vec<Array2<f32>> = dims.iter().map(|&n| Array2::zeros((b, n))).collect();
    let pool = make_pool(1);
    c.bench_function(&name, |bench| {
        bench.iter_custom(|iters| {
            pool.install(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    for l in 0..ws.len() {
                        general_mat_mul(1.0, &acts[l], &ws[l], 0.0, &mut outs[l + 1]);
                    }
                    for l in (0..ws.len()).rev() {
                        general_mat_mul(1.0, &acts[l].t(), &acts[l + 1], 0.0, &mut dws[l]);
                        general_mat_mul(1.0, &acts[l + 1], &ws[l].t(), 0.0, &mut outs[l]);
                    }
                    black_box(&outs);
                }
                let el = start.elapsed();
                note(&name, iters, el);
                el
            })
        })
    });
}

fn bench_gemm_1024(c: &mut Criterion) {
    let n = 1024;
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5);
    let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 13 + j * 7) % 89) as f32 / 89.0 - 0.5);
    let mut out = Array2::<f32>::zeros((n, n));
    let pool = make_pool(1);
    c.bench_function("gemm_1024_1t", |bench| {
        bench.iter_custom(|iters| {
            pool.install(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    general_mat_mul(1.0, &a, &b, 0.0, &mut out);
                    black_box(&out);
                }
                let el = start.elapsed();
                note("gemm_1024_1t", iters, el);
                el
            })
        })
    });
    // The engine's row-split product on two threads: the most two threads can give here.
    let pool2 = make_pool(2);
    c.bench_function("engine_matmul_1024_2t", |bench| {
        bench.iter_custom(|iters| {
            pool2.install(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    matmul(a.view(), b.view(), 0.0, out.view_mut());
                    black_box(&out);
                }
                let el = start.elapsed();
                note("engine_matmul_1024_2t", iters, el);
                el
            })
        })
    });
}

fn benches(c: &mut Criterion) {
    bench_gemm_1024(c);
    for &(d, w, b) in CONFIGS {
        bench_step(c, d, w, b, 1, true);
        bench_step(c, d, w, b, 1, false);
        bench_step_adam(c, d, w, b);
        bench_step(c, d, w, b, 2, true);
        bench_step_gemms(c, d, w, b);
    }
    let blas = [blas_reference(1), blas_reference(2)];
    summary(Pick::Best, &blas);
    summary(Pick::Median, &blas);
    recording_pairs();
    peers_summary(&peer_rates());
}

/// Rounds of [`recording_pairs`]; a round times one block of steps of each trainer.
const PAIR_ROUNDS: usize = 60;
/// About how long one block of steps runs.
const PAIR_BLOCK: Duration = Duration::from_millis(10);

/// The recording overhead measured in interleaved pairs: a trainer that records every step and
/// its twin that never records take turns on one thread, a short block of steps each (the order
/// alternating from round to round), and each round gives one ratio of their times. On a shared
/// machine the other work slows both halves of a round alike, so the median of those ratios
/// settles where the ratio of two separately timed benchmarks does not.
fn recording_pairs() {
    let pool = make_pool(1);
    let ran: Vec<_> = benched().collect();
    if ran.is_empty() {
        return;
    }
    eprintln!();
    eprintln!(
        "recording cost in interleaved pairs ({PAIR_ROUNDS} rounds of ~{} ms blocks, one thread): \
         median ratio of recording to not, with its quartiles",
        PAIR_BLOCK.as_millis()
    );
    for (d, w, b) in ran {
        let (mut rec, mut norec) = pool.install(|| {
            let make = |record| Trainer::<f32>::new(&spec(d, w, b, record)).expect("valid bench spec");
            (make(true), make(false))
        });
        let ratios = pool.install(|| {
            let steps = |t: &mut Trainer<f32>, n: usize| {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(t.step());
                }
                start.elapsed().as_secs_f64()
            };
            // Warm both up, past the steps a job times both ways, and size a block from the
            // twin's rate.
            past_tuning(&mut rec);
            past_tuning(&mut norec);
            let mut n = 1;
            while steps(&mut norec, n) < PAIR_BLOCK.as_secs_f64() / 4.0 {
                n *= 2;
            }
            steps(&mut rec, n);
            let n = (n as f64 * PAIR_BLOCK.as_secs_f64() / steps(&mut norec, n)).ceil() as usize;
            let mut ratios: Vec<f64> = (0..PAIR_ROUNDS)
                .map(|round| {
                    if round % 2 == 0 {
                        let r = steps(&mut rec, n);
                        r / steps(&mut norec, n)
                    } else {
                        let o = steps(&mut norec, n);
                        steps(&mut rec, n) / o
                    }
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            ratios
        });
        let q = |f: f64| 100.0 * (ratios[((ratios.len() - 1) as f64 * f).round() as usize] - 1.0);
        eprintln!("{:<14} {:+.1}% (quartiles {:+.1}% .. {:+.1}%)", format!("{d},{w},{b}"), q(0.5), q(0.25), q(0.75));
    }
}

/// numpy's BLAS on the step's own products and on 1024³, on one thread or two, in this run
/// (`benches/blas_reference.py`): per config and for "gemm_1024", (fastest, median) seconds.
struct Blas {
    name: String,
    times: BTreeMap<String, (f64, f64)>,
}

/// Runs the reference with GRADLAB_BENCH_PYTHON (default python3), which needs numpy; without
/// it the table says why and leaves the column empty.
fn blas_reference(threads: usize) -> Result<Blas, String> {
    let python = support::bench_python();
    let configs: Vec<[usize; 3]> = CONFIGS.iter().map(|&(d, w, b)| [d, w, b]).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/blas_reference.py");
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(script).arg(serde_json::to_string(&configs).expect("configs as JSON"));
    support::threads(&mut cmd, Some(threads));
    let out = cmd.output().map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{python} {script}: {}", err.lines().last().unwrap_or("failed")));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("its output: {e}"))?;
    let pair = |x: &serde_json::Value| Some((x.get(0)?.as_f64()?, x.get(1)?.as_f64()?));
    let mut times: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    if let Some(g) = pair(&v["gemm_1024"]) {
        times.insert("gemm_1024".into(), g);
    }
    for (k, x) in v["configs"].as_object().into_iter().flatten() {
        if let Some(t) = pair(x) {
            times.insert(k.clone(), t);
        }
    }
    Ok(Blas { name: v["blas"].as_str().unwrap_or("numpy").to_string(), times })
}

/// Steps/s (their median trial) of the peer loops in `benches/peers`, by (peer, config, cores).
type PeerRates = BTreeMap<(&'static str, (usize, usize, usize), usize), f64>;

/// Runs `np_mlp.py` and `jax_mlp.py` on every config benched, on one core and on all. A peer
/// that cannot run (no jax, say) leaves its column empty.
fn peer_rates() -> PeerRates {
    let mut rates = PeerRates::new();
    if !support::peers_wanted() {
        return rates;
    }
    for peer in ["np_mlp", "jax_mlp"] {
        for config in benched() {
            for cores in [1, 2] {
                match support::peer_rate(peer, config, cores) {
                    Ok(r) => {
                        rates.insert((peer, config, cores), r);
                    }
                    Err(e) => eprintln!("peer {peer} {config:?} on {cores} core(s): did not run ({e})"),
                }
            }
        }
    }
    rates
}

/// gradlab's step (fastest and median sample, recording every layer) beside the peer loops'
/// median trials, on one core and two.
fn peers_summary(rates: &PeerRates) {
    if rates.is_empty() {
        eprintln!("peers: skipped (GRADLAB_BENCH_PEERS=0, or no python with numpy and jax)");
        return;
    }
    eprintln!();
    eprintln!(
        "gradlab's step against the peer loops of benches/peers, steps/s (gradlab: fastest / median sample; peers: median of 3 trials)"
    );
    eprintln!(
        "{:<14} {:>17} {:>9} {:>9} {:>11} {:>17} {:>9} {:>9} {:>11}",
        "config D,W,B", "gradlab 1 core", "numpy", "JAX", "lead", "gradlab 2 cores", "numpy", "JAX", "lead"
    );
    for (d, w, b) in benched() {
        let mut cells = vec![format!("{d},{w},{b}")];
        for cores in [1, 2] {
            let step = |how| pick(&id(d, w, b, &format!("step_{cores}t")), how).map(|t| 1.0 / t);
            let (best, med) = (step(Pick::Best), step(Pick::Median));
            let np = rates.get(&("np_mlp", (d, w, b), cores)).copied();
            let jax = rates.get(&("jax_mlp", (d, w, b), cores)).copied();
            let peer = np.into_iter().chain(jax).reduce(f64::max);
            cells.push(fmt(best.zip(med), |(b, m)| format!("{b:.1} / {m:.1}")));
            cells.push(fmt(np, |r| format!("{r:.1}")));
            cells.push(fmt(jax, |r| format!("{r:.1}")));
            cells.push(fmt(best.zip(med).zip(peer), |((b, m), p)| format!("{:.2}/{:.2}x", b / p, m / p)));
        }
        eprintln!(
            "{:<14} {:>17} {:>9} {:>9} {:>11} {:>17} {:>9} {:>9} {:>11}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7], cells[8]
        );
    }
    eprintln!("lead = gradlab's rate over the faster peer's (fastest / median sample)");
}

fn fmt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

/// `blas`: the reference on one thread and on two.
fn summary(how: Pick, blas: &[Result<Blas, String>; 2]) {
    let median = |id: &str| pick(id, how);
    let gemm = median("gemm_1024_1t").map(|t| 2.0 * 1024f64.powi(3) / t / 1e9);
    eprintln!();
    let which = match how {
        Pick::Best => "fastest sample",
        Pick::Median => "median sample",
    };
    let cpu = support::cpu_model();
    eprintln!("train_step summary ({which} of each benchmark's criterion samples; ratios from this run; {cpu})");
    // The reference: numpy's BLAS, the same pick of its timed batches.
    let blas_time = |threads: usize, key: &str| {
        blas[threads - 1].as_ref().ok().and_then(|b| b.times.get(key)).map(|&(best, med)| match how {
            Pick::Best => best,
            Pick::Median => med,
        })
    };
    for (i, reference) in blas.iter().enumerate() {
        match reference {
            Ok(b) => eprintln!(
                "reference: {}: 1024^3 at {} GFLOP/s",
                b.name,
                fmt(blas_time(i + 1, "gemm_1024"), |t| format!("{:.1}", 2.0 * 1024f64.powi(3) / t / 1e9))
            ),
            Err(e) => {
                eprintln!("reference: numpy's BLAS skipped ({e}); set GRADLAB_BENCH_PYTHON to a python with numpy")
            }
        }
    }
    let gemm2 = median("engine_matmul_1024_2t").map(|t| 2.0 * 1024f64.powi(3) / t / 1e9);
    eprintln!(
        "1024^3 f32 GEMM, 1 thread: {} GFLOP/s; engine matmul on 2 threads: {} GFLOP/s ({})",
        fmt(gemm, |g| format!("{g:.1}")),
        fmt(gemm2, |g| format!("{g:.1}")),
        fmt(gemm.zip(gemm2), |(g1, g2)| format!("{:.2}x", g2 / g1)),
    );
    eprintln!(
        "{:<14} {:>10} {:>8} {:>9} {:>9} {:>10} {:>8} {:>10} {:>9} {:>10} {:>8} {:>9} {:>11}",
        "config D,W,B",
        "steps/s",
        "GFLOP/s",
        "/OpenBLAS",
        "/gemm1024",
        "gemms st/s",
        "/gemms",
        "norec st/s",
        "rec cost",
        "adam cost",
        "2t st/s",
        "2t/1t",
        "2t/OpenBLAS"
    );
    for &(d, w, b) in CONFIGS {
        let t1 = median(&id(d, w, b, "step_1t"));
        if t1.is_none() {
            continue; // a config the filter left out
        }
        let flops = support::step_flops(&dims(d, w), b);
        let t0 = median(&id(d, w, b, "step_1t_norec"));
        let t2 = median(&id(d, w, b, "step_2t"));
        let ta = median(&id(d, w, b, "step_1t_adam"));
        let tg = median(&id(d, w, b, "gemms_1t"));
        let gf = t1.map(|t| flops / t / 1e9);
        let tb = blas_time(1, &format!("{d},{w},{b}"));
        let tb2 = blas_time(2, &format!("{d},{w},{b}"));
        eprintln!(
            "{:<14} {:>10} {:>8} {:>9} {:>9} {:>10} {:>8} {:>10} {:>9} {:>10} {:>8} {:>9} {:>11}",
            format!("{d},{w},{b}"),
            fmt(t1, |t| format!("{:.1}", 1.0 / t)),
            fmt(gf, |g| format!("{g:.1}")),
            fmt(t1.zip(tb), |(t, tb)| format!("{:.3}", tb / t)),
            fmt(gf.zip(gemm), |(g, r)| format!("{:.3}", g / r)),
            fmt(tg, |t| format!("{:.1}", 1.0 / t)),
            fmt(t1.zip(tg), |(t, g)| format!("{:.3}", g / t)),
            fmt(t0, |t| format!("{:.1}", 1.0 / t)),
            fmt(t1.zip(t0), |(t1, t0)| format!("{:+.1}%", 100.0 * (t1 / t0 - 1.0))),
            fmt(ta.zip(t1), |(ta, t1)| format!("{:+.1}%", 100.0 * (ta / t1 - 1.0))),
            fmt(t2, |t| format!("{:.1}", 1.0 / t)),
            fmt(t1.zip(t2), |(t1, t2)| format!("{:.2}x", t1 / t2)),
            fmt(t2.zip(tb2), |(t, tb)| format!("{:.3}", tb / t)),
        );
    }
    eprintln!(
        "GFLOP/s = 6*B*sum(fan_in*fan_out) per step; /OpenBLAS = step rate over the rate of the same step's \
         products in numpy's BLAS, one thread (the machine's best GEMM on these shapes); \
         2t/OpenBLAS = the same on two threads, both sides; \
         /gemm1024 = step GFLOP/s over the 1024^3 ndarray GEMM's; \
         /gemms = step rate over the rate of the step's plain GEMMs; rec cost = recording every step vs never; \
         adam cost = Adam's step vs SGD's"
    );
}

criterion_group! {
    name = train_step;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = benches
}
criterion_main!(train_step);
