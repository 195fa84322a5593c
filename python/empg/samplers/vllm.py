"""The vLLM E-step: a colocated ``vllm.LLM`` in the training process, on the training GPU.

Install with ``pip install empg[vllm]``. Supported: vLLM ``>=0.33,<0.34`` (see
:data:`SUPPORTED_VLLM`; docs/gpu.md says why). The engine runs *in process*
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so that after every M-step the trainer's weights are copied
straight into the engine's parameters through the model's own ``load_weights`` (no checkpoint on
disk, no second process, no serialisation). During the M-step the engine sleeps (``sleep(level=1)``:
weights offloaded to host memory, KV cache released) so the trainer gets the GPU memory back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from empg.exceptions import ConfigError
from empg.sampling import Rollout, SamplingParams
from empg.samplers.vllm_io import rollouts_from_outputs, sequence_logprobs, to_vllm_sampling_params
from empg.samplers.vllm_weights import vllm_named_weights

#: The vLLM releases this module is written and tested against: [lower, upper).
SUPPORTED_VLLM = ((0, 33), (0, 34))
#: Set to 1 to try an unsupported vLLM release anyway (at your own risk).
ALLOW_ANY_VLLM_ENV = "EMPG_ALLOW_ANY_VLLM"


def _version_tuple(version: str) -> tuple[int, ...]:
    out = []
    for part in version.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def check_vllm_version(version: str) -> None:
    """Raise :class:`~empg.exceptions.ConfigError` when ``version`` is outside
    :data:`SUPPORTED_VLLM` (unless ``EMPG_ALLOW_ANY_VLLM=1``)."""
    low, high = SUPPORTED_VLLM
    if low <= _version_tuple(version) < high or os.environ.get(ALLOW_ANY_VLLM_ENV) == "1":
        return
    raise ConfigError(
        f"sampler=vllm: vLLM {version} is installed, empg supports vLLM >={'.'.join(map(str, low))},"
        f"<{'.'.join(map(str, high))} (pip install 'empg[vllm]'); set {ALLOW_ANY_VLLM_ENV}=1 to try it anyway"
    )


def import_vllm() -> Any:
    """``import vllm`` with a message naming the extra when it is missing, and the version check."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            "sampler=vllm needs vLLM: pip install 'empg[vllm]' (a CUDA machine; on a CPU use sampler=transformers)"
        ) from err
    check_vllm_version(vllm.__version__)
    return vllm


def engine_model_dir(model: Any, tokenizer: Any = None) -> tuple[str, tempfile.TemporaryDirectory[str] | None]:
    """A directory vLLM can build the engine from: the model's own ``name_or_path`` when it is a
    local Hugging Face directory (with tokenizer files, when a tokenizer is in play), else a
    temporary directory the model (and tokenizer) is saved into. Returns the path and the temporary
    directory to keep alive (``None`` when the model's own is used)."""
    own = Path(str(getattr(model, "name_or_path", "") or ""))
    has_tokenizer = (own / "tokenizer_config.json").is_file() or (own / "tokenizer.json").is_file()
    if (own / "config.json").is_file() and (tokenizer is None or has_tokenizer):
        return str(own), None
    tmp = tempfile.TemporaryDirectory(prefix="empg-vllm-")
    model.save_pretrained(tmp.name)
    if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(tmp.name)
    return tmp.name, tmp


