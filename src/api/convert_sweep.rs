//! Proto <-> domain conversions of sweeps and their reports. The report converts both ways:
//! the server sends it, and the CLI turns it back into a [`SweepReport`] to print and plot it.

use std::collections::BTreeMap;

use super::convert::{job_spec, job_spec_to_pb, job_to_pb};
use super::pb;
use crate::engine::spec::FieldError;
use crate::runner::sweep::{
    Axis, AxisField, AxisValue, CellReport, ClaimCheck, ClaimVerdict, ClaimedDepth, DepthPoint, LrResult,
    MeasuredDepth, Stat, SweepReport, SweepSpec, TrainableDepth,
};
use crate::runner::{StateCounts, SweepEvent, SweepRecord, SweepState};

fn prefixed(prefix: &str, e: FieldError) -> FieldError {
    FieldError::new(format!("{prefix}.{}", e.field), e.problem)
}

fn axis_field(field: &str, text: &str) -> Result<AxisField, FieldError> {
    text.parse().map_err(|e: String| FieldError::new(field, e))
}

/// A sweep spec from the wire; the base is read like a job spec (its errors are named
/// `base.<field>`). The axes are checked when the sweep is expanded.
pub fn sweep_spec(p: &pb::SweepSpec) -> Result<SweepSpec, FieldError> {
    let base = job_spec(&p.base.clone().unwrap_or_default()).map_err(|e| prefixed("base", e))?;
    let axes = p
        .axes
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let field = axis_field(&format!("axes[{i}].field"), &a.field)?;
            Ok(Axis { field, values: a.values.clone() })
        })
        .collect::<Result<_, FieldError>>()?;
    Ok(SweepSpec { name: p.name.clone(), base, axes })
}

pub fn sweep_spec_to_pb(s: &SweepSpec) -> pb::SweepSpec {
    pb::SweepSpec {
        name: s.name.clone(),
        base: Some(job_spec_to_pb(&s.base)),
        axes: s.axes.iter().map(|a| pb::Axis { field: a.field.to_string(), values: a.values.clone() }).collect(),
    }
}

pub fn counts_to_pb(c: &StateCounts) -> pb::JobCounts {
    pb::JobCounts {
        queued: c.queued,
        running: c.running,
        succeeded: c.succeeded,
        failed: c.failed,
        cancelled: c.cancelled,
        total: c.total(),
    }
}

pub fn sweep_state_to_pb(s: SweepState) -> pb::SweepState {
    match s {
        SweepState::Queued => pb::SweepState::Queued,
        SweepState::Running => pb::SweepState::Running,
        SweepState::Succeeded => pb::SweepState::Succeeded,
        SweepState::Failed => pb::SweepState::Failed,
        SweepState::Cancelled => pb::SweepState::Cancelled,
    }
}

pub fn sweep_to_pb(r: &SweepRecord) -> pb::Sweep {
    pb::Sweep {
        id: r.id.0,
        spec: Some(sweep_spec_to_pb(&r.spec)),
        state: sweep_state_to_pb(r.state()) as i32,
        counts: Some(counts_to_pb(&r.counts)),
        created_ms: r.created_ms,
        cancelled_ms: r.cancelled_ms.unwrap_or(0),
        finished_ms: r.finished_ms.unwrap_or(0),
    }
}

