//! Inference against a cached context: encode the context once, then answer any number of query
//! points without recomputing it.
//!
//! Context tokens never attend to queries, so every layer's keys and values of the context are fixed
//! once the context is known. [`PfnModel::encode_context`] (or
//! [`PfnModel::encode_batch_context`]) runs the context through the network and keeps them; [`PfnModel::forward_queries`] then computes only the query tokens, each attending to
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
    /// Encodes the context points x (batch, n_ctx, F) with labels y (batch, n_ctx) into `cache`,
    /// whose buffers are reused. `n_ctx` may be 0 (queries then attend only to themselves, or to
    /// nothing without query self-attention).
    ///
    /// Errors: `batch = 0`, wrong lengths, non-finite values.
    #[allow(clippy::too_many_arguments)]
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
        if n_ctx == 0 && batch > 0 {
            // An empty context: check the (empty) inputs and store an empty cache.
            for (argument, len) in [("x", x.len()), ("y", y.len())] {
                if len != 0 {
                    return Err(ModelError::LengthMismatch {
                        argument,
                        expected: 0,
                        actual: len,
                    });
                }
            }
            ws.state = None;
            self.store_empty_context(batch, cache);
            return Ok(());
        }
        let b = Batch {
            x,
            y,
            batch,
            seq_len: n_ctx,
            single_eval_pos: n_ctx,
        };
        self.encode_batch_context(engine, ws, &b, cache)
    }

    fn store_empty_context(&self, batch: usize, cache: &mut ContextCache) {
        cache.kv.resize_with(self.config.nlayers, Vec::new);
        cache.batch = batch;
        cache.n_ctx = 0;
        cache.emsize = self.config.emsize;
        cache.valid = true;
    }

    /// Encodes the context points of a batch, the first `single_eval_pos` points of each dataset
    /// (any further points are ignored), into `cache`, whose buffers are reused. The context may be
    /// empty (`single_eval_pos = 0`).
    ///
    /// `encode_batch_context(batch)` followed by [`PfnModel::forward_queries`] on the remaining
    /// points gives the logits of [`PfnModel::forward`]`(batch)`.
    ///
    /// Errors: as [`PfnModel::forward`] (invalid sizes, wrong lengths, non-finite context values).
    pub fn encode_batch_context(
        &self,
        engine: &Engine,
        ws: &mut Workspace,
        batch: &Batch<'_>,
        cache: &mut ContextCache,
    ) -> Result<()> {
        ws.state = None;
        cache.valid = false;
        let full = self.check_batch(batch)?;
        let n = full.n;
        if n == 0 {
            self.store_empty_context(full.batch, cache);
            return Ok(());
        }
        let dims = Dims {
            batch: full.batch,
            n,
            m: 0,
            tokens: full.ctx_rows,
            ctx_rows: full.ctx_rows,
            qry_rows: 0,
        };
        let e = self.config.emsize;
        cache.kv.resize_with(self.config.nlayers, Vec::new);
        for kv in &mut cache.kv {
            grow(kv, dims.ctx_rows * 2 * e);
        }
        ws.prepare(&self.config, &dims);
        let kv = &mut cache.kv;
        engine.install(|| self.forward_impl(ws, Source::Batch(batch), &dims, Some(kv)));
        cache.batch = full.batch;
        cache.n_ctx = n;
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
