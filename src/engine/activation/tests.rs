use super::*;

/// Every activation under test: the defaults plus non-default parameters.
fn all() -> Vec<Activation> {
    let mut v = Activation::ALL.to_vec();
    v.push(Activation::LeakyRelu { slope: 0.2 });
    v.push(Activation::Elu { alpha: 0.5 });
    v.push(Activation::Elu { alpha: 2.0 });
    v
}

/// Dense around 0 (down to 1e-12), steps of 1e-3 to ±1, steps of 0.01 to ±50.
fn fd_grid() -> Vec<f64> {
    let mut v = Vec::new();
    for e in -12..=-3 {
        for m in [1.0, 2.5, 5.0] {
            let x = m * 10f64.powi(e);
            v.push(x);
            v.push(-x);
        }
    }
    for i in -1000..=1000 {
        v.push(i as f64 * 1e-3);
    }
    for i in -5000..=5000 {
        v.push(i as f64 * 1e-2 + 1e-3 * std::f64::consts::PI);
    }
    v
}

/// Central differences: |fd - φ'| <= 1e-7·(1 + |φ'|), with h = 1e-5·max(1, |x|) shrunk to
/// half the distance to the nearest kink so no difference straddles one; kinks skipped.
#[test]
fn derivative_matches_finite_differences() {
    const TOL: f64 = 1e-7;
    for act in all() {
        let mut worst = (0.0f64, 0.0f64);
        for x in fd_grid() {
            if act.kinks().contains(&x) {
                continue;
            }
            let dist = act.kinks().iter().map(|k| (x - k).abs()).fold(f64::INFINITY, f64::min);
            let h = (1e-5 * x.abs().max(1.0)).min(dist / 2.0);
            let fd = (act.value(x + h) - act.value(x - h)) / (2.0 * h);
            let d = act.derivative(x);
            let err = (fd - d).abs() / (1.0 + d.abs());
            if err > worst.0 {
                worst = (err, x);
            }
        }
        eprintln!("{act}: max fd error {:e} at x = {}", worst.0, worst.1);
        assert!(worst.0 <= TOL, "{act}: fd error {:e} at x = {}", worst.0, worst.1);
    }
}

#[test]
fn derivative_at_kinks_is_left_hand() {
    let lam = SELU_LAMBDA;
    let cases = [
        (Activation::Ramp, 0.0),
        (Activation::Logmin, 0.0),
        (Activation::LeakyRelu { slope: 0.2 }, 0.2),
        (Activation::Elu { alpha: 0.5 }, 0.5),
        (Activation::Selu, lam * SELU_ALPHA),
        (Activation::Semisigmoid, 1.0),
        (Activation::Logsig, 1.0),
        (Activation::Softsign, 1.0),
    ];
    for (act, want) in cases {
        assert_eq!(act.derivative(0.0f64), want, "{act}");
        let mut d = [0.0f32];
        act.derivative_slice(&[0.0f32], &[act.value(0.0f32)], &mut d);
        assert_eq!(d[0], want as f32, "{act} slice");
    }
}

fn slice_grid() -> Vec<f64> {
    // 20001 points: longer than a saturation-count block and not a multiple of one.
    (-10_000..=10_000).map(|i| i as f64 * 3e-3).collect()
}

fn grads(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i as f64) * 0.7).sin() + 0.1).collect()
}

/// The training step's backward kernel on one row of `z.len()` units; the saturation count.
fn backward_row<F: Real>(act: &Activation, z: &[F], a: &[F], grad_a: &[F], grad_z: &mut [F], sat: F) -> usize {
    let mut db = vec![F::zero(); z.len()];
    backward_layer::<F, false>(act, z, a, grad_a, grad_z, &mut db, sat, &mut Columns::default()).saturated
}

