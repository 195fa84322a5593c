"""One question with its verifiable reference answer: the record every dataset loader gives.

A leaf module (no empg imports), so that the loaders (:mod:`empg.data`) and the generated task
(:mod:`empg.tasks`) both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One question with its verifiable reference answer."""

    id: str  # stable id, e.g. "gsm8k/test/17", "test/algebra/1.json", "arith/test/d0/s0/5"
    question: str
    answer: str  # reference FINAL answer, extracted once from the gold solution
    source: str  # "gsm8k" | "math" (also MATH-hard and MATH500) | "arith" | a file path
    level: int | None = None
    subject: str | None = None


__all__ = ["Problem"]
