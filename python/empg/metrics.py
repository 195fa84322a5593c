"""Run metrics: an E-step's rollout statistics, counts of reasoning behaviours in the sampled
rationales, and reading ``metrics.jsonl`` back (written by :class:`empg.trackers.RunLogger`).

Behaviours (the paper reports that EM-PG-trained models show them) are counted as the share of
completions that match simple phrase patterns (counted by the Rust core over all texts in one
parallel call; patterns in ``docs/behaviours.md``) — a cheap signal to watch, not a classifier:

* ``decomposition``: splitting into steps or sub-problems ("first", "then", "next", "step 2",
  "finally", "break it down", "sub-problem", "let's compute ... first");
* ``verification``: checking a result ("check", "verify", "double-check", "confirm", "let me
  make sure", "plug back");
* ``backtracking``: revising a line of reasoning ("wait", "actually", "let me reconsider /
  recompute / redo", "I made a mistake", "that's wrong", "instead").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from empg import _core

BEHAVIOURS: dict[str, str] = dict(_core.BEHAVIOURS)  # name -> pattern (Rust ``regex``), docs/behaviours.md


def behaviour_counts(texts: Sequence[str]) -> dict[str, int]:
    """How many of ``texts`` match each behaviour pattern (one parallel call into the core)."""
    return _core.behaviour_counts(list(texts))


@dataclass
class RolloutSummary:
    """The raw numbers behind an E-step's metrics, so that the metrics of several ranks' E-steps
    are computed from their union (:meth:`merge`) exactly as one process would compute them."""

    rewards: np.ndarray  # per completion
    lengths: np.ndarray  # completion tokens, per completion
    truncated: np.ndarray  # bool, per completion: stopped by max_new_tokens
    solved: np.ndarray  # per group: share of its completions with reward 1
    dropped: np.ndarray  # bool, per group: zero signal, not trained on
    behaviours: dict[str, int]  # completions matching each behaviour pattern
    times: dict[str, float]  # seconds per phase

    @staticmethod
    def of(rewards: ArrayLike, lengths: ArrayLike, truncated: ArrayLike, solved: ArrayLike,
           dropped: ArrayLike, texts: Sequence[str], times: dict[str, float]) -> "RolloutSummary":
        return RolloutSummary(np.asarray(rewards, dtype=np.float64), np.asarray(lengths, dtype=np.float64),
                              np.asarray(truncated, dtype=bool), np.asarray(solved, dtype=np.float64),
                              np.asarray(dropped, dtype=bool), behaviour_counts(texts), dict(times))

    @staticmethod
    def merge(parts: Sequence["RolloutSummary"]) -> "RolloutSummary":
        """Several ranks' summaries as one (phase times: the slowest rank's, as it sets the pace)."""
        cat = {f: np.concatenate([getattr(p, f) for p in parts])
               for f in ("rewards", "lengths", "truncated", "solved", "dropped")}
        return RolloutSummary(**cat, behaviours={k: sum(p.behaviours[k] for p in parts) for k in BEHAVIOURS},
                              times={k: max(p.times[k] for p in parts) for k in parts[0].times})

    def stats(self) -> dict[str, float]:
        n = max(len(self.rewards), 1)
        g = max(len(self.solved), 1)
        return {
            "reward/mean": float(self.rewards.sum() / n),
            "reward/solve_rate_per_group": float(self.solved.sum() / g),
            "reward/groups_all_solved": float((self.solved == 1).sum() / g),
            "reward/groups_none_solved": float((self.solved == 0).sum() / g),
            "groups/dropped": float(self.dropped.sum()),
            "groups/kept": float((~self.dropped).sum()),
            "length/mean": float(self.lengths.sum() / n),
            "length/max": float(self.lengths.max()) if len(self.lengths) else 0.0,
            "length/truncated_share": float(self.truncated.sum() / n),
            **{f"time/{k}": v for k, v in self.times.items()},
            "tokens/sampled": float(self.lengths.sum()),
            **{f"behaviour/{k}": c / n for k, c in self.behaviours.items()},
        }


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (the last record wins for a repeated iteration and kind,
    e.g. after a resume)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        seen[(r.get("iteration"), r.get("kind"))] = r
    return list(seen.values())
