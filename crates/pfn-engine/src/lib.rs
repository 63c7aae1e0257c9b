//! `pfn-engine`: a small f32 compute engine for the PFN transformer.
//!
//! In the style of llm.c: no general autodiff, but an explicit forward and backward kernel for each
//! layer type, over preallocated buffers that the caller owns and reuses.
//!
//! - [`engine::Engine`] owns the rayon thread pool; run passes inside [`engine::Engine::install`].
//! - [`matmul`] multiplies strided matrix views through `gemm` (transposes are views, not copies).
//! - [`gelu`], [`layer_norm`], [`softmax`], [`attention`], [`reduce`], [`elementwise`], [`optim`]:
//!   fused element-wise kernels with explicit backward passes.
//! - [`bf16`]: bf16 linear layers for inference and mixed-precision training, with their backward
//!   products (AVX-512 BF16 kernel, Intel AMX tiles where available, emulated elsewhere).
//! - [`thin_linear`]: linear layers with a handful of inputs (the encoders).
//! - [`math`]: the vectorisable scalar functions (exp, erf, GELU) the kernels are built on.
//!
//! The kernel boundary is this set of free functions over `&[f32]` / `&mut [f32]` plus the matrix
//! views; model code touches its buffers only through them (and plain copies), so another backend can
//! provide the same functions without changes to the model. The element-wise kernels and reductions
//! are deterministic: their results do not depend on the number of threads or on the instruction set
//! that the CPU offers. Matrix products go through `gemm`, whose microkernels (and so the rounding)
//! depend on the CPU.
//!
//! Kernels check the consistency of the lengths they are given and panic when they disagree: they are
//! internal building blocks whose callers validate user input first.
#![warn(missing_docs)]

pub mod attention;
pub mod bf16;
pub mod elementwise;
pub mod engine;
pub mod error;
pub mod gelu;
pub mod layer_norm;
pub mod math;
pub mod matmul;
pub mod optim;
pub mod reduce;
pub mod softmax;
pub mod thin_linear;

mod parallel;
mod simd;
pub use simd::level_name as simd_level;

pub use attention::{
    pfn_attention_backward, pfn_attention_forward, pfn_attention_forward_bf16, PfnAttention,
};
pub use bf16::{linear_bf16, matmul_tn_bf16, Bf16Epilogue, PackedBf16Linear};
pub use engine::Engine;
pub use error::EngineError;
pub use layer_norm::LayerNormParams;
pub use matmul::{matmul, matmul_with, MatMut, MatRef, Threads};
pub use optim::{adamw_update, AdamWStep};
pub use thin_linear::thin_linear;
