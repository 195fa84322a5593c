"""The learning benchmark's harness on a tiny random model: every arm runs the real empg-train, the
records hold every eval row, and the report computes the per-arm table and the paired difference
from them (accuracies are meaningless here; benches/results/learning.md has the real run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))


@pytest.mark.slow
def test_harness_runs_every_arm_and_reports(tmp_path):
    import bench_learning
    import learning_report

    out = tmp_path / "learning"
    assert bench_learning.main(["--tiny", "--seeds", "1", "--out", str(out)]) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    arms = {(r["objective"], r["reuse"]) for r in runs if r["role"] == "compare"}
    assert arms == {(o, k) for o in bench_learning.OBJECTIVES for k in bench_learning.REUSE}
    roles = sorted(r["role"] for r in runs if r["role"] != "compare")
    assert roles == ["baseline", "baseline-curve"] + ["sweep"] * 2
    for r in runs:
        its = [(e["iteration"], e["eval/problems"]) for e in r["rows"] if e["kind"] == "eval"]
        trained = [e["iteration"] for e in r["rows"] if e["kind"] == "train"]
        # baseline: the initial model only (on all 8 problems, and on the curve's 4); a comparison
        # run: an E-step row per iteration and the held-out curve (every iteration on the first 4
        # problems, all 8 at the end); a sweep run: all 8 at the end only
        want = {"baseline": ([(0, 8)], []), "baseline-curve": ([(0, 4)], []),
                "compare": ([(1, 4), (2, 8)], [1, 2]), "sweep": ([(2, 8)], [1, 2])}
        assert (its, trained) == want[r["role"]], (r["role"], its, trained)
        assert f"train.epochs={r['reuse']}" in r["args"] and f"train.algo={r['objective']}" in r["args"]
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta["chosen_lr"]) == {f"{o}/reuse{k}" for o, k in arms}
    assert learning_report.main([str(out)]) == 0
    md = (tmp_path / "learning.md").read_text()
    assert "| empg, reuse 4 | 1 |" in md and "| 4 | 1 |" in md and "initial model" in md and " of 1 |" in md
    # the held-out curve: the initial model on both sets, then every evaluation of the runs
    assert "| arm | it 0, 4 problems | it 0, 8 problems | it 1, 4 problems | it 2, 8 problems |" in md
    assert (tmp_path / "learning.png").read_bytes()[:4] == b"\x89PNG"
    # --resume keeps what is there and runs only what is missing
    lines = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert bench_learning.main(["--tiny", "--seeds", "1", "--resume", "--out", str(out)]) == 0
    again = (out / "runs.jsonl").read_text().splitlines()
    assert again[:-1] == lines[:-1] and len(again) == len(lines)
    assert len(json.loads((out / "meta.json").read_text())["resumed"]) == 1


def test_paired_bootstrap_brackets_a_clear_difference():
    import learning_report

    lo, hi = learning_report.paired_bootstrap(np.array([0.05, 0.06, 0.04, 0.05, 0.07]))
    assert 0.0 < lo < 0.054 < hi < 0.08
    lo, hi = learning_report.paired_bootstrap(np.array([0.05, -0.05, 0.04, -0.04, 0.0]))
    assert lo < 0 < hi
