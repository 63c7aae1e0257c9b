//! Multi-head attention under the PFN mask, with an explicit backward.
//!
//! # Token layout
//! The tokens of a batch of `batch` datasets, each with `n_ctx` context points and `n_qry` query
//! points, are rows of one matrix: first all context tokens (dataset b, point i at row
//! `b * n_ctx + i`), then all query tokens (dataset b, query j at row
//! `batch * n_ctx + b * n_qry + j`).
//! The projections `qkv` are a (tokens, 3E) row-major matrix: Q in columns `[0, E)`, K in `[E, 2E)`,
//! V in `[2E, 3E)`, head h using the `head_dim` columns starting at `h * head_dim` of each part
//! (PyTorch's packed `in_proj` order).
//!
//! # Mask
//! Every token attends to all context tokens of its dataset. With `query_self`, a query token also
//! attends to itself (the paper's code); nothing attends to other queries. Attention is therefore
//! computed as cross-attention to the `n_ctx` context keys plus, for queries, one extra "self" logit,
//! at a cost of (n_ctx + n_qry) * n_ctx per head, never (n_ctx + n_qry)^2.
//!
//! A query with no key at all (`n_ctx = 0` without `query_self`) gets an all-zero attention output
//! (an empty weighted sum) and zero gradients, where PyTorch would produce NaN.
//!
//! # Probabilities
//! The forward keeps the attention probabilities for the backward in `probs`, laid out as
//! (batch, heads, n_ctx + n_qry, width) with `width = n_ctx + query_self`: row i < n_ctx is context
//! token i (first n_ctx columns used), row n_ctx + j is query j (column n_ctx holds the self weight).

use rayon::prelude::*;

use crate::bf16::{linear_bf16, linear_bf16_raw, native_available, Bf16Epilogue, PackedBf16Linear};
use crate::matmul::matmul_raw;
use crate::parallel::SharedMut;
use crate::simd::{self, multiversion};
use crate::softmax::{softmax_backward_row, softmax_row};

/// The geometry of one PFN attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfnAttention {
    /// Number of datasets.
    pub batch: usize,
    /// Context tokens per dataset (keys and values come from these).
    pub n_ctx: usize,
    /// Query tokens per dataset.
    pub n_qry: usize,
    /// Number of heads.
    pub heads: usize,
    /// Dimension per head; the model width is `heads * head_dim`.
    pub head_dim: usize,
    /// Whether each query also attends to itself.
    pub query_self: bool,
    /// Whether outputs are needed for the context tokens (false in a last layer whose context outputs
    /// are unused; then their Q entries are not read and their output rows not written).
    pub context_outputs: bool,
}

