//! The engine context: a thread pool that every kernel and matrix product runs in.

use crate::error::EngineError;

/// Owns the rayon thread pool that the kernels run in.
///
/// Kernels are free functions over slices; they parallelise with rayon in whatever pool is current.
/// Wrap a whole forward or backward pass in [`Engine::install`] so that all of its kernels, and the
/// matrix products (which use `gemm` with rayon parallelism sized to the current pool), run on this
/// engine's threads.
#[derive(Debug)]
pub struct Engine {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Engine {
    /// Creates an engine with `threads` worker threads; 0 means one per available CPU.
    pub fn new(threads: usize) -> Result<Self, EngineError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("pfn-engine-{i}"))
            .build()
            .map_err(|e| EngineError::ThreadPool {
                threads,
                message: e.to_string(),
            })?;
        Ok(Self { pool, threads })
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` inside this engine's thread pool and returns its result.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}
