"""The E-step engines, by name: ``SAMPLERS[name](model, tokenizer, cfg)`` builds one.

``transformers`` (CPU or GPU, :class:`empg.samplers.hf.TransformersSampler`) is always there;
``vllm`` (:class:`empg.samplers.vllm.VLLMSampler`) is imported only when asked for, and fails with a
clear message where vLLM or its module is missing. ``auto`` (the default) is resolved by
:func:`choose_sampler` before the model is loaded: see its rule.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

from empg.exceptions import ConfigError
from empg.sampling import Sampler

#: The device types on which ``auto`` takes vLLM when it is there. Not the CPU: on the 2-core dev
#: machine vLLM's CPU build sampled the embedded default's E-step at 0.85x the tokens/s of empg's
#: prefix-shared transformers sampler (benches/results/sampling.md; 2.4x on 256-token GSM8K
#: completions, where ``sampling.sampler=vllm`` is the better explicit choice).
AUTO_VLLM_DEVICES = ("cuda",)


def _transformers(model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    from empg.samplers.hf import TransformersSampler

    return TransformersSampler(model, tokenizer, batch_size=cfg.sampling.batch_size,
                               share_prefix=cfg.model.share_prefix, onednn=cfg.model.onednn)


def _vllm(model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    try:
        from empg.samplers.vllm import VLLMSampler
    except ImportError as e:
        raise ConfigError(
            f"sampling.sampler=vllm: cannot import empg.samplers.vllm ({e}); install vLLM "
            "(pip install 'empg[vllm]' on CUDA, bash scripts/setup-vllm-cpu.sh on a CPU) "
            "or use sampling.sampler=transformers"
        ) from None
    return VLLMSampler.from_config(cfg, model, tokenizer)  # type: ignore[no-any-return]


SAMPLERS: dict[str, Callable[[Any, Any, Any], Sampler]] = {
    "transformers": _transformers,
    "vllm": _vllm,
}
#: What ``sampling.sampler`` may be set to.
SAMPLER_NAMES = ("auto", *SAMPLERS)


@dataclass(frozen=True)
class SamplerChoice:
    """The sampler a run uses and why (``sampling.sampler=auto`` says which rule decided)."""

    name: str
    reason: str


def vllm_problem(device_type: str) -> str | None:
    """Why vLLM cannot sample on ``device_type`` here (``None``: it can): not installed, an
    unsupported release, or a build for another platform (the CPU build on a CUDA run, say)."""
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed"
    try:
        from empg.samplers.vllm import import_vllm

        import_vllm()
        from vllm.platforms import current_platform
    except (ImportError, ConfigError, RuntimeError) as e:
        return f"vLLM does not load ({e})"
    built_for = "cpu" if current_platform.is_cpu() else "cuda" if current_platform.is_cuda() else None
    if built_for != device_type:
        return f"the installed vLLM runs on {built_for or current_platform.device_name}, the trainer on {device_type}"
    return None


def choose_sampler(name: str, device_type: str) -> SamplerChoice:
    """``name`` itself unless it is ``auto``. ``auto``: ``vllm`` on a device type in
    :data:`AUTO_VLLM_DEVICES` when :func:`vllm_problem` finds none, else ``transformers``."""
    if name not in SAMPLER_NAMES:
        raise ConfigError(f"sampling.sampler: {name!r} is not one of {list(SAMPLER_NAMES)}")
    if name != "auto":
        return SamplerChoice(name, "as configured")
    if device_type not in AUTO_VLLM_DEVICES:
        return SamplerChoice("transformers", f"auto: on {device_type} the prefix-shared transformers "
                                             "sampler is the faster one (benches/results/sampling.md)")
    problem = vllm_problem(device_type)
    if problem is not None:
        return SamplerChoice("transformers", f"auto: {problem}")
    return SamplerChoice("vllm", f"auto: vLLM is installed and runs on {device_type}")


def make_sampler(name: str, model: Any, tokenizer: Any, cfg: Any) -> Sampler:
    if name not in SAMPLERS:
        raise ConfigError(f"sampling.sampler: {name!r} is not one of {sorted(SAMPLERS)} (resolve 'auto' "
                          "with choose_sampler first)")
    return SAMPLERS[name](model, tokenizer, cfg)
