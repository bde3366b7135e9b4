//! Shared formatting of jobs for people.

use crate::api::pb;

pub fn job_state(j: &pb::Job) -> pb::JobState {
    pb::JobState::try_from(j.state).unwrap_or(pb::JobState::Unspecified)
}

pub fn state_name(j: &pb::Job) -> String {
    job_state(j).as_str_name().trim_start_matches("JOB_STATE_").to_ascii_lowercase()
}

pub fn verdict_name(v: i32) -> String {
    match pb::Verdict::try_from(v) {
        Ok(pb::Verdict::Unspecified) | Err(_) => "-".into(),
        Ok(v) => v.as_str_name().trim_start_matches("VERDICT_").to_ascii_lowercase(),
    }
}

/// "tanh 16x256" or "relu 512,256,128".
pub fn shape(spec: &pb::JobSpec) -> String {
    let h = &spec.hidden;
    let widths = if !h.is_empty() && h.iter().all(|w| *w == h[0]) {
        format!("{}x{}", h.len(), h[0])
    } else {
        h.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")
    };
    format!("{} {widths}", spec.activation)
}

/// One line: how a job ended.
pub fn summary_line(j: &pb::Job) -> String {
    let spec = j.spec.clone().unwrap_or_default();
    let mut line = format!("job {} ({}, init {}) {}", j.id, shape(&spec), spec.init, state_name(j));
    if let Some(s) = &j.summary {
        line += &format!(
            " after {} steps: test accuracy {:.3}, test loss {:.4}; verdict {} ({})",
            s.steps_done,
            s.test_accuracy,
            s.test_loss,
            verdict_name(s.verdict),
            s.verdict_reason
        );
        if let Some(m) = &s.mean_field {
            line += &format!("; mean field chi_1 {:.3} ({})", m.chi1, m.regime);
        }
    }
    if !j.error.is_empty() {
        line += &format!(": {}", j.error);
    }
    line
}

pub fn sci(v: f64) -> String {
    if v == 0.0 { "0".into() } else { format!("{v:.3e}") }
}

/// A size in bytes for people: `812 B`, `4.1 kB`, `120.3 MB`, `1.2 GB` (decimal units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}
