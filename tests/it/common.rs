//! A real gradlab server on 127.0.0.1:0 over a real SQLite file, for integration tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use gradlab::api::auth::SendToken;
use gradlab::api::pb::experiments_client::ExperimentsClient;
use gradlab::api::pb::{self, progress::Event};
use gradlab::api::server::ServeOptions;
use gradlab::runner::{Runner, RunnerConfig};
use gradlab::store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = ExperimentsClient<Channel>;
pub type TokenClient = ExperimentsClient<InterceptedService<Channel, SendToken>>;

pub struct TestServer {
    pub addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(db: &Path, workers: usize) -> TestServer {
        Self::start_with(db, RunnerConfig::with_workers(workers), ServeOptions::default()).await
    }

    /// A server with these limits, data policy, token and TLS.
    pub async fn start_with(db: &Path, config: RunnerConfig, options: ServeOptions) -> TestServer {
        let store = SqliteStore::open(db.to_str().unwrap()).await.expect("open store");
        let runner = Runner::start(Arc::new(store), config).await.expect("start runner");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let tls = options.tls.is_some();
        let task = tokio::spawn(async move {
            gradlab::api::server::serve(listener, runner, options, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        TestServer { addr, tls, stop: Some(stop), task: Some(task) }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// A client that sends `token` (if any) on every call; plaintext servers only.
    pub async fn client_with_token(&self, token: Option<&str>) -> TokenClient {
        ExperimentsClient::with_interceptor(self.channel().await, SendToken::new(token).unwrap())
    }

    pub async fn client(&self) -> ExperimentsClient<Channel> {
        ExperimentsClient::connect(self.url()).await.expect("connect")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).unwrap().connect().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A small, quick job on the built-in digits.
pub fn small_job(steps: u64) -> pb::JobSpec {
    pb::JobSpec {
        activation: "tanh".into(),
        depth: Some(3),
        width: Some(16),
        steps: Some(steps),
        batch: Some(32),
        eval_every: Some(50),
        lr: Some(0.05),
        seed: Some(1),
        ..Default::default()
    }
}

/// What a watcher saw: the step records in order, evals, and the final job.
#[derive(Default, Debug)]
pub struct Watched {
    pub steps: Vec<pb::StepEvent>,
    pub evals: Vec<pb::EvalEvent>,
    pub jobs: Vec<pb::Job>,
    /// Messages received.
    pub messages: usize,
}

/// Watches job `id` to its end, steps one per message.
pub async fn watch_all(client: &mut ExperimentsClient<Channel>, id: i64, from_step: u64) -> Watched {
    watch_all_batched(client, id, from_step, 0).await
}

/// [`watch_all`] asking for up to `max_batch` steps a message; the steps come out one by one.
pub async fn watch_all_batched(
    client: &mut ExperimentsClient<Channel>,
    id: i64,
    from_step: u64,
    max_batch: u32,
) -> Watched {
    let req = pb::WatchRequest { job_id: id, from_step, max_batch };
    let mut stream = client.watch_job(req).await.expect("watch").into_inner();
    let mut w = Watched::default();
    while let Some(msg) = stream.message().await.expect("stream message") {
        w.messages += 1;
        match msg.event.expect("event") {
            Event::Step(s) => {
                assert!(max_batch <= 1, "a single step where a batch was asked for");
                w.steps.push(s)
            }
            Event::Steps(b) => {
                assert!(max_batch > 1 && !b.steps.is_empty() && b.steps.len() <= max_batch as usize, "{max_batch}");
                w.steps.extend(b.steps)
            }
            Event::Eval(e) => w.evals.push(e),
            Event::Job(j) => w.jobs.push(j),
        }
    }
    w
}

pub fn state(j: &pb::Job) -> pb::JobState {
    pb::JobState::try_from(j.state).unwrap()
}

/// Polls a job until `done` says so; panics with the job's last state after 60 s.
pub async fn wait_for(client: &mut ExperimentsClient<Channel>, id: i64, done: impl Fn(&pb::Job) -> bool) -> pb::Job {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let j = client.get_job(pb::JobId { id }).await.expect("get_job").into_inner();
        if done(&j) {
            return j;
        }
        assert!(std::time::Instant::now() < deadline, "job {id} did not get there in 60 s: {j:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs the built binary against `server`.
pub fn gradlab(server: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .env("GRADLAB_SERVER", server)
        .output()
        .expect("run gradlab")
}

/// The stdout of a run that must have succeeded.
pub fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The stderr of a run that must have failed.
pub fn failed(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `gradlab serve` process on a free loopback port.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub url: String,
    /// `http://ADDR` of the metrics endpoint, when `--metrics-addr` was given.
    pub metrics: Option<String>,
}

impl Drop for ServeProcess {
    /// A test that fails leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn logged_addr(line: &str) -> String {
    let at = line.find("addr=").expect("the log line names the address") + 5;
    line[at..].split_whitespace().next().unwrap().to_string()
}

/// Starts `gradlab serve --addr 127.0.0.1:0 --workers 2 --database DB EXTRA...` and reads the
/// addresses it serves on from its log.
pub fn spawn_serve(db: &Path, extra: &[&str]) -> ServeProcess {
    spawn_serve_on(db.to_str().unwrap(), extra)
}

/// [`spawn_serve`] on any database URL (`postgres://...` too); `--workers` in `extra` replaces
/// the 2.
pub fn spawn_serve_on(database: &str, extra: &[&str]) -> ServeProcess {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "text", "--database", database])
        .args(if extra.contains(&"--workers") { &[][..] } else { &["--workers", "2"][..] })
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start gradlab serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut metrics = None;
    let mut said = Vec::new();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("gradlab serve ended before it served; it said:\n{}", said.join("\n"))
        };
        said.push(line.clone());
        if line.contains("metrics on http") {
            metrics = Some(format!("http://{}", logged_addr(&line)));
        }
        if line.contains("gradlab serving") {
            break format!("http://{}", logged_addr(&line));
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServeProcess { child, url, metrics }
}

pub async fn connect_retrying(url: &str) -> Client {
    for _ in 0..100 {
        if let Ok(c) = Client::connect(url.to_string()).await {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("cannot connect to {url}");
}
