//! History store throughput: ingest of layer-step rows and reads of long histories.
//!
//! Compares the chosen layout (b) — `SqliteStore`, chunked columnar BLOBs per (job, layer) —
//! with (a), the classic row per (job, layer, step) with the 12 metrics as REAL columns and an
//! index on (job, layer, step), written and read with the same sqlx/SQLite settings (WAL,
//! synchronous NORMAL). A "layer-step row" is one layer's 12 metrics at one step.
//!
//! Run: `cargo bench --bench store` (about a minute, most of it building the 100,000-step
//! histories the read cases use). Criterion's `thrpt` for the ingest cases is in layer-step rows
//! per second; a summary of all figures is printed at the end.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gradlab::engine::spec::JobSpec;
use gradlab::engine::stats::LayerStats;
use gradlab::engine::train::{StepRecord, Trainer};
use gradlab::runner::{HistoryQuery, JobId, MetricBatch, Store, history};
use gradlab::store::SqliteStore;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row};
use tokio::runtime::Runtime;

const LAYERS: usize = 17;
const LONG_STEPS: u64 = 100_000;
const BATCH_STEPS: u64 = 1000;
/// Rows per multi-row INSERT for layout (a): 15 bound values each, under SQLite's 32766.
const ROWS_PER_INSERT: usize = 500;

