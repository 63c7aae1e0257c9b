//! Preallocated activation and gradient buffers, reused across calls.
//!
//! A [`Workspace`] grows its buffers to the largest shape it has seen and never shrinks them, so once
//! it has run the largest batch shape of a training run, further steps allocate nothing in this crate.

use crate::config::PfnConfig;

/// A batch of datasets in batch-first layout.
///
/// Dataset b has `seq_len` points; the first `single_eval_pos` (= n) are the context (with labels),
/// the remaining m = `seq_len - n` are queries.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Inputs, (batch, seq_len, num_features) row-major.
    pub x: &'a [f32],
    /// Labels, either (batch, seq_len) row-major (the query entries are ignored) or
    /// (batch, single_eval_pos) with only the context labels.
    pub y: &'a [f32],
    /// Number of datasets B.
    pub batch: usize,
    /// Points per dataset T.
    pub seq_len: usize,
    /// Context points per dataset n (0 ..= T).
    pub single_eval_pos: usize,
}

/// Whether a workspace keeps what the backward pass needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keep what every layer's backward needs, so that one `backward` can follow each `forward`
    /// (activations that are cheap to rebuild exactly are recomputed by the backward instead).
    Training,
    /// Keep only what the next layer needs (much less memory); `backward` is refused.
    Inference,
}

/// The sizes of one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub n: usize,
    pub m: usize,
    /// Tokens in total, batch * (n + m).
    pub tokens: usize,
    /// Context tokens in total, batch * n (the first rows of the token matrix).
    pub ctx_rows: usize,
    /// Query tokens in total, batch * m (the last rows).
    pub qry_rows: usize,
}

/// Buffers of one encoder layer (per layer in training, one set reused by every layer in inference).
///
/// Training keeps only what cannot be rebuilt cheaply and exactly: the LayerNorm outputs are
/// `gamma * xhat + beta` and the GELU activation is a function of its input, so the backward pass
/// recomputes them (bit for bit) from `xhat1`, `xhat2` and `ff_z` instead of storing them per layer.
#[derive(Debug, Default)]
pub(crate) struct LayerBuffers {
    pub qkv: Vec<f32>,
    pub probs: Vec<f32>,
    pub attn: Vec<f32>,
    pub xhat1: Vec<f32>,
    pub rstd1: Vec<f32>,
    /// Training: the GELU input `x1 W1^T + b1` after the forward pass, its derivative after the
    /// backward pass has recomputed the activation.
    pub ff_z: Vec<f32>,
    pub xhat2: Vec<f32>,
    pub rstd2: Vec<f32>,
}

/// Activation and gradient buffers for forward and backward passes of one model configuration.
#[derive(Debug)]
pub struct Workspace {
    pub(crate) mode: Mode,
    /// Outputs per query of the model that last used this workspace.
    pub(crate) n_out: usize,
    /// The dimensions of the last successful forward pass.
    pub(crate) state: Option<Dims>,
    /// Whether a backward pass has run since that forward pass. The backward overwrites the kept
    /// GELU inputs (`LayerBuffers::ff_z`) with their derivatives, so a second one is refused.
    pub(crate) backward_done: bool,
    /// Encoder input per token, (tokens, F + Y + 2): the features, then the y part (y itself, or
    /// the label's one-hot vector of width Y = K) and 1 for context tokens (zeros for queries), then
    /// 1. The encoders are then one linear map with weight `enc_w`.
    pub(crate) enc_in: Vec<f32>,
    /// The combined encoder weight (E, F + Y + 2): [W_x | w_y | b_y | b_x].
    pub(crate) enc_w: Vec<f32>,
    /// The first layer's input projection folded into the encoder, (3E, F + Y + 2):
    /// `W_in [W_x | w_y | b_y | b_x]`, so that the first layer's Q, K and V come from the encoder input in one thin product.
    pub(crate) enc_qkv_w: Vec<f32>,
    /// Gradient of the combined encoder weight.
    pub(crate) enc_grad: Vec<f32>,
    /// Scratch (3E, F + Y + 2) for the reassociated input gradient of the first layer.
    pub(crate) enc_tmp: Vec<f32>,
    /// Residual stream: the input of layer l is `hidden[l % 2]` (earlier layers' outputs are rebuilt
    /// from `xhat2` when the backward pass needs them).
    pub(crate) hidden: Vec<Vec<f32>>,
    pub(crate) layers: Vec<LayerBuffers>,
    /// The current layer's first LayerNorm output h1 (input of the feed-forward block).
    pub(crate) h1: Vec<f32>,
    /// The current layer's GELU activation (input of `linear2`).
    pub(crate) ff_act: Vec<f32>,
    /// Scratch for linear outputs before the residual add.
    pub(crate) tmp: Vec<f32>,
    pub(crate) dec_deriv: Vec<f32>,
    pub(crate) dec_act: Vec<f32>,
    pub(crate) logits: Vec<f32>,
    pub(crate) d_hidden: Vec<f32>,
    pub(crate) d_attn: Vec<f32>,
    pub(crate) d_ff: Vec<f32>,
    pub(crate) d_qkv: Vec<f32>,
    pub(crate) d_probs: Vec<f32>,
    pub(crate) d_dec: Vec<f32>,
}

/// Grows `buf` to at least `len` elements (never shrinks, so capacity is kept for later calls).
pub(crate) fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

