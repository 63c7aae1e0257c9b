//! PyTorch import, and the errors of bad files and bad inputs. (Saving and loading trained
//! models is the model file's, tested in `pfn-artifact`.)

mod common;

use std::collections::HashMap;

use common::{random_batch, random_model};
use pfn_engine::Engine;
use pfn_model::io::torch_name;
use pfn_model::{Batch, ModelError, PfnConfig, PfnModel, Workspace};
use safetensors::tensor::{Dtype, TensorView};

fn config() -> PfnConfig {
    PfnConfig::new(3, 8, 2, 12, 2, 5)
}

/// (name, dtype, shape, bytes) of a model's tensors under PyTorch names.
fn torch_tensors(model: &PfnModel) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    model
        .layout()
        .entries()
        .iter()
        .map(|info| {
            let bytes = model
                .param(&info.name)
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (
                torch_name(&info.name),
                Dtype::F32,
                info.shape.clone(),
                bytes,
            )
        })
        .collect()
}

fn serialize(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
}

#[test]
fn torch_import_copies_every_tensor() {
    let model = random_model(config(), 2);
    let bytes = serialize(&torch_tensors(&model));
    let imported = PfnModel::import_torch_state_dict(&bytes, config()).unwrap();
    assert_eq!(imported.params(), model.params());
}

fn import_err(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)], cfg: PfnConfig) -> ModelError {
    PfnModel::import_torch_state_dict(&serialize(tensors), cfg).unwrap_err()
}

#[test]
fn import_errors_name_the_tensor_and_shapes() {
    let model = random_model(config(), 3);
    let good = torch_tensors(&model);

    // a tensor of the wrong shape
    let mut t = good.clone();
    let i = t
        .iter()
        .position(|x| x.0 == "transformer_encoder.layers.1.linear1.weight")
        .unwrap();
    t[i].2 = vec![12, 4];
    t[i].3.truncate(12 * 4 * 4);
    let e = import_err(&t, config());
    assert!(
        matches!(&e, ModelError::TensorShape { name, expected, actual }
            if name == "transformer_encoder.layers.1.linear1.weight" && expected == &vec![12, 8] && actual == &vec![12, 4]),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("linear1.weight") && msg.contains("[12, 4]") && msg.contains("[12, 8]"),
        "{msg}"
    );

    // a missing tensor
    let t: Vec<_> = good
        .iter()
        .filter(|x| x.0 != "decoder.2.bias")
        .cloned()
        .collect();
    let e = import_err(&t, config());
    assert!(
        matches!(&e, ModelError::MissingTensor { name } if name == "decoder.2.bias"),
        "{e:?}"
    );

    // an unexpected tensor
    let mut t = good.clone();
    t.push((
        "transformer_encoder.layers.2.norm1.weight".into(),
        Dtype::F32,
        vec![8],
        vec![0u8; 32],
    ));
    let e = import_err(&t, config());
    assert!(
        matches!(&e, ModelError::UnexpectedTensor { name, shape } if name == "transformer_encoder.layers.2.norm1.weight" && shape == &vec![8]),
        "{e:?}"
    );

    // architecture numbers that disagree with the weights
    let e = import_err(&good, PfnConfig::new(3, 16, 2, 12, 2, 5));
    assert!(
        matches!(&e, ModelError::TensorShape { name, expected, actual }
            if name == "encoder.weight" && expected == &vec![16, 3] && actual == &vec![8, 3]),
        "{e:?}"
    );
    let e = import_err(&good, PfnConfig::new(3, 8, 2, 12, 2, 7));
    assert!(
        matches!(&e, ModelError::TensorShape { name, expected, actual }
            if name == "decoder.2.weight" && expected == &vec![7, 12] && actual == &vec![5, 12]),
        "{e:?}"
    );
    let e = import_err(&good, PfnConfig::new(3, 8, 2, 12, 3, 5));
    assert!(
        matches!(&e, ModelError::MissingTensor { name } if name == "transformer_encoder.layers.2.self_attn.in_proj_weight"),
        "{e:?}"
    );
    let e = import_err(&good, PfnConfig::new(3, 8, 2, 12, 1, 5));
    assert!(
        matches!(&e, ModelError::UnexpectedTensor { name, .. } if name.starts_with("transformer_encoder.layers.1.")),
        "{e:?}"
    );
    let e = import_err(&good, PfnConfig::new(3, 8, 3, 12, 2, 5));
    assert!(
        matches!(&e, ModelError::InvalidConfig { field: "nhead", .. }),
        "{e:?}"
    );

    // a tensor of another dtype
    let mut t = good.clone();
    let i = t.iter().position(|x| x.0 == "y_encoder.bias").unwrap();
    t[i].1 = Dtype::F64;
    t[i].3.extend(vec![0u8; 32]);
    let e = import_err(&t, config());
    assert!(
        matches!(&e, ModelError::TensorDtype { name, .. } if name == "y_encoder.bias"),
        "{e:?}"
    );

    // not a safetensors file at all
    let e = PfnModel::import_torch_state_dict(b"not a model", config()).unwrap_err();
    assert!(matches!(e, ModelError::Safetensors(_)), "{e:?}");
    // a missing file
    let e = PfnModel::import_torch_file("/nonexistent/model.safetensors", config()).unwrap_err();
    assert!(
        matches!(&e, ModelError::Io { path, .. } if path.contains("nonexistent")),
        "{e:?}"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let engine = Engine::new(1).unwrap();
    let mut model = random_model(config(), 6);
    let (x, y) = random_batch(2, 5, 3, 7);
    let ok = Batch {
        x: &x,
        y: &y,
        batch: 2,
        seq_len: 5,
        single_eval_pos: 3,
    };
    let mut ws = Workspace::training();
    let e = model.backward(&engine, &mut ws, &[]).unwrap_err();
    assert!(matches!(e, ModelError::NoForwardState), "{e:?}");

    let e = model
        .forward(&engine, &mut ws, &Batch { x: &x[1..], ..ok })
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::LengthMismatch {
                expected: 30,
                actual: 29,
                ..
            }
        ),
        "{e:?}"
    );
    let e = model
        .forward(&engine, &mut ws, &Batch { y: &y[..5], ..ok })
        .unwrap_err();
    assert!(
        matches!(e, ModelError::LengthMismatch { argument, .. } if argument.starts_with('y')),
        "{e:?}"
    );
    let e = model
        .forward(
            &engine,
            &mut ws,
            &Batch {
                single_eval_pos: 6,
                ..ok
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::InvalidArgument {
                argument: "single_eval_pos",
                ..
            }
        ),
        "{e:?}"
    );
    let e = model
        .forward(&engine, &mut ws, &Batch { batch: 0, ..ok })
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::InvalidArgument {
                argument: "batch",
                ..
            }
        ),
        "{e:?}"
    );
    let mut bad_y = y.clone();
    bad_y[6] = f32::NAN;
    let e = model
        .forward(&engine, &mut ws, &Batch { y: &bad_y, ..ok })
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::NonFinite {
                argument: "y",
                index: 6,
                ..
            }
        ),
        "{e:?}"
    );
    // a NaN label of a query point is ignored (only context labels are read)
    bad_y[6] = 0.0;
    bad_y[4] = f32::NAN;
    assert!(model
        .forward(&engine, &mut ws, &Batch { y: &bad_y, ..ok })
        .is_ok());
    let mut bad_x = x.clone();
    bad_x[10] = f32::INFINITY;
    let e = model
        .forward(&engine, &mut ws, &Batch { x: &bad_x, ..ok })
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::NonFinite {
                argument: "x",
                index: 10,
                ..
            }
        ),
        "{e:?}"
    );
    // a failed forward invalidates the stored pass
    let e = model.backward(&engine, &mut ws, &[0.0; 20]).unwrap_err();
    assert!(matches!(e, ModelError::NoForwardState), "{e:?}");

    // context labels only, (batch, n)
    let y_ctx: Vec<f32> = (0..2).flat_map(|b| y[b * 5..b * 5 + 3].to_vec()).collect();
    let a = model.forward(&engine, &mut ws, &ok).unwrap().to_vec();
    let c = model
        .forward(&engine, &mut ws, &Batch { y: &y_ctx, ..ok })
        .unwrap()
        .to_vec();
    assert_eq!(a, c);
    let e = model.backward(&engine, &mut ws, &[0.0; 7]).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::LengthMismatch {
                expected: 20,
                actual: 7,
                ..
            }
        ),
        "{e:?}"
    );
    model.backward(&engine, &mut ws, &[0.0; 20]).unwrap();

    let mut inf = Workspace::inference();
    model.forward(&engine, &mut inf, &ok).unwrap();
    let e = model.backward(&engine, &mut inf, &[0.0; 20]).unwrap_err();
    assert!(matches!(e, ModelError::NoForwardState), "{e:?}");

    assert!(matches!(
        model.param("nope"),
        Err(ModelError::UnknownParameter { .. })
    ));
    let e = PfnModel::new(PfnConfig::new(0, 8, 2, 12, 2, 5), 0).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::InvalidConfig {
                field: "num_features",
                ..
            }
        ),
        "{e:?}"
    );
    let e = PfnModel::new(PfnConfig::new(1, usize::MAX / 2, 1, 1, 1, 1), 0).unwrap_err();
    assert!(
        matches!(e, ModelError::InvalidConfig { field: "sizes", .. }),
        "{e:?}"
    );
}

