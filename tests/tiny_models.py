"""Tiny real transformers models for tests, built from a config (no download)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """(A fixture for test modules to import.) Tiny models: one thread is fastest, and avoids OpenMP oversubscription on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    from empg.models import load_tokenizer

    return load_tokenizer("tiny-llama")


def tiny_llama(*, seed: int = 0, **overrides: Any) -> transformers.LlamaForCausalLM:
    """A 2-layer LlamaForCausalLM with grouped-query attention; ``overrides`` change config fields."""
    fields: dict[str, Any] = dict(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    fields.update(overrides)
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**fields))


def as_trained(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` wrapped as a trainer holds it: decoder layers under activation checkpointing (adds
    ``_checkpoint_wrapped_module.``), the whole under ``torch.compile`` (adds ``_orig_mod.``)."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    layers = model.model.layers
    for i, layer in enumerate(layers):
        layers[i] = checkpoint_wrapper(layer)
    return torch.compile(model)


#: Shared by every family below: 2 layers, GQA 4/2, a vocabulary the SmolLM2 tokenizer's low ids fill.
_COMMON: dict[str, Any] = dict(vocab_size=256, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                               bos_token_id=1, eos_token_id=2, pad_token_id=0)

#: One tiny config per family the tests cover: (transformers config class, fields on top of
#: ``_COMMON``, attention implementation). Each sets what makes its family differ from Llama.
FAMILIES: dict[str, tuple[str, dict[str, Any], str]] = {
    "llama": ("LlamaConfig", dict(tie_word_embeddings=False), "sdpa"),
    # the paper's family: q/k/v bias, tied embeddings
    "qwen2": ("Qwen2Config", dict(tie_word_embeddings=True), "sdpa"),
    "qwen3": ("Qwen3Config", dict(head_dim=8, tie_word_embeddings=True), "sdpa"),  # q/k RMSNorm
    "mistral": ("MistralConfig", dict(sliding_window=None), "sdpa"),
    # soft-capped logits and attention, sliding layers (a window longer than any test sequence)
    "gemma2": ("Gemma2Config", dict(head_dim=8, final_logit_softcapping=0.5, attn_logit_softcapping=5.0,
                                    query_pre_attn_scalar=8, sliding_window=96), "eager"),
    "gemma3": ("Gemma3TextConfig", dict(head_dim=8, final_logit_softcapping=0.5, query_pre_attn_scalar=8,
                                        sliding_window=96, layer_types=["sliding_attention", "full_attention"]),
               "eager"),  # q/k norm, local and global rotary bases
    "granite": ("GraniteConfig", dict(logits_scaling=0.25, embedding_multiplier=2.0,
                                      residual_multiplier=0.5, attention_multiplier=0.3), "sdpa"),
    "cohere": ("CohereConfig", dict(logit_scale=4.0), "sdpa"),  # logits times a scale, LayerNorm
    "phi3": ("Phi3Config", dict(sliding_window=None), "sdpa"),  # fused qkv_proj and gate_up_proj
    "olmo2": ("Olmo2Config", dict(), "sdpa"),  # norms after attention/MLP, q/k norm over all heads
}


def tiny_family(family: str, *, seed: int = 0, dtype: torch.dtype = torch.float64,
                **overrides: Any) -> transformers.PreTrainedModel:
    """A 2-layer causal LM of ``family`` (a key of :data:`FAMILIES`) with random weights."""
    cls_name, fields, attn = FAMILIES[family]
    config = getattr(transformers, cls_name)(**{**_COMMON, **fields, **overrides})
    config._attn_implementation = attn
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config).to(dtype)
