//! Dataset spec strings: parsing, canonical printing, loading.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{DataError, Dataset, MAX_CLASSES, MAX_DIM, MAX_SAMPLES, MAX_VALUES, csv, digits, idx, synthetic};

/// The dataset names the parser knows.
pub(crate) const KNOWN: &[&str] = &["digits", "gaussian", "teacher", "spirals", "blobs", "csv", "idx"];

/// Which CSV column holds the label.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LabelColumn {
    /// The column with this header name (requires a header).
    Name(String),
    /// The column at this 0-based index.
    Index(usize),
    /// The last column.
    #[default]
    Last,
}

/// A parsed dataset spec; see the module documentation for the grammar.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    Digits,
    Gaussian {
        dim: usize,
        classes: usize,
        n: usize,
    },
    Teacher {
        dim: usize,
        classes: usize,
        n: usize,
        depth: usize,
        width: usize,
    },
    Spirals {
        arms: usize,
        n: usize,
        noise: f64,
    },
    Blobs {
        dim: usize,
        classes: usize,
        n: usize,
        spread: f64,
    },
    Csv {
        path: PathBuf,
        label: LabelColumn,
        /// `None`: auto-detect.
        header: Option<bool>,
    },
    Idx {
        images: PathBuf,
        labels: PathBuf,
    },
}

impl DatasetSpec {
    /// Loads (or generates, from `seed`) the dataset. File datasets ignore the seed.
    pub fn load(&self, seed: u64) -> Result<Dataset, DataError> {
        let name = self.to_string();
        let mut ds = match self {
            DatasetSpec::Digits => digits::load()?,
            DatasetSpec::Gaussian { dim, classes, n } => synthetic::gaussian(*dim, *classes, *n, seed),
            DatasetSpec::Teacher { dim, classes, n, depth, width } => {
                synthetic::teacher(*dim, *classes, *n, *depth, *width, seed)
            }
            DatasetSpec::Spirals { arms, n, noise } => synthetic::spirals(*arms, *n, *noise, seed),
            DatasetSpec::Blobs { dim, classes, n, spread } => synthetic::blobs(*dim, *classes, *n, *spread, seed),
            DatasetSpec::Csv { path, label, header } => {
                let bytes = super::read_maybe_gz(path)?;
                let opts = csv::CsvOptions { label: label.clone(), header: *header, classes: None };
                csv::parse_csv(&bytes, path, &opts)?
            }
            DatasetSpec::Idx { images, labels } => idx::read_idx(images, labels)?,
        };
        ds.name = name;
        super::debug_check(&ds);
        Ok(ds)
    }

    /// Whether the dataset is read from files.
    pub fn is_file(&self) -> bool {
        matches!(self, DatasetSpec::Csv { .. } | DatasetSpec::Idx { .. })
    }

    /// The files the dataset is read from (empty for built-in and synthetic ones).
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            DatasetSpec::Csv { path, .. } => vec![path.as_path()],
            DatasetSpec::Idx { images, labels } => vec![images.as_path(), labels.as_path()],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for LabelColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelColumn::Name(s) => f.write_str(s),
            LabelColumn::Index(i) => write!(f, "{i}"),
            LabelColumn::Last => f.write_str("last"),
        }
    }
}

impl FromStr for LabelColumn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            Err("empty label column".into())
        } else if s.eq_ignore_ascii_case("last") {
            Ok(LabelColumn::Last)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map(LabelColumn::Index).map_err(|e| format!("bad column index: {e}"))
        } else {
            Ok(LabelColumn::Name(s.to_string()))
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Digits => f.write_str("digits"),
            DatasetSpec::Gaussian { dim, classes, n } => {
                write!(f, "gaussian:dim={dim},classes={classes},n={n}")
            }
            DatasetSpec::Teacher { dim, classes, n, depth, width } => {
                write!(f, "teacher:dim={dim},classes={classes},n={n},depth={depth},width={width}")
            }
            DatasetSpec::Spirals { arms, n, noise } => {
                write!(f, "spirals:arms={arms},n={n},noise={noise}")
            }
            DatasetSpec::Blobs { dim, classes, n, spread } => {
                write!(f, "blobs:dim={dim},classes={classes},n={n},spread={spread}")
            }
            DatasetSpec::Csv { path, label, header } => {
                let header = match header {
                    None => "auto",
                    Some(true) => "true",
                    Some(false) => "false",
                };
                write!(f, "csv:{},label={label},header={header}", path.display())
            }
            DatasetSpec::Idx { images, labels } => {
                write!(f, "idx:{},{}", images.display(), labels.display())
            }
        }
    }
}

