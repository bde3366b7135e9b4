//! What a newcomer meets at the command line (issue 21): flags in either place, one numbering
//! of steps, errors that name the flag typed and say what to do, a quiet exit when the reader of
//! the output goes away. Through the built binary.

use std::io::Read;
use std::process::{Command, Output, Stdio};

use crate::common::{TestServer, gradlab, small_job, wait_for};
use gradlab::api::pb::JobState;
use gradlab::runner::{Limits, RunnerConfig};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gradlab"));
    // Nothing from the environment of whoever runs the tests.
    c.env_remove("GRADLAB_SERVER").env_remove("GRADLAB_TOKEN").env_remove("GRADLAB_CA_CERT");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary with its stdout read for a few bytes and then closed: a reader like `head`.
fn with_closed_pipe(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child =
        bin().args(args).envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn quiet(out: &Output) {
    use std::os::unix::process::ExitStatusExt;
    let err = stderr(out);
    assert!(err.is_empty(), "a closed pipe is not an error worth a message: {err}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "ended by the closed pipe, not a failure: {:?}",
        out.status
    );
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    // 1,296 job names: far more than a pipe buffer holds.
    quiet(&with_closed_pipe(&["sweep", "--preset", "seed-claims", "--dry-run"], &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_flags_go_before_or_after_the_subcommand_and_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let id = client.submit_job(small_job(300)).await.unwrap().into_inner().id;
    wait_for(&mut client, id, |j| j.state == JobState::Succeeded as i32).await;

    for args in [vec!["--server", url.as_str(), "ls"], vec!["ls", "--server", url.as_str()]] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"), "{args:?}");
    }
    // The history of 300 steps x 4 layers x 16 metrics as CSV is ~1 MB: the pipe closes mid-way.
    let id = id.to_string();
    quiet(&with_closed_pipe(&["--server", &url, "history", &id, "--format", "csv"], &[]));
    quiet(&with_closed_pipe(&["history", &id, "--format", "json"], &[("GRADLAB_SERVER", &url)]));
    server.stop().await;
}

#[test]
fn usage_errors_name_the_flag_and_what_it_takes() {
    for (args, want) in [
        (vec!["probe", "--width", "-3"], "'--width <WIDTH>': must be a positive whole number, got -3"),
        (vec!["probe", "--depth", "0"], "'--depth <DEPTH>': must be a positive whole number, got 0"),
        (vec!["probe", "--widths", "8,-1"], "must be a positive whole number, got -1"),
        (vec!["probe", "--init", "kaiming2"], "unknown init \"kaiming2\"; known: lecun_normal"),
        (vec!["probe", "--activation", "swish2"], "swish2"),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: every bad flag value is a usage error");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // The aliases people type.
    for init in ["kaiming", "he", "glorot", "xavier", "kaiming_normal", "glorot_uniform"] {
        let out = run(&["probe", "--init", init, "--depth", "2", "--width", "8"]);
        assert!(out.status.success(), "--init {init}: {}", stderr(&out));
    }
    let out = run(&["watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage: gradlab watch <JOB|--sweep <SWEEP>>"), "{}", stderr(&out));
}

#[test]
fn a_missing_file_is_said_once() {
    let out = run(&["probe", "--dataset", "csv:/nonexistent/data.csv"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("/nonexistent/data.csv"), "{err}");
}

#[test]
fn no_server_running_says_how_to_start_one() {
    let out = run(&["--server", "http://127.0.0.1:9", "ls"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("gradlab serve") && err.contains("GRADLAB_SERVER"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_errors_name_the_flag_the_user_typed() {
    // Refused locally, before any server is asked.
    let out = run(&["submit", "--steps", "5000000000", "--server", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--steps: 5000000000 exceeds"), "{}", stderr(&out));

    // Refused by the server, which names the API field (`hidden`); the CLI names the flags.
    let dir = tempfile::tempdir().unwrap();
    let config =
        RunnerConfig { limits: Limits { max_params: 10_000, ..Limits::default() }, ..RunnerConfig::with_workers(1) };
    let server = TestServer::start_with(&dir.path().join("g.db"), config, Default::default()).await;
    let out = gradlab(&server.url(), &["submit", "--depth", "4", "--width", "256"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("InvalidArgument: --depth/--width:") && err.contains("--max-params"), "{err}");
    assert!(!err.contains("hidden:"), "{err}");
    // The API keeps the field for its clients.
    let mut client = server.client().await;
    let mut spec = small_job(10);
    spec.width = Some(256);
    spec.depth = Some(4);
    let e = client.submit_job(spec).await.unwrap_err();
    assert_eq!(e.metadata().get("gradlab-field").unwrap(), "hidden");
    let listed = client.list_jobs(gradlab::api::pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "nothing stored");
    server.stop().await;
}