impl Workspace {
    /// An empty workspace; buffers are allocated by the first pass.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            n_out: 0,
            state: None,
            backward_done: false,
            enc_in: Vec::new(),
            enc_w: Vec::new(),
            enc_qkv_w: Vec::new(),
            enc_grad: Vec::new(),
            enc_tmp: Vec::new(),
            hidden: Vec::new(),
            layers: Vec::new(),
            h1: Vec::new(),
            ff_act: Vec::new(),
            tmp: Vec::new(),
            dec_deriv: Vec::new(),
            dec_act: Vec::new(),
            logits: Vec::new(),
            d_hidden: Vec::new(),
            d_attn: Vec::new(),
            d_ff: Vec::new(),
            d_qkv: Vec::new(),
            d_probs: Vec::new(),
            d_dec: Vec::new(),
        }
    }

    /// A workspace for training (forward followed by backward).
    pub fn training() -> Self {
        Self::new(Mode::Training)
    }

    /// A workspace for inference only.
    pub fn inference() -> Self {
        Self::new(Mode::Inference)
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The logits of the last successful [`crate::PfnModel::forward`] on this workspace,
    /// (batch, m, n_out) row-major; empty if there is none.
    pub fn logits(&self) -> &[f32] {
        match self.state {
            Some(d) => &self.logits[..d.qry_rows * self.n_out],
            None => &[],
        }
    }

    /// Bytes currently held by the buffers.
    pub fn allocated_bytes(&self) -> usize {
        let layer_bytes: usize = self
            .layers
            .iter()
            .map(|l| {
                l.qkv.capacity()
                    + l.probs.capacity()
                    + l.attn.capacity()
                    + l.xhat1.capacity()
                    + l.rstd1.capacity()
                    + l.ff_z.capacity()
                    + l.xhat2.capacity()
                    + l.rstd2.capacity()
            })
            .sum();
        let hidden: usize = self.hidden.iter().map(Vec::capacity).sum();
        let rest = [
            &self.enc_in,
            &self.enc_w,
            &self.enc_qkv_w,
            &self.enc_grad,
            &self.enc_tmp,
            &self.h1,
            &self.ff_act,
            &self.tmp,
            &self.dec_deriv,
            &self.dec_act,
            &self.logits,
            &self.d_hidden,
            &self.d_attn,
            &self.d_ff,
            &self.d_qkv,
            &self.d_probs,
            &self.d_dec,
        ]
        .iter()
        .map(|v| v.capacity())
        .sum::<usize>();
        4 * (layer_bytes + hidden + rest)
    }

    /// Sizes every buffer for a pass of `dims` (and marks the workspace as holding no valid pass).
    pub(crate) fn prepare(&mut self, config: &PfnConfig, dims: &Dims) {
        self.state = None;
        self.backward_done = false;
        self.n_out = config.n_out;
        let (e, nh, fa, o) = (
            config.emsize,
            config.nhid,
            config.token_width(),
            config.n_out,
        );
        let (tok, qry) = (dims.tokens, dims.qry_rows);
        let width = dims.n + usize::from(config.query_self_attention);
        let probs = dims.batch * config.nhead * (dims.n + dims.m) * width;
        let train = self.mode == Mode::Training;
        let n_hidden = 2;
        let n_layers = if train {
            config.nlayers
        } else {
            config.nlayers.min(1)
        };
        self.hidden.resize_with(n_hidden, Vec::new);
        self.layers.resize_with(n_layers, LayerBuffers::default);
        grow(&mut self.enc_in, tok * fa);
        grow(&mut self.enc_w, e * fa);
        grow(&mut self.enc_qkv_w, 3 * e * fa);
        for h in &mut self.hidden {
            grow(h, tok * e);
        }
        for l in &mut self.layers {
            grow(&mut l.qkv, tok * 3 * e);
            grow(&mut l.probs, probs);
            grow(&mut l.attn, tok * e);
            grow(&mut l.xhat1, tok * e);
            grow(&mut l.rstd1, tok);
            if train {
                grow(&mut l.ff_z, tok * nh);
            }
            grow(&mut l.xhat2, tok * e);
            grow(&mut l.rstd2, tok);
        }
        grow(&mut self.h1, tok * e);
        grow(&mut self.ff_act, tok * nh);
        grow(&mut self.tmp, tok * e);
        if train {
            grow(&mut self.dec_deriv, qry * nh);
        }
        grow(&mut self.dec_act, qry * nh);
        grow(&mut self.logits, qry * o);
    }

    /// Sizes the backward buffers for `dims`.
    pub(crate) fn prepare_backward(&mut self, config: &PfnConfig, dims: &Dims) {
        let (e, nh, fa) = (config.emsize, config.nhid, config.token_width());
        grow(&mut self.enc_grad, e * fa);
        grow(&mut self.enc_tmp, 3 * e * fa);
        let width = dims.n + usize::from(config.query_self_attention);
        let probs = dims.batch * config.nhead * (dims.n + dims.m) * width;
        grow(&mut self.d_hidden, dims.tokens * e);
        grow(&mut self.d_attn, dims.tokens * e);
        grow(&mut self.d_ff, dims.tokens * nh);
        grow(&mut self.d_qkv, dims.tokens * 3 * e);
        grow(&mut self.d_probs, probs);
        grow(&mut self.d_dec, dims.qry_rows * nh);
    }
}
