//! The UCI optical digits (test portion), embedded in the binary.
//!
//! Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI Machine
//! Learning Repository. <https://doi.org/10.24432/C50P49> (CC BY 4.0). See `data/README.md`.

use std::path::Path;
use std::sync::OnceLock;

use super::{CsvOptions, DataError, Dataset, LabelColumn, csv};

/// The gzip'd CSV: 1797 rows of 64 pixel counts in 0..=16, then the digit.
static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

pub const ROWS: usize = 1797;
pub const DIM: usize = 64;
pub const CLASSES: usize = 10;

fn parse() -> Result<Dataset, DataError> {
    let name = Path::new("<embedded digits.csv.gz>");
    let bytes = super::gunzip(DIGITS_CSV_GZ).map_err(|source| DataError::Io { path: name.to_path_buf(), source })?;
    let opts = CsvOptions { label: LabelColumn::Last, header: Some(false), classes: Some(CLASSES) };
    let mut ds = csv::parse_csv(&bytes, name, &opts)?;
    assert_eq!(ds.features.dim(), (ROWS, DIM), "embedded digits data changed");
    ds.name = "digits".into();
    Ok(ds)
}

/// The digits dataset (parsed once per process).
pub fn load() -> Result<Dataset, DataError> {
    static CACHE: OnceLock<Dataset> = OnceLock::new();
    if let Some(ds) = CACHE.get() {
        return Ok(ds.clone());
    }
    let ds = parse()?;
    Ok(CACHE.get_or_init(|| ds).clone())
}

#[cfg(test)]
mod tests {
    use crate::engine::data::DatasetSpec;

    #[test]
    fn digits_shape_and_labels() {
        let ds = DatasetSpec::Digits.load(123).unwrap();
        assert_eq!(ds.name, "digits");
        assert_eq!(ds.features.shape(), &[1797, 64]);
        assert_eq!(ds.classes, 10);
        let counts = ds.class_counts();
        assert_eq!(counts.iter().sum::<usize>(), 1797);
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
        assert!(ds.features.iter().all(|&x| (0.0..=16.0).contains(&x) && x.fract() == 0.0));
        assert_eq!(ds.features.iter().cloned().fold(0.0, f32::max), 16.0);
        // First row of the file: 0,0,5,13,9,1,0,0,... label 0.
        assert_eq!(ds.features.row(0).iter().take(4).cloned().collect::<Vec<_>>(), vec![0.0, 0.0, 5.0, 13.0]);
        assert_eq!(ds.labels[0], 0);
        assert_eq!(ds, DatasetSpec::Digits.load(0).unwrap());
    }
}
