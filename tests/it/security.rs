//! Security and limits end to end: tokens, TLS, the refusal to listen openly, dataset
//! directories and every server limit, through a real server on 127.0.0.1:0, the generated tonic
//! client and the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestServer, small_job, state, wait_for};
use gradlab::api::auth::SendToken;
use gradlab::api::pb::{self, JobState, experiments_client::ExperimentsClient};
use gradlab::api::server::ServeOptions;
use gradlab::runner::{DataPolicy, Limits, RunnerConfig};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The binary with none of gradlab's environment from the machine running the tests.
fn gradlab(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradlab"));
    cmd.args(args);
    for var in ["GRADLAB_TOKEN", "GRADLAB_SERVER", "GRADLAB_CA_CERT", "GRADLAB_DATA_DIR", "GRADLAB_ADDR"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).output().expect("run gradlab")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status, stderr(out));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    stderr(out)
}

/// A small two-class CSV the digits-sized jobs can train on (batch 8).
fn write_csv(path: &Path, rows: usize) {
    let text: String = (0..rows).map(|i| format!("{},{},{}\n", i % 7, (i * 3) % 5, i % 2)).collect();
    std::fs::write(path, text).unwrap();
}

fn csv_job(path: &Path) -> pb::JobSpec {
    pb::JobSpec { dataset: format!("csv:{}", path.display()), batch: Some(8), steps: Some(20), ..small_job(20) }
}

/// A temporary directory with a `data` directory in it holding `ok.csv` (40 rows, 2 classes).
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_csv(&data.join("ok.csv"), 40);
    (dir, data)
}

/// A runner that reads dataset files under `dir`.
fn with_data(workers: usize, dir: &Path) -> RunnerConfig {
    RunnerConfig { data: DataPolicy::allow(&[dir.to_path_buf()]).unwrap(), ..RunnerConfig::with_workers(workers) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_server_lets_in_only_the_right_token_and_health_without_one() {
    use tokio_stream::StreamExt;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { token: Some("s3cret-token".into()), ..Default::default() };
    let server = TestServer::start_with(&dir.path().join("g.db"), RunnerConfig::with_workers(1), options).await;

    for (token, says) in [(None, "needs a token"), (Some("wrong"), "wrong token"), (Some("s3cret-toke"), "wrong token")]
    {
        let mut client = server.client_with_token(token).await;
        let e = client.submit_job(small_job(5)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}: {e:?}");
        assert!(e.message().contains(says), "{token:?}: {}", e.message());
        let e = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}: {e:?}");
    }
    let mut client = server.client_with_token(Some("s3cret-token")).await;
    let job = client.submit_job(small_job(5)).await.unwrap().into_inner();
    assert_eq!(client.get_job(pb::JobId { id: job.id }).await.unwrap().into_inner().id, job.id);
    let mut stream =
        client.watch_job(pb::WatchRequest { job_id: job.id, from_step: 0, max_batch: 0 }).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}

    // Health answers anyone; reflection only with the token.
    let mut health = HealthClient::new(server.channel().await);
    let r = health.check(HealthCheckRequest { service: "gradlab.v1.Experiments".into() }).await.unwrap();
    assert_eq!(r.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let list = || {
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        tokio_stream::iter(vec![req])
    };
    let e = ServerReflectionClient::new(server.channel().await).server_reflection_info(list()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let token = SendToken::new(Some("s3cret-token")).unwrap();
    let mut refl = ServerReflectionClient::with_interceptor(server.channel().await, token);
    let mut resp = refl.server_reflection_info(list()).await.unwrap().into_inner();
    assert!(resp.next().await.unwrap().unwrap().message_response.is_some());

    // The binary sends --token or GRADLAB_TOKEN.
    let url = server.url();
    let err = failed(&gradlab(&["ls", "--server", &url], &[]));
    assert!(err.contains("Unauthenticated") && err.contains("needs a token"), "{err}");
    let err = failed(&gradlab(&["ls", "--server", &url, "--token", "nope"], &[]));
    assert!(err.contains("wrong token"), "{err}");
    assert!(ok(&gradlab(&["ls", "--server", &url, "--token", "s3cret-token"], &[])).contains("succeeded"));
    let shown = ok(&gradlab(&["show", &job.id.to_string(), "--server", &url], &[("GRADLAB_TOKEN", "s3cret-token")]));
    assert!(shown.contains("succeeded"), "{shown}");
    server.stop().await;
}

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_through_the_tonic_client_and_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let cert_pem = std::fs::read(&cert).unwrap();
    let identity = Identity::from_pem(&cert_pem, std::fs::read(&key).unwrap());
    let options = ServeOptions { token: Some("tls-token".into()), tls: Some(identity) };
    let server = TestServer::start_with(&dir.path().join("g.db"), RunnerConfig::with_workers(1), options).await;
    let url = server.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&cert_pem));
    let channel = Channel::from_shared(url.clone()).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
    let mut client = ExperimentsClient::with_interceptor(channel, SendToken::new(Some("tls-token")).unwrap());
    let job = client.submit_job(small_job(10)).await.unwrap().into_inner();
    assert_eq!(client.get_job(pb::JobId { id: job.id }).await.unwrap().into_inner().id, job.id);

    // Plaintext gRPC to the TLS port gets nowhere.
    let plain = format!("http://{}", server.addr);
    let answered = match Channel::from_shared(plain).unwrap().connect().await {
        Err(_) => false,
        Ok(ch) => ExperimentsClient::new(ch).list_jobs(pb::ListJobsRequest::default()).await.is_ok(),
    };
    assert!(!answered, "a plaintext client was answered by the TLS server");

    // The binary: https:// with --ca-cert; without it the system roots do not know the certificate.
    let cert_arg = cert.to_str().unwrap();
    let listed = ok(&gradlab(&["ls", "--server", &url, "--ca-cert", cert_arg, "--token", "tls-token"], &[]));
    assert!(listed.contains("tanh"), "the job is listed: {listed}");
    let err = failed(&gradlab(&["ls", "--server", &url, "--token", "tls-token"], &[]));
    assert!(err.contains("cannot reach the gradlab server") && err.to_lowercase().contains("certificate"), "{err}");
    let err = failed(&gradlab(&["ls", "--server", &plain_url(&server), "--ca-cert", cert_arg], &[]));
    assert!(err.contains("--ca-cert is for https:// servers"), "{err}");
    server.stop().await;
}

