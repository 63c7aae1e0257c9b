//! Helpers for splitting row-wise work over the current rayon pool.

/// Minimum number of elements a parallel task should touch, so that scheduling costs stay small.
const MIN_TASK_ELEMS: usize = 1 << 14;

/// Number of rows per task for a row-wise kernel over `rows` rows of `cols` elements.
///
/// Row-wise kernels compute each row independently, so the result never depends on this choice.
pub(crate) fn rows_per_task(rows: usize, cols: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads <= 1 || rows == 0 {
        return rows.max(1);
    }
    let min_rows = (MIN_TASK_ELEMS / cols.max(1)).max(1);
    rows.div_ceil(threads * 4).max(min_rows)
}

/// Whether work of `elems` elements is worth running in parallel.
pub(crate) fn worth_parallel(elems: usize) -> bool {
    rayon::current_num_threads() > 1 && elems >= 2 * MIN_TASK_ELEMS
}

/// A raw pointer that may be shared between rayon tasks that write disjoint parts of one buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharedMut(pub(crate) *mut f32);

// SAFETY: the users of `SharedMut` guarantee that concurrent tasks access disjoint elements.
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}
