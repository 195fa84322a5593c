"""Decode steps on the CPU: each ``nn.Linear`` of a few rows in the faster of two layouts.

A decode step multiplies one row per running sequence by every weight matrix of the model.
``nn.Linear`` computes ``x @ W.T``; for a handful of rows MKL is often much faster at the same
products laid out as ``(W @ x.T).T``, and on some shapes slower (on the 2-core dev machine, 4 rows
of SmolLM2-135M: its 49k-token LM head 15 ms → 6 ms, its MLP's up/gate projections 11 → 6 ms per
30 layers, its down projection a little slower). Inside :func:`few_row_linears`, a Linear of the
model with at most :data:`MAX_ROWS` rows of input takes the layout that was faster over the
model's weights of its shape (:func:`transposed_is_faster`: timed once per power-of-two bucket of
rows, out, in and dtype, and kept for the rest of the process); larger inputs (prefill, the M-step) take ``nn.Linear``'s own path. Both layouts compute
the same dot products in float32, so results agree to rounding (the order of the additions may
differ). Outside the context nothing changes; on other devices it does nothing.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from typing import Any, Iterator

import torch
import torch.nn.functional as F

MAX_ROWS = 16  # above this, nn.Linear's own layout (MKL's large-matrix kernels are at their peak)
_FASTER: dict[tuple[int, int, int, torch.dtype], bool] = {}  # True: the transposed layout wins


def _transposed(x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    # Contiguous like F.linear's result: attention kernels take the fast path only on such strides.
    return (weight @ x2.t()).t().contiguous()


def row_bucket(rows: int) -> int:
    """The power of two at or above ``rows``: the row counts that share one decision (a batch
    shrinks one row at a time as sequences finish, and each decision costs a few passes over the
    weights)."""
    return 1 << max(rows - 1, 0).bit_length()


def transposed_is_faster(rows: int, weights: list[torch.Tensor], trials: int = 3) -> bool:
    """Whether ``(W @ x.T).T`` beat ``x @ W.T`` for ``rows`` rows on these same-shape weights
    (decided on first sight for :func:`row_bucket` of ``rows``, timed at the bucket's top, then
    cached): the median of ``trials`` interleaved passes of each layout, after one warm-up pass,
    over up to 16 of the model's weights of the shape, as a decode step reads them. A weight
    timed alone stays in the CPU's cache, which the real step never has, and the ranking can flip;
    interleaving and the median keep a busy neighbour core from deciding it."""
    w0 = weights[0]
    bucket = row_bucket(rows)
    key = (bucket, int(w0.shape[0]), int(w0.shape[1]), w0.dtype)
    won = _FASTER.get(key)
    if won is None:
        x2 = torch.randn(bucket, w0.shape[1], dtype=w0.dtype, device=w0.device)
        some = weights[:: max(1, len(weights) // 16)][:16]
        times: dict[bool, list[float]] = {False: [], True: []}
        for trial in range(trials + 1):  # the first pass of each: warm-up, not counted
            for layout in (False, True):
                t = time.perf_counter()
                for w in some:
                    if layout:
                        _transposed(x2, w)
                    else:
                        F.linear(x2, w)
                if trial:
                    times[layout].append(time.perf_counter() - t)
        won = _FASTER[key] = statistics.median(times[True]) < statistics.median(times[False])
    return won


def _forward(self: torch.nn.Linear, same_shape: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // max(x.shape[-1], 1)
    if rows > MAX_ROWS or x.dtype != self.weight.dtype or not transposed_is_faster(rows, same_shape):
        return F.linear(x, self.weight, self.bias)
    y = _transposed(x.reshape(rows, x.shape[-1]), self.weight)
    if self.bias is not None:
        y = y + self.bias
    return y.reshape(*x.shape[:-1], self.weight.shape[0])


@contextlib.contextmanager
def few_row_linears(model: Any) -> Iterator[None]:
    """Within the block, every ``nn.Linear`` of ``model`` (on a CPU) takes :func:`_forward`."""
    if next(model.parameters()).device.type != "cpu":
        yield
        return
    mods = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)]
    by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for m in mods:
        by_shape.setdefault(tuple(m.weight.shape), []).append(m.weight)
    for m in mods:
        m.forward = functools.partial(_forward, m, by_shape[tuple(m.weight.shape)])
    try:
        yield
    finally:
        for m in mods:
            del m.forward
