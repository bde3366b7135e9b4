//! Training throughput of one job with 0, 1 and 100 live watchers over gRPC on loopback, and with
//! 20 dashboard pages' live streams (server-sent events of `/api/jobs/ID/live`, as the job page
//! opens it: loss, accuracy and seven layer metrics of every layer, 1,150 buckets).
//!
//! Each run starts a fresh server (a temp-dir SQLite file, `workers = 1`: the job trains on one
//! rayon thread) inside its own tokio runtime with one worker thread, which serves the watchers
//! and also hosts the in-process gRPC clients, so on a two-core machine training has one core and
//! everything else shares the other. The bench submits the same job (tanh, depth 8, width 256,
//! batch 128, `gaussian:dim=64,classes=10,n=4096`, every step recorded), opens N watchers (each
//! its own connection and task, reading its stream to the end and checking that steps 0..S-1
//! arrive once each, in order, then the final job), and waits for the job to end.
//!
//! Steps/s come from the job's `started_ms`/`finished_ms` (GetJob), and, as a cross-check that
//! excludes the end-of-job pipeline, from the span over which the training thread used CPU
//! (sampled from `/proc/self/task/<tid>/schedstat`). The step count is calibrated once so that a
//! run takes about [`TARGET_SECS`]; configurations run interleaved, [`ROUNDS`] times each, and
//! the tables show medians. Diagnostics: the training thread's CPU per step and run-queue wait,
//! the CPU of the tokio and SQLite threads, and the per-message cost of converting, encoding and
//! decoding one step event. The bench fails (exit code 1) if any watcher missed, repeated or
//! reordered a step, or a dashboard stream ended without the job's end or repeated a bucket; the
//! 5% slowdown targets (100 watchers, 20 dashboard streams) are only reported.
//!
//!     cargo bench --bench watchers -j 1
//!     GRADLAB_WATCHERS_STEPS=300 GRADLAB_WATCHERS_ROUNDS=1 cargo bench --bench watchers   # quicker
//!     GRADLAB_WATCHERS_SPLIT_CLIENTS=1 cargo bench --bench watchers   # clients on their own thread
//!
//! Runs about a minute; every run is bounded by timeouts.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use gradlab::api::convert::progress_to_pb;
use gradlab::api::pb::experiments_client::ExperimentsClient;
use gradlab::api::pb::{self, progress::Event};
use gradlab::engine::train::Trainer;
use gradlab::runner::{LiveEvent, Runner, RunnerConfig, now_ms};
use gradlab::store::SqliteStore;
use prost::Message;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

#[path = "support/mod.rs"]
mod support;
use support::median;

/// (gRPC watchers, dashboard streams) of each configuration.
const LOADS: [(usize, usize); 4] = [(0, 0), (1, 0), (100, 0), (0, 20)];
/// What a dashboard's job page streams (`web/static/js/pages/job.js`).
const DASHBOARD_QUERY: &str =
    "metrics=loss,accuracy,grad_norm,err_norm,weight_norm,update_ratio,saturated,dead,act_std&max_points=1150";
/// Runs of each configuration (overridable with `GRADLAB_WATCHERS_ROUNDS`).
const ROUNDS: usize = 3;
/// Wall time a run should take; the step count is calibrated to it.
const TARGET_SECS: f64 = 5.0;
const CALIBRATION_STEPS: u64 = 60;
/// Bounds on anything a run waits for.
const JOB_TIMEOUT: Duration = Duration::from_secs(60);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The issues' target: 100 watchers, or 20 dashboard streams, slow training by at most 5%.
const TARGET_RATIO: f64 = 0.95;
/// /proc/<pid>/stat counts CPU time in USER_HZ ticks, 100 per second on Linux.
const USER_HZ: f64 = 100.0;

