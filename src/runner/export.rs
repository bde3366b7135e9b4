//! A trained network as a file others read: safetensors or numpy's .npz.
//!
//! Tensors, under names that stay the same across versions:
//! - `layer{i}.weight`: f32 `[out, in]`, PyTorch's `nn.Linear` layout, so that
//!   `a_i = act_i(a_{i-1} @ weight.T + bias)` (layer 0 is the first hidden layer, the last is the
//!   output layer; its activation is the spec's `output_activation`);
//! - `layer{i}.bias`: f32 `[out]`;
//! - `input.mean`, `input.scale`: f64 `[in]`, present when the job standardized its data: a raw
//!   example `x` enters the network as `(x - input.mean) * input.scale` (computed in f64, then
//!   rounded to f32), exactly as in training.
//!
//! Metadata (safetensors' `__metadata__`; in .npz a `__metadata__` array of the JSON's UTF-8
//! bytes): `format` (`gradlab-mlp/1`), `job`, `step`, `activation`, `output_activation`,
//! `layers`, `weight_layout` and `spec` (the job's spec as JSON).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ndarray::{Array1, Array2};

use super::model::JobId;
use crate::engine::data::Standardization;
use crate::engine::network::Mlp;
use crate::engine::spec::JobSpec;

/// The files `gradlab export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsFormat {
    Safetensors,
    Npz,
}

impl WeightsFormat {
    /// The format a file name's extension asks for.
    pub fn of_path(path: &str) -> Option<WeightsFormat> {
        let ext = path.rsplit_once('.')?.1;
        ext.parse().ok()
    }
}

impl FromStr for WeightsFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "safetensors" => Ok(WeightsFormat::Safetensors),
            "npz" => Ok(WeightsFormat::Npz),
            other => Err(format!("unknown weights format {other:?}: safetensors or npz")),
        }
    }
}

impl fmt::Display for WeightsFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightsFormat::Safetensors => "safetensors",
            WeightsFormat::Npz => "npz",
        })
    }
}

const WEIGHT_LAYOUT: &str = "[out, in]: a = act(x @ weight.T + bias)";

/// One tensor, before it is written.
enum Tensor {
    F32(Vec<usize>, Vec<f32>),
    F64(Vec<usize>, Vec<f64>),
}

fn tensors(net: &Mlp<f32>, input_map: Option<&Standardization>) -> Vec<(String, Tensor)> {
    let mut out = Vec::with_capacity(2 * net.layers.len() + 2);
    if let Some(map) = input_map {
        out.push(("input.mean".to_string(), Tensor::F64(vec![map.mean.len()], map.mean.to_vec())));
        out.push(("input.scale".to_string(), Tensor::F64(vec![map.scale.len()], map.scale.to_vec())));
    }
    for (i, l) in net.layers.iter().enumerate() {
        // Held [in, out] (x @ W); written transposed, in row-major order.
        let (ins, outs) = l.w.dim();
        let w = l.w.t().iter().copied().collect();
        out.push((format!("layer{i}.weight"), Tensor::F32(vec![outs, ins], w)));
        out.push((format!("layer{i}.bias"), Tensor::F32(vec![outs], l.b.to_vec())));
    }
    out
}

fn metadata(job: JobId, step: u64, spec: &JobSpec, layers: usize) -> Result<HashMap<String, String>, String> {
    let spec_json = serde_json::to_string(spec).map_err(|e| format!("spec: {e}"))?;
    Ok(HashMap::from([
        ("format".to_string(), "gradlab-mlp/1".to_string()),
        ("job".to_string(), job.0.to_string()),
        ("step".to_string(), step.to_string()),
        ("activation".to_string(), spec.activation.to_string()),
        ("output_activation".to_string(), spec.output_activation.to_string()),
        ("layers".to_string(), layers.to_string()),
        ("weight_layout".to_string(), WEIGHT_LAYOUT.to_string()),
        ("spec".to_string(), spec_json),
    ]))
}

