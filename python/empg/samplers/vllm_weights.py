"""Names of a trained transformers model's weights as vLLM's ``load_weights`` expects them.

vLLM's models load Hugging Face checkpoint names (``model.layers.0.self_attn.q_proj.weight`` ...)
and stack q/k/v and gate/up themselves. What a *training* model reports adds wrapper prefixes
(``_orig_mod.`` from ``torch.compile``, ``module.`` from DDP, ``_fsdp_wrapped_module.`` from FSDP1,
``_checkpoint_wrapped_module.`` from activation checkpointing), and a state dict lists a tied
``lm_head.weight`` again although it is the embedding. :func:`vllm_named_weights` undoes these so
that the stream can go straight into ``model.load_weights``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch

#: Wrapper segments that training adds to parameter names (anywhere in the dotted path).
WRAPPER_SEGMENTS = ("_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module")
#: Leading segments that a whole-model wrapper adds (DDP's ``module.``).
LEADING_SEGMENTS = ("module",)


def vllm_weight_name(name: str) -> str:
    """``name`` without training-wrapper segments: ``_orig_mod.module.model.layers.0._checkpoint_
    wrapped_module.mlp.up_proj.weight`` -> ``model.layers.0.mlp.up_proj.weight``."""
    parts = [p for p in name.split(".") if p not in WRAPPER_SEGMENTS]
    while len(parts) > 1 and parts[0] in LEADING_SEGMENTS:
        parts = parts[1:]
    return ".".join(parts)


def vllm_named_weights(
    named: Iterable[tuple[str, torch.Tensor]], *, tie_word_embeddings: bool = False
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` pairs for vLLM's ``load_weights``: names cleaned by
    :func:`vllm_weight_name`, each name once, ``lm_head.weight`` left out when the embeddings are
    tied (vLLM ties them itself), rotary ``inv_freq`` buffers left out, sharded (``DTensor``)
    parameters gathered in full, and tensors detached."""
    seen: set[str] = set()
    for raw, tensor in named:
        name = vllm_weight_name(raw)
        if name in seen or name.endswith("rotary_emb.inv_freq"):
            continue
        if tie_word_embeddings and name.split(".")[-2:] == ["lm_head", "weight"]:
            continue
        seen.add(name)
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        yield name, full.detach()
