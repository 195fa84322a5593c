//! Batched answer verification for Python: inputs are copied into owned strings while attached,
//! the work runs detached on empg's pool, and each item runs under `catch_unwind` so that a bug
//! in the verifier is a non-match for that item, never an abort of the interpreter.

use std::panic::{catch_unwind, AssertUnwindSafe};

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use rayon::prelude::*;

use crate::error::CoreError;
use crate::verify::{self, Style, Verifier};

/// The final answer of each text; see `empg.extract_answers`.
#[pyfunction]
#[pyo3(signature = (texts, *, style="auto", fallback=true))]
pub fn extract_answers(
    py: Python<'_>,
    texts: Vec<PyBackedStr>,
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

/// One pair's reward, a panic being a non-match.
fn score<'r>(batch: &mut Verifier<'r>, response: &str, reference: &'r str, style: Style) -> f32 {
    let ok = catch_unwind(AssertUnwindSafe(|| {
        batch.verify(response, reference, style)
    }));
    if ok.unwrap_or(false) {
        1.0
    } else {
        0.0
    }
}

/// 1.0 where the answer extracted from a response is equivalent to its reference; see
/// `empg.verify_batch`. The strings are borrowed from the Python objects (no copies; they are
/// immutable and held for the call); consecutive pairs with one reference share its parse; on one
/// thread the batch runs on the calling thread.
#[pyfunction]
#[pyo3(signature = (responses, references, *, style="auto"))]
pub fn verify_batch<'py>(
    py: Python<'py>,
    responses: Vec<PyBackedStr>,
    references: Vec<PyBackedStr>,
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
        if crate::parallel::num_threads() == 1 {
            let mut batch = Verifier::default();
            return responses
                .iter()
                .zip(&references)
                .map(|(resp, reference)| score(&mut batch, resp, reference, style))
                .collect();
        }
        crate::parallel::install(|| {
            responses
                .par_iter()
                .zip(references.par_iter())
                .map_init(Verifier::default, |batch, (resp, reference)| {
                    score(batch, resp, reference, style)
                })
                .collect()
        })
    });
    Ok(out.into_pyarray(py))
}
