//! Batch plan and background loader: determinism across start points and worker counts,
//! resume arithmetic, wait-time accounting, error propagation and shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pfn_prior::rng::PriorRng;
use pfn_prior::{
    DatasetInfo, DatasetMut, DatasetPosition, Hyperparameters, Prior, PriorError, SplitSampler,
};
use pfn_train::{BatchLoader, BatchPlan, LoaderError, LoaderOptions, RunConfig, TrainBatch};
use rand::Rng;

fn small_config(split: &str) -> RunConfig {
    let text = format!(
        "[prior]\nname = \"gp-1d\"\nseq_len = 24\nsplit = \"{split}\"\n\
         [model]\nbuckets = 10\n[borders]\nsamples = 100\n\
         [budget]\nsteps = 10\nbatch_size = 3\n[run]\nseed = 7\n"
    );
    RunConfig::from_toml_str(&text, "test.toml").unwrap()
}

fn collect(plan: &BatchPlan, options: LoaderOptions, count: usize) -> Vec<TrainBatch> {
    let mut loader = BatchLoader::start(plan.clone(), options).unwrap();
    (0..count)
        .map(|_| loader.next_batch().unwrap().batch)
        .collect()
}

#[test]
fn resumed_loader_sees_the_same_batches_as_an_uninterrupted_one() {
    for split in ["weighted", "uniform"] {
        let plan = BatchPlan::from_config(&small_config(split)).unwrap();
        let (k, j) = (5u64, 4usize);
        let uninterrupted = collect(&plan, LoaderOptions::default(), k as usize + j);
        let resumed = collect(
            &plan,
            LoaderOptions {
                start_index: k,
                ..LoaderOptions::default()
            },
            j,
        );
        assert_eq!(&uninterrupted[k as usize..], &resumed[..]);
        for (i, b) in uninterrupted.iter().enumerate() {
            assert_eq!(b.index, i as u64);
            assert_eq!(
                b,
                &plan.sample(i as u64).unwrap(),
                "batch {i} differs from the plan"
            );
            assert_eq!(b.single_eval_pos, plan.split_for(i as u64));
            assert!(b.single_eval_pos < 24);
            assert_eq!(
                (b.batch.batch_size, b.batch.seq_len, b.batch.num_features),
                (3, 24, 1)
            );
        }
        // The batches and the split points actually vary from step to step.
        assert_ne!(uninterrupted[0].batch, uninterrupted[1].batch);
        let splits: std::collections::HashSet<usize> =
            uninterrupted.iter().map(|b| b.single_eval_pos).collect();
        assert!(splits.len() > 1, "all splits equal: {splits:?}");
    }
}

#[test]
fn worker_count_and_prefetch_do_not_change_the_stream() {
    let plan = BatchPlan::from_config(&small_config("uniform")).unwrap();
    let one = collect(&plan, LoaderOptions::default(), 10);
    for (workers, prefetch) in [(3, 1), (2, 8), (4, 4)] {
        let many = collect(
            &plan,
            LoaderOptions {
                workers,
                prefetch,
                ..LoaderOptions::default()
            },
            10,
        );
        assert_eq!(one, many, "workers={workers} prefetch={prefetch}");
    }
}

#[test]
fn resume_index_accounts_for_gradient_accumulation() {
    let mut config = small_config("weighted");
    config.optimizer.accumulation_steps = 3;
    let plan = BatchPlan::from_config(&config).unwrap();
    let k = config.optimizer.accumulation_steps;
    assert_eq!(BatchPlan::first_index_of_step(0, k), 0);
    assert_eq!(BatchPlan::first_index_of_step(4, k), 12);
    // Steps 0..6 of an uninterrupted run vs a run resumed at step 4.
    let all = collect(&plan, LoaderOptions::default(), 18);
    let resumed = collect(
        &plan,
        LoaderOptions {
            start_index: BatchPlan::first_index_of_step(4, k),
            ..LoaderOptions::default()
        },
        6,
    );
    assert_eq!(&all[12..], &resumed[..]);
}

