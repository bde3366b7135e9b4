//! A job's gradient histograms over time, thinned to a number of steps a chart can show: what
//! `GetHistograms` and the dashboard read.

use super::lineage::Lineage;
use super::model::{JobId, Store, StoreError};
use crate::engine::stats::Histogram;

/// Which histograms to read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramQuery {
    /// Layer indices; None: every layer.
    pub layers: Option<Vec<u32>>,
    /// Inclusive step range.
    pub from_step: Option<u64>,
    pub to_step: Option<u64>,
    /// At most this many recorded steps, evenly spread over those stored (first and last kept);
    /// None or 0: every one.
    pub max_steps: Option<u32>,
}

/// Histograms at `steps[i]`: `layers[j].1[i]` is layer `layers[j].0`'s.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSeries {
    pub steps: Vec<u64>,
    pub layers: Vec<(u32, Vec<Histogram>)>,
}

/// The indices of at most `n` of `len` items, evenly spread, first and last included.
fn spread(len: usize, n: usize) -> Vec<usize> {
    if n == 0 || len <= n {
        return (0..len).collect();
    }
    if n == 1 {
        return vec![len - 1];
    }
    let mut out: Vec<usize> = (0..n).map(|k| k * (len - 1) / (n - 1)).collect();
    out.dedup();
    out
}

pub async fn read<S: Store + ?Sized>(store: &S, id: JobId, q: &HistogramQuery) -> Result<HistogramSeries, StoreError> {
    let lo = q.from_step.unwrap_or(0);
    let hi = q.to_step.unwrap_or(u64::MAX);
    if lo > hi {
        return Err(StoreError::Invalid(format!("from_step {lo} is after to_step {hi}")));
    }
    let (meta, lineage) = Lineage::read(store, id).await?;
    let n_layers = meta.n_layers.unwrap_or(meta.depth + 1);
    let layers: Vec<u32> = match &q.layers {
        None => (0..n_layers as u32).collect(),
        Some(ls) => {
            if let Some(&bad) = ls.iter().find(|&&l| l as usize >= n_layers) {
                return Err(StoreError::Invalid(format!("layer {bad} out of range: job {id} has {n_layers} layers")));
            }
            ls.clone()
        }
    };
    let stored = lineage.read_histograms(store, lo, hi).await?;
    let keep = spread(stored.len(), q.max_steps.unwrap_or(0) as usize);
    let mut out = HistogramSeries { steps: Vec::with_capacity(keep.len()), layers: Vec::new() };
    out.layers = layers.iter().map(|&l| (l, Vec::with_capacity(keep.len()))).collect();
    for i in keep {
        let (step, hists) = &stored[i];
        out.steps.push(*step);
        for (l, col) in &mut out.layers {
            let h = hists.get(*l as usize).ok_or_else(|| StoreError::Corrupt {
                job: id,
                problem: format!("step {step} has histograms of {} layers, not of layer {l}", hists.len()),
            })?;
            col.push(h.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_keeps_the_ends_and_thins_evenly() {
        assert_eq!(spread(5, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(5, 9), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(101, 5), vec![0, 25, 50, 75, 100]);
        assert_eq!(spread(10, 1), vec![9]);
        assert_eq!(spread(10, 2), vec![0, 9]);
        assert!(spread(0, 3).is_empty());
    }
}
