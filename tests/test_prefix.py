"""Prefix sharing is exact: the shared M-step gives the plain loss and gradients, the shared sampler
the plain greedy tokens (and stop-string cuts). The plain path is the reference throughout."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from empg.losses import LossParams
from empg.mstep import MStepSettings, Samples, accumulate_gradients, score
from empg.samples import TokenLogProbs
from empg.prompts import get_template
from empg.sampling import SamplingParams
from empg.samplers.hf import TransformersSampler
from empg.samplers.shared import top_p_filter
from empg.shared_forward import common_prefix_len, shared_microbatches
from tiny_models import one_thread, tokenizer  # noqa: F401 (fixtures)

QUESTIONS = ["What is 3 + 4?", "What is 17 + 19?", "Tom has 3 apples and buys 12 more. How many now?",
             "What is 8 + 1?", "What is 20 + 20?"]


def _model(dtype: torch.dtype, seed: int = 1):
    from empg.models import load_model

    return load_model("tiny-llama", seed=seed).to(dtype)


def _prompts(tokenizer, fewshot: int) -> list[list[int]]:
    t = get_template("plain", fewshot=fewshot, task="arith")
    return [tokenizer(t.render(q), add_special_tokens=False)["input_ids"] for q in QUESTIONS]


def _samples(tokenizer, fewshot: int, k: int = 4, seed: int = 0) -> Samples:
    """K completions per prompt, of uneven lengths (1..13 tokens), random ids and weights."""
    rng = np.random.default_rng(seed)
    prompts, comps = [], []
    for p in _prompts(tokenizer, fewshot):
        for _ in range(k):
            prompts.append(p)
            comps.append(rng.integers(3, 2000, rng.integers(1, 14)).tolist())
    return Samples.from_tokens(prompts, comps, rng.normal(size=len(prompts)))


def _grads(model, samples: Samples, index: np.ndarray, settings: MStepSettings):
    model.zero_grad(set_to_none=True)
    loss, tokens, _ = accumulate_gradients(model, samples, index, settings)
    return loss, tokens, {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
@pytest.mark.parametrize("fewshot", [0, 2])
@pytest.mark.parametrize("algo", ["empg", "grpo"])
def test_shared_loss_and_gradients_equal_plain(tokenizer, dtype, tol, fewshot, algo):
    model = _model(dtype).train()
    samples = _samples(tokenizer, fewshot)
    # One optimizer step over a random subset (groups split across steps, as m_step does), packed
    # into several micro-batches by a small budget.
    index = np.random.default_rng(1).permutation(len(samples))[:14]
    if algo == "grpo":
        old_plain = score(model, samples, token_budget=64, share_prefix=False)
        old_shared = score(model, samples, token_budget=64, share_prefix=True)
        for i, (a, b) in enumerate(zip(old_shared, old_plain)):
            np.testing.assert_allclose(a, b, rtol=0, atol=100 * tol, err_msg=f"old log-probs, sequence {i}")
        # Move the old policy away so the ratio is not 1 and clipping engages on some tokens.
        noise = np.random.default_rng(2)
        shift = torch.from_numpy(noise.normal(scale=0.3, size=old_plain.values.shape).astype(np.float32))
        samples.old_logp = TokenLogProbs(old_plain.values + shift, old_plain.offsets)
    base = dict(algo=algo, mini_batch_size=len(index), token_budget=96, loss=LossParams(clip_eps=0.2),
                bf16_autocast=False)
    plain = MStepSettings(**base, share_prefix=False)
    shared = MStepSettings(**base, share_prefix=True)
    assert len(shared_microbatches(samples, index, 96)) > 1  # the budget splits the step
    loss_p, tok_p, g_p = _grads(model, samples, index, plain)
    loss_s, tok_s, g_s = _grads(model, samples, index, shared)
    assert tok_s == tok_p == int(samples.completion_lens[index].sum())
    assert abs(loss_s - loss_p) <= tol * abs(loss_p)
    for name in g_p:
        assert g_p[name].norm() > 0, name
        assert _rel(g_s[name], g_p[name]) <= tol, f"{name}: rel err {_rel(g_s[name], g_p[name]):.2e}"


def test_shared_microbatches_pack_whole_groups_under_budget(tokenizer):
    samples = _samples(tokenizer, 2, k=6, seed=3)
    index = np.random.default_rng(0).permutation(len(samples))[:25]
    prompts = {i: samples.flat.tokens[samples.flat.offsets[i]:][: samples.prompt_lens[i]].tobytes()
               for i in index}
    prefix = common_prefix_len([samples.flat.tokens[samples.flat.offsets[i]:][: samples.prompt_lens[i]]
                                for i in index])
    assert prefix > 40  # the few-shot part
    budget = prefix + 100
    packs = shared_microbatches(samples, index, budget)
    assert sorted(np.concatenate(packs).tolist()) == sorted(index.tolist())
    assert len(packs) < len(index)
    for pack in packs:
        groups = {prompts[i] for i in pack}
        cost = prefix + sum(len(g) // samples.flat.tokens.itemsize - prefix for g in groups) + int(samples.completion_lens[pack].sum())
        assert cost <= budget or len(groups) == 1, (pack, cost)
    # Every group fits the budget alone here, so no group is split over micro-batches.
    where = {prompts[i]: k for k, pack in enumerate(packs) for i in pack}
    assert all(where[prompts[i]] == k for k, pack in enumerate(packs) for i in pack)


def _run(sampler, prompts, params):
    return [(r.completion_ids, r.text, r.finish_reason) for r in sampler.generate(prompts, params)]


@pytest.mark.parametrize("fewshot", [0, 2])
def test_greedy_sampling_shared_equals_plain(tokenizer, fewshot):
    model = _model(torch.float64, seed=5).eval()
    prompts = _prompts(tokenizer, fewshot)  # different lengths in one batch
    shared = TransformersSampler(model, tokenizer, batch_size=6, share_prefix=True)
    plain = TransformersSampler(model, tokenizer, batch_size=6, share_prefix=False)
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=10)
    ref = _run(plain, prompts, params)
    assert _run(shared, prompts, params) == ref
    assert shared.shared_stats.prefix_tokens > 0 or fewshot == 0
    # A stop string taken from the middle of a plain completion: both paths cut at the same place.
    text = next(t for _, t, _ in ref if len(t.strip()) >= 6)
    stop = text.strip()[2:5]
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=10, stop=(stop,))
    ref = _run(plain, prompts, params)
    got = _run(shared, prompts, params)
    assert got == ref
    assert any(f == "stop" and len(ids) < 10 for ids, _, f in got)


def test_empty_prompt_is_a_clear_error(tokenizer):
    from empg.exceptions import InvalidInputError

    sampler = TransformersSampler(_model(torch.float32), tokenizer, share_prefix=True)
    with pytest.raises(InvalidInputError, match="prompt 1 "):
        sampler.generate([[5, 6], []], SamplingParams(n=2, max_new_tokens=2))


def test_seeded_sampling_is_reproducible_and_seed_dependent(tokenizer):
    model = _model(torch.float32, seed=5).eval()
    prompts = _prompts(tokenizer, 2)[:2]
    sampler = TransformersSampler(model, tokenizer, share_prefix=True)
    params = SamplingParams(n=4, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=11)
    a, b = _run(sampler, prompts, params), _run(sampler, prompts, params)
    c = _run(sampler, prompts, SamplingParams(n=4, temperature=1.0, top_p=0.9, max_new_tokens=8, seed=12))
    assert a == b and a != c
    assert len(a) == 8 and all(1 <= len(ids) <= 8 for ids, _, _ in a)


@pytest.mark.parametrize("top_p", [0.3, 0.9, 1.0])
def test_top_p_filter_matches_transformers(top_p):
    from transformers.generation.logits_process import TopPLogitsWarper

    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 3
    expected = TopPLogitsWarper(top_p=top_p)(None, logits.clone()) if top_p < 1 else logits
    got = top_p_filter(logits.clone(), top_p)
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    assert torch.equal(got[~torch.isinf(got)], logits[~torch.isinf(got)])
    if top_p < 1:
        assert torch.isinf(got).any()


def test_config_switch_defaults_on():
    from empg.config import load_config

    assert load_config().model.share_prefix is True
    assert load_config(overrides=["share_prefix=false"]).model.share_prefix is False


def test_sampled_tokens_follow_the_distribution():
    """The categorical draw (exponential race) matches softmax(logits / T) on a small vocabulary."""
    from empg.samplers.shared import next_tokens

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(40000, 1)
    params = SamplingParams(temperature=0.7)
    gen = torch.Generator().manual_seed(0)
    freq = torch.bincount(next_tokens(logits, params, gen), minlength=5).double() / len(logits)
    expected = torch.softmax(logits[0].double() / 0.7, -1)
    assert (freq - expected).abs().max() < 0.01
    assert freq[-1] == 0


def test_preallocated_cache_layer_holds_what_concatenation_would():
    from transformers.cache_utils import DynamicLayer

    from empg.samplers.shared import PreallocatedLayer

    gen = torch.Generator().manual_seed(0)
    k0, v0 = torch.randn(3, 2, 5, 4, generator=gen), torch.randn(3, 2, 5, 4, generator=gen)
    plain = DynamicLayer()
    plain.update(k0, v0)
    ours = PreallocatedLayer(k0, v0, capacity=7)
    for step in range(6):  # past the capacity: the buffers grow once
        k, v = torch.randn(3, 2, 1, 4, generator=gen), torch.randn(3, 2, 1, 4, generator=gen)
        got, want = ours.update(k, v), plain.update(k, v)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=0, atol=0)
        assert ours.get_seq_length() == 6 + step
    keep = torch.tensor([2, 0])
    ours.batch_select_indices(keep)
    plain.batch_select_indices(keep)
    got, want = ours.update(k[keep], v[keep]), plain.update(k[keep], v[keep])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
