//! RPC latency on loopback from the generated Rust client: unary calls and the time to a
//! stream's first message, against an in-process server, plaintext, with a token, and with TLS
//! and a token.
//!
//! Each configuration starts a fresh server (a temp-dir SQLite file, one worker) holding one
//! finished 200-step job, opens one connection, warms it up, then times [`CALLS`] calls of each
//! kind one after the other and prints the median, the 90th percentile and the mean. Python's
//! grpcio figures come from `benches/grpcio_latency.py`, run against a `gradlab serve` process.
//!
//!     cargo bench --bench rpc
//!     GRADLAB_RPC_CALLS=200 cargo bench --bench rpc   # quicker

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gradlab::api::auth::SendToken;
use gradlab::api::pb::experiments_client::ExperimentsClient;
use gradlab::api::pb::{self, progress::Event};
use gradlab::api::server::{ServeOptions, serve};
use gradlab::runner::{Runner, RunnerConfig};
use gradlab::store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const CALLS: usize = 2000;
const TOKEN: &str = "bench-token-0123456789";

type Client = ExperimentsClient<InterceptedService<Channel, SendToken>>;

struct Config {
    name: &'static str,
    token: bool,
    tls: bool,
}

fn job(steps: u64) -> pb::JobSpec {
    pb::JobSpec {
        activation: "tanh".into(),
        depth: Some(3),
        width: Some(16),
        steps: Some(steps),
        batch: Some(32),
        seed: Some(1),
        ..Default::default()
    }
}

/// Median, 90th percentile and mean of `n` sequential runs of `call`, in milliseconds.
async fn time<F, Fut>(n: usize, mut call: F) -> (f64, f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..n.min(50) {
        call().await;
    }
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call().await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = ms.iter().sum::<f64>() / n as f64;
    ms.sort_by(f64::total_cmp);
    (ms[n / 2], ms[n * 9 / 10], mean)
}

async fn bench(config: &Config, calls: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("rpc.db").to_str().unwrap()).await?;
    let runner = Runner::start(Arc::new(store), RunnerConfig::with_workers(1)).await?;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let tls = config.tls.then(|| Identity::from_pem(ck.cert.pem(), ck.signing_key.serialize_pem()));
    let options = ServeOptions { token: config.token.then(|| TOKEN.to_string()), tls };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, runner, options, async {
        let _ = stopped.await;
    }));

    let mut endpoint = Endpoint::from_shared(if config.tls {
        format!("https://localhost:{port}")
    } else {
        format!("http://127.0.0.1:{port}")
    })?;
    if config.tls {
        endpoint = endpoint.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ck.cert.pem())))?;
    }
    let token = SendToken::new(config.token.then_some(TOKEN)).map_err(anyhow::Error::msg)?;
    let client: Client = ExperimentsClient::with_interceptor(endpoint.connect().await?, token);

    let id = client.clone().submit_job(job(200)).await?.into_inner().id;
    loop {
        let j = client.clone().get_job(pb::JobId { id }).await?.into_inner();
        if j.state == pb::JobState::Succeeded as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut rows = Vec::new();
    let c = client.clone();
    rows.push((
        "GetJob",
        time(calls, || {
            let mut c = c.clone();
            async move {
                c.get_job(pb::JobId { id }).await.unwrap();
            }
        })
        .await,
    ));
    rows.push((
        "ListJobs (a page of 1)",
        time(calls, || {
            let mut c = c.clone();
            async move {
                c.list_jobs(pb::ListJobsRequest { page_size: 1, ..Default::default() }).await.unwrap();
            }
        })
        .await,
    ));
    rows.push((
        "GetHistory (1 layer, 1 metric, 200 steps)",
        time(calls, || {
            let mut c = c.clone();
            async move {
                let req = pb::HistoryRequest {
                    job_id: id,
                    layers: vec![0],
                    metrics: vec!["grad_norm".into()],
                    ..Default::default()
                };
                c.get_history(req).await.unwrap();
            }
        })
        .await,
    ));
    rows.push((
        "WatchJob, first message",
        time(calls, || {
            let mut c = c.clone();
            async move {
                let mut s = c
                    .watch_job(pb::WatchRequest { job_id: id, from_step: 0, max_batch: 0 })
                    .await
                    .unwrap()
                    .into_inner();
                let first = s.message().await.unwrap().unwrap();
                assert!(matches!(first.event, Some(Event::Job(_))));
            }
        })
        .await,
    ));
    // Last: it fills the queue (a few hundred tiny jobs train meanwhile on the one worker).
    let submits = calls.min(500);
    rows.push((
        "SubmitJob",
        time(submits, || {
            let mut c = c.clone();
            async move {
                c.submit_job(job(1)).await.unwrap();
            }
        })
        .await,
    ));

    println!("\n{} ({calls} calls each, SubmitJob {submits}):", config.name);
    println!("| call | median ms | p90 ms | mean ms |");
    println!("|---|---|---|---|");
    for (name, (median, p90, mean)) in rows {
        println!("| {name} | {median:.3} | {p90:.3} | {mean:.3} |");
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let calls = std::env::var("GRADLAB_RPC_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(CALLS);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    for config in [
        Config { name: "plaintext", token: false, tls: false },
        Config { name: "token", token: true, tls: false },
        Config { name: "TLS and token", token: true, tls: true },
    ] {
        rt.block_on(bench(&config, calls))?;
    }
    Ok(())
}