fn record(step: u64) -> StepRecord {
    let layers = (0..LAYERS)
        .map(|l| {
            let x = (step as f64 + 1.0).ln() * (l as f64 + 1.0);
            LayerStats {
                grad_norm: x.exp() * 1e-3,
                bias_grad_norm: x * 0.5,
                err_norm: x.sin(),
                grad_mean_abs: x.cos(),
                grad_max_abs: x * 2.0,
                weight_norm: 1.0 + x,
                update_ratio: 1e-3 / (1.0 + x),
                act_mean: x.sin() * 0.1,
                act_std: 0.5 + x.cos() * 0.1,
                saturated: 0.01,
                dead: 0.0,
                nonfinite: 0,
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
    // As the engine records them.
    r.round_to_f32();
    r
}

/// Every statistic random in all its f32 bits: the worst case for compression.
fn noisy(step: u64, state: &mut u64) -> StepRecord {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        // A positive f32 in [1, 2) times a power of ten: random mantissa, spread exponents.
        (1.0 + (*state >> 41) as f32 / (1u32 << 23) as f32) as f64 * 10f64.powi((*state % 7) as i32 - 3)
    };
    let mut r = record(step);
    for l in &mut r.layers {
        let v: Vec<f64> = (0..11).map(|_| next()).collect();
        (l.grad_norm, l.bias_grad_norm, l.err_norm, l.grad_mean_abs, l.grad_max_abs) = (v[0], v[1], v[2], v[3], v[4]);
        (l.weight_norm, l.update_ratio, l.act_mean, l.act_std, l.saturated, l.dead) =
            (v[5], v[6], v[7], v[8], v[9], v[10]);
    }
    r.loss = next();
    r.grad_norm = next();
    r.round_to_f32();
    r
}

/// A real run's records: tanh, 16 hidden layers of 32, digits, every step recorded.
fn trained(steps: u64) -> Vec<StepRecord> {
    let spec = JobSpec { steps, eval_every: 0, seed: 7, batch: 32, ..JobSpec::default().with_depth(LAYERS - 1, 32) };
    let mut t = Trainer::<f32>::new(&spec).unwrap();
    let mut out = Vec::with_capacity(steps as usize);
    while !t.finished() {
        out.push(t.step());
    }
    out
}

/// Bytes the store holds for a job's chunks, per layer-step (the step scalars included).
async fn stored_bytes_per_layer_step(path: &std::path::Path, job: JobId) -> f64 {
    let pool = SqlitePoolOptions::new().connect_with(SqliteConnectOptions::new().filename(path)).await.unwrap();
    let (bytes, rows): (i64, i64) = sqlx::query_as(
        "SELECT sum(length(data)), (SELECT sum(n) FROM chunks WHERE job_id = ?1 AND layer >= 0) FROM chunks WHERE job_id = ?1",
    )
    .bind(job.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    bytes as f64 / rows as f64
}

fn batch(job: JobId, from: u64, n: u64) -> MetricBatch {
    MetricBatch { job: Some(job), attempt: None, steps: (from..from + n).map(record).collect(), evals: vec![] }
}

/// Layout (a): a row per (job, layer, step).
struct RowStore {
    pool: SqlitePool,
}

impl RowStore {
    async fn open(path: &std::path::Path) -> RowStore {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .page_size(16384)
            .pragma("cache_size", "-32768")
            .pragma("wal_autocheckpoint", "2000");
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
        let cols: Vec<String> = LayerStats::METRICS.iter().map(|m| format!("{m} REAL")).collect();
        let sql = format!("CREATE TABLE rows (job INTEGER, layer INTEGER, step INTEGER, {})", cols.join(", "));
        sqlx::query(AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        sqlx::query("CREATE INDEX rows_by_series ON rows (job, layer, step)").execute(&pool).await.unwrap();
        RowStore { pool }
    }

    async fn append(&self, job: i64, steps: &[StepRecord]) {
        let mut tx = self.pool.begin().await.unwrap();
        let rows: Vec<(u64, usize, [f64; 12])> = steps
            .iter()
            .flat_map(|s| s.layers.iter().enumerate().map(move |(l, st)| (s.step, l, st.values())))
            .collect();
        for part in rows.chunks(ROWS_PER_INSERT) {
            let values = vec![format!("(?{})", ", ?".repeat(14)); part.len()].join(", ");
            let sql = format!("INSERT INTO rows VALUES {values}");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (step, layer, v) in part {
                q = q.bind(job).bind(*layer as i64).bind(*step as i64);
                for x in v {
                    q = q.bind(*x);
                }
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// One layer's full history, as (steps, 12 metric columns).
    async fn read_layer(&self, job: i64, layer: i64) -> (Vec<u64>, Vec<Vec<f64>>) {
        let cols = LayerStats::METRICS.join(", ");
        let sql = format!("SELECT step, {cols} FROM rows WHERE job = ? AND layer = ? ORDER BY step");
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(job).bind(layer).fetch_all(&self.pool).await.unwrap();
        let mut steps = Vec::with_capacity(rows.len());
        let mut values: Vec<Vec<f64>> = (0..12).map(|_| Vec::with_capacity(rows.len())).collect();
        for r in &rows {
            steps.push(r.get::<i64, _>(0) as u64);
            for (c, col) in values.iter_mut().enumerate() {
                col.push(r.get::<f64, _>(c + 1));
            }
        }
        (steps, values)
    }
}

fn layer_metrics() -> Vec<String> {
    LayerStats::METRICS.iter().map(|m| m.to_string()).collect()
}

/// Mean wall time of `f` over `n` runs.
fn time<T>(n: u32, mut f: impl FnMut() -> T) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    t.elapsed() / n
}

fn bench_store(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = JobSpec::default().with_depth(LAYERS - 1, 8);
    let path = dir.path().join("chunked.db");
    let store = rt.block_on(SqliteStore::open(path.to_str().unwrap())).unwrap();
    let rows = rt.block_on(RowStore::open(&dir.path().join("rows.db")));
    let mut summary = Vec::new();

    // Stored size: a real training run, and noise in every bit f32 has (uncompressed, a
    // layer-step took 104 bytes and the step scalars 40 more per step).
    let sizes_steps = 20_000;
    let smooth = rt.block_on(store.create_job(&spec, None, None)).unwrap().id;
    for part in trained(sizes_steps).chunks(1000) {
        rt.block_on(store.append_metrics(&[MetricBatch {
            job: Some(smooth),
            attempt: None,
            steps: part.to_vec(),
            evals: vec![],
        }]))
        .unwrap();
    }
    let rough = rt.block_on(store.create_job(&spec, None, None)).unwrap().id;
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for from in (0..sizes_steps).step_by(1000) {
        let steps = (from..from + 1000).map(|s| noisy(s, &mut state)).collect();
        rt.block_on(store.append_metrics(&[MetricBatch { job: Some(rough), attempt: None, steps, evals: vec![] }]))
            .unwrap();
    }
    for (name, job) in [("a training run (tanh 16x32, digits)", smooth), ("random f32 statistics", rough)] {
        let b = rt.block_on(stored_bytes_per_layer_step(&path, job));
        summary.push(format!("stored, {name}: {b:.1} bytes per layer-step (all 16 metrics; 106.4 uncompressed)"));
    }

    // Ingest: 1000 steps x 17 layers per call, steps continuing across iterations.
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(BATCH_STEPS * LAYERS as u64));
    let job = rt.block_on(store.create_job(&spec, None, None)).unwrap().id;
    // Records are built once and renumbered per call, so the timings are the store's.
    let template = std::cell::RefCell::new(batch(job, 0, BATCH_STEPS));
    let next = AtomicU64::new(0);
    let append_chunked = |n: u64| {
        let from = next.fetch_add(n, Ordering::Relaxed);
        let mut b = template.borrow_mut();
        b.steps.truncate(n as usize);
        for (i, s) in b.steps.iter_mut().enumerate() {
            s.step = from + i as u64;
        }
        rt.block_on(store.append_metrics(std::slice::from_ref(&*b))).unwrap();
    };
    g.bench_function("chunked_1000_steps", |b| b.iter(|| append_chunked(BATCH_STEPS)));
    let d = time(20, || append_chunked(BATCH_STEPS));
    summary.push(format!(
        "ingest (b) chunked, 1000 steps/call: {:.0} layer-step rows/s",
        (BATCH_STEPS * LAYERS as u64) as f64 / d.as_secs_f64()
    ));
    let d = time(200, || append_chunked(10));
    summary.push(format!(
        "ingest (b) chunked, 10 steps/call:   {:.0} layer-step rows/s ({:.2} ms/call)",
        (10 * LAYERS) as f64 / d.as_secs_f64(),
        d.as_secs_f64() * 1e3
    ));
    let row_next = AtomicU64::new(0);
    let row_template = std::cell::RefCell::new(batch(JobId(1), 0, BATCH_STEPS));
    let append_rows = |n: u64| {
        let from = row_next.fetch_add(n, Ordering::Relaxed);
        let mut b = row_template.borrow_mut();
        for (i, s) in b.steps.iter_mut().enumerate() {
            s.step = from + i as u64;
        }
        rt.block_on(rows.append(1, &b.steps[..n as usize]));
    };
    g.bench_function("rows_1000_steps", |b| b.iter(|| append_rows(BATCH_STEPS)));
    let d = time(5, || append_rows(BATCH_STEPS));
    summary.push(format!(
        "ingest (a) row per layer-step, 1000 steps/call: {:.0} layer-step rows/s",
        (BATCH_STEPS * LAYERS as u64) as f64 / d.as_secs_f64()
    ));
    g.finish();

    // Long histories: a fresh 100,000-step, 17-layer job in each layout.
    let long = rt.block_on(store.create_job(&spec, None, None)).unwrap().id;
    for from in (0..LONG_STEPS).step_by(10_000) {
        rt.block_on(store.append_metrics(&[batch(long, from, 10_000)])).unwrap();
    }
    for from in (0..LONG_STEPS).step_by(10_000) {
        rt.block_on(rows.append(2, &batch(JobId(2), from, 10_000).steps));
    }

    let one_layer_all = HistoryQuery { layers: Some(vec![8]), metrics: Some(layer_metrics()), ..Default::default() };
    let one_layer_one =
        HistoryQuery { layers: Some(vec![8]), metrics: Some(vec!["grad_norm".into()]), ..Default::default() };
    let all_down = HistoryQuery { metrics: Some(layer_metrics()), max_points: Some(1000), ..Default::default() };
    let check = rt.block_on(store.history(long, &one_layer_all)).unwrap();
    assert!(check.series.len() == 12 && check.series.iter().all(|s| s.steps.len() == LONG_STEPS as usize));
    let check = rt.block_on(store.history(long, &all_down)).unwrap();
    assert!(check.series.len() == 12 * LAYERS && check.series.iter().all(|s| s.steps.len() == 1000));
    assert_eq!(rt.block_on(rows.read_layer(2, 8)).0.len(), LONG_STEPS as usize);

    let mut g = c.benchmark_group("read_100k_steps");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let cases: [(&str, &HistoryQuery); 3] = [
        ("chunked_one_layer_12_metrics", &one_layer_all),
        ("chunked_one_layer_one_metric", &one_layer_one),
        ("chunked_17_layers_12_metrics_1000_points", &all_down),
    ];
    for (name, q) in cases {
        g.bench_function(name, |b| b.iter(|| rt.block_on(store.history(long, q)).unwrap()));
        let d = time(5, || rt.block_on(store.history(long, q)).unwrap());
        summary.push(format!("read (b) {name}: {:.1} ms", d.as_secs_f64() * 1e3));
    }
    // The full history streamed in pieces (what StreamHistory and `gradlab history` read).
    let export = || {
        rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(2);
            let reading = async move { history::read(&store, long, &HistoryQuery::default(), &tx).await.unwrap() };
            let counting = async {
                let mut values = 0usize;
                while let Some(p) = rx.recv().await {
                    values += p.steps.len() * p.columns.len();
                }
                values
            };
            tokio::join!(reading, counting).1
        })
    };
    let t = Instant::now();
    let values = export();
    let d = t.elapsed();
    summary.push(format!(
        "read (b) the whole 100,000-step, 17-layer history streamed: {values} values in {:.2} s ({:.1} M values/s)",
        d.as_secs_f64(),
        values as f64 / d.as_secs_f64() / 1e6
    ));
    g.bench_function("rows_one_layer_12_metrics", |b| b.iter(|| rt.block_on(rows.read_layer(2, 8))));
    let d = time(5, || rt.block_on(rows.read_layer(2, 8)));
    summary.push(format!("read (a) rows_one_layer_12_metrics: {:.1} ms", d.as_secs_f64() * 1e3));
    g.finish();

    println!("\nstore summary:");
    for line in summary {
        println!("  {line}");
    }
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
