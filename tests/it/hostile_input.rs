//! Nothing a client sends can make gradlab panic: property tests over what arrives from outside
//! (a job spec off the wire, a sweep, a dataset spec string, CSV and IDX bytes). Each property
//! runs a bounded number of cases (raise with PROPTEST_CASES); a failure proptest finds is saved
//! in `tests/proptest-regressions/` and replayed first from then on.

use std::path::Path;

use gradlab::api::convert::job_spec;
use gradlab::api::convert_sweep::sweep_spec;
use gradlab::api::pb;
use gradlab::engine::data::{CsvOptions, DatasetSpec, LabelColumn, parse_csv, parse_idx};
use gradlab::runner::sweep::{Axis, AxisField, SweepSpec};
use proptest::prelude::*;

/// Mostly a value a careful client sends (so the paths after validation run too), sometimes
/// one a confused or hostile client sends.
fn mostly<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    hostile: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![12 => valid, 1 => hostile].boxed()
}

/// A known word, a near miss, or noise.
fn word(known: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::sample::select(known).prop_map(str::to_string),
        (proptest::sample::select(known), "[:,=0-9.e+-]{0,12}").prop_map(|(k, tail)| format!("{k}{tail}")),
        "\\PC{0,24}",
    ]
    .boxed()
}

fn known(words: &'static [&'static str]) -> BoxedStrategy<String> {
    mostly(proptest::sample::select(words).prop_map(str::to_string), word(words))
}

fn real() -> BoxedStrategy<f64> {
    prop_oneof![
        any::<f64>(),
        -10.0..10.0f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(1e308)
    ]
    .boxed()
}

fn opt_real(valid: std::ops::Range<f64>) -> BoxedStrategy<Option<f64>> {
    mostly(proptest::option::of(valid), proptest::option::of(real()))
}

fn opt_u32(valid: std::ops::Range<u32>) -> BoxedStrategy<Option<u32>> {
    mostly(proptest::option::of(valid), proptest::option::of(any::<u32>()))
}

fn opt_u64(valid: std::ops::Range<u64>) -> BoxedStrategy<Option<u64>> {
    mostly(proptest::option::of(valid), proptest::option::of(any::<u64>()))
}

const ACTIVATIONS: &[&str] =
    &["tanh", "relu", "leaky_relu:0.1", "elu", "logistic", "softplus", "identity", "gelu", "logmin", "semisigmoid"];

fn wire_spec() -> impl Strategy<Value = pb::JobSpec> {
    let hidden = mostly(Just(Vec::new()), proptest::collection::vec(any::<u32>(), 0..5));
    (
        (known(ACTIVATIONS), known(&["identity", "logistic", ""]), hidden, opt_u32(1..6)),
        (opt_u32(1..40), known(&["lecun_normal", "orthogonal:1.5", "he_uniform", "xavier_normal", ""])),
        (mostly(Just(None), proptest::option::of(real())), mostly(Just(None), proptest::option::of(real()))),
        (known(&["cross_entropy", "mse", ""]), known(&["sgd", "momentum:0.9", "nesterov", "adam", ""])),
        (opt_real(1e-4..1.0), known(&["constant", "step:10,0.5", "cosine", ""])),
        (opt_real(0.0..0.1), opt_real(0.1..10.0), opt_u32(1..32)),
        (opt_u64(1..50), opt_u64(0..20), known(&["digits", "gaussian:dim=4,classes=3,n=80", "spirals"])),
        (opt_real(0.1..0.5), any::<Option<u64>>(), opt_u64(1..5), opt_real(1e-6..0.5)),
    )
        .prop_map(|(a, b, c, d, e, f, g, h)| pb::JobSpec {
            activation: a.0,
            output_activation: a.1,
            hidden: a.2,
            depth: a.3,
            width: b.0,
            init: b.1,
            sigma_w: c.0,
            sigma_b: c.1,
            loss: d.0,
            optimizer: d.1,
            lr: e.0,
            schedule: e.1,
            weight_decay: f.0,
            clip_norm: f.1,
            batch: f.2,
            steps: g.0,
            eval_every: g.1,
            dataset: g.2,
            test_fraction: h.0,
            seed: h.1,
            record_every: h.2,
            thresholds: h.3.map(|v| pb::Thresholds { vanish_ratio: Some(v), ..Default::default() }),
            ..Default::default()
        })
}

