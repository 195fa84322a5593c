"""The loss registry against direct reference computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empg.losses import LOSSES, LossParams, TokenBatch, k3_kl, normaliser_coefficients
from empg.mstep import MStepSettings, Samples, accumulate_gradients


def _hand_batch(seed=0, n_tokens=12):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_tokens, 5, generator=g, requires_grad=True)
    targets = torch.randint(0, 5, (n_tokens,), generator=g)
    seq = torch.tensor([0] * 5 + [1] * 3 + [2] * 4)
    w_seq = torch.tensor([1.5, -0.5, -1.0])
    return logits, targets, seq, w_seq


@pytest.mark.parametrize("normalize", ["token", "sequence"])
def test_empg_loss_and_gradient_equal_direct_reference(normalize):
    logits, targets, seq, w_seq = _hand_batch()
    lens = np.bincount(seq.numpy())
    coef_seq = torch.from_numpy(normaliser_coefficients(lens, normalize)).float()
    logp = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
    value, _ = LOSSES["empg"].fn(TokenBatch(logp, w_seq[seq], coef_seq[seq]), LossParams())
    (grad,) = torch.autograd.grad(value, logits)

    # Reference: -sum_i w_i sum_t log pi(z_it) / N, N = tokens or sequences.
    ref_logits = logits.detach().clone().requires_grad_(True)
    total = 0.0
    for i in range(3):
        lp = torch.log_softmax(ref_logits[seq == i], -1)
        total = total - w_seq[i] * lp[torch.arange(int(lens[i])), targets[seq == i]].sum()
    ref = total / (len(seq) if normalize == "token" else 3)
    (ref_grad,) = torch.autograd.grad(ref, ref_logits)
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(grad, ref_grad)


def test_kl_term_is_k3_and_zero_at_reference():
    logp = torch.log(torch.tensor([0.2, 0.5, 0.9]))
    ref = torch.log(torch.tensor([0.3, 0.5, 0.6]))
    r = ref - logp
    torch.testing.assert_close(k3_kl(logp, ref), r.exp() - r - 1)
    assert torch.all(k3_kl(logp, ref) >= 0) and k3_kl(logp, logp).abs().max() == 0
    coef = torch.full((3,), 1 / 3)
    w = torch.tensor([1.0, -1.0, 0.5])
    with_kl, stats = LOSSES["empg"].fn(TokenBatch(logp, w, coef, ref_logp=ref), LossParams(kl_beta=0.1))
    without, _ = LOSSES["empg"].fn(TokenBatch(logp, w, coef), LossParams())
    torch.testing.assert_close(with_kl - without, 0.1 * (coef * k3_kl(logp, ref)).sum())
    assert stats["kl"] == pytest.approx(float((coef * k3_kl(logp, ref)).sum()))


def _grpo_reference(logp, old, adv, coef, eps):
    """Per token, written out case by case (PPO paper, eq. 7)."""
    total = 0.0
    for t in range(len(logp)):
        rho = torch.exp(logp[t] - old[t])
        a = adv[t]
        if a >= 0:
            obj = torch.clamp(rho, max=1 + eps) * a if rho > 1 + eps else rho * a
        else:
            obj = torch.clamp(rho, min=1 - eps) * a if rho < 1 - eps else rho * a
        total = total - coef[t] * obj
    return total


def test_grpo_loss_equals_reference_including_clipped_region():
    eps = 0.2
    old = torch.log(torch.full((8,), 0.5))
    # ratios: inside, above 1+eps, below 1-eps, for positive and negative advantages
    rho = torch.tensor([1.05, 1.5, 0.6, 0.95, 1.05, 1.5, 0.6, 0.95])
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -0.5])
    logp = (old + torch.log(rho)).requires_grad_(True)
    coef = torch.full((8,), 1 / 8)
    value, stats = LOSSES["grpo"].fn(TokenBatch(logp, adv, coef, old_logp=old), LossParams(clip_eps=eps))
    (grad,) = torch.autograd.grad(value, logp)
    ref_logp = logp.detach().clone().requires_grad_(True)
    ref = _grpo_reference(ref_logp, old, adv, coef, eps)
    (ref_grad,) = torch.autograd.grad(ref, ref_logp)
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(grad, ref_grad)
    # Clipped tokens (rho>1+eps with A>0; rho<1-eps with A<0) get no gradient, the others do.
    clipped = torch.tensor([0, 1, 0, 0, 0, 0, 1, 0], dtype=torch.bool)
    assert torch.all(grad[clipped] == 0) and torch.all(grad[~clipped] != 0)
    assert stats["clip_frac"] == pytest.approx(2 / 8)


def test_grpo_at_old_policy_has_the_empg_gradient_direction():
    """At rho = 1 the clipped surrogate's gradient is A * grad log pi: same as the EM loss."""
    logp = torch.log(torch.tensor([0.3, 0.6, 0.1])).requires_grad_(True)
    adv, coef = torch.tensor([1.0, -2.0, 0.5]), torch.full((3,), 1 / 3)
    g1 = torch.autograd.grad(LOSSES["grpo"].fn(TokenBatch(logp, adv, coef, old_logp=logp.detach()),
                                               LossParams())[0], logp)[0]
    g2 = torch.autograd.grad(LOSSES["empg"].fn(TokenBatch(logp, adv, coef), LossParams())[0], logp)[0]
    torch.testing.assert_close(g1, g2)


def _padded_reference_loss(model, samples: Samples, normalize: str):
    """Right-padded batch with an attention mask, full logits: -sum coef * w * log pi."""
    n = len(samples)
    L = int(samples.lengths.max())
    ids = torch.zeros(n, L, dtype=torch.long)
    att = torch.zeros(n, L, dtype=torch.long)
    for i in range(n):
        a, b = samples.flat.offsets[i], samples.flat.offsets[i + 1]
        ids[i, : b - a] = torch.from_numpy(samples.flat.tokens[a:b])
        att[i, : b - a] = 1
    logits = model(input_ids=ids, attention_mask=att, use_cache=False).logits.float()
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    coefs = normaliser_coefficients(samples.completion_lens, normalize)
    total = 0.0
    for i in range(n):
        p, ln = int(samples.prompt_lens[i]), int(samples.lengths[i])
        total = total - coefs[i] * samples.weights[i] * lp[i, p - 1 : ln - 1].sum()
    return total


@pytest.mark.parametrize("normalize", ["token", "sequence"])
def test_packed_and_padded_batches_give_same_loss_and_gradients(normalize):
    from empg.models import load_model

    rng = np.random.default_rng(5)
    prompts = [rng.integers(3, 400, rng.integers(2, 7)).tolist() for _ in range(6)]
    comps = [rng.integers(3, 400, rng.integers(1, 9)).tolist() for _ in range(6)]
    samples = Samples.from_tokens(prompts, comps, rng.normal(size=6).astype(np.float32))
    model = load_model("tiny-llama", seed=7)
    results = []
    for budget in (16, 1000):  # many micro-batches vs one
        model.zero_grad(set_to_none=True)
        settings = MStepSettings(algo="empg", token_budget=budget, normalize=normalize)
        loss, _, _ = accumulate_gradients(model, samples, np.arange(6), settings)
        results.append((loss, [p.grad.clone() for p in model.parameters()]))
    model.zero_grad(set_to_none=True)
    ref = _padded_reference_loss(model, samples, normalize)
    ref.backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    for loss, grads in results:
        assert loss == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
