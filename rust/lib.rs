//! empg's Rust core. The algorithms live in plain modules with no Python in them (tested by
//! `cargo test`); `py/` holds one thin PyO3 wrapper file per hot path, and the `#[pymodule]` below
//! is the index of what Python sees as `empg._core`.

pub mod advantage;
pub mod behaviour;
pub mod error;
pub mod pack;
pub mod parallel;
pub mod verify;

mod py;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    py::errors::register(m)?;
    m.add_class::<py::advantage::GroupWeights>()?;
    m.add_function(wrap_pyfunction!(py::advantage::group_weights, m)?)?;
    m.add("BEHAVIOURS", py::behaviour::patterns(m.py())?)?;
    m.add_function(wrap_pyfunction!(py::behaviour::behaviour_counts, m)?)?;
    m.add_function(wrap_pyfunction!(py::pack::pack_microbatches, m)?)?;
    m.add_function(wrap_pyfunction!(py::pack::build_microbatch, m)?)?;
    m.add_function(wrap_pyfunction!(py::pack::build_microbatches, m)?)?;
    m.add_function(wrap_pyfunction!(py::pack::build_grouped_microbatches, m)?)?;
    m.add_function(wrap_pyfunction!(py::pack::flatten_ids, m)?)?;
    m.add_function(wrap_pyfunction!(py::parallel::parallelism, m)?)?;
    m.add_function(wrap_pyfunction!(py::verify::extract_answers, m)?)?;
    m.add_function(wrap_pyfunction!(py::verify::is_equivalent, m)?)?;
    m.add_function(wrap_pyfunction!(py::verify::verify_batch, m)?)?;
    Ok(())
}
