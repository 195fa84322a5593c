"""Reward functions built on the Rust verifier, and an adapter for TRL's ``GRPOTrainer``.

* :func:`accuracy_reward`: 1.0 when the completion's final answer is equivalent to the reference.
* :func:`format_reward`: 1.0 when the completion states an answer in the expected form (a
  ``\\boxed{}`` for ``style="boxed"``, ``#### N`` / "the answer is N" for ``"gsm8k"``).
* :func:`combined_reward`: accuracy plus ``format_weight`` times format.
* :func:`trl_reward_func`: a function with the calling convention of TRL 1.16's GRPOTrainer
  (``reward_func(prompts=..., completions=..., completion_ids=..., **dataset_columns)`` returning
  ``list[float]``), so a TRL user can drop empg's verifier into TRL.

Completions may be strings or chat message lists (``[{"role": "assistant", "content": ...}]``, as
TRL passes for conversational data). References may be bare answers (``"18"``, ``"\\frac{1}{2}"``)
or whole worked solutions (GSM8K's ``answer`` column ending in ``#### N``, MATH's ``solution``
column with a ``\\boxed{}``): the final answer is extracted from those first.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from empg.exceptions import InvalidInputError
from empg.verify import extract_answers, verify_batch

Completion = str | Sequence[dict[str, Any]]

#: Dataset columns the TRL adapter looks for, in order, when none is named.
REFERENCE_COLUMNS = ("answer", "solution", "reference", "ground_truth", "target")


def completion_text(completion: Completion) -> str:
    """The text of a completion: a string as is; for chat messages, the content of the last
    assistant message (text parts joined when the content is a list of parts)."""
    if isinstance(completion, str):
        return completion
    messages = list(completion)
    assistant = [m for m in messages if m.get("role", "assistant") == "assistant"] or messages
    if not assistant:
        return ""
    content = assistant[-1].get("content", "")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def reference_answers(references: Sequence[object]) -> list[str]:
    """Bare reference answers: the final answer of a worked solution (``#### N`` or the last
    ``\\boxed{}``), anything else as written."""
    refs = [r if isinstance(r, str) else str(r) for r in references]
    worked = [i for i, r in enumerate(refs) if "####" in r or "\\boxed" in r or "\\fbox" in r]
    if worked:
        found = extract_answers([refs[i] for i in worked], style="auto", fallback=False)
        for i, a in zip(worked, found):
            refs[i] = a if a is not None else refs[i]
    return refs


def accuracy_reward(
    completions: Sequence[Completion], references: Sequence[object], *, style: str = "auto"
) -> npt.NDArray[np.float32]:
    """1.0 where the final answer of ``completions[i]`` is equivalent to ``references[i]``."""
    if len(completions) != len(references):
        raise InvalidInputError(
            f"references has {len(references)} entries but {len(completions)} were expected (one per completion)"
        )
    return verify_batch(
        [completion_text(c) for c in completions], reference_answers(references), style=style
    )


def format_reward(completions: Sequence[Completion], *, style: str = "boxed") -> npt.NDArray[np.float32]:
    """1.0 where a completion states its answer in ``style``'s form (no last-number fallback)."""
    found = extract_answers([completion_text(c) for c in completions], style=style, fallback=False)
    return np.array([a is not None for a in found], dtype=np.float32)


def combined_reward(
    completions: Sequence[Completion],
    references: Sequence[object],
    *,
    style: str = "auto",
    format_weight: float = 0.0,
    format_style: str = "boxed",
) -> npt.NDArray[np.float32]:
    """``accuracy + format_weight * format`` (the format term off by default)."""
    out = accuracy_reward(completions, references, style=style)
    if format_weight:
        out = out + np.float32(format_weight) * format_reward(completions, style=format_style)
    return out.astype(np.float32, copy=False)


def trl_reward_func(
    *,
    reference_column: str | None = None,
    style: str = "auto",
    format_weight: float = 0.0,
    format_style: str = "boxed",
) -> Callable[..., list[float]]:
    """A reward function for TRL's GRPOTrainer (``reward_funcs=[empg.rewards.trl_reward_func()]``).

    TRL calls it as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` where the
    columns are the dataset's (each a list, one entry per completion) plus ``trainer_state``,
    ``log_extra`` and ``log_metric``. The reference answers are read from ``reference_column``, or
    the first of :data:`REFERENCE_COLUMNS` present.
    """
    if style not in ("auto", "boxed", "gsm8k"):
        raise InvalidInputError(f"invalid style: unknown style {style!r}; expected one of 'auto', 'boxed', 'gsm8k'")

    def empg_accuracy(
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Completion] | None = None,
        completion_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        if completions is None:
            raise InvalidInputError("the reward function needs completions=")
        column = reference_column or next((c for c in REFERENCE_COLUMNS if c in kwargs), None)
        if column is None or column not in kwargs:
            cols = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric", "environments"))
            want = reference_column or " or ".join(REFERENCE_COLUMNS)
            raise InvalidInputError(f"no reference column {want} among the dataset columns {cols}")
        rewards = combined_reward(
            completions, kwargs[column], style=style, format_weight=format_weight, format_style=format_style
        )
        return [float(r) for r in rewards]

    return empg_accuracy


__all__ = [
    "REFERENCE_COLUMNS",
    "accuracy_reward",
    "combined_reward",
    "completion_text",
    "format_reward",
    "reference_answers",
    "trl_reward_func",
]
