"""Typed Python entry points to the Rust core's batch hot paths (group weights and packing).

Each call crosses into Rust once per batch: arrays are converted to the dtype the core expects
(without a copy when they already have it), the work runs with the GIL released, and numpy arrays
come back.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import numpy.typing as npt

from empg import _core

SCHEMES = ("group_norm", "mean_baseline", "raw", "rloo")


GroupWeights = _core.GroupWeights
"""The result of :func:`group_weights` (a frozen class of the core, named fields). Per completion:
``weights``, ``group_index`` (into the per-group arrays). Per group, in order of first appearance:
``group_ids``, ``size``, ``mean``, ``std`` (population), ``solved`` (fraction with reward >= the
solved threshold) and ``zero_signal`` (all rewards equal: no learning signal, weights 0); and
``num_dropped``, the number of zero-signal groups."""


def group_weights(
    rewards: npt.ArrayLike,
    *,
    group_size: int | None = None,
    group_ids: npt.ArrayLike | None = None,
    scheme: str = "group_norm",
    eps: float = 1e-6,
    solved_threshold: float = 1.0,
    drop_zero_signal: bool = True,
) -> GroupWeights:
    """M-step weights of the EM objective from rewards grouped by question.

    Give ``group_size`` (consecutive groups of K) or ``group_ids`` (one int per completion, groups of
    any size in any order). ``scheme`` is one of ``group_norm`` ((r - mean)/(std + eps), default),
    ``mean_baseline`` (r - mean), ``raw`` (r) or ``rloo`` (r - mean of the others). Groups whose
    rewards all agree get weight 0 unless ``drop_zero_signal=False``. A NaN or infinite reward raises
    :class:`~empg.exceptions.InvalidInputError` naming its index.
    """
    return _core.group_weights(
        np.ascontiguousarray(rewards, dtype=np.float32).reshape(-1),
        group_size=group_size,
        group_ids=None if group_ids is None else np.ascontiguousarray(group_ids, dtype=np.int64).reshape(-1),
        scheme=scheme,
        eps=eps,
        solved_threshold=solved_threshold,
        drop_zero_signal=drop_zero_signal,
    )


def pack_microbatches(
    lengths: npt.ArrayLike, token_budget: int, *, allow_oversize: bool = False
) -> list[npt.NDArray[np.int64]]:
    """Assign each sequence (by its token length) to exactly one micro-batch whose total length is at
    most ``token_budget`` (best-fit decreasing). Returns one array of sequence indices per
    micro-batch. A sequence over the budget raises :class:`~empg.exceptions.PackingError` naming it,
    or gets a micro-batch of its own with ``allow_oversize=True``."""
    return _core.pack_microbatches(
        np.ascontiguousarray(lengths, dtype=np.int64).reshape(-1),
        int(token_budget),
        allow_oversize=allow_oversize,
    )


class FlatSequences(NamedTuple):
    """Token sequences in one flat buffer: sequence ``i`` is ``tokens[offsets[i]:offsets[i+1]]``
    (int64 ids from :func:`flatten_sequences`, int32 from :func:`empg.samples.flatten_ids`)."""

    tokens: np.ndarray
    offsets: npt.NDArray[np.int64]

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)


def flatten_sequences(seqs: Sequence[Sequence[int] | npt.NDArray[np.integer]]) -> FlatSequences:
    """Concatenate token sequences into one buffer plus offsets (what the core takes)."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if len(seqs) == 0:
        return FlatSequences(np.zeros(0, dtype=np.int64), offsets)
    tokens = np.concatenate([np.asarray(s, dtype=np.int64).reshape(-1) for s in seqs])
    return FlatSequences(tokens.astype(np.int64, copy=False), offsets)


def build_microbatch(
    tokens: npt.ArrayLike,
    offsets: npt.ArrayLike,
    prompt_lens: npt.ArrayLike,
    weights: npt.ArrayLike,
    index: npt.ArrayLike,
) -> dict[str, np.ndarray]:
    """The flat, padding-free buffers of the micro-batch holding sequences ``index``:
    ``input_ids``, ``position_ids`` (restarting at 0 per sequence), ``loss_mask`` (True on completion
    tokens; token j is predicted by the logits at j-1), ``token_weights`` (the sequence's weight on its
    completion tokens) and ``cu_seqlens`` (int32, for variable-length attention)."""
    return _core.build_microbatch(
        np.ascontiguousarray(tokens, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(prompt_lens, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(weights, dtype=np.float32).reshape(-1),
        np.ascontiguousarray(index, dtype=np.int64).reshape(-1),
    )


def build_microbatches(
    tokens: npt.ArrayLike,
    offsets: npt.ArrayLike,
    prompt_lens: npt.ArrayLike,
    weights: npt.ArrayLike,
    bins: Sequence[npt.ArrayLike],
) -> list[dict[str, np.ndarray]]:
    """:func:`build_microbatch` for every micro-batch of ``bins`` (as from
    :func:`pack_microbatches`) in one call, built in parallel with the GIL released."""
    return _core.build_microbatches(
        np.ascontiguousarray(tokens, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(prompt_lens, dtype=np.int64).reshape(-1),
        np.ascontiguousarray(weights, dtype=np.float32).reshape(-1),
        [np.ascontiguousarray(b, dtype=np.int64).reshape(-1) for b in bins],
    )


def parallelism() -> int:
    """Threads the core's batch calls use now (``EMPG_PARALLELISM=0`` turns parallelism off,
    ``EMPG_NUM_THREADS=N`` sets the count)."""
    return _core.parallelism()