/// `key=value` arguments of one spec, checked against the allowed keys.
struct Args {
    dataset: &'static str,
    pairs: Vec<(String, String)>,
}

impl Args {
    fn parse(
        spec: &str,
        dataset: &'static str,
        items: &[&str],
        allowed: &'static [&'static str],
    ) -> Result<Args, DataError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((k, v)) = item.split_once('=') else {
                return Err(DataError::Syntax {
                    spec: spec.to_string(),
                    problem: format!("expected key=value, found {item:?}"),
                });
            };
            let key = k.trim().to_ascii_lowercase();
            if !allowed.contains(&key.as_str()) {
                return Err(DataError::UnknownKey { dataset, key: k.trim().to_string(), allowed });
            }
            if pairs.iter().any(|(k2, _)| *k2 == key) {
                return Err(DataError::Syntax { spec: spec.to_string(), problem: format!("key {key} given twice") });
            }
            pairs.push((key, v.trim().to_string()));
        }
        Ok(Args { dataset, pairs })
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn bad(&self, key: &str, value: &str, problem: impl Into<String>) -> DataError {
        DataError::BadValue {
            dataset: self.dataset,
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.into(),
        }
    }

    /// An integer in `lo..=hi`, or `default`.
    fn int(&self, key: &str, default: usize, lo: usize, hi: usize) -> Result<usize, DataError> {
        let Some(v) = self.raw(key) else {
            return Ok(default);
        };
        let x: usize = v.replace('_', "").parse().map_err(|_| self.bad(key, v, "expected a non-negative integer"))?;
        if x < lo || x > hi {
            return Err(self.bad(key, v, format!("must be in {lo}..={hi}")));
        }
        Ok(x)
    }

    /// A finite number `>= 0`, or `default`.
    fn nonneg(&self, key: &str, default: f64) -> Result<f64, DataError> {
        let Some(v) = self.raw(key) else {
            return Ok(default);
        };
        let x: f64 = v.parse().map_err(|_| self.bad(key, v, "expected a number"))?;
        if !x.is_finite() || x < 0.0 {
            return Err(self.bad(key, v, "must be finite and >= 0"));
        }
        Ok(x)
    }
}

fn check_values(dataset: &'static str, n: usize, dim: usize) -> Result<(), DataError> {
    if n.saturating_mul(dim) > MAX_VALUES {
        return Err(DataError::BadValue {
            dataset,
            key: "n".into(),
            value: n.to_string(),
            problem: format!("n * dim = {n} * {dim} exceeds the limit of {MAX_VALUES} values"),
        });
    }
    Ok(())
}

impl FromStr for DatasetSpec {
    type Err = DataError;

