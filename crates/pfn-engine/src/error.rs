//! Errors of the engine.

/// Errors returned by the engine's fallible operations.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The rayon thread pool could not be created.
    #[error("could not build a thread pool with {threads} threads: {message}")]
    ThreadPool {
        /// The requested number of threads.
        threads: usize,
        /// The reason given by rayon.
        message: String,
    },
}
