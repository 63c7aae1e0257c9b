//! `mpiexec -n 2 pfn train` end to end (cargo feature `mpi`; `.ci/run` installs MPICH and runs
//! `cargo test --release -p pfn --features mpi --test mpi`): two ranks train the model one process
//! trains with twice the accumulation, a rank that dies ends the job instead of hanging it, and
//! the run resumes exactly under MPI from the checkpoint rank 0 wrote.
#![cfg(all(feature = "mpi", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pfn_train::{load_checkpoint, load_model, RunConfig, Trainer};

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pfn() -> &'static str {
    env!("CARGO_BIN_EXE_pfn")
}

/// `mpiexec -n ranks pfn args…`, without waiting.
fn mpiexec(ranks: usize, args: &[&str]) -> Child {
    Command::new("mpiexec")
        .args(["-n", &ranks.to_string(), pfn()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpiexec runs (install MPICH: apt-get install mpich libmpich-dev)")
}

/// Waits for `child`, failing the test (after killing it) if it takes longer than `limit`.
fn wait_at_most(mut child: Child, limit: Duration) -> Output {
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "mpiexec still running after {limit:?} (a hang); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_ok(ranks: usize, args: &[&str]) -> Output {
    let out = wait_at_most(mpiexec(ranks, args), Duration::from_secs(300));
    assert!(
        out.status.success(),
        "mpiexec -n {ranks} pfn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// configs/tiny.toml with the given budget, one thread per rank.
fn config(dir: &Path, name: &str, steps: u64, checkpoint_every: u64, accumulation: u32) -> PathBuf {
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml");
    let mut c = RunConfig::load(&tiny).unwrap();
    c.budget.steps = Some(steps);
    c.budget.checkpoint_every = Some(checkpoint_every);
    c.budget.validation_every = None;
    c.budget.validation_datasets = 16;
    c.optimizer.warmup_steps = Some(3);
    c.optimizer.accumulation_steps = accumulation;
    c.run.threads = Some(1);
    let path = dir.join(name);
    std::fs::write(&path, c.to_toml_string().unwrap()).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_ranks_train_what_one_process_trains_with_twice_the_accumulation() {
    let d = dir("equal");
    let (two, one) = (d.join("two.pfn"), d.join("one.pfn"));
    let c1 = config(&d, "c1.toml", 20, 10, 1);
    let out = run_ok(2, &["train", "--config", s(&c1), "--out", s(&two)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Rank 0 alone reports.
    assert_eq!(stdout.matches("trained 20 steps").count(), 1, "{stdout}");
    assert!(stdout.contains("(1280 datasets)"), "{stdout}");
    let c2 = config(&d, "c2.toml", 20, 10, 2);
    let single = Command::new(pfn())
        .args(["train", "--config", s(&c2), "--out", s(&one)])
        .output()
        .unwrap();
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );

    let (a, b) = (load_model(&two).unwrap(), load_model(&one).unwrap());
    let stored = pfn_train::run_config_of(&a.metadata).unwrap();
    assert_eq!(stored.run.world_size, Some(2));
    assert_eq!(stored.datasets_per_step(), 64);
    assert_eq!(a.metadata.training.datasets, b.metadata.training.datasets);
    // The same criterion as crates/pfn-train/tests/data_parallel.rs, which explains it: the
    // ranks add their gradient sums after the backward pass, one process inside it, so f32
    // roundings differ; the difference must stay far below the distance training moved.
    let flat = |m: &pfn_train::ModelArtifact| -> Vec<f32> {
        let model = pfn_train::model_from_tensors(&m.metadata.architecture, &m.tensors).unwrap();
        model.params().to_vec()
    };
    let (p, q) = (flat(&a), flat(&b));
    let p0 = Trainer::new(RunConfig::load(&c2).unwrap())
        .unwrap()
        .model()
        .params()
        .to_vec();
    let distance = |x: &[f32], y: &[f32]| -> f64 {
        x.iter()
            .zip(y)
            .map(|(u, v)| f64::from(u - v).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let ratio = distance(&p, &q) / distance(&q, &p0);
    eprintln!("mpiexec -n 2 vs one process after 20 steps: |Δθ| / |θ − θ0| = {ratio:e}");
    assert!(ratio <= 1e-4, "|Δθ| / |θ − θ0| = {ratio:e}");
}

/// The pid of rank `rank` of the job writing `out` (found by its command line and PMI_RANK).
fn rank_pid(out: &Path, rank: usize) -> Option<u32> {
    let want_env = format!("PMI_RANK={rank}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.starts_with(pfn()) || !cmdline.contains(s(out)) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ
            .split(|&b| b == 0)
            .any(|kv| kv == want_env.as_bytes())
        {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_dead_rank_ends_the_job_and_the_run_resumes_exactly_under_mpi() {
    let d = dir("resume");
    let c = config(&d, "c.toml", 3000, 20, 1);
    let whole = d.join("whole.pfn");
    run_ok(
        2,
        &["train", "--config", s(&c), "--out", s(&whole), "--quiet"],
    );

    // Start the same run again and kill rank 1 once rank 0 has written a checkpoint.
    let cut = d.join("cut.pfn");
    let ckpt = d.join("cut.pfn.ckpt");
    let job = mpiexec(
        2,
        &["train", "--config", s(&c), "--out", s(&cut), "--quiet"],
    );
    let t0 = Instant::now();
    while !ckpt.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = rank_pid(&cut, 1).expect("rank 1 is running");
    let killed = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The job ends (no rank waits forever in an all-reduce) and reports the failure.
    let out = wait_at_most(job, Duration::from_secs(60));
    assert!(!out.status.success(), "a job with a killed rank must fail");
    assert!(!cut.exists(), "the model file waits for the budget");
    let saved = load_checkpoint(&ckpt).expect("the last checkpoint is intact");
    let step = saved.state.step;
    assert!(
        step > 0 && step < 3000 && step.is_multiple_of(20),
        "checkpoint at step {step}"
    );

    // One process cannot continue a two-rank run.
    let alone = Command::new(pfn())
        .args(["train", "--config", s(&c), "--out", s(&cut), "--resume"])
        .output()
        .unwrap();
    assert!(!alone.status.success());
    let err = String::from_utf8_lossy(&alone.stderr);
    assert!(err.contains("run.world_size"), "{err}");

    // Two ranks continue it, and the result is the uninterrupted run's, bit for bit.
    run_ok(
        2,
        &[
            "train",
            "--config",
            s(&c),
            "--out",
            s(&cut),
            "--resume",
            "--quiet",
        ],
    );
    let (a, b) = (load_model(&whole).unwrap(), load_model(&cut).unwrap());
    assert_eq!(a.tensors, b.tensors, "resumed from step {step}");
}

#[test]
fn a_configuration_that_names_another_world_size_is_refused() {
    let d = dir("world");
    let c = config(&d, "c.toml", 5, 5, 1);
    let text = std::fs::read_to_string(&c).unwrap();
    let with_three = d.join("three.toml");
    std::fs::write(
        &with_three,
        text.replace("[run]\n", "[run]\nworld_size = 3\n"),
    )
    .unwrap();
    let out = wait_at_most(
        mpiexec(
            2,
            &[
                "train",
                "--config",
                s(&with_three),
                "--out",
                s(&d.join("m.pfn")),
            ],
        ),
        Duration::from_secs(120),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run.world_size = 3, but the run was started with 2 rank(s)")
            && err.contains("mpiexec -n 3"),
        "{err}"
    );
}
