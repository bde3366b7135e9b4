//! The dashboard's HTTP face on the gRPC listener, through a real server and raw HTTP: the
//! page and the API on one port, JSON answers equal to what gRPC answers, the live series
//! stream against the stored history (no gap, no duplicate, same buckets), state changes,
//! errors, and the token.

use std::collections::BTreeMap;
use std::time::Duration;

use gradlab::api::pb;
use gradlab::api::server::ServeOptions;
use gradlab::runner::RunnerConfig;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{TestServer, small_job, wait_for};

pub(crate) struct Answer {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.0 request (the answer's body then runs to the close: no chunking to undo).
async fn send(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

pub(crate) async fn request(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut s = send(server, method, path, headers, body).await;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().into(), v.trim().into())).collect();
    Answer { status, headers, body: body.to_string() }
}

async fn get(server: &TestServer, path: &str) -> Answer {
    request(server, "GET", path, &[], "").await
}

/// Reads a server-sent-event stream until `end` (or an error event): (event, data) in order.
async fn events(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Vec<(String, Value)> {
    let s = send(server, "GET", path, headers, "").await;
    let mut lines = BufReader::new(s).lines();
    let mut status = String::new();
    let mut out = Vec::new();
    let (mut event, mut data) = (String::new(), String::new());
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if status.is_empty() {
                status = line.clone();
                assert!(status.contains(" 200 "), "{status}");
                continue;
            }
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            } else if line.is_empty() && !event.is_empty() {
                let done = event == "end" || event == "error";
                out.push((std::mem::take(&mut event), serde_json::from_str(&std::mem::take(&mut data)).unwrap()));
                if done {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the stream ends within a minute");
    out
}

/// Series by (layer, metric): (steps, values, min, max), as JSON values.
type Columns = BTreeMap<(Option<u64>, String), [Vec<Value>; 4]>;

fn append(into: &mut Columns, series: &Value) {
    for s in series.as_array().unwrap() {
        let key = (s["layer"].as_u64(), s["metric"].as_str().unwrap().to_string());
        let col = into.entry(key).or_default();
        for (i, field) in ["steps", "values", "min", "max"].iter().enumerate() {
            col[i].extend(s[field].as_array().unwrap().iter().cloned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_grpc_share_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let page = get(&server, "/jobs/7").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains("<script type=\"module\""), "the app page: {}", page.body);
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    // The same port answers gRPC.
    let mut client = server.client().await;
    let job = client.submit_job(small_job(20)).await.unwrap().into_inner();
    let listed = get(&server, "/api/jobs").await.json();
    assert_eq!(listed["jobs"][0]["id"], job.id);
    assert_eq!(get(&server, "/nowhere").await.status, 404);
    let api = get(&server, "/api/nowhere").await;
    assert_eq!((api.status, api.json()["error"].as_str().unwrap()), (404, "no such page: /api/nowhere"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_series_stream_ends_equal_to_the_stored_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    // Long enough that the first watcher sees most of it live.
    let steps = 30_000;
    let job = client.submit_job(small_job(steps)).await.unwrap().into_inner();
    let q = "metrics=loss,grad_norm,dead&layers=0,3&max_points=37";
    // Watchers from the start, and one joining mid-run (stored part, then live).
    let path = format!("/api/jobs/{}/live?{q}", job.id);
    let early = events(&server, &path, &[]);
    let late = async {
        wait_for(&mut client.clone(), job.id, |j| j.steps_done > steps / 3).await;
        events(&server, &path, &[]).await
    };
    let (early, late) = tokio::join!(early, late);
    let stored = get(&server, &format!("/api/jobs/{}/history?{q}&from=0&to={}", job.id, steps - 1)).await.json();
    let mut want = Columns::new();
    append(&mut want, &stored["series"]);
    assert_eq!(want.len(), 5, "loss, and two layers' grad_norm and dead");
    assert_eq!(want.values().next().unwrap()[0].len(), 37, "37 buckets over 30,000 steps");
    let partials = early.iter().filter(|(e, d)| e == "points" && !d["partial"].as_array().unwrap().is_empty()).count();
    assert!(partials > 0, "the first watcher saw buckets fill live");
    for seen in [early, late] {
        assert_eq!(seen.first().unwrap().0, "job");
        assert_eq!(seen.last().unwrap().0, "end");
        let last_job = seen.iter().rev().find(|(e, _)| e == "job").unwrap();
        assert_eq!(last_job.1["state"], "succeeded", "the final state comes last");
        let mut got = Columns::new();
        let mut evals = Vec::new();
        for (e, data) in &seen {
            match e.as_str() {
                "points" => append(&mut got, &data["series"]),
                "evals" => evals.extend(data.as_array().unwrap().iter().cloned()),
                _ => {}
            }
        }
        // Every bucket once, in order, with the stored history's extremes: nothing lost or doubled.
        assert_eq!(got, want);
        assert_eq!(&evals, stored["evals"].as_array().unwrap());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_of_every_job_are_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let mut stream = send(&server, "GET", "/api/changes", &[], "").await;
    // The answer's head arrives once the subscription exists; submit after it.
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.0 200");
    let job = client.submit_job(small_job(30)).await.unwrap().into_inner();
    let mut lines = BufReader::new(stream).lines();
    let mut states = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(d) = line.strip_prefix("data: ") {
                let v: Value = serde_json::from_str(d).unwrap();
                if v["id"] == job.id {
                    states.push(v["state"].as_str().unwrap().to_string());
                    if states.last().unwrap() == "succeeded" {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the job's end is pushed");
    assert_eq!(states, ["queued", "running", "succeeded"]);
    // A delete is pushed too.
    let gone = request(&server, "DELETE", &format!("/api/jobs/{}", job.id), &[], "").await;
    assert_eq!((gone.status, gone.json()["deleted"].as_i64()), (200, Some(job.id)));
    let mut event = String::new();
    let deleted = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ")
                && event == "deleted"
            {
                return serde_json::from_str::<Value>(d).unwrap();
            }
        }
        panic!("the stream ended");
    };
    let v = tokio::time::timeout(Duration::from_secs(10), deleted).await.expect("the delete is pushed");
    assert_eq!(v["id"], job.id);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let job = client.submit_job(small_job(10)).await.unwrap().into_inner();
    let cases = [
        ("/api/jobs/999", 404, "job 999 not found"),
        ("/api/jobs/abc", 400, "id: \"abc\" is not an id"),
        ("/api/jobs/999/live", 404, "job 999 not found"),
        ("/api/sweeps/5", 404, "sweep 5 not found"),
        ("/api/jobs?state=done", 400, "state: unknown state"),
        ("/api/jobs?min_depth=4&max_depth=2", 400, "min_depth: 4 is above max_depth 2"),
        ("/api/jobs?page_size=x", 400, "page_size: \"x\""),
    ];
    for (path, status, message) in cases {
        let a = get(&server, path).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert!(a.json()["error"].as_str().unwrap().starts_with(message), "{path}: {}", a.body);
    }
    for q in ["metrics=gradnorm", "layers=9", "from=5&to=2", "max_points=-1", "step=3"] {
        for kind in ["history", "live"] {
            let a = get(&server, &format!("/api/jobs/{}/{kind}?{q}", job.id)).await;
            assert_eq!(a.status, 400, "{kind}?{q}: {}", a.body);
        }
    }
    let a = get(&server, &format!("/api/jobs/{}/history?from=5&to=2", job.id)).await;
    assert_eq!((a.json()["field"].as_str(), a.json()["error"].as_str()), (Some("from"), Some("from: 5 is after to 2")));
    let a = get(&server, &format!("/api/jobs/{}/history?metrics=gradnorm", job.id)).await;
    assert!(a.json()["error"].as_str().unwrap().contains("unknown metric \"gradnorm\""), "{}", a.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_no_data_leaves_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { token: Some("s3cret".into()), ..Default::default() };
    let server = TestServer::start_with(&dir.path().join("g.db"), RunnerConfig::with_workers(1), options).await;
    let mut client = server.client_with_token(Some("s3cret")).await;
    let job = client.submit_job(small_job(10)).await.unwrap().into_inner();
    let data = [
        "/api/jobs".to_string(),
        format!("/api/jobs/{}", job.id),
        format!("/api/jobs/{}/history", job.id),
        format!("/api/jobs/{}/live", job.id),
        "/api/changes".into(),
        "/api/sweeps".into(),
    ];
    for path in &data {
        for headers in [&[][..], &[("Authorization", "Bearer wrong")], &[("Cookie", "gradlab_token=wrong")]] {
            let a = request(&server, "GET", path, headers, "").await;
            assert_eq!(a.status, 401, "{path} {headers:?}");
            assert!(!a.body.contains("tanh"), "{path}: {}", a.body);
        }
    }
    // The page itself carries no data: it loads, and asks.
    assert_eq!(get(&server, "/").await.status, 200);
    assert_eq!(get(&server, "/api/session").await.json()["authenticated"], false);
    let wrong = request(&server, "POST", "/api/login", &[], r#"{"token":"nope"}"#).await;
    assert_eq!((wrong.status, wrong.header("set-cookie")), (401, None));
    let right = request(&server, "POST", "/api/login", &[], r#"{"token":"s3cret"}"#).await;
    assert_eq!(right.status, 204);
    let cookie = right.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap();
    let with_cookie = request(&server, "GET", &format!("/api/jobs/{}", job.id), &[("Cookie", cookie)], "").await;
    assert_eq!(with_cookie.json()["id"], job.id);
    let bearer = request(&server, "GET", "/api/jobs", &[("Authorization", "Bearer s3cret")], "").await;
    assert_eq!(bearer.json()["jobs"][0]["id"], job.id);
    let session = request(&server, "GET", "/api/session", &[("Cookie", cookie)], "").await.json();
    assert_eq!((session["auth_required"].clone(), session["authenticated"].clone()), (true.into(), true.into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_streams_its_progress_then_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let mut client = server.client().await;
    let base = pb::JobSpec { steps: Some(40), width: Some(8), ..small_job(40) };
    let spec = pb::SweepSpec {
        name: "web".into(),
        base: Some(base),
        axes: vec![
            pb::Axis { field: "activation".into(), values: vec!["tanh".into(), "ramp".into()] },
            pb::Axis { field: "depth".into(), values: vec!["1".into(), "2".into()] },
        ],
    };
    let sweep = client.submit_sweep(spec).await.unwrap().into_inner();
    let seen = events(&server, &format!("/api/sweeps/{}/live", sweep.id), &[]).await;
    let names: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!((names[0], names[names.len() - 2], names[names.len() - 1]), ("sweep", "sweep", "end"));
    assert_eq!(seen[seen.len() - 2].1["state"], "succeeded");
    assert_eq!(seen[seen.len() - 2].1["counts"]["succeeded"], 4);
    let report = get(&server, &format!("/api/sweeps/{}/report", sweep.id)).await.json();
    let grpc = client
        .get_sweep_report(pb::SweepReportRequest { sweep_id: sweep.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report["report"]["cells"].as_array().unwrap().len(), grpc.cells.len());
    assert_eq!(report["report"]["jobs_finished"], 4);
    assert_eq!(get(&server, "/api/sweeps").await.json()["sweeps"][0]["id"], sweep.id);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gradient_histograms_over_time_thinned_as_grpc_thins_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let spec = pb::JobSpec { histogram_every: Some(10), ..small_job(100) };
    let job = client.submit_job(spec).await.unwrap().into_inner();
    wait_for(&mut client, job.id, |j| j.state == pb::JobState::Succeeded as i32).await;
    let h = get(&server, &format!("/api/jobs/{}/histograms?max_steps=4&layers=0,3", job.id)).await.json();
    assert_eq!(h["steps"], serde_json::json!([0, 30, 60, 90]), "4 of the 10 recorded steps, the ends kept");
    assert_eq!((h["log10_lo"].as_i64(), h["per_decade"].as_u64()), (Some(-12), Some(4)));
    let layers = h["layers"].as_array().unwrap();
    assert_eq!(layers.iter().map(|l| l["layer"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 3]);
    // Every weight of the layer is counted once: 64 inputs x 16 units, 16 x 10 classes.
    for (l, weights) in [(0, 64 * 16), (1, 16 * 10)] {
        for hist in layers[l]["histograms"].as_array().unwrap() {
            let binned: u64 = hist["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
            let rest: u64 =
                ["zeros", "underflow", "overflow", "nonfinite"].iter().map(|k| hist[k].as_u64().unwrap()).sum();
            assert_eq!(binned + rest, weights);
        }
    }
    let grpc = client
        .get_histograms(pb::HistogramsRequest {
            job_id: job.id,
            layers: vec![0, 3],
            max_steps: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grpc.steps, [0, 30, 60, 90]);
    assert_eq!(serde_json::json!(grpc.layers[1].histograms[2].counts), layers[1]["histograms"][2]["counts"]);
    let bad = get(&server, &format!("/api/jobs/{}/histograms?layers=4", job.id)).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    server.stop().await;
}
