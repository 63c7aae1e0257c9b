//! A tiny PFN trained in seconds, for `pfn serve --demo` and for tests: a small transformer
//! trained with the paper's objective (negative log density of a full-support bar distribution
//! with equal-prior-mass borders) on datasets from a named prior.
//!
//! This is a demonstration model, not a paper-quality one: a few hundred to a few thousand steps
//! of a network of about 90k parameters. Its posterior follows the GP's roughly, not closely.
//! Every random stream is seeded from [`DemoModelSpec::seed`], so the same spec gives the same
//! weights on the same machine.

use std::path::Path;
use std::time::Instant;

use pfn_artifact::{
    save_model, ArtifactError, InputNormalisation, ModelArtifact, NamedTensor, OutputHead,
    TensorRef, TrainingSpent,
};
use pfn_distribution::{quantile_borders, BarDistribution};
use pfn_engine::Engine;
use pfn_model::{clip_grad_norm, AdamW, AdamWConfig, Batch, PfnConfig, PfnModel, Workspace};
use pfn_prior::prior_by_name;
use pfn_train::{model_metadata, RunConfig, SplitDistribution};

/// Why a demo model could not be trained or saved.
#[derive(Debug, thiserror::Error)]
pub enum DemoModelError {
    /// The specification is inconsistent (unknown prior, bad sizes).
    #[error("invalid demo model specification: {0}")]
    Spec(String),
    /// Training failed.
    #[error("training the demo model failed: {0}")]
    Training(String),
    /// Saving the artifact failed.
    #[error("{0}")]
    Save(#[from] ArtifactError),
}

/// Sizes and budget of a demo model.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoModelSpec {
    /// Registry name of the prior (`pfn_prior::PRIORS`), e.g. `gp-1d`.
    pub prior: String,
    /// Points per training dataset (the model's context limit is `seq_len - 1`).
    pub seq_len: usize,
    /// Embedding width.
    pub emsize: usize,
    /// Transformer layers.
    pub nlayers: usize,
    /// Attention heads.
    pub nhead: usize,
    /// Feed-forward width.
    pub nhid: usize,
    /// Requested number of buckets (may shrink when prior samples tie).
    pub buckets: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Datasets per step.
    pub batch_size: usize,
    /// Peak learning rate (linear warm-up over the first quarter, then cosine to 0).
    pub lr: f64,
    /// Master seed.
    pub seed: u64,
    /// Worker threads (0: all cores).
    pub threads: usize,
}

impl DemoModelSpec {
    /// A small gp-1d model: 2 layers of width 64, 100 buckets, 30 points per dataset, `steps`
    /// steps of 32 datasets.
    pub fn gp_1d(steps: u64, seed: u64) -> Self {
        Self {
            prior: "gp-1d".into(),
            seq_len: 30,
            emsize: 64,
            nlayers: 2,
            nhead: 4,
            nhid: 128,
            buckets: 100,
            steps,
            batch_size: 32,
            lr: 3e-3,
            seed,
            threads: 0,
        }
    }
}

