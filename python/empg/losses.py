"""The M-step objectives, in one registry: ``LOSSES[algo]``.

Both losses see the same per-token view of a micro-batch (:class:`TokenBatch`): the new log-probs
of the completion tokens (with gradient), the per-token weight (EM weight ``w_i`` or GRPO advantage
``A_i``, both from :func:`empg.group_weights`), and a normaliser coefficient per token. The
coefficients are computed over the whole optimizer step (all its micro-batches) by
:func:`normaliser_coefficients`, so a loss is a plain sum ``Σ_t coef_t · ℓ_t`` and summing it over
micro-batches gives the step's loss exactly, whatever the packing.

* ``empg``  — ``ℓ_t = −w · log π_θ(z_t)``: the weighted log-likelihood of EM Policy Gradient, with
  NO importance ratio and NO clipping (the samples are off-policy after the first step; the EM
  bound justifies it).
* ``grpo``  — ``ℓ_t = −min(ρ_t A, clip(ρ_t, 1−ε, 1+ε) A)`` with ``ρ_t = π_θ/π_old`` per token.

**Which temperature the log-probs use** (:func:`logprob_temperature`). GRPO's ratio compares the
policy that *sampled*: its log-probs (new, old and reference) are taken at the sampling temperature
T, ``log softmax(logits / T)``, as TRL does. EM-PG's M-step fits the model itself: the likelihood is
at T = 1, the distribution greedy decoding and any later sampling temperature start from; the
sampling temperature only shapes the E-step's proposal (which rationales get drawn and weighted).

Both add ``β · k3`` when ``kl_beta > 0``: ``k3 = exp(r) − r − 1`` with ``r = log π_ref − log π_θ``
(Schulman's unbiased, non-negative KL estimator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class TokenBatch:
    """The completion tokens of one micro-batch, flattened in sequence order."""

    logp: torch.Tensor  # log π_θ(z_t | ...) of each completion token, with grad
    weight: torch.Tensor  # the sequence's weight (empg) or advantage (grpo), per token
    coef: torch.Tensor  # normaliser coefficient per token (over the whole optimizer step)
    old_logp: torch.Tensor | None = None  # log π_old, recorded after the E-step (grpo)
    ref_logp: torch.Tensor | None = None  # log π_ref of the frozen reference (kl_beta > 0)


@dataclass(frozen=True)
class LossParams:
    kl_beta: float = 0.0
    clip_eps: float = 0.2


LossOut = tuple[torch.Tensor, dict[str, float]]


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ || π_ref) at samples from π_θ (exact gradients of it)."""
    r = ref_logp - logp
    return torch.exp(r) - r - 1.0


def _with_kl(tok: TokenBatch, per_token: torch.Tensor, p: LossParams, stats: dict[str, float]) -> LossOut:
    if p.kl_beta > 0:
        if tok.ref_logp is None:
            raise ValueError("kl_beta > 0 needs ref_logp (reference log-probs)")
        kl = k3_kl(tok.logp, tok.ref_logp)
        per_token = per_token + p.kl_beta * kl
        stats["kl"] = float((tok.coef * kl.detach()).sum())
    return (tok.coef * per_token).sum(), stats


def empg_loss(tok: TokenBatch, p: LossParams) -> LossOut:
    """EM M-step: reward-weighted negative log-likelihood, no ratio, no clip."""
    per_token = -tok.weight * tok.logp
    return _with_kl(tok, per_token, p, {})


def grpo_loss(tok: TokenBatch, p: LossParams) -> LossOut:
    """GRPO's clipped surrogate per token."""
    if tok.old_logp is None:
        raise ValueError("grpo needs old_logp (log-probs recorded after the E-step)")
    ratio = torch.exp(tok.logp - tok.old_logp)
    clipped = torch.clamp(ratio, 1.0 - p.clip_eps, 1.0 + p.clip_eps)
    per_token = -torch.minimum(ratio * tok.weight, clipped * tok.weight)
    with torch.no_grad():
        was_clipped = (ratio * tok.weight > clipped * tok.weight).float()
        stats = {"clip_frac": float((tok.coef * was_clipped).sum()),
                 "ratio_max": float(ratio.max()) if ratio.numel() else 1.0}
    return _with_kl(tok, per_token, p, stats)


@dataclass(frozen=True)
class Loss:
    fn: Callable[[TokenBatch, LossParams], LossOut]
    needs_old_logp: bool
    at_sampling_temperature: bool  # log-probs at the sampling temperature (else at T = 1)


LOSSES: dict[str, Loss] = {
    "empg": Loss(empg_loss, needs_old_logp=False, at_sampling_temperature=False),
    "grpo": Loss(grpo_loss, needs_old_logp=True, at_sampling_temperature=True),
}


def logprob_temperature(algo: str, sampling_temperature: float) -> float:
    """The temperature of the M-step's log-probs under ``algo`` (see the module docstring)."""
    if LOSSES[algo].at_sampling_temperature and sampling_temperature > 0:
        return sampling_temperature
    return 1.0


def normaliser_coefficients(completion_lens: np.ndarray, normalize: str) -> np.ndarray:
    """Per-sequence coefficient for each token of the sequences of ONE optimizer step.

    ``token``: ``1 / Σ_i |z_i|`` (every token counts the same); ``sequence``: ``1 / N_seq`` (each
    sequence's summed log-likelihood counts the same, the ``Σ_i w_i Σ_t log π / N`` of docs/algorithm.md).
    """
    lens = np.asarray(completion_lens, dtype=np.float64)
    if normalize == "token":
        total = lens.sum()
        return np.full(len(lens), 1.0 / total if total > 0 else 0.0)
    if normalize == "sequence":
        return np.full(len(lens), 1.0 / len(lens) if len(lens) else 0.0)
    raise ValueError(f"normalize must be 'token' or 'sequence', got {normalize!r}")