/// The file's bytes: `net`, job `job`'s network after `step` steps.
pub fn weights_file(
    job: JobId,
    spec: &JobSpec,
    step: u64,
    net: &Mlp<f32>,
    input_map: Option<&Standardization>,
    format: WeightsFormat,
) -> Result<Vec<u8>, String> {
    let meta = metadata(job, step, spec, net.layers.len())?;
    let tensors = tensors(net, input_map);
    match format {
        WeightsFormat::Safetensors => {
            let bytes: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = tensors
                .into_iter()
                .map(|(name, t)| match t {
                    Tensor::F32(shape, v) => {
                        (name, shape, safetensors::Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                    }
                    Tensor::F64(shape, v) => {
                        (name, shape, safetensors::Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                    }
                })
                .collect();
            let views = bytes
                .iter()
                .map(|(name, shape, dtype, data)| {
                    safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
                        .map(|v| (name.as_str(), v))
                        .map_err(|e| format!("tensor {name}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            safetensors::serialize(views, Some(meta)).map_err(|e| format!("safetensors: {e}"))
        }
        WeightsFormat::Npz => {
            let mut npz = ndarray_npy::NpzWriter::new(std::io::Cursor::new(Vec::new()));
            let err = |e: ndarray_npy::WriteNpzError| format!("npz: {e}");
            for (name, t) in tensors {
                match t {
                    Tensor::F32(shape, v) if shape.len() == 2 => {
                        let a = Array2::from_shape_vec((shape[0], shape[1]), v).map_err(|e| e.to_string())?;
                        npz.add_array(name, &a).map_err(err)?;
                    }
                    Tensor::F32(_, v) => npz.add_array(name, &Array1::from(v)).map_err(err)?,
                    Tensor::F64(_, v) => npz.add_array(name, &Array1::from(v)).map_err(err)?,
                }
            }
            let meta: std::collections::BTreeMap<_, _> = meta.into_iter().collect();
            let json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
            npz.add_array("__metadata__", &Array1::from(json)).map_err(err)?;
            Ok(npz.finish().map_err(err)?.into_inner())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::train::Trainer;

    #[test]
    fn both_formats_hold_every_layer_transposed_with_the_spec() {
        let spec = JobSpec { hidden: vec![5, 3], steps: 3, ..Default::default() };
        let mut t = Trainer::<f32>::new(&spec).unwrap();
        t.step();
        let st =
            weights_file(JobId(7), &spec, t.steps_done(), t.net(), t.input_map(), WeightsFormat::Safetensors).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&st).unwrap();
        let info = meta.metadata().as_ref().unwrap();
        assert_eq!((info["job"].as_str(), info["step"].as_str(), info["layers"].as_str()), ("7", "1", "3"));
        assert_eq!(serde_json::from_str::<JobSpec>(&info["spec"]).unwrap(), spec);
        let file = safetensors::SafeTensors::deserialize(&st).unwrap();
        let w1 = file.tensor("layer1.weight").unwrap();
        assert_eq!(w1.shape(), [3, 5]);
        let at = |r: usize, c: usize| f32::from_le_bytes(w1.data()[(r * 5 + c) * 4..][..4].try_into().unwrap());
        // weight[out][in] is the trainer's w[in][out].
        assert_eq!(at(2, 4).to_bits(), t.net().layers[1].w[[4, 2]].to_bits());
        assert_eq!(file.tensor("input.mean").unwrap().shape(), [64]);
        assert_eq!(file.names().len(), 2 * 3 + 2);

        let npz = weights_file(JobId(7), &spec, t.steps_done(), t.net(), t.input_map(), WeightsFormat::Npz).unwrap();
        let mut r = ndarray_npy::NpzReader::new(std::io::Cursor::new(npz)).unwrap();
        let w: Array2<f32> = r.by_name("layer1.weight").unwrap();
        assert_eq!(w[[2, 4]].to_bits(), t.net().layers[1].w[[4, 2]].to_bits());
        let b: Array1<f32> = r.by_name("layer2.bias").unwrap();
        assert_eq!(b.to_vec(), t.net().layers[2].b.to_vec());
        let meta: Array1<u8> = r.by_name("__metadata__").unwrap();
        let meta: HashMap<String, String> = serde_json::from_slice(meta.as_slice().unwrap()).unwrap();
        assert_eq!(meta["format"], "gradlab-mlp/1");
    }

    #[test]
    fn formats_are_read_from_names_and_extensions() {
        assert_eq!(WeightsFormat::of_path("out/model.safetensors"), Some(WeightsFormat::Safetensors));
        assert_eq!(WeightsFormat::of_path("m.NPZ"), Some(WeightsFormat::Npz));
        assert_eq!(WeightsFormat::of_path("model"), None);
        assert!("onnx".parse::<WeightsFormat>().unwrap_err().contains("safetensors or npz"));
    }
}
