"""``nn.Linear`` on oneDNN's CPU kernels: the sampler's decode and prefill, the M-step's forward
and backward.

On the CPU, torch computes ``nn.Linear`` with MKL's GEMM. oneDNN, which ships inside the same
torch wheel, has its own float32 kernels, compiled at run time for the CPU it finds (AVX-512 on the
2-core AMD EPYC of ``benches/results/vs_trl.md``). What that does end to end there is the row
``empg-grpo/no-share`` against ``empg-grpo/no-share/torch`` (``model.onednn=false``), its time
split giving sampling and the update apart. On other CPUs, Intel's included, it is not measured.

Inside :func:`onednn_linears` every ``nn.Linear`` of the model with float32 weights on the CPU runs
``torch.ops.mkldnn._linear_pointwise`` (the op torch's own compiler emits for CPU linears):

- with gradients, through :class:`_LinearFn`. Its backward is two more oneDNN products,
  ``dX = dY @ W`` and ``dW = dYᵀ @ X``, plus ``dB = Σ dY``;
- without (``packed=True``, the sampler): on a weight copy in oneDNN's own blocked layout, made
  the first time a layer runs inside the block and dropped at its end. The copy is what makes a
  decode step fast; it costs one more copy of the weights while the block runs, and it is only
  valid while the weights do not change, which holds within one sampling call.

The products are the same dot products in float32 as ``F.linear``'s; only the order of the
additions differs, so results agree to rounding (``tests/test_onednn.py`` checks outputs and
every gradient against ``nn.Linear``'s). Outside the block nothing changes. Other dtypes, other
devices, a torch without the op, or ``model.onednn=false`` keep ``nn.Linear``'s own path.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

import torch
import torch.nn.functional as F

_AVAILABLE: bool | None = None


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` by oneDNN (``weight``: dense, strided, or packed by oneDNN)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def available() -> bool:
    """Whether this torch has oneDNN's linear op and it gives ``F.linear``'s numbers (probed once)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            gen = torch.Generator().manual_seed(0)
            x, w, b = (torch.randn(*s, generator=gen) for s in ((3, 5), (4, 5), (4,)))
            packed = torch.ops.mkldnn._reorder_linear_weight(w, 3)
            want = F.linear(x, w, b)
            _AVAILABLE = bool(torch.backends.mkldnn.is_available()) and all(
                torch.allclose(got, want, rtol=1e-5, atol=1e-5) for got in (_linear(x, w, b), _linear(x, packed, b)))
        except (AttributeError, RuntimeError):
            _AVAILABLE = False
    return _AVAILABLE


class _LinearFn(torch.autograd.Function):
    """``F.linear`` with oneDNN products in the forward and the backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])
        gx = _linear(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
        gw = _linear(grad2.t(), x.reshape(-1, x.shape[-1]).t(), None) if ctx.needs_input_grad[1] else None
        gb = grad2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def _forward(self: torch.nn.Linear, packed: dict[torch.nn.Linear, torch.Tensor] | None,
             x: torch.Tensor) -> torch.Tensor:
    if x.dtype != torch.float32 or self.weight.dtype != torch.float32:
        return F.linear(x, self.weight, self.bias)
    if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
        return _LinearFn.apply(x, self.weight, self.bias)
    weight = self.weight.detach()
    if packed is not None:
        if self not in packed:
            # 4: the row count the layout is chosen for (a decode batch); any count runs on it
            packed[self] = torch.ops.mkldnn._reorder_linear_weight(weight, 4)
        weight = packed[self]
    return _linear(x, weight, None if self.bias is None else self.bias.detach())


@contextlib.contextmanager
def onednn_linears(model: Any, *, enabled: bool = True, packed: bool = False) -> Iterator[None]:
    """Within the block, every float32 ``nn.Linear`` of ``model`` (on a CPU) runs on oneDNN;
    ``packed``: no-grad forwards on a packed copy of each weight (valid while the weights do not
    change). A no-op when not ``enabled``, off the CPU or without the op."""
    if model is None or not enabled or next(model.parameters()).device.type != "cpu" or not available():
        yield
        return
    mods = [m for m in model.modules() if type(m) is torch.nn.Linear and "forward" not in vars(m)]
    cache: dict[torch.nn.Linear, torch.Tensor] | None = {} if packed else None
    for m in mods:
        m.forward = functools.partial(_forward, m, cache)
    try:
        yield
    finally:
        for m in mods:
            del m.forward
