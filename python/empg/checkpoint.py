"""Checkpoints that transformers and vLLM load directly, and that training resumes from.

Layout of ``<run_dir>/checkpoints/iter-000007/``: the model (``save_pretrained``, safetensors) and
tokenizer files; ``training_state.pt`` (optimizer state keyed by parameter name, scheduler, RNG
states of python/numpy/torch, iteration, data position); ``COMPLETE`` written last. Weights and
optimizer state are full (unsharded) also under torchrun, where rank 0 writes them, so a checkpoint
resumes on any number of ranks. A checkpoint is written in a temporary
directory, every file fsync'ed, then renamed into place, so a crash never leaves a directory that
looks complete; :func:`latest_complete` only takes directories holding ``COMPLETE``. A failed write
(disk full, I/O error) raises :class:`CheckpointError` and leaves the earlier checkpoints as they
were; the leftovers of a killed write (``.tmp-*``) are removed by the next save.

The training state holds only tensors and plain Python values, so it is read back with
``torch.load(weights_only=True)``: a checkpoint cannot run code when loaded. ``faults.pause_point``
marks the spots where tests SIGKILL a save half-way (inert unless ``$EMPG_TEST_PAUSE_AT`` is set).
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empg.exceptions import CheckpointError
from empg.faults import pause_point

MARKER = "COMPLETE"
STATE_FILE = "training_state.pt"
PREFIX = "iter-"


def _fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_state() -> dict[str, Any]:
    """RNG states of python/numpy/torch(/cuda) as tensors and plain values (weights_only-safe)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                       int(has_gauss), float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _File:
    """A file for ``torch.save`` that remembers the OSError of a failed write: torch reports it
    only as "unexpected pos ...", the OSError says "No space left on device"."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return int(self.f.write(data))
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def _torch_save(obj: Any, path: Path) -> None:
    with path.open("wb") as f:
        out = _File(f)
        try:
            torch.save(obj, out)  # type: ignore[arg-type]
        except RuntimeError as e:
            if out.error is not None:
                raise out.error from e
            raise


def save(ckpt_root: str | Path, iteration: int, model: Any, tokenizer: Any, optimizer: Any,
         scheduler: Any, extra: dict[str, Any], *, keep_last: int = 2,
         weights: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``iter-<iteration>`` atomically under ``ckpt_root``; keep the last ``keep_last``.
    ``optimizer`` is the optimizer or its name-keyed state (:func:`empg.distributed.optimizer_state`,
    gathered beforehand under torchrun); ``weights``: the full weights of a sharded ``model``."""
    if not isinstance(optimizer, dict):
        from empg.distributed import optimizer_state

        optimizer = optimizer_state(model, optimizer)
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{iteration:06d}"
    tmp = root / f".tmp-{PREFIX}{iteration:06d}-{os.getpid()}"
    for stale in root.glob(f".tmp-{PREFIX}*"):  # left by a killed save (one writer per run dir)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir()
        model.save_pretrained(tmp, safe_serialization=True, **({"state_dict": weights} if weights else {}))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        _torch_save({"iteration": iteration, "optimizer": optimizer,
                     "scheduler": scheduler.state_dict(), "rng": rng_state(), **extra},
                    tmp / STATE_FILE)
        pause_point("checkpoint-before-marker", final.name)
        (tmp / MARKER).write_text(f"{iteration}\n")
        _fsync_tree(tmp)
        if final.exists():  # same iteration saved again: move the old one aside first
            os.rename(final, root / f".tmp-{PREFIX}{iteration:06d}-old-{os.getpid()}")
        os.rename(tmp, final)
        # The rename is durable once the parent directory is fsync'ed.
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except Exception as e:  # OSError, torch's RuntimeError, SafetensorError: all mean "not written"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            free = f"; {shutil.disk_usage(root).free / 2**20:.1f} MiB free on that disk"
        except OSError:
            free = ""
        raise CheckpointError(f"cannot write checkpoint {final} ({type(e).__name__}: {e}){free}; "
                              "the earlier checkpoints are untouched") from e
    for stale in root.glob(f".tmp-{PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in complete_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(ckpt_root: str | Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()
             and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_complete(ckpt_root: str | Path) -> Path | None:
    found = complete_checkpoints(ckpt_root)
    return found[-1] if found else None


def load_state(path: str | Path) -> dict[str, Any]:
    """The training state of a complete checkpoint (raises :class:`CheckpointError` otherwise)."""
    p = Path(path)
    if not (p / MARKER).is_file():
        raise CheckpointError(f"checkpoint {p} is incomplete (no {MARKER} marker)")
    try:
        return dict(torch.load(p / STATE_FILE, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"checkpoint {p}: cannot read {STATE_FILE}: {e}") from e


def load_optimizer(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Load a checkpoint's optimizer state into ``optimizer`` (of ``model``, sharded or not): the
    name-keyed state of any number of ranks, or the position-keyed state of older checkpoints."""
    from empg import distributed

    if any(isinstance(i, int) for g in state.get("param_groups", []) for i in g.get("params", [])):
        state = distributed.by_name(model, state)  # position-keyed: ``optimizer.state_dict()``
    try:
        distributed.load_optimizer_state(model, optimizer, state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"the checkpoint's optimizer state does not fit this model ({type(e).__name__}: "
                              f"{e}); was it written by another model?") from e
