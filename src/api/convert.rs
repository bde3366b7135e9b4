//! Proto <-> domain conversions. Incoming messages are validated here, and every problem names
//! the field it is about.

use std::str::FromStr;

use super::pb;
use crate::engine::activation::Activation;
use crate::engine::init::Init;
use crate::engine::spec::{FieldError, JobSpec};
use crate::engine::stats::{Histogram, LayerStats};
use crate::engine::train::{EvalRecord, StepRecord};
use crate::engine::verdict::{Thresholds, Verdict};
use crate::runner::export::WeightsFormat;
use crate::runner::filter::{self, SortKey};
use crate::runner::histograms::{HistogramQuery, HistogramSeries};
use crate::runner::history::HistoryPiece;
use crate::runner::{
    CheckpointInfo, HistoryQuery, HistoryResult, JobFilter, JobRecord, JobState, LiveEvent, Order, PageRequest, Series,
    now_ms,
};

fn parse<T>(field: &str, text: &str) -> Result<Option<T>, FieldError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse::<T>().map(Some).map_err(|e| FieldError::new(field, e.to_string()))
}

/// A job spec from the wire: unset fields keep gradlab's defaults; the result is validated.
pub fn job_spec(p: &pb::JobSpec) -> Result<JobSpec, FieldError> {
    job_spec_over(p, &JobSpec::default())
}

