//! A small reader for numeric CSV files (the format rules are in the module docs of `data`).

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array2;

use super::{DataError, Dataset, LabelColumn, MAX_CLASSES, MAX_DIM, MAX_SAMPLES, MAX_VALUES};

/// How to read a CSV file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    pub label: LabelColumn,
    /// `None`: auto-detect (the first row is a header if a non-label field is not a number).
    pub header: Option<bool>,
    /// If set, labels must be integers in `0..classes` and the dataset has exactly that many
    /// classes.
    pub classes: Option<usize>,
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    if f.len() >= 2 && f.starts_with('"') && f.ends_with('"') { f[1..f.len() - 1].trim() } else { f }
}

/// Parses CSV text (already decompressed). `path` is only used in the dataset name and in
/// error messages.
pub fn parse_csv(bytes: &[u8], path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let p = || path.to_path_buf();
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.trim_ascii().is_empty())
        .map(|(no, l)| match std::str::from_utf8(l) {
            Ok(s) => Ok((no, s)),
            Err(_) => Err(DataError::InvalidUtf8 { path: p(), line: no }),
        })
        .peekable();

    let Some(first) = lines.peek() else {
        return Err(DataError::Empty { path: p(), what: "no rows" });
    };
    let (first_no, first_line) = match first {
        Ok(x) => *x,
        Err(_) => return Err(lines.next().unwrap().unwrap_err()),
    };
    let first_fields: Vec<&str> = first_line.split(',').map(unquote).collect();
    let width = first_fields.len();
    if width < 2 {
        return Err(DataError::LabelColumn {
            path: p(),
            problem: format!("line {first_no} has {width} column; need at least one feature column besides the label"),
        });
    }
    if width - 1 > MAX_DIM {
        return Err(DataError::TooLarge {
            path: p(),
            problem: format!("{} feature columns, the limit is {MAX_DIM}", width - 1),
        });
    }

    // Which column is the label, and is the first row a header?
    let label_col = match &opts.label {
        LabelColumn::Last => width - 1,
        LabelColumn::Index(i) if *i < width => *i,
        LabelColumn::Index(i) => {
            return Err(DataError::LabelColumn {
                path: p(),
                problem: format!("index {i} out of range: line {first_no} has {width} columns (indices 0..{width})"),
            });
        }
        LabelColumn::Name(name) => {
            if opts.header == Some(false) {
                return Err(DataError::LabelColumn {
                    path: p(),
                    problem: format!("label column given by name ({name:?}) but header=false; give its index"),
                });
            }
            let exact = first_fields.iter().position(|f| f == name);
            let loose = || {
                let hits: Vec<usize> = (0..width).filter(|&i| first_fields[i].eq_ignore_ascii_case(name)).collect();
                (hits.len() == 1).then(|| hits[0])
            };
            match exact.or_else(loose) {
                Some(i) => i,
                None => {
                    return Err(DataError::LabelColumn {
                        path: p(),
                        problem: format!(
                            "no column named {name:?}; the header (line {first_no}) has: {}",
                            first_fields.join(", ")
                        ),
                    });
                }
            }
        }
    };
    let has_header = match (opts.header, &opts.label) {
        (Some(h), _) => h,
        (None, LabelColumn::Name(_)) => true,
        (None, _) => first_fields.iter().enumerate().any(|(i, f)| i != label_col && f.parse::<f64>().is_err()),
    };
    let header: Option<Vec<String>> = if has_header {
        lines.next();
        Some(first_fields.iter().map(|s| s.to_string()).collect())
    } else {
        None
    };
    let column_name = |i: usize| match &header {
        Some(h) => format!("{i} ({:?})", h[i]),
        None => i.to_string(),
    };

    let dim = width - 1;
    let mut values: Vec<f32> = Vec::new();
    let mut label_text: Vec<(usize, String)> = Vec::new();
    for row in lines {
        let (no, line) = row?;
        if label_text.len() >= MAX_SAMPLES || values.len() + dim > MAX_VALUES {
            return Err(DataError::TooLarge {
                path: p(),
                problem: format!(
                    "more than {} rows of {dim} features (limits: {MAX_SAMPLES} rows, {MAX_VALUES} values)",
                    label_text.len()
                ),
            });
        }
        let fields: Vec<&str> = line.split(',').map(unquote).collect();
        if fields.len() != width {
            return Err(DataError::Ragged { path: p(), line: no, expected: width, found: fields.len() });
        }
        for (i, f) in fields.iter().enumerate() {
            if i == label_col {
                label_text.push((no, f.to_string()));
                continue;
            }
            let x: f64 = f.parse().map_err(|_| DataError::NonNumeric {
                path: p(),
                line: no,
                column: column_name(i),
                text: f.to_string(),
            })?;
            let x = x as f32;
            if !x.is_finite() {
                return Err(DataError::NonFinite { path: p(), line: no, column: column_name(i), text: f.to_string() });
            }
            values.push(x);
        }
    }
    // Auto-detection saw only numbers outside the label column; if the first row's label is
    // the only non-numeric one, that row is a header of numeric names (e.g. `0,1,..,label`).
    if opts.header.is_none()
        && !has_header
        && label_text.len() >= 2
        && label_text[0].1.parse::<f64>().is_err()
        && label_text[1..].iter().all(|(_, t)| t.parse::<f64>().is_ok())
    {
        label_text.remove(0);
        values.drain(..dim);
    }
    let n = label_text.len();
    if n == 0 {
        return Err(DataError::Empty { path: p(), what: "no data rows" });
    }
    let (labels, classes) = map_labels(path, &label_text, opts.classes, &column_name(label_col))?;
    let features = Array2::from_shape_vec((n, dim), values).expect("row widths checked");
    Ok(Dataset { name: path.display().to_string(), features, labels, classes })
}

