//! Data-parallel training: the seam between the training loop and the processes it spans.
//!
//! A run on `R` ranks trains one model. Every rank holds the same parameters and optimizer state,
//! samples its own micro-batches ([`Shard`]), and before every optimizer step the gradients are
//! summed over the ranks with one all-reduce, so every rank takes the same step. Rank 0 alone
//! validates and writes checkpoints and the model file.
//!
//! The transport sits behind [`Collective`]: [`SingleProcess`] (the default, no communication) and,
//! in `pfn-cli` behind its `mpi` cargo feature, MPI. A GPU path (NCCL) would be one more
//! implementation of the same trait.
//!
//! # Which data each rank sees
//!
//! With `k` micro-batches per step (`optimizer.accumulation_steps`) and `R` ranks, optimizer step
//! `s` consumes the `k · R` micro-batches `s·k·R … s·k·R + k·R − 1` of the run's single stream
//! (`BatchPlan::sample`), rank `r` taking `s·k·R + r·k + j` for `j < k`. So a run on `R` ranks
//! sees exactly the data of one process with `k · R` accumulation steps, and `R = 1` is the
//! single-process stream. The two differ only in the order the micro-batch gradients are summed
//! (each rank sums its own, then the ranks' sums are added), which changes f32 rounding.

use std::fmt::Debug;

/// Why a collective operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CollectiveError(pub String);

/// The processes of a data-parallel run, as the training loop uses them. Every rank must call the
/// same operations in the same order with buffers of the same length (the usual collective rule);
/// the training loop guarantees that.
pub trait Collective: Debug + Send + Sync {
    /// This process's rank, `0..world_size()`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn world_size(&self) -> usize;
    /// Replaces `values` on every rank by the elementwise sum over all ranks.
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError>;
    /// Replaces `values` on every rank by the elementwise sum over all ranks.
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError>;
    /// Every rank's `value`, indexed by rank, on every rank.
    fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError>;
}

/// One process alone: rank 0 of 1, every operation a no-op.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum_f32(&self, _values: &mut [f32]) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn all_reduce_sum_f64(&self, _values: &mut [f64]) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn all_gather_u64(&self, value: u64) -> Result<Vec<u64>, CollectiveError> {
        Ok(vec![value])
    }
}

/// The micro-batches one rank samples: local micro-batch `i` (the rank's `i`-th) is global
/// micro-batch [`Shard::global_index`]`(i)` of the run's stream (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This rank.
    pub rank: u64,
    /// The number of ranks.
    pub world_size: u64,
    /// Consecutive micro-batches a rank takes per optimizer step (`accumulation_steps`).
    pub block: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Self::whole()
    }
}

impl Shard {
    /// The whole stream (one rank): local index = global index.
    pub fn whole() -> Self {
        Self {
            rank: 0,
            world_size: 1,
            block: 1,
        }
    }

    /// The global micro-batch index of this rank's `local`-th micro-batch.
    pub fn global_index(&self, local: u64) -> u64 {
        let (step, j) = (local / self.block, local % self.block);
        (step * self.world_size + self.rank) * self.block + j
    }
}

/// A 64-bit digest of `values` (FNV-1a over the f32 bit patterns): equal parameters give equal
/// digests on every machine, and ranks whose parameters drifted apart by even one bit almost surely
/// give different ones.
pub fn digest_f32(values: &[f32]) -> u64 {
    values
        .iter()
        .fold(FNV_OFFSET, |h, v| fnv1a(h, &v.to_bits().to_le_bytes()))
}

/// A 64-bit digest of `bytes` (FNV-1a).
pub fn digest_bytes(bytes: &[u8]) -> u64 {
    fnv1a(FNV_OFFSET, bytes)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shards_partition_the_stream_in_step_order() {
        for (world, block) in [(1u64, 1u64), (2, 1), (3, 2), (4, 3)] {
            let mut seen = HashSet::new();
            let steps = 5;
            for rank in 0..world {
                let shard = Shard {
                    rank,
                    world_size: world,
                    block,
                };
                for local in 0..steps * block {
                    let g = shard.global_index(local);
                    // Local micro-batch i belongs to step i / block, whose global range is
                    // [step·block·world, (step+1)·block·world).
                    let step = local / block;
                    assert!((step * block * world..(step + 1) * block * world).contains(&g));
                    assert!(seen.insert(g), "index {g} taken twice");
                }
            }
            assert_eq!(seen.len() as u64, steps * block * world);
            assert_eq!(*seen.iter().max().unwrap(), steps * block * world - 1);
        }
        assert_eq!(Shard::whole().global_index(17), 17);
    }

    #[test]
    fn the_digest_sees_one_bit() {
        let a = vec![0.5f32, -1.25, 3.0];
        let mut b = a.clone();
        assert_eq!(digest_f32(&a), digest_f32(&b));
        b[1] = f32::from_bits(b[1].to_bits() ^ 1);
        assert_ne!(digest_f32(&a), digest_f32(&b));
        // -0.0 and 0.0 compare equal but are different parameters.
        assert_ne!(digest_f32(&[0.0]), digest_f32(&[-0.0]));
    }
}
