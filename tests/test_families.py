"""The family matrix: every layout in ``tiny_models.FAMILIES`` (Llama, Qwen2, Qwen3, Mistral,
Gemma-2, Gemma-3, Granite, Cohere, Phi-3, OLMo-2), tiny and random, built from transformers' own
classes.

For each family: the packed M-step's log-probs equal per-sequence forwards of the model; the
prefix-shared M-step gives the plain loss and every gradient; the shared sampler's greedy tokens
equal ``generate``'s; :func:`empg.shared_forward.lm_logits` equals the model's own logits; the
checkpoint round-trips through ``from_pretrained``.

Tolerances: the models run in float64, but the trainer turns logits into log-probs in float32 by
design (``.float()``), so log-probs carry float32 rounding (~1e-6 absolute on values near
ln 256 ≈ 5.5; measured up to 6e-7) and gradients ~1e-6 relative; :func:`lm_logits` itself runs in
float64 (1e-9). A missed logit post-processing moves log-probs by 0.05..0.5 nats on these configs
(Granite: 0.53 before this was fixed), orders of magnitude above the tolerances."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tiny_models
from tiny_models import one_thread, tokenizer  # noqa: F401 (fixtures)
from empg.mstep import MStepSettings, Samples, accumulate_gradients, score
from empg.sampling import SamplingParams
from empg.samplers.hf import TransformersSampler
from empg.samplers.shared import encode_prompts
from empg.shared_forward import can_share, lm_logits, shared_microbatches, sharing_blocker

FAMILIES = list(tiny_models.FAMILIES)
LOGIT_TOL = 1e-9  # float64 end to end
LOGP_TOL = 2e-5  # float32 log-softmax
GRAD_TOL = 2e-5  # relative, float32 log-softmax


def _samples(seed: int = 0, groups: int = 4, k: int = 3) -> Samples:
    """``groups`` prompts sharing a 10-token prefix, K completions each (1..9 tokens), ids < 256."""
    rng = np.random.default_rng(seed)
    head = rng.integers(3, 256, 10).tolist()
    prompts, comps = [], []
    for _ in range(groups):
        p = head + rng.integers(3, 256, rng.integers(1, 6)).tolist()
        for _ in range(k):
            prompts.append(p)
            comps.append(rng.integers(3, 256, rng.integers(1, 10)).tolist())
    return Samples.from_tokens(prompts, comps, rng.normal(size=len(prompts)))


def _separate(model, samples: Samples) -> list[np.ndarray]:
    """Each sequence alone through the model's own forward: the reference log-probs."""
    out = []
    for i in range(len(samples)):
        ids = torch.from_numpy(samples.flat.tokens[samples.flat.offsets[i]:samples.flat.offsets[i + 1]])[None]
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0].double()
        lp = torch.log_softmax(logits[:-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        out.append(lp[samples.prompt_lens[i] - 1:].numpy())
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_lm_logits_is_the_models_own(family):
    model = tiny_models.tiny_family(family).eval()
    ids = torch.arange(3, 40)[None]
    with torch.no_grad():
        hidden = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
        torch.testing.assert_close(lm_logits(model, hidden), model(input_ids=ids).logits, rtol=0, atol=LOGIT_TOL)
    assert sharing_blocker(model, longest=40) is None


@pytest.mark.parametrize("family", FAMILIES)
def test_packed_and_shared_logprobs_equal_separate_forwards(family):
    model = tiny_models.tiny_family(family, seed=1).eval()
    samples = _samples()
    ref = _separate(model, samples)
    for share in (False, True):
        got = score(model, samples, token_budget=40, share_prefix=share, autocast=False)
        for i, (g, r) in enumerate(zip(got, ref)):
            np.testing.assert_allclose(g, r, rtol=0, atol=LOGP_TOL, err_msg=f"{family} share={share} sequence {i}")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("path", ["packed_sdpa", "padded_buckets"])
def test_attention_paths_equal_separate_forwards(family, path):
    """``benches/attention.py`` (the GPU check's log-probs) on the same packed micro-batch."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))
    from attention import token_logprobs
    from empg.core import build_microbatch

    model = tiny_models.tiny_family(family, seed=1).eval()
    samples = _samples()
    idx = np.arange(len(samples))
    mb = build_microbatch(samples.flat.tokens, samples.flat.offsets, samples.prompt_lens, samples.weights, idx)
    with torch.no_grad():
        got = token_logprobs(model, mb, path=path).numpy()
    for i, r in enumerate(_separate(model, samples)):
        end = mb["cu_seqlens"][i + 1]
        np.testing.assert_allclose(got[end - len(r):end], r, rtol=0, atol=LOGP_TOL, err_msg=f"{family} {i}")


def _grads(model, samples, index, share: bool):
    settings = MStepSettings(mini_batch_size=len(index), token_budget=40, bf16_autocast=False, share_prefix=share)
    model.zero_grad(set_to_none=True)
    loss, tokens, _ = accumulate_gradients(model, samples, index, settings)
    return loss, tokens, {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_mstep_equals_plain(family):
    model = tiny_models.tiny_family(family, seed=2).train()
    samples = _samples(seed=1)
    index = np.random.default_rng(0).permutation(len(samples))[:9]
    assert can_share(model, int(samples.lengths[index].max()))  # the shared path really runs
    assert len(shared_microbatches(samples, index, 40)) > 1
    loss_p, tok_p, g_p = _grads(model, samples, index, share=False)
    loss_s, tok_s, g_s = _grads(model, samples, index, share=True)
    assert tok_s == tok_p
    assert abs(loss_s - loss_p) <= GRAD_TOL * max(1.0, abs(loss_p)), (loss_s, loss_p)
    assert set(g_s) == set(g_p) and len(g_p) == len(list(model.parameters()))
    for name, g in g_p.items():
        assert g.norm() > 0, name
        rel = float((g_s[name] - g).norm() / g.norm())
        assert rel <= GRAD_TOL, f"{family} {name}: rel err {rel:.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_sampler_greedy_equals_generate(family, tokenizer):
    # float32: transformers' eager Gemma-2 attention takes its softmax in float32, where float64's
    # mask minimum becomes -inf, so generate's left-padded rows would be NaN in float64.
    model = tiny_models.tiny_family(family, seed=3, dtype=torch.float32).eval()
    rng = np.random.default_rng(2)
    head = rng.integers(3, 256, 8).tolist()
    prompts = [head + rng.integers(3, 256, n).tolist() for n in (1, 4, 2)]
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=8)
    shared = TransformersSampler(model, tokenizer, batch_size=6, share_prefix=True)
    plain = TransformersSampler(model, tokenizer, batch_size=6, share_prefix=False)
    got = [r.completion_ids for r in shared.generate(prompts, params)]
    ref = [r.completion_ids for r in plain.generate(prompts, params)]
    assert shared.shared_stats.prefix_tokens > 0  # the shared path ran
    assert got == ref
    # Greedy tokens cannot see a monotone post-processing (scaling, soft-capping); sampling at
    # T > 0 does: the first-token logits the shared sampler starts from are the model's own.
    enc = encode_prompts(model, prompts)
    with torch.no_grad():
        own = torch.stack([model(input_ids=torch.tensor([p])).logits[0, -1] for p in prompts]).float()
    torch.testing.assert_close(enc.logits, own, rtol=0, atol=1e-5)  # float32 summation order


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_round_trips_through_from_pretrained(family, tmp_path):
    from empg.models import load_model

    model = tiny_models.tiny_family(family, seed=4).eval()
    model.save_pretrained(tmp_path)
    back = load_model(str(tmp_path), dtype="float64", attn=model.config._attn_implementation).eval()
    assert type(back) is type(model)
    mine, theirs = model.state_dict(), back.state_dict()
    assert mine.keys() == theirs.keys()
    for name, tensor in mine.items():
        assert torch.equal(tensor, theirs[name]), name
    ids = torch.arange(3, 30)[None]
    with torch.no_grad():
        # Not bitwise: ``.to(float64)`` also casts the rotary ``inv_freq`` buffer, which loading
        # rebuilds in float32 (~1e-16 apart here); the weights above are bitwise equal.
        torch.testing.assert_close(back(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=LOGIT_TOL)


def test_gate_falls_back_with_one_notice_when_sequences_outrun_a_sliding_window(capsys):
    model = tiny_models.tiny_family("gemma2", seed=5, sliding_window=8).train()
    samples = _samples(seed=3)
    index = np.arange(len(samples))
    assert "sliding" in (sharing_blocker(model, longest=int(samples.lengths.max())) or "")
    for _ in range(2):
        assert not can_share(model, int(samples.lengths.max()))
    notice = capsys.readouterr().out
    assert notice.count("prefix sharing off") == 1 and "Gemma2ForCausalLM" in notice
    # Falling back is still exact: the shared setting gives the plain numbers.
    loss_p, _, g_p = _grads(model, samples, index, share=False)
    loss_s, _, g_s = _grads(model, samples, index, share=True)
    assert loss_s == loss_p and all(torch.equal(g_s[n], g_p[n]) for n in g_p)


def test_sampler_takes_the_same_gate(tokenizer, capsys):
    """Prompt + max_new_tokens reach the window: the shared sampler falls back to ``generate``."""
    model = tiny_models.tiny_family("gemma2", seed=5, sliding_window=8, dtype=torch.float32).eval()
    prompts = [[5, 6, 7, 8, 9], [5, 6, 7, 8, 10]]
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=6)
    shared = TransformersSampler(model, tokenizer, share_prefix=True)
    got = [r.completion_ids for r in shared.generate(prompts, params)]
    ref = [r.completion_ids for r in TransformersSampler(model, tokenizer, share_prefix=False).generate(prompts, params)]
    assert got == ref and shared.shared_stats.total == 0  # the plain path ran
    assert "prefix sharing off for Gemma2ForCausalLM: sliding-window" in capsys.readouterr().out


def test_gate_refuses_logits_it_cannot_reproduce():
    """A family whose forward changes the head's output in a way :func:`lm_logits` does not know
    (here: an extra scale patched into the model's forward) is caught by the gate's probe."""
    model = tiny_models.tiny_family("llama", seed=6).eval()
    forward = type(model).forward

    def scaled(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        out.logits = out.logits * 3.0
        return out

    model.forward = scaled.__get__(model)
    assert "logits" in (sharing_blocker(model, longest=8) or "")
    # Both fall back to the model's own forward, and so stay exact.
    samples = _samples(seed=4)
    for share in (False, True):
        got = score(model, samples, token_budget=40, share_prefix=share, autocast=False)
        for g, r in zip(got, _separate(model, samples)):
            np.testing.assert_allclose(g, r, rtol=0, atol=LOGP_TOL)


@pytest.mark.slow
def test_vllm_loads_every_family_through_the_name_mapping():
    """vLLM's own model class (chosen by the config's architecture, built on the CPU in a
    subprocess) takes the mapped weight stream of a trained-looking model of each family: every
    engine parameter loaded, each equal to the trainer's (q/k/v and gate/up stacked)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'empg[vllm]'; "
                                       "~/.cache/empg/vllm-venv has a CPU build)")
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
    script = Path(__file__).resolve().parent / "vllm_cpu_load_weights.py"
    proc = subprocess.run([sys.executable, str(script), "--families", ",".join(FAMILIES)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    reports = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(reports) == sorted(FAMILIES)
    for family, report in reports.items():
        arch = type(tiny_models.tiny_family(family, dtype=torch.float32)).__name__
        # vLLM's native class, or its transformers backend where it has none (OLMo-2 in 0.32)
        assert report["engine_class"] in (arch, "TransformersForCausalLM"), (family, report)
        assert report["unloaded"] == [] and report["mismatched"] == [], (family, report)
        assert report["loaded"] == report["engine_params"] > 0, (family, report)