/// `base` with the fields set in `p` (a fork's changes): its labels added to base's; the result
/// is validated.
pub fn job_spec_over(p: &pb::JobSpec, base: &JobSpec) -> Result<JobSpec, FieldError> {
    let d = base.clone();
    let hidden = match (p.hidden.is_empty(), p.depth, p.width) {
        (true, None, None) => d.hidden.clone(),
        (false, None, None) => p.hidden.iter().map(|&w| w as usize).collect(),
        (false, _, _) => {
            return Err(FieldError::new("hidden", "give either hidden widths or depth and width, not both"));
        }
        (true, depth, width) => {
            let depth = depth.map_or(d.depth(), |v| v as usize);
            let width = width.map_or(d.hidden[0], |v| v as usize);
            if depth == 0 {
                return Err(FieldError::new("depth", "must be at least 1"));
            }
            if width == 0 {
                return Err(FieldError::new("width", "must be at least 1"));
            }
            if depth > crate::engine::spec::MAX_DEPTH {
                return Err(FieldError::new(
                    "depth",
                    format!("{depth} exceeds the limit {}", crate::engine::spec::MAX_DEPTH),
                ));
            }
            vec![width; depth]
        }
    };
    let init = match (p.sigma_w, p.sigma_b) {
        (None, None) => parse::<Init>("init", &p.init)?.unwrap_or(d.init),
        (sw, sb) => {
            if !p.init.trim().is_empty() && !p.init.trim().eq_ignore_ascii_case("custom") {
                return Err(FieldError::new(
                    "init",
                    format!("sigma_w/sigma_b go with the custom init, not {:?}", p.init),
                ));
            }
            let sigma_w = sw.ok_or_else(|| FieldError::new("sigma_w", "needed with sigma_b (custom init)"))?;
            Init::Custom { sigma_w, sigma_b: sb.unwrap_or(0.0) }
        }
    };
    let t = p.thresholds.unwrap_or_default();
    let dt = d.thresholds;
    let mut labels = d.labels.clone();
    labels.extend(p.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let spec = JobSpec {
        name: if p.name.is_empty() { d.name.clone() } else { p.name.clone() },
        labels,
        activation: parse::<Activation>("activation", &p.activation)?.unwrap_or(d.activation),
        output_activation: parse::<Activation>("output_activation", &p.output_activation)?
            .unwrap_or(d.output_activation),
        hidden,
        init,
        loss: parse("loss", &p.loss)?.unwrap_or(d.loss),
        optimizer: parse("optimizer", &p.optimizer)?.unwrap_or(d.optimizer),
        lr: p.lr.unwrap_or(d.lr),
        schedule: parse("schedule", &p.schedule)?.unwrap_or(d.schedule),
        weight_decay: p.weight_decay.unwrap_or(d.weight_decay),
        clip_norm: p.clip_norm.or(d.clip_norm),
        batch: p.batch.map_or(d.batch, |b| b as usize),
        steps: p.steps.unwrap_or(d.steps),
        eval_every: p.eval_every.unwrap_or(d.eval_every),
        dataset: if p.dataset.trim().is_empty() { d.dataset } else { p.dataset.trim().to_string() },
        test_fraction: p.test_fraction.unwrap_or(d.test_fraction),
        standardize: p.standardize.unwrap_or(d.standardize),
        seed: p.seed.unwrap_or(d.seed),
        record_every: p.record_every.unwrap_or(d.record_every),
        histogram_every: p.histogram_every.unwrap_or(d.histogram_every),
        stop_on_nonfinite: p.stop_on_nonfinite.unwrap_or(d.stop_on_nonfinite),
        checkpoint_every_steps: p.checkpoint_every_steps.unwrap_or(d.checkpoint_every_steps),
        checkpoint_every_seconds: p.checkpoint_every_seconds.unwrap_or(d.checkpoint_every_seconds),
        checkpoint_keep: p.checkpoint_keep.unwrap_or(d.checkpoint_keep),
        keep_checkpoints: p.keep_checkpoints.unwrap_or(d.keep_checkpoints),
        thresholds: Thresholds {
            vanish_ratio: t.vanish_ratio.unwrap_or(dt.vanish_ratio),
            explode_ratio: t.explode_ratio.unwrap_or(dt.explode_ratio),
            explode_growth: t.explode_growth.unwrap_or(dt.explode_growth),
            dead_fraction: t.dead_fraction.unwrap_or(dt.dead_fraction),
            chance_margin: t.chance_margin.unwrap_or(dt.chance_margin),
            collapse_ratio: t.collapse_ratio.unwrap_or(dt.collapse_ratio),
            min_learned: t.min_learned.unwrap_or(dt.min_learned),
        },
    };
    spec.validate()?;
    Ok(spec)
}

/// The spec as it runs, every default written out.
pub fn job_spec_to_pb(s: &JobSpec) -> pb::JobSpec {
    let (sigma_w, sigma_b) = match s.init {
        Init::Custom { sigma_w, sigma_b } => (Some(sigma_w), Some(sigma_b)),
        _ => (None, None),
    };
    pb::JobSpec {
        name: s.name.clone(),
        labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        activation: s.activation.to_string(),
        output_activation: s.output_activation.to_string(),
        hidden: s.hidden.iter().map(|&w| w as u32).collect(),
        depth: None,
        width: None,
        init: if sigma_w.is_some() { "custom".into() } else { s.init.to_string() },
        sigma_w,
        sigma_b,
        loss: s.loss.to_string(),
        optimizer: s.optimizer.to_string(),
        lr: Some(s.lr),
        schedule: s.schedule.to_string(),
        weight_decay: Some(s.weight_decay),
        clip_norm: s.clip_norm,
        batch: Some(s.batch as u32),
        steps: Some(s.steps),
        eval_every: Some(s.eval_every),
        dataset: s.dataset.clone(),
        test_fraction: Some(s.test_fraction),
        standardize: Some(s.standardize),
        seed: Some(s.seed),
        record_every: Some(s.record_every),
        histogram_every: Some(s.histogram_every),
        stop_on_nonfinite: Some(s.stop_on_nonfinite),
        checkpoint_every_steps: Some(s.checkpoint_every_steps),
        checkpoint_every_seconds: Some(s.checkpoint_every_seconds),
        checkpoint_keep: Some(s.checkpoint_keep),
        keep_checkpoints: Some(s.keep_checkpoints),
        thresholds: Some(pb::Thresholds {
            vanish_ratio: Some(s.thresholds.vanish_ratio),
            explode_ratio: Some(s.thresholds.explode_ratio),
            explode_growth: Some(s.thresholds.explode_growth),
            dead_fraction: Some(s.thresholds.dead_fraction),
            chance_margin: Some(s.thresholds.chance_margin),
            collapse_ratio: Some(s.thresholds.collapse_ratio),
            min_learned: Some(s.thresholds.min_learned),
        }),
    }
}

pub fn state_to_pb(s: JobState) -> pb::JobState {
    match s {
        JobState::Queued => pb::JobState::Queued,
        JobState::Running => pb::JobState::Running,
        JobState::Succeeded => pb::JobState::Succeeded,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    }
}

pub fn state_from_pb(field: &str, v: i32) -> Result<JobState, FieldError> {
    match pb::JobState::try_from(v) {
        Ok(pb::JobState::Queued) => Ok(JobState::Queued),
        Ok(pb::JobState::Running) => Ok(JobState::Running),
        Ok(pb::JobState::Succeeded) => Ok(JobState::Succeeded),
        Ok(pb::JobState::Failed) => Ok(JobState::Failed),
        Ok(pb::JobState::Cancelled) => Ok(JobState::Cancelled),
        _ => Err(FieldError::new(field, format!("unknown job state {v}"))),
    }
}

pub fn verdict_to_pb(v: Verdict) -> pb::Verdict {
    match v {
        Verdict::Healthy => pb::Verdict::Healthy,
        Verdict::Vanishing => pb::Verdict::Vanishing,
        Verdict::Exploding => pb::Verdict::Exploding,
        Verdict::Dead => pb::Verdict::Dead,
        Verdict::NotLearning => pb::Verdict::NotLearning,
        Verdict::Collapsing => pb::Verdict::Collapsing,
    }
}

pub fn verdict_from_pb(field: &str, v: i32) -> Result<Option<Verdict>, FieldError> {
    Ok(match pb::Verdict::try_from(v) {
        Ok(pb::Verdict::Unspecified) => None,
        Ok(pb::Verdict::Healthy) => Some(Verdict::Healthy),
        Ok(pb::Verdict::Vanishing) => Some(Verdict::Vanishing),
        Ok(pb::Verdict::Exploding) => Some(Verdict::Exploding),
        Ok(pb::Verdict::Dead) => Some(Verdict::Dead),
        Ok(pb::Verdict::NotLearning) => Some(Verdict::NotLearning),
        Ok(pb::Verdict::Collapsing) => Some(Verdict::Collapsing),
        Err(_) => return Err(FieldError::new(field, format!("unknown verdict {v}"))),
    })
}

pub fn job_to_pb(r: &JobRecord) -> pb::Job {
    pb::Job {
        id: r.id.0,
        spec: Some(job_spec_to_pb(&r.spec)),
        state: state_to_pb(r.state) as i32,
        steps_done: r.steps_done,
        total_steps: r.spec.steps,
        created_ms: r.created_ms,
        started_ms: r.started_ms.unwrap_or(0),
        finished_ms: r.finished_ms.unwrap_or(0),
        summary: r.summary.as_ref().map(|s| pb::Summary {
            steps_done: s.run.steps_done,
            train_loss: s.run.train_loss,
            train_accuracy: s.run.train_accuracy,
            test_loss: s.run.test_loss,
            test_accuracy: s.run.test_accuracy,
            verdict: verdict_to_pb(s.run.verdict.verdict) as i32,
            verdict_reason: s.run.verdict.reason.clone(),
            ratio_at_init: s.run.verdict.ratio_at_init,
            ratio_at_end: s.run.verdict.ratio_at_end,
            stopped_early: s.run.stopped_early,
            mean_field: s.mean_field.as_ref().map(|m| pb::MeanField {
                sigma_w: m.sigma_w,
                sigma_b: m.sigma_b,
                q_star: m.q_star,
                fixed_point: m.fixed_point.clone(),
                chi1: m.chi1,
                regime: m.regime.clone(),
                depth_scale: m.depth_scale,
                first_last_ratio: m.first_last_ratio,
                layer_ratios: m.layer_ratios.clone(),
            }),
        }),
        error: r.error.clone().unwrap_or_default(),
        sweep_id: r.sweep_id,
        worker: r.owner.clone().unwrap_or_default(),
        attempt: r.attempt,
        resumed_from: r.resumed_from,
        checkpoints: Vec::new(),
        parent_id: r.fork_of.map(|f| f.parent.0),
        fork_step: r.fork_of.map(|f| f.step),
    }
}

pub fn weights_format(f: i32) -> Result<WeightsFormat, FieldError> {
    match pb::WeightsFormat::try_from(f) {
        Ok(pb::WeightsFormat::Unspecified | pb::WeightsFormat::Safetensors) => Ok(WeightsFormat::Safetensors),
        Ok(pb::WeightsFormat::Npz) => Ok(WeightsFormat::Npz),
        Err(_) => Err(FieldError::new("format", format!("unknown weights format {f}"))),
    }
}

pub fn checkpoint_to_pb(c: &CheckpointInfo) -> pb::Checkpoint {
    pb::Checkpoint { step: c.step, bytes: c.bytes, created_ms: c.created_ms }
}

pub fn layer_to_pb(s: &LayerStats) -> pb::LayerStats {
    pb::LayerStats {
        grad_norm: s.grad_norm,
        bias_grad_norm: s.bias_grad_norm,
        err_norm: s.err_norm,
        grad_mean_abs: s.grad_mean_abs,
        grad_max_abs: s.grad_max_abs,
        weight_norm: s.weight_norm,
        update_ratio: s.update_ratio,
        act_mean: s.act_mean,
        act_std: s.act_std,
        saturated: s.saturated,
        dead: s.dead,
        nonfinite: s.nonfinite,
    }
}

pub fn histogram_to_pb(h: &Histogram) -> pb::Histogram {
    pb::Histogram {
        log10_lo: Histogram::LOG10_LO,
        per_decade: Histogram::PER_DECADE as u32,
        counts: h.counts.clone(),
        zeros: h.zeros,
        underflow: h.underflow,
        overflow: h.overflow,
        nonfinite: h.nonfinite,
    }
}

pub fn step_to_pb(r: &StepRecord) -> pb::StepEvent {
    pb::StepEvent {
        step: r.step,
        loss: r.loss,
        accuracy: r.accuracy,
        lr: r.lr,
        grad_norm: r.grad_norm,
        layers: r.layers.iter().map(layer_to_pb).collect(),
        histograms: r.histograms.iter().map(histogram_to_pb).collect(),
    }
}

pub fn eval_to_pb(e: &EvalRecord) -> pb::EvalEvent {
    pb::EvalEvent { step: e.step, test_loss: e.test_loss, test_accuracy: e.test_accuracy }
}

pub fn progress_to_pb(ev: &LiveEvent) -> pb::Progress {
    use pb::progress::Event;
    let event = match ev {
        LiveEvent::Step(s) => Event::Step(step_to_pb(s)),
        LiveEvent::Eval(e) => Event::Eval(eval_to_pb(e)),
        LiveEvent::State(j) => Event::Job(job_to_pb(j)),
    };
    pb::Progress { event: Some(event) }
}

/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 50;

pub fn list_request(r: &pb::ListJobsRequest) -> Result<(JobFilter, Order, PageRequest), FieldError> {
    let states = r.states.iter().map(|&s| state_from_pb("states", s)).collect::<Result<Vec<_>, _>>()?;
    let activation = parse::<Activation>("activation", &r.activation)?.map(|a| a.to_string());
    if let (Some(lo), Some(hi)) = (r.min_depth, r.max_depth)
        && lo > hi
    {
        return Err(FieldError::new("min_depth", format!("{lo} is above max_depth {hi}")));
    }
    let label = match r.label.trim() {
        "" => None,
        l => Some(match l.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (l.to_string(), None),
        }),
    };
    if r.page_size > MAX_PAGE_SIZE {
        return Err(FieldError::new("page_size", format!("{} exceeds the limit {MAX_PAGE_SIZE}", r.page_size)));
    }
    let filter = JobFilter {
        states,
        activation,
        min_depth: r.min_depth,
        max_depth: r.max_depth,
        label,
        verdict: verdict_from_pb("verdict", r.verdict)?,
        name_contains: Some(r.name_contains.clone()).filter(|n| !n.is_empty()),
        sweep_id: r.sweep_id,
        finished_before_ms: r.finished_before_ms,
        without_label: None,
        conditions: filter::parse(&r.filter, now_ms()).map_err(|e| FieldError::new("filter", e.to_string()))?,
    };
    let order = match r.sort_by.trim() {
        "" if r.oldest_first => Order::OLDEST_FIRST,
        "" => Order::NEWEST_FIRST,
        key => {
            Order { key: key.parse::<SortKey>().map_err(|e| FieldError::new("sort_by", e))?, descending: r.descending }
        }
    };
    let size = if r.page_size == 0 { DEFAULT_PAGE_SIZE } else { r.page_size };
    let token = Some(r.page_token.clone()).filter(|t| !t.is_empty());
    Ok((filter, order, PageRequest { size, token }))
}

