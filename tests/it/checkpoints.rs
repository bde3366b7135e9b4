//! Checkpoints through the server and the built binary: `gradlab show` listing them,
//! `gradlab export` writing safetensors and .npz files whose network gives the server's own
//! predictions, and the refusals (no checkpoint, a step before the first, a bad name).

use gradlab::api::pb;
use tonic::Code;

use crate::common::{TestServer, failed, gradlab, ok, small_job, state, wait_for};

/// A small job that stores a checkpoint every `every` steps (no time limit) and keeps them.
fn kept_job(steps: u64, every: u64) -> pb::JobSpec {
    pb::JobSpec {
        keep_checkpoints: Some(true),
        checkpoint_every_steps: Some(every),
        checkpoint_every_seconds: Some(0.0),
        ..small_job(steps)
    }
}

/// Little-endian floats of one tensor.
fn floats<const N: usize, T>(bytes: &[u8], from: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes.chunks_exact(N).map(|c| from(c.try_into().unwrap())).collect()
}

/// The exported network by hand (tanh hidden layers, identity output), in f64.
fn forward(file: &safetensors::SafeTensors<'_>, x: &[f32], dim: usize) -> Vec<f64> {
    let mean = floats(file.tensor("input.mean").unwrap().data(), f64::from_le_bytes);
    let scale = floats(file.tensor("input.scale").unwrap().data(), f64::from_le_bytes);
    let layers = file.names().iter().filter(|n| n.ends_with(".weight")).count();
    let mut out = Vec::new();
    for row in x.chunks_exact(dim) {
        let mut a: Vec<f64> =
            row.iter().zip(mean.iter().zip(&scale)).map(|(&v, (m, s))| ((v as f64 - m) * s) as f32 as f64).collect();
        for i in 0..layers {
            let w = file.tensor(&format!("layer{i}.weight")).unwrap();
            let (outs, ins) = (w.shape()[0], w.shape()[1]);
            let w = floats(w.data(), f32::from_le_bytes);
            let b = floats(file.tensor(&format!("layer{i}.bias")).unwrap().data(), f32::from_le_bytes);
            a = (0..outs)
                .map(|o| {
                    let z = b[o] as f64 + (0..ins).map(|k| a[k] * w[o * ins + k] as f64).sum::<f64>();
                    if i + 1 < layers { z.tanh() } else { z }
                })
                .collect();
        }
        out.extend(a);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_the_network_the_server_predicts_with() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let spec = kept_job(250, 100);
    let id = client.submit_job(spec).await.unwrap().into_inner().id;
    let job = wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await;
    assert_eq!(job.checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(), [200, 250]);

    let shown = ok(&gradlab(&url, &["show", &id.to_string()]));
    assert!(shown.contains("checkpoints at steps 200 ("), "{shown}");
    let st = dir.path().join("m.safetensors");
    let said = ok(&gradlab(&url, &["export", &id.to_string(), "-o", st.to_str().unwrap()]));
    assert!(said.contains(&format!("job {id}: weights at step 250 ->")), "{said}");
    let bytes = std::fs::read(&st).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();

    let x: Vec<f32> = (0..20 * 64).map(|i| ((i * 7919) % 17) as f32).collect();
    let served = client
        .predict(pb::PredictRequest { job_id: id, step: None, inputs: x.clone(), input_dim: 64 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((served.step, served.rows, served.outputs), (250, 20, 10));
    let mine = forward(&file, &x, 64);
    for (i, (a, b)) in mine.iter().zip(&served.values).enumerate() {
        assert!((a - *b as f64).abs() <= 1e-4 * (1.0 + a.abs()), "output {i}: exported {a}, served {b}");
    }

    let npz = dir.path().join("m.npz");
    let said = ok(&gradlab(&url, &["export", &id.to_string(), "--step", "220", "-o", npz.to_str().unwrap()]));
    assert!(said.contains("weights at step 200"), "{said}");
    let mut r = ndarray_npy::NpzReader::new(std::fs::File::open(&npz).unwrap()).unwrap();
    let w: ndarray::Array2<f32> = r.by_name("layer0.weight").unwrap();
    assert_eq!(w.dim(), (16, 64));

    // The server keeps the networks it restored: each checkpoint still answers as itself.
    let request = |step| pb::PredictRequest { job_id: id, step, inputs: x.clone(), input_dim: 64 };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let at_200 = client.predict(request(Some(220))).await.unwrap().into_inner();
    assert_eq!(at_200.step, 200);
    assert_ne!(bits(&at_200.values), bits(&served.values), "step 200's network is not step 250's");
    let again = client.predict(request(None)).await.unwrap().into_inner();
    assert_eq!((again.step, bits(&again.values)), (250, bits(&served.values)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_what_it_cannot_write_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let plain = client.submit_job(small_job(60)).await.unwrap().into_inner().id;
    wait_for(&mut client, plain, |j| state(j) == pb::JobState::Succeeded).await;
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("m.safetensors");
    let t = target.to_str().unwrap();

    let err = failed(&gradlab(&url, &["export", &plain.to_string(), "-o", t]));
    assert!(err.contains("no checkpoint") && err.contains("--keep-checkpoints"), "{err}");
    let kept = kept_job(60, 20);
    let kept = client.submit_job(kept).await.unwrap().into_inner().id;
    wait_for(&mut client, kept, |j| state(j) == pb::JobState::Succeeded).await;
    let err = failed(&gradlab(&url, &["export", &kept.to_string(), "--step", "10", "-o", t]));
    assert!(err.contains("step: ") && err.contains("at steps 40, 60"), "{err}");
    let err = failed(&gradlab(&url, &["export", &kept.to_string(), "-o", out_dir.join("m.onnx").to_str().unwrap()]));
    assert!(err.contains(".safetensors or .npz"), "{err}");
    let err = failed(&gradlab(&url, &["export", "99999", "-o", t]));
    assert!(err.contains("job 99999 not found"), "{err}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "nothing written");

    let e = client
        .predict(pb::PredictRequest { job_id: kept, step: None, inputs: vec![0.0; 65], input_dim: 65 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("inputs") && e.message().contains("64"), "{e:?}");
    let e = client
        .predict(pb::PredictRequest { job_id: kept, step: None, inputs: vec![0.0; 10], input_dim: 64 })
        .await
        .unwrap_err();
    assert!(e.message().contains("whole rows"), "{e:?}");
}

async fn history_bits(
    client: &mut crate::common::Client,
    id: i64,
) -> (Vec<(Option<u32>, String, Vec<u64>, Vec<u64>)>, Vec<pb::EvalEvent>) {
    let h = client.get_history(pb::HistoryRequest { job_id: id, ..Default::default() }).await.unwrap().into_inner();
    let series = h
        .series
        .iter()
        .map(|s| (s.layer, s.metric.clone(), s.steps.clone(), s.values.iter().map(|v| v.to_bits()).collect()))
        .collect();
    (series, h.evals)
}

/// Forks through the binary and gRPC: with nothing changed a fork's whole history is its
/// parent's, bit for bit; with another lr it goes its own way, the same way twice; what a fork
/// cannot change, or where it cannot start, is refused naming the field; the parent stays while
/// it has forks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_goes_on_from_its_parents_checkpoint_and_reads_from_step_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let url = server.url();
    let mut client = server.client().await;
    let spec = pb::JobSpec {
        checkpoint_keep: Some(5),
        record_every: Some(3),
        histogram_every: Some(40),
        ..kept_job(400, 100)
    };
    let parent = client.submit_job(spec).await.unwrap().into_inner().id;
    let parent_job = wait_for(&mut client, parent, |j| state(j) == pb::JobState::Succeeded).await;
    let p = parent.to_string();

    // --at-step 250: the newest checkpoint at or before it, 200.
    let same: i64 = ok(&gradlab(&url, &["fork", &p, "--at-step", "250"])).trim().parse().unwrap();
    let hot: i64 =
        ok(&gradlab(&url, &["fork", &p, "--at-step", "200", "--lr", "0.3", "--name", "hot"])).trim().parse().unwrap();
    let hot2 = client
        .fork_job(pb::ForkRequest {
            job_id: parent,
            at_step: 200,
            changes: Some(pb::JobSpec { lr: Some(0.3), name: "hot".into(), ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((hot2.parent_id, hot2.fork_step), (Some(parent), Some(200)));
    let mut done = Vec::new();
    for id in [same, hot, hot2.id] {
        done.push(wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await);
    }
    assert_eq!((done[0].parent_id, done[0].fork_step, done[0].steps_done), (Some(parent), Some(200), 400));
    let shown = ok(&gradlab(&url, &["show", &same.to_string()]));
    assert!(shown.contains(&format!("fork of job {parent} at step 200")), "{shown}");

    let whole = history_bits(&mut client, parent).await;
    assert_eq!(history_bits(&mut client, same).await, whole, "nothing changed: the parent's history, step 0 on");
    let (hot_series, _) = history_bits(&mut client, hot).await;
    assert_eq!(hot_series, history_bits(&mut client, hot2.id).await.0, "the same fork twice: the same bits");
    assert_ne!(hot_series, whole.0);
    for (h, w) in hot_series.iter().zip(&whole.0) {
        assert_eq!(h.2, w.2, "the same steps recorded");
        let before = h.2.iter().position(|&s| s >= 200).unwrap();
        assert_eq!(h.3[..before], w.3[..before], "{} before the fork: the parent's", h.1);
    }
    let (a, b) = (done[0].summary.as_ref().unwrap(), parent_job.summary.as_ref().unwrap());
    assert_eq!((a.test_loss.to_bits(), a.test_accuracy.to_bits()), (b.test_loss.to_bits(), b.test_accuracy.to_bits()));

    // Refusals, each storing nothing.
    let fork = |at_step, changes| pb::ForkRequest { job_id: parent, at_step, changes: Some(changes) };
    let jobs_before = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner().jobs.len();
    for (changes, field) in [
        (pb::JobSpec { depth: Some(5), ..Default::default() }, "hidden"),
        (pb::JobSpec { dataset: "gaussian:dim=64".into(), ..Default::default() }, "dataset"),
        (pb::JobSpec { seed: Some(99), ..Default::default() }, "seed"),
        (pb::JobSpec { steps: Some(150), ..Default::default() }, "steps"),
    ] {
        let e = client.fork_job(fork(200, changes)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().starts_with(&format!("{field}: ")), "{field}: {e:?}");
    }
    let e = client.fork_job(fork(50, pb::JobSpec::default())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().starts_with("at_step: ") && e.message().contains("at steps 100, 200"), "{e:?}");
    let e = client.fork_job(pb::ForkRequest { job_id: 99_999, at_step: 10, changes: None }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let err = failed(&gradlab(&url, &["fork", &p, "--at-step", "200", "--optimizer", "adamw"]));
    assert!(err.contains("optimizer"), "{err}");
    assert_eq!(client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner().jobs.len(), jobs_before);

    // The parent stays while it has forks.
    let err = failed(&gradlab(&url, &["rm", &p]));
    assert!(err.contains(&format!("job {parent} has forks (job {same}, job {hot}, job {})", hot2.id)), "{err}");
    ok(&gradlab(&url, &["rm", &same.to_string(), &hot.to_string(), &hot2.id.to_string()]));
    ok(&gradlab(&url, &["rm", &p]));
}

/// gc deletes a finished parent only with its forks: a parent whose fork stays (it runs, or is
/// spared itself) stays, in the dry run's list as in what is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_a_parent_whose_fork_stays() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let succeeded = |j: &pb::Job| state(j) == pb::JobState::Succeeded;
    let fork = |job_id, steps, labels: &[(&str, &str)]| pb::ForkRequest {
        job_id,
        at_step: 20,
        changes: Some(pb::JobSpec {
            steps: Some(steps),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }),
    };
    // a <- b (both finished: both go); c <- d <- e, e labelled keep=true: c and d stay; f <- g,
    // g still running: f stays.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = client.submit_job(kept_job(40, 20)).await.unwrap().into_inner().id;
        wait_for(&mut client, id, succeeded).await;
        ids.push(id);
    }
    let (a, c, f) = (ids[0], ids[1], ids[2]);
    let b = client.fork_job(fork(a, 60, &[])).await.unwrap().into_inner().id;
    let d = client.fork_job(fork(c, 60, &[])).await.unwrap().into_inner().id;
    wait_for(&mut client, d, succeeded).await;
    let e = client.fork_job(fork(d, 60, &[("keep", "true")])).await.unwrap().into_inner().id;
    let g = client.fork_job(fork(f, 1_000_000, &[])).await.unwrap().into_inner().id;
    for id in [b, e] {
        wait_for(&mut client, id, succeeded).await;
    }
    wait_for(&mut client, g, |j| state(j) == pb::JobState::Running).await;

    let dry = ok(&gradlab(&url, &["gc", "--older-than", "1ms", "--dry-run"]));
    assert_eq!(dry.trim(), format!("would delete 2 jobs: {a} {b}"));
    let out = ok(&gradlab(&url, &["gc", "--older-than", "1ms"]));
    assert!(out.starts_with(&format!("deleted 2 jobs and 0 empty sweeps: {a} {b}")), "{out}");
    for id in [c, d, e, f, g] {
        client.get_job(pb::JobId { id }).await.unwrap();
    }
    client.cancel_job(pb::JobId { id: g }).await.unwrap();
}