#[test]
fn initialisation_is_seeded_and_follows_pytorch_defaults() {
    let a = PfnModel::new(config(), 7).unwrap();
    let b = PfnModel::new(config(), 7).unwrap();
    let c = PfnModel::new(config(), 8).unwrap();
    assert_eq!(a.params(), b.params());
    assert_ne!(a.params(), c.params());
    let zero = |name: &str| a.param(name).unwrap().iter().all(|&v| v == 0.0);
    for l in 0..2 {
        for p in [
            "attn.out_proj.weight",
            "attn.out_proj.bias",
            "ff.linear2.weight",
            "ff.linear2.bias",
            "attn.in_proj.bias",
            "norm1.bias",
        ] {
            assert!(zero(&format!("layers.{l}.{p}")), "layers.{l}.{p} not zero");
        }
        assert!(a
            .param(&format!("layers.{l}.norm2.weight"))
            .unwrap()
            .iter()
            .all(|&v| v == 1.0));
        let w = a.param(&format!("layers.{l}.attn.in_proj.weight")).unwrap();
        let bound = (6.0f32 / 32.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound) && w.iter().any(|v| v.abs() > 0.8 * bound));
        let w1 = a.param(&format!("layers.{l}.ff.linear1.bias")).unwrap();
        let bound = 1.0 / 8f32.sqrt();
        assert!(w1.iter().all(|v| v.abs() <= bound) && w1.iter().any(|v| v.abs() > 0.5 * bound));
    }
    let dec = a.param("decoder.output.weight").unwrap();
    let bound = 1.0 / 12f32.sqrt();
    assert!(dec.iter().all(|v| v.abs() <= bound) && dec.iter().any(|v| v.abs() > 0.8 * bound));
}
