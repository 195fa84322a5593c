"""Where a run's metrics go: ``metrics.jsonl`` always, plus the trackers named in ``log.report_to``.

A tracker is anything with ``log(step, metrics)`` and ``close()`` (:class:`Tracker`); the built-in
ones are ``tensorboard`` (``<run_dir>/tb``) and ``wandb`` (optional: ``pip install wandb``; set
``WANDB_MODE=offline`` to write the run under ``<run_dir>/wandb`` with no account or network).
:class:`RunLogger` writes the JSONL file and fans every record out to the trackers, on rank 0 only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from empg.exceptions import ConfigError


class Tracker(Protocol):
    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class TensorBoardTracker:
    def __init__(self, run_dir: Path, config: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, run_dir: Path, config: Mapping[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError("config key 'log.report_to': wandb is not installed "
                              "(pip install wandb, or leave it out of log.report_to)") from None
        project = str(config.get("log", {}).get("wandb_project") or "empg")
        self.run = wandb.init(project=project, name=run_dir.name, dir=str(run_dir), config=dict(config),
                              reinit="finish_previous")

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


TRACKERS: dict[str, Callable[[Path, Mapping[str, Any]], Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "wandb": WandbTracker,
}


class RunLogger:
    """Appends metrics to ``<run_dir>/metrics.jsonl`` and hands their finite scalars to the trackers."""

    def __init__(self, run_dir: str | Path, *, report_to: Sequence[str] = ("tensorboard",),
                 enabled: bool = True, config: Mapping[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.enabled = enabled  # False on every torchrun rank but 0
        self.trackers: list[Tracker] = []
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in report_to:
            if name not in TRACKERS:
                raise ConfigError(f"config key 'log.report_to': {name!r} is not one of {sorted(TRACKERS)}")
            self.trackers.append(TRACKERS[name](self.run_dir, config or {}))

    def log(self, iteration: int, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"iteration": iteration, **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        scalars = {k: float(v) for k, v in record.items() if k != "iteration" and isinstance(v, (int, float))
                   and not isinstance(v, bool) and math.isfinite(v)}
        for t in self.trackers:
            t.log(iteration, scalars)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


__all__ = ["TRACKERS", "RunLogger", "TensorBoardTracker", "Tracker", "WandbTracker"]
