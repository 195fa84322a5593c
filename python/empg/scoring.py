"""Scoring sampled completions: the Rust verifier by default, or reward functions written for TRL.

A reward function is any callable with the calling convention of TRL's ``GRPOTrainer``::

    def reward(prompts, completions, completion_ids, **kwargs) -> list[float | None]

called by keyword with one entry per completion in every list: ``prompts`` (the row's prompt: the
rendered text, or the row's message list for a conversational row), ``completions`` (the text, or
``[{"role": "assistant", "content": text}]`` for a conversational row, as TRL passes them),
``completion_ids`` (token ids) and every other column of the dataset (``answer``, ...). ``None``
means "no reward for this completion" (the function does not apply to it).

Several functions combine as TRL's default (``sum_then_normalize``) does: the reward of a completion
is ``Σ_i w_i r_i`` over the functions that returned a number for it (``reward.weights``, default 1
each); a completion no function scored is *unscored*: it gets no weight in the M-step and does not
count in its group's baseline. The group normalisation (``train.scheme``) then applies to the sum.

A function that raises, returns a list of the wrong length, or returns NaN/inf, raises
:class:`RewardError` naming the function and the dataset row. Built-ins, by name in
``reward.funcs``: ``verifier`` (the exact verifier against the reference column, batched in Rust:
the default) and ``format`` (1.0 when the completion matches ``reward.format_pattern``, by default
reasoning in ``<think>…</think>`` before an answer). Anything else is an import path,
``package.module:function``.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from empg.exceptions import ConfigError, RewardError

RewardFunc = Callable[..., Any]  # returns one float | None per completion (a list or an array)

#: The default of ``reward.format_pattern``: reasoning inside ``<think>…</think>``, then an answer.
THINK_PATTERN = r"^\s*<think>.+?</think>\s*\S"


@dataclass
class Batch:
    """What the reward functions see for one set of completions (one entry per completion)."""

    prompts: list[Any]
    completions: list[Any]
    completion_ids: list[list[int]]
    columns: dict[str, list[Any]]  # every other dataset column
    rows: list[str]  # the dataset row of each completion (for error messages)

    def __len__(self) -> int:
        return len(self.completions)

    def kwargs(self, index: Sequence[int] | None = None) -> dict[str, Any]:
        pick = (lambda xs: list(xs)) if index is None else (lambda xs: [xs[i] for i in index])
        return {"prompts": pick(self.prompts), "completions": pick(self.completions),
                "completion_ids": pick(self.completion_ids),
                **{k: pick(v) for k, v in self.columns.items()}}


def regex_reward(pattern: str, name: str = "format") -> RewardFunc:
    """A reward function (TRL convention): 1.0 where the completion's text matches ``pattern``
    from its start (``re.DOTALL``), else 0.0."""
    from empg.rewards import completion_text

    try:
        rx = re.compile(pattern, re.DOTALL)
    except re.error as e:
        raise ConfigError(f"config key 'reward.format_pattern': {pattern!r} is not a valid regex ({e})") from None

    def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return [1.0 if rx.match(completion_text(c)) else 0.0 for c in completions]

    format_reward.__name__ = name
    return format_reward


def verifier_reward(reference_column: str = "answer", style: str = "auto") -> RewardFunc:
    """The exact verifier as a reward function: 1.0 where the completion's final answer equals
    the ``reference_column`` entry (one batched Rust call)."""
    from empg.rewards import combined_reward

    def verifier(completions: Sequence[Any], **columns: Any) -> np.ndarray:
        return combined_reward(completions, columns[reference_column], style=style)

    return verifier


def verify_rollouts(answers: Sequence[str], style: str = "auto") -> Callable[[Sequence[Any]], Scores]:
    """A scorer of rollouts (``rollout.group`` indexes ``answers``) by the verifier alone, for code
    that drives :func:`empg.em.e_step` with bare reference answers (the benchmarks)."""
    from empg.verify import verify_batch

    def scorer(rollouts: Sequence[Any]) -> Scores:
        got = verify_batch([r.text for r in rollouts], [answers[r.group] for r in rollouts], style=style)
        return Scores(np.asarray(got, dtype=np.float64))

    return scorer


def import_reward(spec: str) -> RewardFunc:
    """The function at ``package.module:function`` (or ``package.module.function``)."""
    module, sep, attr = spec.partition(":")
    if not sep:
        module, _, attr = spec.rpartition(".")
    if not module or not attr:
        raise ConfigError(f"config key 'reward.funcs': {spec!r} is not 'verifier', 'format' or an "
                          "import path 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"config key 'reward.funcs': cannot import {module!r} for {spec!r} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"config key 'reward.funcs': module {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"config key 'reward.funcs': {spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def func_name(f: Any) -> str:
    return str(getattr(f, "__name__", None) or type(f).__name__)


@dataclass
class Scores:
    """A batch's rewards: the combined reward (NaN = unscored) and each function's values."""

    total: np.ndarray
    per_func: dict[str, np.ndarray] = field(default_factory=dict)  # NaN where it returned None

    @staticmethod
    def merge(parts: Sequence["Scores"]) -> "Scores":
        """Several ranks' scores as one batch (their completions in rank order)."""
        return Scores(np.concatenate([p.total for p in parts]),
                      {k: np.concatenate([p.per_func[k] for p in parts]) for k in parts[0].per_func})

    def stats(self) -> dict[str, float]:
        """``reward/<name>`` means (over the completions it scored) and the unscored count."""
        out = {f"reward/{k}": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
               for k, v in self.per_func.items()} if len(self.per_func) > 1 else {}
        return {**out, "reward/unscored": float(np.isnan(self.total).sum())}


