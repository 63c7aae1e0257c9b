//! The training loop: it learns, it resumes exactly, and it refuses inconsistent runs.

use std::path::PathBuf;

use pfn_artifact::FeatureScaler;
use pfn_model::Precision;
use pfn_prior::{Hyperparameters, QueryPosterior};
use pfn_train::{
    load_checkpoint, load_model, model_from_tensors, HeadKind, OutputHead, RunConfig, RunOptions,
    StopReason, TrainError, TrainObserver, Trainer, ValidationReport,
};

fn tiny() -> RunConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml");
    RunConfig::load(&path).unwrap()
}

/// `tiny` with a shorter budget and smaller validation set, for the exactness tests.
fn short(steps: u64, accumulation: u32) -> RunConfig {
    let mut c = tiny();
    c.budget.steps = Some(steps);
    c.budget.checkpoint_every = None;
    c.budget.validation_every = None;
    c.budget.validation_datasets = 16;
    c.optimizer.warmup_steps = Some(3.min(steps));
    c.optimizer.accumulation_steps = accumulation;
    c.validate().unwrap();
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pfn-train-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Default)]
struct Recorder {
    steps: Vec<u64>,
    validations: Vec<ValidationReport>,
    checkpoints: Vec<u64>,
}

impl TrainObserver for Recorder {
    fn on_step(&mut self, r: &pfn_train::StepReport) {
        self.steps.push(r.step);
    }
    fn on_validation(&mut self, r: &ValidationReport) {
        self.validations.push(r.clone());
    }
    fn on_checkpoint(&mut self, step: u64, _path: &std::path::Path) {
        self.checkpoints.push(step);
    }
}

#[test]
fn a_short_run_on_the_gp_prior_lowers_the_validation_loss() {
    let config = tiny();
    let dir = temp_dir("learn");
    let ckpt = dir.join("tiny.ckpt");
    let mut trainer = Trainer::new(config.clone()).unwrap();
    let before = trainer.validation_loss().unwrap();
    let mut rec = Recorder::default();
    let summary = trainer
        .run(
            &RunOptions {
                checkpoint_path: Some(ckpt.clone()),
                ..RunOptions::default()
            },
            &mut rec,
        )
        .unwrap();
    let after = summary.final_validation_loss.unwrap();
    eprintln!(
        "tiny: validation loss {before:.4} -> {after:.4}; {:.1} steps/s, {:.0} datasets/s, wait share {:.4}",
        summary.steps_per_second, summary.datasets_per_second, summary.wait_share
    );
    // The untrained model predicts about the prior marginal (NLL ≈ 1.4 nats); a GP posterior with
    // context is much sharper, so even this tiny run must gain clearly.
    assert!(after < before - 0.4, "{before} -> {after}");
    let steps = config.budget.steps.unwrap();
    let half = config.budget.validation_every.unwrap();
    assert_eq!(2 * half, steps);
    assert_eq!(config.budget.checkpoint_every, Some(half));
    assert_eq!(summary.stop, StopReason::StepBudget);
    assert_eq!(summary.end_step, steps);
    assert_eq!(rec.steps, (1..=steps).collect::<Vec<_>>());
    // Validation and checkpoints at half time and at the end (which coincides with a multiple).
    assert_eq!(
        rec.validations.iter().map(|v| v.step).collect::<Vec<_>>(),
        vec![half, steps]
    );
    assert_eq!(rec.checkpoints, vec![half, steps]);
    let dps = config.budget.batch_size as u64;
    assert_eq!(summary.datasets, steps * dps);

    // The checkpoint and the model carry the spent budget and the final validation loss.
    let ck = load_checkpoint(&ckpt).unwrap();
    assert_eq!(ck.state.step, steps);
    assert_eq!(ck.state.adam_step, steps);
    assert_eq!(ck.metadata.final_validation_loss, Some(after));
    let model_path = dir.join("tiny.pfn");
    trainer.save_model(&model_path).unwrap();
    let art = load_model(&model_path).unwrap();
    let meta = &art.metadata;
    assert_eq!(meta.training.steps, steps);
    assert_eq!(meta.training.datasets, steps * dps);
    assert!(meta.training.seconds > 0.0);
    assert_eq!(meta.final_validation_loss, Some(after));
    assert_eq!(pfn_train::run_config_of(meta).unwrap(), config);
    assert_eq!(meta.max_context(), config.prior.max_context());
    assert_eq!(meta.run_seed(), Some(config.run.seed));
    match &meta.head {
        OutputHead::Riemann {
            borders,
            full_support,
            ..
        } => {
            assert_eq!(borders.len(), 51);
            assert!(*full_support);
        }
        other => panic!("{other:?}"),
    }
    let restored = model_from_tensors(&meta.architecture, &art.tensors).unwrap();
    assert_eq!(restored.params(), trainer.model().params());
    std::fs::remove_dir_all(&dir).ok();
}

fn bits(losses: &[f64]) -> Vec<u64> {
    losses.iter().map(|l| l.to_bits()).collect()
}

