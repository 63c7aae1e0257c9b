//! The JSON API over real HTTP on a loopback port: answers, their consistency, and every 4xx case.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;

use common::{get, post, serve, MODEL};
use pfn_gp::ExactGp;
use pfn_prior::GpPrior;
use serde_json::{json, Value};

/// The tiny model, plus a copy listed as unsupported (as a 5-feature model would be).
fn base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut catalog = common::catalog();
        let mut listed = catalog.get(MODEL).unwrap().clone();
        listed.info.name = "listed-only".into();
        listed.info.supported = false;
        listed.info.unsupported_reason =
            Some("the demo plots 1-D inputs, this model has 5 features".into());
        listed.backend = None;
        catalog.insert(listed).unwrap();
        serve(catalog)
    })
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

fn assert_error(
    status: u16,
    body: &Value,
    want_status: u16,
    want_code: &str,
    want_in_message: &str,
) {
    assert_eq!(status, want_status, "status for {body}");
    assert_eq!(body["error"]["code"], want_code, "code in {body}");
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains(want_in_message),
        "message {msg:?} should mention {want_in_message:?}"
    );
}

#[test]
fn models_lists_the_model_with_its_limits() {
    let (status, text) = get(base(), "/api/models");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["models"][0]["name"], "listed-only", "sorted by name");
    assert_eq!(v["models"][0]["supported"], false);
    let m = &v["models"][1];
    assert_eq!(m["name"], MODEL);
    assert_eq!(m["prior"], "gp-1d");
    assert_eq!(m["max_context"], 23);
    assert_eq!(m["num_features"], 1);
    assert_eq!(m["supported"], true);
    assert_eq!(m["reference_gp"], "exact");
    assert_eq!(floats(&m["trained_x_range"]), vec![0.0, 1.0]);
    assert_eq!(v["limits"]["max_body_bytes"], 1 << 20);
}

#[test]
fn the_page_and_its_assets_are_served() {
    let (status, html) = get(base(), "/");
    assert_eq!(status, 200);
    assert!(html.contains("<canvas id=\"plot\""));
    let (status, js) = get(base(), "/app.js");
    assert_eq!(status, 200);
    assert!(js.contains("/api/predict"));
    let (status, css) = get(base(), "/style.css");
    assert_eq!(status, 200);
    assert!(css.contains("#plot"));
}

