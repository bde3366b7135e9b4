//! Binary layouts of the BLOBs the store writes: series chunks and per-step histograms.
//!
//! Everything is little-endian and length-checked on the way back in; a malformed BLOB is an
//! error ([`Malformed`]), never a panic, and the caller turns it into `StoreError::Corrupt`.

use crate::engine::stats::Histogram;

/// Most recorded steps one chunk holds (see the module docs of `store` for the choice).
pub const CHUNK_STEPS: usize = 512;

/// Columns of the per-step scalar series (stored as layer -1), reported with `layer: None`.
pub const STEP_METRICS: [&str; 4] = ["loss", "accuracy", "lr", "global_grad_norm"];

/// The `layer` value under which the per-step scalars are stored.
pub const STEP_LAYER: i64 = -1;

const CHUNK_MAGIC: u8 = 0x47; // 'G'
/// Raw little-endian columns (written before compression; still read).
const CHUNK_V1: u8 = 1;
/// Byte-shuffled columns under one zstd frame (see [`encode_chunk`]).
const CHUNK_V2: u8 = 2;
const CHUNK_HEADER: usize = 8;
/// v2's header: v1's, then a u16 mask of the columns stored as f32 and two reserved bytes.
const CHUNK_V2_HEADER: usize = 12;
/// The zstd level chunks are written at (measured in the `store` module docs).
const ZSTD_LEVEL: i32 = 3;
/// Most rows a chunk may claim: bounds what a corrupt header can make a reader allocate.
const MAX_CHUNK_ROWS: usize = 1 << 20;

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

/// Encodes `steps.len()` consecutive recorded steps of one series (`value(i, c)` is row `i`'s
/// column `c`) as a version-2 chunk, losslessly (every value's bits come back):
/// `[magic u8][2 u8][ncols u8][0 u8][n u32][f32 mask u16][0 u16]`, then one zstd frame holding
/// the steps as u64 and each column, column after column, byte-shuffled: byte 0 of every
/// value, then byte 1, and so on. A column whose values are all exactly f32 (recorded
/// statistics are, see `StepRecord::round_to_f32`) keeps only its f32 bytes (its bit in the
/// mask). Shuffling puts the slowly varying sign and exponent bytes together, where zstd finds
/// them; the mantissa's noise does not compress however it is arranged.
pub fn encode_chunk(steps: &[u64], ncols: usize, value: impl Fn(usize, usize) -> f64) -> Vec<u8> {
    let n = steps.len();
    debug_assert!(ncols <= 16 && n <= MAX_CHUNK_ROWS);
    let mut mask = 0u16;
    let mut plain = Vec::with_capacity(n * 8 * (1 + ncols));
    shuffle(steps.iter().map(|s| s.to_le_bytes()), n, &mut plain);
    for c in 0..ncols {
        if (0..n).all(|i| is_f32(value(i, c))) {
            mask |= 1 << c;
            shuffle((0..n).map(|i| (value(i, c) as f32).to_le_bytes()), n, &mut plain);
        } else {
            shuffle((0..n).map(|i| value(i, c).to_bits().to_le_bytes()), n, &mut plain);
        }
    }
    let mut out = Vec::with_capacity(CHUNK_V2_HEADER + plain.len() / 2);
    out.extend_from_slice(&[CHUNK_MAGIC, CHUNK_V2, ncols as u8, 0]);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&mask.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    // Compressing in memory cannot fail but for allocation, which aborts anyway.
    PACKER.with_borrow_mut(|z| {
        let z = z.get_or_insert_with(|| zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context"));
        out.extend_from_slice(&z.compress(&plain).expect("zstd compresses in memory"));
    });
    out
}

/// True if `x` is exactly an f32 (NaN payloads included: the round trip must keep every bit).
fn is_f32(x: f64) -> bool {
    (x as f32 as f64).to_bits() == x.to_bits()
}

/// Appends `n` values of `W` bytes each as `W` planes: every value's byte 0, then byte 1...
fn shuffle<const W: usize>(values: impl Iterator<Item = [u8; W]>, n: usize, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + n * W, 0);
    for (i, bytes) in values.enumerate() {
        for (b, byte) in bytes.into_iter().enumerate() {
            out[at + b * n + i] = byte;
        }
    }
}

