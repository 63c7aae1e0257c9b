//! The server under load (issue 18): many concurrent clients mixing valid, malformed, oversized
//! and slow requests get the right answer each, with no 5xx for valid requests and flat memory;
//! beyond the compute queue the server answers 503 with `Retry-After`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{catalog, serve_with_limits, MODEL};
use pfn_server::load::{resident_kib, run_load, LoadSpec, RequestKind};
use pfn_server::ServerLimits;

fn addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

fn valid_body() -> String {
    serde_json::json!({
        "model": MODEL,
        "x": [0.1, 0.25, 0.4, 0.55, 0.8],
        "y": [0.5, 0.1, -0.3, 0.2, 1.0],
        "grid": {"min": 0.0, "max": 1.0, "n": 41},
        "levels": [0.5, 0.9]
    })
    .to_string()
}

#[test]
fn mixed_load_gets_the_right_status_for_every_request_and_memory_stays_flat() {
    let base = serve_with_limits(
        catalog(),
        ServerLimits {
            max_concurrent: 2,
            body_timeout: Duration::from_millis(300),
            ..ServerLimits::default()
        },
    );
    let spec = LoadSpec {
        addr: addr(&base),
        requests: 3000,
        concurrency: 32,
        valid_body: valid_body(),
        malformed_per_mille: 50,
        oversized_per_mille: 30,
        slow_per_mille: 10,
        slow_pause: Duration::from_millis(700),
        progress_every: 500,
    };
    let samples = std::sync::Mutex::new(Vec::new());
    let report = run_load(&spec, &|done| {
        if let Some(kib) = resident_kib() {
            samples.lock().unwrap().push((done, kib));
        }
    });
    eprintln!("{:?}", report.statuses);
    let n = |kind| report.count(kind, |_| true);
    assert_eq!(
        n(RequestKind::Valid),
        report.count(RequestKind::Valid, |s| s == 200)
    );
    assert_eq!(
        n(RequestKind::Malformed),
        report.count(RequestKind::Malformed, |s| s == 400)
    );
    assert_eq!(
        n(RequestKind::Oversized),
        report.count(RequestKind::Oversized, |s| s == 413)
    );
    assert_eq!(
        n(RequestKind::Slow),
        report.count(RequestKind::Slow, |s| s == 408)
    );
    for kind in [
        RequestKind::Malformed,
        RequestKind::Oversized,
        RequestKind::Slow,
    ] {
        assert!(n(kind) > 0, "the mix has no {kind:?} request");
    }
    eprintln!(
        "{} requests in {:.1} s; valid p50 {:.1} ms, p99 {:.1} ms; resident memory (KiB) after \
         each 500: {:?}",
        spec.requests,
        report.elapsed.as_secs_f64(),
        1e3 * report.latency_quantile(0.5),
        1e3 * report.latency_quantile(0.99),
        samples.lock().unwrap()
    );
    // Flat memory: between the first sample and the last the process grows by less than 64 MiB
    // (the allocator keeps freed pages; a leak of the request bodies alone would be far more).
    let samples = samples.into_inner().unwrap();
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        assert!(
            last.1 < first.1 + 64 * 1024,
            "resident memory grew from {} KiB to {} KiB",
            first.1,
            last.1
        );
    }
    // The server still answers.
    let (status, _) = common::post(&base, "/api/predict", &valid_body());
    assert_eq!(status, 200);
}

/// One raw request; returns the status line and the headers.
fn raw_post(addr: SocketAddr, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn beyond_the_queue_requests_get_503_with_retry_after() {
    let base = serve_with_limits(
        catalog(),
        ServerLimits {
            max_concurrent: 1,
            max_queued: 0,
            queue_wait: Duration::from_millis(1),
            retry_after_secs: 3,
            ..ServerLimits::default()
        },
    );
    let a = addr(&base);
    // A heavier request (a fine heatmap) so that requests overlap.
    let body = serde_json::json!({
        "model": MODEL, "x": [0.1, 0.5], "y": [0.0, 1.0],
        "grid": {"min": 0.0, "max": 1.0, "n": 400},
        "heatmap": {"y_min": -3.0, "y_max": 3.0, "n": 200}
    })
    .to_string();
    let answers: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|_| scope.spawn(|| raw_post(a, &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers
        .iter()
        .filter(|t| t.starts_with("HTTP/1.1 200"))
        .count();
    let busy: Vec<&String> = answers
        .iter()
        .filter(|t| t.starts_with("HTTP/1.1 503"))
        .collect();
    assert_eq!(
        ok + busy.len(),
        answers.len(),
        "only 200 and 503 are expected"
    );
    assert!(
        ok >= 1 && !busy.is_empty(),
        "{ok} answered, {} refused",
        busy.len()
    );
    for t in busy {
        let lower = t.to_ascii_lowercase();
        assert!(lower.contains("retry-after: 3"), "{t}");
        assert!(lower.contains("\"code\":\"busy\""), "{t}");
    }
}
