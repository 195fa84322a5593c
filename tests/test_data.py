"""Dataset loading: the real GSM8K / MATH files, bad rows with row-exact errors, other formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import empg
from empg.data import default_data_dir, default_data_path, load_problems
from empg.exceptions import DataError

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "gsm8k" / "test.jsonl").is_file(),
    reason=f"shared data not found at {DATA} (set EMPG_DATA_DIR)",
)
needs_verifier = pytest.mark.skipif(
    not hasattr(empg, "extract_answers"), reason="the verifier (empg.extract_answers) is not built"
)


def raw_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- real data -----------------------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_counts_and_references(split: str) -> None:
    file = DATA / "gsm8k" / f"{split}.jsonl"
    raw = raw_rows(file)
    problems, report = load_problems("gsm8k", split=split)
    assert len(problems) == report.loaded == report.rows == len(raw)
    assert len(problems) == {"train": 7473, "test": 1319}[split]  # the published sizes
    assert report.skipped == [] and report.path == str(file)
    for i in (0, 17, len(raw) // 2, len(raw) - 1):
        p = problems[i]
        assert p.id == f"gsm8k/{split}/{i}"
        assert p.question == raw[i]["question"].strip()
        assert p.answer == raw[i]["answer"].split("####")[-1].strip().replace(",", "")
        assert p.source == "gsm8k" and p.level is None
    # GSM8K references are integers, some written with thousands separators in the file.
    assert all(p.answer.lstrip("-").isdigit() for p in problems)
    assert any("," in r["answer"].split("####")[-1] for r in raw) or split == "test"


@needs_data
def test_math500_uses_answer_field() -> None:
    raw = raw_rows(DATA / "math" / "test500.jsonl")
    problems, report = load_problems("math500", split="test")
    assert report.loaded == len(problems) == 500
    by_id = {p.id: p for p in problems}
    for r in raw:
        p = by_id[r["unique_id"]]
        assert (p.answer, p.level, p.subject) == (r["answer"].strip(), r["level"], r["subject"])
        assert p.question == r["problem"].strip() and p.source == "math"


@needs_data
@needs_verifier
def test_math_hard_levels_and_level_quirks() -> None:
    raw = raw_rows(DATA / "math" / "train.jsonl")
    # Two train solutions end in an empty \boxed{}: no reference, so strict loading refuses.
    empty = [i + 1 for i, r in enumerate(raw) if "\\boxed{}" in r["solution"]]
    assert len(empty) == 2
    with pytest.raises(DataError, match=f"train.jsonl, row {empty[0]}: no .*1 more bad row"):
        load_problems("math_hard", split="train")
    level5 = [i + 1 for i, r in enumerate(raw) if r["level"] == "Level 5"]
    assert len(level5) == 2304  # the count data/README.md documents
    hard, report = load_problems("math_hard", split="train", skip_bad_rows=True)
    assert [row for row, _ in report.skipped] == empty and set(empty) <= set(level5)
    assert len(hard) == len(level5) - len(empty) == report.loaded
    assert report.filtered == len(raw) - len(level5)
    assert {p.level for p in hard} == {5}
    same, _ = load_problems("math", split="train", levels=(5,), skip_bad_rows=True)
    assert [p.id for p in same] == [p.id for p in hard]
    mid, _ = load_problems("math", split="train", levels=(3, 4, 5), skip_bad_rows=True)
    assert Counter(p.level for p in mid) == Counter(
        int(r["level"][-1])
        for i, r in enumerate(raw)
        if r["level"] in ("Level 3", "Level 4", "Level 5") and i + 1 not in empty
    )
    everything, _ = load_problems("math", split="train", skip_bad_rows=True)
    unknown = [p for p in everything if p.level is None]
    assert sorted(p.id for p in unknown) == sorted(
        r["unique_id"] for r in raw if r["level"] == "Level ?"
    )
    assert all(p.id.startswith("train/") and p.subject for p in everything)


@needs_data
@needs_verifier
def test_math_boxed_references_match_math500_answers() -> None:
    test500 = {r["problem"].strip(): r["answer"] for r in raw_rows(DATA / "math" / "test500.jsonl")}
    problems, report = load_problems("math", split="test")
    assert report.loaded == 5000 and report.skipped == []
    pairs = [(p.answer, test500[p.question]) for p in problems if p.question in test500]
    assert len(pairs) == 500
    wrong = [(boxed, ref) for boxed, ref in pairs if not empg.is_equivalent(ref, boxed)]
    assert wrong == []


@needs_data
def test_shuffle_limit_and_levels_filter() -> None:
    a, _ = load_problems("gsm8k", split="test", shuffle_seed=3, limit=50)
    b, _ = load_problems("gsm8k", split="test", shuffle_seed=3, limit=50)
    c, _ = load_problems("gsm8k", split="test", shuffle_seed=4, limit=50)
    first, _ = load_problems("gsm8k", split="test", limit=50)
    assert a == b and len(a) == 50 and a != c
    assert [p.id for p in first] == [f"gsm8k/test/{i}" for i in range(50)]
    m, report = load_problems("math500", split="test", levels=(1,))
    assert {p.level for p in m} == {1} and report.filtered == 500 - len(m)


def test_default_paths() -> None:
    root = default_data_dir()
    assert default_data_path("gsm8k", "test") == root / "gsm8k" / "test.jsonl"
    assert default_data_path("math", "train") == root / "math" / "train.jsonl"
    assert default_data_path("math_hard", "test") == root / "math" / "test.jsonl"
    assert default_data_path("math500", "test") == root / "math" / "test500.jsonl"
    with pytest.raises(DataError, match="only a 'test' split"):
        default_data_path("math500", "train")


def test_missing_data_routes_to_hub_and_says_where_it_looked(tmp_path: Path) -> None:
    """No local file: the hub dataset is tried through datasets.load_dataset (offline here, so it
    fails at once) and the error names the path looked at and the hub name."""
    code = (
        "from empg.data import load_problems\n"
        "from empg.exceptions import DataError\n"
        "for s in ('gsm8k', 'math500'):\n"
        "    try:\n"
        "        load_problems(s, split='test')\n"
        "    except DataError as e:\n"
        "        print(e)\n"
    )
    env = dict(os.environ, EMPG_DATA_DIR=str(tmp_path), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stderr
    assert str(tmp_path / "gsm8k" / "test.jsonl") in lines[0] and "openai/gsm8k" in lines[0]
    assert str(tmp_path / "math" / "test500.jsonl") in lines[1]
    assert "HuggingFaceH4/MATH-500" in lines[1]
    assert all("EMPG_DATA_DIR" in line and "path=" in line for line in lines)


def test_missing_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no data file at .*nope.jsonl"):
        load_problems("gsm8k", path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="unknown source 'gsm9k'"):
        load_problems("gsm9k")


# -- bad rows ------------------------------------------------------------------------------------
GOOD = {"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"}


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def good_line(i: int) -> bytes:
    return json.dumps({"question": f"What is {i} + 1?", "answer": f"#### {i + 1:,}"}).encode()


BAD_LINES = {
    "missing_question": (json.dumps({"answer": "#### 3"}).encode(), "'question'"),
    "missing_answer": (json.dumps({"question": "Why?"}).encode(), "'answer'"),
    "no_reference": (json.dumps({"question": "Why?", "answer": "because"}).encode(), "####"),
    "empty_question": (json.dumps({"question": "  ", "answer": "#### 1"}).encode(), "empty"),
    "non_utf8": (b'{"question": "caf\xe9?", "answer": "#### 1"}', "UTF-8"),
    "invalid_json": (b'{"question": "What?", "answer": ', "invalid JSON"),
    "not_an_object": (b"[1, 2]", "JSON object"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_row_names_file_row_and_field(tmp_path: Path, kind: str) -> None:
    bad, what = BAD_LINES[kind]
    file = write_lines(tmp_path / f"{kind}.jsonl", [good_line(0), good_line(1), bad, good_line(3)])
    with pytest.raises(DataError) as err:
        load_problems("gsm8k", path=str(file))
    message = str(err.value)
    assert str(file) in message and "row 3:" in message and what in message
    problems, report = load_problems("gsm8k", path=str(file), skip_bad_rows=True)
    assert [p.answer for p in problems] == ["1", "2", "4"]  # commas removed from "#### 1,..."
    assert report.rows == 4 and report.loaded == 3
    assert [row for row, _ in report.skipped] == [3] and what in report.skipped[0][1]


def test_many_bad_rows_are_all_reported(tmp_path: Path) -> None:
    lines = [good_line(i) if i % 3 else BAD_LINES["missing_answer"][0] for i in range(10)]
    lines.insert(5, b"")  # a blank line is no row but still counts in line numbers
    file = write_lines(tmp_path / "mixed.jsonl", lines)
    with pytest.raises(DataError, match=r"row 1: .*\(3 more bad rows"):
        load_problems("gsm8k", path=str(file))
    problems, report = load_problems("gsm8k", path=str(file), skip_bad_rows=True)
    assert [row for row, _ in report.skipped] == [1, 4, 8, 11]
    assert len(problems) == report.loaded == 6 and report.rows == 10


def test_empty_and_all_bad_files(tmp_path: Path) -> None:
    for content in (b"", b"\n  \n"):
        file = tmp_path / "empty.jsonl"
        file.write_bytes(content)
        with pytest.raises(DataError, match=f"{file}: the file is empty"):
            load_problems("gsm8k", path=str(file), skip_bad_rows=True)
    file = write_lines(tmp_path / "allbad.jsonl", [b"{", b"{"])
    with pytest.raises(DataError, match="no usable rows .*row 1: invalid JSON"):
        load_problems("gsm8k", path=str(file), skip_bad_rows=True)


@needs_verifier
def test_math_row_without_boxed_answer(tmp_path: Path) -> None:
    rows = [
        {"problem": "1+1?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Alg"},
        {"problem": "2+2?", "solution": "It is 4.", "level": "Level ?", "type": "Algebra"},
        {"problem": "3+3?", "solution": "So $\\boxed{\\frac{12}{2}}$.", "level": "Level 2"},
    ]
    file = write_lines(tmp_path / "m.jsonl", [json.dumps(r).encode() for r in rows])
    with pytest.raises(DataError, match=r"m\.jsonl, row 2: no \\boxed\{\} answer"):
        load_problems("math", path=str(file))
    problems, report = load_problems("math", path=str(file), skip_bad_rows=True)
    assert [(p.answer, p.level, p.subject) for p in problems] == [
        ("2", 1, "Alg"),
        ("\\frac{12}{2}", 2, None),
    ]
    assert report.skipped == [(2, "no \\boxed{} answer to take the reference from")]


# -- other formats -------------------------------------------------------------------------------
def test_generic_jsonl_with_named_fields(tmp_path: Path) -> None:
    rows = [{"q": f"Item {i}?", "final": i * 7, "id": f"x{i}"} for i in range(5)]
    file = write_lines(tmp_path / "mine.jsonl", [json.dumps(r).encode() for r in rows])
    problems, report = load_problems(str(file), question_field="q", answer_field="final")
    assert [(p.id, p.question, p.answer) for p in problems] == [
        (f"x{i}", f"Item {i}?", str(i * 7)) for i in range(5)
    ]
    assert all(p.source == str(file) for p in problems) and report.loaded == 5
    with pytest.raises(DataError, match=r"row 1: missing field 'question' or 'problem'"):
        load_problems(str(file))


def test_parquet_and_json_array(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [GOOD, {"question": "And 3 + 3?", "answer": "#### 6"}, {"question": "No answer"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    (tmp_path / "d.json").write_text(json.dumps(rows), encoding="utf-8")
    for name in ("d.parquet", "d.json"):
        path = str(tmp_path / name)
        with pytest.raises(DataError, match=f"{name}, row 3: missing field 'answer'"):
            load_problems("gsm8k", path=path)
        problems, report = load_problems("gsm8k", path=path, skip_bad_rows=True)
        assert [p.answer for p in problems] == ["4", "6"] and report.skipped[0][0] == 3


def test_arith_source_uses_levels_as_difficulties() -> None:
    test, report = load_problems("arith", split="test")
    assert len(test) == report.loaded == 256 and {p.level for p in test} == {0}
    mixed, _ = load_problems("arith", split="train", levels=(0, 3), limit=40, shuffle_seed=1)
    assert Counter(p.level for p in mixed) == Counter({0: 20, 3: 20})
    with pytest.raises(DataError, match="arith: only .* distinct test problems"):
        load_problems("arith", split="test", limit=10_000)