/// The `n` little-endian `width`-byte words (4 or 8) shuffled into `planes` by [`shuffle`],
/// plane by plane (sequential reads the compiler vectorizes).
fn unshuffle(planes: &[u8], n: usize, width: usize) -> Vec<u64> {
    let mut out = vec![0u64; n];
    for (b, plane) in planes.chunks_exact(n.max(1)).take(width).enumerate() {
        for (w, &byte) in out.iter_mut().zip(plane) {
            *w |= u64::from(byte) << (8 * b);
        }
    }
    out
}

/// A thread's zstd context and decompression buffer, reused across the chunks it reads.
#[derive(Default)]
struct Unpacker {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    plain: Vec<u8>,
}

thread_local! {
    /// A thread's zstd compression context, reused across the chunks it writes.
    static PACKER: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static UNPACKER: std::cell::RefCell<Unpacker> = std::cell::RefCell::new(Unpacker::default());
}

/// A chunk decoded: its steps and the columns asked for (others are left empty).
#[derive(Clone, Debug)]
pub struct Chunk {
    steps: Vec<u64>,
    columns: Vec<Vec<f64>>,
}

impl Chunk {
    /// Decodes a chunk of either version, checking the header, the length and that steps
    /// strictly increase; anything else is [`Malformed`], never a panic.
    pub fn decode(bytes: &[u8], expect_cols: usize) -> Result<Self, Malformed> {
        Self::decode_columns(bytes, expect_cols, None)
    }

    /// [`Self::decode`] with only the columns `only` decoded (None: all); reading one metric
    /// of a layer skips the other eleven.
    pub fn decode_columns(bytes: &[u8], expect_cols: usize, only: Option<&[usize]>) -> Result<Self, Malformed> {
        if bytes.len() < CHUNK_HEADER {
            return Err(Malformed(format!("chunk of {} bytes is shorter than its header", bytes.len())));
        }
        if bytes[0] != CHUNK_MAGIC || !matches!(bytes[1], CHUNK_V1 | CHUNK_V2) {
            return Err(Malformed(format!("chunk has magic/version {:#x}/{}", bytes[0], bytes[1])));
        }
        let ncols = bytes[2] as usize;
        if ncols != expect_cols {
            return Err(Malformed(format!("chunk has {ncols} columns, expected {expect_cols}")));
        }
        let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if n > MAX_CHUNK_ROWS {
            return Err(Malformed(format!("chunk claims {n} rows")));
        }
        let wanted = |c: usize| only.is_none_or(|o| o.contains(&c));
        let chunk = if bytes[1] == CHUNK_V1 {
            Self::decode_v1(bytes, n, ncols, wanted)?
        } else {
            Self::decode_v2(bytes, n, ncols, wanted)?
        };
        if let Some(i) = chunk.steps.windows(2).position(|w| w[1] <= w[0]) {
            return Err(Malformed(format!("chunk steps not increasing at row {}", i + 1)));
        }
        Ok(chunk)
    }

    /// Version 1: the steps as u64, then each column as f64, uncompressed.
    fn decode_v1(bytes: &[u8], n: usize, ncols: usize, wanted: impl Fn(usize) -> bool) -> Result<Self, Malformed> {
        if bytes.len() != CHUNK_HEADER + n * 8 * (1 + ncols) {
            return Err(Malformed(format!("chunk of {n} rows x {ncols} columns has {} bytes", bytes.len())));
        }
        let words = |k: usize| {
            bytes[CHUNK_HEADER + k * n * 8..CHUNK_HEADER + (k + 1) * n * 8]
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
        };
        let columns = (0..ncols)
            .map(|c| if wanted(c) { words(c + 1).map(f64::from_bits).collect() } else { Vec::new() })
            .collect();
        Ok(Chunk { steps: words(0).collect(), columns })
    }

