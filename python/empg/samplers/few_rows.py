"""Decode steps on the CPU: each ``nn.Linear`` of a few rows in the faster of two layouts.

A decode step multiplies one row per running sequence by every weight matrix of the model.
``nn.Linear`` computes ``x @ W.T``. For 2 to 8 rows, MKL is much faster at the same products laid
out as ``(W @ x.T).T`` when the weight is at least as tall as it is wide (``out >= in``: the
attention's query and output projections, the MLP's up and gate projections, the LM head), and
slower on the others (the key/value projections, the MLP's down projection); for one row it makes
no difference. What it does end to end is in ``benches/results/vs_trl.md``: the generation column
of the time split, empg's sampler against TRL's ``model.generate``. Timing the layouts at run
time was tried and dropped: a few milliseconds of timing flip with a busy neighbour core, and the
decisions came out different from run to run.

Inside :func:`few_row_linears` a Linear of the model takes the transposed layout when
:func:`transposed_layout` says so and ``nn.Linear``'s own path otherwise (prefill and the M-step
have many rows). Both layouts compute the same dot products in float32, so results agree to
rounding (the order of the additions may differ). Outside the context nothing changes; on other
devices it does nothing.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

import torch
import torch.nn.functional as F

MAX_ROWS = 8  # above this, nn.Linear's own layout is as fast or faster


def transposed_layout(rows: int, out_features: int, in_features: int) -> bool:
    """Whether ``(W @ x.T).T`` is the faster layout for ``rows`` rows of a ``out x in`` weight."""
    return 2 <= rows <= MAX_ROWS and out_features >= in_features


def _forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // max(x.shape[-1], 1)
    out_f, in_f = self.weight.shape
    if x.dtype != self.weight.dtype or not transposed_layout(rows, out_f, in_f):
        return F.linear(x, self.weight, self.bias)
    # Contiguous like F.linear's result: attention kernels take the fast path only on such strides.
    y = (self.weight @ x.reshape(rows, in_f).t()).t().contiguous()
    if self.bias is not None:
        y = y + self.bias
    return y.reshape(*x.shape[:-1], out_f)


@contextlib.contextmanager
def few_row_linears(model: Any) -> Iterator[None]:
    """Within the block, every ``nn.Linear`` of ``model`` (on a CPU) takes :func:`_forward`."""
    if next(model.parameters()).device.type != "cpu":
        yield
        return
    mods = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)]
    for m in mods:
        m.forward = functools.partial(_forward, m)
    try:
        yield
    finally:
        for m in mods:
            del m.forward