/// Turns label texts into class indices: see the module docs of `data` for the rules.
fn map_labels(
    path: &Path,
    texts: &[(usize, String)],
    fixed_classes: Option<usize>,
    column: &str,
) -> Result<(Vec<u32>, usize), DataError> {
    let p = || path.to_path_buf();
    let mut numbers: Vec<f64> = Vec::with_capacity(texts.len());
    for (no, t) in texts {
        match t.parse::<f64>() {
            Ok(x) if !x.is_finite() => {
                return Err(DataError::NonFinite { path: p(), line: *no, column: column.to_string(), text: t.clone() });
            }
            Ok(x) => numbers.push(x + 0.0), // -0 -> +0
            Err(_) => break,
        }
    }
    let all_numeric = numbers.len() == texts.len();
    let all_class_ints = all_numeric && numbers.iter().all(|&x| x >= 0.0 && x.fract() == 0.0);

    if let Some(k) = fixed_classes.or((all_class_ints).then_some(MAX_CLASSES)) {
        // Integer labels are class indices.
        let mut labels = Vec::with_capacity(texts.len());
        let mut max = 0;
        for (i, (no, t)) in texts.iter().enumerate() {
            let ok = numbers.get(i).filter(|&&x| x >= 0.0 && x.fract() == 0.0 && x < k as f64);
            let Some(&x) = ok else {
                return Err(DataError::LabelOutOfRange { path: p(), line: *no, text: t.clone(), limit: k });
            };
            let l = x as u32;
            max = max.max(l);
            labels.push(l);
        }
        let classes = fixed_classes.unwrap_or(max as usize + 1);
        return Ok((labels, classes));
    }

    let labels: Vec<u32> = if all_numeric {
        let mut distinct = numbers.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        check_classes(path, distinct.len())?;
        numbers.iter().map(|x| distinct.binary_search_by(|d| d.total_cmp(x)).unwrap() as u32).collect()
    } else {
        let mut distinct: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        check_classes(path, distinct.len())?;
        let index: HashMap<&str, u32> = distinct.iter().enumerate().map(|(i, t)| (*t, i as u32)).collect();
        texts.iter().map(|(_, t)| index[t.as_str()]).collect()
    };
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    Ok((labels, classes))
}

