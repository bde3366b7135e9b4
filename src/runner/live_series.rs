//! A job's chosen series, downsampled, stored part first and then live: what a dashboard
//! chart draws while the job trains.
//!
//! The buckets are fixed by the whole planned run (`from_step` to `to_step`, by default the
//! spec's last step), not by what is stored yet, so a chart's x axis and every bucket stay put
//! as the job grows. The complete buckets already stored are read by the history reader
//! ([`history::read_bucketed`], the same columnar read and downsampler as `GetHistory`); from
//! the first step of the bucket still filling on, the job is watched (`watch`: replay, then
//! live, no gap, no duplicate) and every step goes into the same downsamplers. Each complete
//! bucket is sent once; the bucket still filling is sent as it stands (`partial`) with every
//! burst, replaced by the next.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::downsample::Downsampler;
use super::history::{self, HistoryPiece};
use super::live::{LiveEvent, Registry};
use super::model::{HistoryMeta, HistoryQuery, JobId, JobRecord, Series, Store, StoreError};
use super::{RunnerError, watch};
use crate::engine::stats::LayerStats;
use crate::engine::train::{EvalRecord, StepRecord};
use crate::store::STEP_METRICS;

/// What a series watcher receives, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesEvent {
    /// The job: first, then after every state change.
    Job(Arc<JobRecord>),
    /// `done`: complete buckets to append to their series (each sent once, in step order);
    /// `partial`: the bucket still filling of some series (at most one point each), replacing
    /// the one sent before.
    Points {
        done: Vec<Series>,
        partial: Vec<Series>,
    },
    Evals(Vec<EvalRecord>),
}

/// Steps a burst takes at most before it is sent: a job far ahead of its watcher is sent in
/// bounded messages.
const BURST_STEPS: usize = 4096;

type Tx = mpsc::Sender<Result<SeriesEvent, RunnerError>>;

/// One series being bucketed from whole step records.
struct Column {
    layer: Option<u32>,
    /// Index into the step scalars (`layer: None`) or `LayerStats::METRICS`.
    metric: usize,
    ds: Downsampler,
}

impl Column {
    fn value(&self, s: &StepRecord) -> Option<f64> {
        match self.layer {
            None => Some([s.loss, s.accuracy, s.lr, s.grad_norm][self.metric]),
            Some(l) => s.layers.get(l as usize).map(|st| st.values()[self.metric]),
        }
    }
}

/// Streams job `id`'s series for `query` (`max_points` 0 or unset: every step) into `tx`
/// until the job has ended and everything is sent, or the receiver hangs up.
pub(super) async fn run(store: Arc<dyn Store>, registry: Arc<Registry>, id: JobId, query: HistoryQuery, tx: Tx) {
    if let Err(e) = stream(store, registry, id, query, &tx).await {
        let _ = tx.send(Err(e)).await;
    }
}

/// The request's checks, without reading: unknown job, bad range, unknown metric or layer.
/// The job and its history's shape, as they are now.
pub async fn check(
    store: &dyn Store,
    id: JobId,
    query: &HistoryQuery,
) -> Result<(JobRecord, HistoryMeta), RunnerError> {
    let job = store.get_job(id).await?.ok_or(RunnerError::NotFound(id))?;
    let meta = store.history_meta(id).await?;
    history::check(id, &meta, query)?;
    Ok((job, meta))
}

async fn stream(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    id: JobId,
    mut query: HistoryQuery,
    tx: &Tx,
) -> Result<(), RunnerError> {
    let (job, meta) = check(&*store, id, &query).await?;
    let lo = query.from_step.unwrap_or(0);
    let hi = query.to_step.unwrap_or(job.spec.steps.saturating_sub(1)).max(lo);
    let max_points = query.max_points.filter(|&p| p > 0).unwrap_or(u32::MAX);
    query.from_step = Some(lo);
    query.to_step = Some(hi);
    let (step_cols, layer_cols) = history::parse_metrics(query.metrics.as_deref())?;
    let n_layers = meta.n_layers.unwrap_or(meta.depth + 1) as u32;
    let layers: Vec<u32> = query.layers.clone().unwrap_or_else(|| (0..n_layers).collect());
    let keys = step_cols.iter().map(|&m| (None, m));
    let keys = keys.chain(layers.iter().flat_map(|&l| layer_cols.iter().map(move |&m| (Some(l), m))));
    let mut columns: Vec<Column> = keys
        .map(|(layer, metric)| {
            let name = if layer.is_some() { LayerStats::METRICS[metric] } else { STEP_METRICS[metric] };
            let series = Series { layer, metric: name.to_string(), ..Default::default() };
            Column { layer, metric, ds: Downsampler::new(series, lo, hi, max_points) }
        })
        .collect();
    if tx.send(Ok(SeriesEvent::Job(Arc::new(job)))).await.is_err() {
        return Ok(());
    }

    // The complete buckets stored now, read as GetHistory reads them.
    let live_from = match columns.first() {
        Some(c) if meta.steps_done > lo => c.ds.bucket_start(meta.steps_done.min(hi.saturating_add(1))),
        _ => lo,
    };
    if live_from > lo && !send_stored(&*store, id, &query, live_from - 1, hi, tx).await? {
        return Ok(());
    }

    // The rest through the job's watch: replay from `live_from`, then live.
    let (wtx, mut wrx) = mpsc::channel(watch::REPLAY_CHUNK);
    let watching = watch::run(store, registry, id, live_from, wtx);
    let forwarding = async {
        let mut burst: Vec<LiveEvent> = Vec::new();
        let mut last_state = None;
        while let Some(first) = wrx.recv().await {
            burst.push(first?);
            // Whatever else is waiting goes in the same burst; nothing waits for more.
            while burst.len() < BURST_STEPS {
                match wrx.try_recv() {
                    Ok(ev) => burst.push(ev?),
                    Err(_) => break,
                }
            }
            if !send_burst(&mut columns, std::mem::take(&mut burst), hi, tx, &mut last_state).await {
                return Ok(());
            }
        }
        // The watch has ended (after the job's final state): the last buckets, then that state.
        let done: Vec<Series> = columns.into_iter().map(|c| c.ds.finish()).filter(|s| !s.steps.is_empty()).collect();
        if !done.is_empty() && tx.send(Ok(SeriesEvent::Points { done, partial: Vec::new() })).await.is_err() {
            return Ok(());
        }
        if let Some(rec) = last_state {
            let _ = tx.send(Ok(SeriesEvent::Job(rec))).await;
        }
        Ok::<(), RunnerError>(())
    };
    let ((), fwd) = tokio::join!(watching, forwarding);
    fwd
}

