"""Held-out evaluation: greedy pass@1, sampled pass@1 and unbiased pass@k, response length.

pass@k uses the estimator of Chen et al. (2021, "Evaluating Large Language Models Trained on
Code"): with ``n`` samples of which ``c`` are correct, ``pass@k = 1 − C(n−c, k) / C(n, k)``, averaged
over problems. It runs during training (iteration 0 = before any update, then every
``eval.every`` iterations and at the end) and as ``empg-eval``. Completions are scored by the run's
reward functions (the verifier by default); a sample counts as correct for pass@k when its reward
is above 0.5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from empg import distributed
from empg.build import Setup, build
from empg.runtime import GROUP_SEED_STRIDE, sampler_group
from empg.sampling import Rollout, Sampler, SamplingParams

Score = Callable[[list[Rollout]], np.ndarray]  # a reward per rollout (a rollout's group = its prompt)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` correct among ``n`` samples (k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), numerically stable
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@dataclass
class EvalRaw:
    """Per-problem results of one evaluation (of all problems, or of one rank's share)."""

    greedy_correct: np.ndarray  # float, per problem (empty when greedy eval is off)
    greedy_lengths: np.ndarray  # completion tokens, per problem
    sampled: np.ndarray  # rewards, problems x samples (0 columns when sampled eval is off)
    sampled_lengths: np.ndarray  # completion tokens, problems x samples
    seconds: float = 0.0

    @staticmethod
    def merge(parts: Sequence["EvalRaw"]) -> "EvalRaw":
        """The problems of several shards as one evaluation (the time is the slowest shard's)."""
        fields = ("greedy_correct", "greedy_lengths", "sampled", "sampled_lengths")
        cat = [np.concatenate([getattr(p, f) for p in parts]) for f in fields]
        return EvalRaw(cat[0], cat[1], cat[2], cat[3], max((p.seconds for p in parts), default=0.0))


def evaluate_raw(sampler: Sampler, prompt_ids: Sequence[Sequence[int]], score: Score, *,
                 stop: Sequence[str], max_new_tokens: int, greedy: bool = True,
                 samples: int = 1, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> EvalRaw:
    """Run the evaluation: greedy and/or ``samples`` sampled completions of every prompt, scored."""
    t0 = time.perf_counter()
    n = len(prompt_ids)
    g_correct: np.ndarray = np.zeros(0)
    g_len: np.ndarray = np.zeros(0)
    s_rewards, s_len = np.zeros((n, 0)), np.zeros((n, 0))
    if greedy:
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=tuple(stop))
        rolls = sampler.generate(prompt_ids, params) if n else []
        g_correct = np.nan_to_num(score(rolls)) if rolls else np.zeros(0)
        g_len = np.array([len(r.completion_ids) for r in rolls], dtype=np.float64)
    if samples > 0:
        params = SamplingParams(n=samples, temperature=temperature, top_p=top_p,
                                max_new_tokens=max_new_tokens, stop=tuple(stop), seed=seed)
        rolls = sampler.generate(prompt_ids, params) if n else []
        rewards = np.nan_to_num(score(rolls)) if rolls else np.zeros(0)
        s_rewards = np.zeros((n, samples))
        s_len = np.zeros((n, samples))
        seen = np.zeros(n, dtype=np.int64)
        for r, x in zip(rolls, rewards):
            s_rewards[r.group, seen[r.group]] = x
            s_len[r.group, seen[r.group]] = len(r.completion_ids)
            seen[r.group] += 1
    return EvalRaw(np.asarray(g_correct, dtype=np.float64), g_len, s_rewards, s_len,
                   time.perf_counter() - t0)


def eval_metrics(raw: EvalRaw, pass_k: Sequence[int] = (1,)) -> dict[str, Any]:
    """The ``eval/`` metrics of an evaluation's per-problem results."""
    n = max(len(raw.greedy_correct), raw.sampled.shape[0])
    out: dict[str, Any] = {"eval/problems": n}
    if len(raw.greedy_correct):
        out["eval/greedy_acc"] = float(raw.greedy_correct.mean())
        out["eval/greedy_length"] = float(raw.greedy_lengths.mean())
    samples = raw.sampled.shape[1]
    if samples > 0 and raw.sampled.size:
        out["eval/sampled_acc"] = float(raw.sampled.mean())
        if samples > 1:
            # Each of the n sample columns is an independent evaluation of the same model: their
            # spread is the noise level a before/after difference must clear.
            per_column = raw.sampled.mean(axis=0)
            out["eval/sampled_acc_spread"] = float(per_column.max() - per_column.min())
        out["eval/sampled_length"] = float(raw.sampled_lengths.mean())
        correct = (raw.sampled > 0.5).sum(axis=1)
        for k in pass_k:
            out[f"eval/pass@{k}"] = float(np.mean([pass_at_k(samples, int(c), k) for c in correct]))
    out["eval/seconds"] = raw.seconds
    return out


def run_eval(s: Setup, limit: int = 0) -> dict[str, Any]:
    """Held-out metrics of the run's current model on its first ``limit`` held-out problems (0 =
    all; {} without held-out rows); under torchrun each sampler group evaluates its share."""
    n = min(limit, len(s.eval)) if limit else len(s.eval)
    if not n:
        return {}
    e, smp = s.cfg.eval, s.cfg.sampling
    group, groups = sampler_group(s)
    lo, hi = distributed.shard_bounds(n, groups, group)
    rows = list(range(lo, hi))
    raw = evaluate_raw(s.sampler, s.eval.prompt_ids[lo:hi], lambda rolls: s.rewards(s.eval.batch(rows, rolls)).total,
                       stop=s.stop, max_new_tokens=e.max_new_tokens or smp.max_new_tokens,
                       greedy=e.greedy, samples=e.samples, temperature=e.temperature, top_p=smp.top_p,
                       seed=s.cfg.train.seed * 7919 + 1 + GROUP_SEED_STRIDE * group)
    parts = distributed.gather(s.dist, raw)[::smp.tensor_parallel_size]  # one copy per sampler group
    return eval_metrics(EvalRaw.merge(parts), e.pass_k)


def main_eval(cfg: Any, checkpoint: str | None = None) -> dict[str, Any]:
    """``empg-eval``: evaluate ``checkpoint`` (or ``cfg.model.name``) on the held-out split."""
    return run_eval(build(cfg, model_path=checkpoint, for_training=False))
