//! Binary layouts of the BLOBs the store writes: series chunks and per-step histograms.
//!
//! Everything is little-endian and length-checked on the way back in; a malformed BLOB is an
//! error ([`Malformed`]), never a panic, and the caller turns it into `StoreError::Corrupt`.

use crate::engine::stats::{Histogram, LayerStats};

/// Most recorded steps one chunk holds (see the module docs of `store` for the choice).
pub const CHUNK_STEPS: usize = 512;

/// Columns of the per-step scalar series (stored as layer -1), reported with `layer: None`.
pub const STEP_METRICS: [&str; 4] = ["loss", "accuracy", "lr", "global_grad_norm"];

/// The `layer` value under which the per-step scalars are stored.
pub const STEP_LAYER: i64 = -1;

const CHUNK_MAGIC: u8 = 0x47; // 'G'
const CHUNK_VERSION: u8 = 1;
const CHUNK_HEADER: usize = 8;

const HIST_MAGIC: u8 = 0x48; // 'H'
const HIST_VERSION: u8 = 1;

/// What was wrong with a BLOB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Encodes `steps.len()` consecutive recorded steps of one series as a chunk:
/// `[magic u8][version u8][ncols u8][0 u8][n u32]`, then `n` steps as u64, then each of the
/// `ncols` columns as `n` f64 (column-major, so one metric is one contiguous run).
///
/// `cols` yields row `i`'s values via `value(i, c)`.
pub fn encode_chunk(steps: &[u64], ncols: usize, value: impl Fn(usize, usize) -> f64) -> Vec<u8> {
    let n = steps.len();
    debug_assert!(ncols <= u8::MAX as usize && n <= u32::MAX as usize);
    let mut out = Vec::with_capacity(CHUNK_HEADER + n * 8 * (1 + ncols));
    out.extend_from_slice(&[CHUNK_MAGIC, CHUNK_VERSION, ncols as u8, 0]);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for &s in steps {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for c in 0..ncols {
        for i in 0..n {
            out.extend_from_slice(&value(i, c).to_bits().to_le_bytes());
        }
    }
    out
}

/// A checked, borrowed view of a chunk BLOB.
#[derive(Clone, Copy, Debug)]
pub struct ChunkView<'a> {
    n: usize,
    bytes: &'a [u8],
}

impl<'a> ChunkView<'a> {
    /// Checks the header, the length and that steps strictly increase.
    pub fn parse(bytes: &'a [u8], expect_cols: usize) -> Result<Self, Malformed> {
        if bytes.len() < CHUNK_HEADER {
            return Err(Malformed(format!("chunk of {} bytes is shorter than its header", bytes.len())));
        }
        if bytes[0] != CHUNK_MAGIC || bytes[1] != CHUNK_VERSION {
            return Err(Malformed(format!("chunk has magic/version {:#x}/{}", bytes[0], bytes[1])));
        }
        let ncols = bytes[2] as usize;
        if ncols != expect_cols {
            return Err(Malformed(format!("chunk has {ncols} columns, expected {expect_cols}")));
        }
        let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let want = n.checked_mul(8 * (1 + ncols)).and_then(|b| b.checked_add(CHUNK_HEADER));
        if want != Some(bytes.len()) {
            return Err(Malformed(format!("chunk of {n} rows x {ncols} columns has {} bytes", bytes.len())));
        }
        let view = ChunkView { n, bytes };
        for i in 1..n {
            if view.step(i) <= view.step(i - 1) {
                return Err(Malformed(format!("chunk steps not increasing at row {i}")));
            }
        }
        Ok(view)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn word(&self, idx: usize) -> u64 {
        let at = CHUNK_HEADER + idx * 8;
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// Step of row `i` (`i < len()`).
    pub fn step(&self, i: usize) -> u64 {
        self.word(i)
    }

    /// Value of column `c` at row `i` (`i < len()`, `c` below the column count `parse` checked).
    pub fn value(&self, i: usize, c: usize) -> f64 {
        f64::from_bits(self.word(self.n * (1 + c) + i))
    }

    /// The first row whose step is `>= step` (`len()` if none).
    pub fn lower_bound(&self, step: u64) -> usize {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.step(mid) < step {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Appends rows `range` of column `c` to `steps`/`values` (the hot path of history reads).
    pub fn extend_column(&self, c: usize, range: std::ops::Range<usize>, steps: &mut Vec<u64>, values: &mut Vec<f64>) {
        let s0 = CHUNK_HEADER + range.start * 8;
        let s1 = CHUNK_HEADER + range.end * 8;
        steps.extend(self.bytes[s0..s1].chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]))));
        let base = CHUNK_HEADER + self.n * (1 + c) * 8;
        let v0 = base + range.start * 8;
        let v1 = base + range.end * 8;
        values.extend(
            self.bytes[v0..v1]
                .chunks_exact(8)
                .map(|w| f64::from_bits(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))),
        );
    }
}

impl ChunkView<'_> {
    /// Min and max of column `c` over rows `range`, NaN left out (NaN only if all are NaN).
    pub fn min_max(&self, c: usize, range: std::ops::Range<usize>) -> (f64, f64) {
        let base = CHUNK_HEADER + self.n * (1 + c) * 8;
        let bytes = &self.bytes[base + range.start * 8..base + range.end * 8];
        let (mut min, mut max) = (f64::NAN, f64::NAN);
        for w in bytes.chunks_exact(8) {
            let x = f64::from_bits(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
            // f64::min/max return the other operand when one is NaN.
            min = min.min(x);
            max = max.max(x);
        }
        (min, max)
    }
}

