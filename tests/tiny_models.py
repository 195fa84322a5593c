"""Tiny real transformers models for tests, built from a config (no download)."""

from __future__ import annotations

from typing import Any

import torch
import transformers


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
