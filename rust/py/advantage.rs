use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::advantage::{self, Grouping, Options, Scheme};
use crate::error::CoreError;

/// The result of `empg.group_weights`. Per completion: `weights`, `group_index` (into the
/// per-group arrays). Per group, in order of first appearance: `group_ids`, `size`, `mean`, `std`
/// (population), `solved` (fraction with reward >= the solved threshold) and `zero_signal` (all
/// rewards equal: no learning signal, weights 0).
#[pyclass(frozen, module = "empg._core", name = "GroupWeights")]
pub struct GroupWeights {
    #[pyo3(get)]
    weights: Py<PyArray1<f32>>,
    #[pyo3(get)]
    group_index: Py<PyArray1<i64>>,
    #[pyo3(get)]
    group_ids: Py<PyArray1<i64>>,
    #[pyo3(get)]
    size: Py<PyArray1<i64>>,
    #[pyo3(get)]
    mean: Py<PyArray1<f32>>,
    #[pyo3(get)]
    std: Py<PyArray1<f32>>,
    #[pyo3(get)]
    solved: Py<PyArray1<f32>>,
    #[pyo3(get)]
    zero_signal: Py<PyArray1<bool>>,
    #[pyo3(get)]
    num_dropped: usize,
}

/// Per-completion M-step weights and per-group statistics; see `empg.group_weights`. Reads the
/// caller's arrays in place (no copy) with the interpreter released for the work.
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
) -> PyResult<GroupWeights> {
    let opts = Options {
        scheme: scheme.parse::<Scheme>()?,
        eps,
        solved_threshold,
        drop_zero_signal,
    };
    let rewards = rewards.as_slice()?;
    let ids = group_ids.as_ref().map(|a| a.as_slice()).transpose()?;
    let grouping = match (group_size, ids) {
        (Some(k), None) => Grouping::Size(k),
        (None, Some(ids)) => Grouping::Ids(ids),
        _ => {
            return Err(CoreError::invalid(
                "group_size/group_ids",
                "give exactly one of group_size and group_ids",
            )
            .into())
        }
    };
    // The arrays are borrowed from Python, so the (sub-millisecond) work runs attached.
    let out = advantage::group_weights(rewards, grouping, &opts)?;
    let num_dropped = out.stats.zero_signal.iter().filter(|&&z| z).count();
    Ok(GroupWeights {
        weights: out.weights.into_pyarray(py).unbind(),
        group_index: out.group_index.into_pyarray(py).unbind(),
        group_ids: out.stats.ids.into_pyarray(py).unbind(),
        size: out.stats.size.into_pyarray(py).unbind(),
        mean: out.stats.mean.into_pyarray(py).unbind(),
        std: out.stats.std.into_pyarray(py).unbind(),
        solved: out.stats.solved.into_pyarray(py).unbind(),
        zero_signal: out.stats.zero_signal.into_pyarray(py).unbind(),
        num_dropped,
    })
}