#[test]
fn different_seeds_and_the_validation_set_give_different_data() {
    let plan = BatchPlan::from_config(&small_config("uniform")).unwrap();
    let mut other = small_config("uniform");
    other.run.seed = 8;
    let other = BatchPlan::from_config(&other).unwrap();
    assert_ne!(
        plan.sample(0).unwrap().batch,
        other.sample(0).unwrap().batch
    );
    let val = plan.sample_validation(0).unwrap();
    assert_ne!(val.batch, plan.sample(0).unwrap().batch);
    assert_eq!(val, plan.sample_validation(0).unwrap());
}

#[test]
fn end_index_exhausts_the_loader() {
    let plan = BatchPlan::from_config(&small_config("uniform")).unwrap();
    let mut loader = BatchLoader::start(
        plan,
        LoaderOptions {
            start_index: 2,
            end_index: Some(5),
            workers: 2,
            prefetch: 2,
            ..LoaderOptions::default()
        },
    )
    .unwrap();
    let got: Vec<u64> = (0..3)
        .map(|_| loader.next_batch().unwrap().batch.index)
        .collect();
    assert_eq!(got, vec![2, 3, 4]);
    assert!(matches!(
        loader.next_batch(),
        Err(LoaderError::Exhausted { end: 5 })
    ));
    assert_eq!(loader.stats().delivered, 3);
}

#[test]
fn a_rank_of_a_data_parallel_run_gets_its_shard_of_the_stream() {
    // Rank 1 of 3 with 2 micro-batches per step, resumed at step 1 (local index 2): global
    // micro-batches (1·3 + 1)·2 + j and then (2·3 + 1)·2 + j, each the batch of that index.
    let plan = BatchPlan::from_config(&small_config("uniform")).unwrap();
    let mut loader = BatchLoader::start(
        plan.clone(),
        LoaderOptions {
            start_index: 2,
            end_index: Some(6),
            shard: pfn_train::Shard {
                rank: 1,
                world_size: 3,
                block: 2,
            },
            workers: 2,
            prefetch: 2,
        },
    )
    .unwrap();
    for want in [8u64, 9, 14, 15] {
        let got = loader.next_batch().unwrap().batch;
        assert_eq!(got.index, want);
        assert_eq!(got, plan.sample(want).unwrap());
    }
    assert!(loader.next_batch().is_err());
}

#[test]
fn bad_options_and_bad_configs_are_errors() {
    let plan = BatchPlan::from_config(&small_config("uniform")).unwrap();
    for options in [
        LoaderOptions {
            workers: 0,
            ..LoaderOptions::default()
        },
        LoaderOptions {
            prefetch: 0,
            ..LoaderOptions::default()
        },
        LoaderOptions {
            start_index: 5,
            end_index: Some(4),
            ..LoaderOptions::default()
        },
    ] {
        assert!(matches!(
            BatchLoader::start(plan.clone(), options),
            Err(LoaderError::Options { .. })
        ));
    }
    let mut c = small_config("uniform");
    c.prior.name = "no-such-prior".into();
    let e = BatchPlan::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("no-such-prior") && e.contains("gp-1d"), "{e}");

    let mut c = small_config("uniform");
    c.prior
        .params
        .insert("lengthscale".into(), serde_json::json!(0.3));
    let e = BatchPlan::from_config(&c).unwrap_err().to_string();
    assert_eq!(
        e,
        "prior 'gp-1d' takes no parameters, but [prior.params] sets lengthscale"
    );

    // gp-hyper-5d-ties takes one parameter, its share of tied datasets.
    let ties = |params: serde_json::Value| {
        let mut c = small_config("uniform");
        c.prior.name = "gp-hyper-5d-ties".into();
        c.prior.num_features = 5;
        c.prior.params = serde_json::from_value(params).unwrap();
        BatchPlan::from_config(&c)
    };
    assert!(ties(serde_json::json!({})).is_ok());
    assert!(ties(serde_json::json!({"tied_inputs": 0.08})).is_ok());
    for (params, expected) in [
        (serde_json::json!({"tied_inputs": 1.5}), "tied_inputs"),
        (
            serde_json::json!({"tied_inputs": "some"}),
            "must be a number",
        ),
        (serde_json::json!({"ties": 0.1}), "prior.params.ties"),
    ] {
        let e = ties(params).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }

    let mut c = small_config("uniform");
    c.prior.name = "linear-1d".into();
    c.prior.num_features = 2;
    let e = BatchPlan::from_config(&c).unwrap_err().to_string();
    assert!(
        e.starts_with("prior 'linear-1d': ") && e.contains("features"),
        "{e}"
    );

    // A split sampler that can leave no query.
    let prior: Arc<dyn Prior> = Arc::from(pfn_prior::prior_by_name("gp-1d").unwrap());
    let e = BatchPlan::new(
        prior,
        "gp-1d",
        0,
        2,
        10,
        1,
        SplitSampler::uniform(0, 10).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("leave no query"), "{e}");
}

