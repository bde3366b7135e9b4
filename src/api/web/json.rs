//! The JSON the dashboard reads: the domain records as serde writes them, plus series whose
//! non-finite values are written "NaN", "inf" and "-inf" (JSON has no such numbers, and an
//! exploding layer's inf must not read as a gap).

use serde::Serialize;

use crate::engine::train::EvalRecord;
use crate::runner::{Series, SweepRecord, SweepState};

#[derive(Serialize)]
pub struct SeriesJson<'a> {
    pub layer: Option<u32>,
    pub metric: &'a str,
    pub steps: &'a [u64],
    #[serde(serialize_with = "crate::engine::nonfinite::vec::serialize")]
    pub values: &'a [f64],
    #[serde(serialize_with = "crate::engine::nonfinite::vec::serialize")]
    pub min: &'a [f64],
    #[serde(serialize_with = "crate::engine::nonfinite::vec::serialize")]
    pub max: &'a [f64],
}

pub fn series(s: &[Series]) -> Vec<SeriesJson<'_>> {
    s.iter()
        .map(|s| SeriesJson {
            layer: s.layer,
            metric: &s.metric,
            steps: &s.steps,
            values: &s.values,
            min: &s.min,
            max: &s.max,
        })
        .collect()
}

#[derive(Serialize)]
pub struct EvalJson {
    pub step: u64,
    #[serde(serialize_with = "crate::engine::nonfinite::serialize")]
    pub test_loss: f64,
    #[serde(serialize_with = "crate::engine::nonfinite::serialize")]
    pub test_accuracy: f64,
}

pub fn evals(e: &[EvalRecord]) -> Vec<EvalJson> {
    e.iter().map(|e| EvalJson { step: e.step, test_loss: e.test_loss, test_accuracy: e.test_accuracy }).collect()
}

/// A sweep with the state its counts give.
#[derive(Serialize)]
pub struct SweepJson<'a> {
    #[serde(flatten)]
    pub record: &'a SweepRecord,
    pub state: SweepState,
}

pub fn sweep(record: &SweepRecord) -> SweepJson<'_> {
    SweepJson { record, state: record.state() }
}
