"""Datasets: GSM8K, MATH (all, hard levels, MATH500), local jsonl/json/parquet files and the
embedded arithmetic task, as a list of :class:`Problem` with a reference FINAL answer each.

The reference is extracted once, at load time: GSM8K's text after the last ``#### `` (commas
removed), MATH's ``answer`` field where present or else the content of the last ``\\boxed{}`` of
the solution (through the Rust verifier's extractor, one call for the whole file). A row that
cannot give a question and a reference is an error naming the file, the 1-based row (line) number
and the field; ``skip_bad_rows=True`` records it in :class:`LoadReport` instead. (MATH train has
two such rows, with an empty ``\\boxed{}``: load it with ``skip_bad_rows=True``.)

Where the files are: ``path=`` if given, else :func:`default_data_path` under ``$EMPG_DATA_DIR`` (or
``<repo>/../shared/data``), else the Hugging Face hub through ``datasets.load_dataset``. The file
formats and row readers live in :mod:`empg.datafiles`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from empg.datafiles import HubSpec, RowFormat, parse_rows, read_hub, read_rows
from empg.exceptions import DataError
from empg.problem import Problem


@dataclass
class LoadReport:
    """What a load read and kept. ``skipped`` holds ``(row number 1-based, reason)``."""

    path: str
    rows: int
    loaded: int
    skipped: list[tuple[int, str]] = field(default_factory=list)
    filtered: int = 0  # rows dropped by the ``levels`` filter (not errors)


# source -> (row format, hub spec, default file name per split)
_GSM8K = RowFormat(name="gsm8k", question=("question",), answer=("answer",), answer_style="gsm8k")
_MATH = RowFormat(
    name="math",
    question=("problem",),
    answer=("answer",),
    solution=("solution",),
    level=("level",),
    subject=("subject", "type"),
    id_fields=("unique_id",),
)
_MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
_HUB = {
    "gsm8k": HubSpec("openai/gsm8k", ("main",)),
    "math": HubSpec("EleutherAI/hendrycks_math", _MATH_SUBJECTS),
    "math500": HubSpec("HuggingFaceH4/MATH-500", (None,), splits=("test",)),
}
SOURCES = ("gsm8k", "math", "math_hard", "math500", "arith")
DEFAULT_ARITH_SIZE = {"train": 1024, "test": 256}


def default_data_dir() -> Path:
    """``$EMPG_DATA_DIR``, else ``<repo>/../shared/data`` (the repo being the checkout this
    package is imported from)."""
    env = os.environ.get("EMPG_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def default_data_path(source: str, split: str) -> Path:
    """Where the local copy of ``source``/``split`` is looked for, e.g. ("gsm8k", "test") ->
    ``<data>/gsm8k/test.jsonl``, ("math500", "test") -> ``<data>/math/test500.jsonl``."""
    root = default_data_dir()
    if source == "gsm8k":
        return root / "gsm8k" / f"{split}.jsonl"
    if source in ("math", "math_hard"):
        return root / "math" / f"{split}.jsonl"
    if source == "math500":
        if split != "test":
            raise DataError(f"math500 has only a 'test' split, got split={split!r}")
        return root / "math" / "test500.jsonl"
    raise DataError(f"no default data file for source {source!r} (known: {SOURCES[:-1]})")


def is_hub_name(source: str) -> bool:
    """``owner/name`` with no file suffix: a Hugging Face hub dataset."""
    return "/" in source and not source.startswith((".", "/", "~")) and Path(source).suffix == ""


def _generic_format(question_field: str | None, answer_field: str | None) -> RowFormat:
    return RowFormat(
        name="file",
        question=(question_field,) if question_field else ("question", "problem", "prompt"),
        answer=(answer_field,) if answer_field else ("answer",),
        answer_style="auto",
        solution=() if answer_field else ("solution",),
        level=("level",),
        subject=("subject", "type"),
        id_fields=("unique_id", "id"),
    )


def _override(fmt: RowFormat, question_field: str | None, answer_field: str | None) -> RowFormat:
    """A named source's format with the caller's field names (for files laid out differently)."""
    if question_field:
        fmt = fmt.replace(question=(question_field,))
    if answer_field:
        fmt = fmt.replace(answer=(answer_field,), solution=())
    return fmt


def _load_arith(
    split: str, levels: Sequence[int] | None, limit: int | None, seed: int | None
) -> tuple[list[Problem], LoadReport]:
    from empg.tasks import make_arith_problems, make_mixed_arith_problems

    n = DEFAULT_ARITH_SIZE.get(split, 0) if limit is None else limit
    diffs = tuple(levels) if levels else (0,)
    seed = 0 if seed is None else seed
    try:
        if len(diffs) == 1:
            problems = make_arith_problems(n, seed=seed, difficulty=diffs[0], split=split)
        else:
            problems = make_mixed_arith_problems(n, seed=seed, difficulties=diffs, split=split)
    except ValueError as e:
        raise DataError(f"arith: {e}") from e
    return problems, LoadReport(path="arith", rows=len(problems), loaded=len(problems))


def load_problems(
    source: str,
    *,
    split: str = "train",
    path: str | None = None,
    levels: Sequence[int] | None = None,
    limit: int | None = None,
    shuffle_seed: int | None = None,
    skip_bad_rows: bool = False,
    question_field: str | None = None,
    answer_field: str | None = None,
) -> tuple[list[Problem], LoadReport]:
    """Load ``source`` as problems (see the module docstring for where and how).

    ``source``: "gsm8k", "math", "math_hard" (levels default (5,)), "math500", "arith" (the
    embedded task: ``levels`` are its difficulties, default (0,); ``limit`` its size, default
    1024 train / 64 test; ``shuffle_seed`` its generator seed) or a path to a jsonl/json/parquet
    file (fields ``question``/``problem``/``prompt`` and ``answer`` or ``solution`` unless named).
    ``levels`` keeps rows of those levels only (rows with no level are then dropped);
    ``shuffle_seed`` shuffles before ``limit`` takes the first rows.
    """
    if source == "arith":
        return _load_arith(split, levels, limit, shuffle_seed)
    if source == "math_hard" and levels is None:
        levels = (5,)
    fmt: RowFormat
    if source in ("gsm8k", "math", "math_hard", "math500"):
        label = "gsm8k" if source == "gsm8k" else "math"  # Problem.source: the answer family
        fmt = _override(_GSM8K if label == "gsm8k" else _MATH, question_field, answer_field)
        fmt = fmt.replace(id_prefix=f"{label}/{split}/")
        file = Path(path) if path else default_data_path(source, split)
        if file.exists() or path:
            rows = read_rows(file)
        else:
            rows = read_hub(_HUB["math" if source == "math_hard" else source], split, file)
    elif not Path(path or source).exists() and is_hub_name(source):
        fmt = _generic_format(question_field, answer_field).replace(id_prefix=f"{source}/{split}/")
        rows = read_hub(HubSpec(source, (None,), splits=(split,)), split, Path(path or source))
        label = source
    else:
        file = Path(path or source)
        if not file.exists():
            raise DataError(
                f"unknown source {source!r}: not one of {SOURCES} and no file at {file}"
            )
        fmt = _generic_format(question_field, answer_field).replace(id_prefix=f"{file.name}/")
        rows = read_rows(file)
        label = str(file)
    parsed, skipped = parse_rows(rows, fmt, skip_bad_rows=skip_bad_rows)
    problems = [Problem(source=label, **p) for p in parsed]
    report = LoadReport(path=rows.where, rows=len(rows.items), loaded=0, skipped=skipped)
    if levels is not None:
        wanted = set(levels)
        kept = [p for p in problems if p.level in wanted]
        report.filtered = len(problems) - len(kept)
        problems = kept
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(problems)
    if limit is not None:
        problems = problems[:limit]
    report.loaded = len(problems)
    return problems, report


__all__ = [
    "SOURCES",
    "LoadReport",
    "Problem",
    "default_data_dir",
    "default_data_path",
    "is_hub_name",
    "load_problems",
]