/// Runs the three slice kernels in `F` and checks them against the scalar f64 reference at the
/// same (rounded to `F`) inputs: |got - ref| <= rel·|ref| + abs.
fn check_slices<F: Real>(rel: f64, abs: f64) {
    for act in all() {
        let x: Vec<F> = slice_grid().into_iter().map(F::of).collect();
        let n = x.len();
        let mut a = vec![F::zero(); n];
        act.forward(&x, &mut a);
        let mut d = vec![F::zero(); n];
        act.derivative_slice(&x, &a, &mut d);
        let g: Vec<F> = grads(n).into_iter().map(F::of).collect();
        let mut gz = vec![F::zero(); n];
        let sat = F::of(0.01 * act.max_derivative());
        let count = backward_row(&act, &x, &a, &g, &mut gz, sat);
        let (mut worst_v, mut worst_d) = (0.0f64, 0.0f64);
        for i in 0..n {
            let xi = x[i].f64();
            let (rv, rd) = (act.value(xi), act.derivative(xi));
            let ev = ((a[i].f64() - rv).abs() - rel * rv.abs()) / abs;
            let ed = ((d[i].f64() - rd).abs() - rel * rd.abs()) / abs;
            worst_v = worst_v.max(ev);
            worst_d = worst_d.max(ed);
            assert!(ev <= 1.0, "{} {act} forward at {xi}: {} vs {rv}", F::NAME, a[i]);
            assert!(ed <= 1.0, "{} {act} derivative at {xi}: {} vs {rd}", F::NAME, d[i]);
            assert_eq!(gz[i], g[i] * d[i], "{} {act} backward at {xi}", F::NAME);
        }
        let direct = d.iter().filter(|v| v.abs() < sat).count();
        assert_eq!(count, direct, "{} {act} saturation count", F::NAME);
        eprintln!(
            "{} {act}: worst (err - rel·|ref|)/abs forward {worst_v:.3}, derivative {worst_d:.3}, saturated {count}/{n}",
            F::NAME
        );
    }
}

#[test]
fn f32_slices_match_f64_reference() {
    check_slices::<f32>(1e-5, 1e-6);
}

#[test]
fn f64_slices_match_f64_reference() {
    check_slices::<f64>(1e-13, 1e-15);
}

fn extremes<F: Real>() -> Vec<F> {
    let mut v: Vec<F> = [0.0, 1e-45, 1e-40, 1.17e-38, 1e-30, 1e-7, 1.0, 20.0, 88.0, 89.0, 104.0, 1000.0, 1e30]
        .into_iter()
        .map(F::of)
        .collect();
    v.extend([F::min_positive_value(), F::max_value(), F::epsilon()]);
    if F::NAME == "f64" {
        v.extend([1e-310, 1e-300, 1e300].map(F::of));
    }
    let neg: Vec<F> = v.iter().map(|&x| -x).collect();
    v.extend(neg);
    v
}

fn no_nan_anywhere<F: Real>() {
    let x = extremes::<F>();
    let n = x.len();
    for act in all() {
        let mut a = vec![F::zero(); n];
        let mut d = vec![F::zero(); n];
        let mut gz = vec![F::zero(); n];
        act.forward(&x, &mut a);
        act.derivative_slice(&x, &a, &mut d);
        backward_row(&act, &x, &a, &vec![F::one(); n], &mut gz, F::of(0.01));
        for i in 0..n {
            let xi = x[i];
            let xe = xi.f64();
            let (v, dv) = (act.value(xi), act.derivative(xi));
            assert!(!v.is_nan() && !dv.is_nan(), "{} {act} scalar at {xe:e}", F::NAME);
            assert!(!a[i].is_nan() && !d[i].is_nan(), "{} {act} slice at {xe:e}", F::NAME);
            assert!(!gz[i].is_nan(), "{} {act} backward at {xe:e}", F::NAME);
            assert!(dv.is_finite() && d[i].is_finite(), "{} {act}' at {xe:e}", F::NAME);
        }
    }
}

#[test]
fn no_nan_at_extremes() {
    no_nan_anywhere::<f32>();
    no_nan_anywhere::<f64>();
}

/// `(scalar value, scalar derivative, slice value, slice derivative)` at x.
fn both<F: Real>(act: Activation, x: f64) -> [f64; 4] {
    let z = [F::of(x)];
    let mut a = [F::zero()];
    let mut d = [F::zero()];
    act.forward(&z, &mut a);
    act.derivative_slice(&z, &a, &mut d);
    [act.value(z[0]).f64(), act.derivative(z[0]).f64(), a[0].f64(), d[0].f64()]
}

