//! A job's history read in bounded pieces: what `StreamHistory` streams, what `GetHistory`
//! collects into one answer, and what the dashboard and the Python client read. One reader for
//! every client: the query's checks, its ranges and the min/max downsampling live here only.
//!
//! A read goes series group by series group (the step scalars first, then each queried layer in
//! the query's order) and, within a group, window by window of steps: each window is one
//! [`Store::read_series`] call of at most [`PIECE_VALUES`] values and becomes one piece with
//! every requested metric at those steps. Memory on the server is one window, whatever the
//! job's length; a stream's receiver that stops reading stops the read (bounded channel).
//!
//! The read covers the steps stored when it starts (`steps_done` then): a job still training
//! gives a consistent prefix. Downsampled, the buckets are fixed by the queried range (see
//! `downsample`), a window hands on the buckets it completed, and the last is handed on at the
//! end of the group.

use tokio::sync::mpsc;

use super::downsample::Downsampler;
use super::lineage::Lineage;
use super::model::{HistoryMeta, HistoryQuery, HistoryResult, JobId, Series, Store, StoreError};
use crate::engine::stats::LayerStats;
use crate::engine::train::{EvalRecord, StepRecord};
use crate::store::{CHUNK_STEPS, STEP_METRICS};

/// Values (steps x metrics, x3 with min and max when downsampled) one piece holds at most:
/// about 0.5 MB of f64 on the wire, well under gRPC's 4 MB default message size.
pub const PIECE_VALUES: usize = 64 * 1024;

/// One metric's values in a piece. `min` and `max` are empty at full resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct PieceColumn {
    pub metric: &'static str,
    pub values: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

/// A run of steps of one series group, every requested metric at those steps; or, at the end
/// of a read, evaluations (`steps` and `columns` empty). A group with no stored rows still gets
/// one piece, with no steps, naming its metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPiece {
    /// None: the step scalars (loss, accuracy, lr, global_grad_norm).
    pub layer: Option<u32>,
    pub steps: Vec<u64>,
    pub columns: Vec<PieceColumn>,
    pub evals: Vec<EvalRecord>,
    pub downsampled: bool,
}

/// Which metrics a history query names, split by where they are stored: (step-scalar columns,
/// layer columns), duplicates dropped, in the query's order.
pub(super) fn parse_metrics(names: Option<&[String]>) -> Result<(Vec<usize>, Vec<usize>), StoreError> {
    let Some(names) = names else {
        return Ok(((0..STEP_METRICS.len()).collect(), (0..LayerStats::METRICS.len()).collect()));
    };
    let (mut step, mut layer) = (Vec::new(), Vec::new());
    for name in names {
        if let Some(i) = STEP_METRICS.iter().position(|m| m == name) {
            if !step.contains(&i) {
                step.push(i);
            }
        } else if let Some(i) = LayerStats::METRICS.iter().position(|m| m == name) {
            if !layer.contains(&i) {
                layer.push(i);
            }
        } else {
            let known: Vec<&str> = STEP_METRICS.iter().chain(LayerStats::METRICS.iter()).copied().collect();
            return Err(StoreError::Invalid(format!("unknown metric {name:?}; known: {}", known.join(", "))));
        }
    }
    Ok((step, layer))
}

/// A checked query: the groups to read, in order, and the step range.
struct Plan {
    /// (None: step scalars | Some(layer), the columns to read).
    groups: Vec<(Option<u32>, Vec<usize>)>,
    lo: u64,
    /// The last step to read: the query's end, clipped to what was stored when the read began.
    hi: Option<u64>,
    /// The query's end clipped to the stored steps: where the buckets end.
    bucket_hi: u64,
    max_points: Option<u32>,
}

/// Checks a query against a job, as a read would, without reading.
pub fn check(id: JobId, meta: &HistoryMeta, query: &HistoryQuery) -> Result<(), StoreError> {
    plan(id, meta, query).map(|_| ())
}

