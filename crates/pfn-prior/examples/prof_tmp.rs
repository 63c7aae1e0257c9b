use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::{MatMut, Par};
use pfn_prior::rng::dataset_rng;
use pfn_prior::*;
use std::time::Instant;

fn min_time(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    for n in [100usize, 1000] {
        let reps = if n == 100 { 2000 } else { 20 };
        let gp = GpPrior::paper_1d();
        let h = gp.hyper().clone();
        let mut rng = dataset_rng(0, 0, 0);
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.618).fract()).collect();
        let mut y = vec![0f32; n];
        let t_all = min_time(reps, || sample_gp_at(&h, &x, 1, &mut rng, &mut y).unwrap());
        // exp cost
        let mut buf = vec![0f64; n * n];
        let t_exp = min_time(reps, || {
            for j in 0..n {
                for i in j + 1..n {
                    let t = x[i] as f64 - x[j] as f64;
                    buf[j * n + i] = (-0.5 * t * t * 100.0).exp();
                }
                buf[j * n + j] = 1.0001;
            }
        });
        let cov = covariance_at(&h, &x, 1).unwrap();
        let mut stack = MemBuffer::new(cholesky_in_place_scratch::<f64>(
            n,
            Par::Seq,
            Default::default(),
        ));
        let t_chol = min_time(reps, || {
            buf.copy_from_slice(&cov);
            let a = MatMut::from_column_major_slice_mut(&mut buf, n, n);
            cholesky_in_place(
                a,
                Default::default(),
                Par::Seq,
                MemStack::new(&mut stack),
                Default::default(),
            )
            .unwrap();
        });
        let t_copy = min_time(reps, || {
            buf.copy_from_slice(&cov);
            std::hint::black_box(&buf);
        });
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let t_gpchol = min_time(reps.min(50), || {
            std::hint::black_box(pfn_gp::Cholesky::factor(&cov, n).unwrap());
        });
        let t_traincov = min_time(reps.min(50), || {
            std::hint::black_box(h.train_cov(&x64, 1));
        });
        println!("n={n}: all {:.1}us  exp-fill {:.1}us  faer chol {:.1}us (copy {:.1}us)  pfn_gp chol {:.1}us  train_cov {:.1}us",
            t_all*1e6, t_exp*1e6, (t_chol-t_copy)*1e6, t_copy*1e6, t_gpchol*1e6, t_traincov*1e6);
    }
    let p = prior_by_name("bnn").unwrap();
    let t = min_time(20, || {
        std::hint::black_box(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| p.sample_batch(0, 0, 64, 100, 3).unwrap()),
        );
    });
    println!("bnn 64x100 1 thread: {:.2} ms", t * 1e3);
    let p = prior_by_name("gp-1d").unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let t = min_time(50, || {
        std::hint::black_box(pool.install(|| p.sample_batch(0, 0, 64, 100, 1).unwrap()));
    });
    println!("gp-1d 64x100 1 thread: {:.2} ms", t * 1e3);
}
