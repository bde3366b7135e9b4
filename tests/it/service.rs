//! The gRPC service end to end: a real server on 127.0.0.1:0, a real SQLite file, the generated
//! tonic client.

use crate::common::{TestServer, small_job, state, wait_for, watch_all, watch_all_batched};
use gradlab::api::pb::{self, JobState};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_watch_get_and_history_agree() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let mut client = server.client().await;

    let job = client.submit_job(small_job(200)).await.unwrap().into_inner();
    assert!(job.id > 0);
    assert_eq!(state(&job), JobState::Queued);
    let seen = watch_all(&mut client, job.id, 0).await;
    let steps: Vec<u64> = seen.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, (0..200).collect::<Vec<_>>(), "every step once, in order");
    assert_eq!(seen.steps[0].layers.len(), 4, "3 hidden layers and the output layer");
    let last = seen.jobs.last().unwrap();
    assert_eq!(state(last), JobState::Succeeded);
    assert_eq!(seen.evals.iter().map(|e| e.step).collect::<Vec<_>>(), vec![0, 50, 100, 150, 200]);

    let got = client.get_job(pb::JobId { id: job.id }).await.unwrap().into_inner();
    assert_eq!(state(&got), JobState::Succeeded);
    assert_eq!(got.steps_done, 200);
    let summary = got.summary.unwrap();
    assert!(summary.test_accuracy > 0.5, "{summary:?}");
    assert!(summary.mean_field.is_some());
    assert!(got.finished_ms >= got.started_ms && got.started_ms >= got.created_ms);

    let hist = client
        .get_history(pb::HistoryRequest { job_id: job.id, metrics: vec!["grad_norm".into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hist.series.len(), 4);
    for s in &hist.series {
        let layer = s.layer.unwrap() as usize;
        assert_eq!(s.steps, steps);
        let streamed: Vec<u64> = seen.steps.iter().map(|r| r.layers[layer].grad_norm.to_bits()).collect();
        assert_eq!(s.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), streamed, "layer {layer}");
    }
    // Downsampled: at most N points, each bucket's max at least its last value.
    let down = client
        .get_history(pb::HistoryRequest {
            job_id: job.id,
            layers: vec![0],
            metrics: vec!["loss".into(), "grad_norm".into()],
            max_points: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(down.series.len(), 2);
    for s in &down.series {
        assert!(s.steps.len() <= 10 && !s.steps.is_empty());
        for i in 0..s.steps.len() {
            assert!(s.min[i] <= s.values[i] && s.values[i] <= s.max[i]);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_joining_mid_run_and_after_the_end_see_the_same_steps() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let job = client.submit_job(small_job(3000)).await.unwrap().into_inner();

    let mut early = server.client().await;
    let first = tokio::spawn(async move { watch_all(&mut early, job.id, 0).await });
    // Join mid-run: wait until some steps are stored.
    wait_for(&mut client, job.id, |j| j.steps_done > 300 || state(j) == JobState::Succeeded).await;
    let mut mid = server.client().await;
    let middle = tokio::spawn(async move { watch_all(&mut mid, job.id, 0).await });
    let first = first.await.unwrap();
    let middle = middle.await.unwrap();
    let after = watch_all(&mut client, job.id, 0).await;
    let key = |w: &crate::common::Watched| w.steps.iter().map(|s| (s.step, s.loss.to_bits())).collect::<Vec<_>>();
    assert_eq!(key(&first).len(), 3000);
    assert_eq!(key(&first), key(&middle));
    assert_eq!(key(&first), key(&after));
    // Asking for batches changes the messages, not the steps.
    let batched = watch_all_batched(&mut client, job.id, 0, 64).await;
    assert_eq!(key(&batched), key(&first));
    assert_eq!(batched.evals, after.evals);
    assert!(batched.messages < 3000 / 8, "a replay goes out in batches: {} messages", batched.messages);
    // from_step skips what came before.
    let tail = watch_all(&mut client, job.id, 2990).await;
    assert_eq!(tail.steps.iter().map(|s| s.step).collect::<Vec<_>>(), (2990..3000).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_queued_and_running_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let long = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner();
    let queued = client.submit_job(small_job(100)).await.unwrap().into_inner();

    let c = client.cancel_job(pb::JobId { id: queued.id }).await.unwrap().into_inner();
    assert_eq!(state(&c), JobState::Cancelled);
    assert_eq!(c.started_ms, 0, "a cancelled queued job never starts");

    // Wait for the long job to be running with some history, then cancel it.
    wait_for(&mut client, long.id, |j| j.steps_done > 20).await;
    let c = client.cancel_job(pb::JobId { id: long.id }).await.unwrap().into_inner();
    assert_eq!(state(&c), JobState::Cancelled);
    assert!(c.steps_done > 20 && c.steps_done < 1_000_000);
    let hist = client
        .get_history(pb::HistoryRequest {
            job_id: long.id,
            layers: vec![0],
            metrics: vec!["grad_norm".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hist.series[0].steps.len() as u64, c.steps_done, "history up to the stop is kept");

    let again = client.cancel_job(pb::JobId { id: long.id }).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    let w = watch_all(&mut client, queued.id, 0).await;
    assert!(w.steps.is_empty());
    assert_eq!(state(w.jobs.last().unwrap()), JobState::Cancelled);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_invalid_argument_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let cases = [
        (pb::JobSpec { activation: "swishy".into(), ..small_job(10) }, "activation"),
        (pb::JobSpec { depth: Some(0), ..small_job(10) }, "depth"),
        (pb::JobSpec { width: Some(0), ..small_job(10) }, "width"),
        (pb::JobSpec { lr: Some(0.0), ..small_job(10) }, "lr"),
        (pb::JobSpec { lr: Some(f64::NAN), ..small_job(10) }, "lr"),
        (pb::JobSpec { batch: Some(100_000), ..small_job(10) }, "batch"),
        (pb::JobSpec { dataset: "gaussian:dim=abc".into(), ..small_job(10) }, "dataset"),
    ];
    for (spec, field) in cases {
        let e = client.submit_job(spec).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    let listed = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "nothing invalid was stored");

    for e in [
        client.get_job(pb::JobId { id: 999 }).await.unwrap_err(),
        client.cancel_job(pb::JobId { id: 999 }).await.unwrap_err(),
        client.watch_job(pb::WatchRequest { job_id: 999, from_step: 0, max_batch: 0 }).await.unwrap_err(),
        client.get_history(pb::HistoryRequest { job_id: 999, ..Default::default() }).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }
    let e =
        client.list_jobs(pb::ListJobsRequest { page_token: "garbage".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let mut client = server.client().await;
    let mut ids = Vec::new();
    for (i, act) in ["tanh", "relu", "tanh", "logistic", "tanh"].iter().enumerate() {
        let mut spec = pb::JobSpec {
            activation: act.to_string(),
            name: format!("job-{i}"),
            depth: Some(i as u32 + 1),
            ..small_job(20)
        };
        spec.labels.insert("group".into(), if i % 2 == 0 { "a" } else { "b" }.into());
        ids.push(client.submit_job(spec).await.unwrap().into_inner().id);
    }
    for &id in &ids {
        watch_all(&mut client, id, 0).await;
    }
    let all = |r: pb::ListJobsRequest| {
        let mut client = client.clone();
        async move {
            let mut out = Vec::new();
            let mut req = r;
            loop {
                let page = client.list_jobs(req.clone()).await.unwrap().into_inner();
                out.extend(page.jobs.iter().map(|j| j.id));
                if page.next_page_token.is_empty() {
                    return out;
                }
                req.page_token = page.next_page_token;
            }
        }
    };
    assert_eq!(all(pb::ListJobsRequest { page_size: 2, oldest_first: true, ..Default::default() }).await, ids);
    let mut newest = ids.clone();
    newest.reverse();
    assert_eq!(all(pb::ListJobsRequest { page_size: 2, ..Default::default() }).await, newest);
    assert_eq!(
        all(pb::ListJobsRequest { activation: "TANH".into(), oldest_first: true, ..Default::default() }).await,
        vec![ids[0], ids[2], ids[4]]
    );
    assert_eq!(all(pb::ListJobsRequest { activation: "relu".into(), ..Default::default() }).await, vec![ids[1]]);
    assert_eq!(
        all(pb::ListJobsRequest { min_depth: Some(2), max_depth: Some(3), oldest_first: true, ..Default::default() })
            .await,
        vec![ids[1], ids[2]]
    );
    assert_eq!(
        all(pb::ListJobsRequest { label: "group=b".into(), oldest_first: true, ..Default::default() }).await,
        vec![ids[1], ids[3]]
    );
    assert_eq!(all(pb::ListJobsRequest { name_contains: "job-4".into(), ..Default::default() }).await, vec![ids[4]]);
    assert_eq!(
        all(pb::ListJobsRequest { states: vec![JobState::Succeeded as i32], ..Default::default() }).await.len(),
        5
    );
    assert!(all(pb::ListJobsRequest { states: vec![JobState::Running as i32], ..Default::default() }).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_serves_the_old_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let server = TestServer::start(&db, 1).await;
    let mut client = server.client().await;
    let job = client.submit_job(small_job(120)).await.unwrap().into_inner();
    let before = watch_all(&mut client, job.id, 0).await;
    let got_before = client.get_job(pb::JobId { id: job.id }).await.unwrap().into_inner();
    server.stop().await;

    let server = TestServer::start(&db, 1).await;
    let mut client = server.client().await;
    let got = client.get_job(pb::JobId { id: job.id }).await.unwrap().into_inner();
    assert_eq!(got, got_before);
    let after = watch_all(&mut client, job.id, 0).await;
    assert_eq!(before.steps, after.steps);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut health = HealthClient::new(server.channel().await);
    let r = health.check(HealthCheckRequest { service: "gradlab.v1.Experiments".into() }).await.unwrap().into_inner();
    assert_eq!(r.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(server.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = refl.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let msg = resp.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else { panic!("{msg:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"gradlab.v1.Experiments".to_string()), "{names:?}");

    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReq;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    let mut alpha = AlphaClient::new(server.channel().await);
    let req = AlphaReq {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol("gradlab.v1.Experiments".into())),
    };
    let mut resp = alpha.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let msg = resp.next().await.unwrap().unwrap();
    assert!(msg.message_response.is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_watch_streams_and_stops_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let long = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner();
    wait_for(&mut client, long.id, |j| j.steps_done > 5).await;
    let mut stream =
        client.watch_job(pb::WatchRequest { job_id: long.id, from_step: 0, max_batch: 0 }).await.unwrap().into_inner();
    let watcher = tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    });
    let stop = tokio::spawn(server.stop());
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), watcher)
        .await
        .expect("the watch stream ended within 10 s")
        .unwrap()
        .expect("the stream ends with a status");
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), stop).await;
    assert!(stopped.is_ok(), "the server stopped within 10 s of its watchers");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_explodes_stays_readable_with_its_non_finite_summary() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let spec = pb::JobSpec {
        activation: "identity".into(),
        depth: Some(6),
        width: Some(16),
        sigma_w: Some(4.0),
        lr: Some(2.0),
        steps: Some(60),
        ..small_job(60)
    };
    let id = client.submit_job(spec).await.unwrap().into_inner().id;
    let job = wait_for(&mut client, id, |j| state(j) == JobState::Succeeded || state(j) == JobState::Failed).await;
    let summary = job.summary.expect("a summary");
    assert!(!summary.test_loss.is_finite(), "the run should explode: {summary:?}");
    assert!(summary.stopped_early);
    // Read back from the store by every path: one job, a list, a watch replay.
    let again = client.get_job(pb::JobId { id }).await.unwrap().into_inner();
    assert!(again.summary.unwrap().test_loss.is_nan());
    let listed = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner().jobs;
    assert_eq!(listed.len(), 1);
    assert!(watch_all(&mut client, id, 0).await.jobs.last().is_some());
    server.stop().await;
}
