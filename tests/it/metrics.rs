//! `gradlab serve --metrics-addr`: Prometheus metrics over HTTP, from a real server process.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::{connect_retrying, small_job, spawn_serve, state, wait_for};
use gradlab::api::pb::{self, JobState};

/// GET the endpoint with a plain HTTP/1.1 request; the body.
fn scrape(url: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The value of the first sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_jobs_steps_rpcs_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_serve(&dir.path().join("m.db"), &["--metrics-addr", "127.0.0.1:0"]);
    let metrics = server.metrics.clone().expect("the server logs its metrics address");
    let mut client = connect_retrying(&server.url).await;

    let id = client.submit_job(small_job(300)).await.unwrap().into_inner().id;
    let j = wait_for(&mut client, id, |j| state(j) == JobState::Succeeded).await;
    assert_eq!(j.steps_done, 300);
    let e = client.get_job(pb::JobId { id: 999 }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // A watcher held open on a long job.
    let long = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner().id;
    let mut watcher = connect_retrying(&server.url).await;
    let mut stream =
        watcher.watch_job(pb::WatchRequest { job_id: long, from_step: 0, max_batch: 0 }).await.unwrap().into_inner();
    stream.message().await.unwrap().expect("first message");

    // Job counts refresh every 5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let text = scrape(&metrics);
        if sample(&text, "gradlab_jobs{state=\"succeeded\"}") == Some(1.0) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(sample(&text, "gradlab_jobs{state=\"succeeded\"}"), Some(1.0), "{text}");
    assert!(sample(&text, "gradlab_training_steps_total").unwrap() >= 300.0, "{text}");
    assert_eq!(sample(&text, "gradlab_watch_streams{kind=\"job\"}"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "gradlab_rpc_requests_total{method=\"/gradlab.v1.Experiments/SubmitJob\",status=\"Ok\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "gradlab_rpc_requests_total{method=\"/gradlab.v1.Experiments/GetJob\",status=\"NotFound\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("gradlab_rpc_duration_seconds_bucket{method=\"/gradlab.v1.Experiments/GetJob\""), "{text}");
    assert!(text.contains("gradlab_writer_commit_seconds_count"), "{text}");
    assert!(text.contains("# HELP gradlab_jobs Jobs in the store, by state."), "{text}");

    drop(stream);
    client.cancel_job(pb::JobId { id: long }).await.unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
