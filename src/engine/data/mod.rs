//! Datasets: the embedded UCI digits, seeded synthetic problems, and CSV / IDX files.
//!
//! Every dataset is named by a *spec string*, parsed by [`DatasetSpec`]'s `FromStr` and printed
//! back in canonical form by its `Display` (which parses to the same spec). Loading a spec with
//! a seed ([`DatasetSpec::load`]) gives a [`Dataset`]: an `n x dim` `f32` feature matrix and
//! `n` class indices in `0..classes`. Synthetic datasets are bit-reproducible from the seed
//! (ChaCha8); file datasets ignore it.
//!
//! # Spec grammar
//!
//! ```text
//! spec     := name [":" args]
//! digits                                    UCI optical digits (test part), 1797 x 64, 10 classes
//! gaussian[:dim=64,classes=10,n=256]        i.i.d. N(0,1) inputs, uniformly random labels
//! teacher[:dim=64,classes=10,n=256,depth=3,width=64]
//!                                           N(0,1) inputs labelled by the argmax of a random
//!                                           tanh MLP (depth hidden layers of width units)
//! spirals[:arms=3,n=300,noise=0.05]         2-D interleaved spirals, one class per arm
//! blobs[:dim=64,classes=10,n=256,spread=1]  N(0,I) cluster centres, points centre + spread*N(0,I)
//! csv:PATH[,label=NAME|INDEX|last][,header=true|false|auto]
//!                                           numeric CSV; label column default last (INDEX is
//!                                           0-based); header auto-detected by default
//! idx:IMAGES,LABELS                         MNIST-style IDX files (u8 images [n,rows,cols],
//!                                           u8 labels [n]); features are the pixels as f32
//! ```
//!
//! * Names and keys are case-insensitive; every key of the synthetic datasets is optional
//!   (defaults shown above) and may appear in any order, at most once. An unknown key is an
//!   error naming it and listing the allowed keys; a bad value is an error naming key and value.
//! * Limits: `1 <= n <= 10_000_000`, `1 <= dim <= 100_000`, `2 <= classes <= 100_000`,
//!   `n * dim <= 2^28` values, `2 <= arms <= 1000`, `1 <= depth <= 64`, `1 <= width <= 4096`,
//!   `noise >= 0` and `spread >= 0` finite.
//! * Paths may not contain `,` (it separates the arguments). A CSV column literally named
//!   `last` or a number is selected by its index instead.
//! * CSV: fields are separated by `,`, surrounded by optional whitespace and optional double
//!   quotes (no embedded commas); blank lines are skipped. Every non-label field must be a
//!   finite number. The header is auto-detected: the first row is a header if any of its
//!   non-label fields is not a number (`label=NAME` implies a header), or if its label is the
//!   only non-numeric one of the column (a header of numeric names). Labels that are all
//!   non-negative integers are the class indices themselves (`classes = max + 1`, each must be
//!   below 100 000); any other labels (strings, negative or fractional numbers) are mapped to
//!   `0..K` in sorted order of their distinct values (numeric order if all are numbers, byte
//!   order of the text otherwise).
//! * Files whose name ends in `.gz` or that start with the gzip magic bytes are decompressed.

mod csv;
mod digits;
mod idx;
mod prep;
mod spec;
mod synthetic;

use std::path::{Path, PathBuf};

use ndarray::Array2;

pub use csv::{CsvOptions, parse_csv};
pub use idx::{parse_idx, read_idx};
pub use prep::{Split, Standardization, split, split_sizes, standardize};
pub use spec::{DatasetSpec, LabelColumn};

/// Most samples any dataset may have.
pub const MAX_SAMPLES: usize = 10_000_000;
/// Most features per sample.
pub const MAX_DIM: usize = 100_000;
/// Most classes (and the bound on integer labels used directly as class indices).
pub const MAX_CLASSES: usize = 100_000;
/// Most feature values (`n * dim`) in one dataset: 1 GiB of f32.
pub const MAX_VALUES: usize = 1 << 28;

/// A labelled classification dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The canonical spec it was loaded from (`DatasetSpec`'s `Display`).
    pub name: String,
    /// `n x dim` inputs.
    pub features: Array2<f32>,
    /// `n` class indices, each `< classes`.
    pub labels: Vec<u32>,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per sample.
    pub fn dim(&self) -> usize {
        self.features.ncols()
    }

    /// How many samples each class has (length `classes`).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

/// Everything that can go wrong naming, reading or preparing a dataset. File errors name the
/// file, and the 1-based line (CSV) or the record (IDX) where it applies.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: empty file: {what}", path.display())]
    Empty { path: PathBuf, what: &'static str },
    #[error("{}:{line}: invalid UTF-8", path.display())]
    InvalidUtf8 { path: PathBuf, line: usize },
    #[error("{}:{line}: ragged row: expected {expected} fields, found {found}", path.display())]
    Ragged { path: PathBuf, line: usize, expected: usize, found: usize },
    #[error("{}:{line}: non-numeric value in column {column}: {text:?}", path.display())]
    NonNumeric { path: PathBuf, line: usize, column: String, text: String },
    #[error("{}:{line}: non-finite value (NaN or infinity, or beyond f32 range) in column {column}: {text:?}", path.display())]
    NonFinite { path: PathBuf, line: usize, column: String, text: String },
    #[error("{}:{line}: label {text:?} out of range: integer labels must be in 0..{limit}", path.display())]
    LabelOutOfRange { path: PathBuf, line: usize, text: String, limit: usize },
    #[error("{}: label column: {problem}", path.display())]
    LabelColumn { path: PathBuf, problem: String },
    #[error("{}: {what} file has wrong IDX magic number: expected {expected:#010x}, found {found:#010x}", path.display())]
    IdxMagic { path: PathBuf, what: &'static str, expected: u32, found: u32 },
    #[error("{}: IDX size mismatch: {problem}", path.display())]
    IdxSize { path: PathBuf, problem: String },
    #[error(
        "IDX count mismatch: {} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    IdxCount { images_path: PathBuf, labels_path: PathBuf, images: usize, labels: usize },
    #[error("{}: too large: {problem}", path.display())]
    TooLarge { path: PathBuf, problem: String },
    #[error("unknown dataset {name:?}; known datasets: {}", spec::KNOWN.join(", "))]
    UnknownDataset { name: String },
    #[error("dataset spec {spec:?}: {problem}")]
    Syntax { spec: String, problem: String },
    #[error("dataset {dataset}: unknown key {key:?}; allowed keys: {}", allowed.join(", "))]
    UnknownKey { dataset: &'static str, key: String, allowed: &'static [&'static str] },
    #[error("dataset {dataset}: bad value for {key}: {value:?} ({problem})")]
    BadValue { dataset: &'static str, key: String, value: String, problem: String },
    #[error("cannot split dataset {name}: {problem}")]
    Split { name: String, problem: String },
}

/// Reads a whole file, gunzipping it if its name ends in `.gz` or it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let raw = std::fs::read(path).map_err(io)?;
    let gz_name = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if gz_name || raw.starts_with(&[0x1f, 0x8b]) { gunzip(&raw).map_err(io) } else { Ok(raw) }
}

pub(crate) fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// Checks that every label is below `classes` and that the shapes agree (a bug otherwise).
pub(crate) fn debug_check(ds: &Dataset) {
    debug_assert_eq!(ds.features.nrows(), ds.labels.len());
    debug_assert!(ds.labels.iter().all(|&l| (l as usize) < ds.classes));
}