/// Mostly well-formed numeric CSV (a header sometimes, an integer label last), now and then
/// with one byte flipped; or plain noise.
fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let table = (1..5usize, 1..30usize, any::<bool>()).prop_flat_map(|(cols, rows, header)| {
        let row = (proptest::collection::vec("-?[0-9]{1,2}\\.[0-9]{0,3}", cols), 0..4u32)
            .prop_map(|(xs, label)| format!("{},{label}", xs.join(",")));
        proptest::collection::vec(row, rows).prop_map(move |rows| {
            let head = if header {
                format!("{}y\n", (0..cols).map(|c| format!("x{c},")).collect::<String>())
            } else {
                String::new()
            };
            (head + &rows.join("\n")).into_bytes()
        })
    });
    let flipped = (table.clone(), any::<proptest::sample::Index>(), any::<u8>()).prop_map(|(mut t, i, b)| {
        if !t.is_empty() {
            let at = i.index(t.len());
            t[at] = b;
        }
        t
    });
    prop_oneof![4 => table, 2 => flipped, 1 => proptest::collection::vec(any::<u8>(), 0..600)]
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_job_spec_off_the_wire_is_accepted_valid_or_refused_with_a_field(p in wire_spec()) {
        match job_spec(&p) {
            Ok(spec) => prop_assert!(spec.validate().is_ok(), "accepted but invalid: {spec:?}"),
            Err(e) => prop_assert!(!e.field.is_empty() && !e.problem.is_empty()),
        }
    }

    #[test]
    fn any_sweep_expands_or_is_refused(
        base in wire_spec(),
        axes in proptest::collection::vec(
            (known(&["activation", "depth", "width", "lr", "seed", "sigma_w", "init", "steps", "batch"]),
             proptest::collection::vec(known(&["1", "2", "3", "0.1", "tanh", "relu", "lecun_normal", "-1", "1e9"]), 0..4)),
            0..4),
        max_jobs in mostly(20..50usize, 0..20usize),
    ) {
        let wire = pb::SweepSpec {
            name: "p".into(),
            base: Some(base),
            axes: axes.into_iter().map(|(field, values)| pb::Axis { field, values }).collect(),
        };
        if let Ok(spec) = sweep_spec(&wire)
            && let Ok(jobs) = spec.expand(max_jobs)
        {
            prop_assert!(jobs.len() <= max_jobs);
            for j in &jobs {
                prop_assert!(j.validate().is_ok());
            }
        }
    }

    #[test]
    fn any_dataset_spec_parses_or_is_refused(text in word(&["digits", "gaussian:dim=3,classes=2,n=", "teacher:", "spirals:arms=", "blobs:n=", "csv:/nonexistent,label=", "idx:a,b"])) {
        if let Ok(spec) = text.parse::<DatasetSpec>() {
            // Round trip through the canonical form.
            prop_assert_eq!(spec.to_string().parse::<DatasetSpec>().ok(), Some(spec.clone()));
            // Load the small synthetic ones: generation must not panic either.
            let small = match &spec {
                DatasetSpec::Gaussian { dim, n, .. } | DatasetSpec::Blobs { dim, n, .. } => dim * n <= 20_000,
                DatasetSpec::Spirals { n, .. } => *n <= 10_000,
                DatasetSpec::Teacher { dim, n, width, depth, .. } => dim * n <= 20_000 && width * depth <= 2_000,
                _ => false,
            };
            if small {
                let _ = spec.load(7);
            }
        }
    }

    #[test]
    fn any_csv_bytes_read_or_fail_with_the_file_named(
        bytes in csv_text(),
        label in prop_oneof![Just(LabelColumn::Last), (0..6usize).prop_map(LabelColumn::Index), "[a-z\"]{0,3}".prop_map(LabelColumn::Name)],
        header in proptest::option::of(any::<bool>()),
        classes in proptest::option::of(0..12usize),
    ) {
        let opts = CsvOptions { label, header, classes };
        match parse_csv(&bytes, Path::new("hostile.csv"), &opts) {
            Ok(ds) => {
                prop_assert_eq!(ds.features.nrows(), ds.labels.len());
                prop_assert!(ds.features.iter().all(|v| v.is_finite()));
                prop_assert!(ds.labels.iter().all(|&l| (l as usize) < ds.classes));
            }
            Err(e) => prop_assert!(e.to_string().contains("hostile.csv"), "{e}"),
        }
    }

    #[test]
    fn any_idx_bytes_read_or_fail_with_the_file_named(
        n in 0..6u32, rows in 0..5u32, cols in 0..5u32,
        label_n in mostly(Just(None), proptest::option::of(0..7u32)),
        image_magic in mostly(Just(0x0803u32), any::<u32>()),
        label_magic in mostly(Just(0x0801u32), any::<u32>()),
        big_dim in mostly(Just(None), proptest::option::of(any::<u32>())),
        cut_images in mostly(Just(0usize), 0..8usize),
        cut_labels in mostly(Just(0usize), 0..8usize),
        noise in proptest::collection::vec(any::<u8>(), 1..200),
    ) {
        let mut images: Vec<u8> = [be32(image_magic), be32(big_dim.unwrap_or(n)), be32(rows), be32(cols)].concat();
        images.extend(noise.iter().cycle().take((n * rows * cols) as usize));
        images.truncate(images.len().saturating_sub(cut_images));
        let label_n = label_n.unwrap_or(n);
        let mut labels: Vec<u8> = [be32(label_magic), be32(label_n)].concat();
        labels.extend(noise.iter().rev().cycle().take(label_n as usize));
        labels.truncate(labels.len().saturating_sub(cut_labels));
        match parse_idx(&images, Path::new("img.idx"), &labels, Path::new("lbl.idx")) {
            Ok(ds) => {
                prop_assert_eq!(ds.features.nrows(), ds.labels.len());
                prop_assert!(ds.labels.iter().all(|&l| (l as usize) < ds.classes));
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("img.idx") || text.contains("lbl.idx"), "{text}");
            }
        }
    }
}

#[test]
fn axis_fields_from_the_sweep_grammar_all_parse() {
    // The strategies above draw axis names from this list; keep it honest.
    for f in ["activation", "depth", "width", "lr", "seed", "sigma_w", "init", "steps", "batch"] {
        assert!(f.parse::<AxisField>().is_ok(), "{f}");
    }
    let s = SweepSpec { name: String::new(), base: Default::default(), axes: vec![Axis::new(AxisField::Depth, &[])] };
    assert!(s.expand(10).is_err());
}