fn resume_matches_uninterrupted(accumulation: u32, resume_threads: usize) {
    let (k, total) = (6u64, 12u64);
    let config = short(total, accumulation);
    let dir = temp_dir(&format!("resume-{accumulation}"));
    let ckpt = dir.join("run.ckpt");

    let mut straight = Trainer::new(config.clone()).unwrap();
    straight.run(&RunOptions::default(), &mut ()).unwrap();
    let full: Vec<f64> = straight.history().iter().map(|r| r.loss).collect();
    assert_eq!(full.len(), total as usize);

    let mut first = Trainer::new(config.clone()).unwrap();
    let s = first
        .run(
            &RunOptions {
                checkpoint_path: Some(ckpt.clone()),
                stop_after_step: Some(k),
                ..RunOptions::default()
            },
            &mut (),
        )
        .unwrap();
    assert_eq!(s.stop, StopReason::StopAfterStep);
    assert_eq!(s.end_step, k);
    drop(first);

    let checkpoint = load_checkpoint(&ckpt).unwrap();
    assert_eq!(checkpoint.state.step, k);
    let mut resume_config = config;
    resume_config.run.threads = Some(resume_threads);
    let mut resumed = Trainer::resume(resume_config, checkpoint).unwrap();
    assert_eq!(resumed.step(), k);
    let s = resumed.run(&RunOptions::default(), &mut ()).unwrap();
    assert_eq!(s.stop, StopReason::StepBudget);
    assert_eq!(s.start_step, k);
    let tail: Vec<f64> = resumed.history().iter().map(|r| r.loss).collect();
    assert_eq!(resumed.history()[0].step, k);
    assert_eq!(
        bits(&tail),
        bits(&full[k as usize..]),
        "{tail:?} vs {full:?}"
    );
    assert_eq!(resumed.model().params(), straight.model().params());
    assert_eq!(resumed.state().datasets, straight.state().datasets);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_reproduces_the_uninterrupted_run_bit_for_bit() {
    resume_matches_uninterrupted(1, 2);
}

#[test]
fn resume_is_exact_with_gradient_accumulation() {
    resume_matches_uninterrupted(2, 2);
}

#[test]
fn resume_is_exact_on_another_thread_count() {
    // The kernels do not depend on the thread count, so a run may resume on another machine.
    resume_matches_uninterrupted(1, 1);
}

#[test]
fn accumulation_divides_by_k() {
    // One step over two micro-batches of 8 equals one step over the same 16 datasets only in
    // expectation, but the reported loss must be the mean of the two micro-batch means, so it
    // stays on the scale of a single batch's mean NLL (about 1.4 nats at initialisation, not 2.8).
    let mut t = Trainer::new(short(1, 2)).unwrap();
    t.run(&RunOptions::default(), &mut ()).unwrap();
    let loss = t.history()[0].loss;
    assert!(loss > 0.5 && loss < 2.5, "{loss}");
}

#[test]
fn resuming_with_a_different_configuration_is_refused() {
    let config = short(4, 1);
    let dir = temp_dir("mismatch");
    let ckpt = dir.join("run.ckpt");
    let mut t = Trainer::new(config.clone()).unwrap();
    t.run(
        &RunOptions {
            checkpoint_path: Some(ckpt.clone()),
            stop_after_step: Some(2),
            ..RunOptions::default()
        },
        &mut (),
    )
    .unwrap();
    let mut changed = config.clone();
    changed.optimizer.lr = 1e-2;
    let e = Trainer::resume(changed, load_checkpoint(&ckpt).unwrap()).unwrap_err();
    assert!(
        matches!(e, TrainError::ConfigMismatch { ref key, .. } if key == "optimizer.lr"),
        "{e}"
    );
    // A stored configuration that is not a run configuration, or disagrees with the stored
    // head, is a clear error (the model file itself does not interpret it).
    let mut broken = load_checkpoint(&ckpt).unwrap();
    broken.metadata.config["budget"]["steps"] = serde_json::json!("many");
    let e = Trainer::resume(config.clone(), broken)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inconsistent checkpoint") && e.contains("not a pfn-train run configuration"),
        "{e}"
    );
    let mut broken = load_checkpoint(&ckpt).unwrap();
    broken.metadata.config["model"]["buckets"] = serde_json::json!(7);
    let e = Trainer::resume(config.clone(), broken)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match the stored head"), "{e}");
    // Threads and the checkpoint cadence may change.
    let mut allowed = config;
    allowed.run.threads = Some(1);
    allowed.budget.checkpoint_every = Some(1);
    Trainer::resume(allowed, load_checkpoint(&ckpt).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_class_head_on_a_regression_prior_is_an_error() {
    let mut c = short(2, 1);
    c.model.buckets = None;
    c.model.n_out = Some(2);
    assert_eq!(c.model.head(), HeadKind::Classes { n_out: 2 });
    let e = Trainer::new(c).unwrap_err();
    assert!(matches!(e, TrainError::Target { .. }), "{e}");
    assert!(e.to_string().contains("class label"), "{e}");
}

#[test]
fn a_classification_prior_trains_with_a_class_head() {
    let mut c = short(150, 1);
    c.prior.name = "gp-1d-binary".into();
    c.model.buckets = None;
    c.model.n_out = Some(2);
    let mut t = Trainer::new(c).unwrap();
    let before = t.validation_loss().unwrap();
    // Untrained: about ln 2 per label.
    assert!((before - std::f64::consts::LN_2).abs() < 0.2, "{before}");
    t.run(&RunOptions::default(), &mut ()).unwrap();
    let after = t.last_validation_loss().unwrap();
    assert!(after < before, "{before} -> {after}");
}

#[test]
fn a_label_embedding_trains_and_is_recorded_in_the_model_file() {
    let mut c = short(150, 1);
    c.prior.name = "gp-1d-binary".into();
    c.model.buckets = None;
    c.model.n_out = Some(2);
    c.model.y_encoding = pfn_train::YEncoding::Embedding;
    assert_eq!(c.model.y_classes(), Some(2));
    let mut t = Trainer::new(c.clone()).unwrap();
    assert_eq!(t.model().config().y_classes, Some(2));
    let before = t.validation_loss().unwrap();
    t.run(&RunOptions::default(), &mut ()).unwrap();
    let after = t.last_validation_loss().unwrap();
    assert!(after < before - 0.05, "{before} -> {after}");
    let dir = temp_dir("embedding");
    let path = dir.join("embedded.pfn");
    t.save_model(&path).unwrap();
    let loaded = load_model(&path).unwrap();
    assert_eq!(loaded.metadata.architecture.y_classes, Some(2));
    let model = model_from_tensors(&loaded.metadata.architecture, &loaded.tensors).unwrap();
    assert_eq!(model.params(), t.model().params());
    assert_eq!(
        model.layout().get("encoder.y.weight").unwrap().shape,
        vec![c.model.emsize, 2]
    );

    // An embedding needs classes to embed.
    let mut r = short(2, 1);
    r.model.y_encoding = pfn_train::YEncoding::Embedding;
    let e = r.validate().unwrap_err().to_string();
    assert!(
        e.contains("model.y_encoding") && e.contains("class head"),
        "{e}"
    );
}

#[test]
fn shipped_configs_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = RunConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            pfn_train::BatchPlan::from_config(&config).unwrap();
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for shipped in ["gp-1d.toml", "gp-5d.toml", "gp-hyper.toml", "tiny.toml"] {
        assert!(names.iter().any(|n| n == shipped), "{shipped} in {names:?}");
    }
}

/// `gp-hyper-5d` (context-standardised targets): seed 3, 8 datasets of 40 points, 5 features,
/// n uniform on 5..=30.
fn general_regression_plan() -> (std::sync::Arc<dyn pfn_prior::Prior>, pfn_train::BatchPlan) {
    let name = "gp-hyper-5d";
    let prior: std::sync::Arc<dyn pfn_prior::Prior> =
        pfn_prior::prior_by_name(name).unwrap().into();
    let split = pfn_prior::SplitSampler::uniform(5, 30).unwrap();
    let plan = pfn_train::BatchPlan::new(prior.clone(), name, 3, 8, 40, 5, split).unwrap();
    (prior, plan)
}

#[test]
fn general_regression_prior_is_trained_on_context_standardised_targets() {
    use pfn_prior::{prior_by_name, SplitSampler};
    let (prior, plan) = general_regression_plan();
    assert!(plan.standardises_targets());
    let raw = prior.sample_batch(3, 0, 8, 40, 5).unwrap();
    let tb = plan.sample(0).unwrap();
    let n = tb.single_eval_pos;
    for b in 0..8 {
        let ctx = &tb.batch.y_of(b)[..n];
        let mean = ctx.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = ctx
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(mean.abs() < 1e-5, "{mean}");
        assert!((var - 1.0).abs() < 1e-4, "{var}");
        // The same affine map on the queries, and target_y follows y.
        let (r, t) = (raw.y_of(b), tb.batch.y_of(b));
        let scale = f64::from(t[0] - t[1]) / f64::from(r[0] - r[1]);
        let shift = f64::from(t[0]) - scale * f64::from(r[0]);
        for k in n..40 {
            let want = shift + scale * f64::from(r[k]);
            assert!((f64::from(t[k]) - want).abs() < 1e-3 * (1.0 + want.abs()));
        }
        assert_eq!(tb.batch.y_of(b), tb.batch.target_y_of(b));
    }
    // Other priors are delivered as sampled.
    let gp = pfn_train::BatchPlan::new(
        prior_by_name("gp-1d").unwrap().into(),
        "gp-1d",
        3,
        2,
        10,
        1,
        SplitSampler::uniform(1, 5).unwrap(),
    )
    .unwrap();
    assert!(!gp.standardises_targets());
}

#[test]
fn general_regression_prior_is_trained_on_context_scaled_features() {
    // Every used column is mapped as inference maps a user's column (FeatureScaler on the context
    // rows), then multiplied by the padding factor; padding columns stay zero.
    let (prior, plan) = general_regression_plan();
    assert!(plan.scales_features());
    let raw = prior.sample_batch(3, 0, 8, 40, 5).unwrap();
    let tb = plan.sample(0).unwrap();
    let n = tb.single_eval_pos;
    for b in 0..8 {
        let Hyperparameters::FeaturePadding {
            features_used: d,
            scale,
            ..
        } = raw.hyperparameters[b]
        else {
            panic!("gp-hyper-5d pads its features");
        };
        let unscaled: Vec<f64> = raw
            .x_of(b)
            .chunks_exact(5)
            .flat_map(|row| row[..d].iter().map(|&v| f64::from(v) / scale))
            .collect();
        let scaler = FeatureScaler::fit(&unscaled[..n * d], d).unwrap();
        let want = scaler.transform(&unscaled).unwrap();
        for (t, row) in tb.batch.x_of(b).chunks_exact(5).enumerate() {
            for j in 0..5 {
                if j < d {
                    let w = want[t * d + j] * scale;
                    assert!((f64::from(row[j]) - w).abs() < 1e-5, "{b} {t} {j}");
                } else {
                    assert_eq!(row[j], 0.0);
                }
            }
            if t < n {
                // Context columns span exactly [0, 1] (times the padding factor).
                assert!(row[..d]
                    .iter()
                    .all(|&v| v >= -1e-6 && v <= (scale + 1e-5) as f32));
            }
        }
        for j in 0..d {
            let col = tb.batch.x_of(b)[..n * 5].iter().skip(j).step_by(5);
            let max = col.clone().fold(f32::MIN, |m, &v| m.max(v));
            let min = col.fold(f32::MAX, |m, &v| m.min(v));
            assert!(min.abs() < 1e-6 && (f64::from(max) - scale).abs() < 1e-5);
        }
    }
    // The validation set is scaled the same way.
    let v = plan.sample_validation(0).unwrap();
    let n = v.single_eval_pos;
    let first: Vec<f32> = v.batch.x_of(0)[..n * 5]
        .iter()
        .step_by(5)
        .copied()
        .collect();
    assert!(first.iter().any(|&x| x.abs() < 1e-6));
}

#[test]
fn tabular_prior_is_trained_on_context_z_scored_features() {
    // The tabular classifiers z-score every used column with the context rows (as inference does),
    // then scale by F / F_u; padding columns stay zero, labels are untouched.
    let name = "tabular-bnn";
    let prior: std::sync::Arc<dyn pfn_prior::Prior> =
        pfn_prior::prior_by_name(name).unwrap().into();
    let split = pfn_prior::SplitSampler::uniform(6, 20).unwrap();
    let (f, len) = (12, 30);
    let plan = pfn_train::BatchPlan::new(prior.clone(), name, 5, 6, len, f, split).unwrap();
    assert!(plan.scales_features());
    assert!(!plan.standardises_targets());
    let raw = prior.sample_batch(5, 0, 6, len, f).unwrap();
    let tb = plan.sample(0).unwrap();
    let n = tb.single_eval_pos;
    let mut padded = 0;
    for b in 0..6 {
        let d = raw.features_used[b];
        let scale = f as f64 / d as f64;
        padded += usize::from(d < f);
        let unscaled: Vec<f64> = raw
            .x_of(b)
            .chunks_exact(f)
            .flat_map(|row| row[..d].iter().map(|&v| f64::from(v) / scale))
            .collect();
        let scaler = FeatureScaler::fit_standardise(&unscaled[..n * d], d).unwrap();
        let want = scaler.transform(&unscaled).unwrap();
        for (t, row) in tb.batch.x_of(b).chunks_exact(f).enumerate() {
            for j in 0..f {
                if j < d {
                    let w = want[t * d + j] * scale;
                    assert!(
                        (f64::from(row[j]) - w).abs() < 1e-4 * (1.0 + w.abs()),
                        "{b} {t} {j}"
                    );
                } else {
                    assert_eq!(row[j], 0.0);
                }
            }
        }
        // Context columns have mean 0 and standard deviation F / F_u (or are constant).
        for j in 0..d {
            let col: Vec<f64> = tb.batch.x_of(b)[..n * f]
                .iter()
                .skip(j)
                .step_by(f)
                .map(|&v| f64::from(v))
                .collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            assert!(mean.abs() < 1e-4 * scale, "{b} {j}: mean {mean}");
            assert!(
                sd < 1e-6 || (sd - scale).abs() < 1e-3 * scale,
                "{b} {j}: sd {sd}"
            );
        }
        assert_eq!(tb.batch.y_of(b), raw.y_of(b), "labels are not transformed");
    }
    assert!(padded > 0, "some datasets use fewer than {f} features");
}

#[test]
fn constant_datasets_are_zero_with_a_point_mass_target_and_only_in_training() {
    let (_, plan) = general_regression_plan();
    let plan = plan
        .with_targets(pfn_train::TargetKind::Posterior)
        .with_constant_fraction(0.5);
    let (_, plain) = general_regression_plan();
    let plain = plain.with_targets(pfn_train::TargetKind::Posterior);
    let mut constant = 0;
    for index in 0..4 {
        let tb = plan.sample(index).unwrap();
        let reference = plain.sample(index).unwrap();
        let n = tb.single_eval_pos;
        let q = 40 - n;
        let Some(QueryPosterior::Gaussian { mean, std }) = &tb.posterior else {
            panic!("posterior targets");
        };
        for b in 0..8 {
            if tb.batch.y_of(b).iter().all(|&v| v == 0.0) {
                constant += 1;
                assert!(tb.batch.target_y_of(b).iter().all(|&v| v == 0.0));
                assert!(mean[b * q..(b + 1) * q].iter().all(|&m| m == 0.0));
                assert!(std[b * q..(b + 1) * q].iter().all(|&s| s == 0.0));
            } else {
                // Every other dataset is exactly what the plan without constants delivers.
                assert_eq!(tb.batch.y_of(b), reference.batch.y_of(b));
                assert!(std[b * q..(b + 1) * q].iter().all(|&s| s > 0.0));
            }
            // Inputs are never changed.
            assert_eq!(tb.batch.x_of(b), reference.batch.x_of(b));
        }
    }
    // 32 datasets at fraction 0.5: all-or-nothing would mean the draw is broken.
    assert!(
        (4..=28).contains(&constant),
        "{constant} constant datasets of 32"
    );
    // Validation datasets are the prior's own.
    for index in 0..2 {
        let v = plan.sample_validation(index).unwrap();
        for b in 0..8 {
            assert!(v.batch.y_of(b).iter().any(|&y| y != 0.0));
        }
    }
    // Class labels cannot be constant functions.
    let bnn = pfn_train::BatchPlan::new(
        pfn_prior::prior_by_name("bnn-classification-small")
            .unwrap()
            .into(),
        "bnn-classification-small",
        1,
        64,
        20,
        3,
        pfn_prior::SplitSampler::uniform(1, 10).unwrap(),
    )
    .unwrap()
    .with_targets(pfn_train::TargetKind::Posterior)
    .with_constant_fraction(0.9);
    let e = bnn.sample(0).unwrap_err().to_string();
    assert!(e.contains("regression targets only"), "{e}");
}

#[test]
fn extending_a_finished_run_continues_the_same_batches() {
    // With a constant schedule, a 6-step run extended to 12 steps equals a 12-step run.
    let constant = |steps| {
        let mut c = short(steps, 1);
        c.optimizer.schedule = pfn_train::ScheduleKind::Constant;
        c.validate().unwrap();
        c
    };
    let dir = temp_dir("extend");
    let ckpt = dir.join("run.ckpt");
    let mut straight = Trainer::new(constant(12)).unwrap();
    straight.run(&RunOptions::default(), &mut ()).unwrap();

    let mut first = Trainer::new(constant(6)).unwrap();
    let s = first
        .run(
            &RunOptions {
                checkpoint_path: Some(ckpt.clone()),
                ..RunOptions::default()
            },
            &mut (),
        )
        .unwrap();
    assert_eq!(s.stop, StopReason::StepBudget);
    // A plain resume may not change the budget; an extension may, but only upwards.
    let e = Trainer::resume(constant(12), load_checkpoint(&ckpt).unwrap()).unwrap_err();
    assert!(e.to_string().contains("budget.steps"), "{e}");
    let e = Trainer::extend(constant(6), load_checkpoint(&ckpt).unwrap()).unwrap_err();
    assert!(e.to_string().contains("more steps"), "{e}");
    // Other keys stay locked.
    let mut other = constant(12);
    other.budget.batch_size += 1;
    let e = Trainer::extend(other, load_checkpoint(&ckpt).unwrap()).unwrap_err();
    assert!(e.to_string().contains("budget.batch_size"), "{e}");

    let mut extended = Trainer::extend(constant(12), load_checkpoint(&ckpt).unwrap()).unwrap();
    assert_eq!(extended.step(), 6);
    extended.run(&RunOptions::default(), &mut ()).unwrap();
    let tail: Vec<f64> = extended.history().iter().map(|r| r.loss).collect();
    let full: Vec<f64> = straight.history().iter().map(|r| r.loss).collect();
    assert_eq!(bits(&tail), bits(&full[6..]));
    assert_eq!(extended.model().params(), straight.model().params());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn posterior_targets_train_and_validation_still_scores_sampled_targets() {
    let mut sampled = short(150, 1);
    sampled.budget.validation_datasets = 64;
    let mut posterior = sampled.clone();
    posterior.prior.targets = pfn_train::TargetKind::Posterior;
    let mut a = Trainer::new(sampled).unwrap();
    let mut b = Trainer::new(posterior.clone()).unwrap();
    // Same borders, same initialisation, same validation set: the untrained losses are equal.
    let (va, vb) = (a.validation_loss().unwrap(), b.validation_loss().unwrap());
    assert_eq!(va, vb);
    a.run(&RunOptions::default(), &mut ()).unwrap();
    b.run(&RunOptions::default(), &mut ()).unwrap();
    let (la, lb) = (
        a.last_validation_loss().unwrap(),
        b.last_validation_loss().unwrap(),
    );
    eprintln!("150 steps: sampled {va:.4} -> {la:.4}, posterior {vb:.4} -> {lb:.4}");
    assert!(lb < vb - 0.15, "{vb} -> {lb}");
    // The training loss of the posterior run is the expected sampled loss: it tracks validation.
    let tail: Vec<f64> = b.history().iter().rev().take(30).map(|r| r.loss).collect();
    let mean_tail = tail.iter().sum::<f64>() / tail.len() as f64;
    assert!(
        (mean_tail - lb).abs() < 0.5,
        "train {mean_tail} vs validation {lb}"
    );
    // The option is recorded in the artifact's configuration.
    assert_eq!(pfn_train::run_config_of(&b.metadata()).unwrap(), posterior);
}

#[test]
fn posterior_targets_on_a_prior_without_a_closed_form_are_a_clear_error() {
    let mut c = short(2, 1);
    c.prior.name = "ridge".into();
    c.prior.num_features = 5;
    c.prior.targets = pfn_train::TargetKind::Posterior;
    let e = Trainer::new(c).unwrap_err().to_string();
    assert!(
        e.contains("prior.targets") && e.contains("sampled targets"),
        "{e}"
    );
}

#[test]
fn posterior_targets_follow_the_context_standardisation() {
    use pfn_prior::QueryPosterior;
    let (prior, plan) = general_regression_plan();
    let plan = plan.with_targets(pfn_train::TargetKind::Posterior);
    let tb = plan.sample(0).unwrap();
    let n = tb.single_eval_pos;
    let raw = prior.sample_batch(3, 0, 8, 40, 5).unwrap();
    let Some(QueryPosterior::Gaussian { mean, std }) = &tb.posterior else {
        panic!("no Gaussian posterior")
    };
    let Ok(QueryPosterior::Gaussian {
        mean: raw_mean,
        std: raw_std,
    }) = pfn_prior::query_posterior(&raw, n)
    else {
        panic!()
    };
    let q = 40 - n;
    for b in 0..8 {
        let (r, t) = (raw.y_of(b), tb.batch.y_of(b));
        let scale = f64::from(t[0] - t[1]) / f64::from(r[0] - r[1]);
        let shift = f64::from(t[0]) - scale * f64::from(r[0]);
        for k in 0..q {
            let i = b * q + k;
            let want = shift + scale * f64::from(raw_mean[i]);
            assert!((f64::from(mean[i]) - want).abs() < 1e-3 * (1.0 + want.abs()));
            let want_std = scale * f64::from(raw_std[i]);
            assert!((f64::from(std[i]) - want_std).abs() < 1e-4 * want_std);
        }
    }
    // Validation batches carry no posterior.
    assert!(plan.sample_validation(0).unwrap().posterior.is_none());
}

/// Final validation loss of `config` trained to its budget.
fn final_validation_loss(config: RunConfig) -> f64 {
    let mut trainer = Trainer::new(config).unwrap();
    let summary = trainer
        .run(&RunOptions::default(), &mut Recorder::default())
        .unwrap();
    summary.final_validation_loss.unwrap()
}

/// Mean and sample variance.
fn mean_var(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (mean, var)
}

#[test]
fn bf16_training_reaches_the_f32_validation_loss() {
    // The tiny run (600 steps) in f32 and in bf16, each with the learning rate scaled by 0.99, 1 and
    // 1.01: the same data and validation set, trajectories that differ by chaotic amplification of
    // small changes, as bf16 rounding changes them. The runs' spread within each precision is the
    // noise; the two means must agree within it.
    let mut base = tiny();
    base.budget.checkpoint_every = None;
    base.budget.validation_every = None;
    base.budget.validation_datasets = 256;
    let mut losses = [Vec::new(), Vec::new()];
    for (i, precision) in [Precision::F32, Precision::Bf16].into_iter().enumerate() {
        for scale in [0.99, 1.0, 1.01] {
            let mut c = base.clone();
            c.run.precision = precision;
            c.optimizer.lr *= scale;
            losses[i].push(final_validation_loss(c));
        }
    }
    let ((m32, var32), (m16, var16)) = (mean_var(&losses[0]), mean_var(&losses[1]));
    // Standard error of the difference of two means of 3 runs, pooled variance (4 degrees of
    // freedom); 4 of them (t_4 at 99%: 4.6 for a two-sided test; the floor 0.003 nats covers a
    // spread that happens to be tiny).
    let se = ((var32 + var16) / 2.0 * (2.0 / 3.0)).sqrt();
    eprintln!(
        "validation loss after 600 steps: f32 {:?} (mean {m32:.4}), bf16 {:?} (mean {m16:.4}); \
         difference {:.4}, standard error {se:.4}",
        losses[0],
        losses[1],
        m16 - m32
    );
    assert!(
        (m16 - m32).abs() <= 4.0 * se + 0.003,
        "bf16 {m16} vs f32 {m32} (standard error {se})"
    );
    // and both learned (the untrained model is at about 1.4 nats)
    assert!(m16 < 0.8 && m32 < 0.8, "{m16} {m32}");
}

#[test]
fn tail_shape_does_not_change_training() {
    // The logit gradient is softmax - onehot(bucket) (sampled) or softmax - P (posterior): the
    // tails' shape beyond the outer borders never enters it, so the weights are bit-identical.
    for targets in [
        pfn_train::TargetKind::Sampled,
        pfn_train::TargetKind::Posterior,
    ] {
        let mut half_normal = short(30, 1);
        half_normal.prior.targets = targets;
        let mut pareto = half_normal.clone();
        pareto.borders.tails = pfn_train::TailKind::Pareto;
        let mut a = Trainer::new(half_normal).unwrap();
        let mut b = Trainer::new(pareto).unwrap();
        a.run(&RunOptions::default(), &mut ()).unwrap();
        b.run(&RunOptions::default(), &mut ()).unwrap();
        assert!(
            a.model().params() == b.model().params(),
            "{targets:?}: the weights differ"
        );
    }
}

/// A run of `config` (validated here) to its budget, whose final validation loss is finite and
/// below the initial one.
fn trains_and_learns(config: &RunConfig) -> Trainer {
    config.validate().unwrap();
    let mut trainer = Trainer::new(config.clone()).unwrap();
    let before = trainer.validation_loss().unwrap();
    trainer.run(&RunOptions::default(), &mut ()).unwrap();
    let after = trainer.last_validation_loss().unwrap();
    assert!(after.is_finite() && after < before, "{before} -> {after}");
    trainer
}

#[test]
fn pareto_tails_train_and_are_recorded_in_the_model_file() {
    let mut config = short(40, 1);
    config.borders.tails = pfn_train::TailKind::Pareto;
    config.borders.tail_index = Some(3.5);
    let trainer = trains_and_learns(&config);
    let dir = temp_dir("pareto");
    let path = dir.join("pareto.pfn");
    trainer.save_model(&path).unwrap();
    let art = load_model(&path).unwrap();
    let dist = art.metadata.head.bar_distribution().unwrap().unwrap();
    assert_eq!(
        dist.tail_shape(),
        pfn_distribution::TailShape::Pareto { index: 3.5 }
    );
    assert_eq!(pfn_train::run_config_of(&art.metadata).unwrap(), config);
    std::fs::remove_dir_all(&dir).ok();
}

/// Strips the lineage from the model file at `path` (as written before lineage was recorded).
fn strip_lineage(path: &std::path::Path) {
    let art = load_model(path).unwrap();
    let mut meta = art.metadata.clone();
    meta.lineage.clear();
    let views: Vec<_> = art.tensors.iter().map(|t| t.as_ref()).collect();
    pfn_train::artifact::save_model(path, &meta, &views).unwrap();
}

#[test]
fn a_chain_of_runs_records_its_lineage_in_every_file() {
    let dir = temp_dir("lineage");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let stage = |steps: u64, seed: u64, init_from: Option<String>, out: &str| {
        let mut config = short(steps, 1);
        config.run.seed = seed;
        config.run.init_from = init_from;
        config.validate().unwrap();
        let mut trainer = Trainer::new(config).unwrap();
        trainer.run(&RunOptions::default(), &mut ()).unwrap();
        trainer.save_model(path(out)).unwrap();
        load_model(path(out)).unwrap()
    };
    let first = stage(6, 1, None, "first.pfn");
    assert!(first.metadata.lineage.is_empty() && first.metadata.lineage_complete());

    // Each run records the runs before it, oldest first, with the start file's digest.
    let second = stage(4, 2, Some(path("first.pfn")), "second.pfn");
    let third = stage(3, 3, Some(path("second.pfn")), "third.pfn");
    let lineage = &third.metadata.lineage;
    assert_eq!(lineage.len(), 2);
    assert_eq!(
        (lineage[0].file.as_str(), lineage[1].file.as_str()),
        (path("first.pfn").as_str(), path("second.pfn").as_str())
    );
    assert_eq!(
        (&lineage[0].sha256, &lineage[1].sha256),
        (&first.digest, &second.digest)
    );
    assert_eq!(lineage[0].training, first.metadata.training);
    assert_eq!(lineage[1].training, second.metadata.training);
    assert_eq!(
        lineage[1].started_from.as_deref(),
        Some(path("first.pfn").as_str())
    );
    assert!(third.metadata.lineage_complete());
    let all = third.metadata.training_in_all();
    assert_eq!(all.steps, 6 + 4 + 3);
    assert_eq!(all.datasets, (6 + 4 + 3) * short(1, 1).datasets_per_step());

    // A start file written before lineage was recorded: its chain is read back from the files it
    // names, as far as they exist.
    strip_lineage(&dir.join("second.pfn"));
    let legacy = load_model(path("second.pfn")).unwrap();
    assert!(legacy.metadata.lineage.is_empty() && !legacy.metadata.lineage_complete());
    let walked = stage(3, 4, Some(path("second.pfn")), "walked.pfn");
    assert_eq!(walked.metadata.lineage.len(), 2);
    assert_eq!(walked.metadata.lineage[0].sha256, first.digest);
    assert!(walked.metadata.lineage_complete());
    std::fs::remove_file(path("first.pfn")).unwrap();
    let cut = stage(3, 5, Some(path("second.pfn")), "cut.pfn");
    assert_eq!(
        cut.metadata.lineage.len(),
        1,
        "the history stops at a missing file"
    );
    assert_eq!(
        cut.metadata.lineage[0].started_from.as_deref(),
        Some(path("first.pfn").as_str())
    );
    assert!(!cut.metadata.lineage_complete());

    // A checkpoint keeps the lineage, and a resumed run writes it again; a checkpoint without
    // one (written before lineage was recorded) reads it from its start file.
    let mut config = short(4, 1);
    config.run.seed = 6;
    config.run.init_from = Some(path("third.pfn"));
    config.validate().unwrap();
    let mut trainer = Trainer::new(config.clone()).unwrap();
    trainer.run(&RunOptions::default(), &mut ()).unwrap();
    trainer.save_checkpoint(path("fourth.ckpt")).unwrap();
    let checkpoint = load_checkpoint(path("fourth.ckpt")).unwrap();
    assert_eq!(checkpoint.metadata.lineage.len(), 3);
    let resumed = Trainer::resume(config.clone(), checkpoint.clone()).unwrap();
    assert_eq!(resumed.metadata().lineage, checkpoint.metadata.lineage);
    let mut old = checkpoint.clone();
    old.metadata.lineage.clear();
    let recovered = Trainer::resume(config, old).unwrap();
    assert_eq!(recovered.metadata().lineage, checkpoint.metadata.lineage);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn init_from_starts_a_fresh_run_from_another_models_weights_and_borders() {
    let dir = temp_dir("init-from");
    let first_file = dir.join("first.pfn");
    let mut first = Trainer::new(short(8, 1)).unwrap();
    first.run(&RunOptions::default(), &mut ()).unwrap();
    first.save_model(&first_file).unwrap();

    // A run on another seed (other borders, other initialisation) that starts from `first`.
    let mut config = short(8, 1);
    config.run.seed = 99;
    config.run.init_from = Some(first_file.to_string_lossy().into_owned());
    config.validate().unwrap();
    let tuned = Trainer::new(config.clone()).unwrap();
    assert_eq!(tuned.step(), 0);
    assert_eq!(tuned.model().params(), first.model().params());
    let saved = dir.join("tuned.pfn");
    tuned.save_model(&saved).unwrap();
    let (a, b) = (
        load_model(&first_file).unwrap(),
        load_model(&saved).unwrap(),
    );
    assert_eq!(
        a.metadata.head, b.metadata.head,
        "the borders come from the file"
    );
    // The stored configuration says where the weights came from.
    assert!(serde_json::to_string(&b.metadata)
        .unwrap()
        .contains("first.pfn"));
    // Without it, the seed gives another start.
    config.run.init_from = None;
    let fresh = Trainer::new(config.clone()).unwrap();
    assert_ne!(fresh.model().params(), first.model().params());

    // Another architecture, a missing file: clear errors naming the key and the file.
    let mut wider = short(8, 1);
    wider.model.emsize *= 2;
    wider.model.nhid *= 2;
    wider.run.init_from = Some(first_file.to_string_lossy().into_owned());
    let refused = |config| match Trainer::new(config) {
        Ok(_) => panic!("the run should be refused"),
        Err(e) => e.to_string(),
    };
    let e = refused(wider);
    assert!(
        e.contains("run.init_from") && e.contains("architecture"),
        "{e}"
    );
    let mut missing = short(8, 1);
    missing.run.init_from = Some(dir.join("nope.pfn").to_string_lossy().into_owned());
    let e = refused(missing);
    assert!(e.contains("nope.pfn"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_with_few_queries_per_dataset_trains_and_records_the_option() {
    let mut config = short(40, 1);
    config.prior.max_queries = Some(3);
    let trainer = trains_and_learns(&config);
    // Another run without the option sees other (longer) batches and ends elsewhere.
    let mut full = Trainer::new(short(40, 1)).unwrap();
    full.run(&RunOptions::default(), &mut ()).unwrap();
    assert_ne!(full.model().params(), trainer.model().params());
    assert_eq!(
        trainer.metadata().config["prior"]["max_queries"],
        serde_json::json!(3)
    );
}