impl PfnAttention {
    /// Model width E = heads * head_dim.
    pub fn emsize(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Tokens per dataset.
    pub fn seq_len(&self) -> usize {
        self.n_ctx + self.n_qry
    }

    /// Total number of token rows.
    pub fn tokens(&self) -> usize {
        self.batch * self.seq_len()
    }

    /// Columns per row of the probability buffer.
    pub fn prob_width(&self) -> usize {
        self.n_ctx + usize::from(self.query_self)
    }

    /// Length of the probability buffer (and of the backward scratch buffer).
    pub fn probs_len(&self) -> usize {
        self.batch * self.heads * self.seq_len() * self.prob_width()
    }

    fn check(&self, qkv: usize, probs: usize, out: usize, what: &str) {
        let e = self.emsize();
        assert!(
            e > 0
                && qkv == self.tokens() * 3 * e
                && probs == self.probs_len()
                && out == self.tokens() * e,
            "{what}: buffers (qkv {qkv}, probs {probs}, out {out}) do not match {self:?}"
        );
    }
}

multiversion! {
    fn softmax_rows_range(p: &mut [f32], width: usize, rows: usize, len: usize) {
        for r in 0..rows {
            softmax_row(&mut p[r * width..r * width + len]);
        }
    }
}

multiversion! {
    fn softmax_backward_rows_range(p: &[f32], g: &mut [f32], width: usize, rows: usize, len: usize) {
        for r in 0..rows {
            softmax_backward_row(&p[r * width..r * width + len], &mut g[r * width..r * width + len]);
        }
    }
}

/// Row offsets and column offsets of one (dataset, head) pair.
struct Block {
    ctx_row: usize,
    qry_row: usize,
    q_col: usize,
    k_col: usize,
    v_col: usize,
    o_col: usize,
}

impl PfnAttention {
    fn block(&self, index: usize) -> Block {
        let (b, h) = (index / self.heads, index % self.heads);
        let e = self.emsize();
        Block {
            ctx_row: b * self.n_ctx,
            qry_row: self.batch * self.n_ctx + b * self.n_qry,
            q_col: h * self.head_dim,
            k_col: e + h * self.head_dim,
            v_col: 2 * e + h * self.head_dim,
            o_col: h * self.head_dim,
        }
    }
}

/// The query rows of one (dataset, head) block, for the query's own key and value.
struct SelfRows<'a> {
    qkv: &'a [f32],
    e3: usize,
    /// First query row.
    row0: usize,
    /// Number of query rows.
    m: usize,
    dh: usize,
}

impl SelfRows<'_> {
    #[inline(always)]
    fn get(&self, j: usize, col: usize) -> &[f32] {
        let at = (self.row0 + j) * self.e3 + col;
        &self.qkv[at..at + self.dh]
    }
}

multiversion! {
    /// The self logit of every query: `p[j][n] = q_j . k_j * scale` (rows of width `w`).
    fn self_scores(
        rows: &SelfRows<'_>,
        q_col: usize,
        k_col: usize,
        scale: f32,
        p: &mut [f32],
        w: usize,
        n: usize,
    ) {
        for j in 0..rows.m {
            p[j * w + n] = simd::dot(rows.get(j, q_col), rows.get(j, k_col)) * scale;
        }
    }
}

multiversion! {
    /// Adds every query's own value, weighted by its self probability `p[j][n]`, to its output row
    /// (`out` points at the first query's output in this head's columns, rows `e` apart).
    fn add_self_values(
        rows: &SelfRows<'_>,
        v_col: usize,
        p: &[f32],
        w: usize,
        n: usize,
        out: *mut f32,
        e: usize,
    ) {
        for j in 0..rows.m {
            let ps = p[j * w + n];
            // SAFETY: the caller's task owns these `dh` output values of query j (its head's
            // columns), and `out` points inside the output buffer.
            let o = unsafe { std::slice::from_raw_parts_mut(out.add(j * e), rows.dh) };
            for (ov, vv) in o.iter_mut().zip(rows.get(j, v_col)) {
                *ov += ps * *vv;
            }
        }
    }
}

/// Forward: writes the attention output (before the output projection) of every needed token to
/// `out` (tokens, E) and the probabilities to `probs`.
///
/// Rows of `out` for context tokens are left untouched when `context_outputs` is false.
///
/// # Panics
/// If the buffer lengths do not match the geometry.
pub fn pfn_attention_forward(geo: &PfnAttention, qkv: &[f32], probs: &mut [f32], out: &mut [f32]) {
    attention_forward(geo, qkv, probs, out, false)
}

/// [`pfn_attention_forward`] for inference with the query rows' two products (scores against the
/// context keys, and the weighted sum of the context values) in bf16 with f32 accumulation (see
/// [`crate::bf16`]); the softmax, the query's own key and value, and the context rows stay f32.
/// Without the native bf16 kernel (no AVX-512 BF16) this is [`pfn_attention_forward`].
///
/// # Panics
/// If the buffer lengths do not match the geometry.
pub fn pfn_attention_forward_bf16(
    geo: &PfnAttention,
    qkv: &[f32],
    probs: &mut [f32],
    out: &mut [f32],
) {
    attention_forward(geo, qkv, probs, out, true)
}