fn stable_tails<F: Real>() {
    let v = |act, x| {
        let r = both::<F>(act, x);
        assert_eq!(r[0], r[2], "{} {act}({x}) scalar vs slice", F::NAME);
        r[0]
    };
    let d = |act, x| {
        let r = both::<F>(act, x);
        assert_eq!(r[1], r[3], "{} {act}'({x}) scalar vs slice", F::NAME);
        r[1]
    };
    use Activation::*;
    assert_eq!(v(Softplus, 1000.0), 1000.0);
    assert_eq!(v(Softplus, -1000.0), 0.0);
    assert_eq!(d(Softplus, -1000.0), 0.0);
    assert_eq!(d(Softplus, 1000.0), 1.0);
    assert_eq!(v(Logistic, -1000.0), 0.0);
    assert_eq!(v(Logistic, 1000.0), 1.0);
    assert_eq!(d(Logistic, 1000.0), 0.0);
    assert_eq!(v(Silu, 1000.0), 1000.0);
    assert_eq!(v(Silu, -1000.0), 0.0);
    assert_eq!(d(Silu, 1000.0), 1.0);
    assert_eq!(d(Silu, -1000.0), 0.0);
    assert_eq!(v(Gelu, 1000.0), 1000.0);
    assert_eq!(v(Gelu, -1000.0), 0.0);
    assert_eq!(d(Gelu, 1000.0), 1.0);
    assert_eq!(d(Gelu, -1000.0), 0.0);
    assert_eq!(v(GeluTanh, 1000.0), 1000.0);
    assert_eq!(v(GeluTanh, -1000.0), 0.0);
    assert_eq!(d(GeluTanh, 1000.0), 1.0);
    assert_eq!(d(GeluTanh, -1000.0), 0.0);
    assert_eq!(v(Elu { alpha: 0.5 }, -1000.0), -0.5);
    assert_eq!(d(Elu { alpha: 0.5 }, -1000.0), 0.0);
    assert_eq!(v(Elu { alpha: 0.5 }, 1000.0), 1000.0);
    assert_eq!(v(Tanh, 1000.0), 1.0);
    assert_eq!(v(Tanh, -1000.0), -1.0);
    assert_eq!(v(Semisigmoid, 0.0), 0.0);
    assert_eq!(v(Logsig, -0.0), 0.0);
}

#[test]
fn stable_at_plus_minus_1000() {
    stable_tails::<f32>();
    stable_tails::<f64>();
}

