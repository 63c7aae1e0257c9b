use pfn_prior::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = &args[1];
    let f: usize = args[2].parse().unwrap();
    let n: usize = args[3].parse().unwrap();
    let b: usize = args[4].parse().unwrap();
    let iters: u64 = args[5].parse().unwrap();
    let p = prior_by_name(name).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let t = std::time::Instant::now();
    let mut best = f64::INFINITY;
    for i in 0..iters {
        let t0 = std::time::Instant::now();
        std::hint::black_box(pool.install(|| p.sample_batch(0, i, b, n, f).unwrap()));
        best = best.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "{name} f{f} n{n} b{b}: mean {:.3} ms, best {:.3} ms per batch (1 thread)",
        t.elapsed().as_secs_f64() * 1e3 / iters as f64,
        best * 1e3
    );
}
