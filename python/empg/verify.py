"""Typed entry points to the Rust verifier: final-answer extraction and answer equivalence.

Each batch call crosses into Rust once: the strings are borrowed (``verify_batch``) or copied,
the work runs with the GIL released (on empg's thread pool, or on the calling thread when
parallelism is off), and a list or a numpy array comes back. Equivalence rules and
the random-point rule's error bound are documented in ``docs/verifier.md``.

An answer that cannot be parsed is data (not equivalent, reward 0), never an exception; only a
bad argument (an unknown ``style``, mismatched lengths) raises
:class:`~empg.exceptions.InvalidInputError`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt

from empg import _core

STYLES = ("auto", "boxed", "gsm8k")


def _strings(values: Sequence[object], what: str) -> list[str]:
    """Answers as strings (numbers are accepted: GSM8K references are often ints)."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of strings, not a single {type(values).__name__}")
    return [v if isinstance(v, str) else str(v) for v in values]


def extract_answers(
    texts: Sequence[str], *, style: str = "auto", fallback: bool = True
) -> list[str | None]:
    """The final answer of each text, or ``None`` when it states none.

    ``style``: ``"boxed"`` (the last ``\\boxed{}``/``\\fbox{}``, with boxes that close the text
    together with it as one list, MATH), ``"gsm8k"`` (the last ``#### N``, else what follows the
    last answer marker, else the last math or number of the text when ``fallback``) or ``"auto"``
    (boxed, unless a ``#### N`` or an answer marker stating a formula or number follows the last
    box; then the GSM8K rules). See ``docs/verifier.md``.
    """
    return _core.extract_answers(_strings(texts, "texts"), style=style, fallback=fallback)


def is_equivalent(reference: str | int | float, candidate: str | int | float) -> bool:
    """Whether ``candidate`` states the same answer as ``reference`` (numbers, fractions, LaTeX
    expressions, equations, intervals, sets, matrices, text; see ``docs/verifier.md``)."""
    return _core.is_equivalent(str(reference), str(candidate))


def verify_batch(
    responses: Sequence[str], references: Sequence[str | int | float], *, style: str = "auto"
) -> npt.NDArray[np.float32]:
    """1.0 where the answer extracted from ``responses[i]`` (in ``style``, with the last-number
    fallback) is equivalent to ``references[i]``, else 0.0 (float32, one per response)."""
    if isinstance(responses, (list, tuple)) and isinstance(references, (list, tuple)):
        # The usual call, lists of str: handed over as they are (Rust borrows the strings); an
        # item that is not a str fails there with a TypeError, and the lists are converted below.
        try:
            return _core.verify_batch(responses, references, style=style)  # type: ignore[arg-type]
        except TypeError:
            pass
    return _core.verify_batch(
        _strings(responses, "responses"), _strings(references, "references"), style=style
    )


__all__ = ["STYLES", "extract_answers", "is_equivalent", "verify_batch"]
