//! Finding runs by what they achieved, through the real server: the filter grammar and sorts
//! over gRPC, the built binary's `ls --filter --sort --desc` and the dashboard's JSON, all
//! answered by the one parser on the server, with errors that point at the offending token.

use gradlab::api::pb;
use tonic::Code;

use crate::common::{TestServer, gradlab, ok, small_job, state, wait_for};
use crate::web::request;

fn acc(j: &pb::Job) -> f64 {
    j.summary.as_ref().map_or(f64::NAN, |s| s.test_accuracy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_sorts_through_grpc_the_cli_and_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let url = server.url();
    let mut client = server.client().await;
    let mut ids = Vec::new();
    for i in 0..8u64 {
        let mut spec = small_job(40 + 20 * i);
        spec.depth = Some(1 + (i % 4) as u32);
        spec.lr = Some([0.001, 0.3, 0.05, 0.01][i as usize % 4]);
        spec.seed = Some(i);
        spec.labels.insert("group".into(), if i % 2 == 0 { "a" } else { "b" }.into());
        ids.push(client.submit_job(spec).await.unwrap().into_inner().id);
    }
    let mut jobs = Vec::new();
    for &id in &ids {
        jobs.push(wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await);
    }
    let mut accs: Vec<f64> = jobs.iter().map(acc).collect();
    accs.sort_by(f64::total_cmp);
    let median = accs[accs.len() / 2];
    assert!(accs[0] < median, "the jobs must differ in accuracy for this test: {accs:?}");

    // Accuracy at or above the median, group b excluded, best first.
    let mut want: Vec<&pb::Job> = jobs
        .iter()
        .filter(|j| acc(j) >= median && j.spec.as_ref().unwrap().labels.get("group").map(String::as_str) != Some("b"))
        .collect();
    want.sort_by(|a, b| acc(b).total_cmp(&acc(a)).then(b.id.cmp(&a.id)));
    let want: Vec<i64> = want.iter().map(|j| j.id).collect();
    assert!(!want.is_empty() && want.len() < jobs.len(), "{want:?}");
    let filter = format!("test_accuracy >= {median:?} and label.group != b");

    let req = pb::ListJobsRequest {
        filter: filter.clone(),
        sort_by: "test_accuracy".into(),
        descending: true,
        page_size: 2,
        ..Default::default()
    };
    let mut got = Vec::new();
    let mut req = req;
    loop {
        let page = client.list_jobs(req.clone()).await.unwrap().into_inner();
        got.extend(page.jobs.iter().map(|j| j.id));
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    assert_eq!(got, want, "gRPC");

    let listed: serde_json::Value = serde_json::from_str(&ok(&gradlab(
        &url,
        &["ls", "--filter", &filter, "--sort", "test_accuracy", "--desc", "--format", "json"],
    )))
    .unwrap();
    let cli: Vec<i64> = listed.as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(cli, want, "CLI");

    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", &filter)
        .append_pair("sort", "test_accuracy")
        .finish();
    let web = request(&server, "GET", &format!("/api/jobs?{query}"), &[], "").await;
    assert_eq!(web.status, 200, "{}", web.body);
    let from_web: Vec<i64> = web.json()["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(from_web, want, "dashboard");

    // Depth and width ranges, ascending by depth.
    let out = ok(&gradlab(&url, &["ls", "--filter", "depth >= 2, width = 16", "--sort", "depth", "--format", "csv"]));
    let depths: Vec<u32> = out.lines().skip(1).map(|l| l.split(',').nth(3).unwrap().parse().unwrap()).collect();
    assert_eq!(depths.len(), 6, "{out}");
    assert!(depths.windows(2).all(|w| w[0] <= w[1]) && depths[0] == 2, "{depths:?}");

    // Errors name the field and point at the token, on every face.
    let bad = pb::ListJobsRequest { filter: "depth > 2 and acc > 0.9".into(), ..Default::default() };
    let e = client.list_jobs(bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("filter: at column 15: unknown field \"acc\""), "{}", e.message());
    let e = client.list_jobs(pb::ListJobsRequest { sort_by: "accuracy".into(), ..Default::default() }).await;
    let e = e.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("sort_by: unknown sort key"), "{}", e.message());
    let out = gradlab(&url, &["ls", "--filter", "state = sleeping"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("filter: at column 9: unknown state \"sleeping\""), "{err}");
    let web = request(&server, "GET", "/api/jobs?sort=nope", &[], "").await;
    assert_eq!(web.status, 400, "{}", web.body);
    assert!(web.body.contains("sort"), "{}", web.body);
    server.stop().await;
}
