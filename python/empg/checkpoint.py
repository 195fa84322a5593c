"""Checkpoints that transformers and vLLM load directly, and that training resumes from.

Layout of ``<run_dir>/checkpoints/iter-000007/``: the model (``save_pretrained``, safetensors) and
tokenizer files; ``training_state.pt`` (optimizer, scheduler, RNG states of python/numpy/torch,
iteration, data position); ``COMPLETE`` written last. A checkpoint is written in a temporary
directory, every file fsync'ed, then renamed into place, so a crash never leaves a directory that
looks complete; :func:`latest_complete` only takes directories holding ``COMPLETE``.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empg.exceptions import CheckpointError

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
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(ckpt_root: str | Path, iteration: int, model: Any, tokenizer: Any, optimizer: Any,
         scheduler: Any, extra: dict[str, Any], *, keep_last: int = 2) -> Path:
    """Write ``iter-<iteration>`` atomically under ``ckpt_root``; keep the last ``keep_last``."""
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{iteration:06d}"
    tmp = root / f".tmp-{PREFIX}{iteration:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save({"iteration": iteration, "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": rng_state(), **extra},
                   tmp / STATE_FILE)
        (tmp / MARKER).write_text(f"{iteration}\n")
        _fsync_tree(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        # The rename is durable once the parent directory is fsync'ed.
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"cannot write checkpoint {final}: {e}") from e
    for old in complete_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(ckpt_root: str | Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and p.name.startswith(PREFIX) and (p / MARKER).is_file()]
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
        return dict(torch.load(p / STATE_FILE, map_location="cpu", weights_only=False))
    except (OSError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {p}: cannot read {STATE_FILE}: {e}") from e
