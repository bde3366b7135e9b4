//! Seeded synthetic datasets. Each is a pure function of its parameters and the seed: one
//! ChaCha8 stream, drawn in a fixed order (documented per generator).

use std::f64::consts::PI;

use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::Dataset;

fn normal_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Array2<f32> {
    // Row-major order of draws.
    Array2::from_shape_simple_fn((rows, cols), || StandardNormal.sample(rng))
}

/// `0, 1, .., classes-1, 0, 1, ..` (n of them), shuffled: classes as balanced as n allows.
fn balanced_labels(rng: &mut ChaCha8Rng, n: usize, classes: usize) -> Vec<u32> {
    let mut labels: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
    labels.shuffle(rng);
    labels
}

/// Inputs i.i.d. N(0,1) (drawn row-major), then labels uniform on `0..classes`.
pub fn gaussian(dim: usize, classes: usize, n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let features = normal_matrix(&mut rng, n, dim);
    let labels = (0..n).map(|_| rng.random_range(0..classes as u32)).collect();
    Dataset { name: String::new(), features, labels, classes }
}

/// Inputs i.i.d. N(0,1) (drawn first), labelled by the argmax of a random MLP: `depth` tanh
/// layers of `width` units (weights N(0, 1.5^2 / fan_in), biases N(0, 0.1^2)) and a linear
/// output layer of `classes` units (weights N(0, 1 / fan_in), no bias), drawn layer by layer,
/// each as an `out x in` matrix row-major then its biases. The forward pass runs in f64 with
/// 1-D dot products (no runtime-dispatched GEMM), so labels do not depend on the CPU's kernels.
pub fn teacher(dim: usize, classes: usize, n: usize, depth: usize, width: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let features = normal_matrix(&mut rng, n, dim);
    let mut h: Array2<f64> = features.mapv(f64::from);
    for layer in 0..=depth {
        let hidden = layer < depth;
        let (out, fan_in) = (if hidden { width } else { classes }, h.ncols());
        let std = if hidden { 1.5 } else { 1.0 } / (fan_in as f64).sqrt();
        let w: Array2<f64> = Array2::from_shape_simple_fn((out, fan_in), || {
            let z: f64 = StandardNormal.sample(&mut rng);
            std * z
        });
        let b: Array1<f64> = if hidden {
            Array1::from_shape_simple_fn(out, || {
                let z: f64 = StandardNormal.sample(&mut rng);
                0.1 * z
            })
        } else {
            Array1::zeros(out)
        };
        let mut next = Array2::<f64>::zeros((n, out));
        for (x, mut y) in h.rows().into_iter().zip(next.rows_mut()) {
            for ((yj, wj), bj) in y.iter_mut().zip(w.rows()).zip(&b) {
                let z = x.dot(&wj) + bj;
                *yj = if hidden { libm::tanh(z) } else { z };
            }
        }
        h = next;
    }
    let labels = h
        .rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect();
    Dataset { name: String::new(), features, labels, classes }
}

/// 2-D spirals, one class per arm. Point `i` is on arm `i % arms` (so classes are balanced);
/// with `t ~ U[0,1)`: radius `t`, angle `2 pi arm / arms + 3 pi t` (one and a half turns), plus
/// `noise * N(0, I)`. Draws per point: t, then the two noise values.
pub fn spirals(arms: usize, n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut features = Array2::<f32>::zeros((n, 2));
    let mut labels = Vec::with_capacity(n);
    for (i, mut row) in features.rows_mut().into_iter().enumerate() {
        let arm = i % arms;
        let t: f64 = rng.random();
        let theta = 2.0 * PI * arm as f64 / arms as f64 + 3.0 * PI * t;
        let nx: f64 = StandardNormal.sample(&mut rng);
        let ny: f64 = StandardNormal.sample(&mut rng);
        row[0] = (t * libm::cos(theta) + noise * nx) as f32;
        row[1] = (t * libm::sin(theta) + noise * ny) as f32;
        labels.push(arm as u32);
    }
    Dataset { name: String::new(), features, labels, classes: arms }
}

