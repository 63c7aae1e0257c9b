//! A `pfn serve` child process on a free loopback port, for the end-to-end tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `pfn serve` child process (killed on drop) and its base URL `http://127.0.0.1:PORT`.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The base URL it printed.
    pub url: String,
    /// Its stderr lines, as they come.
    pub stderr: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `pfn serve --addr 127.0.0.1:0 ARGS...` and waits (up to 60 s) for its address.
pub fn start_server(args: &[&std::ffi::OsStr]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pfn"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pfn serve");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("pfn serve: listening on ") {
                let _ = tx.send(url.trim_end_matches('/').to_string());
            }
        }
    });
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let _ = etx.send(line);
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            panic!("pfn serve did not report its address within 60 s");
        }
    };
    Server {
        child,
        url,
        stderr: erx,
    }
}
