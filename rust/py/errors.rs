//! `CoreError` → the exception classes of `empg.exceptions` (defined in Python, so they can mix in
//! `ValueError`; looked up only when an error is raised).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::error::CoreError;

fn class_name(err: &CoreError) -> &'static str {
    match err {
        CoreError::SequenceTooLong { .. } => "PackingError",
        CoreError::NonFiniteReward { .. }
        | CoreError::LengthMismatch { .. }
        | CoreError::InvalidArgument { .. } => "InvalidInputError",
    }
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        let msg = err.to_string();
        Python::attach(|py| {
            match py
                .import("empg.exceptions")
                .and_then(|m| m.getattr(class_name(&err)))
            {
                Ok(cls) => match cls.call1((msg.clone(),)) {
                    Ok(instance) => PyErr::from_value(instance),
                    Err(e) => e,
                },
                Err(_) => PyValueError::new_err(msg),
            }
        })
    }
}

/// Nothing to add to the module today; kept as the one place that would register error types.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
