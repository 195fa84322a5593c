use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::behaviour::{self, BEHAVIOURS};

/// How many of `texts` match each behaviour pattern, as {name: count}; see
/// `empg.metrics.behaviour_counts`. The texts are read in place (no copy) and scanned in parallel.
#[pyfunction]
pub fn behaviour_counts<'py>(
    py: Python<'py>,
    texts: Vec<Bound<'py, PyString>>,
) -> PyResult<Bound<'py, PyDict>> {
    let strs = texts
        .iter()
        .map(|t| t.to_str())
        .collect::<PyResult<Vec<&str>>>()?;
    // The texts are borrowed from Python objects, so the scan runs attached (the calling thread
    // only waits for empg's workers).
    let counts = behaviour::counts(&strs);
    let out = PyDict::new(py);
    for ((name, _), c) in BEHAVIOURS.iter().zip(counts) {
        out.set_item(name, c)?;
    }
    Ok(out)
}

/// {name: pattern} of the behaviours (Rust `regex` syntax), in reporting order.
pub fn patterns(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for (name, pattern) in BEHAVIOURS {
        out.set_item(name, pattern)?;
    }
    Ok(out)
}