    fn decode_v2(bytes: &[u8], n: usize, ncols: usize, wanted: impl Fn(usize) -> bool) -> Result<Self, Malformed> {
        if bytes.len() < CHUNK_V2_HEADER {
            return Err(Malformed(format!("chunk of {} bytes is shorter than its header", bytes.len())));
        }
        let mask = u16::from_le_bytes([bytes[8], bytes[9]]);
        if ncols > 16 || (ncols < 16 && mask >> ncols != 0) {
            return Err(Malformed(format!("chunk's f32 mask {mask:#x} names columns past its {ncols}")));
        }
        let width = |c: usize| if mask & (1 << c) != 0 { 4 } else { 8 };
        let size = n * 8 + (0..ncols).map(|c| n * width(c)).sum::<usize>();
        UNPACKER.with_borrow_mut(|u| {
            let failed = |e: std::io::Error| Malformed(format!("chunk does not decompress: {e}"));
            let zstd = match &mut u.zstd {
                Some(z) => z,
                empty => empty.insert(zstd::bulk::Decompressor::new().map_err(failed)?),
            };
            u.plain.resize(size, 0);
            let plain = &mut u.plain[..];
            let got = zstd.decompress_to_buffer(&bytes[CHUNK_V2_HEADER..], &mut *plain).map_err(failed)?;
            if got != size {
                return Err(Malformed(format!("chunk of {n} rows x {ncols} columns decompresses to {got} bytes")));
            }
            let plain = &*plain;
            let steps = unshuffle(plain, n, 8);
            let mut columns = Vec::with_capacity(ncols);
            let mut at = n * 8;
            for c in 0..ncols {
                let w = width(c);
                let planes = &plain[at..at + n * w];
                columns.push(match (wanted(c), w) {
                    (false, _) => Vec::new(),
                    (true, 4) => unshuffle(planes, n, 4).into_iter().map(|x| f32::from_bits(x as u32) as f64).collect(),
                    (true, _) => unshuffle(planes, n, 8).into_iter().map(f64::from_bits).collect(),
                });
                at += n * w;
            }
            Ok(Chunk { steps, columns })
        })
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Step of row `i` (`i < len()`).
    pub fn step(&self, i: usize) -> u64 {
        self.steps[i]
    }

    /// Value of column `c` at row `i` (`i < len()`, `c` a column `decode` checked and decoded).
    pub fn value(&self, i: usize, c: usize) -> f64 {
        self.columns[c][i]
    }

    /// Column `c`'s values over rows `range` (a decoded column).
    pub fn column(&self, c: usize, range: std::ops::Range<usize>) -> &[f64] {
        &self.columns[c][range]
    }

    /// The steps of rows `range`.
    pub fn steps(&self, range: std::ops::Range<usize>) -> &[u64] {
        &self.steps[range]
    }

    /// The first row whose step is `>= step` (`len()` if none).
    pub fn lower_bound(&self, step: u64) -> usize {
        self.steps.partition_point(|&s| s < step)
    }

    /// Rows whose steps fall in `[lo, hi]`.
    pub fn rows_in(&self, lo: u64, hi: u64) -> std::ops::Range<usize> {
        let start = self.lower_bound(lo);
        let end = if hi == u64::MAX { self.len() } else { self.lower_bound(hi + 1) };
        start..end.max(start)
    }
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
        let v = Chunk::decode(&blob, 2).unwrap();
        assert_eq!(v.len(), 3);
        for (i, row) in vals.iter().enumerate() {
            assert_eq!(v.step(i), steps[i]);
            for (c, x) in row.iter().enumerate() {
                assert_eq!(v.value(i, c).to_bits(), x.to_bits());
            }
        }
        assert_eq!(v.lower_bound(4), 1);
        assert_eq!(v.lower_bound(10), 3);
        assert_eq!(v.steps(1..3), &[5, 9]);
        let col: Vec<u64> = v.column(1, 1..3).iter().map(|x| x.to_bits()).collect();
        assert_eq!(col, vec![(-0.0f64).to_bits(), 2.0f64.to_bits()]);
        assert_eq!(v.rows_in(4, 9), 1..3);
        assert_eq!(v.rows_in(6, 8), 2..2);
    }

