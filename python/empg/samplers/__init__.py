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
    try:
        from empg.samplers.vllm import VLLMSampler
    except ImportError as e:
        raise ConfigError(
            f"sampling.sampler=vllm: cannot import empg.samplers.vllm ({e}); install vLLM "
            "(pip install vllm, CUDA only) or use sampling.sampler=transformers"
        ) from None
    return VLLMSampler.from_config(cfg, model, tokenizer)  # type: ignore[no-any-return]


SAMPLERS: dict[str, Callable[[Any, Any, Any], Sampler]] = {
    "transformers": _transformers,
    "vllm": _vllm,
}


def make_sampler(name: str, model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    if name not in SAMPLERS:
        raise ConfigError(f"sampling.sampler: {name!r} is not one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](model, tokenizer, cfg)
