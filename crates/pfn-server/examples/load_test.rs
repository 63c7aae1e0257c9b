//! The load test of docs/RELIABILITY.md: serves the models of `models/` on a loopback port with the
//! default limits (body timeout 2 s) and sends 20,000 requests from 64 client threads: 5 % malformed
//! JSON, 3 % oversized bodies, 1 % slow bodies that stall for 3 s, the rest valid predictions for the
//! given model (default `gp-1d`). Prints the statuses per kind, the valid requests' latency and the
//! process's resident memory as the run goes.
//!
//! ```text
//! cargo run --release -p pfn-server --example load_test -- [MODEL] [REQUESTS] [CONCURRENCY]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pfn_server::load::{resident_kib, run_load, serve_in_background, LoadSpec};
use pfn_server::{router_with_limits, ModelCatalog, ServerLimits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().cloned().unwrap_or_else(|| "gp-1d".into());
    let requests: usize = args.get(1).map_or(Ok(20_000), |s| s.parse())?;
    let concurrency: usize = args.get(2).map_or(Ok(64), |s| s.parse())?;
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let catalog = Arc::new(ModelCatalog::load_dir(&models, 0)?);
    let limits = ServerLimits {
        body_timeout: Duration::from_secs(2),
        ..ServerLimits::default()
    };
    let addr = serve_in_background(router_with_limits(catalog, limits));
    let valid_body = serde_json::json!({
        "model": model,
        "x": [0.1, 0.25, 0.4, 0.55, 0.8],
        "y": [0.5, 0.1, -0.3, 0.2, 1.0],
        "grid": {"min": 0.0, "max": 1.0, "n": 101},
        "levels": [0.5, 0.9]
    })
    .to_string();
    let spec = LoadSpec {
        addr,
        requests,
        concurrency,
        valid_body,
        malformed_per_mille: 50,
        oversized_per_mille: 30,
        slow_per_mille: 10,
        slow_pause: Duration::from_secs(3),
        progress_every: (requests / 10).max(1),
    };
    let start_kib = resident_kib();
    let samples = Mutex::new(Vec::new());
    let report = run_load(&spec, &|done| {
        if let Some(kib) = resident_kib() {
            samples.lock().unwrap().push((done, kib));
        }
    });
    println!(
        "{requests} requests, {concurrency} clients, model {model}: {:.1} s, {:.0} requests/s",
        report.elapsed.as_secs_f64(),
        requests as f64 / report.elapsed.as_secs_f64()
    );
    println!("| kind | status | count |\n|---|---:|---:|");
    for ((kind, status), n) in &report.statuses {
        println!("| {kind:?} | {status} | {n} |");
    }
    println!(
        "valid latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        1e3 * report.latency_quantile(0.5),
        1e3 * report.latency_quantile(0.9),
        1e3 * report.latency_quantile(0.99),
        1e3 * report.latency_quantile(1.0)
    );
    println!(
        "resident memory (KiB): at start {start_kib:?}; after each tenth {:?}",
        samples.into_inner().unwrap()
    );
    Ok(())
}