/// Trains a demo model and returns it as an in-memory artifact (metadata and weights, with the
/// digest of the saved form left empty).
pub fn train_demo_model(spec: &DemoModelSpec) -> Result<ModelArtifact, DemoModelError> {
    let started = Instant::now();
    let bad = |e: String| DemoModelError::Spec(e);
    let fail = |e: String| DemoModelError::Training(e);
    let prior = prior_by_name(&spec.prior).map_err(|e| bad(e.to_string()))?;
    if spec.steps == 0 || spec.batch_size == 0 {
        return Err(bad("steps and batch_size must be at least 1".into()));
    }

    let mut config = RunConfig::new(spec.prior.clone());
    config.prior.seq_len = spec.seq_len;
    config.prior.split = SplitDistribution::Uniform;
    config.model.emsize = spec.emsize;
    config.model.nlayers = spec.nlayers;
    config.model.nhead = spec.nhead;
    config.model.nhid = spec.nhid;
    config.model.query_self_attention = false;
    config.optimizer.lr = spec.lr;
    config.optimizer.weight_decay = 0.0;
    config.budget.steps = Some(spec.steps);
    config.budget.batch_size = spec.batch_size;
    config.run.seed = spec.seed;
    config.run.threads = (spec.threads > 0).then_some(spec.threads);
    let f = config.prior.num_features;

    // Equal-prior-mass borders from prior targets.
    let border_datasets = (config.borders.samples / spec.seq_len).clamp(1, 2000);
    config.borders.samples = border_datasets * spec.seq_len;
    let sample = prior
        .sample_batch(
            pfn_train::borders_seed(spec.seed),
            0,
            border_datasets,
            spec.seq_len,
            f,
        )
        .map_err(|e| bad(e.to_string()))?;
    let borders =
        quantile_borders(&sample.target_y, spec.buckets, None).map_err(|e| bad(e.to_string()))?;
    let head = BarDistribution::full_support(borders.clone()).map_err(|e| bad(e.to_string()))?;
    config.model.buckets = Some(head.num_buckets());
    config.borders.samples = config.borders.samples.max(head.num_buckets());
    config.validate().map_err(|e| bad(e.to_string()))?;

    let mut pfn_config = PfnConfig::new(
        f,
        spec.emsize,
        spec.nhead,
        spec.nhid,
        spec.nlayers,
        head.num_buckets(),
    );
    pfn_config.query_self_attention = false;
    let engine = Engine::new(spec.threads).map_err(|e| fail(e.to_string()))?;
    let mut model = PfnModel::new(pfn_config, pfn_train::init_seed(spec.seed))
        .map_err(|e| bad(e.to_string()))?;
    let adam = AdamWConfig {
        lr: spec.lr as f32,
        weight_decay: 0.0,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(adam, model.num_params()).map_err(|e| bad(e.to_string()))?;
    let schedule = config.lr_schedule();
    let split = config.split_sampler().map_err(|e| bad(e.to_string()))?;
    let mut ws = Workspace::training();
    let (b, t) = (spec.batch_size, spec.seq_len);
    for step in 0..spec.steps {
        let batch = prior
            .sample_batch(spec.seed, step, b, t, f)
            .map_err(|e| fail(e.to_string()))?;
        let n = split.sample_for_batch(spec.seed, step);
        let m = t - n;
        let targets: Vec<f32> = (0..b)
            .flat_map(|d| batch.target_y[d * t + n..(d + 1) * t].iter().copied())
            .collect();
        let logits = model
            .forward(
                &engine,
                &mut ws,
                &Batch {
                    x: &batch.x,
                    y: &batch.y,
                    batch: b,
                    seq_len: t,
                    single_eval_pos: n,
                },
            )
            .map_err(|e| fail(e.to_string()))?;
        let mut grad = vec![0.0f32; logits.len()];
        let total = head
            .nll_and_grad(logits, &targets, &mut grad, 1.0 / (b * m) as f32)
            .map_err(|e| fail(e.to_string()))?;
        if !total.is_finite() {
            return Err(fail(format!("non-finite loss at step {step}")));
        }
        model.zero_grad();
        model
            .backward(&engine, &mut ws, &grad)
            .map_err(|e| fail(e.to_string()))?;
        clip_grad_norm(
            &engine,
            model.grads_mut(),
            config.optimizer.grad_clip as f32,
        );
        opt.set_lr(schedule.lr_at(step) as f32)
            .map_err(|e| fail(e.to_string()))?;
        opt.step_model(&engine, &mut model)
            .map_err(|e| fail(e.to_string()))?;
    }

    let tensors: Vec<NamedTensor> = model
        .layout()
        .entries()
        .iter()
        .map(|info| NamedTensor {
            name: info.name.clone(),
            shape: info.shape.clone(),
            data: model.params()[info.range()].to_vec(),
        })
        .collect();
    let metadata = model_metadata(
        &config,
        OutputHead::Riemann {
            borders,
            full_support: true,
        },
        InputNormalisation::default(),
        TrainingSpent {
            steps: spec.steps,
            datasets: spec.steps * b as u64,
            seconds: started.elapsed().as_secs_f64(),
        },
        None,
    );
    metadata.validate().map_err(bad)?;
    let mut tensors = tensors;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ModelArtifact {
        metadata,
        tensors,
        digest: String::new(),
    })
}

/// Saves an artifact made by [`train_demo_model`] with `pfn_artifact::save_model`.
pub fn save_demo_model(
    artifact: &ModelArtifact,
    path: impl AsRef<Path>,
) -> Result<(), DemoModelError> {
    let refs: Vec<TensorRef<'_>> = artifact.tensors.iter().map(|t| t.as_ref()).collect();
    save_model(path, &artifact.metadata, &refs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(steps: u64, seed: u64) -> DemoModelSpec {
        DemoModelSpec {
            seq_len: 12,
            emsize: 16,
            nlayers: 1,
            nhead: 2,
            nhid: 32,
            buckets: 20,
            batch_size: 8,
            threads: 2,
            ..DemoModelSpec::gp_1d(steps, seed)
        }
    }

    #[test]
    fn the_same_spec_gives_the_same_weights_and_training_changes_them() {
        let a = train_demo_model(&small(20, 3)).unwrap();
        let b = train_demo_model(&small(20, 3)).unwrap();
        assert_eq!(a.tensors, b.tensors);
        let c = train_demo_model(&small(21, 3)).unwrap();
        assert_ne!(a.tensors, c.tensors);
        assert_eq!(a.metadata.prior, "gp-1d");
        assert_eq!(a.metadata.max_context(), 11);
        assert!(a.metadata.validate().is_ok());
    }

    #[test]
    fn bad_specs_are_refused() {
        let unknown = DemoModelSpec {
            prior: "no-such-prior".into(),
            ..small(1, 0)
        };
        assert!(matches!(
            train_demo_model(&unknown),
            Err(DemoModelError::Spec(_))
        ));
        assert!(matches!(
            train_demo_model(&small(0, 0)),
            Err(DemoModelError::Spec(_))
        ));
        let heads = DemoModelSpec {
            nhead: 3,
            ..small(1, 0)
        };
        assert!(matches!(
            train_demo_model(&heads),
            Err(DemoModelError::Spec(_))
        ));
    }

    #[test]
    fn a_saved_demo_model_loads_back() {
        let a = train_demo_model(&small(2, 1)).unwrap();
        let dir = std::env::temp_dir().join(format!("pfn-server-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        save_demo_model(&a, &path).unwrap();
        let back = pfn_artifact::load_model(&path).unwrap();
        assert_eq!(back.tensors, a.tensors);
        assert_eq!(back.metadata, a.metadata);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
