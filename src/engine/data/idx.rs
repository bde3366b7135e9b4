//! MNIST-style IDX files: `0x00000803` images (u8, `[n, rows, cols]`) and `0x00000801` labels
//! (u8, `[n]`), all header integers big-endian, optionally gzip'd.

use std::path::Path;

use ndarray::Array2;

use super::{DataError, Dataset, MAX_DIM, MAX_SAMPLES, MAX_VALUES};

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads an images file and a labels file (each gunzipped if need be).
pub fn read_idx(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let image_bytes = super::read_maybe_gz(images)?;
    let label_bytes = super::read_maybe_gz(labels)?;
    parse_idx(&image_bytes, images, &label_bytes, labels)
}

/// Checks the header of one IDX file, returns its dimensions and the payload.
fn payload<'a>(
    bytes: &'a [u8],
    path: &Path,
    what: &'static str,
    magic: u32,
    ndims: usize,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let size = |problem: String| DataError::IdxSize { path: path.to_path_buf(), problem };
    if bytes.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf(), what: "no IDX header" });
    }
    let header_len = 4 + 4 * ndims;
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    if bytes.len() < 4 {
        return Err(size(format!("file holds {} bytes, too few for the 4-byte magic number", bytes.len())));
    }
    let found = word(0);
    if found != magic {
        return Err(DataError::IdxMagic { path: path.to_path_buf(), what, expected: magic, found });
    }
    if bytes.len() < header_len {
        return Err(size(format!("the {what} header needs {header_len} bytes, file holds {}", bytes.len())));
    }
    let dims: Vec<usize> = (1..=ndims).map(|i| word(i) as usize).collect();
    let n = dims[0];
    let record: usize = dims[1..].iter().product();
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" x ");
    if n == 0 {
        return Err(DataError::Empty { path: path.to_path_buf(), what: "header says 0 records" });
    }
    if record == 0 {
        return Err(size(format!("header says {what} of shape {shape}: zero-size records")));
    }
    if n > MAX_SAMPLES || record > MAX_DIM || n.saturating_mul(record) > MAX_VALUES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            problem: format!(
                "{what} of shape {shape} (limits: {MAX_SAMPLES} records, {MAX_DIM} values each, {MAX_VALUES} in all)"
            ),
        });
    }
    let body = &bytes[header_len..];
    let expected = n * record;
    if body.len() < expected {
        let k = body.len() / record;
        return Err(size(format!(
            "header says {n} {what} of {record} bytes ({} bytes with the header), file holds {} bytes: record {k} (0-based) is incomplete",
            header_len + expected,
            bytes.len()
        )));
    }
    if body.len() > expected {
        return Err(size(format!(
            "header says {n} {what} of {record} bytes ({} bytes with the header), file holds {} bytes: {} bytes after the last record",
            header_len + expected,
            bytes.len(),
            body.len() - expected
        )));
    }
    Ok((dims, body))
}

/// Parses IDX images and labels already in memory; the paths name them in errors.
pub fn parse_idx(images: &[u8], images_path: &Path, labels: &[u8], labels_path: &Path) -> Result<Dataset, DataError> {
    let (idims, pixels) = payload(images, images_path, "images", IMAGES_MAGIC, 3)?;
    let (ldims, label_bytes) = payload(labels, labels_path, "labels", LABELS_MAGIC, 1)?;
    if idims[0] != ldims[0] {
        return Err(DataError::IdxCount {
            images_path: images_path.to_path_buf(),
            labels_path: labels_path.to_path_buf(),
            images: idims[0],
            labels: ldims[0],
        });
    }
    let (n, dim) = (idims[0], idims[1] * idims[2]);
    let features =
        Array2::from_shape_vec((n, dim), pixels.iter().map(|&p| f32::from(p)).collect()).expect("size checked");
    let labels: Vec<u32> = label_bytes.iter().map(|&l| u32::from(l)).collect();
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    Ok(Dataset { name: format!("idx:{},{}", images_path.display(), labels_path.display()), features, labels, classes })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::engine::data::DatasetSpec;

    fn images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    fn labels(n: u32, ls: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [LABELS_MAGIC, n] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(ls);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn load_pair(img: &[u8], img_name: &str, lab: &[u8], lab_name: &str) -> Result<Dataset, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let (ip, lp) = (dir.path().join(img_name), dir.path().join(lab_name));
        std::fs::write(&ip, img).unwrap();
        std::fs::write(&lp, lab).unwrap();
        let spec: DatasetSpec = format!("idx:{},{}", ip.display(), lp.display()).parse().unwrap();
        spec.load(0)
    }

    #[test]
    fn round_trip_plain_and_gzip() {
        let pixels: Vec<u8> = (0..3 * 2 * 2).map(|i| (i * 20) as u8).collect();
        let img = images(3, 2, 2, &pixels);
        let lab = labels(3, &[4, 0, 9]);
        for (i, l, (iname, lname)) in [
            (img.clone(), lab.clone(), ("i-idx3-ubyte", "l-idx1-ubyte")),
            (gz(&img), gz(&lab), ("i-idx3-ubyte.gz", "l-idx1-ubyte.gz")),
            (gz(&img), lab.clone(), ("i-idx3-ubyte", "l-idx1-ubyte")),
        ] {
            let ds = load_pair(&i, iname, &l, lname).unwrap();
            assert_eq!(ds.features.shape(), &[3, 4]);
            assert_eq!(ds.features.row(1).to_vec(), vec![80.0, 100.0, 120.0, 140.0]);
            assert_eq!(ds.labels, vec![4, 0, 9]);
            assert_eq!(ds.classes, 10);
            assert!(ds.name.starts_with("idx:") && ds.name.contains(iname));
        }
    }

    fn err(img: &[u8], lab: &[u8]) -> String {
        load_pair(img, "imgs.idx", lab, "labs.idx").unwrap_err().to_string()
    }

    #[test]
    fn magic_and_size_errors() {
        let img = images(2, 2, 2, &[1; 8]);
        let lab = labels(2, &[0, 1]);

        // Labels file given as images.
        let e = err(&lab, &lab);
        assert!(e.contains("imgs.idx") && e.contains("expected 0x00000803, found 0x00000801"), "{e}");
        let e = err(&img, &img);
        assert!(e.contains("labs.idx") && e.contains("expected 0x00000801, found 0x00000803"), "{e}");

        let e = err(&img[..img.len() - 3], &lab);
        assert!(e.contains("imgs.idx") && e.contains("header says 2 images") && e.contains("record 1"), "{e}");
        assert!(e.contains("file holds 21 bytes"), "{e}");
        let mut long = lab.clone();
        long.push(7);
        let e = err(&img, &long);
        assert!(e.contains("labs.idx") && e.contains("1 bytes after the last record"), "{e}");
        let e = err(&img[..10], &lab);
        assert!(e.contains("imgs.idx") && e.contains("header needs 16 bytes"), "{e}");

        let e = err(&img, &labels(3, &[0, 1, 2]));
        assert!(
            e.contains("imgs.idx") && e.contains("labs.idx") && e.contains("2 images but") && e.contains("3 labels"),
            "{e}"
        );

        let e = err(&[], &lab);
        assert!(e.contains("imgs.idx") && e.contains("empty"), "{e}");
        let e = err(&img, &gz(&lab)[..10]);
        assert!(e.contains("labs.idx"), "{e}");
    }
}