/// The certificates people make: `gradlab cert` (a CA and a server certificate signed by it)
/// works end to end; a certificate marked CA:TRUE used as the server's own (what `openssl req
/// -x509` makes) is refused by the client with one line that says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gradlab_cert_works_and_a_ca_used_as_the_server_certificate_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let out = ok(&gradlab(&["cert", "--out", tls.to_str().unwrap()], &[]));
    assert!(out.contains("made a CA"), "{out}");
    let pem = |f: &str| std::fs::read(tls.join(f)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tls.join("server-key.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "private keys are the owner's only: {mode:o}");
    let options = ServeOptions {
        token: Some("cert-token".into()),
        tls: Some(Identity::from_pem(pem("server.pem"), pem("server-key.pem"))),
    };
    let server = TestServer::start_with(&dir.path().join("g.db"), RunnerConfig::with_workers(1), options).await;
    let ca = tls.join("ca.pem");
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}", server.addr.port());
        ok(&gradlab(&["--server", &url, "--ca-cert", ca.to_str().unwrap(), "--token", "cert-token", "ls"], &[]));
    }
    // A second run reuses the CA: clients that trust ca.pem trust the new certificate too.
    let before = pem("ca.pem");
    let out = ok(&gradlab(&["cert", "--out", tls.to_str().unwrap(), "--host", "gradlab.internal"], &[]));
    assert!(out.contains("used the CA"), "{out}");
    assert_eq!(pem("ca.pem"), before);
    server.stop().await;

    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca_path = dir.path().join("openssl-like.pem");
    std::fs::write(&ca_path, cert.pem()).unwrap();
    let options = ServeOptions { token: None, tls: Some(Identity::from_pem(cert.pem(), key.serialize_pem())) };
    let server = TestServer::start_with(&dir.path().join("h.db"), RunnerConfig::with_workers(1), options).await;
    let err = failed(&gradlab(&["ls", "--server", &server.url(), "--ca-cert", ca_path.to_str().unwrap()], &[]));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("basicConstraints=critical,CA:FALSE") && err.contains("gradlab cert"), "{err}");
    server.stop().await;
}