fn job_spec(steps: u64) -> pb::JobSpec {
    pb::JobSpec {
        name: "watchers-bench".into(),
        activation: "tanh".into(),
        depth: Some(8),
        width: Some(256),
        batch: Some(128),
        steps: Some(steps),
        lr: Some(0.01),
        seed: Some(7),
        dataset: "gaussian:dim=64,classes=10,n=4096".into(),
        record_every: Some(1),
        // Evaluate only at step 0 and at the end.
        eval_every: Some(0),
        ..Default::default()
    }
}

/// What one watcher saw.
#[derive(Debug, Default)]
struct Watched {
    events: u64,
    steps: u64,
    /// The first ordering problem, or a stream error.
    error: Option<String>,
    final_state: Option<pb::JobState>,
    /// When its stream ended (ms since the epoch, same clock as the server's).
    done_ms: i64,
}

async fn watch(mut client: ExperimentsClient<Channel>, job_id: i64, steps: u64) -> Watched {
    let mut w = Watched::default();
    let mut stream = match client.watch_job(pb::WatchRequest { job_id, from_step: 0, max_batch: 0 }).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            w.error = Some(format!("WatchJob failed: {e}"));
            return w;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(msg)) => {
                w.events += 1;
                match msg.event {
                    Some(Event::Step(s)) => {
                        if s.step != w.steps && w.error.is_none() {
                            w.error = Some(format!("expected step {}, got step {}", w.steps, s.step));
                        }
                        w.steps += 1;
                    }
                    Some(Event::Steps(b)) => {
                        for s in b.steps {
                            if s.step != w.steps && w.error.is_none() {
                                w.error = Some(format!("expected step {}, got step {}", w.steps, s.step));
                            }
                            w.steps += 1;
                        }
                    }
                    Some(Event::Eval(_)) => {}
                    Some(Event::Job(j)) => w.final_state = pb::JobState::try_from(j.state).ok(),
                    None => w.error = w.error.take().or(Some("a progress message without an event".into())),
                }
            }
            Ok(None) => break,
            Err(e) => {
                w.error = w.error.take().or(Some(format!("stream error: {e}")));
                break;
            }
        }
    }
    w.done_ms = now_ms();
    if w.error.is_none() && w.steps != steps {
        w.error = Some(format!("saw {} steps, expected {steps}", w.steps));
    }
    if w.error.is_none() && w.final_state != Some(pb::JobState::Succeeded) {
        w.error = Some(format!("stream ended with {:?}, expected the succeeded job", w.final_state));
    }
    w
}

/// Reads one dashboard stream (HTTP/1.0, so the body runs to the close) to its `end`: checks
/// that every series' buckets arrive in increasing step order, once each, and that the last
/// `job` event is the succeeded job.
async fn dashboard(addr: std::net::SocketAddr, job_id: i64) -> Watched {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut w = Watched::default();
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            w.error = Some(format!("connect: {e}"));
            return w;
        }
    };
    let req = format!("GET /api/jobs/{job_id}/live?{DASHBOARD_QUERY} HTTP/1.0\r\nHost: bench\r\n\r\n");
    if let Err(e) = stream.write_all(req.as_bytes()).await {
        w.error = Some(format!("request: {e}"));
        return w;
    }
    let mut lines = BufReader::new(stream).lines();
    let mut last_step: HashMap<(Option<u64>, String), u64> = HashMap::new();
    let mut event = String::new();
    let mut ended = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
            w.events += 1;
            ended |= event == "end";
        } else if let Some(data) = line.strip_prefix("data: ") {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                w.error.get_or_insert(format!("{event}: not JSON"));
                continue;
            };
            match event.as_str() {
                "job" => w.final_state = v["state"].as_str().and_then(pb::JobState::from_str_name_lower),
                "points" => {
                    for s in v["series"].as_array().into_iter().flatten() {
                        let key = (s["layer"].as_u64(), s["metric"].as_str().unwrap_or("").to_string());
                        for step in s["steps"].as_array().into_iter().flatten().filter_map(|x| x.as_u64()) {
                            if last_step.get(&key).is_some_and(|&prev| step <= prev) {
                                w.error
                                    .get_or_insert(format!("{key:?}: bucket at step {step} repeated or out of order"));
                            }
                            last_step.insert(key.clone(), step);
                            w.steps += 1;
                        }
                    }
                }
                "error" => {
                    w.error.get_or_insert(format!("error event: {data}"));
                }
                _ => {}
            }
        }
    }
    w.done_ms = now_ms();
    if !ended {
        w.error.get_or_insert("the stream closed without `end`".into());
    }
    if w.final_state != Some(pb::JobState::Succeeded) {
        w.error.get_or_insert(format!("stream ended with {:?}, expected the succeeded job", w.final_state));
    }
    w
}

