"""Guards against the faults of long runs on shared machines (see ``docs/reliability.md``).

* :func:`check_run_dir` — the run directory must be writable before any model loads, so a typo'd
  or read-only path fails in a second, not after the first hour.
* :class:`BadStepGuard` — an optimizer step whose loss or gradient norm is NaN/inf is skipped (and
  logged); ``max_bad`` of them in a row stop the run with :class:`TrainingError`, since the
  weights or the data are then broken and more steps would only burn machine time.
* :func:`pause_point` — a TEST HOOK, inert unless ``$EMPG_TEST_PAUSE_AT`` names the point: there
  it prints a line to stderr and sleeps, so a test can SIGKILL the process at an exact spot (e.g.
  half-way through a checkpoint write). Never set it in a real run.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from empg.exceptions import ConfigError, TrainingError

PAUSE_ENV = "EMPG_TEST_PAUSE_AT"


def check_run_dir(run_dir: str | Path, key: str = "log.run_dir") -> Path:
    """Create ``run_dir`` (and its ``checkpoints/``) and prove a file can be written and synced
    there; raise :class:`ConfigError` naming ``key`` and the OS reason otherwise."""
    path = Path(run_dir).expanduser()
    probe = path / "checkpoints" / f".write-probe-{os.getpid()}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as f:
            f.write(b"empg")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(f"config key {key!r}: the run directory {str(path)!r} is not writable "
                          f"({reason}: {e.filename or path}); choose a writable directory") from None
    return path


class BadStepGuard:
    """Counts optimizer steps with a non-finite loss or gradient norm, in a row across M-steps."""

    def __init__(self, max_bad: int = 3, in_row: int = 0) -> None:
        self.max_bad = max_bad
        self.in_row = in_row  # kept in checkpoints, so a resume does not reset the count
        self.total = 0

    def step_ok(self, loss: float, grad_norm: float, where: str = "") -> bool:
        """True when the step may be taken; False (logged) to skip it. Raises
        :class:`TrainingError` on the ``max_bad``-th bad step in a row."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.in_row = 0
            return True
        self.in_row += 1
        self.total += 1
        print(f"empg: warning: {where + ': ' if where else ''}non-finite loss={loss} or "
              f"grad_norm={grad_norm}; optimizer step skipped ({self.in_row} in a row, the run stops "
              f"at train.max_bad_steps={self.max_bad})", file=sys.stderr, flush=True)
        if self.in_row >= self.max_bad:
            raise TrainingError(
                f"{self.in_row} optimizer steps in a row had a non-finite loss or gradient "
                f"(last: loss={loss}, grad_norm={grad_norm}); the weights or the learning rate are "
                "broken (try a lower train.lr or check the data)")
        return False


def report_skipped_rows(reports: Sequence[Any]) -> dict[str, float]:
    """Print the rows ``data.skip_bad_rows=true`` skipped (file, row, reason of the first ones)
    and return their count for the metrics (``data/skipped_rows``)."""
    total = 0
    seen: set[str] = set()
    for r in reports:
        if not r.skipped or r.path in seen:  # train and eval read from one file: count it once
            continue
        seen.add(r.path)
        total += len(r.skipped)
        first = "; ".join(f"row {no}: {why}" for no, why in r.skipped[:3])
        more = f"; and {len(r.skipped) - 3} more" if len(r.skipped) > 3 else ""
        print(f"empg: data: skipped {len(r.skipped)} bad rows of {r.path} ({first}{more})",
              file=sys.stderr, flush=True)
    return {"data/skipped_rows": float(total)}


def check_token_budget(cfg: Any, prompts: Sequence[Sequence[int]]) -> None:
    """A prompt plus its completion must fit one micro-batch: raise :class:`ConfigError` naming
    ``train.token_budget`` when the longest prompt + ``sampling.max_new_tokens`` does not."""
    longest = max((len(p) for p in prompts), default=0)
    need = longest + cfg.sampling.max_new_tokens
    if need > cfg.train.token_budget:
        raise ConfigError(
            f"config key 'train.token_budget': {cfg.train.token_budget} is below the longest prompt "
            f"({longest} tokens) + sampling.max_new_tokens ({cfg.sampling.max_new_tokens}) = {need}")


_NONFINITE = re.compile(r"\b(nan|inf)\b", re.IGNORECASE)


def is_nonfinite_error(e: BaseException) -> bool:
    """Whether a torch error is about NaN/inf values (e.g. ``torch.multinomial`` on the
    probabilities of a diverged model: "probability tensor contains either `inf`, `nan` ...")."""
    return bool(_NONFINITE.search(str(e)))


def use_config_lr(optimizer: Any, scheduler: Any, lr: float) -> None:
    """After loading a checkpoint's optimizer and scheduler (which carry the OLD learning rate),
    make ``train.lr`` of the current config the base rate, keeping the schedule's position: a user
    who resumes with a lower lr after a collapse gets it (and is told)."""
    old = list(scheduler.base_lrs)
    if all(b == lr for b in old):
        return
    scheduler.base_lrs = [lr for _ in old]
    for group, fn in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["initial_lr"] = lr
        group["lr"] = lr * fn(scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    print(f"empg: train.lr changed on resume: {old[0]:g} -> {lr:g}", flush=True)


def pause_point(name: str, detail: str = "") -> None:
    """TEST HOOK (inert by default): sleep here when ``$EMPG_TEST_PAUSE_AT`` equals ``name`` or
    ``name:detail`` (e.g. ``checkpoint-before-marker:iter-000002``)."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted or wanted not in (name, f"{name}:{detail}"):
        return
    print(f"empg-test: paused at {name}:{detail} (pid {os.getpid()})", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("EMPG_TEST_PAUSE_SECONDS", "60")))


__all__ = ["BadStepGuard", "PAUSE_ENV", "check_run_dir", "check_token_budget", "pause_point",
           "report_skipped_rows"]
