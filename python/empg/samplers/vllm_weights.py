"""Names of a trained transformers model's weights as vLLM's ``load_weights`` expects them.

vLLM's models load Hugging Face checkpoint names (``model.layers.0.self_attn.q_proj.weight`` ...)
and stack q/k/v and gate/up themselves. What a *training* model reports adds wrapper prefixes
(``_orig_mod.`` from ``torch.compile``, ``module.`` from DDP, ``_fsdp_wrapped_module.`` from FSDP1,
``_checkpoint_wrapped_module.`` from activation checkpointing), and a state dict lists a tied
``lm_head.weight`` again although it is the embedding. :func:`vllm_named_weights` undoes these so
that the stream can go straight into ``model.load_weights``. :func:`weight_problems` checks a stream
against the checkpoint the engine was built from (:func:`checkpoint_shapes`) before anything is
written, so that a bad sync changes nothing.
"""

from __future__ import annotations

from pathlib import Path
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


def checkpoint_shapes(model_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every tensor in a Hugging Face directory's ``*.safetensors`` files (read
    from their headers, no tensor loaded): what the engine was built from, so what a sync must
    bring. Empty when the directory holds no safetensors file (nothing to check against)."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                shapes[vllm_weight_name(name)] = tuple(f.get_slice(name).get_shape())
    return shapes


def weight_problems(
    named: Iterable[tuple[str, torch.Tensor]], expected: dict[str, tuple[int, ...]]
) -> list[str]:
    """Everything wrong with a weight stream before any of it is written: a name the engine's
    checkpoint lacks, a checkpoint tensor the stream lacks, a shape that differs, a non-float or
    non-finite tensor. ``expected`` as from :func:`checkpoint_shapes`, less what the engine does not
    load (a tied ``lm_head.weight``, rotary buffers); empty ``expected``: only dtype and values are
    checked."""
    problems: list[str] = []
    seen: set[str] = set()
    for name, tensor in named:
        seen.add(name)
        shape = tuple(tensor.shape)
        if expected and name not in expected:
            problems.append(f"{name}: not in the engine's checkpoint")
        elif expected and shape != expected[name]:
            problems.append(f"{name}: shape {list(shape)}, the engine's is {list(expected[name])}")
        elif not tensor.is_floating_point():
            problems.append(f"{name}: dtype {tensor.dtype} is not floating point")
        elif not bool(torch.isfinite(tensor).all()):
            problems.append(f"{name}: holds NaN or inf values")
    problems.extend(f"{name}: missing (the engine's checkpoint has it)" for name in sorted(set(expected) - seen))
    return problems
