//! A model's weights through the model file: saved with `named_views`, loaded with
//! `model_from_tensors`, bit-identical; weights of another architecture are refused by name.

use pfn_artifact::{
    load_model, model_from_tensors, named_views, pfn_config, save_model, Architecture,
    InputNormalisation, ModelMetadata, OutputHead, TrainingSpent, WeightsError,
};
use pfn_model::PfnModel;

fn architecture(nhid: usize) -> Architecture {
    Architecture {
        emsize: 8,
        nlayers: 2,
        nhead: 2,
        nhid,
        num_features: 3,
        seq_len: 16,
        n_out: 5,
        query_self_attention: true,
        y_classes: None,
    }
}

fn metadata(arch: Architecture) -> ModelMetadata {
    ModelMetadata::new(
        arch,
        OutputHead::Riemann {
            borders: (0..=5).map(f64::from).collect(),
            full_support: true,
            tail: Default::default(),
        },
        serde_json::Value::Null,
        "gp-1d",
        InputNormalisation::default(),
        TrainingSpent::default(),
        None,
    )
}

#[test]
fn weights_round_trip_through_the_model_file() {
    let arch = architecture(12);
    let model = PfnModel::new(pfn_config(&arch), 7).unwrap();
    let dir = std::env::temp_dir().join(format!("pfn-artifact-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.pfn");
    save_model(
        &path,
        &metadata(arch.clone()),
        &named_views(&model, model.params()),
    )
    .unwrap();
    let artifact = load_model(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let back = model_from_tensors(&artifact.metadata.architecture, &artifact.tensors).unwrap();
    assert_eq!(back.config(), model.config());
    assert!(back.config().query_self_attention);
    let bits = |m: &PfnModel| m.params().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&model));

    // The weights of another architecture (a wider feed-forward layer) name the first tensor
    // that does not fit.
    let other = PfnModel::new(pfn_config(&architecture(16)), 8).unwrap();
    let tensors: Vec<_> = named_views(&other, other.params())
        .into_iter()
        .map(|t| pfn_artifact::NamedTensor {
            name: t.name.to_string(),
            shape: t.shape.to_vec(),
            data: t.data.to_vec(),
        })
        .collect();
    match model_from_tensors(&arch, &tensors) {
        Err(WeightsError::Shape { name, .. }) => {
            assert!(name.starts_with("layers.0.ff.linear1."), "{name}")
        }
        other => panic!("{:?}", other.map(|m| m.num_params())),
    }
}
