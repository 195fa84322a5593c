"""Smoke test of benches/bench_cpu_side.py (the CPU side of an iteration at GPU scale): both
systems' real code on replayed rollouts (real GSM8K/MATH solutions) at a small size. Timings are
printed by the benchmark, never asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))

pytest.importorskip("trl")


def test_cpu_side_at_gpu_scale_runs_both_systems_on_the_same_rollouts(tmp_path):
    """At a small size: both paths run, agree on every reward, time every part, and the records
    make the table."""
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
