//! Importing PyTorch state dicts of the paper's model.
//!
//! (Trained models are stored in the model file of the `pfn-artifact` crate, which maps our
//! parameter names to its tensors; this module only reads the paper's PyTorch weights.)
//!
//! # PyTorch import
//! [`PfnModel::import_torch_state_dict`] reads a `state_dict` of the paper's `TransformerModel`
//! (`automl/TransformersCanDoBayesianInference`, `transformer.py` with `encoders.Linear`), saved as
//! safetensors, given its architecture numbers. The mapping (PyTorch name -> our name; every
//! tensor is copied unchanged, shapes are identical):
//!
//! | PyTorch | ours |
//! |---|---|
//! | `encoder.{weight,bias}` | `encoder.x.{weight,bias}` |
//! | `y_encoder.{weight,bias}` | `encoder.y.{weight,bias}` |
//! | `transformer_encoder.layers.{i}.self_attn.in_proj_weight` | `layers.{i}.attn.in_proj.weight` |
//! | `transformer_encoder.layers.{i}.self_attn.in_proj_bias` | `layers.{i}.attn.in_proj.bias` |
//! | `transformer_encoder.layers.{i}.self_attn.out_proj.{weight,bias}` | `layers.{i}.attn.out_proj.{weight,bias}` |
//! | `transformer_encoder.layers.{i}.linear1.{weight,bias}` | `layers.{i}.ff.linear1.{weight,bias}` |
//! | `transformer_encoder.layers.{i}.linear2.{weight,bias}` | `layers.{i}.ff.linear2.{weight,bias}` |
//! | `transformer_encoder.layers.{i}.norm1.{weight,bias}` | `layers.{i}.norm1.{weight,bias}` |
//! | `transformer_encoder.layers.{i}.norm2.{weight,bias}` | `layers.{i}.norm2.{weight,bias}` |
//! | `decoder.0.{weight,bias}` | `decoder.hidden.{weight,bias}` |
//! | `decoder.2.{weight,bias}` | `decoder.output.{weight,bias}` |
//!
//! Every tensor of the architecture must be present with exactly the expected shape, and no other
//! tensor may be present; otherwise the error names the tensor (and both shapes).

use std::collections::BTreeSet;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::config::PfnConfig;
use crate::error::{ModelError, Result};
use crate::model::PfnModel;

/// The PyTorch `state_dict` name of one of our parameter names.
pub fn torch_name(ours: &str) -> String {
    if let Some(rest) = ours.strip_prefix("encoder.x.") {
        return format!("encoder.{rest}");
    }
    if let Some(rest) = ours.strip_prefix("encoder.y.") {
        return format!("y_encoder.{rest}");
    }
    if let Some(rest) = ours.strip_prefix("decoder.hidden.") {
        return format!("decoder.0.{rest}");
    }
    if let Some(rest) = ours.strip_prefix("decoder.output.") {
        return format!("decoder.2.{rest}");
    }
    if let Some(rest) = ours.strip_prefix("layers.") {
        let (index, tail) = rest.split_once('.').unwrap_or((rest, ""));
        let tail = match tail {
            "attn.in_proj.weight" => "self_attn.in_proj_weight".to_string(),
            "attn.in_proj.bias" => "self_attn.in_proj_bias".to_string(),
            t => match t.strip_prefix("attn.") {
                Some(a) => format!("self_attn.{a}"),
                None => t.strip_prefix("ff.").unwrap_or(t).to_string(),
            },
        };
        return format!("transformer_encoder.layers.{index}.{tail}");
    }
    ours.to_string()
}

fn read_f32(name: &str, view: &TensorView<'_>, dst: &mut [f32], expected: &[usize]) -> Result<()> {
    if view.shape() != expected {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            actual: view.shape().to_vec(),
        });
    }
    if view.dtype() != Dtype::F32 {
        return Err(ModelError::TensorDtype {
            name: name.to_string(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    for (d, b) in dst.iter_mut().zip(view.data().chunks_exact(4)) {
        *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(())
}

fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))
}

fn io_err(path: &Path, source: std::io::Error) -> ModelError {
    ModelError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl PfnModel {
    /// Copies every parameter from the tensors of `st`, whose names are given by `file_name`.
    fn fill_from(
        &mut self,
        st: &SafeTensors<'_>,
        file_name: impl Fn(&str) -> String,
    ) -> Result<()> {
        self.drop_packed();
        let mut used = BTreeSet::new();
        for info in self.layout.entries().to_vec() {
            let name = file_name(&info.name);
            let view = st
                .tensor(&name)
                .map_err(|_| ModelError::MissingTensor { name: name.clone() })?;
            read_f32(&name, &view, &mut self.params[info.range()], &info.shape)?;
            used.insert(name);
        }
        let mut names: Vec<&str> = st.names();
        names.sort_unstable();
        if let Some(extra) = names.into_iter().find(|n| !used.contains(*n)) {
            let shape = st
                .tensor(extra)
                .map(|v| v.shape().to_vec())
                .unwrap_or_default();
            return Err(ModelError::UnexpectedTensor {
                name: extra.to_string(),
                shape,
            });
        }
        Ok(())
    }

    /// Builds a model of architecture `config` from a PyTorch `state_dict` of the paper's model,
    /// serialised as safetensors (see the module documentation for the name mapping).
    pub fn import_torch_state_dict(bytes: &[u8], config: PfnConfig) -> Result<Self> {
        let st = parse(bytes)?;
        let mut model = Self::zeros(config)?;
        model.fill_from(&st, torch_name)?;
        Ok(model)
    }

    /// [`PfnModel::import_torch_state_dict`] from a file.
    pub fn import_torch_file(path: impl AsRef<Path>, config: PfnConfig) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
        Self::import_torch_state_dict(&bytes, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_names_follow_the_documented_mapping() {
        let cases = [
            ("encoder.x.weight", "encoder.weight"),
            ("encoder.y.bias", "y_encoder.bias"),
            (
                "layers.3.attn.in_proj.weight",
                "transformer_encoder.layers.3.self_attn.in_proj_weight",
            ),
            (
                "layers.0.attn.in_proj.bias",
                "transformer_encoder.layers.0.self_attn.in_proj_bias",
            ),
            (
                "layers.1.attn.out_proj.weight",
                "transformer_encoder.layers.1.self_attn.out_proj.weight",
            ),
            (
                "layers.1.ff.linear2.bias",
                "transformer_encoder.layers.1.linear2.bias",
            ),
            (
                "layers.12.norm1.weight",
                "transformer_encoder.layers.12.norm1.weight",
            ),
            ("decoder.hidden.weight", "decoder.0.weight"),
            ("decoder.output.bias", "decoder.2.bias"),
        ];
        for (ours, torch) in cases {
            assert_eq!(torch_name(ours), torch);
        }
    }
}
