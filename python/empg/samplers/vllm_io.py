"""Conversions between empg's backend-neutral sampling types and vLLM's objects.

Pure functions over the real vLLM classes (passed in or imported lazily), so they are tested on a
CPU with vLLM's own ``SamplingParams``/``RequestOutput``/``CompletionOutput`` constructors.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from empg.exceptions import TrainingError
from empg.sampling import Rollout, SamplingParams

#: vLLM finish reasons and empg's names for them. "stop" covers EOS, stop strings and stop tokens.
FINISH_REASONS = {"stop": "stop", "length": "length"}


def prompt_seeds(seed: int | None, count: int) -> list[int | None]:
    """One seed per prompt of a call seeded with ``seed``: vLLM seeds every request alike, so one
    seed for all would replay the same random numbers for every prompt (completion k of each prompt
    drawn from one stream). Derived by ``numpy.random.SeedSequence`` (independent streams)."""
    if seed is None:
        return [None] * count
    import numpy as np

    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(count)]


def to_vllm_sampling_params(params: SamplingParams, seed: int | None = None) -> Any:
    """vLLM's ``SamplingParams`` for one prompt of an E-step: ``n`` = K, temperature, top-p,
    ``max_tokens``, stop strings, ``seed`` (one of :func:`prompt_seeds`; by default
    ``params.seed``), and the sampled token's log-prob (``logprobs=0``) when
    ``params.return_logprobs``. As in the transformers sampler, a stop string ends the text before
    it while the token ids keep the token that completed it (``include_stop_str_in_output=False``)."""
    import vllm

    return vllm.SamplingParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_new_tokens,
        stop=list(params.stop) or None,
        include_stop_str_in_output=False,
        seed=params.seed if seed is None else seed,
        logprobs=0 if params.return_logprobs else None,
    )


def _sampled_logprobs(completion: Any, where: str) -> list[float]:
    """The log-prob vLLM gave each sampled token (from ``CompletionOutput.logprobs``, one mapping
    token id -> ``Logprob`` per position, either list or ``FlatLogprobs``)."""
    if completion.logprobs is None:
        raise TrainingError(f"{where}: log-probs were asked for but vLLM returned none")
    out = []
    for pos, (token, position) in enumerate(zip(completion.token_ids, completion.logprobs)):
        if position is None or token not in position:
            raise TrainingError(f"{where}: no log-prob for the sampled token at position {pos}")
        value = float(position[token].logprob)
        out.append(value if not math.isnan(value) else float("-inf"))
    return out


def rollouts_from_outputs(
    outputs: Sequence[Any], prompts: Sequence[Sequence[int]], params: SamplingParams
) -> list[Rollout]:
    """empg rollouts from vLLM's ``RequestOutput``s (one per prompt, in prompt order): ``params.n``
    per prompt, grouped by prompt, in the order of the completions' ``index``."""
    if len(outputs) != len(prompts):
        raise TrainingError(f"vLLM returned {len(outputs)} request outputs for {len(prompts)} prompts")
    rollouts: list[Rollout] = []
    for group, (request, prompt) in enumerate(zip(outputs, prompts)):
        completions = sorted(request.outputs, key=lambda c: c.index)
        if len(completions) != params.n:
            raise TrainingError(
                f"vLLM request {request.request_id!r} (prompt {group}) has {len(completions)} completions, "
                f"expected n={params.n}"
            )
        prompt_ids = list(prompt)  # one list, shared by the group's rollouts
        for c in completions:
            where = f"vLLM request {request.request_id!r} (prompt {group}) completion {c.index}"
            reason = FINISH_REASONS.get(str(c.finish_reason))
            if reason is None:
                raise TrainingError(f"{where} finished with reason {c.finish_reason!r}, not 'stop' or 'length'")
            rollouts.append(
                Rollout(
                    group=group,
                    prompt_ids=prompt_ids,
                    completion_ids=list(c.token_ids),
                    text=c.text,
                    finish_reason=reason,
                    sampler_logprobs=_sampled_logprobs(c, where) if params.return_logprobs else None,
                )
            )
    return rollouts


def sequence_logprobs(request: Any, sequence: Sequence[int]) -> list[float]:
    """Per-token log-probs of ``sequence`` from a request run with ``prompt_logprobs=0``: the entry
    of each prompt position for the token actually there, 0 for the first token (no context)."""
    positions = request.prompt_logprobs
    if positions is None or len(positions) != len(sequence):
        got = None if positions is None else len(positions)
        raise TrainingError(f"vLLM request {request.request_id!r}: {got} prompt log-probs for {len(sequence)} tokens")
    out = [0.0]
    for j in range(1, len(sequence)):
        entry = positions[j]
        token = int(sequence[j])
        if entry is None or token not in entry:
            raise TrainingError(f"vLLM request {request.request_id!r}: no prompt log-prob for token {j}")
        out.append(float(entry[token].logprob))
    return out