fn plan(id: JobId, meta: &HistoryMeta, query: &HistoryQuery) -> Result<Plan, StoreError> {
    let (step_cols, layer_cols) = parse_metrics(query.metrics.as_deref())?;
    let lo = query.from_step.unwrap_or(0);
    let hi = query.to_step.unwrap_or(u64::MAX);
    if lo > hi {
        return Err(StoreError::Invalid(format!("from_step {lo} is after to_step {hi}")));
    }
    let n_layers = meta.n_layers.unwrap_or(meta.depth + 1);
    let mut layers: Vec<u32> = Vec::new();
    match &query.layers {
        None => layers.extend((0..n_layers).map(|l| l as u32)),
        Some(ls) => {
            for &l in ls {
                if l as usize >= n_layers {
                    return Err(StoreError::Invalid(format!("layer {l} out of range: job {id} has {n_layers} layers")));
                }
                if !layers.contains(&l) {
                    layers.push(l);
                }
            }
        }
    }
    let mut groups = Vec::new();
    if !step_cols.is_empty() {
        groups.push((None, step_cols));
    }
    if !layer_cols.is_empty() {
        groups.extend(layers.into_iter().map(|l| (Some(l), layer_cols.clone())));
    }
    let stored_hi = meta.steps_done.checked_sub(1);
    Ok(Plan {
        groups,
        lo,
        hi: stored_hi.map(|s| s.min(hi)).filter(|&h| h >= lo),
        bucket_hi: hi.min(meta.steps_done.saturating_sub(1)),
        max_points: query.max_points.filter(|&p| p > 0),
    })
}

fn metric_name(layer: Option<u32>, c: usize) -> &'static str {
    if layer.is_some() { LayerStats::METRICS[c] } else { STEP_METRICS[c] }
}

/// Reads job `id`'s history for `query`, sending each piece into `tx` in order; stops early,
/// with `Ok`, when the receiver hangs up. A bounded `tx` holds the read to its reader's pace.
pub async fn read<S: Store + ?Sized>(
    store: &S,
    id: JobId,
    query: &HistoryQuery,
    tx: &mpsc::Sender<HistoryPiece>,
) -> Result<(), StoreError> {
    read_bucketed(store, id, query, None, tx).await
}

