//! Run management through the real server and the built binary: `gradlab rm` (finished,
//! running, queued and swept jobs; with and without --cancel), a watcher of a job deleted under
//! it, `gradlab label` and `gradlab rename`, bad labels, and the token.

use std::time::Duration;

use gradlab::api::pb::{self, progress::Event};
use gradlab::api::server::ServeOptions;
use gradlab::runner::RunnerConfig;
use tonic::Code;

use crate::common::{TestServer, failed, gradlab, ok, small_job, state, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_deletes_finished_jobs_and_refuses_active_ones_unless_told_to_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let done = client.submit_job(small_job(30)).await.unwrap().into_inner().id;
    wait_for(&mut client, done, |j| state(j) == pb::JobState::Succeeded).await;
    let running = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner().id;
    wait_for(&mut client, running, |j| j.steps_done > 0).await;
    let queued = client.submit_job(small_job(30)).await.unwrap().into_inner().id;

    let out = ok(&gradlab(&url, &["rm", &done.to_string()]));
    assert_eq!(out.trim(), format!("deleted job {done}"));
    let e = client.get_job(pb::JobId { id: done }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = client.get_history(pb::HistoryRequest { job_id: done, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(failed(&gradlab(&url, &["rm", &done.to_string()])).contains(&format!("job {done} not found")));

    let err = failed(&gradlab(&url, &["rm", &running.to_string(), &queued.to_string()]));
    assert!(err.contains(&format!("job {running} is running: cancel it first (gradlab rm --cancel")), "{err}");
    assert!(err.contains(&format!("job {queued} is queued")), "{err}");
    assert_eq!(state(&client.get_job(pb::JobId { id: running }).await.unwrap().into_inner()), pb::JobState::Running);

    let out = ok(&gradlab(&url, &["rm", "--cancel", &running.to_string(), &queued.to_string()]));
    assert_eq!(out.lines().count(), 2, "{out}");
    for id in [running, queued] {
        assert_eq!(client.get_job(pb::JobId { id }).await.unwrap_err().code(), Code::NotFound);
    }
    let listed = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "{:?}", listed.jobs);
    // Ids are not given again.
    let next = client.submit_job(small_job(5)).await.unwrap().into_inner().id;
    assert!(next > queued);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_of_a_job_deleted_under_it_gets_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let id = client.submit_job(small_job(20_000)).await.unwrap().into_inner().id;
    wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await;
    // A replay of 20,000 steps, one a message: the watcher holds it back while the job goes.
    let mut stream = client
        .clone()
        .watch_job(pb::WatchRequest { job_id: id, from_step: 0, max_batch: 1 })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(stream.message().await.unwrap().unwrap().event, Some(Event::Job(_))));
    client.delete_job(pb::DeleteJobRequest { id, cancel: false }).await.unwrap();
    let mut steps = 0;
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => steps += 1,
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    })
    .await
    .expect("the stream ends");
    let e = end.expect("an error, not a clean end: the job is gone, not finished");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(steps < 20_000, "the replay stopped short ({steps} steps)");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_goes_with_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let spec = pb::SweepSpec {
        name: "rm".into(),
        base: Some(small_job(200_000)),
        axes: vec![pb::Axis { field: "seed".into(), values: vec!["1".into(), "2".into(), "3".into()] }],
    };
    let sweep = client.submit_sweep(spec).await.unwrap().into_inner().id;
    let outside = client.submit_job(small_job(5)).await.unwrap().into_inner().id;
    let err = failed(&gradlab(&url, &["rm", "--sweep", &sweep.to_string()]));
    assert!(err.contains("cancel it first"), "{err}");
    let out = ok(&gradlab(&url, &["rm", "--sweep", &sweep.to_string(), "--cancel"]));
    assert_eq!(out.trim(), format!("deleted sweep {sweep} and its 3 jobs"));
    assert_eq!(client.get_sweep(pb::SweepId { id: sweep }).await.unwrap_err().code(), Code::NotFound);
    let left = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner().jobs;
    assert_eq!(left.iter().map(|j| j.id).collect::<Vec<_>>(), [outside]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_names_change_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let spec = pb::JobSpec { labels: [("a".to_string(), "1".to_string())].into(), ..small_job(20) };
    let id = client.submit_job(spec).await.unwrap().into_inner().id;
    let before = wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await;

    let out = ok(&gradlab(&url, &["label", &id.to_string(), "k=v", "b=2", "--remove", "a"]));
    assert_eq!(out.trim(), format!("job {id}: b=2 k=v"));
    let out = ok(&gradlab(&url, &["rename", &id.to_string(), "tidy name"]));
    assert_eq!(out.trim(), format!("job {id}: tidy name"));
    let after = client.get_job(pb::JobId { id }).await.unwrap().into_inner();
    let mut expected = before.clone();
    let spec = expected.spec.as_mut().unwrap();
    spec.name = "tidy name".into();
    spec.labels = [("b".to_string(), "2".to_string()), ("k".to_string(), "v".to_string())].into();
    assert_eq!(after, expected, "the name and labels changed, nothing else");
    let listed = ok(&gradlab(&url, &["ls", "--label", "k=v"]));
    assert!(listed.contains("tidy name"), "{listed}");
    assert!(!ok(&gradlab(&url, &["ls", "--label", "a"])).contains("tidy name"));

    for bad in ["=x", "a b=1", "x,y=1"] {
        let err = failed(&gradlab(&url, &["label", &id.to_string(), bad]));
        assert!(err.contains("label"), "{bad}: {err}");
    }
    let e = client
        .update_job(pb::UpdateJobRequest { id, remove_labels: vec!["".into()], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.metadata().get("gradlab-field").unwrap(), "labels");
    let e = client
        .update_job(pb::UpdateJobRequest { id: 999, name: Some("x".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { token: Some("s3cret".into()), ..Default::default() };
    let server = TestServer::start_with(&dir.path().join("g.db"), RunnerConfig::with_workers(1), options).await;
    let mut with = server.client_with_token(Some("s3cret")).await;
    let id = with.submit_job(small_job(10)).await.unwrap().into_inner().id;
    let mut without = server.client().await;
    let e = without.delete_job(pb::DeleteJobRequest { id, cancel: true }).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = without
        .update_job(pb::UpdateJobRequest { id, name: Some("x".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    with.delete_job(pb::DeleteJobRequest { id, cancel: true }).await.unwrap();
    server.stop().await;
}

fn file_bytes(db: &std::path::Path) -> u64 {
    let wal = db.with_extension("db-wal");
    std::fs::metadata(db).unwrap().len() + std::fs::metadata(wal).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deletes_what_finished_before_a_date_spares_keep_and_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let server = TestServer::start(&db, 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let mut ids = Vec::new();
    for seed in 0..12 {
        let spec = pb::JobSpec { seed: Some(seed), histogram_every: Some(10), ..small_job(3_000) };
        ids.push(client.submit_job(spec).await.unwrap().into_inner().id);
    }
    for &id in &ids {
        wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await;
    }
    ok(&gradlab(&url, &["label", &ids[0].to_string(), "keep=true"]));
    let running = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner().id;
    wait_for(&mut client, running, |j| j.steps_done > 0).await;

    let dry = ok(&gradlab(&url, &["gc", "--older-than", "1ms", "--dry-run"]));
    let expected: Vec<String> = ids[1..].iter().map(|i| i.to_string()).collect();
    assert_eq!(dry.trim(), format!("would delete 11 jobs: {}", expected.join(" ")));
    assert_eq!(
        client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner().jobs.len(),
        13,
        "a dry run deletes nothing"
    );

    let before = file_bytes(&db);
    let out = ok(&gradlab(&url, &["gc", "--finished-before", "2999-01-01", "--vacuum"]));
    assert!(out.starts_with(&format!("deleted 11 jobs and 0 empty sweeps: {}", expected.join(" "))), "{out}");
    let after = file_bytes(&db);
    assert!(after * 2 < before, "the file shrank: {before} -> {after} bytes");
    let left: Vec<i64> = client
        .list_jobs(pb::ListJobsRequest { oldest_first: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .jobs
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [ids[0], running], "keep=true and the running job stay");

    let err = failed(&gradlab(&url, &["gc", "--finished-before", "last tuesday"]));
    assert!(err.contains("--finished-before") && err.contains("2026-11-01"), "{err}");
    client.cancel_job(pb::JobId { id: running }).await.unwrap();
    server.stop().await;
}

#[test]
fn retention_deletes_old_finished_jobs_as_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let server = crate::common::spawn_serve(&db, &["--retain-finished", "1s"]);
    let url = server.url.clone();
    let keep = ok(&gradlab(&url, &["submit", "--steps", "20", "--label", "keep=true"])).trim().to_string();
    let old = ok(&gradlab(&url, &["submit", "--steps", "20"])).trim().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let gone = !gradlab(&url, &["show", &old]).status.success();
        if gone {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "job {old} still there after 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok(&gradlab(&url, &["show", &keep])).contains("succeeded"), "keep=true stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_steps_the_store_refuses_stops_alone() {
    use gradlab::runner::{MetricBatch, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    // A queued job whose first steps are already stored (as a tool writing into the file by
    // hand might leave it): training it again, every append of it is refused.
    let planted = {
        let store = gradlab::store::SqliteStore::open(db.to_str().unwrap()).await.unwrap();
        let spec = gradlab::api::convert::job_spec(&small_job(4_000)).unwrap();
        let id = store.create_job(&spec, None, None).await.unwrap().id;
        let mut t = gradlab::engine::train::Trainer::<f32>::new(&spec).unwrap();
        let steps = (0..5).map(|_| t.step()).collect();
        store.append_metrics(&[MetricBatch { job: Some(id), steps, ..Default::default() }]).await.unwrap();
        store.close().await;
        id
    };
    let server = TestServer::start(&db, 2).await;
    let mut client = server.client().await;
    let others: Vec<i64> = {
        let mut v = Vec::new();
        for seed in 0..3 {
            let spec = pb::JobSpec { seed: Some(seed), ..small_job(4_000) };
            v.push(client.submit_job(spec).await.unwrap().into_inner().id);
        }
        v
    };
    let bad =
        wait_for(&mut client, planted.0, |j| state(j) != pb::JobState::Queued && state(j) != pb::JobState::Running)
            .await;
    assert_eq!(state(&bad), pb::JobState::Failed);
    assert!(bad.error.contains("already stored"), "{}", bad.error);
    // The jobs trained beside it, whose steps went into the same transactions, are unharmed.
    for id in others {
        let j =
            wait_for(&mut client, id, |j| state(j) != pb::JobState::Queued && state(j) != pb::JobState::Running).await;
        assert_eq!((state(&j), j.steps_done), (pb::JobState::Succeeded, 4_000), "job {id}: {}", j.error);
    }
    server.stop().await;
}