trait FromLower: Sized {
    fn from_str_name_lower(s: &str) -> Option<Self>;
}

impl FromLower for pb::JobState {
    /// The dashboard's state names ("succeeded") as the proto enum.
    fn from_str_name_lower(s: &str) -> Option<Self> {
        pb::JobState::from_str_name(&format!("JOB_STATE_{}", s.to_ascii_uppercase()))
    }
}

// ---- /proc: per-thread CPU time and run-queue wait ----

fn thread_ids_named(name: &str) -> HashSet<u32> {
    let Ok(dir) = fs::read_dir("/proc/self/task") else { return HashSet::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|tid| fs::read_to_string(format!("/proc/self/task/{tid}/comm")).is_ok_and(|c| c.trim_end() == name))
        .collect()
}

/// (ns on a CPU, ns runnable but waiting for one) of a thread of this process.
fn schedstat(tid: u32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// Every live thread of this process: tid -> (name without its trailing number, ns on a CPU).
fn thread_cpu() -> HashMap<u32, (String, u64)> {
    let Ok(dir) = fs::read_dir("/proc/self/task") else { return HashMap::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|tid| {
            let comm = fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            let group = comm.trim_end().trim_end_matches(|c: char| c.is_ascii_digit() || c == '-').to_string();
            Some((tid, (group, schedstat(tid)?.0)))
        })
        .collect()
}

/// CPU seconds by thread group between two snapshots (threads born in between count from 0).
fn cpu_by_group(a: &HashMap<u32, (String, u64)>, b: &HashMap<u32, (String, u64)>) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for (tid, (group, run)) in b {
        let before = a.get(tid).filter(|(g, _)| g == group).map_or(0, |(_, r)| *r);
        *out.entry(group.clone()).or_insert(0.0) += run.saturating_sub(before) as f64 / 1e9;
    }
    out
}

/// CPU seconds used by the whole process so far (user + system, finished threads included).
fn process_cpu_s() -> f64 {
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the parenthesized command name start at field 3 (state); utime is 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / USER_HZ
}

/// Samples a thread's CPU time every few ms, remembering the first and last moment it grew.
struct Activity {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(Option<Instant>, Option<Instant>)>,
}

impl Activity {
    fn start(tid: u32) -> Activity {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("bench-sampler".into())
            .spawn(move || {
                let (mut first, mut last) = (None, None);
                let mut prev = schedstat(tid).map_or(0, |s| s.0);
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                    let Some((run, _)) = schedstat(tid) else { break };
                    if run != prev {
                        let now = Instant::now();
                        first.get_or_insert(now);
                        last = Some(now);
                        prev = run;
                    }
                }
                (first, last)
            })
            .expect("spawn the sampler");
        Activity { stop, handle }
    }

    /// Seconds between the first and the last sample in which the thread ran.
    fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok((Some(a), Some(b))) => (b - a).as_secs_f64(),
            _ => f64::NAN,
        }
    }
}

// ---- one run ----

