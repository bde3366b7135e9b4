//! Sweeps end to end: through the generated client against a real server over a real SQLite
//! file, and through the built binary (`sweep`, `report`, `demo`).

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::{TestServer, gradlab, ok};
use gradlab::api::pb::{self, sweep_progress::Event};
use tonic::Code;

fn axis(field: &str, values: &[&str]) -> pb::Axis {
    pb::Axis { field: field.into(), values: values.iter().map(|v| v.to_string()).collect() }
}

/// 2 activations x 2 depths x 2 seeds of a small, quick job.
fn small_sweep(steps: u64) -> pb::SweepSpec {
    pb::SweepSpec {
        name: "small".into(),
        base: Some(pb::JobSpec {
            width: Some(12),
            depth: Some(1),
            steps: Some(steps),
            batch: Some(32),
            eval_every: Some(20),
            lr: Some(0.1),
            ..Default::default()
        }),
        axes: vec![axis("activation", &["tanh", "relu"]), axis("depth", &["1", "3"]), axis("seed", &["1", "2"])],
    }
}

pub(crate) struct SweepSeen {
    first: pb::Sweep,
    replayed: Vec<pb::Job>,
    live: Vec<pb::Job>,
    last: pb::Sweep,
}

pub(crate) async fn watch_sweep(client: &mut crate::common::Client, id: i64) -> SweepSeen {
    let mut stream = client.watch_sweep(pb::SweepId { id }).await.expect("watch").into_inner();
    let mut sweeps = Vec::new();
    let mut jobs = Vec::new();
    let mut replay_total = None;
    let mut last_done = 0;
    while let Some(msg) = stream.message().await.expect("message") {
        let counts = msg.counts.expect("every message has counts");
        let done = counts.succeeded + counts.failed + counts.cancelled;
        assert!(done >= last_done, "progress never goes back: {done} after {last_done}");
        last_done = done;
        match msg.event.expect("event") {
            Event::Sweep(s) => {
                replay_total.get_or_insert(counts.total);
                sweeps.push(s);
            }
            Event::Job(j) => jobs.push(j),
        }
    }
    assert_eq!(sweeps.len(), 2, "the sweep first and last");
    let n = replay_total.unwrap() as usize;
    let live = jobs.split_off(n);
    SweepSeen { first: sweeps[0].clone(), replayed: jobs, live, last: sweeps[1].clone() }
}