fn check_classes(path: &Path, k: usize) -> Result<(), DataError> {
    if k > MAX_CLASSES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            problem: format!("{k} distinct labels, the limit is {MAX_CLASSES} classes"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::engine::data::DatasetSpec;

    fn write(name: &str, text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn load(spec: String) -> Result<Dataset, DataError> {
        spec.parse::<DatasetSpec>()?.load(0)
    }

    #[test]
    fn header_and_label_by_name() {
        let (_d, path) = write("iris.csv", b"a,species,b\n1.5,2,-3\n\n4,0,5e-1\r\n7,1,8\n");
        let ds = load(format!("csv:{},label=species", path.display())).unwrap();
        assert_eq!(ds.features.shape(), &[3, 2]);
        assert_eq!(ds.features.row(0).to_vec(), vec![1.5, -3.0]);
        assert_eq!(ds.features.row(1).to_vec(), vec![4.0, 0.5]);
        assert_eq!(ds.labels, vec![2, 0, 1]);
        assert_eq!(ds.classes, 3);
        assert!(ds.name.starts_with("csv:") && ds.name.contains("label=species"));
        // Auto-detected header with the default label column (last).
        let ds = load(format!("csv:{}", path.display())).unwrap();
        assert_eq!(ds.features.row(0).to_vec(), vec![1.5, 2.0]);
    }

    #[test]
    fn no_header_label_by_index() {
        let (_d, path) = write("plain.csv", b"3,0.5,1\n1,0.25,2\n");
        let ds = load(format!("csv:{},label=0", path.display())).unwrap();
        assert_eq!(ds.labels, vec![3, 1]);
        assert_eq!(ds.classes, 4);
        assert_eq!(ds.features.row(1).to_vec(), vec![0.25, 2.0]);
        // header=true forces the first row to be a header.
        let ds = load(format!("csv:{},label=0,header=true", path.display())).unwrap();
        assert_eq!(ds.len(), 1);
    }

    #[test]
    fn gzip_by_suffix_and_by_magic() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"x,y,label\n1,2,0\n3,4,1\n").unwrap();
        let gz = enc.finish().unwrap();
        for name in ["d.csv.gz", "d.csv"] {
            let (_d, path) = write(name, &gz);
            let ds = load(format!("csv:{}", path.display())).unwrap();
            assert_eq!(ds.features.shape(), &[2, 2]);
            assert_eq!(ds.labels, vec![0, 1]);
        }
    }

    #[test]
    fn string_and_arbitrary_numeric_labels() {
        let (_d, path) = write("s.csv", b"5.1,3.5,setosa\n7.0,3.2,versicolor\n6.3,3.3,\"virginica\"\n4.9,3.0,setosa\n");
        let ds = load(format!("csv:{}", path.display())).unwrap();
        assert_eq!(ds.len(), 4, "the first row is data: only the label is non-numeric");
        assert_eq!(ds.labels, vec![0, 1, 2, 0]);
        assert_eq!(ds.classes, 3);
        // A header of numeric column names is recognised by its lone non-numeric label.
        let (_d, path) = write("h.csv", b"0,1,label\n5,6,1\n7,8,0\n");
        let ds = load(format!("csv:{}", path.display())).unwrap();
        assert_eq!(ds.labels, vec![1, 0]);
        assert_eq!(ds.features.row(0).to_vec(), vec![5.0, 6.0]);

        let (_d, path) = write("n.csv", b"1,-1\n2,2.5\n3,-1\n4,10\n");
        let ds = load(format!("csv:{}", path.display())).unwrap();
        assert_eq!(ds.labels, vec![0, 1, 0, 2], "numeric order, not text order");
        assert_eq!(ds.classes, 3);
    }

    fn bad(name: &str, text: &[u8], spec_tail: &str) -> String {
        let (_d, path) = write(name, text);
        load(format!("csv:{}{spec_tail}", path.display())).unwrap_err().to_string()
    }

    #[test]
    fn malformed_files() {
        let e = bad("ragged.csv", b"a,b,c\n1,2,3\n4,5\n", "");
        assert!(e.contains("ragged.csv:3:") && e.contains("expected 3 fields, found 2"), "{e}");

        let e = bad("text.csv", b"a,b,c\n1,2,3\n4,oops,0\n", "");
        assert!(e.contains("text.csv:3:") && e.contains("non-numeric"), "{e}");
        assert!(e.contains("\"b\"") && e.contains("\"oops\""), "{e}");

        let e = bad("nan.csv", b"1,2,3\n\n4,NaN,0\n", "");
        assert!(e.contains("nan.csv:3:") && e.contains("non-finite") && e.contains("NaN"), "{e}");
        let e = bad("inf.csv", b"1,2,3\n4,1e40,0\n", "");
        assert!(e.contains("inf.csv:2:") && e.contains("non-finite"), "{e}");

        let e = bad("big.csv", b"1,2,0\n4,5,7000000\n", "");
        assert!(e.contains("big.csv:2:") && e.contains("out of range"), "{e}");

        let e = bad("empty.csv", b"", "");
        assert!(e.contains("empty.csv") && e.contains("empty"), "{e}");
        let e = bad("hdr.csv", b"a,b\n", ",header=true");
        assert!(e.contains("hdr.csv") && e.contains("no data rows"), "{e}");

        let e = bad("name.csv", b"a,b\n1,2\n", ",label=c");
        assert!(e.contains("name.csv") && e.contains("\"c\"") && e.contains("a, b"), "{e}");
        let e = bad("idx.csv", b"1,2\n", ",label=5");
        assert!(e.contains("idx.csv") && e.contains("index 5 out of range"), "{e}");
        let e = bad("one.csv", b"1\n2\n", "");
        assert!(e.contains("one.csv") && e.contains("at least one feature"), "{e}");

        let e = bad("utf.csv", b"1,2\n\xff,1\n", "");
        assert!(e.contains("utf.csv:2:") && e.contains("UTF-8"), "{e}");

        let e = load("csv:/nonexistent/dir/missing.csv".into()).unwrap_err().to_string();
        assert!(e.contains("missing.csv"), "{e}");
    }

    #[test]
    fn fixed_classes_bound_labels() {
        let opts = CsvOptions { classes: Some(3), ..Default::default() };
        let ds = parse_csv(b"1,0\n2,1\n", Path::new("m"), &opts).unwrap();
        assert_eq!(ds.classes, 3);
        let e = parse_csv(b"1,0\n2,3\n", Path::new("m"), &opts).unwrap_err().to_string();
        assert!(e.contains("m:2:") && e.contains("0..3"), "{e}");
    }
}
