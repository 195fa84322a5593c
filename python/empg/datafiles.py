"""Reading dataset rows and turning them into problem fields, with row-exact errors.

:func:`read_rows` reads a local jsonl (line by line, so a bad line is reported by its 1-based line
number), a JSON array file or a parquet file; :func:`read_hub` reads a Hugging Face hub dataset
through ``datasets.load_dataset``; :func:`parse_rows` applies a :class:`RowFormat` (which fields
hold the question, the reference and the metadata, and how to extract the final answer). Bad rows
are collected as ``(row, reason)``: raised as one :class:`~empg.exceptions.DataError` naming the
file, row and field, or returned as skipped when the caller asks to skip them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empg.exceptions import DataError


@dataclass(frozen=True)
class RowFormat:
    """Where a row keeps its parts; each tuple lists candidate field names, first present wins."""

    name: str
    question: tuple[str, ...]
    answer: tuple[str, ...]  # the reference (or a GSM8K-style solution, see answer_style)
    answer_style: str = "final"  # "final" (as is) | "gsm8k" (after last "#### ") | "auto"
    solution: tuple[str, ...] = ()  # fallback when no answer field: last \boxed{} of it
    level: tuple[str, ...] = ()
    subject: tuple[str, ...] = ()
    id_fields: tuple[str, ...] = ()
    id_prefix: str = ""  # ids default to f"{id_prefix}{row - 1}"

    def replace(self, **changes: Any) -> RowFormat:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class HubSpec:
    """A Hugging Face hub dataset: name, configs to concatenate (None = default), splits."""

    name: str
    configs: tuple[str | None, ...]
    splits: tuple[str, ...] = ("train", "test")


@dataclass
class Rows:
    """Rows read from one place: ``(row number 1-based, dict | _Bad)``."""

    where: str
    items: list[tuple[int, Any]]


@dataclass(frozen=True)
class _Bad:
    reason: str


def _read_jsonl(file: Path, data: bytes) -> list[tuple[int, Any]]:
    items: list[tuple[int, Any]] = []
    for no, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        try:
            line = raw.decode("utf-8-sig" if no == 1 else "utf-8")
        except UnicodeDecodeError as e:
            items.append((no, _Bad(f"not valid UTF-8 (byte {e.start} of the line)")))
            continue
        if not line.strip():
            continue
        try:
            items.append((no, json.loads(line)))
        except json.JSONDecodeError as e:
            items.append((no, _Bad(f"invalid JSON ({e.msg} at column {e.colno})")))
    return items


def read_rows(file: Path) -> Rows:
    """All rows of a local ``.jsonl`` / ``.json`` / ``.parquet`` file (other suffixes: jsonl).

    A missing or empty file raises at once; a bad row is kept as a marker for :func:`parse_rows`.
    """
    if not file.is_file():
        raise DataError(
            f"no data file at {file}: pass path= or set EMPG_DATA_DIR to the folder holding "
            "gsm8k/ and math/"
        )
    if file.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            records = pq.read_table(file).to_pylist()
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{file}: cannot read as parquet ({type(e).__name__}: {e})") from e
        items: list[tuple[int, Any]] = list(enumerate(records, start=1))
    else:
        data = file.read_bytes()
        if file.suffix == ".json" and data.lstrip()[:1] == b"[":
            try:
                records = json.loads(data.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise DataError(f"{file}: not a valid UTF-8 JSON array ({e})") from e
            items = list(enumerate(records, start=1))
        else:
            items = _read_jsonl(file, data)
    if not items:
        raise DataError(f"{file}: the file is empty (no rows)")
    return Rows(where=str(file), items=items)


def read_hub(spec: HubSpec, split: str, looked_at: Path) -> Rows:
    """Rows of a hub dataset (all ``spec.configs`` concatenated) via ``datasets.load_dataset``."""
    if split not in spec.splits:
        raise DataError(f"{spec.name} has splits {spec.splits}, not {split!r}")
    hint = (
        f"no local file at {looked_at}, and loading {spec.name!r} from the Hugging Face hub "
        "failed ({err}); put the file there, set EMPG_DATA_DIR to the folder holding gsm8k/ and "
        "math/, or pass path="
    )
    try:
        import datasets
    except ImportError as e:
        raise DataError(hint.format(err="the 'datasets' package is not installed")) from e
    items: list[tuple[int, Any]] = []
    for config in spec.configs:
        try:
            if config is None:
                ds = datasets.load_dataset(spec.name, split=split)
            else:
                ds = datasets.load_dataset(spec.name, config, split=split)
        except Exception as e:  # network, auth, missing config: all mean "not available"
            raise DataError(hint.format(err=f"{type(e).__name__}: {e}")) from e
        items.extend((len(items) + i + 1, row) for i, row in enumerate(ds))
    configs = ",".join(c for c in spec.configs if c) or "default"
    return Rows(where=f"hf://{spec.name}[{configs}]/{split}", items=items)


_LEVEL = re.compile(r"^\s*(?:level\s*)?(\d+)\s*$", re.IGNORECASE)


def parse_level(value: Any) -> int | None:
    """``"Level 3"`` or ``3`` -> 3; ``"Level ?"``, missing or anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _LEVEL.match(value)
        return int(m.group(1)) if m else None
    return None


