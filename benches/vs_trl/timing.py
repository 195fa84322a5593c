"""Timers the workers wrap around the real functions of each system, a count of the tokens run
through the model, and the per-process memory.

A :class:`Timers` accumulates wall time per name; :meth:`Timers.wrap` replaces a bound method of an
object by one that times each call and returns exactly what the original returned (nothing about
the computation changes). Nested timed calls are recorded under their own names; the split is
made by subtraction afterwards (see the workers).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import resource
import time
from collections import defaultdict
from typing import Any, Callable

CATEGORIES = ("generation", "reward", "advantages_packing", "forward", "backward", "optimizer", "other")


class Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.total.clear()
        self.calls.clear()

    def add(self, name: str, seconds: float) -> None:
        self.total[name] += seconds
        self.calls[name] += 1

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t)

        return run

    def wrap(self, obj: Any, method: str, name: str | None = None) -> None:
        """Time every call of ``obj.method`` (an instance attribute shadowing the class method)."""
        setattr(obj, method, self.timed(name or method, getattr(obj, method)))

    def get(self, name: str) -> float:
        return self.total.get(name, 0.0)


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """High-water resident set size of this process (``getrusage``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory() -> dict[str, int]:
    """``peak_rss`` (:func:`peak_rss_bytes`), and ``peak_cuda`` (the CUDA allocator's high-water
    mark) where this process used a GPU."""
    out = {"peak_rss": peak_rss_bytes()}
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_cuda"] = int(torch.cuda.max_memory_allocated())
    return out


class TokenCounter:
    """Token positions (padding included) of every forward of ``module`` while ``on``: a
    pre-forward hook on the decoder body, which every path of either system goes through (a
    packed row, a padded batch, a shared prefix and its continuations)."""

    def __init__(self, module: Any) -> None:
        self.on = False
        self.tokens = 0
        module.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not self.on:
            return
        x = kwargs.get("input_ids", args[0] if args else None)
        if x is None:
            x = kwargs["inputs_embeds"]
        self.tokens += int(x.shape[0]) * int(x.shape[1]) if x.dim() > 1 else int(x.shape[0])

    def take(self) -> int:
        n, self.tokens = self.tokens, 0
        return n


def release_memory() -> None:
    """Between iterations (untimed): free what Python and glibc hold but no longer use, so the
    idle workers of a run leave memory to the one computing."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
