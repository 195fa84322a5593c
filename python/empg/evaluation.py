"""Held-out evaluation: greedy pass@1, sampled pass@1 and unbiased pass@k, response length.

pass@k uses the estimator of Chen et al. (2021, "Evaluating Large Language Models Trained on
Code"): with ``n`` samples of which ``c`` are correct, ``pass@k = 1 − C(n−c, k) / C(n, k)``, averaged
over problems. It runs during training (iteration 0 = before any update, then every
``eval.every`` iterations and at the end) and as ``empg-eval``.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from empg.sampling import Sampler, SamplingParams
from empg.verify import verify_batch


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` correct among ``n`` samples (k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), numerically stable
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def evaluate(sampler: Sampler, prompt_ids: Sequence[Sequence[int]], answers: Sequence[str], *,
             stop: Sequence[str], max_new_tokens: int, style: str = "auto", greedy: bool = True,
             samples: int = 1, temperature: float = 1.0, top_p: float = 1.0,
             pass_k: Sequence[int] = (1,), seed: int = 0) -> dict[str, Any]:
    """Metrics of the sampler's current model on held-out prompts (keys prefixed ``eval/``)."""
    out: dict[str, Any] = {"eval/problems": len(prompt_ids)}
    t0 = time.perf_counter()
    if greedy:
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=tuple(stop))
        rolls = sampler.generate(prompt_ids, params)
        rewards = verify_batch([r.text for r in rolls], [answers[r.group] for r in rolls], style=style)
        out["eval/greedy_acc"] = float(rewards.mean()) if len(rewards) else 0.0
        out["eval/greedy_length"] = float(np.mean([len(r.completion_ids) for r in rolls])) if rolls else 0.0
    if samples > 0:
        params = SamplingParams(n=samples, temperature=temperature, top_p=top_p,
                                max_new_tokens=max_new_tokens, stop=tuple(stop), seed=seed)
        rolls = sampler.generate(prompt_ids, params)
        rewards = verify_batch([r.text for r in rolls], [answers[r.group] for r in rolls], style=style)
        correct = np.zeros(len(prompt_ids), dtype=np.int64)
        for r, x in zip(rolls, rewards):
            correct[r.group] += int(x > 0.5)
        out["eval/sampled_acc"] = float(rewards.mean()) if len(rewards) else 0.0
        if samples > 1 and len(rewards):
            # Each of the n sample columns is an independent evaluation of the same model: their
            # spread is the noise level a before/after difference must clear.
            per_column = rewards.reshape(len(prompt_ids), samples).mean(axis=0)
            out["eval/sampled_acc_spread"] = float(per_column.max() - per_column.min())
        out["eval/sampled_length"] = float(np.mean([len(r.completion_ids) for r in rolls])) if rolls else 0.0
        for k in pass_k:
            out[f"eval/pass@{k}"] = float(np.mean([pass_at_k(samples, int(c), k) for c in correct]))
    out["eval/seconds"] = time.perf_counter() - t0
    return out


def main_eval(cfg: Any, checkpoint: str | None = None) -> dict[str, Any]:
    """``empg-eval``: evaluate ``checkpoint`` (or ``cfg.model.name``) on the held-out split."""
    from empg import em

    setup = em.setup(cfg, model_path=checkpoint, for_training=False)
    return em.run_eval(setup, iteration=0)