/// A test prior: y = x, optionally slow, failing or panicking at one batch.
struct TestPrior {
    sleep: Duration,
    fail_at: Option<u64>,
    panic_at: Option<u64>,
}

impl Prior for TestPrior {
    fn default_num_features(&self) -> usize {
        1
    }

    fn sample_dataset(
        &self,
        rng: &mut PriorRng,
        position: &DatasetPosition,
        mut data: DatasetMut<'_>,
    ) -> Result<DatasetInfo, PriorError> {
        std::thread::sleep(self.sleep);
        if self.fail_at == Some(position.batch_index) {
            return Err(PriorError::invalid("test", "injected failure"));
        }
        if self.panic_at == Some(position.batch_index) {
            panic!("injected panic");
        }
        let (x, y, t) = data.parts();
        for ((xi, yi), ti) in x.iter_mut().zip(y.iter_mut()).zip(t.iter_mut()) {
            *xi = rng.random::<f32>();
            *yi = *xi;
            *ti = *xi;
        }
        Ok(DatasetInfo {
            features_used: 1,
            hyperparameters: Hyperparameters::Custom {
                value: serde_json::Value::Null,
            },
        })
    }
}

fn test_plan(prior: TestPrior) -> BatchPlan {
    BatchPlan::new(
        Arc::new(prior),
        "test",
        1,
        1,
        8,
        1,
        SplitSampler::uniform(0, 7).unwrap(),
    )
    .unwrap()
}

#[test]
fn slow_sampling_shows_up_as_consumer_wait() {
    let sleep = Duration::from_millis(40);
    let plan = test_plan(TestPrior {
        sleep,
        fail_at: None,
        panic_at: None,
    });
    let mut loader = BatchLoader::start(plan, LoaderOptions::default()).unwrap();
    let n = 6u32;
    for _ in 0..n {
        let d = loader.next_batch().unwrap();
        assert!(d.sampling >= sleep, "sampling time {:?}", d.sampling);
    }
    let stats = loader.stats();
    assert_eq!(stats.delivered, u64::from(n));
    // The consumer does nothing, so it waits for (almost) every sample.
    assert!(
        stats.total_wait >= sleep * n / 2,
        "total wait {:?} for {n} samples of {sleep:?}",
        stats.total_wait
    );
    assert!(stats.total_sampling >= sleep * n);
    assert!(stats.max_wait >= stats.first_wait);
    assert!(stats.max_wait <= stats.total_wait);
}

#[test]
fn prefetching_hides_sampling_behind_a_slower_consumer() {
    let plan = test_plan(TestPrior {
        sleep: Duration::from_millis(2),
        fail_at: None,
        panic_at: None,
    });
    let mut loader = BatchLoader::start(plan, LoaderOptions::default()).unwrap();
    let step = Duration::from_millis(40);
    let n = 6u32;
    for _ in 0..n {
        loader.next_batch().unwrap();
        std::thread::sleep(step); // the "training step"
    }
    let stats = loader.stats();
    // Sampling takes 2 ms and runs while the consumer works for 40 ms, so after the first batch
    // the consumer should essentially never wait.
    assert!(
        stats.wait_after_first() < step * n / 4,
        "waited {:?} after the first batch",
        stats.wait_after_first()
    );
    assert_eq!(
        stats.wait_after_first(),
        stats.total_wait - stats.first_wait
    );
}