class Rewards:
    """Reward functions with weights, called on a :class:`Batch` (see the module docstring)."""

    def __init__(self, funcs: Sequence[RewardFunc], weights: Sequence[float] | None = None) -> None:
        if not funcs:
            raise ConfigError("config key 'reward.funcs': at least one reward function is needed")
        if weights is not None and len(weights) and len(weights) != len(funcs):
            raise ConfigError(f"config key 'reward.weights': {len(weights)} weights for "
                              f"{len(funcs)} reward functions")
        self.funcs = list(funcs)
        self.weights = [float(w) for w in weights] if weights is not None and len(weights) else [1.0] * len(funcs)
        names = [func_name(f) for f in self.funcs]
        self.names = [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]

    def __call__(self, batch: Batch) -> Scores:
        n = len(batch)
        per = {name: self._call_one(f, name, batch) for f, name in zip(self.funcs, self.names)}
        if n == 0:
            return Scores(np.zeros(0), per)
        stacked = np.stack([per[k] for k in self.names])  # functions x completions
        weighted = stacked * np.asarray(self.weights)[:, None]
        total = np.where(np.isnan(stacked).all(axis=0), np.nan, np.nansum(weighted, axis=0))
        return Scores(total, per)

    @staticmethod
    def _call_one(f: RewardFunc, name: str, batch: Batch) -> np.ndarray:
        n = len(batch)
        if n == 0:
            return np.zeros(0)
        try:
            out = f(**batch.kwargs())
        except Exception as e:
            raise RewardError(f"reward function {name!r} raised {type(e).__name__}: {e} "
                              f"({_failing_row(f, batch)})") from e
        if isinstance(out, np.ndarray) and out.dtype.kind == "f" and out.shape == (n,):
            if np.isfinite(out).all():  # the batched verifier: no per-row work
                return out.astype(np.float64)
        try:
            values = list(out)
        except TypeError:
            raise RewardError(f"reward function {name!r} returned {type(out).__name__}, not a list "
                              f"of {n} numbers (one per completion)") from None
        if len(values) != n:
            raise RewardError(f"reward function {name!r} returned {len(values)} values for {n} "
                              f"completions (rows {batch.rows[0]} .. {batch.rows[-1]}); it must "
                              "return one value per completion")
        arr = np.full(n, np.nan)
        for i, v in enumerate(values):
            if v is None:
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise RewardError(f"reward function {name!r} returned {v!r} for {batch.rows[i]} "
                                  f"(completion {i}); expected a number or None") from None
            if not math.isfinite(x):
                raise RewardError(f"reward function {name!r} returned {x} for {batch.rows[i]} "
                                  f"(completion {i}); use None for 'no reward', not NaN/inf")
            arr[i] = x
        return arr


def _failing_row(f: RewardFunc, batch: Batch) -> str:
    """Where a call that raised fails: the first completion that raises on its own."""
    for i in range(len(batch)):
        try:
            f(**batch.kwargs([i]))
        except Exception:
            return f"first failing: {batch.rows[i]}, completion {i}"
    return f"on the batch of {len(batch)} completions ({batch.rows[0]} .. {batch.rows[-1]}); no single row raises alone"


def make_rewards(specs: Sequence[str | RewardFunc], weights: Sequence[float] | None, *,
                 reference_column: str = "answer", style: str = "auto",
                 format_pattern: str = THINK_PATTERN) -> Rewards:
    """:class:`Rewards` from names, import paths or callables; none = the verifier alone."""
    funcs: list[RewardFunc] = []
    for s in specs or ["verifier"]:
        if callable(s):
            funcs.append(s)
        elif s == "verifier":
            funcs.append(verifier_reward(reference_column, style))
        elif s == "format":
            funcs.append(regex_reward(format_pattern))
        else:
            funcs.append(import_reward(s))
    return Rewards(funcs, weights)


def uses_verifier(specs: Sequence[str | RewardFunc]) -> bool:
    return not specs or "verifier" in [s for s in specs if isinstance(s, str)]


__all__ = ["THINK_PATTERN", "Batch", "RewardError", "RewardFunc", "Rewards", "Scores", "import_reward",
           "make_rewards", "regex_reward", "uses_verifier", "verifier_reward", "verify_rollouts"]
