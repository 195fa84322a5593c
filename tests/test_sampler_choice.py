"""``sampling.sampler=auto`` and the per-prompt seeds of the vLLM sampler: pure logic, no vLLM
needed (the tier checks the choice against an installed CPU build, tests/test_vllm_sampler.py)."""

from __future__ import annotations

import pytest

from empg.exceptions import ConfigError


def test_auto_sampler_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from empg.samplers import choose_sampler

    assert choose_sampler("vllm", "cpu").name == "vllm"  # an explicit name is kept
    assert choose_sampler("transformers", "cuda").name == "transformers"
    with pytest.raises(ConfigError, match="'tgi'"):
        choose_sampler("tgi", "cpu")
    on_cpu = choose_sampler("auto", "cpu")
    assert on_cpu.name == "transformers" and "benches/results/sampling.md" in on_cpu.reason
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # vLLM not installed
    none = choose_sampler("auto", "cuda")
    assert none.name == "transformers" and "not installed" in none.reason


def test_prompt_seeds_differ_per_prompt_and_repeat() -> None:
    from empg.samplers.vllm_io import prompt_seeds

    seeds = prompt_seeds(7, 4)
    assert len(set(seeds)) == 4 and seeds == prompt_seeds(7, 4)
    assert not set(seeds) & set(prompt_seeds(8, 4))  # the next iteration's seed: other streams
    assert prompt_seeds(None, 3) == [None, None, None]