fn plain_url(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

#[test]
fn serve_refuses_an_open_non_loopback_address_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db_arg = db.to_str().unwrap();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let err = failed(&gradlab(&["serve", "--addr", addr, "--database", db_arg], &[]));
        assert!(err.contains(&format!("refusing to listen on {addr} without a token")), "{err}");
        assert!(err.contains("--token") && err.contains("--insecure") && err.contains("127.0.0.1"), "{err}");
    }
    assert!(!db.exists(), "a refused server creates nothing");
    // --insecure or a token get past that check; here the next one (a missing --data-dir) stops
    // them before they listen.
    let missing = dir.path().join("missing");
    for extra in [vec!["--insecure"], vec!["--token", "t0ken"]] {
        let mut args =
            vec!["serve", "--addr", "0.0.0.0:0", "--database", db_arg, "--data-dir", missing.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let err = failed(&gradlab(&args, &[]));
        assert!(!err.contains("refusing") && err.contains("--data-dir"), "{extra:?}: {err}");
    }
    let err = failed(&gradlab(&["serve", "--addr", "127.0.0.1:0", "--database", db_arg, "--token", "two words"], &[]));
    assert!(err.contains("--token (GRADLAB_TOKEN): must be printable ASCII without spaces"), "{err}");

    // Bad TLS files are named by their flag, before anything is opened.
    let (cert, key) = self_signed(dir.path());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let [cert, key, junk] = [&cert, &key, &junk].map(|p| p.to_str().unwrap());
    let serve_tls = |c: &str, k: &str| {
        failed(&gradlab(
            &["serve", "--addr", "127.0.0.1:0", "--database", db_arg, "--tls-cert", c, "--tls-key", k],
            &[],
        ))
    };
    assert!(serve_tls(junk, key).contains(&format!("--tls-cert {junk}: no PEM certificate in it")));
    assert!(serve_tls(cert, junk).contains(&format!("--tls-key {junk}: no PEM private key in it")));
    std::fs::create_dir(dir.path().join("other")).unwrap();
    let (other_cert, _) = self_signed(&dir.path().join("other"));
    let err = serve_tls(other_cert.to_str().unwrap(), key);
    assert!(err.contains("--tls-cert") && err.contains("with --tls-key"), "a key that is not the certificate's: {err}");
    assert!(!db.exists(), "a refused server creates nothing");
}

