"""The head-to-head's harness (benches/bench_vs_trl.py) on a tiny random model: the rows run their
real loops (TRL's GRPOTrainer.train() and empg's iteration) in rounds, every iteration is recorded,
and the report (with its README section) is generated from the records. Timings are meaningless
here; benches/results/vs_trl.md has the real run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benches"))

pytest.importorskip("trl")

ROWS = ("trl/no-gc", "empg-grpo", "empg")


@pytest.mark.slow
def test_harness_records_every_iteration_and_reports(tmp_path):
    import bench_vs_trl
    import vs_trl_report

    out, md = tmp_path / "vs_trl", tmp_path / "vs_trl.md"
    assert bench_vs_trl.main(["--quick", "--workloads", "arith", "--systems", ",".join(ROWS),
                              "--out", str(out), "--report", str(md)]) == 0
    records = json.loads((out / "records.json").read_text())
    meta = json.loads((out / "meta.json").read_text())
    assert meta["bench_commit"] and len(meta["load_start"]) == 3 and meta["versions"]["trl"]
    systems = records["arith"]["systems"]
    assert list(systems) == list(ROWS)
    for name, row in systems.items():
        assert row["error"] is None, row["error"]
        its = row["iterations"]
        assert [r["iteration"] for r in its] == [0, 1, 2] and [r["warmup"] for r in its] == [True, False, False]
        for r in its:
            assert r["end_s"] > r["start_s"] and r["generated_tokens"] > 0 and r["rollouts"] == 4
            assert sum(r["split"].values()) == pytest.approx(r["wall"], rel=1e-6)
        assert row["info"]["peak_rss"] > 0
    trl, grpo, empg = (systems[n] for n in ROWS)
    assert trl["info"]["config"]["loss_type"] == "dapo" and trl["info"]["config"]["gradient_accumulation_steps"] == 2
    assert grpo["info"]["config"]["train.algo"] == "grpo" and not grpo["info"]["config"]["train.drop_zero_signal"]
    # every group trained on both sides: the same completion tokens per iteration
    for a, b in zip(trl["iterations"], grpo["iterations"]):
        assert a["trained_tokens"] == a["generated_tokens"] and b["trained_tokens"] == b["generated_tokens"]
    # the tiny random model solves nothing: empg as shipped drops every group, trains no token
    assert all(r["trained_tokens"] == 0 for r in empg["iterations"])
    text = md.read_text()
    assert "| empg-grpo | + prefix sharing" in text and "## arith" in text and "Not run" not in text
    assert vs_trl_report.main([str(out), "--out", str(md), "--check"]) == 0


def test_ratio_is_a_median_ratio_with_a_paired_interval():
    import vs_trl_report

    slow = {i: {"wall": w} for i, w in enumerate([10.0, 12.0, 11.0, 30.0, 10.5])}
    fast = {i: {"wall": w} for i, w in enumerate([5.0, 6.0, 5.5, 5.2, 5.1])}
    est, lo, hi = vs_trl_report.ratio(slow, fast, "iteration")
    assert est == pytest.approx(np.median([10, 12, 11, 30, 10.5]) / np.median([5, 6, 5.5, 5.2, 5.1]))
    assert lo <= est <= hi and lo > 1.5


def test_gpu_mode_defaults_and_model_shape():
    """--gpu (run by benches/gpu_vs_trl.sh on a lent GPU; parsed here without one): both sides on
    CUDA in bf16, one row at a time, GSM8K first; the model has Qwen2.5-0.5B's published shape (0.36B
    non-embedding parameters, the Qwen2.5 report's table) with SmolLM2's vocabulary."""
    import torch
    from transformers import AutoModelForCausalLM

    import bench_vs_trl
    from vs_trl.task import qwen05b_config

    a = bench_vs_trl.parse(["--gpu"])
    assert (a.device, a.dtype, a.lanes, a.workloads) == ("cuda", "bfloat16", 1, "gsm8k,arith")
    assert a.systems.split(",") == list(bench_vs_trl.GPU_ROWS) and a.trl_micro_batch == 8
    cpu = bench_vs_trl.parse([])
    assert (cpu.device, cpu.dtype, cpu.lanes, cpu.trl_micro_batch) == ("cpu", "float32", 2, 2)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(qwen05b_config(49152))
    body = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
    assert 0.35e9 < body < 0.37e9 and model.config.tie_word_embeddings


def test_totals_line_sums_each_sides_own_work():
    import vs_trl_report

    def row(walls, tokens):
        return {"iterations": [{"iteration": 0, "warmup": True, "wall": 99.0, "generated_tokens": 1}] + [
            {"iteration": i + 1, "warmup": False, "wall": w, "generated_tokens": n}
            for i, (w, n) in enumerate(zip(walls, tokens))]}

    done = {"gsm8k": {"trl/no-gc": row([30.0, 10.0], [900, 300]), "empg-grpo": row([10.0, 10.0], [600, 400])}}
    (line,) = [x for x in vs_trl_report.totals(done) if x]
    assert "over all 2 timed iterations" in line  # the warm-up is not counted
    assert "trl/no-gc generated 1,200 tokens, empg-grpo 1,000" in line
    assert f"total time ÷ empg-grpo's: {40 / 20:.2f}× (trl/no-gc)" in line
    assert f"per generated token: {(40 / 1200) / (20 / 1000):.2f}× (trl/no-gc)" in line


def test_readme_quotes_a_section(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    f = tmp_path / "r.md"
    f.write_text("# title\n\n`python x`\n\nintro\n\n## Summary\n\nrow 1\nrow 2\n\n## arith\n\nmore\n")
    assert tables.body(f, "Summary") == "row 1\nrow 2\n"
    assert tables.body(f).startswith("intro\n")


def test_committed_report_is_generated_from_the_committed_records():
    import vs_trl_report

    records = REPO / "benches" / "results" / "vs_trl"
    if not (records / "records.json").exists():
        pytest.skip("no committed head-to-head records yet (benches/bench_vs_trl.py writes them)")
    assert vs_trl_report.main([str(records), "--check"]) == 0
