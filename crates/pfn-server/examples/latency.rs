//! Server-side latency of `/api/predict`'s computation (no HTTP) for a paper-size network
//! (6 layers, width 512, 4 heads, feed-forward 1024, 1000 buckets; trained for a single step, which
//! does not change the cost) and for the tiny demo network.
//!
//! ```text
//! cargo run --release -p pfn-server --example latency
//! ```

use std::time::Instant;

use pfn_server::api::{validate, PredictRequest};
use pfn_server::demo_model::{train_demo_model, DemoModelSpec};
use pfn_server::predict::predict;
use pfn_server::ModelCatalog;

fn main() {
    let paper = DemoModelSpec {
        seq_len: 100,
        emsize: 512,
        nlayers: 6,
        nhead: 4,
        nhid: 1024,
        buckets: 1000,
        batch_size: 2,
        ..DemoModelSpec::gp_1d(1, 0)
    };
    let tiny = DemoModelSpec::gp_1d(1, 0);
    for (label, spec) in [("paper-size", paper), ("demo-size", tiny)] {
        let artifact = train_demo_model(&spec).expect("model");
        let mut catalog = ModelCatalog::new();
        catalog.add_artifact("m", &artifact, 0).expect("servable");
        let entry = catalog.get("m").unwrap();
        for (n, heat_rows) in [(5usize, 0usize), (5, 120), (20, 120)] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
            let y: Vec<f64> = x.iter().map(|v| (6.0 * v).sin()).collect();
            let request: PredictRequest = serde_json::from_value(serde_json::json!({
                "model": "m", "x": x, "y": y,
                "grid": {"min": -0.1, "max": 1.1, "n": 200},
                "levels": [0.5, 0.9, 0.99],
                "heatmap": {"y_min": -3.0, "y_max": 3.0, "n": heat_rows},
            }))
            .unwrap();
            let valid = validate(request, &entry.info).unwrap();
            let _ = predict(entry, &valid).unwrap(); // warm-up
            let reps = 10;
            let t = Instant::now();
            for _ in 0..reps {
                let r = predict(entry, &valid).unwrap();
                assert_eq!(r.mean.len(), 200);
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
            println!(
                "{label:>10}: {n:>2} context points, 200 grid points, heat map {heat_rows:>3} rows, GP overlay: {ms:7.2} ms per request"
            );
        }
    }
}
