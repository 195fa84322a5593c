"""The time-to-accuracy harness (benches/bench_time_to_accuracy.py) on a tiny random model: every arm
(TRL's real GRPOTrainer.train(), empg's GRPO and EM-PG) trains to its budget of training seconds,
is evaluated by the same code on the way, and the report is generated from the records. The
accuracies are meaningless here; benches/results/time_to_accuracy.md has the real run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benches"))

pytest.importorskip("trl")


def test_clock_evaluates_at_each_mark_and_stops_at_the_budget():
    from bench_time_to_accuracy import Clock

    calls = []
    clock = Clock(10.0, [4.0, 5.0, 8.0], lambda: calls.append(1) or {"greedy_acc": 0.5})
    ticks = [clock.tick(s, r) for s, r in ((3.0, 0.0), (3.0, 1.0), (1.0, 0.5), (5.0, 0.5))]
    assert ticks == [False, False, False, True]
    # 6 s passes the 4 s and 5 s marks (one evaluation), 12 s the budget and the 8 s mark with it
    assert [(r["train_s"], r["iterations"]) for r in clock.rows] == [(6.0, 2), (12.0, 4)]
    assert [r["reward_mean"] for r in clock.rows] == [0.5, 0.5] and len(calls) == 2


def test_report_reads_accuracy_at_each_time_and_time_to_target():
    import time_to_accuracy_report as rep

    rows = [{"train_s": 0.0, "greedy_acc": 0.40}, {"train_s": 50.0, "greedy_acc": 0.43},
            {"train_s": 110.0, "greedy_acc": 0.47}]
    assert rep.after(rows, 30.0)["greedy_acc"] == 0.43 and rep.after(rows, 110.0)["greedy_acc"] == 0.47
    assert rep.after(rows, 111.0) is None
    assert rep.time_to(rows, 0.45) == 110.0 and rep.time_to(rows, 0.5) is None


@pytest.mark.slow
def test_harness_runs_every_arm_and_reports(tmp_path):
    import bench_time_to_accuracy as bench

    out = tmp_path / "tta"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["arm"] for r in runs) == sorted(["start", *bench.ARMS])
    meta = json.loads((out / "meta.json").read_text())
    for r in runs:
        if r["arm"] == "start":
            assert [x["train_s"] for x in r["rows"]] == [0.0]
            continue
        times = [x["train_s"] for x in r["rows"]]
        assert times == sorted(times) and times[-1] >= meta["budget_s"]  # trained to the budget
        assert all(x["iterations"] >= 1 and 0.0 <= x["greedy_acc"] <= 1.0 for x in r["rows"])
    md = (tmp_path / "tta.md").read_text()
    assert "| TRL GRPOTrainer" in md and "| empg as shipped" in md
    assert (tmp_path / "tta.png").read_bytes()[:4] == b"\x89PNG"
