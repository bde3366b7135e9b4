//! `gradlab probe` through the built binary.

use std::process::Command;

fn gradlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab")).args(args).output().expect("run gradlab")
}

#[test]
fn probe_prints_every_layer_as_json_beside_the_prediction() {
    let out = gradlab(&[
        "probe",
        "--activation",
        "tanh",
        "--depth",
        "6",
        "--width",
        "64",
        "--init",
        "lecun_normal",
        "--dataset",
        "gaussian:dim=32,classes=10,n=256",
        "--batch",
        "256",
        "--seed",
        "1",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 7, "6 hidden layers and the output layer");
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l["layer"], i);
        assert!(l["grad_norm"].as_f64().unwrap() > 0.0);
        assert!(l["fan_in"].as_u64().unwrap() > 0 && l["fan_out"].as_u64().unwrap() > 0);
    }
    assert_eq!(layers[0]["fan_in"], 32);
    assert_eq!(layers[6]["fan_out"], 10);
    assert_eq!(layers[5]["ratio_to_last_hidden"], 1.0);
    // tanh at sigma_w = 1 is at the edge of chaos: measured and predicted ratios within 2x.
    for l in &layers[..6] {
        let (m, p) = (l["ratio_to_last_hidden"].as_f64().unwrap(), l["predicted_ratio"].as_f64().unwrap());
        assert!(m / p > 0.5 && m / p < 2.0, "layer {}: measured {m} predicted {p}", l["layer"]);
    }
    assert!((v["mean_field"]["chi1"].as_f64().unwrap() - 1.0).abs() < 1e-6);
}

#[test]
fn probe_after_training_steps_and_as_a_table() {
    let out = gradlab(&["probe", "--activation", "relu", "--depth", "3", "--steps", "20", "--dataset", "digits"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("after 20 steps"), "{text}");
    assert_eq!(text.lines().filter(|l| l.split_whitespace().nth(1) == Some("hidden")).count(), 3, "{text}");
}

#[test]
fn probe_rejects_bad_input_with_a_clear_message() {
    let out = gradlab(&["probe", "--activation", "swishy"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("swishy") && err.contains("tanh"), "{err}");
    let out = gradlab(&["probe", "--dataset", "gaussian:n=10", "--batch", "64"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch"));
}