/// Gaussian clusters: centres N(0, I) (`classes x dim`, drawn first), then balanced shuffled
/// labels, then points `centre[label] + spread * N(0, I)` (row-major). Centres are about
/// `sqrt(2 dim)` apart, so `spread` around 1 separates them well in high dimension.
pub fn blobs(dim: usize, classes: usize, n: usize, spread: f64, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = normal_matrix(&mut rng, classes, dim);
    let labels = balanced_labels(&mut rng, n, classes);
    let mut features = normal_matrix(&mut rng, n, dim);
    for (mut row, &l) in features.rows_mut().into_iter().zip(&labels) {
        for (x, &c) in row.iter_mut().zip(centres.row(l as usize)) {
            *x = (c as f64 + spread * *x as f64) as f32;
        }
    }
    Dataset { name: String::new(), features, labels, classes }
}

#[cfg(test)]
mod tests {
    use crate::engine::data::DatasetSpec;

    const SPECS: &[&str] = &[
        "gaussian:dim=7,classes=3,n=50",
        "teacher:dim=5,classes=4,n=60,depth=2,width=8",
        "spirals:arms=3,n=90,noise=0.1",
        "blobs:dim=3,classes=4,n=41,spread=0.5",
    ];

    #[test]
    fn deterministic_per_seed_with_requested_shape() {
        let shapes = [(50, 7, 3), (60, 5, 4), (90, 2, 3), (41, 3, 4)];
        for (s, &(n, dim, classes)) in SPECS.iter().zip(&shapes) {
            let spec: DatasetSpec = s.parse().unwrap();
            let a = spec.load(7).unwrap();
            let b = spec.load(7).unwrap();
            let c = spec.load(8).unwrap();
            assert_eq!(a.name, *s);
            assert_eq!(a.features.shape(), &[n, dim], "{s}");
            assert_eq!(a.labels.len(), n, "{s}");
            assert_eq!(a.classes, classes, "{s}");
            assert!(a.labels.iter().all(|&l| (l as usize) < classes), "{s}");
            assert!(a.features.iter().all(|x| x.is_finite()), "{s}");
            let bits = |d: &crate::engine::data::Dataset| d.features.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{s}");
            assert_eq!(a.labels, b.labels, "{s}");
            assert_ne!(bits(&a), bits(&c), "{s}");
            if !s.starts_with("spirals") {
                // spirals labels are i % arms whatever the seed
                assert_ne!(a.labels, c.labels, "{s}");
            }
            // More than one class actually occurs.
            assert!(a.class_counts().iter().filter(|&&k| k > 0).count() > 1, "{s}");
        }
    }

    #[test]
    fn defaults_have_documented_shapes() {
        let g = "gaussian".parse::<DatasetSpec>().unwrap().load(1).unwrap();
        assert_eq!((g.len(), g.dim(), g.classes), (256, 64, 10));
        let t = "teacher".parse::<DatasetSpec>().unwrap().load(1).unwrap();
        assert_eq!((t.len(), t.dim(), t.classes), (256, 64, 10));
        let counts = t.class_counts();
        assert!(counts.iter().filter(|&&k| k > 0).count() >= 3, "{counts:?}");
        let b = "blobs:classes=5,n=100".parse::<DatasetSpec>().unwrap().load(1).unwrap();
        assert_eq!(b.class_counts(), vec![20; 5]);
    }

    #[test]
    fn blobs_cluster_around_centres() {
        // With spread 0 every point of a class is its centre.
        let b = "blobs:dim=4,classes=3,n=30,spread=0".parse::<DatasetSpec>().unwrap().load(3).unwrap();
        for c in 0..3u32 {
            let rows: Vec<_> = (0..30).filter(|&i| b.labels[i] == c).collect();
            for &i in &rows {
                assert_eq!(b.features.row(i), b.features.row(rows[0]));
            }
        }
    }
}
