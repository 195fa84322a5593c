use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::error::CoreError;
use crate::pack::{self, Grouped, MicroBatch, Sequences, WeightLayout};
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
    let mb = pack::build_microbatch(&seqs, &to_index(index.as_slice()?)?, WeightLayout::PerToken)?;
    into_dict(py, mb)
}

fn to_bins(bins: &[PyReadonlyArray1<'_, i64>]) -> PyResult<Vec<Vec<u32>>> {
    bins.iter()
        .map(|b| to_index(b.as_slice()?).map_err(PyErr::from))
        .collect()
}

/// The buffers of many micro-batches in one crossing; see `empg.build_microbatches`. Built in
/// parallel on empg's pool straight out of the caller's arrays; they are borrowed, so the work
/// runs attached (no Python code can run and mutate them meanwhile): the calling thread only
/// waits for the workers.
#[pyfunction]
pub fn build_microbatches<'py>(
    py: Python<'py>,
    tokens: PyReadonlyArray1<'py, i64>,
    offsets: PyReadonlyArray1<'py, i64>,
    prompt_lens: PyReadonlyArray1<'py, i64>,
    weights: PyReadonlyArray1<'py, f32>,
    bins: Vec<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let seqs = borrow_sequences(&tokens, &offsets, &prompt_lens, &weights)?;
    let mbs = pack::build_microbatches(&seqs, &to_bins(&bins)?, WeightLayout::PerToken)?;
    mbs.into_iter().map(|mb| into_dict(py, mb)).collect()
}

fn push_id(tokens: &mut Vec<i32>, i: usize, j: usize, item: &Bound<'_, PyAny>) -> PyResult<()> {
    let bad = |why: String| {
        PyErr::from(CoreError::invalid(
            "token ids",
            format!("sequence {i}, position {j}: {why}"),
        ))
    };
    let v: i64 = item.extract().map_err(|e: PyErr| bad(e.to_string()))?;
    tokens.push(i32::try_from(v).map_err(|_| bad(format!("{v} is outside int32")))?);
    Ok(())
}

/// List objects and the token buffer, shared with empg's workers for the fast path of
/// [`flatten_ids`]: the workers only read (borrowed list items, the values of exact ints) and each
/// writes its own range of the buffer, while the calling thread holds the GIL and waits.
struct RawLists {
    lists: Vec<usize>,
    out: usize,
}
unsafe impl Sync for RawLists {}

/// Copy list `k` (an exact list) into the buffer at `start`. `Err(j)`: position `j` is not an exact
/// int within int32 (the slow path then names it).
///
/// # Safety
/// `raw.lists[k]` is a live list of `len` items and `raw.out` has room for `start + len` ids.
unsafe fn copy_list(raw: &RawLists, k: usize, start: usize, len: usize) -> Result<(), usize> {
    use pyo3::ffi;
    let list = raw.lists[k] as *mut ffi::PyObject;
    let out = (raw.out as *mut i32).add(start);
    let int_type = std::ptr::addr_of_mut!(ffi::PyLong_Type);
    for j in 0..len {
        let item = ffi::PyList_GetItem(list, j as ffi::Py_ssize_t);
        if ffi::Py_TYPE(item) != int_type {
            return Err(j);
        }
        let mut overflow = 0;
        let v = ffi::PyLong_AsLongAndOverflow(item, &mut overflow);
        match i32::try_from(v) {
            Ok(t) if overflow == 0 => *out.add(j) = t,
            _ => return Err(j),
        }
    }
    Ok(())
}

/// The token ids of `seqs` (lists or tuples of ints, or 1-D int32 numpy arrays) in one int32
/// buffer: `{"tokens": int32, "offsets": int64}`, sequence `i` being
/// `tokens[offsets[i]:offsets[i+1]]`; see `empg.samples`. Lists of plain ints (what samplers
/// return) are read in parallel; an id outside int32 is an error naming the sequence and position.
#[pyfunction]
pub fn flatten_ids<'py>(
    py: Python<'py>,
    seqs: Vec<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut offsets: Vec<i64> = Vec::with_capacity(seqs.len() + 1);
    offsets.push(0);
    let lists: Option<Vec<&Bound<'py, PyList>>> =
        seqs.iter().map(|s| s.cast_exact::<PyList>().ok()).collect();
    let mut tokens: Vec<i32> = Vec::new();
    let mut fast = false;
    if let Some(lists) = lists {
        for l in &lists {
            offsets.push(offsets.last().unwrap() + l.len() as i64);
        }
        tokens = vec![0; *offsets.last().unwrap() as usize];
        let raw = RawLists {
            lists: lists.iter().map(|l| l.as_ptr() as usize).collect(),
            out: tokens.as_mut_ptr() as usize,
        };
        let (offs, n) = (&offsets, lists.len());
        fast = crate::parallel::install(|| {
            (0..n).into_par_iter().with_min_len(16).all(|k| {
                let (a, b) = (offs[k] as usize, offs[k + 1] as usize);
                // SAFETY: the lists are alive (held by `seqs`) and not mutated (the GIL is held by
                // the caller, who waits); each k writes only tokens[a..b].
                unsafe { copy_list(&raw, k, a, b - a).is_ok() }
            })
        });
    }
    if !fast {
        offsets.truncate(1);
        tokens.clear();
        for (i, seq) in seqs.iter().enumerate() {
            if let Ok(a) = seq.extract::<PyReadonlyArray1<'py, i32>>() {
                tokens.extend_from_slice(a.as_slice()?);
            } else {
                for (j, item) in seq.try_iter()?.enumerate() {
                    push_id(&mut tokens, i, j, &item?)?;
                }
            }
            offsets.push(tokens.len() as i64);
        }
    }
    let out = PyDict::new(py);
    out.set_item("tokens", tokens.into_pyarray(py))?;
    out.set_item("offsets", offsets.into_pyarray(py))?;
    Ok(out)
}

/// The buffers of every micro-batch of one optimizer step, from sequences whose prompts are stored
/// once per group (`empg.samples.Samples`): one call, built in parallel with the GIL released.
/// Like `build_microbatches`, but with `target_weights` (the weight of each completion token, what
/// the loss takes) in place of the per-token `token_weights`.
/// The arrays are read in place; the caller keeps them read-only (Samples marks them so).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn build_grouped_microbatches<'py>(
    py: Python<'py>,
    prompts: PyReadonlyArray1<'py, i32>,
    prompt_offsets: PyReadonlyArray1<'py, i64>,
    completions: PyReadonlyArray1<'py, i32>,
    completion_offsets: PyReadonlyArray1<'py, i64>,
    group: PyReadonlyArray1<'py, i64>,
    weights: PyReadonlyArray1<'py, f32>,
    bins: Vec<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let seqs = Grouped {
        prompts: prompts.as_slice()?,
        prompt_offsets: prompt_offsets.as_slice()?,
        completions: completions.as_slice()?,
        completion_offsets: completion_offsets.as_slice()?,
        group: group.as_slice()?,
        weights: weights.as_slice()?,
    };
    let bins = to_bins(&bins)?;
    let mbs = py.detach(|| {
        seqs.validate()?;
        pack::build_microbatches(&seqs, &bins, WeightLayout::PerTarget)
    })?;
    mbs.into_iter()
        .map(|mb| {
            let weights = mb.token_weights.into_pyarray(py);
            let out = into_dict(
                py,
                MicroBatch {
                    token_weights: Vec::new(),
                    ..mb
                },
            )?;
            out.del_item("token_weights")?;
            out.set_item("target_weights", weights)?;
            Ok(out)
        })
        .collect()
}
