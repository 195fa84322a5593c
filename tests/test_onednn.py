"""nn.Linear on oneDNN (empg.onednn): nn.Linear's numbers and gradients, only inside the block,
every module restored afterwards (also after an error); the sampler and the M-step take it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empg import onednn
from empg.onednn import onednn_linears
from tiny_models import one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not onednn.available(), reason="this torch has no oneDNN linear op")


def _model(seed: int = 3):
    from empg.models import load_model

    return load_model("tiny-llama", seed=seed)


def _linears(model) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if type(m) is torch.nn.Linear]


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("rows", [1, 4, 40])
def test_logits_inside_the_block_are_the_plain_ones(rows, packed, one_thread):
    model = _model().eval()
    ids = torch.randint(0, model.config.vocab_size, (rows, 3), generator=torch.Generator().manual_seed(rows))
    calls = []
    real = onednn._linear
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with onednn_linears(model, packed=packed):
            onednn._linear = lambda *a: calls.append(1) or real(*a)
            try:
                ours = model(input_ids=ids).logits
            finally:
                onednn._linear = real
    assert len(calls) == len(_linears(model))  # every linear of the model ran on oneDNN
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)


def test_gradients_are_nn_linears(one_thread):
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(24, 40, bias=True)
    x = torch.randn(2, 3, 24, generator=gen, requires_grad=True)
    up = torch.randn(2, 3, 40, generator=gen)
    want = torch.autograd.grad((lin(x) * up).sum(), [x, lin.weight, lin.bias])
    holder = torch.nn.Sequential(lin)
    with onednn_linears(holder):
        y = lin(x)
        assert y.grad_fn is not None and "LinearFn" in type(y.grad_fn).__name__
        got = torch.autograd.grad((y * up).sum(), [x, lin.weight, lin.bias])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_a_model_step_matches_and_tied_weights_get_both_gradients(one_thread):
    from empg.mstep import MStepSettings, Samples, accumulate_gradients

    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(3, 200, 9))] * 3
    comps = [list(rng.integers(3, 200, n)) for n in (5, 8, 2)]
    samples = Samples.from_tokens(prompts, comps, np.array([1.0, -0.5, 0.25]))
    grads = []
    for use in (False, True):
        model = _model(seed=5).train()
        assert model.lm_head.weight is model.get_input_embeddings().weight  # tied, as SmolLM2's
        with onednn_linears(model, enabled=use):
            accumulate_gradients(model, samples, np.arange(3), MStepSettings(share_prefix=True, token_budget=64))
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(_model().parameters()))
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-4, atol=1e-6, msg=n)


def test_other_dtypes_and_disabled_keep_torchs_path(one_thread, monkeypatch):
    def refuse(*a):
        raise AssertionError("oneDNN ran")

    model = _model().to(torch.float64)
    ids = torch.tensor([[1, 2, 3]])
    monkeypatch.setattr(onednn, "_linear", refuse)
    with onednn_linears(model):
        assert all("forward" in vars(m) for m in _linears(model))
        model(input_ids=ids)  # float64: F.linear (oneDNN has no float64 kernels)
    with onednn_linears(model.float(), enabled=False):
        assert not any("forward" in vars(m) for m in _linears(model))
        model(input_ids=ids)


def test_modules_are_restored_also_after_an_error(one_thread):
    model = _model()
    with pytest.raises(RuntimeError, match="inside"):
        with onednn_linears(model, packed=True):
            assert all("forward" in vars(m) for m in _linears(model))
            raise RuntimeError("inside")
    assert _linears(model) and not any("forward" in vars(m) for m in _linears(model))
    assert type(model.lm_head).forward is torch.nn.Linear.forward


def test_the_sampler_and_the_m_step_run_inside_it(one_thread, monkeypatch, tmp_path):
    from empg import em
    from empg.build import build
    from empg.config import load_config
    from empg.mstep import Samples
    from empg.sampling import SamplingParams

    seen = []
    real = onednn.onednn_linears

    def spy(model, **kw):
        seen.append((model, kw))
        return real(model, **kw)

    monkeypatch.setattr("empg.samplers.hf.onednn_linears", spy)
    monkeypatch.setattr(em, "onednn_linears", spy)
    for flag in (True, False):
        seen.clear()
        s = build(load_config(None, ["model=tiny-llama", "data.limit=2", "data.eval_limit=2", "model.threads=1",
                                     f"model.onednn={str(flag).lower()}", "log.progress=false",
                                     f"log.run_dir={tmp_path / str(flag)}"]))
        s.sampler.generate([[1, 2, 3]], SamplingParams(n=2, max_new_tokens=2, seed=0))
        samples = Samples.from_tokens([[1, 2, 3]] * 2, [[4, 5], [6]], np.array([1.0, -1.0]))
        out = em.m_step(s, samples, 1)
        assert out["steps"] >= 1
        assert seen == [(s.model, {"enabled": flag, "packed": True}), (s.model, {"enabled": flag})]
