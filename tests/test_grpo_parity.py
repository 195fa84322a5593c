"""GRPO as TRL runs it: the on-policy first step reuses its own forward as the old log-probs (no extra
pass), log-probs at the sampling temperature; and ``train.drop_zero_signal=false`` trains every group."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from empg.losses import LossParams, logprob_temperature
from empg.mstep import MStepSettings, Samples, m_step, make_optimizer, make_scheduler, score, token_logprobs


def _samples(n: int = 10, seed: int = 0, vocab: int = 500) -> Samples:
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(3, vocab, rng.integers(2, 9)).tolist() for _ in range(n)]
    completions = [rng.integers(3, vocab, rng.integers(1, 12)).tolist() for _ in range(n)]
    return Samples.from_tokens(prompts, completions, rng.normal(size=n).astype(np.float32))


def _run(model, samples, settings, forward=token_logprobs):
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999))
    sched = make_scheduler(opt, warmup_steps=0, schedule="constant", total_steps=8)
    return m_step(model, opt, sched, samples, settings, np.random.default_rng(7), forward=forward)


class Counting:
    """token_logprobs, counting the sequences each call runs (through the number of target tokens)."""

    def __init__(self) -> None:
        self.no_grad_tokens = 0

    def __call__(self, model, ids, pos, mask, **kw):
        if not torch.is_grad_enabled():
            self.no_grad_tokens += int(mask.sum())
        return token_logprobs(model, ids, pos, mask, **kw)


@pytest.mark.parametrize("epochs,steps", [(1, 1), (1, 2), (3, 2)])
def test_recorded_old_logprobs_give_the_same_update_as_a_separate_pass(epochs, steps):
    from empg.models import load_model

    settings = MStepSettings(algo="grpo", epochs=epochs, steps_per_epoch=steps, token_budget=64,
                             loss=LossParams(clip_eps=0.2), temperature=0.7)
    base = load_model("tiny-llama", seed=1)
    # Reference: the old log-probs of every sequence from a separate no-grad pass before any step.
    ref_model, ref_samples = copy.deepcopy(base), _samples()
    ref_samples.old_logp = score(ref_model, ref_samples, token_budget=64, temperature=0.7)
    want = _run(ref_model, ref_samples, settings)
    # empg: the first step's own forward records its sequences' old log-probs; only the rest are scored.
    model, samples, counting = copy.deepcopy(base), _samples(), Counting()
    got = _run(model, samples, settings, forward=counting)
    total = int(samples.completion_lens.sum())
    assert got["steps"] == want["steps"] == epochs * steps
    np.testing.assert_allclose(samples.old_logp.values.numpy(), ref_samples.old_logp.values.numpy(), atol=1e-5)
    if steps == 1:
        assert counting.no_grad_tokens == 0, "one on-policy step per epoch needs no old-log-prob pass"
    else:
        assert 0 < counting.no_grad_tokens < total
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=name)


def test_logprobs_at_a_temperature_are_the_tempered_softmax():
    from empg.models import load_model

    model = load_model("tiny-llama", seed=2).eval()
    samples = _samples(4, seed=3)
    got = score(model, samples, token_budget=64, temperature=0.5)
    for i in range(len(samples)):
        a, b = samples.flat.offsets[i], samples.flat.offsets[i + 1]
        ids = torch.from_numpy(samples.flat.tokens[a:b])[None]
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0].float() / 0.5
        lp = torch.log_softmax(logits[:-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        np.testing.assert_allclose(got[i], lp[samples.prompt_lens[i] - 1:].numpy(), atol=2e-5)
    plain = score(model, samples, token_budget=64)
    assert not np.allclose(plain.values.numpy(), got.values.numpy(), atol=1e-3)


def test_grpo_takes_the_sampling_temperature_and_empg_the_models_own():
    assert logprob_temperature("grpo", 0.8) == 0.8
    assert logprob_temperature("empg", 0.8) == 1.0
    assert logprob_temperature("grpo", 0.0) == 1.0  # greedy sampling: no temperature to match


@pytest.mark.parametrize("drop", [True, False])
def test_drop_zero_signal_switch_keeps_every_group_when_off(drop):
    from empg.em import e_step
    from empg.sampling import Rollout, SamplingParams
    from empg.scoring import Scores

    class Replay:  # a sampler replaying fixed rollouts: group 0 all right, group 1 mixed, group 2 all wrong
        def generate(self, prompts, params):
            return [Rollout(prompt_ids=list(p), completion_ids=[5, 6, 7], text="x", group=g, finish_reason="stop")
                    for g, p in enumerate(prompts) for _ in range(params.n)]

    rewards = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0], dtype=np.float64)
    est = e_step(Replay(), [[1, 2], [1, 3], [1, 4]], SamplingParams(n=3, temperature=1.0, max_new_tokens=4),
                 lambda rollouts: Scores(total=rewards.copy()), scheme="group_norm",
                 drop_zero_signal=drop)
    assert len(est.samples) == (3 if drop else 9)
    assert est.stats["groups/dropped"] == (2 if drop else 0)
    kept = est.samples.weights
    assert np.count_nonzero(kept) == 3 and np.isclose(kept.sum(), 0, atol=1e-5)