#[test]
fn parse_names_aliases_case_and_parameters() {
    for (name, act) in Activation::NAMES.iter().zip(Activation::ALL) {
        assert_eq!(Activation::parse(name).unwrap(), *act);
        assert_eq!(act.to_string(), *name);
        assert_eq!(act.name(), *name);
        let shouted = format!("  {}\t", name.to_uppercase().replace('_', "-"));
        assert_eq!(shouted.parse::<Activation>().unwrap(), *act);
    }
    for (alias, canonical) in Activation::ALIASES {
        assert_eq!(Activation::parse(alias).unwrap(), Activation::parse(canonical).unwrap());
    }
    assert_eq!(Activation::parse("ReLU").unwrap(), Activation::Ramp);
    assert_eq!(Activation::parse("Log-SemiSigmoid").unwrap(), Activation::Semisigmoid);
    assert_eq!(Activation::parse("logarithmic-semisigmoid").unwrap(), Activation::Semisigmoid);
    assert_eq!(Activation::parse("Swish").unwrap(), Activation::Silu);
    assert_eq!(Activation::parse("GELU-tanh").unwrap(), Activation::GeluTanh);
    let leaky = Activation::LeakyRelu { slope: 0.2 };
    for s in [
        "leaky_relu:0.2",
        "Leaky-ReLU: 0.2",
        "leaky_relu(0.2)",
        "leaky_relu(slope=0.2)",
        " leaky-relu ( SLOPE = 0.2 ) ",
    ] {
        assert_eq!(Activation::parse(s).unwrap(), leaky, "{s}");
    }
    assert_eq!(Activation::parse("leaky_relu").unwrap(), Activation::LeakyRelu { slope: 0.01 });
    assert_eq!(Activation::parse("leaky_relu:-0.1").unwrap(), Activation::LeakyRelu { slope: -0.1 });
    let elu = Activation::Elu { alpha: 0.5 };
    for s in ["elu:0.5", "elu(0.5)", "ELU(alpha=0.5)", "elu(alpha = 5e-1)"] {
        assert_eq!(Activation::parse(s).unwrap(), elu, "{s}");
    }
    assert_eq!(Activation::parse("elu").unwrap(), Activation::Elu { alpha: 1.0 });
    for act in all().into_iter().chain([
        Activation::LeakyRelu { slope: 1.0 / 3.0 },
        Activation::Elu { alpha: 1e-300 },
        Activation::LeakyRelu { slope: -0.0 },
    ]) {
        let s = act.to_string();
        assert_eq!(Activation::parse(&s).unwrap(), act, "{s}");
        let json = serde_json::to_string(&act).unwrap();
        assert_eq!(serde_json::from_str::<Activation>(&json).unwrap(), act, "{json}");
    }
    assert_eq!(Activation::LeakyRelu { slope: 0.2 }.to_string(), "leaky_relu:0.2");
    assert_eq!(Activation::Elu { alpha: 0.5 }.to_string(), "elu:0.5");
    for bad in [
        "tanh:1",
        "tanh(2)",
        "leaky_relu:abc",
        "leaky_relu(alpha=0.1)",
        "elu(slope=1)",
        "elu:inf",
        "elu:NaN",
        "elu(0.5",
    ] {
        assert!(Activation::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn unknown_name_error_lists_every_name() {
    let err = Activation::parse("sigmoidal").unwrap_err();
    assert!(matches!(err, ActivationError::UnknownName { .. }));
    let msg = err.to_string();
    assert!(msg.contains("sigmoidal"), "{msg}");
    for name in Activation::NAMES {
        assert!(msg.contains(name), "{name} missing from {msg}");
    }
    for (alias, _) in Activation::ALIASES {
        assert!(msg.contains(alias), "{alias} missing from {msg}");
    }
}

/// A scan over [-20, 20] in steps of 1e-4, plus points near 0 and far out, never exceeds
/// `max_derivative` (rel. 1e-12) and comes within 1e-6 of it.
#[test]
fn max_derivative_matches_grid_scan() {
    let mut xs: Vec<f64> = (-200_000..=200_000).map(|i| i as f64 * 1e-4).collect();
    xs.extend([1e-12, -1e-12, 1e-9, -1e-9, 50.0, -50.0, 1e3, -1e3]);
    for act in all() {
        let scan = xs.iter().map(|&x| act.derivative(x).abs()).fold(0.0f64, f64::max);
        let m = act.max_derivative();
        assert!(scan <= m * (1.0 + 1e-12), "{act}: scan {scan} > {m}");
        assert!(scan >= m * (1.0 - 1e-6), "{act}: scan {scan} << {m}");
    }
    let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
    assert!(close(Activation::Gelu.max_derivative(), 1.1289));
    assert!(close(Activation::Silu.max_derivative(), 1.0998));
    assert!(close(Activation::GeluTanh.max_derivative(), 1.1290));
    assert_eq!(Activation::Selu.max_derivative(), SELU_LAMBDA * SELU_ALPHA);
}

#[test]
fn tanh_forward_has_no_position_dependence() {
    let x: Vec<f32> = (0..10_007).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
    let mut whole = vec![0.0f32; x.len()];
    Activation::Tanh.forward(&x, &mut whole);
    for piece in [1, 3, 7, 8, 13, 64, 1000] {
        let mut parts = vec![0.0f32; x.len()];
        for (zc, ac) in x.chunks(piece).zip(parts.chunks_mut(piece)) {
            Activation::Tanh.forward(zc, ac);
        }
        let same = whole.iter().zip(&parts).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "pieces of {piece} differ from the whole slice");
    }
    // Offsetting the start (a different alignment) changes nothing either.
    let mut shifted = vec![0.0f32; x.len() - 1];
    Activation::Tanh.forward(&x[1..], &mut shifted);
    assert!(shifted.iter().zip(&whole[1..]).all(|(a, b)| a.to_bits() == b.to_bits()));
}
