"""Bad data through the trainer's real path (``empg-train`` = ``cli.train_main``): each error names
the file and the row and comes before any model loads; ``data.skip_bad_rows=true`` skips the rows
and counts them on the console and in metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import faultkit as fk
from empg.cli import train_main

SENTINEL = "empg: loading model"  # printed by empg.build.build right before the weights load
GOOD = [{"question": f"What is {a} + 1?", "answer": str(a + 1)} for a in range(6)]

# name -> (the bad line written as row 3, the words the error must contain)
BAD_ROWS = {
    "missing question": (json.dumps({"answer": "4"}), "missing field 'question'"),
    "missing answer": (json.dumps({"question": "What is 2 + 2?"}), "(the reference)"),
    "no extractable reference": (json.dumps({"question": "What is 2 + 2?", "answer": "four ####"}),
                                 "no '#### <answer>' line"),
    "boxed solution without a box": (
        json.dumps({"question": "What is 2 + 2?", "solution": "It is \\boxed{"}),
        "no \\boxed{} answer"),
    "non-UTF-8 line": (b'{"question": "What is 2 + 2?", "answer": "\xff\xfe"}', "not valid UTF-8"),
    "not JSON": ("{question: 2 + 2}", "invalid JSON"),
}


def _write(path: Path, bad: str | bytes | None) -> Path:
    lines = [json.dumps(r).encode() for r in GOOD]
    if bad is not None:
        lines.insert(2, bad if isinstance(bad, bytes) else bad.encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _args(tmp_path: Path, data: Path, *extra: str) -> list[str]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(fk.config_text(Path("tiny-llama"), data, tmp_path / "run", train__iterations=0))
    return [str(cfg), *extra]


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_row_fails_naming_file_and_row_before_the_model_loads(tmp_path, capsys, case):
    bad, words = BAD_ROWS[case]
    data = _write(tmp_path / "d.jsonl", bad)
    assert train_main(_args(tmp_path, data)) == 2
    out, err = capsys.readouterr()
    assert f"error (DataError): {data}, row 3: " in err, err
    assert words in err, err
    assert SENTINEL not in out


@pytest.mark.parametrize("case", ["missing question", "non-UTF-8 line", "no extractable reference"])
def test_skip_bad_rows_skips_and_counts(tmp_path, capsys, case):
    data = _write(tmp_path / "d.jsonl", BAD_ROWS[case][0])
    assert train_main(_args(tmp_path, data, "data.skip_bad_rows=true")) == 0
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if x.startswith("empg: data: skipped")]
    assert line.startswith(f"empg: data: skipped 1 bad rows of {data} (row 3: "), err
    assert BAD_ROWS[case][1] in line
    assert SENTINEL in out
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"iteration": 0, "kind": "data", "data/skipped_rows": 1.0} in records
    assert any(r["kind"] == "eval" for r in records)  # and the run went on


@pytest.mark.parametrize("skip", [False, True])
def test_empty_file_is_an_error_even_when_skipping(tmp_path, capsys, skip):
    data = tmp_path / "empty.jsonl"
    data.write_bytes(b"")
    assert train_main(_args(tmp_path, data, f"data.skip_bad_rows={str(skip).lower()}")) == 2
    out, err = capsys.readouterr()
    assert f"error (DataError): {data}: the file is empty" in err, err
    assert SENTINEL not in out


def test_only_bad_rows_is_an_error_even_when_skipping(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"answer": "1"}\n{"answer": "2"}\n')
    assert train_main(_args(tmp_path, data, "data.skip_bad_rows=true")) == 2
    out, err = capsys.readouterr()
    assert f"{data}: no usable rows (2 bad rows, first: row 1: missing field" in err, err
    assert SENTINEL not in out