#[derive(Debug)]
struct RunResult {
    /// (gRPC watchers, dashboard streams).
    load: (usize, usize),
    steps: u64,
    /// finished_ms - started_ms, from GetJob.
    job_s: f64,
    /// Span over which the training thread used CPU.
    active_s: f64,
    train_cpu_s: f64,
    train_wait_s: f64,
    /// CPU of every other thread of the process (tokio: server and clients; SQLite; sampler).
    other_cpu_s: f64,
    /// Of which the tokio worker (server and clients) and sqlx's SQLite worker threads.
    tokio_cpu_s: f64,
    sqlite_cpu_s: f64,
    /// The clients' own runtime, when split off (else their CPU is in `tokio_cpu_s`).
    client_cpu_s: f64,
    /// Events each watcher received (min, max).
    events: (u64, u64),
    /// From finished_ms until the last watcher's stream ended.
    drain_ms: i64,
    failures: Vec<String>,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.steps as f64 / self.job_s
    }
    fn active_rate(&self) -> f64 {
        self.steps as f64 / self.active_s
    }
}

fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name(name).enable_all().build()?)
}

/// One run in fresh runtimes; with `split_clients` the watchers' clients get their own runtime
/// (thread `bench-client`), to tell the server's CPU from theirs.
fn run_once(load: (usize, usize), steps: u64, split_clients: bool) -> Result<RunResult> {
    let rt = runtime("bench-tokio")?;
    let client_rt = if split_clients { Some(runtime("bench-client")?) } else { None };
    let clients_on = client_rt.as_ref().map_or_else(|| rt.handle().clone(), |c| c.handle().clone());
    let result = rt.block_on(run_in_runtime(load, steps, clients_on));
    // Ends the runner's tasks (and so its rayon pools) with the runtime.
    rt.shutdown_timeout(Duration::from_secs(2));
    if let Some(c) = client_rt {
        c.shutdown_timeout(Duration::from_secs(2));
    }
    result
}