/// The flags of `gradlab serve` (token, TLS, data directory, limits) reach the server: the
/// binary serves, the binary is its client.
#[test]
fn serve_flags_reach_the_server() {
    let (dir, data) = data_dir();
    let (cert, key) = self_signed(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let db = dir.path().join("g.db");
    let child = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["serve", "--addr", &addr, "--database", db.to_str().unwrap(), "--workers", "1"])
        .args(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap(), "--max-steps", "100", "--log", "warn"])
        .env("GRADLAB_TOKEN", "flag-token")
        .stderr(Stdio::null())
        .spawn()
        .expect("start gradlab serve");
    let _server = KillOnDrop(child);
    let url = format!("https://127.0.0.1:{port}");
    let client = |command: &[&str]| {
        let mut args = command.to_vec();
        args.extend(["--server", url.as_str(), "--ca-cert", cert.to_str().unwrap()]);
        gradlab(&args, &[("GRADLAB_TOKEN", "flag-token")])
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client(&["ls"]).status.success() {
        assert!(Instant::now() < deadline, "the server did not answer within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let csv = format!("csv:{}", data.join("ok.csv").display());
    let err = failed(&client(&["submit", "--steps", "101"]));
    assert!(err.contains("InvalidArgument") && err.contains("--max-steps 100"), "{err}");
    let err = failed(&client(&["submit", "--dataset", "csv:/etc/passwd", "--steps", "10"]));
    assert!(err.contains("PermissionDenied") && err.contains("dataset: /etc/passwd"), "{err}");
    ok(&client(&["submit", "--dataset", &csv, "--batch", "8", "--steps", "10"]));
    let err = failed(&gradlab(&["ls", "--server", &url, "--ca-cert", cert.to_str().unwrap()], &[]));
    assert!(err.contains("Unauthenticated"), "{err}");
}

/// Stops the server even when the test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_files_are_read_only_under_the_data_directories() {
    let (dir, data) = data_dir();
    write_csv(&dir.path().join("secret.csv"), 40);
    std::os::unix::fs::symlink(dir.path().join("secret.csv"), data.join("link.csv")).unwrap();
    let server = TestServer::start_with(&dir.path().join("g.db"), with_data(1, &data), Default::default()).await;
    let mut client = server.client().await;

    let escapes = [
        "csv:/etc/passwd".to_string(),
        format!("csv:{}/../secret.csv", data.display()),
        format!("csv:{}", data.join("link.csv").display()),
        format!("idx:{},/etc/passwd", data.join("ok.csv").display()),
    ];
    for dataset in &escapes {
        let e = client.submit_job(pb::JobSpec { dataset: dataset.clone(), ..csv_job(&data) }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{dataset}: {e:?}");
        assert!(e.message().starts_with("dataset: /"), "{dataset}: {}", e.message());
        assert!(e.message().contains("outside the directories this server reads"), "{}", e.message());
    }
    let e = client.submit_job(csv_job(&data.join("missing.csv"))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "a missing file inside the directory: {e:?}");
    assert!(e.message().starts_with("dataset: cannot read"), "{}", e.message());
    let listed = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "nothing refused was stored");

    let job = client.submit_job(csv_job(&data.join("ok.csv"))).await.unwrap().into_inner();
    let done = wait_for(&mut client, job.id, |j| j.finished_ms > 0).await;
    assert_eq!(state(&done), JobState::Succeeded, "{done:?}");
    server.stop().await;

    // A server given no directory reads no files at all.
    let server = TestServer::start(&dir.path().join("g2.db"), 1).await;
    let mut client = server.client().await;
    let e = client.submit_job(csv_job(&data.join("ok.csv"))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("reads no dataset files") && e.message().contains("--data-dir"), "{}", e.message());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_is_checked_again_when_a_stricter_server_starts_it() {
    use gradlab::runner::Store;
    let (dir, data) = data_dir();
    let db = dir.path().join("g.db");
    // Queued by an earlier server that was allowed to read `data`.
    let store = gradlab::store::SqliteStore::open(db.to_str().unwrap()).await.unwrap();
    let spec = gradlab::api::convert::job_spec(&csv_job(&data.join("ok.csv"))).unwrap();
    let queued = store.create_job(&spec, None, None).await.unwrap();
    drop(store);

    let server = TestServer::start(&db, 1).await;
    let mut client = server.client().await;
    let ended = wait_for(&mut client, queued.id.0, |j| j.finished_ms > 0).await;
    assert_eq!(state(&ended), JobState::Failed, "{ended:?}");
    assert!(ended.error.contains("reads no dataset files"), "{}", ended.error);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_and_request_limits_refuse_with_their_code_flag_and_value() {
    let (dir, data) = data_dir();
    let limits = Limits {
        max_params: 5_000,
        max_steps: 100,
        max_request_bytes: 2_048,
        max_dataset_bytes: 100,
        ..Limits::default()
    };
    let config = RunnerConfig { limits, ..with_data(1, &data) };
    let server = TestServer::start_with(&dir.path().join("g.db"), config, Default::default()).await;
    let mut client = server.client().await;
    let refused = |e: tonic::Status, code: Code, text: &str| {
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(text), "{:?} lacks {text:?}", e.message());
    };

    let e = client.submit_job(small_job(101)).await.unwrap_err();
    refused(e, Code::InvalidArgument, "steps: 101 is more than this server's --max-steps 100");
    // Too large already by its hidden layers...
    let e = client.submit_job(pb::JobSpec { width: Some(64), depth: Some(3), ..small_job(10) }).await.unwrap_err();
    refused(e, Code::InvalidArgument, "more than this server's --max-params 5,000");
    // ...or only with the 64 inputs and 10 classes of the digits: 64*70+70 + 70*10+10.
    let e = client.submit_job(pb::JobSpec { width: Some(70), depth: Some(1), ..small_job(10) }).await.unwrap_err();
    refused(e, Code::InvalidArgument, "hidden: the network has 5,260 parameters, more than this server's --max-params");
    let e = client.submit_job(csv_job(&data.join("ok.csv"))).await.unwrap_err();
    refused(e, Code::InvalidArgument, "more than this server's --max-dataset-bytes 100");
    let e = client.submit_job(pb::JobSpec { name: "x".repeat(4_000), ..small_job(10) }).await.unwrap_err();
    refused(e, Code::ResourceExhausted, "bytes, more than this server's --max-request-bytes 2,048");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_and_watchers_are_bounded_and_their_places_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_queued_jobs: 2, max_watchers: 1, ..Limits::default() };
    let config = RunnerConfig { limits, ..RunnerConfig::with_workers(1) };
    let server = TestServer::start_with(&dir.path().join("g.db"), config, Default::default()).await;
    let mut client = server.client().await;

    // Two unfinished jobs fill the queue (one runs, one waits): a third is refused.
    let a = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner();
    let b = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner();
    let e = client.submit_job(small_job(10)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("2 jobs are queued or running, this server's --max-queued-jobs 2"), "{e:?}");

    // One watcher at a time; a watcher that hangs up gives its place back at once, though the
    // queued job it watched has sent nothing.
    let first = client.watch_job(pb::WatchRequest { job_id: b.id, from_step: 0, max_batch: 0 }).await.unwrap();
    let e = client.watch_job(pb::WatchRequest { job_id: a.id, from_step: 0, max_batch: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("1 watch streams are open, this server's --max-watchers 1"), "{e:?}");
    drop(first);
    let second = retry_while_exhausted(|| {
        let mut c = client.clone();
        async move { c.watch_job(pb::WatchRequest { job_id: a.id, from_step: 0, max_batch: 0 }).await }
    })
    .await;
    drop(second);

    // A cancelled job leaves the queue, and its place is free again.
    client.cancel_job(pb::JobId { id: a.id }).await.unwrap();
    let c = retry_while_exhausted(|| {
        let mut c = client.clone();
        async move { c.submit_job(small_job(1_000_000)).await }
    })
    .await
    .into_inner();
    for id in [b.id, c.id] {
        client.cancel_job(pb::JobId { id }).await.unwrap();
    }
    server.stop().await;
}

/// Calls `f` until it is not refused for a full limit, for at most 10 s.
async fn retry_while_exhausted<T, F, Fut>(f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("the place was not given back within 10 s: {e:?}"),
        }
    }
}

