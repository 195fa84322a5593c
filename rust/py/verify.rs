//! Batched answer verification for Python: inputs are copied into owned strings while attached,
//! the work runs detached on empg's pool, and each item runs under `catch_unwind` so that a bug
//! in the verifier is a non-match for that item, never an abort of the interpreter.

use std::panic::{catch_unwind, AssertUnwindSafe};

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::error::CoreError;
use crate::verify::{self, Style};

/// The final answer of each text; see `empg.extract_answers`.
#[pyfunction]
#[pyo3(signature = (texts, *, style="auto", fallback=true))]
pub fn extract_answers(
    py: Python<'_>,
    texts: Vec<String>,
    style: &str,
    fallback: bool,
) -> PyResult<Vec<Option<String>>> {
    let style: Style = style.parse()?;
    Ok(py.detach(|| {
        crate::parallel::install(|| {
            texts
                .par_iter()
                .map(|t| {
                    catch_unwind(AssertUnwindSafe(|| verify::extract(t, style, fallback)))
                        .unwrap_or(None)
                })
                .collect()
        })
    }))
}

/// Whether two answers are equivalent; see `empg.is_equivalent`.
#[pyfunction]
pub fn is_equivalent(reference: &str, candidate: &str) -> bool {
    catch_unwind(|| verify::equivalent(reference, candidate)).unwrap_or(false)
}

/// 1.0 where the answer extracted from a response is equivalent to its reference; see
/// `empg.verify_batch`.
#[pyfunction]
#[pyo3(signature = (responses, references, *, style="auto"))]
pub fn verify_batch<'py>(
    py: Python<'py>,
    responses: Vec<String>,
    references: Vec<String>,
    style: &str,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let style: Style = style.parse()?;
    if responses.len() != references.len() {
        return Err(CoreError::LengthMismatch {
            what: "references",
            expected: responses.len(),
            got: references.len(),
        }
        .into());
    }
    let out: Vec<f32> = py.detach(|| {
        crate::parallel::install(|| {
            responses
                .par_iter()
                .zip(references.par_iter())
                .map(|(resp, reference)| {
                    let ok =
                        catch_unwind(AssertUnwindSafe(|| verify::verify(resp, reference, style)));
                    if ok.unwrap_or(false) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
    });
    Ok(out.into_pyarray(py))
}
