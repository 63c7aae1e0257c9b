//! A tiny PFN trained in seconds, for `pfn serve --demo` and for tests: a small transformer
//! trained with the paper's objective (negative log density of a full-support bar distribution
//! with equal-prior-mass borders) on datasets from a named prior.
//!
//! This is a demonstration model, not a paper-quality one: a few hundred to a few thousand steps
//! of a network of about 90k parameters. Its posterior follows the GP's roughly, not closely.
//! Every random stream is seeded from [`DemoModelSpec::seed`], so the same spec gives the same
//! weights on the same machine.

use std::path::Path;

use pfn_artifact::{named_views, save_model, ArtifactError, ModelArtifact, NamedTensor, TensorRef};
use pfn_prior::prior_by_name;
use pfn_train::{RunConfig, RunOptions, SplitDistribution, TrainError, Trainer};

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

/// Trains a demo model through the one training loop (`pfn_train::Trainer`, as `pfn train`) and
/// returns it as an in-memory artifact (metadata and weights, with the digest of the saved form
/// left empty). No validation set and no checkpoints; the borders come from at most 2000 prior
/// datasets.
pub fn train_demo_model(spec: &DemoModelSpec) -> Result<ModelArtifact, DemoModelError> {
    let bad = |e: String| DemoModelError::Spec(e);
    let fail = |e: String| DemoModelError::Training(e);
    prior_by_name(&spec.prior).map_err(|e| bad(e.to_string()))?;
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
    config.model.buckets = Some(spec.buckets);
    config.model.query_self_attention = false;
    config.borders.samples =
        ((config.borders.samples / spec.seq_len).clamp(1, 2000) * spec.seq_len).max(spec.buckets);
    config.optimizer.lr = spec.lr;
    config.optimizer.weight_decay = 0.0;
    config.budget.steps = Some(spec.steps);
    config.budget.batch_size = spec.batch_size;
    config.budget.validation_every = None;
    config.budget.checkpoint_every = None;
    config.budget.validation_datasets = spec.batch_size;
    config.run.seed = spec.seed;
    config.run.threads = (spec.threads > 0).then_some(spec.threads);
    config.validate().map_err(|e| bad(e.to_string()))?;

    let mut trainer = Trainer::new(config).map_err(|e| match e {
        TrainError::Config(e) => bad(e.to_string()),
        e => fail(e.to_string()),
    })?;
    trainer
        .run(&RunOptions::default(), &mut ())
        .map_err(|e| fail(e.to_string()))?;
    let model = trainer.model();
    let mut tensors: Vec<NamedTensor> = named_views(model, model.params())
        .iter()
        .map(|t| NamedTensor {
            name: t.name.to_string(),
            shape: t.shape.to_vec(),
            data: t.data.to_vec(),
        })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ModelArtifact {
        metadata: trainer.metadata(),
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