fn attention_forward(
    geo: &PfnAttention,
    qkv: &[f32],
    probs: &mut [f32],
    out: &mut [f32],
    bf16: bool,
) {
    geo.check(qkv.len(), probs.len(), out.len(), "pfn_attention_forward");
    let (n, m, dh, e) = (geo.n_ctx, geo.n_qry, geo.head_dim, geo.emsize());
    let (e3, w) = (3 * e, geo.prob_width());
    if w == 0 {
        // No keys anywhere: every query output is the empty sum.
        out.fill(0.0);
        return;
    }
    let scale = 1.0 / (dh as f32).sqrt();
    let t = geo.seq_len();
    let out_ptr = SharedMut(out.as_mut_ptr());
    let qkv_ptr = qkv.as_ptr() as usize;
    let qkv_len = qkv.len();
    probs
        .par_chunks_mut(t * w)
        .enumerate()
        .for_each(|(index, p)| {
            let blk = geo.block(index);
            let qkv = qkv_ptr as *const f32;
            let out = out_ptr;
            // SAFETY: all offsets stay inside `qkv` / `out` (lengths checked above); this task writes
            // only its own `p` and the output rows of dataset b in the columns of head h, which no
            // other task touches.
            unsafe {
                let at = |row: usize, col: usize| qkv.add(row * e3 + col);
                let out_at = |row: usize| out.0.add(row * e + blk.o_col);
                if geo.context_outputs && n > 0 {
                    matmul_raw(
                        n,
                        n,
                        dh,
                        p.as_mut_ptr(),
                        w,
                        1,
                        false,
                        at(blk.ctx_row, blk.q_col),
                        e3,
                        1,
                        at(blk.ctx_row, blk.k_col),
                        1,
                        e3,
                        scale,
                    );
                }
                // The query rows in bf16: the keys (scaled) and the transposed values of this
                // (dataset, head) packed as the weights of two linear layers.
                let bf16_pv = if bf16 && m > 0 && n > 0 && native_available() {
                    let keys = PackedBf16Linear::from_fn(n, dh, |i, c| {
                        *at(blk.ctx_row + i, blk.k_col + c) * scale
                    });
                    let queries =
                        std::slice::from_raw_parts(at(blk.qry_row, blk.q_col), (m - 1) * e3 + dh);
                    let scores = &mut p[n * w..];
                    linear_bf16(scores, w, queries, e3, m, &keys, false, Bf16Epilogue::None);
                    Some(PackedBf16Linear::from_fn(dh, n, |c, i| {
                        *at(blk.ctx_row + i, blk.v_col + c)
                    }))
                } else {
                    None
                };
                if m > 0 && n > 0 && bf16_pv.is_none() {
                    matmul_raw(
                        m,
                        n,
                        dh,
                        p.as_mut_ptr().add(n * w),
                        w,
                        1,
                        false,
                        at(blk.qry_row, blk.q_col),
                        e3,
                        1,
                        at(blk.ctx_row, blk.k_col),
                        1,
                        e3,
                        scale,
                    );
                }
                let qkv_all = std::slice::from_raw_parts(qkv, qkv_len);
                if geo.query_self {
                    let rows = SelfRows {
                        qkv: qkv_all,
                        e3,
                        row0: blk.qry_row,
                        m,
                        dh,
                    };
                    self_scores(&rows, blk.q_col, blk.k_col, scale, &mut p[n * w..], w, n);
                }
                if geo.context_outputs {
                    softmax_rows_range(&mut p[..n * w], w, n, n);
                }
                softmax_rows_range(&mut p[n * w..], w, m, w);
                if geo.context_outputs && n > 0 {
                    matmul_raw(
                        n,
                        dh,
                        n,
                        out_at(blk.ctx_row),
                        e,
                        1,
                        false,
                        p.as_ptr(),
                        w,
                        1,
                        at(blk.ctx_row, blk.v_col),
                        e3,
                        1,
                        1.0,
                    );
                }
                if let Some(values) = &bf16_pv {
                    // Straight into this head's columns of the output rows (other tasks write the
                    // other heads' columns of the same rows, hence the raw destination).
                    let weights = &p[n * w..];
                    let o = out_at(blk.qry_row);
                    linear_bf16_raw(o, e, weights, w, m, values, false, Bf16Epilogue::None);
                } else if m > 0 {
                    matmul_raw(
                        m,
                        dh,
                        n,
                        out_at(blk.qry_row),
                        e,
                        1,
                        false,
                        p.as_ptr().add(n * w),
                        w,
                        1,
                        at(blk.ctx_row, blk.v_col),
                        e3,
                        1,
                        1.0,
                    );
                }
                if m > 0 && geo.query_self {
                    let rows = SelfRows {
                        qkv: qkv_all,
                        e3,
                        row0: blk.qry_row,
                        m,
                        dh,
                    };
                    add_self_values(&rows, blk.v_col, &p[n * w..], w, n, out_at(blk.qry_row), e);
                }
            }
        });
}