/// As [`read`], with the buckets spanning `[from_step, bucket_hi]` instead of the stored range:
/// a live view fixes them over the whole planned run, so the stored part it reads first and
/// the steps that follow fall into the same buckets.
pub async fn read_bucketed<S: Store + ?Sized>(
    store: &S,
    id: JobId,
    query: &HistoryQuery,
    bucket_hi: Option<u64>,
    tx: &mpsc::Sender<HistoryPiece>,
) -> Result<(), StoreError> {
    let sink = async |p: HistoryPiece| tx.send(p).await.is_ok();
    let (meta, lineage) = Lineage::read(store, id).await?;
    let mut plan = plan(id, &meta, query)?;
    if let Some(b) = bucket_hi {
        plan.bucket_hi = b;
    }
    let downsampled = plan.max_points.is_some();
    for (layer, cols) in &plan.groups {
        let layer = *layer;
        let names: Vec<&'static str> = cols.iter().map(|&c| metric_name(layer, c)).collect();
        let piece = |steps: Vec<u64>, columns: Vec<PieceColumn>| HistoryPiece {
            layer,
            steps,
            columns,
            evals: Vec::new(),
            downsampled,
        };
        let mut buckets: Option<Vec<Downsampler>> = plan.max_points.map(|p| {
            names
                .iter()
                .map(|m| {
                    let s = Series { layer, metric: m.to_string(), ..Default::default() };
                    Downsampler::new(s, plan.lo, plan.bucket_hi, p)
                })
                .collect()
        });
        let window = read_window(cols.len(), plan.max_points);
        let mut sent = false;
        let mut from = plan.lo;
        while let Some(hi) = plan.hi.filter(|&h| from <= h) {
            let rows = lineage.read_series(store, layer, cols, from, hi, window).await?;
            let Some(&last) = rows.steps.last() else { break };
            let out = match &mut buckets {
                None => {
                    let columns = names
                        .iter()
                        .zip(rows.columns)
                        .map(|(m, values)| PieceColumn { metric: m, values, min: Vec::new(), max: Vec::new() })
                        .collect();
                    Some(piece(rows.steps, columns))
                }
                Some(ds) => {
                    for (d, values) in ds.iter_mut().zip(&rows.columns) {
                        d.push_all(&rows.steps, values);
                    }
                    done_piece(ds.iter_mut().map(Downsampler::take_done).collect(), &piece)
                }
            };
            if let Some(p) = out {
                sent = true;
                if !sink(p).await {
                    return Ok(());
                }
            }
            if last >= hi {
                break;
            }
            from = last + 1;
        }
        if let Some(ds) = buckets
            && let Some(p) = done_piece(ds.into_iter().map(Downsampler::finish).collect(), &piece)
        {
            sent = true;
            if !sink(p).await {
                return Ok(());
            }
        }
        if !sent {
            let empty = names
                .iter()
                .map(|m| PieceColumn { metric: m, values: Vec::new(), min: Vec::new(), max: Vec::new() })
                .collect();
            if !sink(piece(Vec::new(), empty)).await {
                return Ok(());
            }
        }
    }
    // Each window is its own query: a job deleted during the read would end it early and
    // quietly. Whole or gone: a job that went meanwhile makes the read fail.
    store.history_meta(id).await?;
    let hi = query.to_step.unwrap_or(u64::MAX);
    let evals: Vec<EvalRecord> =
        lineage.read_evals(store, plan.lo).await?.into_iter().take_while(|e| e.step <= hi).collect();
    for part in evals.chunks(PIECE_VALUES / 3) {
        let p = HistoryPiece { layer: None, steps: Vec::new(), columns: Vec::new(), evals: part.to_vec(), downsampled };
        if !sink(p).await {
            return Ok(());
        }
    }
    Ok(())
}

/// Rows one `read_series` call of a group reads: as many as one piece may carry; a downsampled
/// read whose whole answer fits one piece reads wider windows (they bound only the memory
/// held), which saves queries. Whole chunks where possible: a window that ends inside a chunk
/// makes the next one decode that chunk again.
fn read_window(ncols: usize, max_points: Option<u32>) -> usize {
    let w = match max_points {
        Some(p) if (p as usize).saturating_mul(ncols * 3) <= PIECE_VALUES => WIDE_WINDOW,
        Some(_) => PIECE_VALUES / (ncols * 3),
        None => PIECE_VALUES / ncols,
    };
    if w >= CHUNK_STEPS { w - w % CHUNK_STEPS } else { w.max(1) }
}

/// Rows of a wide window: 32 chunks (1.5 MB for 12 metrics).
const WIDE_WINDOW: usize = 32 * CHUNK_STEPS;

/// Downsampled series of one group (same buckets, so the same steps) as one piece, if any
/// bucket is complete.
fn done_piece(
    series: Vec<Series>,
    piece: &impl Fn(Vec<u64>, Vec<PieceColumn>) -> HistoryPiece,
) -> Option<HistoryPiece> {
    let steps = series.first()?.steps.clone();
    if steps.is_empty() {
        return None;
    }
    let columns = series
        .into_iter()
        .map(|s| PieceColumn { metric: metric_static(&s.metric), values: s.values, min: s.min, max: s.max })
        .collect();
    Some(piece(steps, columns))
}

/// The static name of a metric that a plan produced.
fn metric_static(name: &str) -> &'static str {
    STEP_METRICS.iter().chain(LayerStats::METRICS.iter()).find(|m| **m == name).copied().unwrap_or("")
}

