//! `pfn-model`: the Prior-Data Fitted Network of Müller et al. (ICLR 2022) on `pfn-engine`, with an
//! explicit forward and backward pass, AdamW, gradient clipping, and the import of the paper's
//! PyTorch weights. (Trained models are saved and loaded through the model file of `pfn-artifact`.)
//!
//! - [`PfnModel`]: configuration ([`PfnConfig`]), parameter layout ([`ParamLayout`]), flat parameter
//!   and gradient buffers; [`PfnModel::forward`] returns logits, [`PfnModel::backward`] takes
//!   d loss / d logits and accumulates parameter gradients. The loss (bar distribution,
//!   classification) is computed outside, e.g. with `pfn-distribution`.
//! - [`Workspace`]: the reusable activation buffers of a training or inference pass.
//! - [`ContextCache`]: keys and values of an encoded context, for answering queries without
//!   recomputing the context ([`PfnModel::encode_context`], [`PfnModel::forward_queries`]).
//! - [`Precision`]: f32 or bf16 matrix products for inference ([`PfnModel::set_inference_precision`]).
//! - [`AdamW`], [`clip_grad_norm`]: the optimiser over the flat buffers.
//! - [`io`]: the import of the paper's PyTorch `state_dict` (saved as safetensors).
//!
//! Inside, each component of the network has its own module with its forward and backward side by
//! side: the encoders (`encoder.rs`), a layer (`layer.rs`: the attention block in `attention.rs`,
//! the feed-forward block in `feed_forward.rs`, each with its LayerNorm) and the decoder
//! (`decoder.rs`), built from the strided row views and linear-layer products of `ops.rs`;
//! [`forward`] and [`backward`] run them in turn.
//!
//! ```no_run
//! use pfn_engine::Engine;
//! use pfn_model::{AdamW, AdamWConfig, Batch, PfnConfig, PfnModel, Workspace};
//!
//! let engine = Engine::new(2)?;
//! let mut model = PfnModel::new(PfnConfig::new(1, 256, 4, 512, 4, 1000), 0)?;
//! let mut ws = Workspace::training();
//! let mut opt = AdamW::new(AdamWConfig::default(), model.num_params())?;
//! # let (x, y) = (vec![0.0f32; 64 * 100], vec![0.0f32; 64 * 100]);
//! let batch = Batch { x: &x, y: &y, batch: 64, seq_len: 100, single_eval_pos: 50 };
//! let logits = model.forward(&engine, &mut ws, &batch)?;      // (64, 50, 1000)
//! let d_logits = vec![0.0f32; logits.len()];                  // d loss / d logits from the head
//! model.zero_grad();
//! model.backward(&engine, &mut ws, &d_logits)?;
//! opt.step_model(&engine, &mut model)?;
//! # Ok::<(), pfn_model::ModelError>(())
//! ```
#![warn(missing_docs)]

pub mod backward;
pub mod cache;
pub mod config;
pub mod error;
pub mod forward;
pub mod io;
pub mod model;
pub mod optim;
pub mod params;
pub mod precision;
pub mod workspace;

// The network's components, each with its forward and backward side by side.
mod attention;
mod decoder;
mod encoder;
mod feed_forward;
mod layer;
mod ops;

pub use cache::ContextCache;
pub use config::PfnConfig;
pub use error::{ModelError, Result};
pub use model::PfnModel;
pub use optim::{clip_grad_norm, AdamW, AdamWConfig};
pub use params::{ParamInfo, ParamLayout};
pub use precision::Precision;
pub use workspace::{Batch, Mode, Workspace};
