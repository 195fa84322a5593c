"""Weight-sync names: what a training model reports, mapped to what vLLM's ``load_weights`` takes.

The pure mapping is checked on real wrapped transformers models; the names and values are then fed
to vLLM's real ``LlamaForCausalLM.load_weights`` (built on the CPU in a subprocess) when vLLM is
installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from empg.samplers.vllm_weights import vllm_named_weights, vllm_weight_name

transformers = pytest.importorskip("transformers")
import tiny_models  # noqa: E402
HERE = Path(__file__).resolve().parent


def tiny_llama(tied: bool) -> torch.nn.Module:
    return tiny_models.tiny_llama(tie_word_embeddings=tied)


@pytest.mark.parametrize("tied", [False, True])
def test_wrapped_names_map_back_to_checkpoint_names(tied: bool) -> None:
    plain = dict(tiny_llama(tied).named_parameters())
    model = tiny_models.as_trained(tiny_llama(tied))
    raw_names = [n for n, _ in model.named_parameters()]
    assert any("_orig_mod." in n for n in raw_names)
    assert any("_checkpoint_wrapped_module." in n for n in raw_names)
    mapped = dict(vllm_named_weights(model.named_parameters(), tie_word_embeddings=tied))
    expected = set(plain) - ({"lm_head.weight"} if tied else set())
    assert set(mapped) == expected
    for name, tensor in mapped.items():
        assert not tensor.requires_grad
        torch.testing.assert_close(tensor, plain[name])


def test_state_dict_of_a_tied_model_yields_the_embedding_once() -> None:
    model = tiny_llama(tied=True)
    state = model.state_dict()
    assert "lm_head.weight" in state  # transformers lists the tied head again
    names = [n for n, _ in vllm_named_weights(state.items(), tie_word_embeddings=True)]
    assert "lm_head.weight" not in names
    assert names.count("model.embed_tokens.weight") == 1
    assert len(names) == len(set(names))


def test_ddp_style_leading_module_is_stripped_but_inner_module_names_are_kept() -> None:
    assert vllm_weight_name("module.model.norm.weight") == "model.norm.weight"
    assert vllm_weight_name("_orig_mod.module.model.norm.weight") == "model.norm.weight"
    assert (
        vllm_weight_name("model._fsdp_wrapped_module.layers.0.mlp.module.weight")
        == "model.layers.0.mlp.module.weight"
    )
    assert vllm_weight_name("model.layers.0.self_attn.rotary_emb.inv_freq").endswith("inv_freq")
    names = [n for n, _ in vllm_named_weights([("model.rotary_emb.inv_freq", torch.ones(2))])]
    assert names == []


@pytest.mark.slow
def test_vllm_llama_load_weights_accepts_the_mapped_stream() -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'empg[vllm]')")
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
    proc = subprocess.run(
        [sys.executable, str(HERE / "vllm_cpu_load_weights.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    reports = json.loads(proc.stdout.strip().splitlines()[-1])
    for kind, report in reports.items():
        assert report["unloaded"] == [], (kind, report)
        assert report["mismatched"] == [], (kind, report)
        assert report["loaded"] == report["engine_params"] > 0, (kind, report)
        assert report["head_is_embedding"] is (kind == "tied"), (kind, report)


def test_engine_dir_is_the_models_own_or_a_saved_copy(tmp_path: Path) -> None:
    from empg.samplers.vllm import engine_model_dir

    model = tiny_llama(tied=True)
    path, tmp = engine_model_dir(model)  # built from a config: no directory of its own
    assert tmp is not None
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(path)
    torch.testing.assert_close(dict(reloaded.named_parameters()), dict(model.named_parameters()))
    tmp.cleanup()
    model.save_pretrained(tmp_path)
    own = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert engine_model_dir(own) == (str(tmp_path), None)


def test_checkpoint_shapes_and_weight_problems(tmp_path: Path) -> None:
    from empg.samplers.vllm_weights import checkpoint_shapes, weight_problems

    model = tiny_llama(tied=False)
    model.save_pretrained(tmp_path)
    shapes = checkpoint_shapes(tmp_path)
    params = dict(model.named_parameters())
    assert shapes == {n: tuple(p.shape) for n, p in params.items()}
    assert weight_problems(vllm_named_weights(model.named_parameters()), shapes) == []

    stream = dict(vllm_named_weights(model.named_parameters()))
    stream["model.layers.0.mlp.up_proj.weight"] = torch.zeros(7, 3)
    stream["model.norm.weight"] = torch.full_like(stream["model.norm.weight"], float("inf"))
    stream["model.extra.weight"] = torch.zeros(2)
    stream["model.layers.1.input_layernorm.weight"] = torch.ones(16, dtype=torch.int64)
    del stream["lm_head.weight"]
    problems = weight_problems(stream.items(), shapes)
    assert problems == [
        "model.layers.0.mlp.up_proj.weight: shape [7, 3], the engine's is [32, 16]",
        "model.layers.1.input_layernorm.weight: dtype torch.int64 is not floating point",
        "model.norm.weight: holds NaN or inf values",
        "model.extra.weight: not in the engine's checkpoint",
        "lm_head.weight: missing (the engine's checkpoint has it)",
    ]
    assert checkpoint_shapes(tmp_path / "nowhere") == {}
