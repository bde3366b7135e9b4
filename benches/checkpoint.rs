//! What checkpoints cost (issue 14's figures), from one run:
//!
//! - one checkpoint's cost on the training thread (the state copied and encoded) and in the
//!   writer (stored in SQLite, and in PostgreSQL when one answers), and a resume's (read,
//!   decode, restore);
//! - what they take from training, measured: the same steps trained with no checkpoints and
//!   with a checkpoint every `k` steps handed to a writer task that stores them (as the
//!   server's does), alternately, twice; the time lost per checkpoint, over the interval the
//!   defaults give (every 10,000 steps, at most once a minute), is the share of training the
//!   defaults cost;
//! - for a 4 x 256 network and a 10.5M-parameter one trained with Adam.
//!
//!     cargo bench --bench checkpoint

use std::sync::Arc;
use std::time::{Duration, Instant};

use gradlab::engine::checkpoint::TrainState;
use gradlab::engine::optim::Optimizer;
use gradlab::engine::spec::JobSpec;
use gradlab::engine::train::Trainer;
use gradlab::runner::{JobId, Store};
use gradlab::store::testing::PgTestDb;
use gradlab::store::{PgStore, SqliteStore};

#[path = "support/mod.rs"]
mod support;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

/// Median time to store `data` as a checkpoint of a claimed job (keeping 2, as by default).
async fn write_time(store: &dyn Store, data: &[u8], reps: u64) -> Duration {
    let (id, attempt) = claimed(store).await;
    let mut times = Vec::new();
    for step in 1..=reps {
        let t = Instant::now();
        store.save_checkpoint(id, attempt, step * 10_000, data, 2).await.unwrap();
        times.push(t.elapsed());
    }
    median(times)
}

struct Case {
    name: &'static str,
    spec: JobSpec,
    /// Steps trained per arm, and a checkpoint every this many in the arm with them.
    steps: u64,
    every: u64,
    reps: u64,
}

/// Seconds to train `steps` steps; with `every`, a checkpoint every that many steps goes to a
/// writer task that stores it in `store` while training goes on (at most two waiting).
async fn train_for(t: &mut Trainer<f32>, steps: u64, every: Option<(u64, Arc<dyn Store>, JobId, u64)>) -> f64 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(2);
    let writer = every.clone().map(|(_, store, id, attempt)| {
        tokio::spawn(async move {
            while let Some((step, data)) = rx.recv().await {
                store.save_checkpoint(id, attempt, step, &data, 2).await.unwrap();
            }
        })
    });
    let start = Instant::now();
    tokio::task::block_in_place(|| {
        for _ in 0..steps {
            t.step();
            if let Some((k, ..)) = &every
                && t.steps_done().is_multiple_of(*k)
            {
                tx.blocking_send((t.steps_done(), t.encode_state())).unwrap();
            }
        }
    });
    let secs = start.elapsed().as_secs_f64();
    drop(tx);
    if let Some(w) = writer {
        w.await.unwrap();
    }
    secs
}

/// A claimed job of `store` to store checkpoints under: (job, attempt).
async fn claimed(store: &dyn Store) -> (JobId, u64) {
    let id = store.create_job(&JobSpec::default(), None, None).await.unwrap().id;
    let claim = store.claim_next("bench", Duration::from_secs(3600)).await.unwrap().unwrap();
    assert_eq!(claim.record.id, id);
    (id, claim.attempt)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cpu = support::cpu_model();
    println!("CPU: {cpu}, rayon threads: {}", rayon::current_num_threads());
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("ck.db").to_str().unwrap()).await.unwrap());
    let pg_db = PgTestDb::create().await;
    let pg: Option<Arc<dyn Store>> = match &pg_db {
        Some(db) => Some(Arc::new(PgStore::open(&db.url).await.unwrap())),
        None => None,
    };
    let cases = [
        Case {
            name: "4 x 256, batch 128, momentum",
            spec: JobSpec {
                hidden: vec![256; 4],
                batch: 128,
                optimizer: Optimizer::Momentum { momentum: 0.9, nesterov: false },
                record_every: 10,
                ..Default::default()
            },
            steps: 3_000,
            every: 300,
            reps: 5,
        },
        Case {
            name: "11 x 1024 (10.5M parameters), batch 64, Adam",
            spec: JobSpec {
                hidden: vec![1024; 11],
                batch: 64,
                optimizer: "adam".parse().unwrap(),
                lr: 1e-3,
                ..Default::default()
            },
            steps: 200,
            every: 50,
            reps: 3,
        },
    ];
    for case in cases {
        let spec = JobSpec { steps: 1_000_000, eval_every: 0, ..case.spec };
        let mut t = Trainer::<f32>::new(&spec).unwrap();
        t.step();
        let mut encodes = Vec::new();
        let mut bytes = Vec::new();
        for _ in 0..case.reps {
            let (b, e) = timed(|| t.encode_state());
            encodes.push(e);
            bytes = b;
        }
        let encode = median(encodes);
        let sqlite_write = write_time(&*sqlite, &bytes, case.reps).await;
        let pg_write = match &pg {
            Some(pg) => Some(write_time(&**pg, &bytes, case.reps).await),
            None => None,
        };
        let (_, restore) = timed(|| {
            let mut fresh = Trainer::<f32>::new(&spec).unwrap();
            fresh.restore(TrainState::decode(&bytes).unwrap()).unwrap();
        });
        println!("\n{}: {} parameters", case.name, t.state().parameters());
        println!("  checkpoint: {:.2} MB; copy + encode on the training thread {encode:.2?}", bytes.len() as f64 / 1e6);
        println!(
            "  stored in SQLite {sqlite_write:.2?}{}",
            pg_write.map(|w| format!(", in PostgreSQL {w:.2?}")).unwrap_or_else(|| ", PostgreSQL skipped".into())
        );
        println!("  resume (new trainer, decode, restore): {restore:.2?}");

        let checkpoints = (case.steps / case.every) as f64;
        let mut stores = vec![("SQLite", sqlite.clone())];
        if let Some(pg) = &pg {
            stores.push(("PostgreSQL", pg.clone()));
        }
        for (name, store) in stores {
            let (id, attempt) = claimed(&*store).await;
            let (mut plain, mut with) = (f64::MAX, f64::MAX);
            for _ in 0..2 {
                plain = plain.min(train_for(&mut t, case.steps, None).await);
                with = with.min(train_for(&mut t, case.steps, Some((case.every, store.clone(), id, attempt))).await);
            }
            let per_sec = case.steps as f64 / plain;
            // The defaults: every 10,000 steps, but at most once a minute.
            let interval = (10_000.0 / per_sec).max(60.0);
            let lost = ((with - plain) / checkpoints).max(0.0);
            println!(
                "  {name}: {per_sec:.1} steps/s without, {:.1} with a checkpoint every {} steps: {:.0} ms lost per checkpoint; \
                 at the defaults (one every {interval:.1} s) {:.2}% of training",
                case.steps as f64 / with,
                case.every,
                lost * 1e3,
                lost / interval * 100.0
            );
        }
    }
    drop(pg);
    drop(pg_db);
}