/// Backward: given d loss / d out in `d_out`, writes d loss / d qkv into `d_qkv` (tokens, 3E).
///
/// Written entries: Q columns of every query token (and of context tokens when `context_outputs`),
/// K and V columns of every context token (and of query tokens when `query_self`). Other entries are
/// left untouched; they receive no gradient. `scratch` (length `probs_len`) is overwritten.
///
/// # Panics
/// If the buffer lengths do not match the geometry.
pub fn pfn_attention_backward(
    geo: &PfnAttention,
    qkv: &[f32],
    probs: &[f32],
    d_out: &[f32],
    scratch: &mut [f32],
    d_qkv: &mut [f32],
) {
    geo.check(
        qkv.len(),
        probs.len(),
        d_out.len(),
        "pfn_attention_backward",
    );
    assert!(
        scratch.len() == probs.len() && d_qkv.len() == qkv.len(),
        "pfn_attention_backward: scratch or d_qkv has the wrong length"
    );
    let (n, m, dh, e) = (geo.n_ctx, geo.n_qry, geo.head_dim, geo.emsize());
    let (e3, w) = (3 * e, geo.prob_width());
    if w == 0 {
        // Outputs were constant zero: the query Q entries get zero gradient.
        for j in 0..geo.batch * m {
            let row = geo.batch * n + j;
            d_qkv[row * e3..row * e3 + e].fill(0.0);
        }
        return;
    }
    let scale = 1.0 / (dh as f32).sqrt();
    let t = geo.seq_len();
    let dq_ptr = SharedMut(d_qkv.as_mut_ptr());
    let qkv_ptr = qkv.as_ptr() as usize;
    let do_ptr = d_out.as_ptr() as usize;
    scratch
        .par_chunks_mut(t * w)
        .zip(probs.par_chunks(t * w))
        .enumerate()
        .for_each(|(index, (dp, p))| {
            let blk = geo.block(index);
            let qkv = qkv_ptr as *const f32;
            let dout = do_ptr as *const f32;
            let dq = dq_ptr;
            let co = geo.context_outputs && n > 0;
            // SAFETY: offsets stay inside the checked buffers; this task writes only its own `dp`
            // and the d_qkv entries of dataset b in the columns of head h.
            unsafe {
                let at = |row: usize, col: usize| qkv.add(row * e3 + col);
                let dat = |row: usize, col: usize| dq.0.add(row * e3 + col);
                let dout_at = |row: usize| dout.add(row * e + blk.o_col);
                // dP = dO V^T
                if co {
                    matmul_raw(
                        n,
                        n,
                        dh,
                        dp.as_mut_ptr(),
                        w,
                        1,
                        false,
                        dout_at(blk.ctx_row),
                        e,
                        1,
                        at(blk.ctx_row, blk.v_col),
                        1,
                        e3,
                        1.0,
                    );
                }
                if m > 0 && n > 0 {
                    matmul_raw(
                        m,
                        n,
                        dh,
                        dp.as_mut_ptr().add(n * w),
                        w,
                        1,
                        false,
                        dout_at(blk.qry_row),
                        e,
                        1,
                        at(blk.ctx_row, blk.v_col),
                        1,
                        e3,
                        1.0,
                    );
                }
                if geo.query_self {
                    for j in 0..m {
                        let g = std::slice::from_raw_parts(dout_at(blk.qry_row + j), dh);
                        let v = std::slice::from_raw_parts(at(blk.qry_row + j, blk.v_col), dh);
                        dp[(n + j) * w + n] = simd::dot(g, v);
                    }
                }
                // dV = P^T dO (context values), self values dv_j = p_self dO_j
                if n > 0 {
                    if co {
                        matmul_raw(
                            n,
                            dh,
                            n,
                            dat(blk.ctx_row, blk.v_col),
                            e3,
                            1,
                            false,
                            p.as_ptr(),
                            1,
                            w,
                            dout_at(blk.ctx_row),
                            e,
                            1,
                            1.0,
                        );
                    }
                    matmul_raw(
                        n,
                        dh,
                        m,
                        dat(blk.ctx_row, blk.v_col),
                        e3,
                        1,
                        co,
                        p.as_ptr().add(n * w),
                        1,
                        w,
                        dout_at(blk.qry_row),
                        e,
                        1,
                        1.0,
                    );
                }
                if geo.query_self {
                    for j in 0..m {
                        let ps = p[(n + j) * w + n];
                        let g = std::slice::from_raw_parts(dout_at(blk.qry_row + j), dh);
                        let dv =
                            std::slice::from_raw_parts_mut(dat(blk.qry_row + j, blk.v_col), dh);
                        for (d, gv) in dv.iter_mut().zip(g) {
                            *d = ps * *gv;
                        }
                    }
                }
                // dS = P * (dP - <P, dP>)
                if co {
                    softmax_backward_rows_range(&p[..n * w], &mut dp[..n * w], w, n, n);
                }
                softmax_backward_rows_range(&p[n * w..], &mut dp[n * w..], w, m, w);
                // dQ = scale dS K
                if co {
                    matmul_raw(
                        n,
                        dh,
                        n,
                        dat(blk.ctx_row, blk.q_col),
                        e3,
                        1,
                        false,
                        dp.as_ptr(),
                        w,
                        1,
                        at(blk.ctx_row, blk.k_col),
                        e3,
                        1,
                        scale,
                    );
                }
                if m > 0 {
                    matmul_raw(
                        m,
                        dh,
                        n,
                        dat(blk.qry_row, blk.q_col),
                        e3,
                        1,
                        false,
                        dp.as_ptr().add(n * w),
                        w,
                        1,
                        at(blk.ctx_row, blk.k_col),
                        e3,
                        1,
                        scale,
                    );
                }
                // dK = scale dS^T Q
                if n > 0 {
                    if co {
                        matmul_raw(
                            n,
                            dh,
                            n,
                            dat(blk.ctx_row, blk.k_col),
                            e3,
                            1,
                            false,
                            dp.as_ptr(),
                            1,
                            w,
                            at(blk.ctx_row, blk.q_col),
                            e3,
                            1,
                            scale,
                        );
                    }
                    matmul_raw(
                        n,
                        dh,
                        m,
                        dat(blk.ctx_row, blk.k_col),
                        e3,
                        1,
                        co,
                        dp.as_ptr().add(n * w),
                        1,
                        w,
                        at(blk.qry_row, blk.q_col),
                        e3,
                        1,
                        scale,
                    );
                }
                if geo.query_self {
                    for j in 0..m {
                        let ds = dp[(n + j) * w + n] * scale;
                        let q = std::slice::from_raw_parts(at(blk.qry_row + j, blk.q_col), dh);
                        let k = std::slice::from_raw_parts(at(blk.qry_row + j, blk.k_col), dh);
                        let dqr =
                            std::slice::from_raw_parts_mut(dat(blk.qry_row + j, blk.q_col), dh);
                        for (d, kv) in dqr.iter_mut().zip(k) {
                            *d += ds * *kv;
                        }
                        let dk =
                            std::slice::from_raw_parts_mut(dat(blk.qry_row + j, blk.k_col), dh);
                        for (d, qv) in dk.iter_mut().zip(q) {
                            *d = ds * *qv;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// f64 reference: dense masked attention per dataset with the sequence order (context, queries)
    /// and an explicit mask; returns out in the global layout. Rows with no allowed key give 0.
    fn reference(geo: &PfnAttention, qkv: &[f64]) -> Vec<f64> {
        let (n, m, dh, e) = (geo.n_ctx, geo.n_qry, geo.head_dim, geo.emsize());
        let t = n + m;
        let row_of = |b: usize, s: usize| {
            if s < n {
                b * n + s
            } else {
                geo.batch * n + b * m + (s - n)
            }
        };
        let mut out = vec![0.0; geo.tokens() * e];
        let scale = 1.0 / (dh as f64).sqrt();
        for b in 0..geo.batch {
            for h in 0..geo.heads {
                for s in 0..t {
                    let allowed: Vec<usize> = (0..t)
                        .filter(|&k| k < n || (geo.query_self && k == s && s >= n))
                        .collect();
                    if allowed.is_empty() {
                        continue;
                    }
                    let qr = row_of(b, s);
                    let logits: Vec<f64> = allowed
                        .iter()
                        .map(|&k| {
                            let kr = row_of(b, k);
                            (0..dh)
                                .map(|d| {
                                    qkv[qr * 3 * e + h * dh + d] * qkv[kr * 3 * e + e + h * dh + d]
                                })
                                .sum::<f64>()
                                * scale
                        })
                        .collect();
                    let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let ex: Vec<f64> = logits.iter().map(|l| (l - mx).exp()).collect();
                    let z: f64 = ex.iter().sum();
                    for (a, &k) in allowed.iter().enumerate() {
                        let kr = row_of(b, k);
                        for d in 0..dh {
                            out[qr * e + h * dh + d] +=
                                ex[a] / z * qkv[kr * 3 * e + 2 * e + h * dh + d];
                        }
                    }
                }
            }
        }
        out
    }

    fn case(batch: usize, n: usize, m: usize, query_self: bool, context_outputs: bool) {
        let geo = PfnAttention {
            batch,
            n_ctx: n,
            n_qry: m,
            heads: 2,
            head_dim: 3,
            query_self,
            context_outputs,
        };
        let e = geo.emsize();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let qkv: Vec<f32> = (0..geo.tokens() * 3 * e)
            .map(|_| rng.random_range(-1.5..1.5))
            .collect();
        let w: Vec<f32> = (0..geo.tokens() * e)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut probs = vec![0.0; geo.probs_len()];
        let mut out = vec![f32::NAN; geo.tokens() * e];
        let mut scratch = vec![0.0; geo.probs_len()];
        let mut d_qkv = vec![f32::NAN; qkv.len()];
        let engine = crate::Engine::new(2).unwrap();
        engine.install(|| {
            pfn_attention_forward(&geo, &qkv, &mut probs, &mut out);
            pfn_attention_backward(&geo, &qkv, &probs, &w, &mut scratch, &mut d_qkv);
        });
        let q64: Vec<f64> = qkv.iter().map(|&v| v as f64).collect();
        let want = reference(&geo, &q64);
        let valid_out = |row: usize| context_outputs || row >= batch * n;
        // The bf16 variant: context rows bit-identical to f32, query rows within the bf16 error.
        // Scores move by at most 2^-7 sum |q k| / sqrt(d) (< 0.03 here), so the probabilities by
        // < 6 % and the outputs (|v| < 1.5) by < 0.1 with the rounding of p and v.
        let mut probs16 = vec![0.0; geo.probs_len()];
        let mut out16 = vec![f32::NAN; geo.tokens() * e];
        engine.install(|| pfn_attention_forward_bf16(&geo, &qkv, &mut probs16, &mut out16));
        for row in 0..geo.tokens() {
            for c in 0..e {
                let i = row * e + c;
                if row < batch * n {
                    assert!(
                        out16[i].to_bits() == out[i].to_bits(),
                        "bf16 context row {row} differs"
                    );
                } else {
                    assert!(
                        (out16[i] as f64 - want[i]).abs() < 0.1,
                        "bf16 out[{row},{c}] {} vs {}",
                        out16[i],
                        want[i]
                    );
                }
            }
        }
        if n > 0 && m > 0 && crate::bf16::native_available() {
            let q0 = batch * n * e;
            assert!(
                out16[q0..].iter().zip(&out[q0..]).any(|(a, b)| a != b),
                "the bf16 products were not used"
            );
        }
        for row in 0..geo.tokens() {
            for c in 0..e {
                let i = row * e + c;
                if valid_out(row) {
                    assert!(
                        (out[i] as f64 - want[i]).abs() < 1e-5,
                        "out[{row},{c}] {} vs {}",
                        out[i],
                        want[i]
                    );
                } else {
                    assert!(
                        out[i].is_nan(),
                        "context row written although not requested"
                    );
                }
            }
        }
        // loss = sum over valid rows of w * out; gradient by central differences in f64
        let loss = |v: &[f64]| {
            let o = reference(&geo, v);
            (0..geo.tokens())
                .filter(|&r| valid_out(r))
                .flat_map(|r| {
                    (r * e..(r + 1) * e)
                        .map(|i| o[i] * w[i] as f64)
                        .collect::<Vec<_>>()
                })
                .sum::<f64>()
        };
        for row in 0..geo.tokens() {
            let is_ctx = row < batch * n;
            for c in 0..3 * e {
                let part = c / e; // 0 q, 1 k, 2 v
                let expected_written = match part {
                    0 => !is_ctx || context_outputs,
                    _ => is_ctx || query_self,
                };
                let i = row * 3 * e + c;
                if !expected_written {
                    assert!(d_qkv[i].is_nan(), "d_qkv[{row},{c}] written");
                    continue;
                }
                let h = 1e-6;
                let mut p = q64.clone();
                p[i] += h;
                let mut mm = q64.clone();
                mm[i] -= h;
                let fd = (loss(&p) - loss(&mm)) / (2.0 * h);
                assert!(
                    (d_qkv[i] as f64 - fd).abs() < 2e-5 * (1.0 + fd.abs()),
                    "d_qkv[{row},{c}] {} vs {fd} ({geo:?})",
                    d_qkv[i]
                );
            }
        }
    }

    #[test]
    fn matches_dense_masked_reference_in_all_variants() {
        for &query_self in &[true, false] {
            for &context_outputs in &[true, false] {
                case(2, 4, 3, query_self, context_outputs);
                case(1, 0, 3, query_self, context_outputs);
                case(3, 5, 0, query_self, context_outputs);
                case(2, 1, 1, query_self, context_outputs);
            }
        }
    }

    #[test]
    fn no_keys_gives_zero_output_not_nan() {
        let geo = PfnAttention {
            batch: 2,
            n_ctx: 0,
            n_qry: 3,
            heads: 1,
            head_dim: 4,
            query_self: false,
            context_outputs: true,
        };
        let qkv = vec![1.0f32; geo.tokens() * 12];
        let mut out = vec![f32::NAN; geo.tokens() * 4];
        pfn_attention_forward(&geo, &qkv, &mut [], &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
    }
}