pub fn sweep_progress_to_pb(ev: &SweepEvent) -> pb::SweepProgress {
    use pb::sweep_progress::Event;
    match ev {
        SweepEvent::Sweep(s) => {
            pb::SweepProgress { event: Some(Event::Sweep(sweep_to_pb(s))), counts: Some(counts_to_pb(&s.counts)) }
        }
        SweepEvent::Job { job, counts } => {
            pb::SweepProgress { event: Some(Event::Job(job_to_pb(job))), counts: Some(counts_to_pb(counts)) }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report

fn values_to_pb(v: &[AxisValue]) -> Vec<pb::AxisValue> {
    v.iter().map(|a| pb::AxisValue { field: a.field.to_string(), value: a.value.clone() }).collect()
}

fn values_from_pb(field: &str, v: &[pb::AxisValue]) -> Result<Vec<AxisValue>, FieldError> {
    v.iter().map(|a| Ok(AxisValue { field: axis_field(field, &a.field)?, value: a.value.clone() })).collect()
}

fn stat_to_pb(s: &Stat) -> pb::Stat {
    pb::Stat { n: s.n as u32, mean: s.mean, std: s.std }
}

fn stat_from_pb(s: &pb::Stat) -> Stat {
    Stat { n: s.n as usize, mean: s.mean, std: s.std }
}

fn claimed_to_pb(c: ClaimedDepth) -> (String, u32) {
    match c {
        ClaimedDepth::AtMost(d) => ("at_most".into(), d as u32),
        ClaimedDepth::AtLeast(d) => ("at_least".into(), d as u32),
        ClaimedDepth::Unbounded => ("unbounded".into(), 0),
    }
}

fn claimed_from_pb(kind: &str, depth: u32) -> Result<ClaimedDepth, FieldError> {
    match kind {
        "at_most" => Ok(ClaimedDepth::AtMost(depth as usize)),
        "at_least" => Ok(ClaimedDepth::AtLeast(depth as usize)),
        "unbounded" => Ok(ClaimedDepth::Unbounded),
        other => Err(FieldError::new("claims.claimed_kind", format!("unknown kind {other:?}"))),
    }
}

fn cell_to_pb(c: &CellReport) -> pb::ReportCell {
    pb::ReportCell {
        values: values_to_pb(&c.values),
        jobs_total: c.jobs_total as u32,
        jobs_finished: c.jobs_finished as u32,
        best_lr: c.best_lr.clone(),
        by_lr: c
            .by_lr
            .iter()
            .map(|l| pb::LrResult {
                lr: l.lr.clone(),
                finished: l.finished as u32,
                mean_test_accuracy: l.mean_test_accuracy,
            })
            .collect(),
        test_accuracy: c.test_accuracy.as_ref().map(stat_to_pb),
        test_loss: c.test_loss.as_ref().map(stat_to_pb),
        nonfinite_test_loss: c.nonfinite_test_loss as u32,
        verdicts: c.verdicts.iter().map(|(k, &v)| (k.clone(), v as u32)).collect(),
        ratio_at_init: c.ratio_at_init_geomean,
        ratio_at_end: c.ratio_at_end_geomean,
        predicted_ratio: c.predicted_ratio_geomean,
        chi1_mean: c.chi1_mean,
    }
}

fn cell_from_pb(c: &pb::ReportCell) -> Result<CellReport, FieldError> {
    Ok(CellReport {
        values: values_from_pb("cells.values", &c.values)?,
        jobs_total: c.jobs_total as usize,
        jobs_finished: c.jobs_finished as usize,
        best_lr: c.best_lr.clone(),
        by_lr: c
            .by_lr
            .iter()
            .map(|l| LrResult {
                lr: l.lr.clone(),
                finished: l.finished as usize,
                mean_test_accuracy: l.mean_test_accuracy,
            })
            .collect(),
        test_accuracy: c.test_accuracy.as_ref().map(stat_from_pb),
        test_loss: c.test_loss.as_ref().map(stat_from_pb),
        nonfinite_test_loss: c.nonfinite_test_loss as usize,
        verdicts: c.verdicts.iter().map(|(k, &v)| (k.clone(), v as usize)).collect::<BTreeMap<_, _>>(),
        ratio_at_init_geomean: c.ratio_at_init,
        ratio_at_end_geomean: c.ratio_at_end,
        predicted_ratio_geomean: c.predicted_ratio,
        chi1_mean: c.chi1_mean,
    })
}

fn trainable_to_pb(t: &TrainableDepth) -> pb::TrainableDepth {
    pb::TrainableDepth {
        group: values_to_pb(&t.group),
        activation: t.activation.clone(),
        reference_accuracy: t.reference_accuracy,
        points: t
            .points
            .iter()
            .map(|p| pb::DepthPoint {
                depth: p.depth as u32,
                mean_test_accuracy: p.mean_test_accuracy,
                within_margin: p.within_margin,
            })
            .collect(),
        trainable_depth: t.trainable_depth.map(|d| d as u32),
        deepest_swept: t.deepest_swept as u32,
        recovered_at: t.recovered_at.iter().map(|&d| d as u32).collect(),
    }
}

fn trainable_from_pb(t: &pb::TrainableDepth) -> Result<TrainableDepth, FieldError> {
    Ok(TrainableDepth {
        group: values_from_pb("trainable.group", &t.group)?,
        activation: t.activation.clone(),
        reference_accuracy: t.reference_accuracy,
        points: t
            .points
            .iter()
            .map(|p| DepthPoint {
                depth: p.depth as usize,
                mean_test_accuracy: p.mean_test_accuracy,
                within_margin: p.within_margin,
            })
            .collect(),
        trainable_depth: t.trainable_depth.map(|d| d as usize),
        deepest_swept: t.deepest_swept as usize,
        recovered_at: t.recovered_at.iter().map(|&d| d as usize).collect(),
    })
}

fn claim_to_pb(c: &ClaimCheck) -> pb::ClaimCheck {
    let (claimed_kind, claimed_depth) = claimed_to_pb(c.claimed);
    pb::ClaimCheck {
        activation: c.activation.clone(),
        claimed_kind,
        claimed_depth,
        measured: c
            .measured
            .iter()
            .map(|m| pb::MeasuredDepth {
                group: values_to_pb(&m.group),
                trainable_depth: m.trainable_depth.map(|d| d as u32),
                deepest_swept: m.deepest_swept as u32,
                supported: m.supported,
            })
            .collect(),
        supported: c.supported,
        verdict: c.verdict.as_str().to_string(),
        note: c.note.clone(),
    }
}

fn claim_from_pb(c: &pb::ClaimCheck) -> Result<ClaimCheck, FieldError> {
    Ok(ClaimCheck {
        activation: c.activation.clone(),
        claimed: claimed_from_pb(&c.claimed_kind, c.claimed_depth)?,
        measured: c
            .measured
            .iter()
            .map(|m| {
                Ok(MeasuredDepth {
                    group: values_from_pb("claims.measured.group", &m.group)?,
                    trainable_depth: m.trainable_depth.map(|d| d as usize),
                    deepest_swept: m.deepest_swept as usize,
                    supported: m.supported,
                })
            })
            .collect::<Result<_, FieldError>>()?,
        supported: c.supported,
        // A server from before the third verdict sends none: its bool says all it knew.
        verdict: match c.verdict.as_str() {
            "" if c.supported => ClaimVerdict::Supported,
            "" => ClaimVerdict::NotSupported,
            v => v.parse().map_err(|e| FieldError::new("claims.verdict", e))?,
        },
        note: c.note.clone(),
    })
}

pub fn report_to_pb(sweep: &SweepRecord, r: &SweepReport) -> pb::SweepReport {
    pb::SweepReport {
        sweep_id: sweep.id.0,
        sweep: r.sweep.clone(),
        cell_axes: r.cell_axes.iter().map(|f| f.to_string()).collect(),
        lr_is_axis: r.lr_is_axis,
        margin: r.margin,
        steps: r.steps,
        jobs_total: r.jobs_total as u32,
        jobs_finished: r.jobs_finished as u32,
        jobs_unmatched: r.jobs_unmatched as u32,
        cells: r.cells.iter().map(cell_to_pb).collect(),
        trainable: r.trainable.iter().map(trainable_to_pb).collect(),
        claims: r.claims.iter().map(claim_to_pb).collect(),
        rules: r.rules.clone(),
        state: sweep_state_to_pb(sweep.state()) as i32,
    }
}

/// The report back from the wire (what the CLI prints and plots).
pub fn report_from_pb(r: &pb::SweepReport) -> Result<SweepReport, FieldError> {
    Ok(SweepReport {
        sweep: r.sweep.clone(),
        cell_axes: r.cell_axes.iter().map(|f| axis_field("cell_axes", f)).collect::<Result<_, _>>()?,
        lr_is_axis: r.lr_is_axis,
        margin: r.margin,
        steps: r.steps,
        jobs_total: r.jobs_total as usize,
        jobs_finished: r.jobs_finished as usize,
        jobs_unmatched: r.jobs_unmatched as usize,
        cells: r.cells.iter().map(cell_from_pb).collect::<Result<_, _>>()?,
        trainable: r.trainable.iter().map(trainable_from_pb).collect::<Result<_, _>>()?,
        claims: r.claims.iter().map(claim_from_pb).collect::<Result<_, _>>()?,
        rules: r.rules.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::train::Summary;
    use crate::engine::verdict::{Verdict, VerdictReport};
    use crate::runner::sweep::{preset, report};
    use crate::runner::{JobId, JobRecord, JobState, JobSummary, SweepId};

    #[test]
    fn sweep_spec_round_trips_and_names_bad_fields() {
        let spec = preset("seed-claims").unwrap();
        assert_eq!(sweep_spec(&sweep_spec_to_pb(&spec)).unwrap(), spec);
        let mut p = sweep_spec_to_pb(&spec);
        p.axes[1].field = "colour".into();
        assert_eq!(sweep_spec(&p).unwrap_err().field, "axes[1].field");
        let mut p = sweep_spec_to_pb(&spec);
        p.base.as_mut().unwrap().lr = Some(-1.0);
        assert_eq!(sweep_spec(&p).unwrap_err().field, "base.lr");
    }

    #[test]
    fn report_round_trips() {
        let spec = preset("seed-claims").unwrap();
        // Every third job unfinished; the others with figures that vary by job.
        let jobs: Vec<JobRecord> = spec
            .expand(2000)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let x = i as f64;
                let summary = (i % 3 != 0).then(|| JobSummary {
                    run: Summary {
                        steps_done: s.steps,
                        train_loss: 0.1 + x / 1000.0,
                        train_accuracy: 0.9,
                        test_loss: if i % 7 == 0 { f64::INFINITY } else { 0.2 + x / 500.0 },
                        test_accuracy: 0.5 + (x * 0.37).sin() / 3.0,
                        verdict: VerdictReport {
                            verdict: if i % 5 == 0 { Verdict::Vanishing } else { Verdict::Healthy },
                            reason: String::new(),
                            ratio_at_init: Some(10f64.powf(-(x % 9.0))),
                            ratio_at_end: Some(1.0 + x),
                            nonfinite_seen: false,
                        },
                        stopped_early: false,
                    },
                    mean_field: None,
                });
                JobRecord {
                    id: JobId(i as i64 + 1),
                    sweep_id: Some(1),
                    spec: s,
                    state: if summary.is_some() { JobState::Succeeded } else { JobState::Queued },
                    steps_done: 0,
                    created_ms: 0,
                    started_ms: None,
                    finished_ms: None,
                    summary,
                    error: None,
                    owner: None,
                    attempt: 0,
                    resumed_from: None,
                    fork_of: None,
                }
            })
            .collect();
        let r = report(&spec, &jobs, 0.05);
        assert!(r.cells.iter().any(|c| c.test_accuracy.is_some_and(|a| a.std > 0.0) && c.verdicts.len() == 2));
        assert!(r.cells.iter().any(|c| c.nonfinite_test_loss > 0) && !r.claims.is_empty());
        let counts = StateCounts { queued: jobs.len() as u64, ..Default::default() };
        let sweep = SweepRecord { id: SweepId(1), spec, created_ms: 0, cancelled_ms: None, finished_ms: None, counts };
        assert_eq!(report_from_pb(&report_to_pb(&sweep, &r)).unwrap(), r);
    }
}