def gsm8k_final(text: str) -> str | None:
    """The text after the last ``#### `` with commas removed (None when there is none)."""
    i = text.rfind("####")
    if i < 0:
        return None
    final = text[i + 4 :].strip().replace(",", "")
    return final or None


def _first(row: dict[str, Any], fields: tuple[str, ...]) -> tuple[str | None, Any]:
    for f in fields:
        if f in row and row[f] is not None:
            return f, row[f]
    return None, None


def _names(fields: tuple[str, ...]) -> str:
    return " or ".join(repr(f) for f in fields)


def _text(field: str, value: Any) -> str:
    """A field's value as non-empty text; numbers are accepted as their decimal text."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"field {field!r} must be text, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise ValueError(f"field {field!r} is empty")
    return text


def _parse_one(row: Any, fmt: RowFormat) -> tuple[dict[str, Any], str | None]:
    """Problem fields of one row, plus the solution text still to box-extract (or None).
    Raises ValueError with the reason."""
    if isinstance(row, _Bad):
        raise ValueError(row.reason)
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    qf, qv = _first(row, fmt.question)
    if qf is None:
        raise ValueError(f"missing field {_names(fmt.question)} (the question)")
    question = _text(qf, qv).strip()
    af, av = _first(row, fmt.answer)
    answer: str | None = None
    pending: str | None = None
    if af is not None:
        raw = _text(af, av)
        style = fmt.answer_style
        if style == "auto":
            style = "gsm8k" if "####" in raw else "boxed" if "\\boxed" in raw else "final"
        if style == "gsm8k":
            answer = gsm8k_final(raw)
            if answer is None:
                raise ValueError(f"field {af!r} has no '#### <answer>' line for the reference")
        elif style == "boxed":
            pending = raw
        else:
            answer = raw.strip()
    else:
        sf, sv = _first(row, fmt.solution)
        if sf is None:
            raise ValueError(f"missing field {_names(fmt.answer + fmt.solution)} (the reference)")
        pending = _text(sf, sv)
    lf, lv = _first(row, fmt.level)
    _, subject = _first(row, fmt.subject)
    idf, idv = _first(row, fmt.id_fields)
    fields = {
        "question": question,
        "answer": answer,
        "level": parse_level(lv) if lf else None,
        "subject": subject if isinstance(subject, str) else None,
        "id": str(idv) if idf else None,
    }
    return fields, pending


def _extract_boxed(texts: list[str]) -> list[str | None]:
    """Last ``\\boxed{}`` content of each text through the Rust verifier (one call)."""
    if not texts:
        return []
    from empg import extract_answers

    got = extract_answers(texts, style="boxed", fallback=False)
    return [g.strip() if isinstance(g, str) and g.strip() else None for g in got]


def parse_rows(
    rows: Rows, fmt: RowFormat, *, skip_bad_rows: bool
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Problem fields (question, answer, level, subject, id) of every good row, and the bad
    ``(row, reason)`` pairs; raises DataError on the first bad row unless ``skip_bad_rows``."""
    bad: list[tuple[int, str]] = []
    good: list[tuple[int, dict[str, Any], str | None]] = []
    for no, row in rows.items:
        try:
            fields, pending = _parse_one(row, fmt)
        except ValueError as e:
            bad.append((no, str(e)))
            continue
        if fields["id"] is None:
            fields["id"] = f"{fmt.id_prefix}{no - 1}"
        good.append((no, fields, pending))
    todo = [i for i, (_, _, pending) in enumerate(good) if pending is not None]
    boxed = _extract_boxed([pending for _, _, pending in good if pending is not None])
    dropped: set[int] = set()
    for i, value in zip(todo, boxed):
        no, fields, _ = good[i]
        if value is None:
            bad.append((no, "no \\boxed{} answer to take the reference from"))
            dropped.add(i)
        else:
            fields["answer"] = value
    bad.sort()
    if bad and not skip_bad_rows:
        no, reason = bad[0]
        more = ""
        if len(bad) > 1:
            more = f" ({len(bad) - 1} more bad rows; skip_bad_rows=True skips them)"
        raise DataError(f"{rows.where}, row {no}: {reason}{more}")
    kept = [fields for i, (_, fields, _) in enumerate(good) if i not in dropped]
    if not kept:
        raise DataError(
            f"{rows.where}: no usable rows ({len(bad)} bad rows, first: row {bad[0][0]}: "
            f"{bad[0][1]})"
        )
    return kept, bad


__all__ = [
    "HubSpec",
    "RowFormat",
    "Rows",
    "gsm8k_final",
    "parse_level",
    "parse_rows",
    "read_hub",
    "read_rows",
]
