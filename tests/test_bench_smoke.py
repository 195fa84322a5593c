"""Smoke test of the head-to-head benchmark's harness (benches/bench_vs_trl.py): the CPU-side
scaling view at its smallest size, for empg and for TRL's real GRPOTrainer, on real GSM8K/MATH
solutions. Checks that each side runs its real code end to end and scores the rollouts against
the right references; timings are printed by the benchmark, never asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    from conftest import data_dir

    if not (data_dir() / "gsm8k" / "train.jsonl").exists():
        pytest.skip(f"shared data not found at {data_dir()} (set EMPG_DATA_DIR)")
    from vs_trl import cpu_side

    return cpu_side.sweep([64], group_size=8, systems=("empg", "trl/math-verify"), log=lambda _: None)


def test_both_systems_score_the_rollouts(points):
    from vs_trl.rollouts import make

    labels = np.array(make(64, 8, 0).labels)
    assert {p.system for p in points} == {"empg", "trl/math-verify"}
    for p in points:
        assert p.rollouts == 64 and p.rewards is not None and p.rewards.shape == (64,)
        assert set(np.unique(p.rewards)) <= {0.0, 1.0}
        # each verifier sees the right reference: correct solutions score far above perturbed ones
        assert p.rewards[labels].mean() > p.rewards[~labels].mean() + 0.5, p.system
        assert p.seconds > 0 and all(v >= 0 for v in p.parts.values())
        assert sum(p.parts.values()) == pytest.approx(p.seconds, rel=1e-6)


def test_report_and_plot(points, tmp_path):
    from vs_trl import cpu_side, report

    table = report.scaling_table(points)
    assert table[0].startswith("| rollouts | empg (ms) | trl/math-verify (ms)")
    assert table[2].startswith("| 64 | ")
    out = tmp_path / "scaling.png"
    cpu_side.plot(points, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interpolate_is_log_log():
    from vs_trl.cpu_side import Point
    from vs_trl.report import interpolate

    pts = [Point("empg", 256, 0.01), Point("empg", 4096, 0.16)]
    assert interpolate(pts, "empg", 256) == 0.01
    assert interpolate(pts, "empg", 1024) == pytest.approx(0.04)  # 4x rollouts of 16x -> 4x time
    assert interpolate(pts, "empg", 64) is None


def test_cpu_side_at_gpu_scale_runs_both_systems_on_the_same_rollouts(tmp_path):
    """benches/bench_cpu_side.py at a small size: both paths run, agree on every reward, time
    every part, and the records make the table."""
    from conftest import data_dir

    if not (data_dir() / "gsm8k" / "train.jsonl").exists():
        pytest.skip(f"shared data not found at {data_dir()} (set EMPG_DATA_DIR)")
    import bench_cpu_side as bench

    rec = bench.measure([(64, 96)], repeats=1, trl_repeats=1, log=lambda _: None)
    (r,) = rec["records"]
    assert r["completions"] == 64 and 90 <= r["tokens"] / 64 <= 100
    assert r["reward_agreement"] == 1.0
    run = r["empg"][0]
    assert 0 < run["kept"] <= 64 and run["microbatches"] >= 1
    assert sum(run["parts"].values()) == pytest.approx(run["seconds"], rel=1e-6)
    assert "| 64 | " in bench.table(rec)
