//! End-to-end test of `pfn serve` in headless Chromium (driven over WebDriver by chromedriver).
//!
//! 1. trains a tiny gp-1d PFN, saves it as a model artifact in a fresh models directory and starts
//!    the `pfn` binary: `pfn serve --addr 127.0.0.1:0 --models DIR`;
//! 2. opens the page, adds points by clicking on the canvas (checking that each click lands at
//!    the data coordinates of the clicked pixel), drags one, adds and right-clicks away another,
//!    and adds one outside the trained x range (which the page must flag);
//! 3. reads the plotted PFN mean at a grid point from the page (the table the page fills from the
//!    numbers it draws), checks that the canvas really has the mean line's colour at that pixel,
//!    and checks the numbers against `POST /api/predict` for the same points;
//! 4. saves a screenshot to `target/browser-test/pfn-serve.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`); without them the test
//! fails with instructions instead of passing.
#![cfg(feature = "server")]

#[path = "common/serve.rs"]
mod serve;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pfn_server::demo_model::{save_demo_model, train_demo_model, DemoModelSpec};
use serde_json::{json, Value};
use webdriver::{button, locate_browser, move_to, pause, Driver, Session};

const MODEL: &str = "gp-1d-test";
const WAIT: Duration = Duration::from_secs(30);

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .to_path_buf()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Plot geometry the page publishes: CSS pixels of the plot area and the view's data range.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// Canvas position in the viewport.
    canvas_left: f64,
    canvas_top: f64,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Geometry {
    fn read(s: &Session) -> Self {
        let v = s.execute(
            "const c = document.getElementById('plot'); const r = c.getBoundingClientRect(); \
             const a = JSON.parse(c.dataset.plotArea); a.canvasLeft = r.left; a.canvasTop = r.top; return a;",
            json!([]),
        );
        let f = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("plotArea.{k} missing in {v}"))
        };
        Geometry {
            canvas_left: f("canvasLeft"),
            canvas_top: f("canvasTop"),
            left: f("left"),
            top: f("top"),
            width: f("width"),
            height: f("height"),
            x0: f("x0"),
            x1: f("x1"),
            y0: f("y0"),
            y1: f("y1"),
        }
    }

    /// Viewport pixel (rounded) of a data point.
    fn to_viewport(self, x: f64, y: f64) -> (i64, i64) {
        let px = self.canvas_left + self.left + (x - self.x0) / (self.x1 - self.x0) * self.width;
        let py =
            self.canvas_top + self.top + (1.0 - (y - self.y0) / (self.y1 - self.y0)) * self.height;
        (px.round() as i64, py.round() as i64)
    }

    /// Data point under a viewport pixel (the page's own mapping).
    fn to_data(self, vx: i64, vy: i64) -> (f64, f64) {
        let px = vx as f64 - self.canvas_left - self.left;
        let py = vy as f64 - self.canvas_top - self.top;
        (
            self.x0 + px / self.width * (self.x1 - self.x0),
            self.y0 + (1.0 - py / self.height) * (self.y1 - self.y0),
        )
    }

    /// Data units of one pixel in x and y.
    fn pixel(self) -> (f64, f64) {
        (
            (self.x1 - self.x0) / self.width,
            (self.y1 - self.y0) / self.height,
        )
    }
}

