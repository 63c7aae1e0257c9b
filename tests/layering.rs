//! The workspace's dependency rules, checked on `cargo metadata` (normal and build dependencies;
//! tests and benches may reach further up through dev-dependencies):
//!
//! * the numerical foundations (`pfn-prior`, `pfn-distribution`, `pfn-gp`) never depend on the
//!   network (`pfn-engine`, `pfn-model`);
//! * `pfn-engine` depends on no workspace crate;
//! * `pfn-artifact` (the model file) never depends on `pfn-train`, `pfn-prior` or `pfn-gp`: every
//!   reader of a model uses it without training code, priors or Gaussian processes;
//! * nothing below the user-facing tools depends on `pfn-cli`, `pfn-server` or `pfn-experiments`:
//!   only `pfn-cli` and the root package `pfn` may;
//! * the Python bindings `pfn-py` are a leaf: nothing depends on them, and they use the library
//!   crates, not the command line or its tools.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Workspace crate -> its workspace dependencies (normal and build).
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|n| names.contains(n))
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// Every crate that `krate` reaches through normal and build dependencies.
fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, krate: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![krate.to_string()];
    while let Some(k) = stack.pop() {
        for d in graph.get(&k).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

/// Adds a line to `broken` for every crate of `to` that `from` reaches (when `from` exists).
fn forbid(
    graph: &BTreeMap<String, BTreeSet<String>>,
    broken: &mut Vec<String>,
    from: &str,
    to: &[&str],
    why: &str,
) {
    if !graph.contains_key(from) {
        return;
    }
    let reach = reaches(graph, from);
    for t in to {
        if reach.contains(*t) {
            broken.push(format!("{from} depends on {t}: {why}"));
        }
    }
}

/// The broken rules, one line each.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut broken = Vec::new();
    for foundation in ["pfn-prior", "pfn-distribution", "pfn-gp"] {
        forbid(
            graph,
            &mut broken,
            foundation,
            &["pfn-engine", "pfn-model"],
            "the foundations never depend on the network",
        );
    }
    let engine_deps = graph.get("pfn-engine").cloned().unwrap_or_default();
    if !engine_deps.is_empty() {
        broken.push(format!(
            "pfn-engine depends on {engine_deps:?}: the engine depends on no workspace crate"
        ));
    }
    forbid(
        graph,
        &mut broken,
        "pfn-artifact",
        &["pfn-train"],
        "the model file does not depend on training",
    );
    forbid(
        graph,
        &mut broken,
        "pfn-artifact",
        &["pfn-prior", "pfn-gp"],
        "the model file does not depend on priors or Gaussian processes",
    );
    forbid(
        graph,
        &mut broken,
        "pfn-infer",
        &["pfn-train", "pfn-prior", "pfn-gp"],
        "inference reads the model file; it neither trains nor samples priors",
    );
    // The Python bindings are a leaf beside the command line: nothing uses them (the loop below
    // keeps them off the command-line and tool crates).
    for krate in graph.keys().filter(|k| k.as_str() != "pfn-py") {
        forbid(
            graph,
            &mut broken,
            krate,
            &["pfn-py"],
            "the Python bindings are a leaf; nothing depends on them",
        );
    }
    let top = ["pfn-cli", "pfn-server", "pfn-experiments"];
    for krate in graph.keys() {
        if krate == "pfn" || krate == "pfn-cli" {
            continue;
        }
        let to: Vec<&str> = top.iter().copied().filter(|t| t != krate).collect();
        forbid(
            graph,
            &mut broken,
            krate,
            &to,
            "only pfn-cli and the root package use the tools",
        );
    }
    broken
}

#[test]
fn the_workspace_follows_its_layering_rules() {
    let graph = workspace_graph();
    for krate in [
        "pfn-engine",
        "pfn-artifact",
        "pfn-model",
        "pfn-prior",
        "pfn-train",
        "pfn-cli",
    ] {
        assert!(graph.contains_key(krate), "{krate} missing from {graph:?}");
    }
    let broken = violations(&graph);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn a_broken_rule_is_reported() {
    // The rules can fail: an engine that used the prior, and a prior that used the model.
    let mut graph = workspace_graph();
    graph
        .get_mut("pfn-engine")
        .unwrap()
        .insert("pfn-prior".into());
    graph
        .get_mut("pfn-prior")
        .unwrap()
        .insert("pfn-model".into());
    graph
        .get_mut("pfn-train")
        .unwrap()
        .insert("pfn-server".into());
    graph
        .get_mut("pfn-artifact")
        .unwrap()
        .insert("pfn-gp".into());
    graph.get_mut("pfn-py").unwrap().insert("pfn-cli".into());
    graph.get_mut("pfn-infer").unwrap().insert("pfn-py".into());
    let broken = violations(&graph).join("\n");
    assert!(broken.contains("pfn-engine depends on"), "{broken}");
    assert!(
        broken.contains("pfn-prior depends on pfn-model"),
        "{broken}"
    );
    assert!(
        broken.contains("pfn-train depends on pfn-server"),
        "{broken}"
    );
    assert!(
        broken.contains("pfn-artifact depends on pfn-gp"),
        "{broken}"
    );
    assert!(broken.contains("pfn-py depends on pfn-cli"), "{broken}");
    assert!(broken.contains("pfn-infer depends on pfn-py"), "{broken}");
}
