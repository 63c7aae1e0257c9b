//! A minimal W3C WebDriver client over HTTP (ureq) for headless Chromium via chromedriver: just
//! what the browser test needs (session, navigation, scripts, pointer actions, screenshots).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for n in names {
            let candidate = dir.join(n);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Finds Chromium and ChromeDriver or panics with instructions (the test must not pass silently
/// without a browser).
pub fn locate_browser() -> (PathBuf, PathBuf) {
    let chromium = find_program(
        "PFN_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find_program("PFN_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the browser test needs headless Chromium and ChromeDriver, but {} not found. \
             Install them with `apt-get install -y chromium chromium-driver` (Debian; .ci/run does this), \
             or point PFN_CHROMIUM and PFN_CHROMEDRIVER at the binaries.",
            match (c.is_none(), d.is_none()) {
                (true, true) => "neither chromium nor chromedriver was",
                (true, false) => "chromium was",
                _ => "chromedriver was",
            }
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A running chromedriver process (killed on drop).
pub struct Driver {
    child: Child,
    base: String,
}

impl Driver {
    /// Starts `driver` on a free loopback port and waits until it is ready.
    pub fn start(driver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut r) = agent().get(format!("{}/status", d.base)).call() {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if v["value"]["ready"] == true {
                    return d;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session (deleted on drop).
pub struct Session {
    base: String,
}

impl Session {
    /// Opens headless Chromium (`binary`) with a fresh profile in `profile_dir`.
    pub fn new(
        driver: &Driver,
        binary: &Path,
        profile_dir: &Path,
        width: u32,
        height: u32,
    ) -> Session {
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": binary.display().to_string(),
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--disable-extensions",
                        "--force-device-scale-factor=1", "--hide-scrollbars",
                        format!("--window-size={width},{height}"),
                        format!("--user-data-dir={}", profile_dir.display()),
                    ]
                }
            }}
        });
        let v = call(&driver.base, "POST", "/session", Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        Session {
            base: format!("{}/session/{id}", driver.base),
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&self.base, method, path, body)
    }

    /// Opens `url`.
    pub fn navigate(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` until it returns `true`, or panics after `timeout` with what `describe`
    /// returns then.
    pub fn wait_until(&self, script: &str, describe: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.execute(script, json!([])) == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let state = self.execute(describe, json!([]));
                panic!("timed out after {timeout:?} waiting for `{script}`; page state: {state}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Performs W3C pointer actions of a mouse, given as action items.
    pub fn mouse(&self, items: Vec<Value>) {
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{
                "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": items
            }]})),
        );
        self.cmd("DELETE", "/actions", None);
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd("GET", "/screenshot", None);
        let b64 = v
            .as_str()
            .unwrap_or_else(|| panic!("no screenshot data: {v}"));
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("screenshot is base64")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = agent().delete(&self.base).call();
    }
}

/// A pointer move to viewport coordinates.
pub fn move_to(x: i64, y: i64, duration_ms: u64) -> Value {
    json!({"type": "pointerMove", "duration": duration_ms, "origin": "viewport", "x": x, "y": y})
}

/// Press (`down = true`) or release a mouse button (0 left, 2 right).
pub fn button(down: bool, button: u8) -> Value {
    json!({"type": if down { "pointerDown" } else { "pointerUp" }, "button": button})
}

/// A short pause.
pub fn pause(ms: u64) -> Value {
    json!({"type": "pause", "duration": ms})
}

fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{base}{path}");
    let a = agent();
    let result = match (method, body) {
        ("GET", _) => a.get(&url).call(),
        ("DELETE", _) => a.delete(&url).call(),
        (_, Some(b)) => a
            .post(&url)
            .header("content-type", "application/json")
            .send(b.to_string()),
        (_, None) => a.post(&url).send_empty(),
    };
    let mut resp = result.unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"));
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: unreadable answer: {e}"));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON ({e}): {text}"));
    if status >= 400 {
        panic!(
            "WebDriver {method} {path} answered {status}: {}",
            v["value"]
        );
    }
    v["value"].clone()
}
