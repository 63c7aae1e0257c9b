//! Data-parallel training through the `Collective` seam, with the ranks as threads of this test and
//! an in-memory all-reduce (the MPI transport is tested end to end in the root package's
//! `tests/mpi.rs`): R ranks equal one process with R times the accumulation, the ranks stay
//! identical and stop together, a rank whose parameters drift is caught, and a data-parallel run
//! resumes exactly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use pfn_train::{
    load_model, train_to_files, Collective, CollectiveError, RunConfig, RunOptions, Start,
    StopReason, TrainError, Trainer,
};

/// Ranks as threads: each all-reduce writes every rank's buffer into its slot, waits for all, and
/// every rank sums the slots in rank order, so all ranks get the same bits.
#[derive(Debug)]
struct Threads {
    rank: usize,
    shared: Arc<Shared>,
    /// This rank perturbs element 0 of its gradient sums by 0.1 % (a faulty link).
    corrupt: bool,
}

#[derive(Debug)]
struct Shared {
    size: usize,
    barrier: Barrier,
    f32_slots: Mutex<Vec<Vec<f32>>>,
    f64_slots: Mutex<Vec<Vec<f64>>>,
}

fn ranks(size: usize) -> Vec<Threads> {
    let shared = Arc::new(Shared {
        size,
        barrier: Barrier::new(size),
        f32_slots: Mutex::new(vec![Vec::new(); size]),
        f64_slots: Mutex::new(vec![Vec::new(); size]),
    });
    (0..size)
        .map(|rank| Threads {
            rank,
            shared: Arc::clone(&shared),
            corrupt: false,
        })
        .collect()
}

fn all_reduce<T: Copy + std::ops::Add<Output = T>>(
    rank: usize,
    barrier: &Barrier,
    slots: &Mutex<Vec<Vec<T>>>,
    values: &mut [T],
) {
    slots.lock().unwrap()[rank] = values.to_vec();
    barrier.wait();
    {
        let slots = slots.lock().unwrap();
        for (i, v) in values.iter_mut().enumerate() {
            let mut sum = slots[0][i];
            for s in &slots[1..] {
                sum = sum + s[i];
            }
            *v = sum;
        }
    }
    barrier.wait();
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.size
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let s = &self.shared;
        all_reduce(self.rank, &s.barrier, &s.f32_slots, values);
        if self.corrupt {
            values[0] += 1e-3 * values[0].abs().max(1.0);
        }
        Ok(())
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
        let s = &self.shared;
        all_reduce(self.rank, &s.barrier, &s.f64_slots, values);
        Ok(())
    }
    fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError> {
        // The gather rides on the f64 reduction: each rank fills its own entry, zeros elsewhere.
        // u64 → f64 is exact below 2^53, so split the value into halves.
        let mut halves = vec![0.0f64; 2 * self.shared.size];
        halves[2 * self.rank] = (value >> 32) as f64;
        halves[2 * self.rank + 1] = (value & 0xffff_ffff) as f64;
        self.all_reduce_sum_f64(&mut halves)?;
        Ok(halves
            .chunks(2)
            .map(|h| ((h[0] as u64) << 32) | h[1] as u64)
            .collect())
    }
}