fn terminal(j: &pb::Job) -> bool {
    matches!(
        pb::JobState::try_from(j.state).unwrap(),
        pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_runs_and_its_report_aggregates_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let mut client = server.client().await;

    let sweep = client.submit_sweep(small_sweep(60)).await.unwrap().into_inner();
    assert_eq!(sweep.counts.unwrap().total, 8);
    let seen = watch_sweep(&mut client, sweep.id).await;
    assert_eq!(seen.first.id, sweep.id);
    assert_eq!(seen.replayed.len(), 8, "every job once in the replay");
    // Every job ends exactly once, in the replay or live.
    let mut ended: Vec<i64> = seen.replayed.iter().chain(&seen.live).filter(|j| terminal(j)).map(|j| j.id).collect();
    ended.sort();
    let before = ended.len();
    ended.dedup();
    assert_eq!((before, ended.len()), (8, 8), "each job's end is sent once");
    assert_eq!(pb::SweepState::try_from(seen.last.state).unwrap(), pb::SweepState::Succeeded);
    assert_eq!(seen.last.counts.unwrap().succeeded, 8);
    assert!(seen.last.finished_ms >= seen.last.created_ms);

    // Watching a finished sweep replays and ends at once.
    let again = watch_sweep(&mut client, sweep.id).await;
    assert!(again.replayed.iter().all(terminal) && again.live.is_empty());

    let listed = client.list_sweeps(pb::ListSweepsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.sweeps.iter().map(|s| s.id).collect::<Vec<_>>(), vec![sweep.id]);

    // The report: each cell's mean and std over seeds match the jobs' own summaries.
    let jobs = client
        .list_jobs(pb::ListJobsRequest { sweep_id: Some(sweep.id), page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 8);
    let mut by_cell: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for j in &jobs {
        let spec = j.spec.as_ref().unwrap();
        let key = (spec.labels["sweep.activation"].clone(), spec.labels["sweep.depth"].clone());
        by_cell.entry(key).or_default().push(j.summary.as_ref().unwrap().test_accuracy);
    }
    let report = client
        .get_sweep_report(pb::SweepReportRequest { sweep_id: sweep.id, margin: Some(0.5) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.jobs_total, report.jobs_finished, report.jobs_unmatched), (8, 8, 0));
    assert_eq!(report.cell_axes, vec!["activation", "depth"]);
    assert_eq!(report.margin, 0.5);
    assert_eq!(report.cells.len(), 4);
    for cell in &report.cells {
        let key = (cell.values[0].value.clone(), cell.values[1].value.clone());
        let accs = &by_cell[&key];
        let mean = accs.iter().sum::<f64>() / 2.0;
        let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>()).sqrt(); // n - 1 = 1
        let stat = cell.test_accuracy.unwrap();
        assert_eq!(stat.n, 2);
        assert!((stat.mean - mean).abs() < 1e-12 && (stat.std - std).abs() < 1e-12, "{key:?}: {stat:?} vs {accs:?}");
        assert_eq!(cell.verdicts.values().sum::<u32>(), 2);
    }
    assert_eq!(report.trainable.len(), 2, "one trainable-depth group per activation");
    // tanh and ramp are claims of the post; both measured here.
    let claimed: Vec<&str> = report.claims.iter().map(|c| c.activation.as_str()).collect();
    assert_eq!(claimed, vec!["tanh", "ramp"]);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sweeps_are_refused_with_the_field_named_and_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;

    let mut bad_field = small_sweep(10);
    bad_field.axes[1].field = "depht".into();
    let e = client.submit_sweep(bad_field).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("axes[1].field") && e.message().contains("depht"), "{}", e.message());

    let mut bad_value = small_sweep(10);
    bad_value.axes[0].values.push("sigmoidd".into());
    let e = client.submit_sweep(bad_value).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("axes.activation") && e.message().contains("sigmoidd"), "{}", e.message());

    let mut too_big = small_sweep(10);
    too_big.axes.push(axis(
        "lr",
        &(1..=2000).map(|i| format!("0.{i:04}")).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let e = client.submit_sweep(too_big).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("16000 jobs") && e.message().contains("limit of 10000"), "{}", e.message());

    let mut bad_base = small_sweep(10);
    bad_base.base.as_mut().unwrap().batch = Some(100_000);
    let e = client.submit_sweep(bad_base).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("batch: job \"small activation=tanh depth=1 seed=1\""), "{}", e.message());

    let listed = client.list_sweeps(pb::ListSweepsRequest::default()).await.unwrap().into_inner();
    assert!(listed.sweeps.is_empty(), "nothing stored: {listed:?}");
    let jobs = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(jobs.jobs.is_empty());

    for e in [
        client.get_sweep(pb::SweepId { id: 42 }).await.unwrap_err(),
        client.cancel_sweep(pb::SweepId { id: 42 }).await.unwrap_err(),
        client.watch_sweep(pb::SweepId { id: 42 }).await.map(|_| ()).unwrap_err(),
        client.get_sweep_report(pb::SweepReportRequest { sweep_id: 42, margin: None }).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::NotFound);
        assert!(e.message().contains("sweep 42"), "{}", e.message());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_sweep_ends_every_unfinished_job() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    // One worker and long jobs: one runs, the rest wait.
    let sweep = client.submit_sweep(small_sweep(1_000_000)).await.unwrap().into_inner();
    let mut watcher = server.client().await;
    let watching = tokio::spawn(async move { watch_sweep(&mut watcher, sweep.id).await });
    let first = client
        .list_jobs(pb::ListJobsRequest {
            sweep_id: Some(sweep.id),
            oldest_first: true,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs[0]
        .id;
    crate::common::wait_for(&mut client, first, |j| j.steps_done > 0).await;

    let cancelled = client.cancel_sweep(pb::SweepId { id: sweep.id }).await.unwrap().into_inner();
    assert_eq!(pb::SweepState::try_from(cancelled.state).unwrap(), pb::SweepState::Cancelled);
    let c = cancelled.counts.unwrap();
    assert_eq!((c.cancelled, c.queued, c.running), (8, 0, 0), "{c:?}");
    assert!(cancelled.cancelled_ms > 0);
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), watching).await.unwrap().unwrap();
    assert_eq!(pb::SweepState::try_from(seen.last.state).unwrap(), pb::SweepState::Cancelled);

    let e = client.cancel_sweep(pb::SweepId { id: sweep.id }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Through the binary

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_and_report_commands() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let url = server.url();

    let out = ok(&gradlab(&url, &["sweep", "--preset", "seed-claims", "--dry-run"]));
    assert_eq!(out.lines().count(), 1296);
    assert!(out.lines().next().unwrap().starts_with("seed-claims activation=logistic depth=1"), "{out}");

    let sweep_args = [
        "sweep",
        "--axis",
        "activation=tanh,relu",
        "--axis",
        "depth=1,2",
        "--width",
        "8",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--name",
        "cli-sweep",
        "--watch",
    ];
    let out = ok(&gradlab(&url, &sweep_args));
    let id: i64 = out.lines().next().unwrap().trim().parse().expect("first line is the sweep id");
    assert_eq!(out.lines().filter(|l| l.contains("] job ")).count(), 4, "a line per finished job: {out}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with(&format!("sweep {id} succeeded: 4/4 done")), "{last}");

    // Re-attaching to a finished sweep: the count, not a line per job.
    let again = ok(&gradlab(&url, &["watch", "--sweep", &id.to_string()]));
    assert!(again.trim_end().ends_with("(4 had finished before watching)"), "{again}");
    let e = gradlab(&url, &["cancel", "--sweep", &id.to_string()]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("already succeeded"), "{e:?}");

    let ls = ok(&gradlab(&url, &["sweeps"]));
    assert!(ls.contains("cli-sweep") && ls.contains("4/4 done"), "{ls}");

    // Every format parses.
    let json: serde_json::Value =
        serde_json::from_str(&ok(&gradlab(&url, &["report", &id.to_string(), "--format", "json"]))).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), 4);
    assert_eq!(json["jobs_finished"], 4);
    let csv = ok(&gradlab(&url, &["report", &id.to_string(), "--format", "csv"]));
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    assert_eq!(&rows[0][..2], &["activation", "depth"]);
    let md = ok(&gradlab(&url, &["report", &id.to_string(), "--format", "markdown"]));
    let table_rows = md.lines().filter(|l| l.starts_with("| tanh") || l.starts_with("| ramp")).count();
    assert!(table_rows >= 4, "{md}");
    // The terminal tables: whole when piped without COLUMNS, fitted to COLUMNS when it is set.
    let report_with_columns = |columns: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradlab"));
        cmd.args(["report", &id.to_string()]).env("GRADLAB_SERVER", &url).env_remove("COLUMNS");
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        ok(&cmd.output().unwrap())
    };
    let whole = report_with_columns(None);
    let head = whole.lines().find(|l| l.contains("test acc") && l.starts_with('│')).unwrap();
    for column in ["done", "± std", "verdicts", "ratio init", "ratio end", "predicted"] {
        assert!(head.contains(column), "{column}: {whole}");
    }
    let narrow = report_with_columns(Some("80"));
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
    let head = narrow.lines().find(|l| l.contains("test acc") && l.starts_with('│')).unwrap();
    assert!(head.contains("activation") && head.contains("depth"), "{narrow}");
    assert!(narrow.contains("left out to fit 80 columns"), "{narrow}");
    let plots = dir.path().join("plots");
    let table = ok(&gradlab(&url, &["report", &id.to_string(), "--plot", plots.to_str().unwrap()]));
    assert!(table.contains("Trainable depth") && table.contains("The post's claims"), "{table}");
    for f in ["accuracy.png", "gradient-ratio-init.png", "gradient-ratio-end.png", "report.md"] {
        let p = plots.join(f);
        assert!(std::fs::metadata(&p).map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", p.display());
    }
    let png = std::fs::File::open(plots.join("accuracy.png")).unwrap();
    let info = png::Decoder::new(std::io::BufReader::new(png)).read_info().unwrap();
    assert_eq!(info.info().width, 1200);

    let e = gradlab(&url, &["report", "999"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("sweep 999 not found"));
    server.stop().await;
}

/// An HTTP/1.0 GET on a plain socket: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn the_demo_runs_end_to_end_and_serves_its_dashboard() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["demo", "--steps", "30", "--workers", "2", "--serve", "--out"])
        .arg(dir.path().join("report"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    // After the report, --serve keeps the server up and says where the dashboard is.
    let url = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the demo ended without serving: {seen}");
        seen.push_str(&line);
        if let Some(rest) = line.strip_prefix("dashboard: http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let (addr, page) = url.split_once('/').unwrap();
    assert_eq!(page, "sweeps/1");
    let (status, body) = http_get(addr, "/sweeps/1");
    assert!(status.contains(" 200 ") && body.contains("<script type=\"module\""), "{status}");
    let (status, body) = http_get(addr, "/api/sweeps/1/report");
    assert!(status.contains(" 200 "), "{status}: {body}");
    assert!(body.contains("\"claims\"") && body.contains("semisigmoid"), "{body}");
    // SAFETY: kill(2) on the child's pid, which we have not waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    stdout.read_to_string(&mut seen).unwrap();
    assert!(child.wait().unwrap().success(), "{seen}");
    let stdout = seen;
    assert!(stdout.contains("The post's claims ("), "{stdout}");
    for a in ["logistic", "tanh", "atan", "softsign", "logsig", "ramp", "softplus", "logmin", "semisigmoid"] {
        assert!(stdout.lines().any(|l| l.contains(a) && l.contains("supported")), "{a} has a claim line: {stdout}");
    }
    for f in [
        "accuracy.init=lecun_normal.png",
        "accuracy.init=xavier_normal.png",
        "gradient-ratio-init.init=lecun_normal.png",
        "gradient-ratio-end.init=xavier_normal.png",
        "report.md",
    ] {
        assert!(dir.path().join("report").join(f).exists(), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_cancelled_before_anything_finished_measures_no_claim_and_refutes_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let mut client = server.client().await;
    let sweep = client.submit_sweep(small_sweep(1_000_000)).await.unwrap().into_inner();
    client.cancel_sweep(pb::SweepId { id: sweep.id }).await.unwrap();
    let report = client
        .get_sweep_report(pb::SweepReportRequest { sweep_id: sweep.id, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.claims.len(), 2, "tanh and ramp");
    for c in &report.claims {
        assert_eq!((c.verdict.as_str(), c.supported), ("not_measured", false), "{c:?}");
    }
    let out = ok(&gradlab(&server.url(), &["report", &sweep.id.to_string()]));
    assert!(out.contains("(0 of 2 supported by this sweep, 2 not measured)"), "{out}");
    assert!(!out.contains("NOT supported"), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_lists_its_presets_as_the_cli_runs_them() {
    use gradlab::api::convert_sweep::sweep_spec;
    use gradlab::runner::sweep::{PRESETS, preset};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 0).await;
    let mut client = server.client().await;
    let listed = client.list_presets(pb::ListPresetsRequest {}).await.unwrap().into_inner().presets;
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    for p in &listed {
        // What a client gets back converts to the very sweep `gradlab sweep --preset` submits.
        assert_eq!(sweep_spec(p.spec.as_ref().unwrap()).unwrap(), preset(&p.name).unwrap(), "{}", p.name);
        assert!(!p.about.is_empty());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_are_held_to_the_server_limits() {
    use gradlab::api::server::ServeOptions;
    use gradlab::runner::RunnerConfig;
    let dir = tempfile::tempdir().unwrap();
    let mut config = RunnerConfig::with_workers(1);
    config.limits.max_queued_jobs = 5;
    config.limits.max_sweep_jobs = 6;
    config.limits.max_params = 10_000;
    let server = TestServer::start_with(&dir.path().join("g.db"), config, ServeOptions::default()).await;
    let mut client = server.client().await;

    // 8 jobs: more than one sweep may have.
    let e = client.submit_sweep(small_sweep(10)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("8 jobs") && e.message().contains("--max-sweep-jobs"), "{}", e.message());

    // The exact parameter count needs the data's shape (64 inputs, 10 classes): 15,010 for the
    // wider job, checked for every job although the dataset is read once.
    let mut wide = small_sweep(10);
    wide.axes = vec![axis("width", &["8", "200"])];
    let e = client.submit_sweep(wide).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("width=200") && e.message().contains("15,010 parameters"), "{}", e.message());
    // 4 jobs fit; 4 more would pass the 5 unfinished jobs the server holds.
    let mut four = small_sweep(1_000_000);
    four.axes.pop();
    client.submit_sweep(four.clone()).await.unwrap();
    let e = client.submit_sweep(four).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("--max-queued-jobs 5"), "{}", e.message());

    // Every job is held to the per-job limits, and the refusal names the job.
    let mut long = small_sweep(10);
    long.axes = vec![axis("steps", &["10", "2000000"])];
    let e = client.submit_sweep(long).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("steps=2000000") && e.message().contains("--max-steps"), "{}", e.message());
    let listed = client.list_sweeps(pb::ListSweepsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.sweeps.len(), 1, "only the sweep that fitted is stored");
    server.stop().await;
}
