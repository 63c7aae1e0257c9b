//! The run configuration in the model file.
//!
//! The model file (`pfn-artifact`) stores the run configuration as JSON that it does not interpret.
//! This module is the training side of that contract: [`model_metadata`] writes a [`RunConfig`]
//! into the metadata (with the [`Architecture`] it describes, [`architecture_of`]), and
//! [`run_config_of`] reads it back when a checkpoint is resumed, checking that it is a valid
//! configuration that agrees with the stored architecture and head.

use pfn_artifact::{Architecture, InputNormalisation, ModelMetadata, OutputHead, TrainingSpent};

use crate::config::{ConfigError, HeadKind, RunConfig};

/// The `file` of the errors of [`run_config_of`].
const STORED: &str = "<stored run configuration>";

/// The architecture a run configuration describes.
pub fn architecture_of(config: &RunConfig) -> Architecture {
    Architecture {
        emsize: config.model.emsize,
        nlayers: config.model.nlayers,
        nhead: config.model.nhead,
        nhid: config.model.nhid,
        num_features: config.prior.num_features,
        seq_len: config.prior.seq_len,
        n_out: config.model.output_width(),
        query_self_attention: config.model.query_self_attention,
        y_classes: config.model.y_classes(),
    }
}

/// The run configuration as the JSON the model file stores.
pub fn config_json(config: &RunConfig) -> serde_json::Value {
    // Strings, integers, floats, enums and JSON maps with string keys: serialising to a JSON value
    // cannot fail (a non-finite float would become `null`, and `RunConfig::validate` rejects them).
    serde_json::to_value(config).expect("a run configuration is always representable as JSON")
}

/// Metadata for a model trained with `config`: architecture and prior name from the config, the
/// config itself as JSON, the given head, normalisation, budget and loss; `written_by` is this
/// crate's name and version.
pub fn model_metadata(
    config: &RunConfig,
    head: OutputHead,
    normalisation: InputNormalisation,
    training: TrainingSpent,
    final_validation_loss: Option<f64>,
) -> ModelMetadata {
    let mut metadata = ModelMetadata::new(
        architecture_of(config),
        head,
        config_json(config),
        config.prior.name.clone(),
        normalisation,
        training,
        final_validation_loss,
    );
    metadata.written_by = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")).into();
    metadata
}

/// The run configuration stored in `metadata`, checked: it parses as a [`RunConfig`], passes
/// [`RunConfig::validate`], and describes the stored architecture and head (kind and width).
pub fn run_config_of(metadata: &ModelMetadata) -> Result<RunConfig, ConfigError> {
    let invalid = |key: &str, problem: String| ConfigError::Invalid {
        file: STORED.into(),
        key: key.into(),
        problem,
    };
    let config: RunConfig = serde_json::from_value(metadata.config.clone())
        .map_err(|e| invalid("config", format!("not a pfn-train run configuration ({e})")))?;
    config.validate()?;
    let head_matches = match (config.model.head(), &metadata.head) {
        (HeadKind::Riemann { buckets }, OutputHead::Riemann { .. }) => {
            buckets == metadata.head.width()
        }
        (HeadKind::Classes { n_out }, OutputHead::Classes { n_out: m }) => n_out == *m,
        _ => false,
    };
    if !head_matches {
        let stored = match &metadata.head {
            OutputHead::Riemann { borders, .. } => HeadKind::Riemann {
                buckets: borders.len().saturating_sub(1),
            },
            OutputHead::Classes { n_out } => HeadKind::Classes { n_out: *n_out },
        };
        return Err(invalid(
            "model",
            format!(
                "the configuration's head {:?} does not match the stored head {stored:?}",
                config.model.head()
            ),
        ));
    }
    if architecture_of(&config) != metadata.architecture {
        return Err(invalid(
            "model",
            format!(
                "the configuration describes {:?} but the stored architecture is {:?}",
                architecture_of(&config),
                metadata.architecture
            ),
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunConfig {
        RunConfig::from_toml_str(
            "[prior]\nname = \"gp-1d\"\nseq_len = 20\nmax_context = 12\n[model]\nemsize = 8\n\
             nlayers = 1\nnhead = 2\nnhid = 16\nbuckets = 4\n[borders]\nsamples = 100\n\
             [optimizer]\nlr = 3.0000000000000004e-4\n[budget]\nsteps = 7\n[run]\nseed = 5\n",
            "c.toml",
        )
        .unwrap()
    }

    fn head() -> OutputHead {
        OutputHead::Riemann {
            borders: vec![-1.0, 0.0, 1.0, 2.0, 3.0],
            full_support: true,
            tail: Default::default(),
        }
    }

    fn metadata() -> ModelMetadata {
        model_metadata(
            &config(),
            head(),
            InputNormalisation::default(),
            TrainingSpent::default(),
            None,
        )
    }

    #[test]
    fn the_stored_configuration_round_trips() {
        let m = metadata();
        assert_eq!(m.architecture, architecture_of(&config()));
        assert_eq!(m.prior, "gp-1d");
        assert!(m.written_by.starts_with("pfn-train "));
        assert_eq!(m.max_context(), config().prior.max_context());
        assert_eq!(m.run_seed(), Some(5));
        assert_eq!(run_config_of(&m).unwrap(), config());
        // Through the file's JSON text and back.
        let text = serde_json::to_string(&m).unwrap();
        let back: ModelMetadata = serde_json::from_str(&text).unwrap();
        assert_eq!(run_config_of(&back).unwrap(), config());
        // Without max_context the file's rule is the configuration's.
        let mut c = config();
        c.prior.max_context = None;
        let m = model_metadata(&c, head(), Default::default(), Default::default(), None);
        assert_eq!(m.max_context(), c.prior.max_context());
    }

    #[test]
    fn a_stored_configuration_that_disagrees_is_an_error() {
        let mut m = metadata();
        m.head = OutputHead::Classes { n_out: 4 };
        let e = run_config_of(&m).unwrap_err().to_string();
        assert!(e.contains("does not match the stored head"), "{e}");

        let mut m = metadata();
        m.architecture.emsize = 16;
        let e = run_config_of(&m).unwrap_err().to_string();
        assert!(e.contains("stored architecture"), "{e}");

        let mut m = metadata();
        m.config["model"]["colour"] = serde_json::json!("blue");
        let e = run_config_of(&m).unwrap_err().to_string();
        assert!(
            e.contains("not a pfn-train run configuration") && e.contains("colour"),
            "{e}"
        );

        let mut m = metadata();
        m.config["model"]["emsize"] = serde_json::json!(0);
        assert!(run_config_of(&m).is_err());
    }
}
