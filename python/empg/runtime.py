"""The plumbing around the EM loop, each job behind one small named function: which prompts a
torchrun rank samples, agreeing on a stop signal, the collective checkpoint, the progress bar and
the console lines. The loop itself (:mod:`empg.em`) reads as the algorithm.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from empg import checkpoint as ckpt
from empg import distributed
from empg.build import Setup
from empg.exceptions import CheckpointError
from empg.signals import GracefulStop

GROUP_SEED_STRIDE = 1_000_003  # sampling seeds of sampler groups lie this far apart


def sampler_group(s: Setup) -> tuple[int, int]:
    """(this rank's sampler group, the number of groups): ranks sharing one tensor-parallel engine
    sample the same prompts; with ``sampling.tensor_parallel_size=1`` a group is one rank."""
    tp = s.cfg.sampling.tensor_parallel_size
    return s.dist.rank // tp, s.dist.world // tp


def my_share(s: Setup, n: int) -> slice:
    """This sampler group's share of ``n`` prompts (the same prompts on every rank of a group)."""
    group, groups = sampler_group(s)
    lo, hi = distributed.shard_bounds(n, groups, group)
    return slice(lo, hi)


def tp_part(s: Setup) -> tuple[int, int]:
    """(this rank's index within its tensor-parallel engine, the engine's ranks)."""
    tp = s.cfg.sampling.tensor_parallel_size
    return s.dist.rank % tp, tp


def next_rows(s: Setup, n: int) -> list[int]:
    """The next ``n`` training rows: a fresh seeded permutation of the data per pass."""
    size = len(s.train)
    rows = []
    for pos in range(s.data_pos, s.data_pos + n):
        order = np.random.default_rng([s.cfg.train.seed, pos // size]).permutation(size)
        rows.append(int(order[pos % size]))
    s.data_pos += n
    return rows


def stop_requested(s: Setup, stop: GracefulStop) -> bool:
    """A stop signal seen by any rank (torchrun forwards it to all, not always at the same step)."""
    stop.requested = distributed.any_true(s.dist, stop.requested)
    return stop.requested


def save(s: Setup) -> Path:
    """A checkpoint of the full weights and optimizer state, written by rank 0 (gathering them is
    a collective: every rank calls this)."""
    weights = distributed.full_state_dict(s.model, rank0_only=True) if s.dist.enabled else None
    optimizer = distributed.optimizer_state(s.model, s.optimizer)
    path, error = None, None
    if s.dist.is_main:
        try:
            path = ckpt.save(Path(s.cfg.log.run_dir) / "checkpoints", s.iteration, s.model, s.tokenizer,
                             optimizer, s.scheduler,
                             {"data_pos": s.data_pos, "bad_steps_in_row": s.guard.in_row},
                             keep_last=s.cfg.checkpoint.keep_last, weights=weights)
        except CheckpointError as e:
            error = str(e)
    path, error = distributed.broadcast(s.dist, (path, error))
    if error is not None:
        raise CheckpointError(error)
    return Path(path)


def save_if_good(s: Setup, it: int) -> None:
    """Checkpoint, unless the last optimizer step had a non-finite loss (the weights are not "good")."""
    if not s.guard.in_row:
        save(s)
    elif s.dist.is_main:
        print(f"empg: warning: no checkpoint at iteration {it}: its last optimizer step "
              "had a non-finite loss or gradient", file=sys.stderr, flush=True)


def last_good(s: Setup) -> str:
    latest = ckpt.latest_complete(Path(s.cfg.log.run_dir) / "checkpoints")
    return f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"


def stop_here(s: Setup, stop: GracefulStop, after: str) -> bool:
    """At a safe point: when a stop was requested, checkpoint and say where (True = stop)."""
    if not stop.requested:
        return False
    latest = distributed.broadcast(s.dist, ckpt.latest_complete(Path(s.cfg.log.run_dir) / "checkpoints"))
    path = latest if latest is not None and latest.name == f"{ckpt.PREFIX}{s.iteration:06d}" \
        else save(s)
    s.say(f"empg: stopped by {stop.signal_name or 'a signal to another rank'} after {after}; checkpoint "
          f"at iteration {s.iteration}: {path} (to continue, run the same command with --resume)")
    return True


def phase(s: Setup, it: int, what: str) -> None:
    """A line per phase when there is no progress bar (long runs logged to a file)."""
    if not s.cfg.log.progress:
        s.say(f"empg: iteration {it}: {what}")


def fmt(m: dict[str, Any]) -> str:
    return ", ".join(f"{k.removeprefix('eval/')}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in m.items())


def progress_bar(s: Setup) -> Any:
    from tqdm.auto import tqdm

    cfg = s.cfg
    return tqdm(total=cfg.train.iterations, initial=s.iteration, desc=f"empg {cfg.train.algo}",
                unit="it", disable=not (cfg.log.progress and s.dist.is_main), dynamic_ncols=True)


def progress_fields(row: dict[str, Any], mst: dict[str, float]) -> dict[str, Any]:
    """The progress bar's numbers for one iteration. When every group was dropped (all K rewards
    of each prompt equal) the M-step took no step: the bar says so instead of ``loss=nan``."""
    out: dict[str, Any] = {"reward": f"{row['reward/mean']:.2f}"}
    if mst.get("steps", 0.0) > 0:
        out["loss"] = f"{mst['loss']:.3f}"
    elif row["groups/kept"] == 0:
        out["mstep"] = "skipped: all groups dropped (equal rewards)"
    else:
        out["mstep"] = f"skipped: {int(mst.get('skipped_steps', 0))} non-finite steps"
    out["len"] = f"{row['length/mean']:.0f}"
    out["dropped"] = int(row["groups/dropped"])
    return out


def print_samples(s: Setup, rollouts: list[Any], rewards: Any) -> None:
    if not s.dist.is_main:
        return
    for r, x in list(zip(rollouts, rewards))[: s.cfg.log.samples_to_print]:
        print(f"  [reward {x:.2f}] {r.text!r}", flush=True)


__all__ = ["GROUP_SEED_STRIDE", "fmt", "last_good", "my_share", "next_rows", "phase", "print_samples",
           "progress_bar", "progress_fields", "sampler_group", "save", "save_if_good", "stop_here",
           "stop_requested", "tp_part"]
