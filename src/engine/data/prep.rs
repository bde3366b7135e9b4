//! Train/test splitting and feature standardization.

use ndarray::{Array1, Array2, Axis, Zip};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{DataError, Dataset};

/// A dataset cut in two; both halves keep the full class count.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
    /// What [`standardize`] applied to both halves, once it has.
    pub standardization: Option<Standardization>,
}

/// A per-feature affine map, `x -> (x - mean) * scale`: how [`standardize`] maps a raw example
/// to the network's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardization {
    pub mean: Array1<f64>,
    pub scale: Array1<f64>,
}

impl Standardization {
    /// The map that standardizes `x`'s columns: mean and (population) standard deviation,
    /// accumulated in f64; a constant column (std 0) is only centred.
    pub fn of(x: &Array2<f32>) -> Self {
        let n = x.nrows().max(1) as f64;
        let mut mean = Array1::<f64>::zeros(x.ncols());
        for row in x.rows() {
            Zip::from(&mut mean).and(&row).for_each(|m, &v| *m += v as f64);
        }
        mean /= n;
        let mut var = Array1::<f64>::zeros(x.ncols());
        for row in x.rows() {
            Zip::from(&mut var).and(&row).and(&mean).for_each(|s, &v, &m| *s += (v as f64 - m).powi(2));
        }
        let scale = var.mapv(|s| {
            let std = (s / n).sqrt();
            if std > 0.0 && std.is_finite() { 1.0 / std } else { 1.0 }
        });
        Standardization { mean, scale }
    }

    /// Maps the rows of `x` (one example each) in place.
    pub fn apply(&self, x: &mut Array2<f32>) {
        for mut row in x.rows_mut() {
            Zip::from(&mut row)
                .and(&self.mean)
                .and(&self.scale)
                .for_each(|v, &m, &s| *v = ((*v as f64 - m) * s) as f32);
        }
    }
}

fn take(ds: &Dataset, rows: &[usize], part: &str) -> Dataset {
    Dataset {
        name: format!("{}[{part}]", ds.name),
        features: ds.features.select(Axis(0), rows),
        labels: rows.iter().map(|&i| ds.labels[i]).collect(),
        classes: ds.classes,
    }
}

/// Shuffles the rows with a ChaCha8 stream seeded by `seed` and puts the first
/// `round(n * test_fraction)` (at least 1, at most n - 1) in `test`, the rest in `train`.
/// Not stratified. Errors if `test_fraction` is not strictly between 0 and 1 or `n < 2`.
pub fn split(ds: Dataset, test_fraction: f64, seed: u64) -> Result<Split, DataError> {
    let (_, n_test) = split_sizes(&ds, test_fraction)?;
    let mut order: Vec<usize> = (0..ds.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (test_rows, train_rows) = order.split_at(n_test);
    Ok(Split { train: take(&ds, train_rows, "train"), test: take(&ds, test_rows, "test"), standardization: None })
}

/// The (train, test) sizes [`split`] gives `ds`, without splitting it.
pub fn split_sizes(ds: &Dataset, test_fraction: f64) -> Result<(usize, usize), DataError> {
    let bad = |problem: String| DataError::Split { name: ds.name.clone(), problem };
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(bad(format!("test fraction {test_fraction} is not strictly between 0 and 1")));
    }
    let n = ds.len();
    if n < 2 {
        return Err(bad(format!("{n} samples; need at least 2")));
    }
    let n_test = ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1);
    Ok((n - n_test, n_test))
}

/// Standardizes every feature with the mean and (population) standard deviation of the
/// *training* half, applied to both halves ([`Standardization::of`]).
pub fn standardize(split: &mut Split) {
    let map = Standardization::of(&split.train.features);
    map.apply(&mut split.train.features);
    map.apply(&mut split.test.features);
    split.standardization = Some(map);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::data::DatasetSpec;

    #[test]
    fn split_sizes_and_determinism() {
        let ds = "gaussian:dim=3,n=101".parse::<DatasetSpec>().unwrap().load(1).unwrap();
        let a = split(ds.clone(), 0.2, 5).unwrap();
        assert_eq!((a.train.len(), a.test.len()), (81, 20));
        assert_eq!(a.train.features.shape(), &[81, 3]);
        assert_eq!(a.train.classes, 10);
        assert_eq!(a, split(ds.clone(), 0.2, 5).unwrap());
        assert_ne!(a.test.labels, split(ds.clone(), 0.2, 6).unwrap().test.labels);
        // Rows stay paired with their labels, and every row is used once.
        let mut seen: Vec<u32> = Vec::new();
        for part in [&a.train, &a.test] {
            for (row, &l) in part.features.rows().into_iter().zip(&part.labels) {
                let i = (0..ds.len()).find(|&i| ds.features.row(i) == row).unwrap();
                assert_eq!(ds.labels[i], l);
                seen.push(i as u32);
            }
        }
        seen.sort();
        assert_eq!(seen, (0..101).collect::<Vec<u32>>());
        // Extremes clamp to keep both halves non-empty.
        let t = split(ds.clone(), 0.001, 0).unwrap();
        assert_eq!(t.test.len(), 1);
        assert!(split(ds.clone(), 0.0, 0).is_err());
        assert!(split(ds.clone(), 1.0, 0).is_err());
        let e = split(ds, f64::NAN, 0).unwrap_err().to_string();
        assert!(e.contains("NaN"), "{e}");
    }

    #[test]
    fn standardize_uses_train_stats_and_handles_constants() {
        let mut ds = "blobs:dim=4,classes=3,n=200,spread=2".parse::<DatasetSpec>().unwrap().load(2).unwrap();
        ds.features.column_mut(2).fill(3.5);
        ds.features.column_mut(0).mapv_inplace(|x| 100.0 + 10.0 * x);
        let mut s = split(ds, 0.25, 9).unwrap();
        let test_before = s.test.features.clone();
        standardize(&mut s);
        for j in 0..4 {
            let col = s.train.features.column(j);
            let mean = col.iter().map(|&x| x as f64).sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(mean.abs() < 1e-5, "col {j}: mean {mean}");
            if j == 2 {
                assert!(col.iter().all(|&x| x == 0.0));
            } else {
                assert!((var.sqrt() - 1.0).abs() < 1e-4, "col {j}: std {}", var.sqrt());
            }
        }
        assert!(s.train.features.iter().chain(&s.test.features).all(|x| x.is_finite()));
        assert!(s.test.features.column(2).iter().all(|&x| x == 0.0));
        // Test data was transformed with the same affine map, not with its own statistics.
        let a = s.test.features.column(0);
        let b = test_before.column(0);
        let slope = (a[1] - a[0]) / (b[1] - b[0]);
        for i in 2..a.len() {
            let pred = a[0] + slope * (b[i] - b[0]);
            assert!((a[i] - pred).abs() < 1e-3, "{i}");
        }
    }
}
