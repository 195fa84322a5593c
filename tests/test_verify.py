"""The verifier through its Python API: extraction styles, equivalence, batches, errors, and the
real data (every MATH500 solution's boxed answer matches its `answer` field; GSM8K `#### N` answers
round-trip through extraction and still match when reformatted)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import empg
from empg.exceptions import InvalidInputError


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ---------------------------------------------------------------- API and errors


def test_extract_answers_by_style():
    texts = [
        "so $x = \\boxed{\\frac{1}{2}}$.",
        "3 + 4 = 7\n#### 7",
        "We get 12 apples, so the answer is 12.",
        "I think it is 41 or maybe 42",
        "no answer here",
        "\\boxed{\\frac{1}{2}",
    ]
    # An unbalanced box is no box: auto falls through to the last number.
    assert empg.extract_answers(texts, style="auto") == ["\\frac{1}{2}", "7", "12", "42", None, "2"]
    assert empg.extract_answers(texts, style="boxed") == ["\\frac{1}{2}", None, None, None, None, None]
    assert empg.extract_answers(texts, style="gsm8k", fallback=False) == [None, "7", "12", None, None, None]


def test_is_equivalent_basic_and_symmetric_cases():
    assert empg.is_equivalent("0.5", "\\frac{1}{2}")
    assert empg.is_equivalent(1000, "1,000")
    assert not empg.is_equivalent("0.5", "\\frac{1}{3}")
    assert not empg.is_equivalent("", "")


def test_verify_batch_returns_float32_rewards():
    out = empg.verify_batch(
        ["\\boxed{6}", "#### 7", "the answer is $\\frac{3}{4}$", "nothing"],
        ["6", 8, "0.75", "1"],
    )
    assert out.dtype == np.float32 and out.shape == (4,)
    assert out.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert empg.verify_batch([], []).shape == (0,)


def test_bad_arguments_raise_invalid_input():
    with pytest.raises(InvalidInputError, match="style"):
        empg.extract_answers(["x"], style="latex")
    with pytest.raises(InvalidInputError, match="style"):
        empg.verify_batch(["x"], ["x"], style="")
    with pytest.raises(InvalidInputError, match="references has 1 entries but 2"):
        empg.verify_batch(["a", "b"], ["a"])
    with pytest.raises(TypeError):
        empg.extract_answers("a single string")


def test_parallel_and_sequential_batches_agree(monkeypatch):
    responses = [f"step\n#### {i % 17}" for i in range(3000)]
    refs = [str(i % 13) for i in range(3000)]
    par = empg.verify_batch(responses, refs, style="gsm8k")
    monkeypatch.setenv("EMPG_PARALLELISM", "0")
    seq = empg.verify_batch(responses, refs, style="gsm8k")
    np.testing.assert_array_equal(par, seq)
    assert par.sum() == sum(1 for i in range(3000) if i % 17 == i % 13)


def test_hostile_inputs_are_non_matches():
    big = "1" * (1 << 20)
    hostile = [big, "(" * 100_000, "\\frac{" * 5000, "10^{10^{10}}", "}" * 1000 + "\\boxed{", "\x00\udcff"[:1]]
    out = empg.verify_batch(hostile, ["1"] * len(hostile))
    assert out.tolist() == [0.0] * len(hostile)
    assert all(a is None or isinstance(a, str) for a in empg.extract_answers(hostile))


# ---------------------------------------------------------------- real data


def _key(s: str) -> str:
    """A normalised string of an answer's value, independent of the verifier: for choosing rows
    whose answers really differ. Drops spacing, delimiters, degree signs, currency, text units,
    a leading `x=`, and orders comma lists."""
    s = re.sub(r"\\(left|right|!|,|;|\s)|\$|\\\$|\s|\^\\circ|\^\{\\circ\}", "", s)
    s = re.sub(r"\\(mbox|text)\{[^}]*\}(\^\d)?", "", s)
    s = re.sub(r"^[a-z]=", "", s)
    s = s.replace("dfrac", "frac").replace("{1}{4}", "14")
    s = re.sub(r"(\d),(\d{3})", r"\1\2", s)
    return ",".join(sorted(s.split(","))) if "(" not in s and "[" not in s else s


def test_math500_boxed_solutions_match_their_answers(shared_data):
    rows = read_jsonl(shared_data / "math" / "test500.jsonl")
    assert len(rows) == 500
    extracted = empg.extract_answers([r["solution"] for r in rows], style="boxed")
    refs = [r["answer"] for r in rows]
    bad = [(i, e, a) for i, (e, a) in enumerate(zip(extracted, refs)) if e is None or not empg.is_equivalent(a, e)]
    assert bad == []
    # The same through the batch API, from the whole solution text.
    assert empg.verify_batch([r["solution"] for r in rows], refs, style="boxed").tolist() == [1.0] * 500


def test_math500_answers_of_other_rows_do_not_match(shared_data):
    rows = read_jsonl(shared_data / "math" / "test500.jsonl")
    refs = [r["answer"] for r in rows]
    n = len(refs)
    wrong = []
    for i, ref in enumerate(refs):
        # The next row whose answer differs by the independent normalised-string key.
        other = next(refs[(i + k) % n] for k in range(1, n) if _key(refs[(i + k) % n]) != _key(ref))
        if empg.is_equivalent(ref, other) or empg.is_equivalent(other, ref):
            wrong.append((i, ref, other))
    assert wrong == []


def test_gsm8k_answers_round_trip_and_survive_reformatting(shared_data):
    rows = read_jsonl(shared_data / "gsm8k" / "test.jsonl")
    assert len(rows) == 1319
    finals = [r["answer"].rsplit("####", 1)[1].strip() for r in rows]
    assert empg.extract_answers([r["answer"] for r in rows], style="gsm8k") == finals
    assert empg.verify_batch([r["answer"] for r in rows], finals, style="gsm8k").all()
    values = [float(f.replace(",", "")) for f in finals]
    variants: list[tuple[str, str]] = []
    for f, v in zip(finals, values):
        whole = v == int(v)
        plain = str(int(v)) if whole else str(v)
        variants += [
            (f, f"{int(v):,}" if whole else plain),
            (f, f"${plain}"),
            (f, f"\\${plain}.00" if whole else f"\\${plain}"),
            (f, f"{plain} dollars"),
            (f, f"{plain}\\text{{ cm}}"),
            (f, f"\\boxed{{{plain}}}"),
        ]
    refs, cands = zip(*variants)
    responses = [f"Let me compute.\nThe answer is {c}." if not c.startswith("\\boxed") else c for c in cands]
    assert all(empg.is_equivalent(r, c) for r, c in variants if not c.startswith("\\boxed"))
    assert empg.verify_batch(list(responses), list(refs), style="auto").all()
    # A different number never matches.
    off = [str(int(v) + 1) if v == int(v) else str(v + 0.5) for v in values]
    assert not empg.verify_batch([f"#### {o}" for o in off], finals, style="gsm8k").any()
