//! The client commands through the built binary, against a real server on a free port.

use crate::common::{TestServer, gradlab, ok, small_job, state, watch_all};
use gradlab::api::pb::{self, JobState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_watch_ls_show_history_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 2).await;
    let url = server.url();

    // submit --watch: plain lines when stdout is not a terminal, ending with the summary.
    let out = ok(&gradlab(
        &url,
        &[
            "submit",
            "--activation",
            "tanh",
            "--depth",
            "3",
            "--width",
            "16",
            "--steps",
            "120",
            "--eval-every",
            "40",
            "--name",
            "cli-tanh",
            "--label",
            "study=cli",
            "--watch",
        ],
    ));
    let id: i64 = out.lines().next().unwrap().trim().parse().expect("first line is the job id");
    assert!(!out.contains('\u{1b}'), "no escape codes when not a terminal: {out:?}");
    // Steps are numbered from 0 as everywhere else; evaluations ride on the step lines.
    assert!(out.lines().any(|l| l.starts_with("step 0 (")), "{out}");
    assert!(out.contains("step 119 (100%)"), "{out}");
    assert!(!out.contains("step 120"), "{out}");
    assert!(out.lines().filter(|l| l.starts_with("step ")).all(|l| l.contains("grad_norm [")), "{out}");
    assert!(out.contains("test acc") && !out.lines().any(|l| l.starts_with("eval")), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("job {id} ")) && last.contains("succeeded") && last.contains("verdict"),
        "{last}"
    );

    // A second job from a TOML spec file.
    let spec_path = dir.path().join("spec.toml");
    std::fs::write(&spec_path, "activation = \"relu\"\nhidden = [8, 8]\nsteps = 30\nname = \"from-toml\"\n").unwrap();
    let out = ok(&gradlab(&url, &["submit", "--spec", spec_path.to_str().unwrap()]));
    let id2: i64 = out.trim().parse().unwrap();
    let mut client = server.client().await;
    let w = watch_all(&mut client, id2, 0).await;
    assert_eq!(state(w.jobs.last().unwrap()), JobState::Succeeded);
    assert_eq!(w.steps.len(), 30);

    // ls in every format.
    let csv = ok(&gradlab(&url, &["ls", "--format", "csv", "--oldest-first"]));
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "id,name,activation,depth,width,state,progress,verdict,test_acc");
    assert!(rows[1].starts_with(&format!("{id},cli-tanh,tanh,3,16,succeeded,100%,")), "{csv}");
    assert!(rows[2].starts_with(&format!("{id2},from-toml,ramp,2,8,succeeded")), "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&gradlab(&url, &["ls", "--format", "json", "--label", "study=cli"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["id"], id);
    assert!(ok(&gradlab(&url, &["ls"])).contains("cli-tanh"));

    // show, for people and as JSON with the per-layer last values and the prediction.
    let text = ok(&gradlab(&url, &["show", &id.to_string()]));
    assert!(text.contains("mean field") && text.contains("output"), "{text}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&gradlab(&url, &["show", &id.to_string(), "--json"]))).unwrap();
    assert_eq!(shown["layers"].as_array().unwrap().len(), 4);
    assert!(shown["layers"][0]["grad_norm"].as_f64().unwrap() > 0.0);
    assert!(shown["layers"][0]["predicted_ratio"].as_f64().is_some());

    // history as CSV, parsed back and compared with GetHistory.
    let csv = ok(&gradlab(
        &url,
        &["history", &id.to_string(), "--layers", "0,2", "--metrics", "grad_norm,err_norm", "--format", "csv"],
    ));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,layer,metric,value"));
    let parsed: Vec<(u64, u32, String, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].to_string(), f[3].parse().unwrap())
        })
        .collect();
    let h = client
        .get_history(pb::HistoryRequest {
            job_id: id,
            layers: vec![0, 2],
            metrics: vec!["grad_norm".into(), "err_norm".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Rows come per layer, then step, then metric (the stream's order).
    let mut expected: Vec<(u64, u32, String, f64)> = h
        .series
        .iter()
        .flat_map(|s| s.steps.iter().zip(&s.values).map(move |(st, v)| (*st, s.layer.unwrap(), s.metric.clone(), *v)))
        .collect();
    expected.sort_by_key(|a| (a.1, a.0));
    assert_eq!(parsed.len(), 2 * 2 * 120);
    assert_eq!(parsed, expected, "CSV values round-trip exactly");
    // JSON Lines: a line per metric of each streamed chunk.
    let lines = ok(&gradlab(&url, &["history", &id.to_string(), "--steps", "30..49", "--format", "json"]));
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["metric"], "loss");
    assert_eq!(first["steps"].as_array().unwrap().len(), 20);
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(last["evals"][0]["step"], 40, "the one evaluation in 30..49: {last}");

    // plot: PNG and SVG that decode, have the requested size and are not blank.
    for (kind, file) in
        [("heatmap", "h.png"), ("lines", "l.png"), ("loss", "loss.png"), ("heatmap", "h.svg"), ("loss", "loss.svg")]
    {
        let path = dir.path().join(file);
        ok(&gradlab(
            &url,
            &[
                "plot",
                &id.to_string(),
                "-o",
                path.to_str().unwrap(),
                "--kind",
                kind,
                "--width",
                "800",
                "--height",
                "500",
            ],
        ));
        if file.ends_with(".png") {
            let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (800, 500), "{file}");
            let px = &buf[..info.buffer_size()];
            let colours: std::collections::HashSet<&[u8]> = px.chunks(info.color_type.samples()).collect();
            assert!(colours.len() > 20, "{file} looks blank: {} colours", colours.len());
        } else {
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(
                svg.contains("<svg") && svg.contains("width=\"800\"") && svg.contains(&format!("job {id}")),
                "{file}"
            );
            if kind == "heatmap" {
                // Three hidden layers and the output layer, which is labelled as such.
                let labels: Vec<&str> =
                    svg.split("</text>").filter_map(|t| Some(t.rsplit_once('>')?.1.trim())).collect();
                for row in ["0", "1", "2", "output"] {
                    assert!(labels.contains(&row), "{file}: no row label {row:?} in {labels:?}");
                }
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_the_documented_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("g.db"), 1).await;
    let url = server.url();
    let mut client = server.client().await;
    let long = client.submit_job(small_job(1_000_000)).await.unwrap().into_inner();
    let queued = client.submit_job(small_job(10)).await.unwrap().into_inner();
    let out = ok(&gradlab(&url, &["cancel", &queued.id.to_string(), &long.id.to_string()]));
    assert!(
        out.contains(&format!("job {} cancelled", queued.id)) && out.contains(&format!("job {} cancelled", long.id)),
        "{out}"
    );

    // Cancelling a finished job: a gRPC error, shown with its status, non-zero exit.
    let out = gradlab(&url, &["cancel", &long.id.to_string()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FailedPrecondition"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = gradlab(&url, &["show", "424242"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("NotFound") && err.contains("424242"), "{err}");

    let out = gradlab(&url, &["submit", "--lr=-1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lr"));

    let out = gradlab(&url, &["submit", "--activation", "nope"]);
    assert_eq!(out.status.code(), Some(2), "bad flags are usage errors");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    // Nothing listens on port 9 of loopback.
    let out = gradlab("http://127.0.0.1:9", &["ls"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the gradlab server at http://127.0.0.1:9"), "{err}");
    server.stop().await;
}