pub fn history_query(r: &pb::HistoryRequest) -> Result<HistoryQuery, FieldError> {
    if let (Some(a), Some(b)) = (r.from_step, r.to_step)
        && a > b
    {
        return Err(FieldError::new("from_step", format!("{a} is after to_step {b}")));
    }
    Ok(HistoryQuery {
        layers: Some(r.layers.clone()).filter(|l| !l.is_empty()),
        metrics: Some(r.metrics.clone()).filter(|m| !m.is_empty()),
        from_step: r.from_step,
        to_step: r.to_step,
        max_points: Some(r.max_points).filter(|&m| m > 0),
    })
}

pub fn histogram_query(r: &pb::HistogramsRequest) -> Result<HistogramQuery, FieldError> {
    if let (Some(a), Some(b)) = (r.from_step, r.to_step)
        && a > b
    {
        return Err(FieldError::new("from_step", format!("{a} is after to_step {b}")));
    }
    Ok(HistogramQuery {
        layers: Some(r.layers.clone()).filter(|l| !l.is_empty()),
        from_step: r.from_step,
        to_step: r.to_step,
        max_steps: Some(r.max_steps).filter(|&m| m > 0),
    })
}

pub fn histograms_to_pb(job: i64, h: &HistogramSeries) -> pb::Histograms {
    pb::Histograms {
        job_id: job,
        steps: h.steps.clone(),
        layers: h
            .layers
            .iter()
            .map(|(l, hs)| pb::LayerHistograms { layer: *l, histograms: hs.iter().map(histogram_to_pb).collect() })
            .collect(),
    }
}

