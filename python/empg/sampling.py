"""What every sampler (the E-step engine) takes and gives back.

A sampler turns prompts (token ids) into K completions each, with the *current* weights. Backends:
``transformers`` (CPU or GPU) and ``vllm`` (CUDA, or vLLM's CPU build). The EM loop only sees this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings of one E-step, backend-neutral."""

    n: int = 8  # K: completions per prompt
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    return_logprobs: bool = False  # ask the backend for its per-token log-probs (diagnostics only)


@dataclass
class Rollout:
    """One sampled completion of one prompt."""

    group: int  # index of the prompt in the batch: the K rollouts of a prompt share it
    prompt_ids: list[int]  # one list shared by the K rollouts of a prompt: read, never mutate
    completion_ids: list[int]  # without the prompt; ends at the stop string or EOS, if any
    text: str  # decoded completion
    finish_reason: str  # "stop" (EOS or stop string) or "length" (max_new_tokens reached)
    sampler_logprobs: list[float] | None = field(default=None, repr=False)


@runtime_checkable
class Sampler(Protocol):
    """The E-step engine."""

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Rollout]:
        """``params.n`` rollouts per prompt, grouped by prompt (``rollout.group`` = prompt index),
        in prompt order."""
        ...

    def sync_weights(self, model: object) -> None:
        """Make the next ``generate`` use ``model``'s current weights (in place, no disk)."""
        ...

    def sleep(self) -> None:
        """Free accelerator memory for the M-step (a no-op where nothing is held)."""
        ...

    def wake_up(self) -> None:
        """Undo :meth:`sleep` before the next E-step."""
        ...