#[test]
fn predict_answers_a_grid_with_consistent_statistics() {
    let req = json!({
        "model": MODEL,
        "x": [0.1, 0.4, 0.8],
        "y": [0.5, -0.3, 1.0],
        "grid": {"min": 0.0, "max": 1.0, "n": 41},
        "levels": [0.5, 0.9, 0.99],
        "heatmap": {"y_min": -3.0, "y_max": 3.0, "n": 30}
    });
    let (status, v) = post(base(), "/api/predict", &req.to_string());
    assert_eq!(status, 200, "{v}");
    let x = floats(&v["x"]);
    assert_eq!(x.len(), 41);
    assert_eq!(x[0], 0.0);
    assert_eq!(x[40], 1.0);
    assert!((x[20] - 0.5).abs() < 1e-15);
    let mean = floats(&v["mean"]);
    let median = floats(&v["median"]);
    let std = floats(&v["std"]);
    assert_eq!(mean.len(), 41);
    assert!(std.iter().all(|s| *s > 0.0 && s.is_finite()));
    let bands = v["intervals"].as_array().unwrap();
    assert_eq!(bands.len(), 3);
    let lower: Vec<Vec<f64>> = bands.iter().map(|b| floats(&b["lower"])).collect();
    let upper: Vec<Vec<f64>> = bands.iter().map(|b| floats(&b["upper"])).collect();
    for j in 0..41 {
        // Nested central intervals around the median.
        assert!(lower[0][j] <= median[j] && median[j] <= upper[0][j]);
        for l in 1..3 {
            assert!(lower[l][j] <= lower[l - 1][j] && upper[l - 1][j] <= upper[l][j]);
        }
    }
    let heat = &v["heatmap"];
    let ys = floats(&heat["y"]);
    assert_eq!(ys.len(), 30);
    assert_eq!((ys[0], ys[29]), (-3.0, 3.0));
    let rows = heat["density"].as_array().unwrap();
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 41));
    let max = heat["max_density"].as_f64().unwrap();
    let seen = rows.iter().flat_map(floats).fold(0.0f64, f64::max);
    assert!((seen - max).abs() <= 1e-6 * max, "{seen} vs {max}");
    assert_eq!(v["out_of_range"]["any"], false);
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn the_gp_overlay_is_the_exact_gp_posterior() {
    let (cx, cy) = ([0.2, 0.5, 0.9], [1.0, -0.5, 0.25]);
    let req = json!({"model": MODEL, "x": cx, "y": cy, "query": [0.0, 0.35, 0.5, 0.77], "heatmap": {"n": 0}});
    let (status, v) = post(base(), "/api/predict", &req.to_string());
    assert_eq!(status, 200, "{v}");
    assert!(v["heatmap"].is_null());
    let gp = &v["gp"];
    assert_eq!(gp["kind"], "exact");
    assert_eq!(floats(&gp["hyper"]["lengthscales"]), vec![0.1]);
    let exact = ExactGp::fit(&cx, &cy, 1, GpPrior::paper_1d().hyper()).unwrap();
    let want = exact.predict(&[0.0, 0.35, 0.5, 0.77]).unwrap();
    let mean = floats(&gp["mean"]);
    let std = floats(&gp["std"]);
    for j in 0..4 {
        assert!((mean[j] - want.mean[j]).abs() < 1e-12);
        assert!((std[j] - want.var_y[j].sqrt()).abs() < 1e-12);
    }
    // The 90 % GP interval is mean ± 1.6449 std.
    let band = &gp["intervals"][1];
    assert_eq!(band["level"], 0.9);
    let lo = floats(&band["lower"]);
    for j in 0..4 {
        assert!((lo[j] - (want.mean[j] - 1.644_853_626_951_472 * std[j])).abs() < 1e-9);
    }
    // Comparison numbers: finite, KL >= 0, cross-entropy = entropy + KL on average.
    let c = &gp["comparison"];
    let kl = floats(&c["kl"]);
    assert_eq!(kl.len(), 4);
    assert!(kl.iter().all(|k| *k >= 0.0 && k.is_finite()));
    let mean_kl = c["mean_kl"].as_f64().unwrap();
    assert!((mean_kl - kl.iter().sum::<f64>() / 4.0).abs() < 1e-12);
    let ce = c["mean_cross_entropy"].as_f64().unwrap();
    let h = c["mean_gp_entropy"].as_f64().unwrap();
    assert!((ce - h - mean_kl).abs() < 1e-9, "{ce} - {h} vs {mean_kl}");
    assert!(c["definition"].as_str().unwrap().contains("KL(GP || PFN)"));
}

#[test]
fn predictions_are_reproducible_and_do_not_depend_on_the_other_queries() {
    let req = json!({"model": MODEL, "x": [0.3, 0.6], "y": [0.2, -0.4], "grid": {"min": 0.0, "max": 1.0, "n": 11}});
    let (_, a) = post(base(), "/api/predict", &req.to_string());
    let (_, b) = post(base(), "/api/predict", &req.to_string());
    assert_eq!(a["mean"], b["mean"]);
    assert_eq!(a["intervals"], b["intervals"]);
    // Queries attend only to the context, so x = 0.5 alone gets the grid's answer at 0.5.
    let single =
        json!({"model": MODEL, "x": [0.3, 0.6], "y": [0.2, -0.4], "query": [0.5], "gp": false});
    let (status, s) = post(base(), "/api/predict", &single.to_string());
    assert_eq!(status, 200, "{s}");
    assert!(s["gp"].is_null());
    let grid_mean = floats(&a["mean"])[5];
    let single_mean = floats(&s["mean"])[0];
    assert!(
        (grid_mean - single_mean).abs() < 1e-5 * (1.0 + grid_mean.abs()),
        "{grid_mean} vs {single_mean}"
    );
}

#[test]
fn the_prediction_responds_to_the_context() {
    let q = [0.5];
    let up = json!({"model": MODEL, "x": [0.45, 0.5, 0.55], "y": [1.5, 1.5, 1.5], "query": q});
    let down = json!({"model": MODEL, "x": [0.45, 0.5, 0.55], "y": [-1.5, -1.5, -1.5], "query": q});
    let (_, u) = post(base(), "/api/predict", &up.to_string());
    let (_, d) = post(base(), "/api/predict", &down.to_string());
    let (mu, md) = (floats(&u["mean"])[0], floats(&d["mean"])[0]);
    assert!(
        mu > md + 0.5,
        "context y = +1.5 gives mean {mu}, y = -1.5 gives {md}"
    );
}

