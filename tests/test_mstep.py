"""The packed M-step forward equals per-sequence forwards; one M-step moves likelihoods the right way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empg.losses import LossParams
from empg.mstep import MStepSettings, Samples, m_step, make_optimizer, make_scheduler, score


def _random_samples(n: int, seed: int, vocab: int = 500) -> Samples:
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(3, vocab, rng.integers(2, 9)).tolist() for _ in range(n)]
    completions = [rng.integers(3, vocab, rng.integers(1, 12)).tolist() for _ in range(n)]
    weights = rng.normal(size=n).astype(np.float32)
    return Samples.from_tokens(prompts, completions, weights)


def _separate_logprobs(model, samples: Samples) -> list[np.ndarray]:
    """Reference: each sequence alone, full forward, log_softmax, gather."""
    out = []
    for i in range(len(samples)):
        a, b = samples.flat.offsets[i], samples.flat.offsets[i + 1]
        ids = torch.from_numpy(samples.flat.tokens[a:b])[None]
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0].float()
        lp = torch.log_softmax(logits[:-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        out.append(lp[samples.prompt_lens[i] - 1:].numpy())
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logprobs_equal_separate_forwards(attn):
    from empg.models import load_model

    model = load_model("tiny-llama", seed=1, attn=attn).eval()
    samples = _random_samples(9, seed=0)
    # A small budget forces several micro-batches, each holding several sequences.
    packed = score(model, samples, token_budget=48)
    separate = _separate_logprobs(model, samples)
    for i, (p, s) in enumerate(zip(packed, separate)):
        assert p.shape == s.shape == (samples.completion_lens[i],)
        np.testing.assert_allclose(p, s, atol=2e-5, err_msg=f"sequence {i}")


def test_packing_without_boundaries_would_differ():
    """Guard: the check above is sensitive — positions that do not restart change log-probs."""
    from empg.mstep import token_logprobs
    from empg.core import build_microbatch

    model = __import__("empg.models", fromlist=["load_model"]).load_model("tiny-llama", seed=1).eval()
    s = _random_samples(3, seed=2)
    mb = build_microbatch(s.flat.tokens, s.flat.offsets, s.prompt_lens, s.weights, np.arange(3))
    ids = torch.from_numpy(mb["input_ids"])
    mask = torch.from_numpy(mb["loss_mask"])
    with torch.no_grad():
        good = token_logprobs(model, ids, torch.from_numpy(mb["position_ids"]), mask)
        bad = token_logprobs(model, ids, torch.arange(len(ids)), mask)
    n0 = int(s.completion_lens[0])
    torch.testing.assert_close(good[:n0], bad[:n0], atol=2e-5, rtol=0)  # first sequence: same
    assert (good[n0:] - bad[n0:]).abs().max() > 1e-3  # later ones see the earlier sequences


def test_one_m_step_moves_likelihoods_by_sign_of_weight():
    from empg.models import load_model

    model = load_model("tiny-llama", seed=3)
    samples = _random_samples(8, seed=4)
    samples.weights = np.array([1, -1] * 4, dtype=np.float32)
    before = [lp.sum() for lp in score(model, samples, token_budget=64)]
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999))
    sched = make_scheduler(opt, warmup_steps=0, schedule="constant", total_steps=1)
    stats = m_step(model, opt, sched, samples,
                   MStepSettings(algo="empg", mini_batch_size=8, token_budget=64, loss=LossParams()),
                   np.random.default_rng(0))
    assert stats["steps"] == 1 and np.isfinite(stats["grad_norm"])
    after = [lp.sum() for lp in score(model, samples, token_budget=64)]
    for i, w in enumerate(samples.weights):
        if w > 0:
            assert after[i] > before[i], f"positive sequence {i}: {before[i]} -> {after[i]}"
        else:
            assert after[i] < before[i], f"negative sequence {i}: {before[i]} -> {after[i]}"
