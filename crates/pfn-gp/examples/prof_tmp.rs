use pfn_gp::*;
use std::time::Instant;
fn main() {
    let n = 1000;
    let d = 5;
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i as f64) * 0.618033988).fract())
        .collect();
    let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.1).sin()).collect();
    let xt: Vec<f64> = (0..100 * d)
        .map(|i| ((i as f64) * 0.41421356).fract())
        .collect();
    let h = GpHyper::new(KernelKind::Rbf, vec![0.6], 1.0, 1e-4).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let k = h.train_cov(&x, d);
        let t1 = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let c = Cholesky::factor(&k, n).unwrap();
        let t2 = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let gp = ExactGp::fit(&x, &y, d, &h).unwrap();
        let t3 = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let p = gp.predict(&xt).unwrap();
        let t4 = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "cov {t1:.2} ms, chol {t2:.2} ms (jitter {}), fit {t3:.2} ms, predict {t4:.2} ms {}",
            c.jitter, p.mean[0]
        );
    }
}