#[test]
fn out_of_range_inputs_are_accepted_and_flagged() {
    let req = json!({
        "model": MODEL,
        "x": [0.2, 1.4, -0.3],
        "y": [0.0, 0.5, 40.0],
        "grid": {"min": -0.5, "max": 1.5, "n": 21}
    });
    let (status, v) = post(base(), "/api/predict", &req.to_string());
    assert_eq!(status, 200, "{v}");
    let o = &v["out_of_range"];
    assert_eq!(o["any"], true);
    assert_eq!(o["context_x"], json!([1, 2]));
    assert_eq!(
        o["context_y"],
        json!([2]),
        "y = 40 lies beyond the head's borders"
    );
    // Grid points -0.5..-0.1 and 1.1..1.5 are outside [0, 1]: 5 on each side.
    assert_eq!(o["query_x"], json!([0, 1, 2, 3, 4, 16, 17, 18, 19, 20]));
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("2 of 3 context points have x outside the trained range [0, 1]")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("query points lie outside")),
        "{warnings:?}"
    );
}

#[test]
fn default_grid_and_levels_apply() {
    let (status, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": [], "y": []}).to_string(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["x"].as_array().unwrap().len(), 200);
    let levels: Vec<f64> = v["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["level"].as_f64().unwrap())
        .collect();
    assert_eq!(levels, vec![0.5, 0.9, 0.99]);
    assert_eq!(v["heatmap"]["y"].as_array().unwrap().len(), 100);
    assert_eq!(v["n_context"], 0);
}

// ---------- 4xx ----------

#[test]
fn malformed_json_is_400() {
    let (s, v) = post(
        base(),
        "/api/predict",
        "{\"model\": \"tiny-gp-1d\", \"x\": [0.1,",
    );
    assert_error(s, &v, 400, "malformed_json", "invalid JSON request");
}

#[test]
fn nan_and_infinity_are_400_with_a_hint() {
    let body = format!("{{\"model\": \"{MODEL}\", \"x\": [0.1], \"y\": [NaN]}}");
    let (s, v) = post(base(), "/api/predict", &body);
    assert_error(s, &v, 400, "malformed_json", "JSON has no NaN or Infinity");
    let body = format!("{{\"model\": \"{MODEL}\", \"x\": [Infinity], \"y\": [0.0]}}");
    let (s, v) = post(base(), "/api/predict", &body);
    assert_error(s, &v, 400, "malformed_json", "every number must be finite");
    // A number too large for f64 is refused too.
    let body = format!("{{\"model\": \"{MODEL}\", \"x\": [1e400], \"y\": [0.0]}}");
    let (s, v) = post(base(), "/api/predict", &body);
    assert_error(s, &v, 400, "malformed_json", "number out of range");
}

#[test]
fn missing_and_unknown_fields_are_400() {
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": [0.1]}).to_string(),
    );
    assert_error(s, &v, 400, "malformed_json", "missing field `y`");
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": [], "y": [], "xs": []}).to_string(),
    );
    assert_error(s, &v, 400, "malformed_json", "unknown field `xs`");
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": ["a"], "y": [1]}).to_string(),
    );
    assert_error(s, &v, 400, "malformed_json", "invalid type");
}

#[test]
fn mismatched_lengths_are_422() {
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": [0.1, 0.2], "y": [0.3]}).to_string(),
    );
    assert_error(s, &v, 422, "length_mismatch", "x has 2 values but y has 1");
}

#[test]
fn too_many_points_are_422() {
    let x: Vec<f64> = (0..24).map(|i| i as f64 / 24.0).collect();
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": x, "y": x}).to_string(),
    );
    assert_error(
        s,
        &v,
        422,
        "too_many_points",
        "24 points given, the limit is 23",
    );
    assert_eq!(v["error"]["field"], "x");
    // 23 is accepted.
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": &x[..23], "y": &x[..23], "query": [0.5]}).to_string(),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": [], "y": [], "grid": {"min": 0, "max": 1, "n": 2001}})
            .to_string(),
    );
    assert_error(
        s,
        &v,
        422,
        "too_many_points",
        "2001 points given, the limit is 2000",
    );
    let q: Vec<f64> = vec![0.5; 2001];
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": MODEL, "x": [], "y": [], "query": q}).to_string(),
    );
    assert_error(s, &v, 422, "too_many_points", "query");
}

