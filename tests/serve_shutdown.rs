//! `pfn serve` stops cleanly on SIGTERM (issue 18): a request in flight when the signal arrives
//! still gets its answer, new connections are refused, and the process exits with status 0.
#![cfg(feature = "server")]

#[path = "common/serve.rs"]
mod serve;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_cleanly() {
    let mut server =
        serve::start_server(&["--demo".as_ref(), "--demo-steps".as_ref(), "30".as_ref()]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let body = serde_json::json!({
        "model": "demo-gp-1d", "x": [0.2, 0.7], "y": [0.1, -0.4], "query": [0.5], "gp": false
    })
    .to_string();
    // Start a request and send half of its body: it is in flight.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first.as_bytes()).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The server says it is shutting down.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw = false;
    while Instant::now() < deadline && !saw {
        if let Ok(line) = server.stderr.recv_timeout(Duration::from_millis(100)) {
            saw = line.contains("SIGTERM");
        }
    }
    assert!(saw, "no shutdown message");
    // The request in flight completes.
    stream.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The process exits with status 0, and then nothing listens any more.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "pfn serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(&addr).is_err());
}
