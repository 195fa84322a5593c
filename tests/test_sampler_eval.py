"""The transformers sampler (stop strings, finish reasons, K per prompt) and pass@k."""

from __future__ import annotations

from math import comb

import pytest
import torch

from empg.evaluation import pass_at_k
from empg.sampling import Sampler, SamplingParams
from empg.samplers.hf import TransformersSampler, cut_completion


@pytest.fixture(scope="module")
def tok():
    from empg.models import load_tokenizer

    return load_tokenizer("tiny-llama")


def test_pass_at_k_matches_the_combinatorial_definition():
    for n in range(1, 9):
        for c in range(0, n + 1):
            for k in range(1, n + 1):
                expected = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_cut_completion_at_stop_string_and_eos(tok):
    ids = tok(" 3 + 4 = 7. \\boxed{7}\n\nQuestion: What", add_special_tokens=False)["input_ids"]
    cut, text, finish = cut_completion(tok, ids, ["\n\n", "\nQuestion:"], {tok.eos_token_id})
    assert text == " 3 + 4 = 7. \\boxed{7}" and finish == "stop"
    assert "\n\n" in tok.decode(cut) and "\n\n" not in tok.decode(cut[:-1])
    eos = ids[:3] + [tok.eos_token_id] + ids[3:]
    cut, text, finish = cut_completion(tok, eos, ["\n\n"], {tok.eos_token_id})
    assert cut == ids[:3] + [tok.eos_token_id] and finish == "stop"
    cut, text, finish = cut_completion(tok, ids[:4], ["\n\n"], {tok.eos_token_id})
    assert cut == ids[:4] and finish == "length"


def test_sampler_groups_seeds_and_greedy_consistency(tok):
    from empg.models import load_model

    torch.set_num_threads(1)
    model = load_model("tiny-llama", seed=0)
    s = TransformersSampler(model, tok, batch_size=6)  # 2 prompts per generate call
    assert isinstance(s, Sampler)
    prompts = [tok(q, add_special_tokens=False)["input_ids"]
               for q in ("What is 1 + 2?", "Question: What is 12 + 9?\nAnswer:", "Hi")]
    p = SamplingParams(n=3, temperature=1.0, max_new_tokens=6, stop=("\n",), seed=5)
    a, b = s.generate(prompts, p), s.generate(prompts, p)
    assert [r.group for r in a] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [r.completion_ids for r in a] == [r.completion_ids for r in b]  # same seed, same samples
    for r in a:
        assert r.prompt_ids == prompts[r.group] and 1 <= len(r.completion_ids) <= 6
        assert r.finish_reason in ("stop", "length") and "\n" not in r.text
    # Greedy through the shared-prompt cache path equals plain one-at-a-time greedy generate.
    g = s.generate(prompts, SamplingParams(n=2, temperature=0.0, max_new_tokens=6))
    for i, prompt in enumerate(prompts):
        ref = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=6, do_sample=False,
                             pad_token_id=tok.pad_token_id)[0, len(prompt):].tolist()
        ref = ref[: ref.index(tok.eos_token_id) + 1] if tok.eos_token_id in ref else ref
        assert g[2 * i].completion_ids == ref == g[2 * i + 1].completion_ids


def test_behaviour_patterns_count_shares_of_completions():
    """The E-step's behaviour metrics: the share of completions matching each pattern."""
    from empg.metrics import RolloutSummary

    def rates(texts):
        n = len(texts)
        stats = RolloutSummary.of([0.0] * n, [1] * n, [False] * n, [0.0], [False], texts, {}).stats()
        return {k: v for k, v in stats.items() if k.startswith("behaviour/")}

    texts = [
        "First, 3 + 4 = 7. Then add 2 to get 9.",
        "Let me check: 9 - 2 = 7, correct.",
        "Wait, that's wrong. Actually the sum is 10.",
        "\\boxed{12}",
    ]
    got = rates(texts)
    assert got == {"behaviour/decomposition": 0.25, "behaviour/verification": 0.25,
                   "behaviour/backtracking": 0.25}
    assert rates([]) == {k: 0.0 for k in got}
