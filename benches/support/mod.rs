//! What several benches share: the CPU's name, and the python-side references they run beside
//! gradlab (numpy's BLAS, the peer loops of `benches/peers`). Included with `#[path]`, as each
//! bench is a crate of its own.

#![allow(dead_code)]

use std::process::Command;

/// The middle value, or the mean of the two middle values of an even count (NaN for none): the
/// upper one alone would lean high on an even number of rounds.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The CPU's model name, as /proc/cpuinfo gives it ("an unknown CPU" elsewhere).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into())
}

/// Floating-point operations of one training step as the peer loops count them:
/// 6·batch·fan_in·fan_out per layer, over the layer sizes `dims` (input first).
pub fn step_flops(dims: &[usize], batch: usize) -> f64 {
    dims.windows(2).map(|p| 6.0 * (batch * p[0] * p[1]) as f64).sum()
}

/// GRADLAB_BENCH_PYTHON, a python with numpy, threadpoolctl and jax (default python3).
pub fn bench_python() -> String {
    std::env::var("GRADLAB_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether to run the peer loops (GRADLAB_BENCH_PEERS=0 says no).
pub fn peers_wanted() -> bool {
    !std::env::var("GRADLAB_BENCH_PEERS").is_ok_and(|v| v == "0")
}

/// Holds a python child to `threads` threads in its BLAS (and, at one, in every library it may
/// use), or leaves it all cores (None); either way takes away the two OpenBLAS settings that
/// would pick a slower kernel.
pub fn threads(cmd: &mut Command, threads: Option<usize>) -> &mut Command {
    cmd.env_remove("OPENBLAS_CORETYPE").env_remove("OPENBLAS_L2_SIZE");
    if let Some(n) = threads {
        cmd.env("OPENBLAS_NUM_THREADS", n.to_string()).env("OMP_NUM_THREADS", n.to_string());
        if n == 1 {
            cmd.env("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1");
        }
    }
    cmd
}

/// Median steps/s of a peer loop (`np_mlp` or `jax_mlp`) at D hidden layers of width W, batch
/// B: on one core pinned with `taskset -c 0` (where there is one) and one thread, or on all
/// cores; or why it did not run.
pub fn peer_rate(peer: &str, (d, w, b): (usize, usize, usize), cores: usize) -> Result<f64, String> {
    let python = bench_python();
    let script = format!("{}/benches/peers/{peer}.py", env!("CARGO_MANIFEST_DIR"));
    let pin = cores == 1 && Command::new("taskset").args(["-c", "0", "true"]).status().is_ok_and(|s| s.success());
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", &python]);
        c
    } else {
        Command::new(&python)
    };
    cmd.arg(&script).args([d, w, b].map(|x| x.to_string())).args(["--trials", "3", "--secs", "1"]);
    threads(&mut cmd, (cores == 1).then_some(1));
    let out = cmd.output().map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed").to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("its output: {e}"))?;
    v["steps_per_s"].as_f64().ok_or_else(|| "no steps_per_s in its output".into())
}