    fn from_str(spec: &str) -> Result<Self, DataError> {
        let trimmed = spec.trim();
        let (name, rest) = match trimmed.split_once(':') {
            Some((name, rest)) => (name.trim(), Some(rest)),
            None => (trimmed, None),
        };
        if name.is_empty() {
            return Err(DataError::Syntax { spec: spec.to_string(), problem: "empty dataset name".into() });
        }
        let lname = name.to_ascii_lowercase();
        let items: Vec<&str> = rest.map(|r| r.split(',').collect()).unwrap_or_default();
        match lname.as_str() {
            "digits" => {
                if items.iter().any(|s| !s.trim().is_empty()) {
                    return Err(DataError::Syntax {
                        spec: spec.to_string(),
                        problem: "digits takes no arguments".into(),
                    });
                }
                Ok(DatasetSpec::Digits)
            }
            "gaussian" => {
                let a = Args::parse(spec, "gaussian", &items, &["dim", "classes", "n"])?;
                let dim = a.int("dim", 64, 1, MAX_DIM)?;
                let classes = a.int("classes", 10, 2, MAX_CLASSES)?;
                let n = a.int("n", 256, 1, MAX_SAMPLES)?;
                check_values("gaussian", n, dim)?;
                Ok(DatasetSpec::Gaussian { dim, classes, n })
            }
            "teacher" => {
                const KEYS: &[&str] = &["dim", "classes", "n", "depth", "width"];
                let a = Args::parse(spec, "teacher", &items, KEYS)?;
                let dim = a.int("dim", 64, 1, MAX_DIM)?;
                let classes = a.int("classes", 10, 2, MAX_CLASSES)?;
                let n = a.int("n", 256, 1, MAX_SAMPLES)?;
                let depth = a.int("depth", 3, 1, 64)?;
                let width = a.int("width", 64, 1, 4096)?;
                check_values("teacher", n, dim)?;
                check_values("teacher", n, width)?;
                Ok(DatasetSpec::Teacher { dim, classes, n, depth, width })
            }
            "spirals" => {
                let a = Args::parse(spec, "spirals", &items, &["arms", "n", "noise"])?;
                let arms = a.int("arms", 3, 2, 1000)?;
                let n = a.int("n", 300, 1, MAX_SAMPLES)?;
                let noise = a.nonneg("noise", 0.05)?;
                Ok(DatasetSpec::Spirals { arms, n, noise })
            }
            "blobs" => {
                const KEYS: &[&str] = &["dim", "classes", "n", "spread"];
                let a = Args::parse(spec, "blobs", &items, KEYS)?;
                let dim = a.int("dim", 64, 1, MAX_DIM)?;
                let classes = a.int("classes", 10, 2, MAX_CLASSES)?;
                let n = a.int("n", 256, 1, MAX_SAMPLES)?;
                let spread = a.nonneg("spread", 1.0)?;
                check_values("blobs", n, dim)?;
                Ok(DatasetSpec::Blobs { dim, classes, n, spread })
            }
            "csv" => {
                let path = items.first().map(|s| s.trim()).unwrap_or("");
                if path.is_empty() {
                    return Err(DataError::Syntax {
                        spec: spec.to_string(),
                        problem: "csv needs a path: csv:PATH[,label=NAME|INDEX|last][,header=true|false|auto]".into(),
                    });
                }
                let a = Args::parse(spec, "csv", &items[1..], &["label", "header"])?;
                let label = match a.raw("label") {
                    None => LabelColumn::Last,
                    Some(v) => v.parse().map_err(|e: String| a.bad("label", v, e))?,
                };
                let header = match a.raw("header") {
                    None => None,
                    Some(v) => match v.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => Some(true),
                        "false" | "no" | "0" => Some(false),
                        "auto" => None,
                        _ => return Err(a.bad("header", v, "expected true, false or auto")),
                    },
                };
                Ok(DatasetSpec::Csv { path: PathBuf::from(path), label, header })
            }
            "idx" => {
                let parts: Vec<&str> = items.iter().map(|s| s.trim()).collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(DataError::Syntax {
                        spec: spec.to_string(),
                        problem: "idx needs two paths: idx:IMAGES,LABELS".into(),
                    });
                }
                Ok(DatasetSpec::Idx { images: PathBuf::from(parts[0]), labels: PathBuf::from(parts[1]) })
            }
            _ => Err(DataError::UnknownDataset { name: name.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> DatasetSpec {
        let spec: DatasetSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        let shown = spec.to_string();
        let again: DatasetSpec = shown.parse().unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(spec, again, "{s} -> {shown}");
        assert_eq!(shown, again.to_string());
        spec
    }

    #[test]
    fn round_trip_every_variant() {
        assert_eq!(rt("digits"), DatasetSpec::Digits);
        assert_eq!(rt("gaussian"), DatasetSpec::Gaussian { dim: 64, classes: 10, n: 256 });
        assert_eq!(rt("GAUSSIAN:N=10,Dim=3"), DatasetSpec::Gaussian { dim: 3, classes: 10, n: 10 });
        assert_eq!(
            rt("teacher:dim=8,classes=3,n=100,depth=2,width=16"),
            DatasetSpec::Teacher { dim: 8, classes: 3, n: 100, depth: 2, width: 16 }
        );
        assert_eq!(rt("spirals:arms=4,n=1000,noise=0.1"), DatasetSpec::Spirals { arms: 4, n: 1000, noise: 0.1 });
        rt("spirals:noise=0.30000000000000004");
        assert_eq!(
            rt("blobs: dim = 2 , spread=0.25"),
            DatasetSpec::Blobs { dim: 2, classes: 10, n: 256, spread: 0.25 }
        );
        assert_eq!(
            rt("csv:/tmp/x.csv"),
            DatasetSpec::Csv { path: "/tmp/x.csv".into(), label: LabelColumn::Last, header: None }
        );
        assert_eq!(
            rt("csv:/tmp/x.csv.gz,label=species,header=true"),
            DatasetSpec::Csv {
                path: "/tmp/x.csv.gz".into(),
                label: LabelColumn::Name("species".into()),
                header: Some(true)
            }
        );
        assert_eq!(
            rt("csv:x.csv,LABEL=0,header=false"),
            DatasetSpec::Csv { path: "x.csv".into(), label: LabelColumn::Index(0), header: Some(false) }
        );
        assert_eq!(
            rt("idx:a-images.idx3-ubyte.gz,a-labels.idx1-ubyte"),
            DatasetSpec::Idx { images: "a-images.idx3-ubyte.gz".into(), labels: "a-labels.idx1-ubyte".into() }
        );
    }

    #[test]
    fn file_helpers() {
        let s: DatasetSpec = "idx:a,b".parse().unwrap();
        assert!(s.is_file());
        assert_eq!(s.paths(), vec![Path::new("a"), Path::new("b")]);
        assert!(!DatasetSpec::Digits.is_file());
        assert!(DatasetSpec::Digits.paths().is_empty());
    }

    fn err(s: &str) -> String {
        s.parse::<DatasetSpec>().unwrap_err().to_string()
    }

    #[test]
    fn errors_are_specific() {
        let e = err("mnist");
        assert!(e.contains("mnist") && e.contains("gaussian") && e.contains("idx"), "{e}");
        let e = err("gaussian:dims=3");
        assert!(e.contains("dims") && e.contains("dim, classes, n"), "{e}");
        let e = err("gaussian:dim=abc");
        assert!(e.contains("dim") && e.contains("abc"), "{e}");
        let e = err("gaussian:n=0");
        assert!(e.contains("n") && e.contains("\"0\""), "{e}");
        let e = err("gaussian:classes=1");
        assert!(e.contains("classes") && e.contains("2.."), "{e}");
        let e = err("gaussian:n=20000000");
        assert!(e.contains("20000000"), "{e}");
        let e = err("gaussian:n=10000000,dim=100000");
        assert!(e.contains("exceeds"), "{e}");
        let e = err("spirals:noise=-1");
        assert!(e.contains("noise") && e.contains("-1"), "{e}");
        let e = err("spirals:noise=nan");
        assert!(e.contains("noise"), "{e}");
        let e = err("gaussian:dim");
        assert!(e.contains("key=value"), "{e}");
        let e = err("gaussian:dim=1,dim=2");
        assert!(e.contains("twice"), "{e}");
        let e = err("csv:");
        assert!(e.contains("needs a path"), "{e}");
        let e = err("csv:x.csv,header=maybe");
        assert!(e.contains("header") && e.contains("maybe"), "{e}");
        let e = err("csv:x.csv,sep=;");
        assert!(e.contains("sep") && e.contains("label, header"), "{e}");
        let e = err("idx:only-one");
        assert!(e.contains("two paths"), "{e}");
        let e = err("digits:n=3");
        assert!(e.contains("no arguments"), "{e}");
        let e = err("");
        assert!(e.contains("empty"), "{e}");
    }
}
