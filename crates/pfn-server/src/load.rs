//! A load generator for the prediction API: `concurrency` client threads send `requests` raw
//! HTTP/1.1 requests over fresh loopback connections, mixing valid predictions with malformed
//! JSON, oversized bodies and slow bodies that stall past the server's body timeout, and record the
//! status of each and the latency of the valid ones. `examples/load_test.rs` runs it against the
//! shipped models; `tests/load.rs` runs a smaller mix in the test suite.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::MAX_BODY_BYTES;

/// What a generated request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// A well-formed prediction request.
    Valid,
    /// A body cut short: not JSON.
    Malformed,
    /// A `Content-Length` above the server's limit.
    Oversized,
    /// Half the body, a pause longer than the body timeout, then the rest.
    Slow,
}

/// The load to generate.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Requests in all.
    pub requests: usize,
    /// Client threads.
    pub concurrency: usize,
    /// The body of a valid request (`POST /api/predict`).
    pub valid_body: String,
    /// Per-mille shares of malformed, oversized and slow requests; the rest are valid.
    pub malformed_per_mille: usize,
    /// See `malformed_per_mille`.
    pub oversized_per_mille: usize,
    /// See `malformed_per_mille`.
    pub slow_per_mille: usize,
    /// How long a slow request stalls in the middle of its body.
    pub slow_pause: Duration,
    /// Every how many completed requests the progress callback of [`run_load`] is called (0:
    /// never), e.g. to sample memory.
    pub progress_every: usize,
}

/// What the load produced.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Responses per request kind and HTTP status (0: no response, the connection failed).
    pub statuses: BTreeMap<(RequestKind, u16), usize>,
    /// Latencies of the valid requests, sorted (seconds).
    pub valid_latencies: Vec<f64>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl LoadReport {
    /// The `q`-quantile of the valid requests' latency (seconds), nearest rank.
    pub fn latency_quantile(&self, q: f64) -> f64 {
        let n = self.valid_latencies.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.valid_latencies[rank - 1]
    }

    /// Responses of `kind` whose status satisfies `pred`.
    pub fn count(&self, kind: RequestKind, pred: impl Fn(u16) -> bool) -> usize {
        self.statuses
            .iter()
            .filter(|((k, s), _)| *k == kind && pred(*s))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The kind of request number `i`: a fixed pattern (a multiplicative hash of `i`), so runs repeat.
fn kind_of(i: usize, spec: &LoadSpec) -> RequestKind {
    let r = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    let r = (r % 1000) as usize;
    if r < spec.malformed_per_mille {
        RequestKind::Malformed
    } else if r < spec.malformed_per_mille + spec.oversized_per_mille {
        RequestKind::Oversized
    } else if r < spec.malformed_per_mille + spec.oversized_per_mille + spec.slow_per_mille {
        RequestKind::Slow
    } else {
        RequestKind::Valid
    }
}

fn head(addr: SocketAddr, length: usize) -> String {
    format!(
        "POST /api/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

/// Sends one request of `kind` and returns the response status (0 when none came).
fn send(kind: RequestKind, spec: &LoadSpec) -> u16 {
    let attempt = || -> std::io::Result<u16> {
        let mut stream = TcpStream::connect(spec.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.set_nodelay(true)?;
        let body = spec.valid_body.as_bytes();
        match kind {
            RequestKind::Valid => {
                stream.write_all(head(spec.addr, body.len()).as_bytes())?;
                stream.write_all(body)?;
            }
            RequestKind::Malformed => {
                let cut = &body[..body.len() / 2];
                stream.write_all(head(spec.addr, cut.len()).as_bytes())?;
                stream.write_all(cut)?;
            }
            RequestKind::Oversized => {
                // The server answers from the header alone; send a little of the body only.
                stream.write_all(head(spec.addr, MAX_BODY_BYTES + 1).as_bytes())?;
                let _ = stream.write_all(&[b' '; 1024]);
            }
            RequestKind::Slow => {
                let (first, rest) = body.split_at(body.len() / 2);
                stream.write_all(head(spec.addr, body.len()).as_bytes())?;
                stream.write_all(first)?;
                std::thread::sleep(spec.slow_pause);
                // The server may have answered and closed already.
                let _ = stream.write_all(rest);
            }
        }
        let mut response = Vec::new();
        let mut buf = [0u8; 16 << 10];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                // A reset after the whole response arrived (the server closed first) is fine.
                Err(_) if !response.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        let status = std::str::from_utf8(&response[..response.len().min(12)])
            .ok()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(status)
    };
    attempt().unwrap_or(0)
}

/// Runs the load; `on_progress(done)` is called every `progress_every` completed requests.
pub fn run_load(spec: &LoadSpec, on_progress: &(dyn Fn(usize) + Sync)) -> LoadReport {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let report = Mutex::new(LoadReport::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..spec.concurrency.max(1) {
            scope.spawn(|| {
                let mut statuses: BTreeMap<(RequestKind, u16), usize> = BTreeMap::new();
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= spec.requests {
                        break;
                    }
                    let kind = kind_of(i, spec);
                    let t = Instant::now();
                    let status = send(kind, spec);
                    if kind == RequestKind::Valid {
                        latencies.push(t.elapsed().as_secs_f64());
                    }
                    *statuses.entry((kind, status)).or_default() += 1;
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if spec.progress_every > 0 && d.is_multiple_of(spec.progress_every) {
                        on_progress(d);
                    }
                }
                let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                for (k, n) in statuses {
                    *r.statuses.entry(k).or_default() += n;
                }
                r.valid_latencies.extend(latencies);
            });
        }
    });
    let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    report.valid_latencies.sort_by(f64::total_cmp);
    report.elapsed = started.elapsed();
    report
}

/// Serves `router` on a free loopback port from a background thread (its own 2-worker tokio
/// runtime) and returns the address, for load tests and in-process tests. Panics if the runtime
/// cannot start or the port cannot be bound (test set-up, not user input).
pub fn serve_in_background(router: axum::Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            axum::serve(listener, router).await.expect("serve");
        });
    });
    rx.recv().expect("server address")
}

/// This process's resident memory in KiB (Linux `/proc/self/status`), if known.
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