pub fn history_to_pb(job: i64, h: HistoryResult) -> pb::History {
    pb::History {
        job_id: job,
        series: h.series.into_iter().map(series_to_pb).collect(),
        evals: h.evals.iter().map(eval_to_pb).collect(),
    }
}

pub fn history_piece_to_pb(job: i64, p: HistoryPiece) -> pb::HistoryChunk {
    pb::HistoryChunk {
        job_id: job,
        layer: p.layer,
        steps: p.steps,
        columns: p
            .columns
            .into_iter()
            .map(|c| pb::Column { metric: c.metric.to_string(), values: c.values, min: c.min, max: c.max })
            .collect(),
        evals: p.evals.iter().map(eval_to_pb).collect(),
        downsampled: p.downsampled,
    }
}

fn series_to_pb(s: Series) -> pb::Series {
    pb::Series { layer: s.layer, metric: s.metric, steps: s.steps, values: s.values, min: s.min, max: s.max }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_take_defaults_and_round_trip() {
        let spec = job_spec(&pb::JobSpec::default()).unwrap();
        assert_eq!(spec, JobSpec::default());
        let custom = JobSpec { init: Init::Custom { sigma_w: 1.5, sigma_b: 0.1 }, ..JobSpec::default() };
        assert_eq!(job_spec(&job_spec_to_pb(&custom)).unwrap(), custom);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (pb::JobSpec { activation: "swishy".into(), ..Default::default() }, "activation"),
            (pb::JobSpec { depth: Some(0), ..Default::default() }, "depth"),
            (pb::JobSpec { width: Some(0), ..Default::default() }, "width"),
            (pb::JobSpec { hidden: vec![4], depth: Some(2), ..Default::default() }, "hidden"),
            (pb::JobSpec { lr: Some(-1.0), ..Default::default() }, "lr"),
            (pb::JobSpec { lr: Some(f64::INFINITY), ..Default::default() }, "lr"),
            (pb::JobSpec { init: "he_normal".into(), sigma_w: Some(1.0), ..Default::default() }, "init"),
            (pb::JobSpec { dataset: "csv:".into(), ..Default::default() }, "dataset"),
            (pb::JobSpec { optimizer: "adam:2".into(), ..Default::default() }, "optimizer"),
        ];
        for (p, field) in cases {
            assert_eq!(job_spec(&p).unwrap_err().field, field);
        }
    }
}
