//! The forward pass: the encoder (`encoder.rs`), the layers (`layer.rs`: `attention.rs`, then
//! `feed_forward.rs`) and the decoder (`decoder.rs`) in turn, each over the rows it needs.
//!
//! Tokens are processed as one row-major matrix with all context tokens first (dataset b, point i
//! at row `b * n + i`) and all query tokens after them (dataset b, query j at row
//! `batch * n + b * m + j`), so that every linear layer is one matrix product, the keys and values of
//! the context are one block, and the decoder reads one contiguous block. Context tokens never see
//! the queries, and in the last layer only the query rows are computed after the attention (the
//! context outputs of the last layer are unused). With a cached context (see [`crate::cache`]) every
//! layer computes only the query rows, reading the context keys and values from the cache.

use pfn_engine::Engine;

use crate::attention::KvCache;
use crate::config::PfnConfig;
use crate::decoder;
use crate::encoder::{self, class_index, fold_first_projection};
use crate::error::{ModelError, Result};
use crate::layer::{self, LayerPlan};
use crate::model::PfnModel;
use crate::params::ModelRanges;
use crate::precision::{Bf16Weights, Precision};
use crate::workspace::{Batch, Dims, Mode, Workspace};

/// Where the tokens of a forward pass come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A full batch: context and query points.
    Batch(&'a Batch<'a>),
    /// Query points (batch, m, F) against a context whose per-layer keys and values are cached
    /// ((batch * n, 2E) per layer).
    Queries {
        x: &'a [f32],
        cache_kv: &'a [Vec<f32>],
    },
}

impl<'a> Source<'a> {
    /// The cached keys and values of every layer, for `Source::Queries`.
    fn cached_kv(&self) -> Option<&'a [Vec<f32>]> {
        match *self {
            Source::Queries { cache_kv, .. } => Some(cache_kv),
            Source::Batch(_) => None,
        }
    }
}

/// What the components of one forward pass read: the configuration, the parameters, the sizes
/// and the arithmetic.
pub(crate) struct Pass<'a> {
    /// The architecture.
    pub config: &'a PfnConfig,
    /// The flat parameter buffer.
    pub params: &'a [f32],
    /// Where each parameter lies in it.
    pub ranges: &'a ModelRanges,
    /// The sizes of the pass.
    pub dims: Dims,
    /// Whether the pass keeps what the backward needs (a training workspace).
    pub train: bool,
    /// The weights packed for bf16 products, in a bf16 pass.
    pub bf16: Option<&'a Bf16Weights>,
    /// Whether the pass is a bf16 inference pass: the encoder (and a folded first projection)
    /// through the thin kernel, the query rows' attention products in bf16.
    pub infer_bf16: bool,
}

impl Pass<'_> {
    /// Index of layer `l`'s buffers in `Workspace::layers` (one set per layer in training, one set
    /// reused by every layer in inference).
    pub fn slot(&self, l: usize) -> usize {
        if self.train {
            l
        } else {
            0
        }
    }
}