class VLLMSampler:
    """:class:`empg.sampling.Sampler` backed by a colocated ``vllm.LLM``.

    ``model_path`` is a Hugging Face model directory or hub id (the engine builds its own copy of the
    weights from it once; later weights come from :meth:`sync_weights`). ``gpu_memory_utilization``
    is the share of GPU memory vLLM may take for weights plus KV cache: the trainer needs the rest.
    """

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.5,
        seed: int = 0,
        enable_sleep_mode: bool = True,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        **engine_kwargs: Any,
    ) -> None:
        if not 0.0 < gpu_memory_utilization < 1.0:
            raise ConfigError(f"gpu_memory_utilization must be in (0, 1), got {gpu_memory_utilization}")
        vllm = import_vllm()
        # In-process engine core: the model lives in this process, so load_weights sees our tensors.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if tensor_parallel_size > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Under torchrun: the engine joins the trainer's ranks (TP groups of consecutive ranks),
            # as TRL's colocate mode does; each rank keeps its own in-process engine core.
            engine_kwargs.setdefault("distributed_executor_backend", "external_launcher")
        self.llm = vllm.LLM(
            model=model_path,
            tokenizer=tokenizer,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            enable_sleep_mode=enable_sleep_mode,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            **engine_kwargs,
        )
        if not hasattr(self.llm.llm_engine, "model_executor"):
            raise ConfigError(
                "sampler=vllm: the vLLM engine started in a separate process, so weights cannot be synced in "
                "place; unset VLLM_ENABLE_V1_MULTIPROCESSING or use a supported vLLM"
            )
        self.enable_sleep_mode = enable_sleep_mode
        self._sleeping: set[str] = set()  # sleep tags not yet woken ("weights", "kv_cache")
        self._model_dir: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_config(cls, cfg: Any, model: Any, tokenizer: Any = None) -> "VLLMSampler":
        """The engine for an empg run: built from ``model``'s directory (or a temporary save of it),
        ``cfg.sampling.gpu_memory_utilization``, ``cfg.sampling.tensor_parallel_size`` and
        ``cfg.train.seed`` (under torchrun: one seed per tensor-parallel group, so that the ranks of
        a group sample alike), then synced with ``model``'s current weights."""
        sampling = getattr(cfg, "sampling", None)
        train = getattr(cfg, "train", None)
        tp = int(getattr(sampling, "tensor_parallel_size", 1))
        rank = int(os.environ.get("RANK", "0"))
        path, tmp = engine_model_dir(model, tokenizer)
        sampler = cls(
            path,
            gpu_memory_utilization=float(getattr(sampling, "gpu_memory_utilization", 0.5)),
            seed=int(getattr(train, "seed", 0)) + rank // tp,
            tensor_parallel_size=tp,
            skip_tokenizer_init=tokenizer is None,
        )
        sampler._model_dir = tmp
        sampler.sync_weights(model)
        return sampler

    # -- E-step ---------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Rollout]:
        """``params.n`` completions of each prompt (token ids), grouped by prompt."""
        from vllm.inputs import TokensPrompt

        if self._sleeping:
            self.wake_up()
        requests = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompts]
        outputs = self.llm.generate(requests, to_vllm_sampling_params(params), use_tqdm=False)
        return rollouts_from_outputs(outputs, prompts, params)

    def prompt_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[list[float]]:
        """vLLM's log-prob of every token of each sequence given the tokens before it (0 for the
        first): what the engine's weights say, to check that a sync took effect."""
        import vllm
        from vllm.inputs import TokensPrompt

        if self._sleeping:
            self.wake_up()
        params = vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        requests = [TokensPrompt(prompt_token_ids=[int(t) for t in s]) for s in sequences]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [sequence_logprobs(out, seq) for seq, out in zip(sequences, outputs)]

    # -- weights and memory ---------------------------------------------------------------------
    def sync_weights(self, model: object) -> None:
        """Copy ``model``'s current parameters into the engine in place (the model's own
        ``load_weights``: vLLM stacks q/k/v and gate/up and casts to its dtype), then drop the prefix
        cache, whose keys and values were computed with the old weights."""
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"sync_weights takes a torch.nn.Module, got {type(model).__name__}")
        if "weights" in self._sleeping:
            self.llm.wake_up(tags=["weights"])
            self._sleeping.discard("weights")
        config = getattr(model, "config", None)
        tied = bool(getattr(config, "tie_word_embeddings", False))
        weights = vllm_named_weights(model.named_parameters(), tie_word_embeddings=tied)
        with torch.no_grad():
            self.llm.llm_engine.apply_model(lambda engine_model: engine_model.load_weights(weights=weights))
        if "kv_cache" not in self._sleeping:  # sleep(level=1) already cleared it
            self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        """Offload the engine's weights to host memory and free its KV cache for the M-step."""
        if self.enable_sleep_mode and not self._sleeping:
            self.llm.sleep(level=1)
            self._sleeping = {"weights", "kv_cache"}

    def wake_up(self) -> None:
        """Bring back what :meth:`sleep` released (weights already woken by a sync stay as they are)."""
        if self._sleeping:
            self.llm.wake_up(tags=sorted(self._sleeping))
            self._sleeping.clear()