async fn run_in_runtime(load: (usize, usize), steps: u64, clients_on: Handle) -> Result<RunResult> {
    let (watchers, dashboards) = load;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let store = SqliteStore::open(db.to_str().context("temp path is not UTF-8")?).await?;
    let before = thread_ids_named("gradlab-train-0");
    let runner = Runner::start(Arc::new(store), RunnerConfig::with_workers(1)).await?;
    // The pool's thread names itself once it runs, which may be a moment after `start` returns.
    let mut train_tid = None;
    for _ in 0..200 {
        let new: Vec<u32> = thread_ids_named("gradlab-train-0").difference(&before).copied().collect();
        match new[..] {
            [] => tokio::time::sleep(Duration::from_millis(10)).await,
            [tid] => {
                train_tid = Some(tid);
                break;
            }
            _ => bail!("cannot tell the training thread: new gradlab-train-0 threads {new:?}"),
        }
    }
    let train_tid = train_tid.context("the training thread did not show up in /proc/self/task within 2 s")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gradlab::api::server::serve(listener, runner, Default::default(), async {
        let _ = stopped.await;
    }));

    // Connect everyone first, so the job's clock does not include connection setup.
    let endpoint = Endpoint::from_shared(url)?;
    let mut control = ExperimentsClient::new(endpoint.connect().await?);
    let mut clients = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let endpoint = endpoint.clone();
        clients.push(ExperimentsClient::new(clients_on.spawn(async move { endpoint.connect().await }).await??));
    }

    let cpu0 = process_cpu_s();
    let threads0 = thread_cpu();
    let train0 = schedstat(train_tid).context("training thread schedstat")?;
    let activity = Activity::start(train_tid);
    let job = control.submit_job(job_spec(steps)).await?.into_inner();
    let mut tasks: Vec<_> = clients.into_iter().map(|c| clients_on.spawn(watch(c, job.id, steps))).collect();
    tasks.extend((0..dashboards).map(|_| clients_on.spawn(dashboard(addr, job.id))));

    let deadline = Instant::now() + JOB_TIMEOUT;
    let done = loop {
        let j = control.get_job(pb::JobId { id: job.id }).await?.into_inner();
        let state = pb::JobState::try_from(j.state).unwrap_or(pb::JobState::Unspecified);
        if matches!(state, pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled) {
            break j;
        }
        if Instant::now() > deadline {
            bail!("job {} still {state:?} after {JOB_TIMEOUT:?}", job.id);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let train1 = schedstat(train_tid).context("training thread schedstat")?;
    let cpu1 = process_cpu_s();
    let by_group = cpu_by_group(&threads0, &thread_cpu());
    let active_s = activity.finish();

    let mut failures = Vec::new();
    if done.state != pb::JobState::Succeeded as i32 || done.steps_done != steps {
        failures.push(format!(
            "job ended {:?} after {} of {steps} steps: {}",
            done.state(),
            done.steps_done,
            done.error
        ));
    }
    let mut events = (u64::MAX, 0);
    let mut last_done = done.finished_ms;
    let drain_deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    for (i, t) in tasks.into_iter().enumerate() {
        match tokio::time::timeout_at(drain_deadline, t).await {
            Ok(Ok(w)) => {
                events = (events.0.min(w.events), events.1.max(w.events));
                last_done = last_done.max(w.done_ms);
                if let Some(e) = w.error {
                    failures.push(format!("watcher {i}: {e}"));
                }
            }
            Ok(Err(e)) => failures.push(format!("watcher {i} panicked: {e}")),
            Err(_) => failures.push(format!("watcher {i} still streaming {DRAIN_TIMEOUT:?} after the job ended")),
        }
    }
    if watchers + dashboards == 0 {
        events = (0, 0);
    }

    drop(control);
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(anyhow!("server failed: {e}")),
        Ok(Err(e)) => return Err(anyhow!("server task failed: {e}")),
        Err(_) => eprintln!("note: the server did not stop within 5 s; dropping it with the runtime"),
    }

    let train_cpu_s = (train1.0 - train0.0) as f64 / 1e9;
    Ok(RunResult {
        load,
        steps,
        job_s: (done.finished_ms - done.started_ms).max(1) as f64 / 1e3,
        active_s,
        train_cpu_s,
        train_wait_s: (train1.1 - train0.1) as f64 / 1e9,
        other_cpu_s: (cpu1 - cpu0 - train_cpu_s).max(0.0),
        tokio_cpu_s: by_group.get("bench-tokio").copied().unwrap_or(0.0),
        client_cpu_s: by_group.get("bench-client").copied().unwrap_or(0.0),
        sqlite_cpu_s: by_group.iter().filter(|(g, _)| g.starts_with("sqlx-sqlite")).map(|(_, v)| v).sum(),
        events,
        drain_ms: last_done - done.finished_ms,
        failures,
    })
}

// ---- per-message cost of the fan-out ----

/// Per-event CPU of what a watcher costs the server (converting a step record to protobuf and
/// encoding it, once per watcher) and its client (decoding), on a real step record of the job.
/// Returns (convert µs, encode µs, decode µs, encoded bytes).
fn message_costs() -> Result<(f64, f64, f64, usize)> {
    let spec = gradlab::api::convert::job_spec(&job_spec(10)).map_err(|e| anyhow!("{e}"))?;
    let mut trainer = Trainer::<f32>::new(&spec).map_err(|e| anyhow!("{e}"))?;
    let event = LiveEvent::Step(Arc::new(trainer.step()));
    const N: u32 = 20_000;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..N {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / f64::from(N)
    };
    let convert_us = time(&mut || {
        black_box(progress_to_pb(black_box(&event)));
    });
    let msg = progress_to_pb(&event);
    let encoded = msg.encode_to_vec();
    let mut buf = Vec::with_capacity(encoded.len());
    let encode_us = time(&mut || {
        buf.clear();
        black_box(&msg).encode(&mut buf).expect("capacity");
        black_box(&buf);
    });
    let decode_us = time(&mut || {
        black_box(pb::Progress::decode(black_box(&encoded[..])).expect("decode"));
    });
    Ok((convert_us, encode_us, decode_us, encoded.len()))
}