    /// A chunk as version 1 wrote it (raw columns): still read.
    fn encode_v1(steps: &[u64], ncols: usize, value: impl Fn(usize, usize) -> f64) -> Vec<u8> {
        let mut out = vec![CHUNK_MAGIC, CHUNK_V1, ncols as u8, 0];
        out.extend_from_slice(&(steps.len() as u32).to_le_bytes());
        for s in steps {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for c in 0..ncols {
            for i in 0..steps.len() {
                out.extend_from_slice(&value(i, c).to_bits().to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn version_1_chunks_stay_readable() {
        let steps: Vec<u64> = (0..100).collect();
        let value = |i: usize, c: usize| (i * 7 + c) as f64 / 3.0;
        let old = Chunk::decode(&encode_v1(&steps, 3, value), 3).unwrap();
        let new = Chunk::decode(&encode_chunk(&steps, 3, value), 3).unwrap();
        assert_eq!(old.steps, new.steps);
        let bits = |c: &Chunk| c.columns.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&old), bits(&new));
        let one = Chunk::decode_columns(&encode_chunk(&steps, 3, value), 3, Some(&[1])).unwrap();
        assert!(one.columns[0].is_empty() && one.columns[2].is_empty());
        assert_eq!(one.column(1, 0..100), new.column(1, 0..100));
    }

    #[test]
    fn f32_columns_take_half_the_bytes_and_keep_their_bits() {
        let steps: Vec<u64> = (0..512).collect();
        // Noise in every mantissa bit: what recorded statistics look like.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let f64s: Vec<f64> = (0..512).map(|_| 1.0 + (noise() >> 12) as f64 / (1u64 << 52) as f64).collect();
        let f32s: Vec<f64> = f64s.iter().map(|&v| v as f32 as f64).collect();
        let wide = encode_chunk(&steps, 1, |i, _| f64s[i]);
        let narrow = encode_chunk(&steps, 1, |i, _| f32s[i]);
        assert!(narrow.len() * 10 < wide.len() * 6, "f32 column {} bytes vs f64 {}", narrow.len(), wide.len());
        let back = Chunk::decode(&narrow, 1).unwrap();
        assert!((0..512).all(|i| back.value(i, 0).to_bits() == f32s[i].to_bits()));
        // A NaN with a payload f32 cannot hold keeps the column in f64.
        let odd = f64::from_bits(0x7ff8_0000_0000_0001);
        let mixed = Chunk::decode(&encode_chunk(&steps[..2], 1, |i, _| if i == 0 { 1.0 } else { odd }), 1).unwrap();
        assert_eq!(mixed.value(1, 0).to_bits(), odd.to_bits());
    }

    #[test]
    fn bad_chunks_are_errors() {
        let blob = encode_chunk(&[1, 2], 1, |_, _| 0.0);
        assert!(Chunk::decode(&blob[..blob.len() - 1], 1).is_err());
        assert!(Chunk::decode(&blob, 2).is_err());
        assert!(Chunk::decode(&[], 1).is_err());
        let swapped = encode_chunk(&[2, 1], 1, |_, _| 0.0);
        assert!(Chunk::decode(&swapped, 1).is_err());
        let mut magic = blob.clone();
        magic[0] = 0;
        assert!(Chunk::decode(&magic, 1).is_err());
        let mut rows = blob.clone();
        rows[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert!(Chunk::decode(&rows, 1).is_err(), "more rows than the frame holds");
        rows[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Chunk::decode(&rows, 1).is_err(), "a huge claim is refused before allocating");
        let mut mask = blob.clone();
        mask[8] = 0b10;
        assert!(Chunk::decode(&mask, 1).is_err());
        let v1 = encode_v1(&[1, 2], 1, |_, _| 0.0);
        assert!(Chunk::decode(&v1[..v1.len() - 1], 1).is_err());
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Any bits, any length: back exactly.
        #[test]
        fn any_series_round_trips(bits in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..600), f32s in proptest::prelude::any::<bool>()) {
            let steps: Vec<u64> = (0..bits.len() as u64).map(|s| s * 3 + 1).collect();
            let v = |i: usize| if f32s { f32::from_bits(bits[i] as u32) as f64 } else { f64::from_bits(bits[i]) };
            let chunk = Chunk::decode(&encode_chunk(&steps, 1, |i, _| v(i)), 1).unwrap();
            proptest::prop_assert_eq!(chunk.steps(0..steps.len()), &steps[..]);
            for i in 0..steps.len() {
                proptest::prop_assert_eq!(chunk.value(i, 0).to_bits(), v(i).to_bits());
            }
        }

        /// Truncated, corrupted or made-up chunks are errors, never panics.
        #[test]
        fn broken_chunks_never_panic(
            n in 1usize..300,
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), 1u8..=255), 0..4),
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let steps: Vec<u64> = (0..n as u64).collect();
            let mut blob = encode_chunk(&steps, 3, |i, c| (i * c) as f64 * 0.1);
            for (at, x) in flips {
                let at = at.index(blob.len());
                blob[at] ^= x;
            }
            let _ = Chunk::decode(&blob, 3);
            let _ = Chunk::decode(&blob[..cut.index(blob.len())], 3);
            let _ = Chunk::decode(&junk, 3);
            let mut headed = vec![CHUNK_MAGIC, CHUNK_V2, 3, 0, 5, 0, 0, 0, 0, 0, 0, 0];
            headed.extend_from_slice(&junk);
            let _ = Chunk::decode(&headed, 3);
        }
    }
}
