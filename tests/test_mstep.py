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


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_horizon_follows_the_steps_taken(schedule):
    """Zero-signal groups are dropped before the M-step, so M-steps take fewer optimizer steps than
    the run's upper bound; the schedule still ends at 0 right after the last M-step's last step,
    decreasing all along, and a checkpointed scheduler keeps its horizon."""
    import tiny_models
    from empg.mstep import num_steps

    torch.set_num_threads(1)
    model = tiny_models.tiny_llama(seed=0)
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999))
    settings = MStepSettings(algo="empg", mini_batch_size=2, token_budget=64, loss=LossParams())
    sizes = [8, 5, 0, 3]  # sequences left per iteration after dropping zero-signal groups (of 8)
    most = num_steps(8, settings.mini_batch_size, settings.epochs)
    sched = make_scheduler(opt, warmup_steps=2, schedule=schedule, total_steps=len(sizes) * most,
                           iterations=len(sizes))
    lrs: list[float] = []
    for it, n in enumerate(sizes):
        samples = _random_samples(n, seed=it, vocab=60) if n else Samples.from_tokens([], [], np.zeros(0))
        stats = m_step(model, opt, sched, samples, settings, np.random.default_rng(it),
                       on_step=lambda _: lrs.append(opt.param_groups[0]["lr"]))
        assert stats["steps"] == num_steps(n, 2, 1)
        if it == 1:  # a checkpoint here: the resumed scheduler has the same horizon
            fresh = make_scheduler(opt, warmup_steps=2, schedule=schedule, total_steps=1)
            fresh.load_state_dict(sched.state_dict())
            assert vars(fresh.lr_lambdas[0]) == vars(sched.lr_lambdas[0])
    taken = sum(num_steps(n, 2, 1) for n in sizes)
    assert len(lrs) == taken < len(sizes) * most
    assert lrs[-1] == 0.0  # the end value, reached at the last iteration
    assert all(lr > 0 for lr in lrs[:-1])  # every step taken trained
    after_warmup = lrs[1:]
    assert all(b <= a + 1e-15 for a, b in zip(after_warmup, after_warmup[1:])), lrs


def test_float16_master_weights_are_refused_before_any_model_loads():
    from empg.config import load_config
    from empg.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"'model.dtype'.*float16 is refused.*gradient scaler"):
        load_config(overrides=["model.dtype=float16"])
    assert load_config(overrides=["model.dtype=bfloat16"]).model.dtype == "bfloat16"
