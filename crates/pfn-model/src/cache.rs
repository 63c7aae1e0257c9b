//! Inference against a cached context: encode the context once, then answer any number of query
//! points without recomputing it.
//!
//! Context tokens never attend to queries, so every layer's keys and values of the context are fixed
//! once the context is known. [`PfnModel::encode_context`] runs the context through the network and
//! keeps them; [`PfnModel::forward_queries`] then computes only the query tokens, each attending to
//! the cached keys and values (and to itself when query self-attention is on). The logits are those
//! of [`PfnModel::forward`] on the concatenated batch (up to float rounding).

use pfn_engine::Engine;

use crate::error::{ModelError, Result};
use crate::forward::Source;
use crate::model::PfnModel;
use crate::workspace::{grow, Batch, Dims, Workspace};

/// The keys and values of every layer for the context points of a batch of datasets.
#[derive(Clone, Debug, Default)]
pub struct ContextCache {
    batch: usize,
    n_ctx: usize,
    emsize: usize,
    /// Per layer, (batch * n_ctx, 2E) row-major: keys then values.
    kv: Vec<Vec<f32>>,
    valid: bool,
}

impl ContextCache {
    /// An empty cache (filled by [`PfnModel::encode_context`], which reuses its buffers).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of datasets encoded.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Context points per dataset.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Whether the cache holds an encoded context.
    pub fn is_encoded(&self) -> bool {
        self.valid
    }

    /// Bytes held by the cached keys and values.
    pub fn allocated_bytes(&self) -> usize {
        4 * self.kv.iter().map(Vec::capacity).sum::<usize>()
    }
}

impl PfnModel {
    /// Encodes the context points of `batch` datasets, x (batch, n_ctx, F) and y (batch, n_ctx),
    /// into `cache` (its buffers are reused). `n_ctx` may be 0.
    ///
    /// Errors: wrong lengths or non-finite values (as [`PfnModel::forward`]).
    pub fn encode_context(
        &self,
        engine: &Engine,
        ws: &mut Workspace,
        x: &[f32],
        y: &[f32],
        batch: usize,
        n_ctx: usize,
        cache: &mut ContextCache,
    ) -> Result<()> {
        ws.state = None;
        cache.valid = false;
        let b = Batch {
            x,
            y,
            batch,
            seq_len: n_ctx,
            single_eval_pos: n_ctx,
        };
        let dims = if n_ctx == 0 {
            if batch == 0 {
                return Err(ModelError::InvalidArgument {
                    argument: "batch",
                    reason: "must be at least 1".into(),
                });
            }
            Dims {
                batch,
                n: 0,
                m: 0,
                tokens: 0,
                ctx_rows: 0,
                qry_rows: 0,
            }
        } else {
            self.check_batch(&b)?
        };
        let e = self.config.emsize;
        cache.kv.resize_with(self.config.nlayers, Vec::new);
        for kv in &mut cache.kv {
            grow(kv, dims.ctx_rows * 2 * e);
        }
        if n_ctx > 0 {
            ws.prepare(&self.config, &dims);
            let kv = &mut cache.kv;
            engine.install(|| self.forward_impl(ws, Source::Batch(&b), &dims, Some(kv)));
        }
        cache.batch = batch;
        cache.n_ctx = n_ctx;
        cache.emsize = e;
        cache.valid = true;
        Ok(())
    }

    /// Logits (batch, n_qry, n_out) of query points x (batch, n_qry, F) against the context encoded
    /// in `cache` (same batch size; the cache must come from this model with its current weights).
    ///
    /// This is an inference pass: a following [`PfnModel::backward`] is refused.
    ///
    /// Errors: an empty or mismatched cache, wrong lengths or non-finite inputs.
    pub fn forward_queries<'w>(
        &self,
        engine: &Engine,
        ws: &'w mut Workspace,
        cache: &ContextCache,
        x: &[f32],
        n_qry: usize,
    ) -> Result<&'w [f32]> {
        ws.state = None;
        let c = &self.config;
        if !cache.valid || cache.emsize != c.emsize || cache.kv.len() != c.nlayers {
            return Err(ModelError::InvalidArgument {
                argument: "cache",
                reason: "not encoded by a model of this architecture".into(),
            });
        }
        let b = cache.batch;
        let f = c.num_features;
        if x.len() != b * n_qry * f {
            return Err(ModelError::LengthMismatch {
                argument: "x (batch x n_qry x num_features)",
                expected: b * n_qry * f,
                actual: x.len(),
            });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                argument: "x",
                index: i,
                value: x[i],
            });
        }
        if n_qry == 0 {
            return Ok(&ws.logits[..0]);
        }
        let n = cache.n_ctx;
        let dims = Dims {
            batch: b,
            n,
            m: n_qry,
            tokens: b * (n + n_qry),
            ctx_rows: b * n,
            qry_rows: b * n_qry,
        };
        ws.prepare(c, &dims);
        let src = Source::Queries {
            x,
            cache_kv: &cache.kv,
        };
        engine.install(|| self.forward_impl(ws, src, &dims, None));
        Ok(&ws.logits[..dims.qry_rows * c.n_out])
    }
}