/// Sends the stored steps `[from, to]` downsampled over buckets ending at `bucket_hi`, one
/// event per series group. False once the receiver is gone.
async fn send_stored(
    store: &dyn Store,
    id: JobId,
    query: &HistoryQuery,
    to: u64,
    bucket_hi: u64,
    tx: &Tx,
) -> Result<bool, StoreError> {
    let stored = HistoryQuery { to_step: Some(to), ..query.clone() };
    let (ptx, mut pieces) = mpsc::channel(1);
    let reading = async move { history::read_bucketed(store, id, &stored, Some(bucket_hi), &ptx).await };
    let forwarding = async {
        while let Some(p) = pieces.recv().await {
            if tx.send(Ok(piece_event(p))).await.is_err() {
                return false;
            }
        }
        true
    };
    let (read, open) = tokio::join!(reading, forwarding);
    read?;
    Ok(open)
}

fn piece_event(p: HistoryPiece) -> SeriesEvent {
    if p.columns.is_empty() {
        return SeriesEvent::Evals(p.evals);
    }
    let done = p
        .columns
        .into_iter()
        .map(|c| {
            let (min, max) = if p.downsampled { (c.min, c.max) } else { (c.values.clone(), c.values.clone()) };
            Series { layer: p.layer, metric: c.metric.to_string(), steps: p.steps.clone(), values: c.values, min, max }
        })
        .collect();
    SeriesEvent::Points { done, partial: Vec::new() }
}

/// Buckets a burst of watch events and sends what it completed, the buckets still filling,
/// its evaluations and its state changes (after the steps before them); a terminal state is
/// kept in `last_state`, to go after the last buckets. False once the receiver is gone.
async fn send_burst(
    columns: &mut [Column],
    burst: Vec<LiveEvent>,
    hi: u64,
    tx: &Tx,
    last_state: &mut Option<Arc<JobRecord>>,
) -> bool {
    let mut evals = Vec::new();
    let mut states = Vec::new();
    let mut steps: Vec<u64> = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
    for ev in burst {
        match ev {
            LiveEvent::Step(s) if s.step <= hi => {
                steps.push(s.step);
                for (c, v) in columns.iter().zip(values.iter_mut()) {
                    v.push(c.value(&s).unwrap_or(f64::NAN));
                }
            }
            LiveEvent::Step(_) => {}
            LiveEvent::Eval(e) if e.step <= hi => evals.push(e),
            LiveEvent::Eval(_) => {}
            LiveEvent::State(rec) if rec.state.is_terminal() => *last_state = Some(rec),
            LiveEvent::State(rec) => states.push(rec),
        }
    }
    if !steps.is_empty() {
        for (c, v) in columns.iter_mut().zip(&values) {
            c.ds.push_all(&steps, v);
        }
        let done: Vec<Series> = columns.iter_mut().map(|c| c.ds.take_done()).filter(|s| !s.steps.is_empty()).collect();
        let partial: Vec<Series> = columns.iter().map(|c| c.ds.partial()).filter(|s| !s.steps.is_empty()).collect();
        if tx.send(Ok(SeriesEvent::Points { done, partial })).await.is_err() {
            return false;
        }
    }
    if !evals.is_empty() && tx.send(Ok(SeriesEvent::Evals(evals))).await.is_err() {
        return false;
    }
    for rec in states {
        if tx.send(Ok(SeriesEvent::Job(rec))).await.is_err() {
            return false;
        }
    }
    true
}