impl PfnModel {
    pub(crate) fn check_batch(&self, batch: &Batch<'_>) -> Result<Dims> {
        let (b, t, n) = (batch.batch, batch.seq_len, batch.single_eval_pos);
        if b == 0 {
            return Err(ModelError::InvalidArgument {
                argument: "batch",
                reason: "must be at least 1".into(),
            });
        }
        if t == 0 {
            return Err(ModelError::InvalidArgument {
                argument: "seq_len",
                reason: "must be at least 1".into(),
            });
        }
        if n > t {
            return Err(ModelError::InvalidArgument {
                argument: "single_eval_pos",
                reason: format!("{n} exceeds seq_len {t}"),
            });
        }
        let f = self.config.num_features;
        if batch.x.len() != b * t * f {
            return Err(ModelError::LengthMismatch {
                argument: "x (batch x seq_len x num_features)",
                expected: b * t * f,
                actual: batch.x.len(),
            });
        }
        if batch.y.len() != b * t && batch.y.len() != b * n {
            return Err(ModelError::LengthMismatch {
                argument: "y (batch x seq_len, or batch x single_eval_pos)",
                expected: b * t,
                actual: batch.y.len(),
            });
        }
        if let Some(i) = batch.x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                argument: "x",
                index: i,
                value: batch.x[i],
            });
        }
        let y_stride = batch.y.len() / b;
        for bi in 0..b {
            let row = &batch.y[bi * y_stride..bi * y_stride + n];
            if let Some(i) = row.iter().position(|v| !v.is_finite()) {
                return Err(ModelError::NonFinite {
                    argument: "y",
                    index: bi * y_stride + i,
                    value: row[i],
                });
            }
            if let Some(k) = self.config.y_classes {
                if let Some(i) = row.iter().position(|&v| class_index(v, k).is_none()) {
                    return Err(ModelError::InvalidArgument {
                        argument: "y",
                        reason: format!(
                            "context label {} at index {} is not a class in 0..{k} (the model embeds class labels)",
                            row[i],
                            bi * y_stride + i
                        ),
                    });
                }
            }
        }
        let m = t - n;
        Ok(Dims {
            batch: b,
            n,
            m,
            tokens: b * t,
            ctx_rows: b * n,
            qry_rows: b * m,
        })
    }

    /// Runs the network on a batch and returns the logits of the query points, (batch, m, n_out)
    /// row-major with m = seq_len - single_eval_pos.
    ///
    /// In a [`Mode::Training`] workspace the activations are kept for [`PfnModel::backward`].
    /// With `single_eval_pos = 0` and query self-attention off, queries attend to nothing: their
    /// attention output is defined as 0 (PyTorch would return NaN).
    ///
    /// A failed call leaves the workspace without a stored pass (a following `backward` is refused).
    ///
    /// Errors: a zero batch or sequence length, `single_eval_pos > seq_len`, wrong lengths of `x`
    /// or `y`, or non-finite inputs (the first one is named).
    pub fn forward<'w>(
        &self,
        engine: &Engine,
        ws: &'w mut Workspace,
        batch: &Batch<'_>,
    ) -> Result<&'w [f32]> {
        ws.state = None;
        let dims = self.check_batch(batch)?;
        ws.prepare(&self.config, &dims);
        engine.install(|| self.forward_impl(ws, Source::Batch(batch), &dims, None));
        ws.state = Some(dims);
        Ok(&ws.logits[..dims.qry_rows * self.config.n_out])
    }

    /// The forward pass over the token layout: encoder, layers, decoder. With
    /// `src = Source::Queries`, the context rows hold only the cached keys and values: every layer
    /// computes the query rows only. With `kv_out`, the keys and values of the context rows of every
    /// layer are copied out (to build a cache).
    pub(crate) fn forward_impl(
        &self,
        ws: &mut Workspace,
        src: Source<'_>,
        d: &Dims,
        mut kv_out: Option<&mut [Vec<f32>]>,
    ) {
        let c = &self.config;
        let train = ws.mode == Mode::Training;
        let precision = if train {
            self.train_precision
        } else {
            self.precision
        };
        // bf16 weights for the large products of a bf16 pass (packed once per parameter change).
        let bf16 = (precision == Precision::Bf16).then(|| self.bf16_weights());
        let pass = Pass {
            config: c,
            params: &self.params,
            ranges: &self.layout.ranges,
            dims: *d,
            train,
            bf16,
            // Kernels of bf16 inference only: the thin encoder kernel and the bf16 attention
            // products (training keeps gemm there and the attention in f32).
            infer_bf16: bf16.is_some() && !train,
        };
        let cached = src.cached_kv();
        let plan = |l| LayerPlan::new(c, d, l, cached.is_some());

        // With a cache the context rows are skipped from the encoder on.
        let first_row = if cached.is_some() { d.ctx_rows } else { 0 };
        encoder::forward(&pass, ws, src, first_row);
        // The first layer's projections read the encoder output h0 = U Wa^T only through
        // h0 W_in^T = U (W_in Wa)^T: with the folded (3E, F + Y + 2) weight they cost
        // tokens * 3E * (F + Y + 2) instead of tokens * 3E * E.
        let nl = c.nlayers;
        let fold_first = nl > 0 && {
            let first = plan(0);
            fold_first_projection(c.emsize, c.token_width(), first.rows() + first.kv.len())
        };
        if fold_first {
            encoder::fold_into_first_projection(&pass, ws);
        }
        for l in 0..nl {
            let cache = KvCache {
                read: cached.map(|kv| &kv[l][..]),
                write: kv_out.as_deref_mut().map(|kv| &mut kv[l][..]),
            };
            layer::forward(&pass, ws, l, &plan(l), l == 0 && fold_first, cache);
        }
        decoder::forward(&pass, ws);
    }
}
