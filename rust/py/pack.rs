use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::CoreError;
use crate::pack::{self, MicroBatch, Sequences};
use rayon::prelude::*;

fn to_vec<T: numpy::Element + Copy>(a: &PyReadonlyArray1<'_, T>) -> Vec<T> {
    a.as_array().iter().copied().collect()
}

/// Assign sequences to micro-batches under a token budget; see `empg.pack_microbatches`.
#[pyfunction]
#[pyo3(signature = (lengths, token_budget, *, allow_oversize=false))]
pub fn pack_microbatches<'py>(
    py: Python<'py>,
    lengths: PyReadonlyArray1<'py, i64>,
    token_budget: i64,
    allow_oversize: bool,
) -> PyResult<Vec<Bound<'py, PyArray1<i64>>>> {
    let lengths = to_vec(&lengths);
    if token_budget < 1 {
        return Err(
            CoreError::invalid("token_budget", format!("{token_budget} is below 1")).into(),
        );
    }
    let bins = py.detach(|| {
        let lens = lengths
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                u64::try_from(l).map_err(|_| {
                    CoreError::invalid("lengths", format!("sequence {i} has negative length {l}"))
                })
            })
            .collect::<Result<Vec<u64>, _>>()?;
        pack::pack(&lens, token_budget as u64, allow_oversize)
    })?;
    Ok(bins
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(i64::from)
                .collect::<Vec<i64>>()
                .into_pyarray(py)
        })
        .collect())
}

fn to_index(index: &[i64]) -> Result<Vec<u32>, CoreError> {
    index
        .iter()
        .map(|&i| {
            u32::try_from(i)
                .map_err(|_| CoreError::invalid("index", format!("{i} is not a sequence index")))
        })
        .collect()
}

fn into_dict<'py>(py: Python<'py>, mb: MicroBatch) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("input_ids", mb.input_ids.into_pyarray(py))?;
    out.set_item("position_ids", mb.position_ids.into_pyarray(py))?;
    out.set_item("loss_mask", mb.loss_mask.into_pyarray(py))?;
    out.set_item("token_weights", mb.token_weights.into_pyarray(py))?;
    out.set_item("cu_seqlens", mb.cu_seqlens.into_pyarray(py))?;
    Ok(out)
}

/// The caller's arrays as validated `Sequences`, read in place (no copy): only while attached.
fn borrow_sequences<'a>(
    tokens: &'a PyReadonlyArray1<'_, i64>,
    offsets: &'a PyReadonlyArray1<'_, i64>,
    prompt_lens: &'a PyReadonlyArray1<'_, i64>,
    weights: &'a PyReadonlyArray1<'_, f32>,
) -> PyResult<Sequences<'a>> {
    let seqs = Sequences {
        tokens: tokens.as_slice()?,
        offsets: offsets.as_slice()?,
        prompt_lens: prompt_lens.as_slice()?,
        weights: weights.as_slice()?,
    };
    seqs.validate()?;
    Ok(seqs)
}

/// The flat buffers of one micro-batch; see `empg.build_microbatch`. Reads the arrays in place
/// (no copy of the whole token buffer): the work is a gather of just this micro-batch's tokens.
#[pyfunction]
pub fn build_microbatch<'py>(
    py: Python<'py>,
    tokens: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    prompt_lens: PyReadonlyArray1<'py, i64>,
    weights: PyReadonlyArray1<'py, f32>,
    index: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let seqs = borrow_sequences(&tokens, &offsets, &prompt_lens, &weights)?;
    let mb = pack::build_microbatch(&seqs, &to_index(index.as_slice()?)?)?;
    into_dict(py, mb)
}

/// The buffers of many micro-batches in one crossing; see `empg.build_microbatches`. While
/// attached, the input ids of each micro-batch are gathered in parallel straight out of the token
/// buffer (the one copy of the tokens that is needed anyway); the rest is built in parallel with the
/// GIL released.
#[pyfunction]
pub fn build_microbatches<'py>(
    py: Python<'py>,
    tokens: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    prompt_lens: PyReadonlyArray1<'py, i64>,
    weights: PyReadonlyArray1<'py, f32>,
    bins: Vec<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let borrowed = borrow_sequences(&tokens, &offsets, &prompt_lens, &weights)?;
    let bins = bins
        .iter()
        .map(|b| to_index(b.as_slice()?).map_err(PyErr::from))
        .collect::<PyResult<Vec<Vec<u32>>>>()?;
    // The gather reads the borrowed arrays, so it runs attached (no Python code can run and
    // mutate them meanwhile), on empg's pool: the calling thread only waits for the workers.
    let ids = crate::parallel::install(|| {
        bins.par_iter()
            .map(|b| pack::gather_input_ids(&borrowed, b))
            .collect::<Result<Vec<Vec<i64>>, CoreError>>()
    })?;
    let (offsets, prompt_lens, weights) =
        (to_vec(&offsets), to_vec(&prompt_lens), to_vec(&weights));
    let layouts = py.detach(|| {
        let meta = Sequences {
            tokens: &[],
            offsets: &offsets,
            prompt_lens: &prompt_lens,
            weights: &weights,
        };
        crate::parallel::install(|| {
            bins.par_iter()
                .map(|b| pack::layout(&meta, b))
                .collect::<Result<Vec<MicroBatch>, CoreError>>()
        })
    })?;
    layouts
        .into_iter()
        .zip(ids)
        .map(|(mb, input_ids)| into_dict(py, MicroBatch { input_ids, ..mb }))
        .collect()
}