// ---- main ----

/// "100" gRPC watchers, or "20 web" dashboard streams.
fn label((grpc, web): (usize, usize)) -> String {
    if web == 0 { grpc.to_string() } else { format!("{web} web") }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn main() {
    // `cargo bench` passes `--bench`; criterion-style filters are not supported.
    if let Err(e) = run() {
        eprintln!("watchers bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let rounds = env_u64("GRADLAB_WATCHERS_ROUNDS").map_or(ROUNDS, |r| r.max(1) as usize);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let split = env_u64("GRADLAB_WATCHERS_SPLIT_CLIENTS").is_some_and(|v| v != 0);
    if split {
        println!(
            "watchers bench: {cores} cores; workers = 1 (the job trains on one rayon thread); one tokio worker thread \
             serves the watchers, another runs the in-process gRPC clients (GRADLAB_WATCHERS_SPLIT_CLIENTS)"
        );
    } else {
        println!(
            "watchers bench: {cores} cores; workers = 1 (the job trains on one rayon thread); one tokio worker \
             thread serves the watchers and hosts the in-process gRPC clients, so on 2 cores it has the other core"
        );
    }
    println!("job: tanh, depth 8, width 256, batch 128, gaussian:dim=64,classes=10,n=4096, record_every 1");

    let steps = match env_u64("GRADLAB_WATCHERS_STEPS") {
        Some(s) => s.max(1),
        None => {
            let cal = run_once((0, 0), CALIBRATION_STEPS, split)?;
            let s = ((cal.rate() * TARGET_SECS / 50.0).round() as u64 * 50).clamp(100, 100_000);
            println!("calibration: {:.1} steps/s over {CALIBRATION_STEPS} steps -> {s} steps a run", cal.rate());
            s
        }
    };

    let mut results: Vec<RunResult> = Vec::new();
    let started = Instant::now();
    for round in 0..rounds {
        // Rotate the order each round so that drift in the machine's load spreads over all counts.
        for k in 0..LOADS.len() {
            let n = LOADS[(k + round) % LOADS.len()];
            let r = run_once(n, steps, split)?;
            println!(
                "round {} watchers {:>6}: {:>7.1} steps/s (job {:.2} s, train thread active {:.2} s, cpu {:.2} s, \
                 run-queue wait {:.2} s; other threads cpu {:.2} s: tokio {:.2}, sqlite {:.2}, clients' runtime {:.2}; events/watcher {}..{}; \
                 drain {} ms){}",
                round + 1,
                label(n),
                r.rate(),
                r.job_s,
                r.active_s,
                r.train_cpu_s,
                r.train_wait_s,
                r.other_cpu_s,
                r.tokio_cpu_s,
                r.sqlite_cpu_s,
                r.client_cpu_s,
                r.events.0,
                r.events.1,
                r.drain_ms,
                if r.failures.is_empty() { String::new() } else { format!("  {} FAILURES", r.failures.len()) },
            );
            results.push(r);
        }
    }
    println!("measured in {:.0} s", started.elapsed().as_secs_f64());

    let of = |n: (usize, usize)| results.iter().filter(move |r| r.load == n);
    let base = median(of((0, 0)).map(RunResult::rate).collect());
    let base_active = median(of((0, 0)).map(RunResult::active_rate).collect());
    println!();
    println!("medians of {rounds} runs of {steps} steps each (steps/s from the job's started_ms..finished_ms):");
    println!(
        "{:>8} | {:>9} | {:>10} | {:>10} | {:>14} | {:>8}",
        "watchers", "steps/s", "ratio to 0", "worst run", "events/watcher", "all seen"
    );
    for n in LOADS {
        let rates: Vec<f64> = of(n).map(RunResult::rate).collect();
        let worst = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let rate = median(rates);
        let lo = of(n).map(|r| r.events.0).min().unwrap_or(0);
        let hi = of(n).map(|r| r.events.1).max().unwrap_or(0);
        let events = match (n, lo == hi) {
            ((0, 0), _) => "-".to_string(),
            (_, true) => format!("{lo}"),
            (_, false) => format!("{lo}..{hi}"),
        };
        let ok = if n == (0, 0) {
            "-"
        } else if of(n).all(|r| r.failures.is_empty()) {
            "yes"
        } else {
            "NO"
        };
        println!(
            "{:>8} | {rate:>9.1} | {:>10.3} | {:>10.3} | {events:>14} | {ok:>8}",
            label(n),
            rate / base,
            worst / base
        );
    }
    println!();
    println!("diagnostics (medians): steps/s over the training thread's active span; its CPU and run-queue wait");
    println!(
        "{:>8} | {:>14} | {:>6} | {:>13} | {:>14} | {:>15} | {:>11} | {:>12} | {:>11} | {:>8}",
        "watchers",
        "active steps/s",
        "vs 0",
        "train ms/step",
        "run-queue wait",
        "other cpu s/run",
        "tokio cpu s",
        "sqlite cpu s",
        "client rt s",
        "drain ms"
    );
    for n in LOADS {
        let active = median(of(n).map(RunResult::active_rate).collect());
        println!(
            "{:>8} | {active:>14.1} | {:>6.3} | {:>13.2} | {:>13.1}% | {:>15.2} | {:>11.2} | {:>12.2} | {:>11.2} | {:>8.0}",
            label(n),
            active / base_active,
            median(of(n).map(|r| r.train_cpu_s * 1e3 / r.steps as f64).collect()),
            median(of(n).map(|r| 100.0 * r.train_wait_s / r.job_s).collect()),
            median(of(n).map(|r| r.other_cpu_s).collect()),
            median(of(n).map(|r| r.tokio_cpu_s).collect()),
            median(of(n).map(|r| r.sqlite_cpu_s).collect()),
            median(of(n).map(|r| r.client_cpu_s).collect()),
            median(of(n).map(|r| r.drain_ms as f64).collect()),
        );
    }

    let (convert_us, encode_us, decode_us, bytes) = message_costs()?;
    let train_ms = median(of((0, 0)).map(|r| r.train_cpu_s * 1e3 / r.steps as f64).collect());
    println!();
    println!(
        "per step event ({bytes} bytes encoded): server converts {convert_us:.2} µs + encodes {encode_us:.2} µs per \
         watcher, client decodes {decode_us:.2} µs; for 100 watchers {:.2} ms server + {:.2} ms client CPU per step, \
         against {train_ms:.2} ms of training",
        100.0 * (convert_us + encode_us) / 1e3,
        100.0 * decode_us / 1e3
    );

    println!();
    for (load, what) in [((100, 0), "100 watchers"), ((0, 20), "20 dashboard streams")] {
        let ratio = median(of(load).map(RunResult::rate).collect()) / base;
        println!(
            "target: {what} slow training by at most 5% -> ratio {ratio:.3} {} {TARGET_RATIO}: {}",
            if ratio >= TARGET_RATIO { ">=" } else { "<" },
            if ratio >= TARGET_RATIO { "met" } else { "NOT met" }
        );
    }

    let failures: Vec<&String> = results.iter().flat_map(|r| &r.failures).collect();
    if !failures.is_empty() {
        for f in failures.iter().take(20) {
            eprintln!("  {f}");
        }
        bail!("{} watcher/job checks failed: not every watcher saw every step exactly once, in order", failures.len());
    }
    println!("every watcher saw every step exactly once, in order, then the succeeded job");
    Ok(())
}
