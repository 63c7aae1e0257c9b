//! Conversions between a [`PfnModel`] (flat parameter buffer) and the named tensors of a model
//! artifact or checkpoint, plus the transformer configuration an [`Architecture`] describes.
//!
//! Tensor names are the model's own parameter names (`encoder.x.weight`, `layers.0.attn.in_proj.weight`,
//! …; see `pfn_model::params`), so an artifact's tensors map one-to-one onto the parameter layout.

use pfn_model::{PfnConfig, PfnModel};

use crate::file::{NamedTensor, TensorRef};
use crate::metadata::Architecture;

/// A tensor list that does not fit the architecture it is loaded into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// The architecture itself is unusable (e.g. `nhead` does not divide `emsize`).
    #[error("invalid architecture: {0}")]
    Architecture(String),
    /// A parameter of the architecture has no tensor.
    #[error("missing tensor '{name}' (the architecture needs shape {shape:?})")]
    Missing {
        /// Parameter name.
        name: String,
        /// Shape the architecture needs.
        shape: Vec<usize>,
    },
    /// A tensor that no parameter of the architecture has.
    #[error("unexpected tensor '{name}' with shape {shape:?}")]
    Unexpected {
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor whose shape differs from the parameter's.
    #[error("tensor '{name}' has shape {actual:?}, the architecture needs {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape the architecture needs.
        expected: Vec<usize>,
        /// Shape found.
        actual: Vec<usize>,
    },
    /// A non-finite weight.
    #[error("tensor '{name}' holds a non-finite value at index {index}")]
    NonFinite {
        /// Tensor name.
        name: String,
        /// Flat index within the tensor.
        index: usize,
    },
}

/// The transformer configuration of an architecture (LayerNorm epsilon 1e-5).
pub fn pfn_config(arch: &Architecture) -> PfnConfig {
    let mut config = PfnConfig::new(
        arch.num_features,
        arch.emsize,
        arch.nhead,
        arch.nhid,
        arch.nlayers,
        arch.n_out,
    );
    config.query_self_attention = arch.query_self_attention;
    config.y_classes = arch.y_classes;
    config
}

/// Borrowed named views of a flat buffer laid out like `model`'s parameters (the parameters
/// themselves, their gradients or optimizer moments).
pub fn named_views<'a>(model: &'a PfnModel, flat: &'a [f32]) -> Vec<TensorRef<'a>> {
    model
        .layout()
        .entries()
        .iter()
        .map(|info| TensorRef {
            name: &info.name,
            shape: &info.shape,
            data: &flat[info.range()],
        })
        .collect()
}

/// Copies named tensors into a flat buffer laid out like `model`'s parameters. Every parameter must
/// have exactly one tensor of the right shape and no other tensor may be present.
pub fn fill_flat(
    model: &PfnModel,
    tensors: &[NamedTensor],
    flat: &mut [f32],
) -> Result<(), WeightsError> {
    let layout = model.layout();
    for t in tensors {
        let Some(info) = layout.get(&t.name) else {
            return Err(WeightsError::Unexpected {
                name: t.name.clone(),
                shape: t.shape.clone(),
            });
        };
        if t.shape != info.shape {
            return Err(WeightsError::Shape {
                name: t.name.clone(),
                expected: info.shape.clone(),
                actual: t.shape.clone(),
            });
        }
        if let Some(index) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(WeightsError::NonFinite {
                name: t.name.clone(),
                index,
            });
        }
        flat[info.range()].copy_from_slice(&t.data);
    }
    for info in layout.entries() {
        if !tensors.iter().any(|t| t.name == info.name) {
            return Err(WeightsError::Missing {
                name: info.name.clone(),
                shape: info.shape.clone(),
            });
        }
    }
    Ok(())
}

/// A model of architecture `arch` with the weights `tensors`.
pub fn model_from_tensors(
    arch: &Architecture,
    tensors: &[NamedTensor],
) -> Result<PfnModel, WeightsError> {
    let mut model =
        PfnModel::zeros(pfn_config(arch)).map_err(|e| WeightsError::Architecture(e.to_string()))?;
    let mut params = vec![0.0f32; model.num_params()];
    fill_flat(&model, tensors, &mut params)?;
    model.params_mut().copy_from_slice(&params);
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch() -> Architecture {
        Architecture {
            emsize: 8,
            nlayers: 1,
            nhead: 2,
            nhid: 16,
            num_features: 2,
            seq_len: 10,
            n_out: 5,
            query_self_attention: false,
            y_classes: None,
        }
    }

    fn owned(model: &PfnModel) -> Vec<NamedTensor> {
        named_views(model, model.params())
            .into_iter()
            .map(|t| NamedTensor {
                name: t.name.to_string(),
                shape: t.shape.to_vec(),
                data: t.data.to_vec(),
            })
            .collect()
    }

    #[test]
    fn round_trip_restores_every_parameter() {
        let model = PfnModel::new(pfn_config(&arch()), 3).unwrap();
        assert!(!model.config().query_self_attention);
        let back = model_from_tensors(&arch(), &owned(&model)).unwrap();
        assert_eq!(back.params(), model.params());
    }

    #[test]
    fn missing_unexpected_and_misshapen_tensors_are_named() {
        let model = PfnModel::new(pfn_config(&arch()), 3).unwrap();
        let mut tensors = owned(&model);
        let removed = tensors.remove(0);
        match model_from_tensors(&arch(), &tensors) {
            Err(WeightsError::Missing { name, .. }) => assert_eq!(name, removed.name),
            other => panic!("{other:?}"),
        }
        let mut tensors = owned(&model);
        tensors.push(NamedTensor {
            name: "extra".into(),
            shape: vec![1],
            data: vec![0.0],
        });
        assert!(matches!(
            model_from_tensors(&arch(), &tensors),
            Err(WeightsError::Unexpected { .. })
        ));
        let mut tensors = owned(&model);
        tensors[0].shape = vec![tensors[0].data.len()];
        assert!(matches!(
            model_from_tensors(&arch(), &tensors),
            Err(WeightsError::Shape { .. })
        ));
        let mut tensors = owned(&model);
        tensors[1].data[0] = f32::NAN;
        assert!(matches!(
            model_from_tensors(&arch(), &tensors),
            Err(WeightsError::NonFinite { index: 0, .. })
        ));
    }
}
