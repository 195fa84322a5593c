use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::advantage::{self, Grouping, Options, Scheme};
use crate::error::CoreError;

/// Per-completion M-step weights and per-group statistics; see `empg.group_weights`.
#[pyfunction]
#[pyo3(signature = (rewards, *, group_size=None, group_ids=None, scheme="group_norm", eps=1e-6, solved_threshold=1.0, drop_zero_signal=true))]
#[allow(clippy::too_many_arguments)]
pub fn group_weights<'py>(
    py: Python<'py>,
    rewards: PyReadonlyArray1<'py, f32>,
    group_size: Option<usize>,
    group_ids: Option<PyReadonlyArray1<'py, i64>>,
    scheme: &str,
    eps: f64,
    solved_threshold: f32,
    drop_zero_signal: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let opts = Options {
        scheme: scheme.parse::<Scheme>()?,
        eps,
        solved_threshold,
        drop_zero_signal,
    };
    let rewards: Vec<f32> = rewards.as_array().iter().copied().collect();
    let ids: Option<Vec<i64>> = group_ids.map(|a| a.as_array().iter().copied().collect());
    let out = py.detach(|| {
        let grouping = match (group_size, ids.as_deref()) {
            (Some(k), None) => Grouping::Size(k),
            (None, Some(ids)) => Grouping::Ids(ids),
            _ => {
                return Err(CoreError::invalid(
                    "group_size/group_ids",
                    "give exactly one of group_size and group_ids",
                ))
            }
        };
        advantage::group_weights(&rewards, grouping, &opts)
    })?;
    let group_index: Vec<i64> = out.group_index.iter().map(|&g| g as i64).collect();
    let size: Vec<i64> = out.stats.size.iter().map(|&s| s as i64).collect();
    PyTuple::new(
        py,
        [
            out.weights.into_pyarray(py).into_any(),
            group_index.into_pyarray(py).into_any(),
            out.stats.ids.into_pyarray(py).into_any(),
            size.into_pyarray(py).into_any(),
            out.stats.mean.into_pyarray(py).into_any(),
            out.stats.std.into_pyarray(py).into_any(),
            out.stats.solved.into_pyarray(py).into_any(),
            out.stats.zero_signal.into_pyarray(py).into_any(),
        ],
    )
}
