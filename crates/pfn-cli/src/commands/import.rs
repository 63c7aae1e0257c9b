//! `pfn import`: turn a PyTorch `state_dict` of the paper's PFN (saved as safetensors) into this
//! project's model artifact.
//!
//! The architecture JSON gives `num_features`, `emsize`, `nhead`, `nhid`, `nlayers` and either
//! `buckets` (a Riemann head; its borders come from `--borders`, a safetensors file with a 1-D tensor
//! named `borders`, as in the golden fixtures' `cases.safetensors`) or `n_out` (a classification head).
//! Optional keys: `query_self_attention` (default true: the paper's code lets each query attend to
//! itself) and `prior` (the prior the model was trained on, default `gp-1d`). The tensor-name mapping is
//! documented in `pfn_model::io`; shape or name mismatches are reported with the tensor and both shapes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pfn_artifact::{named_views, save_model, OutputHead, TrainingSpent};
use pfn_model::{PfnConfig, PfnModel};
use pfn_train::{model_metadata, normalisation_for_prior, RunConfig};
use serde::Deserialize;

/// Arguments of `pfn import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The PyTorch state_dict as safetensors (PyTorch parameter names).
    #[arg(long)]
    pub state_dict: PathBuf,
    /// Architecture JSON (num_features, emsize, nhead, nhid, nlayers, buckets or n_out).
    #[arg(long)]
    pub arch: PathBuf,
    /// Safetensors file holding a 1-D f32 or f64 tensor `borders` (required for a Riemann head).
    #[arg(long)]
    pub borders: Option<PathBuf>,
    /// Output model artifact.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Arch {
    num_features: usize,
    emsize: usize,
    nhead: usize,
    nhid: usize,
    nlayers: usize,
    #[serde(default)]
    buckets: Option<usize>,
    #[serde(default)]
    n_out: Option<usize>,
    #[serde(default = "default_true")]
    query_self_attention: bool,
    #[serde(default = "default_prior")]
    prior: String,
}

fn default_true() -> bool {
    true
}

fn default_prior() -> String {
    "gp-1d".into()
}

/// Runs the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.arch)
        .with_context(|| format!("{}: cannot read", args.arch.display()))?;
    let arch: Arch = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid architecture JSON", args.arch.display()))?;
    let (head, n_out) = match (arch.buckets, arch.n_out) {
        (Some(_), Some(_)) => bail!(
            "{}: give either 'buckets' or 'n_out', not both",
            args.arch.display()
        ),
        (Some(k), None) => {
            let path = args.borders.as_deref().with_context(|| {
                format!(
                    "{}: a Riemann head with {k} buckets needs --borders FILE",
                    args.arch.display()
                )
            })?;
            let borders = read_borders(path)?;
            if borders.len() != k + 1 {
                bail!(
                    "{}: tensor 'borders' has {} entries, expected buckets + 1 = {}",
                    path.display(),
                    borders.len(),
                    k + 1
                );
            }
            (
                OutputHead::Riemann {
                    borders,
                    full_support: true,
                    tail: Default::default(),
                },
                k,
            )
        }
        (None, Some(c)) => (OutputHead::Classes { n_out: c }, c),
        (None, None) => bail!(
            "{}: missing 'buckets' (Riemann head) or 'n_out' (classes)",
            args.arch.display()
        ),
    };
    let mut pfn_config = PfnConfig::new(
        arch.num_features,
        arch.emsize,
        arch.nhead,
        arch.nhid,
        arch.nlayers,
        n_out,
    );
    pfn_config.query_self_attention = arch.query_self_attention;
    let model = PfnModel::import_torch_file(&args.state_dict, pfn_config)
        .with_context(|| format!("{}", args.state_dict.display()))?;

    let mut run = RunConfig::new(arch.prior.clone());
    run.prior.num_features = arch.num_features;
    run.model.emsize = arch.emsize;
    run.model.nlayers = arch.nlayers;
    run.model.nhead = arch.nhead;
    run.model.nhid = arch.nhid;
    run.model.query_self_attention = arch.query_self_attention;
    match &head {
        OutputHead::Riemann { .. } => {
            run.model.buckets = Some(n_out);
            run.model.n_out = None;
        }
        OutputHead::Classes { .. } => {
            run.model.buckets = None;
            run.model.n_out = Some(n_out);
        }
    }
    let meta = model_metadata(
        &run,
        head,
        normalisation_for_prior(&arch.prior),
        TrainingSpent {
            steps: 0,
            datasets: 0,
            seconds: 0.0,
        },
        None,
    );
    save_model(&args.out, &meta, &named_views(&model, model.params()))
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "imported {} parameters from {} into {}",
        model.num_params(),
        args.state_dict.display(),
        args.out.display()
    );
    Ok(())
}

fn read_borders(path: &Path) -> Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let t = st
        .tensor("borders")
        .with_context(|| format!("{}: no tensor named 'borders'", path.display()))?;
    if t.shape().len() != 1 {
        bail!(
            "{}: tensor 'borders' has shape {:?}, expected one dimension",
            path.display(),
            t.shape()
        );
    }
    let data = t.data();
    let v: Vec<f64> = match t.dtype() {
        safetensors::Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        safetensors::Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect(),
        other => bail!(
            "{}: tensor 'borders' has dtype {other:?}, expected F32 or F64",
            path.display()
        ),
    };
    Ok(v)
}
