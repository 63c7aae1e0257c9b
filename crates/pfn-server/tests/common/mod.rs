//! Shared helpers: a tiny trained model (once per test binary) and an in-process server on a
//! free loopback port.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use pfn_artifact::ModelArtifact;
use pfn_server::demo_model::{train_demo_model, DemoModelSpec};
use pfn_server::{router_with_limits, ModelCatalog, ServerLimits};

/// Name under which the test model is served.
pub const MODEL: &str = "tiny-gp-1d";

/// A small gp-1d model: 2 layers of width 32, 24 points per dataset (23 context points at most),
/// trained for 150 steps.
pub fn tiny_artifact() -> &'static ModelArtifact {
    static ARTIFACT: OnceLock<ModelArtifact> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        let spec = DemoModelSpec {
            seq_len: 24,
            emsize: 32,
            nlayers: 2,
            nhead: 2,
            nhid: 64,
            buckets: 50,
            batch_size: 16,
            ..DemoModelSpec::gp_1d(150, 7)
        };
        train_demo_model(&spec).expect("the tiny model trains")
    })
}

/// A catalog with the tiny model under [`MODEL`].
pub fn catalog() -> ModelCatalog {
    let mut c = ModelCatalog::new();
    c.add_artifact(MODEL, tiny_artifact(), 2)
        .expect("the tiny model is servable");
    c
}

/// Serves `catalog` on a free loopback port in a background thread; returns `http://127.0.0.1:PORT`.
pub fn serve(catalog: ModelCatalog) -> String {
    serve_with_limits(catalog, ServerLimits::default())
}

/// [`serve`] with the given admission limits.
pub fn serve_with_limits(catalog: ModelCatalog, limits: ServerLimits) -> String {
    let addr = pfn_server::load::serve_in_background(router_with_limits(Arc::new(catalog), limits));
    format!("http://{addr}")
}

/// A ureq agent that returns 4xx/5xx responses instead of errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` and returns the status and the parsed JSON answer.
pub fn post(base: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut resp = agent()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .send(body)
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, json)
}

/// GETs `path` and returns the status and the body text.
pub fn get(base: &str, path: &str) -> (u16, String) {
    let mut resp = agent()
        .get(format!("{base}{path}"))
        .call()
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().expect("body"))
}