/// A CSV big enough that checking it takes far longer than the deadlines below.
fn write_slow_csv(path: &Path) {
    let row = "0.5,0.25,0.125,0.0625,0.03125,0.015625,0.0078125,1\n";
    let text = row.repeat(400_000); // 20 MB
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_stop_a_call_and_nothing_is_stored() {
    let (dir, data) = data_dir();
    write_slow_csv(&data.join("slow.csv"));
    let spec = csv_job(&data.join("slow.csv"));

    // The client's deadline (grpc-timeout).
    let server = TestServer::start_with(&dir.path().join("g.db"), with_data(1, &data), Default::default()).await;
    let mut client = server.client().await;
    let mut request = tonic::Request::new(spec.clone());
    request.set_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let e = client.submit_job(request).await.unwrap_err();
    let took = started.elapsed();
    let listed = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "a call stopped by its deadline stored nothing");
    // tonic's server answers an expired deadline with CANCELLED "Timeout expired".
    assert!(matches!(e.code(), Code::Cancelled | Code::DeadlineExceeded), "{e:?}");
    assert!(e.message().contains("Timeout expired"), "{e:?}");
    let full = Instant::now();
    client.submit_job(spec.clone()).await.map(drop).unwrap_or_else(|e| assert_eq!(e.code(), Code::InvalidArgument));
    assert!(
        took < full.elapsed(),
        "the deadline ({took:?}) cut the call short of its full length ({:?})",
        full.elapsed()
    );
    server.stop().await;

    // The server's own --request-timeout, when the client sets none.
    let limits = Limits { request_timeout: Duration::from_millis(50), ..Limits::default() };
    let config = RunnerConfig { limits, ..with_data(1, &data) };
    let server = TestServer::start_with(&dir.path().join("g2.db"), config, Default::default()).await;
    let mut client = server.client().await;
    let e = client.submit_job(spec).await.unwrap_err();
    assert!(matches!(e.code(), Code::Cancelled | Code::DeadlineExceeded), "{e:?}");
    let listed = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "a call stopped by its deadline stored nothing");
    server.stop().await;
}