fn tiny() -> RunConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml");
    let mut c = RunConfig::load(&path).unwrap();
    c.budget.steps = Some(20);
    c.budget.checkpoint_every = None;
    c.budget.validation_every = None;
    c.budget.validation_datasets = 16;
    c.optimizer.warmup_steps = Some(3);
    c.run.threads = Some(1);
    c.validate().unwrap();
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pfn-train-dp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `config` on `world.len()` thread ranks; returns each rank's trainer or error.
fn run_ranks(
    config: &RunConfig,
    world: Vec<Threads>,
    options: impl Fn(usize) -> RunOptions + Sync,
) -> Vec<Result<(Trainer, StopReason), TrainError>> {
    let mut config = config.clone();
    config.run.world_size = Some(world.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = world
            .into_iter()
            .map(|rank| {
                let (config, options) = (config.clone(), &options);
                scope.spawn(move || {
                    let r = rank.rank;
                    let mut trainer = Trainer::new(config)?;
                    let options = RunOptions {
                        collective: Some(Arc::new(rank)),
                        ..options(r)
                    };
                    let summary = trainer.run(&options, &mut ())?;
                    Ok((trainer, summary.stop))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn two_ranks_equal_one_process_with_twice_the_accumulation() {
    let config = tiny();
    let results = run_ranks(&config, ranks(2), |_| RunOptions::default());
    let trainers: Vec<Trainer> = results.into_iter().map(|r| r.unwrap().0).collect();
    // The ranks hold the same bits.
    assert_eq!(trainers[0].model().params(), trainers[1].model().params());
    assert_eq!(trainers[0].history(), trainers[1].history());
    assert_eq!(trainers[0].state().datasets, 20 * 2 * 32);

    let mut single = config.clone();
    single.optimizer.accumulation_steps = 2;
    let mut one = Trainer::new(single).unwrap();
    one.run(&RunOptions::default(), &mut ()).unwrap();
    assert_eq!(one.state().datasets, trainers[0].state().datasets);
    // Same data, same scaling: the only difference is where the two micro-batch gradients are
    // added (inside the backward pass's accumulating products for one process, after them for two
    // ranks). That changes f32 roundings (relative 1e-7), which AdamW's normalisation
    // m / (sqrt(v) + eps) enlarges for gradients that nearly cancel, and later steps carry forward.
    // Measured on this run: half the parameters differ in some bit, and the parameter difference
    // is 2e-5 of the distance the parameters moved in training. The criteria below leave 5x room; a wrong gradient scale (a missing 1 / R) or
    // the wrong micro-batches would show as differences of order 1.
    let (a, b) = (trainers[0].history(), one.history());
    assert_eq!(a.len(), 20);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.lr, y.lr);
        assert!(
            (x.loss - y.loss).abs() <= 1e-5 * y.loss.abs().max(1.0),
            "step {}: loss {} vs {}",
            x.step,
            x.loss,
            y.loss
        );
    }
    let start = Trainer::new(config.clone()).unwrap();
    let (p, q, p0) = (
        trainers[0].model().params(),
        one.model().params(),
        start.model().params(),
    );
    let distance = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let ratio = distance(p, q) / distance(q, p0);
    eprintln!("two ranks vs one process after 20 steps: |Δθ| / |θ − θ0| = {ratio:e}");
    assert!(ratio <= 1e-4, "|Δθ| / |θ − θ0| = {ratio:e}");
}

#[test]
fn a_stop_flag_on_one_rank_stops_every_rank_at_the_same_step() {
    let config = tiny();
    let flag = Arc::new(AtomicBool::new(false));
    flag.store(true, Ordering::Relaxed);
    let results = run_ranks(&config, ranks(2), |r| RunOptions {
        stop_flag: (r == 1).then(|| Arc::clone(&flag)),
        ..RunOptions::default()
    });
    for r in results {
        let (trainer, stop) = r.unwrap();
        assert_eq!(stop, StopReason::StopFlag);
        assert_eq!(trainer.state().step, 0);
    }
}

#[test]
fn a_rank_whose_parameters_drift_stops_every_rank_with_an_error() {
    let mut config = tiny();
    config.budget.checkpoint_every = Some(5);
    let mut world = ranks(2);
    world[1].corrupt = true;
    let results = run_ranks(&config, world, |_| RunOptions::default());
    for r in results {
        let e = r.expect_err("the drift is caught");
        assert!(
            matches!(
                e,
                TrainError::RanksDiverged {
                    step: 5,
                    rank: 1,
                    ..
                }
            ),
            "{e}"
        );
        let text = e.to_string();
        assert!(text.contains("rank 1") && text.contains("step 5"), "{text}");
    }
}

#[test]
fn ranks_that_disagree_on_the_configuration_stop_before_training() {
    let config = tiny();
    let world = ranks(2);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = world
            .into_iter()
            .map(|rank| {
                let mut config = config.clone();
                config.run.world_size = Some(2);
                if rank.rank == 1 {
                    config.optimizer.lr *= 2.0;
                }
                scope.spawn(move || {
                    let mut trainer = Trainer::new(config)?;
                    trainer.run(
                        &RunOptions {
                            collective: Some(Arc::new(rank)),
                            ..RunOptions::default()
                        },
                        &mut (),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for r in results {
        assert!(
            matches!(
                r,
                Err(TrainError::RanksDiverged {
                    step: 0,
                    rank: 1,
                    ..
                })
            ),
            "{r:?}"
        );
    }
}

#[test]
fn a_world_size_that_differs_from_the_configuration_is_refused() {
    let config = tiny();
    let mut trainer = Trainer::new(config).unwrap();
    let e = trainer
        .run(
            &RunOptions {
                collective: Some(Arc::new(ranks(1).pop().unwrap())),
                ..RunOptions::default()
            },
            &mut (),
        )
        .map(|_| ());
    assert!(e.is_ok(), "one thread rank is a world of one: {e:?}");
    let mut two = tiny();
    two.run.world_size = Some(2);
    let mut trainer = Trainer::new(two).unwrap();
    let e = trainer.run(&RunOptions::default(), &mut ()).unwrap_err();
    assert!(
        e.to_string()
            .contains("the run has 1 rank(s) but its configuration says run.world_size = 2"),
        "{e}"
    );
}

/// Trains `config` between files on two thread ranks, as `mpiexec -n 2 pfn train` does.
fn train_files_on_two_ranks(
    config: &RunConfig,
    model: &Path,
    start: Start,
    stop_after: Option<u64>,
) {
    let mut config = config.clone();
    config.run.world_size = Some(2);
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranks(2)
            .into_iter()
            .map(|rank| {
                let config = config.clone();
                scope.spawn(move || {
                    let options = RunOptions {
                        stop_after_step: stop_after,
                        collective: Some(Arc::new(rank)),
                        ..RunOptions::default()
                    };
                    train_to_files(config, None, model, start, options, &mut ()).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
}

#[test]
fn a_data_parallel_run_resumes_exactly_and_records_its_world_size() {
    let mut config = tiny();
    config.budget.checkpoint_every = Some(5);
    let dir = temp_dir("resume");
    let whole = dir.join("whole.pfn");
    train_files_on_two_ranks(&config, &whole, Start::Fresh, None);
    let parts = dir.join("parts.pfn");
    train_files_on_two_ranks(&config, &parts, Start::Fresh, Some(10));
    assert!(!parts.exists(), "the model file waits for the budget");
    train_files_on_two_ranks(&config, &parts, Start::Resume, None);
    let (a, b) = (load_model(&whole).unwrap(), load_model(&parts).unwrap());
    assert_eq!(a.tensors, b.tensors, "resuming under two ranks is exact");
    let stored = pfn_train::run_config_of(&a.metadata).unwrap();
    assert_eq!(stored.run.world_size, Some(2));
    assert_eq!(stored.datasets_per_step(), 2 * 32);
    assert_eq!(a.metadata.training.datasets, 20 * 2 * 32);

    // One process cannot continue a two-rank run: the data streams would differ.
    let e = train_to_files(
        config.clone(),
        None,
        &parts,
        Start::Resume,
        RunOptions::default(),
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("run.world_size"), "{e}");
}
