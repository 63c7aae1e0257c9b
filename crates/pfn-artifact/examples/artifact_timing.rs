//! Times saving and loading a model artifact of a given size: `cargo run --release -p pfn-artifact --example artifact_timing -- 25000000`.
use pfn_artifact::*;
use std::time::Instant;
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(25_000_000, |s| s.parse().unwrap());
    let arch = Architecture {
        emsize: 8,
        nlayers: 1,
        nhead: 2,
        nhid: 16,
        num_features: 1,
        seq_len: 100,
        n_out: 4,
        query_self_attention: false,
        y_classes: None,
    };
    let meta = ModelMetadata::new(
        arch,
        OutputHead::Riemann {
            borders: vec![0.0, 1.0, 2.0, 3.0, 4.0],
            full_support: true,
            tail: Default::default(),
        },
        serde_json::json!({"prior": {"name": "gp-1d"}, "model": {"buckets": 4}}),
        "gp-1d",
        Default::default(),
        Default::default(),
        None,
    );
    let data: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3).collect();
    let path = std::env::temp_dir().join("pfn-artifact-timing.pfn");
    let t = Instant::now();
    save_model(
        &path,
        &meta,
        &[TensorRef {
            name: "w",
            shape: &[n],
            data: &data,
        }],
    )
    .unwrap();
    let save = t.elapsed();
    let t = Instant::now();
    let m = load_model(&path).unwrap();
    let load = t.elapsed();
    assert_eq!(m.tensors[0].data.len(), n);
    println!(
        "{} MB: save {:.3} s, load (read + sha256 verify + decode) {:.3} s",
        n * 4 / 1_000_000,
        save.as_secs_f64(),
        load.as_secs_f64()
    );
    std::fs::remove_file(&path).unwrap();
}
