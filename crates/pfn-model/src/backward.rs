//! The backward pass: d loss / d logits to gradients of every parameter, through the decoder
//! (`decoder.rs`), the layers in reverse (`layer.rs`: `feed_forward.rs`, then `attention.rs`) and
//! the encoder (`encoder.rs`), each component's backward beside its forward.
//!
//! With bf16 training ([`PfnModel::set_training_precision`]) the backward products of the layers
//! that the forward runs in bf16 (attention projections except the first layer's folded one,
//! feed-forward, decoder) take bf16 operands with f32 accumulation: input gradients `dy W` through
//! the transposed packing of W, weight gradients `dy^T x` through
//! [`pfn_engine::matmul_tn_bf16`]. Gradients are accumulated in f32.

use pfn_engine::Engine;

use crate::config::PfnConfig;
use crate::decoder;
use crate::encoder;
use crate::error::{ModelError, Result};
use crate::layer::{self, LayerPlan};
use crate::model::PfnModel;
use crate::params::ModelRanges;
use crate::precision::{Bf16TransposedWeights, Precision};
use crate::workspace::{Dims, Mode, Workspace};

/// What the components of one backward pass read: the configuration, the parameters, the sizes
/// and the arithmetic.
pub(crate) struct BackwardPass<'a> {
    /// The architecture.
    pub config: &'a PfnConfig,
    /// The flat parameter buffer.
    pub params: &'a [f32],
    /// Where each parameter lies in it.
    pub ranges: &'a ModelRanges,
    /// The sizes of the forward pass.
    pub dims: Dims,
    /// Whether the products of the layers that the forward ran in bf16 take bf16 operands.
    pub bf16: bool,
    /// The weights packed transposed for the bf16 input gradients, in a bf16 pass.
    pub bf16_t: Option<&'a Bf16TransposedWeights>,
}

impl PfnModel {
    /// Backpropagates `d_logits` = d loss / d logits, (batch, m, n_out) as returned by the last
    /// [`PfnModel::forward`] on `ws`, and **adds** the parameter gradients to the gradient buffer
    /// (call [`PfnModel::zero_grad`] first for a fresh gradient).
    ///
    /// The parameters must not have changed since that forward pass. Each forward pass allows one
    /// backward pass: to save memory the backward rebuilds activations in place of what the forward
    /// kept, so a second `backward` on the same pass is refused.
    ///
    /// Errors: no preceding training-mode forward on `ws` (or its backward already ran), or
    /// `d_logits` of the wrong length.
    pub fn backward(
        &mut self,
        engine: &Engine,
        ws: &mut Workspace,
        d_logits: &[f32],
    ) -> Result<()> {
        let dims = match (ws.mode, ws.state, ws.backward_done) {
            (Mode::Training, Some(d), false) => d,
            _ => return Err(ModelError::NoForwardState),
        };
        let expected = dims.qry_rows * self.config.n_out;
        if d_logits.len() != expected {
            return Err(ModelError::LengthMismatch {
                argument: "d_logits (batch x queries x n_out)",
                expected,
                actual: d_logits.len(),
            });
        }
        ws.prepare_backward(&self.config, &dims);
        // The pass is consumed even if the backward panics half-way through.
        ws.backward_done = true;
        engine.install(|| self.backward_impl(ws, d_logits, &dims));
        Ok(())
    }

    /// The backward pass: the decoder, the layers from the last to the first, the encoder.
    fn backward_impl(&mut self, ws: &mut Workspace, d_logits: &[f32], d: &Dims) {
        // bf16 training: the weights packed transposed for the input gradients (once per
        // parameter change).
        let bf16 = self.train_precision == Precision::Bf16;
        if bf16 && self.bf16_t.get().is_none() {
            let packed = Bf16TransposedWeights::pack(self);
            // Cannot be set already: the cell was checked empty above.
            let _ = self.bf16_t.set(packed);
        }
        let pass = BackwardPass {
            config: &self.config,
            params: &self.params,
            ranges: &self.layout.ranges,
            dims: *d,
            bf16,
            bf16_t: if bf16 { self.bf16_t.get() } else { None },
        };
        let g = &mut self.grads;

        decoder::backward(&pass, ws, g, d_logits);
        for l in (0..pass.config.nlayers).rev() {
            let plan = LayerPlan::new(pass.config, d, l, false);
            layer::backward(&pass, ws, g, l, &plan);
        }
        encoder::backward(&pass, ws, g);
    }
}

#[cfg(test)]
mod tests {
    use pfn_engine::Engine;

    use crate::config::PfnConfig;
    use crate::error::ModelError;
    use crate::model::PfnModel;
    use crate::workspace::{Batch, Workspace};

    #[test]
    fn one_backward_per_forward_and_a_new_forward_gives_the_same_gradients() {
        let engine = Engine::new(1).unwrap();
        let mut model = PfnModel::new(PfnConfig::new(2, 8, 2, 12, 2, 5), 4).unwrap();
        let (b, t, n) = (2, 6, 3);
        let x: Vec<f32> = (0..b * t * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let y: Vec<f32> = (0..b * t).map(|i| (i as f32 * 0.3).cos()).collect();
        let batch = Batch {
            x: &x,
            y: &y,
            batch: b,
            seq_len: t,
            single_eval_pos: n,
        };
        let d_logits: Vec<f32> = (0..b * (t - n) * 5).map(|i| (i as f32).sin()).collect();
        let mut ws = Workspace::training();

        model.forward(&engine, &mut ws, &batch).unwrap();
        model.zero_grad();
        model.backward(&engine, &mut ws, &d_logits).unwrap();
        let first = model.grads().to_vec();
        assert!(first.iter().any(|&g| g != 0.0));
        // the pass is consumed: the gradients stay as they were
        let e = model.backward(&engine, &mut ws, &d_logits).unwrap_err();
        assert!(matches!(e, ModelError::NoForwardState), "{e:?}");
        assert_eq!(model.grads(), &first[..]);
        // the logits of the pass stay readable
        assert_eq!(ws.logits().len(), d_logits.len());

        model.forward(&engine, &mut ws, &batch).unwrap();
        model.zero_grad();
        model.backward(&engine, &mut ws, &d_logits).unwrap();
        let same = first
            .iter()
            .zip(model.grads())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "a repeated forward and backward changed the gradients"
        );
    }
}
