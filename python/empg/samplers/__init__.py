"""The E-step engines, by name: ``SAMPLERS[name](model, tokenizer, cfg)`` builds one.

``transformers`` (CPU or GPU, :class:`empg.samplers.hf.TransformersSampler`) is always there;
``vllm`` (:class:`empg.samplers.vllm.VLLMSampler`) is imported only when asked for, and fails with a
clear message where vLLM or its module is missing.
"""

from __future__ import annotations

from typing import Any, Callable

from empg.exceptions import ConfigError
from empg.sampling import Sampler


def _transformers(model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    from empg.samplers.hf import TransformersSampler

    return TransformersSampler(model, tokenizer, batch_size=cfg.sampling.batch_size)


def _vllm(model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    # vLLM itself is imported when the engine starts; a missing install raises ImportError naming
    # the extra (pip install 'empg[vllm]'), an unsupported release ConfigError.
    from empg.samplers.vllm import VLLMSampler

    return VLLMSampler.from_config(cfg, model, tokenizer)


SAMPLERS: dict[str, Callable[[Any, Any, Any], Sampler]] = {
    "transformers": _transformers,
    "vllm": _vllm,
}


def make_sampler(name: str, model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    if name not in SAMPLERS:
        raise ConfigError(f"sampling.sampler: {name!r} is not one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](model, tokenizer, cfg)