fn points(s: &Session) -> Vec<(f64, f64)> {
    let v = s.execute(
        "return JSON.parse(document.getElementById('plot').dataset.points);",
        json!([]),
    );
    v.as_array()
        .expect("points")
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Waits until the page shows a fresh answer for its current `n` points.
fn wait_settled(s: &Session, n: usize) {
    s.wait_until(
        &format!(
            "const c = document.getElementById('plot'); const st = document.getElementById('status').dataset.state; \
             return st === 'ready' && c.dataset.points === c.dataset.resultPoints \
               && JSON.parse(c.dataset.points).length === {n} \
               && document.querySelectorAll('#readout tbody tr').length > 0;"
        ),
        "const c = document.getElementById('plot'); return {status: document.getElementById('status').textContent, \
         state: document.getElementById('status').dataset.state, points: c.dataset.points, result: c.dataset.resultPoints, \
         warnings: document.getElementById('warnings').textContent};",
        WAIT,
    );
}

fn click(s: &Session, at: (i64, i64), which: u8) {
    s.mouse(vec![
        move_to(at.0, at.1, 0),
        button(true, which),
        pause(30),
        button(false, which),
    ]);
}

fn assert_close(got: (f64, f64), want: (f64, f64), tol: (f64, f64), what: &str) {
    assert!(
        (got.0 - want.0).abs() <= tol.0 && (got.1 - want.1).abs() <= tol.1,
        "{what}: page has ({}, {}), expected ({}, {}) within ({}, {})",
        got.0,
        got.1,
        want.0,
        want.1,
        tol.0,
        tol.1
    );
}

#[test]
fn the_demo_page_plots_what_the_api_answers() {
    let (chromium, chromedriver) = locate_browser();

    // A tiny trained model in a fresh models directory.
    let work = target_dir().join("browser-test");
    let models = work.join(format!("models-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&models);
    std::fs::create_dir_all(&models).unwrap();
    let artifact = train_demo_model(&DemoModelSpec::gp_1d(300, 0)).expect("train the test model");
    save_demo_model(&artifact, models.join(format!("{MODEL}.safetensors"))).unwrap();

    let server = serve::start_server(&[
        "--threads".as_ref(),
        "2".as_ref(),
        "--models".as_ref(),
        models.as_os_str(),
    ]);
    let driver = Driver::start(&chromedriver);
    let profile = work.join(format!("chromium-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let s = Session::new(&driver, &chromium, &profile, 1400, 1000);
    s.navigate(&format!("{}/", server.url));
    s.wait_until(
        &format!(
            "return document.getElementById('model').value === '{MODEL}' \
             && document.getElementById('status').dataset.state === 'ready';"
        ),
        "return document.getElementById('status').textContent;",
        WAIT,
    );
    let g = Geometry::read(&s);
    let (ux, uy) = g.pixel();
    let tol = (0.75 * ux, 0.75 * uy);

    // Click to add three points; each lands where the pixel says.
    let targets = [(0.15, 0.6), (0.45, -0.9), (0.8, 1.1)];
    for (k, &(x, y)) in targets.iter().enumerate() {
        let at = g.to_viewport(x, y);
        click(&s, at, 0);
        wait_settled(&s, k + 1);
        let p = points(&s);
        assert_close(
            p[k],
            g.to_data(at.0, at.1),
            tol,
            &format!("point {k} after a click"),
        );
    }

    // Drag the second point to a new place.
    let from = g.to_viewport(targets[1].0, targets[1].1);
    let to = g.to_viewport(0.55, -0.2);
    s.mouse(vec![
        move_to(from.0, from.1, 0),
        button(true, 0),
        move_to((from.0 + to.0) / 2, (from.1 + to.1) / 2, 150),
        move_to(to.0, to.1, 150),
        button(false, 0),
    ]);
    wait_settled(&s, 3);
    let p = points(&s);
    assert_close(p[1], g.to_data(to.0, to.1), tol, "the dragged point");
    assert_close(
        p[0],
        g.to_data(g.to_viewport(0.15, 0.6).0, g.to_viewport(0.15, 0.6).1),
        tol,
        "an undragged point",
    );

    // Add a fourth point, then remove it with a right-click.
    let extra = g.to_viewport(0.3, -1.8);
    click(&s, extra, 0);
    wait_settled(&s, 4);
    click(&s, extra, 2);
    wait_settled(&s, 3);
    let p = points(&s);
    assert!(
        p.iter()
            .all(|&(x, y)| (x - 0.3).abs() > 3.0 * ux || (y + 1.8).abs() > 3.0 * uy),
        "the right-clicked point is still there: {p:?}"
    );

    // A point outside the trained range [0, 1] is accepted and flagged.
    let outside = g.to_viewport(1.06, 0.3);
    click(&s, outside, 0);
    wait_settled(&s, 4);
    let flagged = s.execute(
        "return {warnings: document.getElementById('warnings').textContent, \
                 outRows: document.querySelectorAll('#points tbody tr.out').length};",
        json!([]),
    );
    assert!(
        flagged["warnings"]
            .as_str()
            .unwrap()
            .contains("outside the trained range [0, 1]"),
        "no out-of-range warning on the page: {flagged}"
    );
    assert_eq!(flagged["outRows"], 1, "{flagged}");

    // The plotted numbers at a grid point inside [0, 1] where the mean is flattest (so that the
    // pixel check below sees a nearly horizontal line), as the page drew them.
    let means = s.execute(
        "return Array.from(document.querySelectorAll('#readout tbody tr')).map(r => [Number(r.dataset.x), Number(r.dataset.mean)]);",
        json!([]),
    );
    let means: Vec<(f64, f64)> = means
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()))
        .collect();
    let j = (2..means.len() - 2)
        .filter(|&i| (0.05..=0.95).contains(&means[i].0))
        .min_by(|&a, &b| {
            let slope = |i: usize| (means[i + 2].1 - means[i - 2].1).abs();
            slope(a).total_cmp(&slope(b))
        })
        .expect("grid points inside [0, 1]");
    let row = s.execute(
        "const r = document.querySelector(`#readout tbody tr[data-i=\"${arguments[0]}\"]`); \
         return {x: Number(r.dataset.x), mean: Number(r.dataset.mean), median: Number(r.dataset.median), \
                 gp: Number(r.dataset.gpMean), rows: document.querySelectorAll('#readout tbody tr').length};",
        json!([j]),
    );
    let page_x = row["x"].as_f64().unwrap();
    let page_mean = row["mean"].as_f64().unwrap();
    let page_gp = row["gp"].as_f64().unwrap();
    let rows = row["rows"].as_u64().unwrap() as usize;

    // The canvas draws the mean line at (x_j, mean_j): zoom the view to mean_j ± 0.15 (about
    // 1600 px per unit, so a line off by 0.01 would be 16 px away), hide the heat map and the
    // bands, and look for the line's blue at that pixel and not 12 px above or below it.
    let seq = s.execute(
        "return document.getElementById('plot').dataset.renderSeq;",
        json!([]),
    );
    s.execute(
        "for (const id of ['show-heatmap', 'show-intervals']) document.getElementById(id).click(); \
         const y0 = document.getElementById('y0'); const y1 = document.getElementById('y1'); \
         y0.value = String(arguments[0] - 0.15); y1.value = String(arguments[0] + 0.15); \
         y1.dispatchEvent(new Event('change'));",
        json!([page_mean]),
    );
    s.wait_until(
        &format!("return document.getElementById('plot').dataset.renderSeq !== {seq};"),
        "return document.getElementById('status').textContent;",
        WAIT,
    );
    wait_settled(&s, 4);
    let zoomed = Geometry::read(&s);
    assert!(
        (zoomed.y1 - zoomed.y0 - 0.3).abs() < 1e-9,
        "the view did not zoom: {zoomed:?}"
    );
    let zoomed_mean = s.execute(
        "return Number(document.querySelector(`#readout tbody tr[data-i=\"${arguments[0]}\"]`).dataset.mean);",
        json!([j]),
    );
    assert_eq!(
        zoomed_mean.as_f64(),
        Some(page_mean),
        "zooming in y changed the numbers"
    );
    let (vx, vy) = zoomed.to_viewport(page_x, page_mean);
    let blue_distance = |dy: i64| -> f64 {
        s.execute(
            "const c = document.getElementById('plot'); const r = c.getBoundingClientRect(); \
             const d = c.getContext('2d').getImageData(Math.round(arguments[0] - r.left), Math.round(arguments[1] - r.top) - 2, 1, 5).data; \
             let best = 1e9; for (let k = 0; k < 5; k++) { \
               const e = Math.abs(d[4*k] - 31) + Math.abs(d[4*k+1] - 95) + Math.abs(d[4*k+2] - 191); best = Math.min(best, e); } \
             return best;",
            json!([vx, vy + dy]),
        )
        .as_f64()
        .unwrap()
    };
    let on_line = blue_distance(0);
    assert!(
        on_line <= 60.0,
        "no PFN-mean blue within 2 px of ({vx}, {vy}) on the canvas (closest L1 colour distance {on_line})"
    );
    for dy in [-12, 12] {
        let off = blue_distance(dy);
        assert!(
            off > 150.0,
            "PFN-mean blue {dy} px off the mean (L1 colour distance {off})"
        );
    }

    // The same request through the API gives the same numbers.
    let p = points(&s);
    let request = json!({
        "model": MODEL,
        "x": p.iter().map(|q| q.0).collect::<Vec<_>>(),
        "y": p.iter().map(|q| q.1).collect::<Vec<_>>(),
        "grid": {"min": g.x0, "max": g.x1, "n": rows},
        "levels": [0.5, 0.9, 0.99],
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(format!("{}/api/predict", server.url))
        .header("content-type", "application/json")
        .send(request.to_string())
        .expect("API request");
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .expect("API answer");
    let api: Value = serde_json::from_str(&text).expect("API JSON");
    let api_x = floats(&api["x"])[j];
    let api_mean = floats(&api["mean"])[j];
    let api_gp = floats(&api["gp"]["mean"])[j];
    assert_eq!(page_x, api_x, "grid point {j}");
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
    assert!(
        same(page_mean, api_mean),
        "PFN mean at x = {page_x}: page {page_mean}, API {api_mean}"
    );
    assert!(
        same(page_gp, api_gp),
        "GP mean at x = {page_x}: page {page_gp}, API {api_gp}"
    );
    assert_eq!(api["out_of_range"]["context_x"], json!([3]));

    // Nothing was loaded from anywhere but the server.
    let foreign = s.execute(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(arguments[0]));",
        json!([server.url]),
    );
    assert_eq!(foreign, json!([]), "the page loaded external resources");

    // Back to the model's view with everything shown; hover to show the tooltip; screenshot.
    s.execute(
        "for (const id of ['show-heatmap', 'show-intervals']) document.getElementById(id).click(); \
         document.getElementById('reset-view').click();",
        json!([]),
    );
    wait_settled(&s, 4);
    let g = Geometry::read(&s);
    let hover = g.to_viewport(0.33, g.y1 - 0.25 * (g.y1 - g.y0));
    s.mouse(vec![move_to(hover.0, hover.1, 0)]);
    s.wait_until(
        "return !document.getElementById('tooltip').hidden;",
        "return document.getElementById('tooltip').outerHTML;",
        WAIT,
    );
    let png = s.screenshot();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    let shot = work.join("pfn-serve.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {}", shot.display());

    drop(s);
    drop(driver);
    drop(server);
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_dir_all(&models);
}
