//! A server whose PostgreSQL goes away and comes back (issue 12): it says NOT_SERVING to health
//! checks while the database cannot be reached, answers calls that need it with UNAVAILABLE,
//! and once the database is back says SERVING again and finishes its job with every step stored
//! once, bit-identical. The outage is a TCP proxy between the server and PostgreSQL that drops
//! every connection and refuses new ones, as a dead network or a stopped database would; the
//! machine's PostgreSQL, which other tests share, keeps running.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gradlab::api::pb::{self, JobState};
use gradlab::store::testing::PgTestDb;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::common::{connect_retrying, spawn_serve_on, state, wait_for};
use crate::scale_out::{expected_bits, small, stored_bits};

/// Forwards connections to `target` while up; when cut, drops every open connection and closes
/// each new one at once.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy { addr, up, conns, accept }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn health(url: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(url.to_string()).unwrap().connect().await.unwrap();
    let r = HealthClient::new(channel)
        .check(HealthCheckRequest { service: "gradlab.v1.Experiments".into() })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(r.status).unwrap()
}

async fn wait_health(url: &str, want: ServingStatus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = health(url).await;
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "health still {now:?}, not {want:?}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_loses_its_database_says_so_and_recovers_without_loss() {
    let Some(db) = PgTestDb::create().await else { return };
    // postgres://user@HOST:PORT/name: the server goes through the proxy instead.
    let (head, rest) = db.url.split_once('@').unwrap();
    let (hostport, name) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_string()).await;
    let url = format!("{head}@{}/{name}", proxy.addr);
    // A lease longer than the outage: the job keeps its claim and trains on through it.
    let server = spawn_serve_on(&url, &["--workers", "1", "--heartbeat", "0.2", "--lease", "30"]);
    let mut client = connect_retrying(&server.url).await;
    wait_health(&server.url, ServingStatus::Serving, Duration::from_secs(10)).await;

    let spec = small(7, 40_000);
    let job = client.submit_job(spec.clone()).await.unwrap().into_inner();
    wait_for(&mut client, job.id, |j| j.steps_done > 0).await;

    proxy.cut();
    wait_health(&server.url, ServingStatus::NotServing, Duration::from_secs(15)).await;
    let e = client.get_job(pb::JobId { id: job.id }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("database unavailable"), "{}", e.message());
    tokio::time::sleep(Duration::from_secs(1)).await;

    proxy.restore();
    wait_health(&server.url, ServingStatus::Serving, Duration::from_secs(15)).await;
    let done = wait_for(&mut client, job.id, |j| state(j) != JobState::Queued && state(j) != JobState::Running).await;
    assert_eq!(state(&done), JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempt, 1, "the job kept its claim through the outage");
    // Every step stored once, in order, with the bits of an uninterrupted run.
    assert_eq!(stored_bits(&mut client, job.id).await, expected_bits(&spec));
}