#[test]
fn unknown_model_is_404() {
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": "gp-9d", "x": [], "y": []}).to_string(),
    );
    assert_error(
        s,
        &v,
        404,
        "unknown_model",
        "unknown model 'gp-9d'; available: listed-only, tiny-gp-1d",
    );
}

#[test]
fn unsupported_model_is_422() {
    let (s, v) = post(
        base(),
        "/api/predict",
        &json!({"model": "listed-only", "x": [], "y": []}).to_string(),
    );
    assert_error(s, &v, 422, "unsupported_model", "this model has 5 features");
}

#[test]
fn invalid_grid_levels_and_heatmap_are_422() {
    let cases = [
        (
            json!({"grid": {"min": 1.0, "max": 0.0, "n": 10}}),
            "invalid_field",
            "min must be below max",
        ),
        (
            json!({"grid": {"min": 0.0, "max": 1.0, "n": 1}}),
            "invalid_field",
            "at least 2 points",
        ),
        (
            json!({"grid": {"min": 0.0, "max": 1.0, "n": 5}, "query": [0.5]}),
            "invalid_field",
            "not both",
        ),
        (
            json!({"query": []}),
            "invalid_field",
            "at least one query point",
        ),
        (
            json!({"levels": [0.5, 1.0]}),
            "invalid_field",
            "strictly between 0 and 1",
        ),
        (
            json!({"levels": [0.5, 0.5]}),
            "invalid_field",
            "given twice",
        ),
        (
            json!({"levels": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}),
            "invalid_field",
            "at most 8 levels",
        ),
        (json!({"heatmap": {"n": 1}}), "invalid_field", "rows"),
        (
            json!({"heatmap": {"n": 10, "y_min": 2.0, "y_max": -2.0}}),
            "invalid_field",
            "y_min < y_max",
        ),
        (
            json!({"heatmap": {"n": 10, "y_min": 2.0}}),
            "invalid_field",
            "both y_min and y_max",
        ),
        (
            json!({"grid": {"min": 0.0, "max": 1.0, "n": 2000}, "heatmap": {"n": 400}}),
            "invalid_field",
            "cells",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut req = json!({"model": MODEL, "x": [0.5], "y": [0.0]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let (s, v) = post(base(), "/api/predict", &req.to_string());
        assert_error(s, &v, 422, code, needle);
    }
}

#[test]
fn wrong_method_and_unknown_path_are_4xx_json() {
    let (s, text) = get(base(), "/api/predict");
    assert_eq!(s, 405);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
    let (s, text) = get(base(), "/api/nothing");
    assert_eq!(s, 404);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
}

/// Sends raw HTTP and returns the status line and the body.
fn raw_request(head: &str, body_chunks: Vec<Vec<u8>>) -> (String, String) {
    let addr = base().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // Write the body from another thread: the server may answer (and stop reading) early.
    let t = std::thread::spawn(move || {
        for c in body_chunks {
            if writer.write_all(&c).is_err() {
                break;
            }
        }
    });
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let _ = t.join();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn oversized_bodies_are_413() {
    // Declared too large: refused before reading.
    let head = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n";
    let (status, body) = raw_request(head, vec![vec![b' '; 4096]]);
    assert!(status.contains(" 413 "), "{status}");
    assert!(body.contains("\"code\":\"body_too_large\""), "{body}");
    assert!(
        body.contains("exceeds the limit of 1048576 bytes"),
        "{body}"
    );

    // Chunked, no length: refused once the limit is passed while reading.
    let head = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let chunk = vec![b' '; 256 * 1024];
    let mut chunks = Vec::new();
    for _ in 0..5 {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(&chunk);
        c.extend_from_slice(b"\r\n");
        chunks.push(c);
    }
    chunks.push(b"0\r\n\r\n".to_vec());
    let (status, body) = raw_request(head, chunks);
    assert!(status.contains(" 413 "), "{status}");
    assert!(body.contains("body_too_large"), "{body}");

    // Just under the limit is read (and then judged on its content).
    let mut big = format!("{{\"model\": \"{MODEL}\", \"x\": [], \"y\": [], \"pad\": \"");
    big.push_str(&"a".repeat((1 << 20) - big.len() - 3));
    big.push_str("\"}");
    assert!(big.len() < 1 << 20);
    let (s, v) = post(base(), "/api/predict", &big);
    assert_error(s, &v, 400, "malformed_json", "unknown field `pad`");
}