/// The whole answer at once (`GetHistory`): the pieces put back together into one series per
/// (layer, metric), in read order; at full resolution `min` and `max` repeat the values.
pub async fn collect<S: Store + ?Sized>(
    store: &S,
    id: JobId,
    query: &HistoryQuery,
) -> Result<HistoryResult, StoreError> {
    let mut out = HistoryResult::default();
    // Groups arrive one after the other: the open group's series are the last ones.
    let mut open: Option<Option<u32>> = None;
    let (tx, mut rx) = mpsc::channel(2);
    let reading = async move { read(store, id, query, &tx).await };
    let gathering = async {
        while let Some(p) = rx.recv().await {
            gather(&mut out, &mut open, p);
        }
    };
    let (res, ()) = tokio::join!(reading, gathering);
    res?;
    Ok(out)
}

fn gather(out: &mut HistoryResult, open: &mut Option<Option<u32>>, p: HistoryPiece) {
    {
        out.evals.extend(p.evals);
        if p.columns.is_empty() {
            return;
        }
        if *open != Some(p.layer) {
            *open = Some(p.layer);
            for c in &p.columns {
                out.series.push(Series { layer: p.layer, metric: c.metric.to_string(), ..Default::default() });
            }
        }
        let k = p.columns.len();
        let n = out.series.len();
        for (s, c) in out.series[n - k..].iter_mut().zip(p.columns) {
            s.steps.extend_from_slice(&p.steps);
            if p.downsampled {
                s.min.extend(c.min);
                s.max.extend(c.max);
            } else {
                s.min.extend_from_slice(&c.values);
                s.max.extend_from_slice(&c.values);
            }
            s.values.extend(c.values);
        }
    }
}

/// Whole recorded steps from `from_step`, at most `limit` (what watchers replay): the step
/// scalars first, then each layer over the same steps, then their histograms.
pub async fn read_steps<S: Store + ?Sized>(
    store: &S,
    id: JobId,
    from_step: u64,
    limit: usize,
) -> Result<Vec<StepRecord>, StoreError> {
    let (meta, lineage) = Lineage::read(store, id).await?;
    if limit == 0 || from_step >= meta.steps_done {
        return Ok(Vec::new());
    }
    let all_scalars: Vec<usize> = (0..STEP_METRICS.len()).collect();
    let scalars = lineage.read_series(store, None, &all_scalars, from_step, u64::MAX, limit).await?;
    let mut out: Vec<StepRecord> = (0..scalars.steps.len())
        .map(|i| StepRecord {
            step: scalars.steps[i],
            loss: scalars.columns[0][i],
            accuracy: scalars.columns[1][i],
            lr: scalars.columns[2][i],
            grad_norm: scalars.columns[3][i],
            layers: Vec::new(),
            histograms: Vec::new(),
        })
        .collect();
    let (Some(first), Some(last)) = (out.first().map(|r| r.step), out.last().map(|r| r.step)) else {
        return Ok(out);
    };
    let corrupt = |problem: String| StoreError::Corrupt { job: id, problem };
    let n_layers = meta.n_layers.ok_or_else(|| corrupt("steps stored without a layer count".into()))?;
    let all_metrics: Vec<usize> = (0..LayerStats::METRICS.len()).collect();
    for layer in 0..n_layers {
        let rows = lineage.read_series(store, Some(layer as u32), &all_metrics, first, last, out.len()).await?;
        if rows.steps != scalars.steps {
            // Deleted between the two reads: the job is gone, not corrupt.
            store.history_meta(id).await?;
            return Err(corrupt(format!("layer {layer}'s steps differ from the step series' in {first}..={last}")));
        }
        for (i, rec) in out.iter_mut().enumerate() {
            let v: [f64; 12] = std::array::from_fn(|c| rows.columns[c][i]);
            rec.layers.push(LayerStats::from_values(&v).map_err(corrupt)?);
        }
    }
    for (step, hists) in lineage.read_histograms(store, first, last).await? {
        let at = out
            .binary_search_by_key(&step, |r| r.step)
            .map_err(|_| corrupt(format!("histograms at step {step}, which has no record")))?;
        out[at].histograms = hists;
    }
    Ok(out)
}