#[test]
fn sampling_errors_arrive_in_order_and_stop_the_loader() {
    let plan = test_plan(TestPrior {
        sleep: Duration::ZERO,
        fail_at: Some(3),
        panic_at: None,
    });
    let mut loader = BatchLoader::start(
        plan,
        LoaderOptions {
            workers: 2,
            ..LoaderOptions::default()
        },
    )
    .unwrap();
    for i in 0..3 {
        assert_eq!(loader.next_batch().unwrap().batch.index, i);
    }
    let e = loader.next_batch().unwrap_err();
    assert!(matches!(e, LoaderError::Sample { index: 3, .. }), "{e}");
    assert!(e.to_string().contains("injected failure"));
    assert!(loader.next_batch().is_err());
}

#[test]
fn a_panicking_prior_becomes_an_error() {
    let plan = test_plan(TestPrior {
        sleep: Duration::ZERO,
        fail_at: None,
        panic_at: Some(1),
    });
    let mut loader = BatchLoader::start(plan, LoaderOptions::default()).unwrap();
    assert_eq!(loader.next_batch().unwrap().batch.index, 0);
    let e = loader.next_batch().unwrap_err();
    assert!(
        matches!(e, LoaderError::WorkerPanicked { index: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("injected panic"), "{e}");
}

#[test]
fn dropping_a_loader_with_full_queues_returns_promptly() {
    let plan = test_plan(TestPrior {
        sleep: Duration::from_millis(5),
        fail_at: None,
        panic_at: None,
    });
    let loader = BatchLoader::start(
        plan,
        LoaderOptions {
            workers: 3,
            prefetch: 3,
            ..LoaderOptions::default()
        },
    )
    .unwrap();
    // Let the workers fill their queues and block on send.
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    drop(loader);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t0.elapsed()
    );
}

#[test]
fn max_queries_shortens_training_datasets_but_not_validation_ones() {
    let mut config = small_config("uniform");
    config.prior.max_queries = Some(5);
    config.validate().unwrap();
    let plan = BatchPlan::from_config(&config).unwrap();
    let full = BatchPlan::from_config(&small_config("uniform")).unwrap();
    let mut shortened = 0;
    for index in 0..40 {
        let tb = plan.sample(index).unwrap();
        let n = tb.single_eval_pos;
        assert_eq!(
            n,
            full.split_for(index),
            "the split is the plan's, unchanged"
        );
        assert_eq!(
            tb.batch.seq_len,
            24.min(n + 5),
            "batch {index} with n = {n}"
        );
        assert_eq!(tb.batch.x.len(), 3 * tb.batch.seq_len);
        shortened += usize::from(tb.batch.seq_len < 24);
        let v = plan.sample_validation(index % 2).unwrap();
        assert_eq!(v.batch.seq_len, 24, "validation keeps every point");
    }
    assert!(
        shortened > 20,
        "most batches are shorter: {shortened} of 40"
    );
    // Posterior targets follow the shortened batch.
    config.prior.targets = pfn_train::TargetKind::Posterior;
    let plan = BatchPlan::from_config(&config).unwrap();
    let tb = plan.sample(3).unwrap();
    let queries = tb.batch.seq_len - tb.single_eval_pos;
    assert!(queries <= 5);
    match tb.posterior.unwrap() {
        pfn_prior::QueryPosterior::Gaussian { mean, .. } => assert_eq!(mean.len(), 3 * queries),
        other => panic!("a GP prior has Gaussian posteriors, got {other:?}"),
    }

    config.prior.max_queries = Some(0);
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("prior.max_queries"), "{e}");
}