/// Rebuilds a `LayerStats` from the 12 values in `LayerStats::METRICS` order. `nonfinite` must
/// be a non-negative integer.
pub fn layer_stats_from(v: &[f64; 12]) -> Result<LayerStats, Malformed> {
    let nf = v[11];
    if !(nf >= 0.0 && nf.fract() == 0.0 && nf < 18_446_744_073_709_551_616.0) {
        return Err(Malformed(format!("nonfinite count {nf} is not a non-negative integer")));
    }
    Ok(LayerStats {
        grad_norm: v[0],
        bias_grad_norm: v[1],
        err_norm: v[2],
        grad_mean_abs: v[3],
        grad_max_abs: v[4],
        weight_norm: v[5],
        update_ratio: v[6],
        act_mean: v[7],
        act_std: v[8],
        saturated: v[9],
        dead: v[10],
        nonfinite: nf as u64,
    })
}

/// One step's histograms (one per layer): `[magic][version][0][0][layers u32]`, then per layer
/// `[bins u32][zeros u64][underflow u64][overflow u64][nonfinite u64][counts u64 x bins]`.
pub fn encode_histograms(hists: &[Histogram]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + hists.iter().map(|h| 36 + 8 * h.counts.len()).sum::<usize>());
    out.extend_from_slice(&[HIST_MAGIC, HIST_VERSION, 0, 0]);
    out.extend_from_slice(&(hists.len() as u32).to_le_bytes());
    for h in hists {
        out.extend_from_slice(&(h.counts.len() as u32).to_le_bytes());
        for x in [h.zeros, h.underflow, h.overflow, h.nonfinite] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for &c in &h.counts {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| Malformed(format!("histogram BLOB truncated at byte {}", self.at)))?;
        let mut w = [0u8; N];
        w.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(w)
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        self.take::<8>().map(u64::from_le_bytes)
    }
}

pub fn decode_histograms(bytes: &[u8]) -> Result<Vec<Histogram>, Malformed> {
    let mut r = Reader { bytes, at: 0 };
    let head = r.take::<4>()?;
    if head[0] != HIST_MAGIC || head[1] != HIST_VERSION {
        return Err(Malformed(format!("histogram BLOB has magic/version {:#x}/{}", head[0], head[1])));
    }
    let layers = r.u32()? as usize;
    // Each layer takes at least 36 bytes: bound the allocation by what the BLOB can hold.
    if layers > bytes.len() / 36 {
        return Err(Malformed(format!("histogram BLOB claims {layers} layers in {} bytes", bytes.len())));
    }
    let mut out = Vec::with_capacity(layers);
    for _ in 0..layers {
        let bins = r.u32()? as usize;
        let (zeros, underflow, overflow, nonfinite) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        if bins > (bytes.len() - r.at) / 8 {
            return Err(Malformed(format!("histogram BLOB claims {bins} bins past its end")));
        }
        let mut counts = Vec::with_capacity(bins);
        for _ in 0..bins {
            counts.push(r.u64()?);
        }
        out.push(Histogram { counts, zeros, underflow, overflow, nonfinite });
    }
    if r.at != bytes.len() {
        return Err(Malformed(format!("histogram BLOB has {} trailing bytes", bytes.len() - r.at)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trips_bits() {
        let steps = [3u64, 5, 9];
        let vals = [[1.5, f64::NAN], [f64::INFINITY, -0.0], [f64::from_bits(0x7ff8_dead_beef_0001), 2.0]];
        let blob = encode_chunk(&steps, 2, |i, c| vals[i][c]);
        let v = ChunkView::parse(&blob, 2).unwrap();
        assert_eq!(v.len(), 3);
        for (i, row) in vals.iter().enumerate() {
            assert_eq!(v.step(i), steps[i]);
            for (c, x) in row.iter().enumerate() {
                assert_eq!(v.value(i, c).to_bits(), x.to_bits());
            }
        }
        assert_eq!(v.lower_bound(4), 1);
        assert_eq!(v.lower_bound(10), 3);
        let (mut s, mut x) = (vec![], vec![]);
        v.extend_column(1, 1..3, &mut s, &mut x);
        assert_eq!(s, vec![5, 9]);
        assert_eq!(x.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), vec![(-0.0f64).to_bits(), 2.0f64.to_bits()]);
    }

    #[test]
    fn bad_chunks_are_errors() {
        let blob = encode_chunk(&[1, 2], 1, |_, _| 0.0);
        assert!(ChunkView::parse(&blob[..blob.len() - 1], 1).is_err());
        assert!(ChunkView::parse(&blob, 2).is_err());
        assert!(ChunkView::parse(&[], 1).is_err());
        let mut swapped = encode_chunk(&[2, 1], 1, |_, _| 0.0);
        assert!(ChunkView::parse(&swapped, 1).is_err());
        swapped[0] = 0;
        assert!(ChunkView::parse(&swapped, 1).is_err());
    }

    #[test]
    fn histograms_round_trip_and_reject_garbage() {
        let h = vec![
            Histogram { counts: vec![1, 2, 3], zeros: 4, underflow: 5, overflow: 6, nonfinite: 7 },
            Histogram::default(),
        ];
        let blob = encode_histograms(&h);
        assert_eq!(decode_histograms(&blob).unwrap(), h);
        assert!(decode_histograms(&blob[..blob.len() - 3]).is_err());
        let mut huge = blob.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_histograms(&huge).is_err());
        assert!(decode_histograms(&[]).is_err());
    }

    #[test]
    fn layer_stats_nonfinite_must_be_a_count() {
        let mut v = [0.0; 12];
        v[11] = 3.0;
        assert_eq!(layer_stats_from(&v).unwrap().nonfinite, 3);
        v[11] = -1.0;
        assert!(layer_stats_from(&v).is_err());
        v[11] = f64::NAN;
        assert!(layer_stats_from(&v).is_err());
    }
}
