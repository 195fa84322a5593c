use pyo3::prelude::*;

/// The number of threads a batch call runs on now (`EMPG_PARALLELISM`, `EMPG_NUM_THREADS`).
#[pyfunction]
pub fn parallelism() -> usize {
    crate::parallel::num_threads()
}
