"""The README's and docs/default_run.md's default-run tables are what scripts/default_run_report.py
generates from the committed run files (so no number there is typed in)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("default_run_report", REPO / "scripts" / "default_run_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def test_committed_tables_are_generated_from_the_run_files():
    assert report.main(["--check"]) == 0


def test_tables_follow_the_metrics(tmp_path, monkeypatch):
    """Changing one eval number in a run file changes the rendered README table."""
    arms = {a: report.load_arm(a) for a in report.ARMS}
    before = report.render((REPO / "README.md").read_text(), report.sections(arms, {0: arms["empg"]}))
    arms["empg"]["evals"][-1]["eval/greedy_acc"] = 0.0
    after = report.render((REPO / "README.md").read_text(), report.sections(arms, {0: arms["empg"]}))
    assert before != after and "0.0% [" in after


def test_a_seed_learns_only_when_its_rise_exceeds_the_half_width():
    arm = report.load_arm("empg")
    n = int(arm["evals"][-1]["eval/problems"])
    lo, hi = report.wilson(0.5, n)
    for after, verdict in ((0.5 + (hi - lo), "yes"), (0.5 + (hi - lo) / 4, "no"), (0.4, "no")):
        arm["evals"][0]["eval/greedy_acc"], arm["evals"][-1]["eval/greedy_acc"] = 0.5, after
        lines = report.seeds_table({3: arm})
        row = lines[2]
        assert row.startswith("| 3 |") and row.split(" | ")[6] == verdict, row
        assert lines[-1] == f"Greedy rise above its half-width in {int(verdict == 'yes')} of 1 seeds."


def test_earlier_default_seeds_table_is_rendered_from_its_own_files():
    seeds = report.load_seeds("earlier/")
    assert len(seeds) == 5
    parts = report.sections({a: report.load_arm(a) for a in report.ARMS}, report.load_seeds())
    assert parts["seeds-earlier"] == report.seeds_table(seeds) != parts["seeds"]


def test_explored_runs_table_lists_each_run_and_its_evaluations():
    runs = {d.name: report.load_arm(f"explored/{d.name}") for d in sorted((report.RUNS / "explored").iterdir())}
    lines = report.explored_table(runs)
    assert len(lines) == 2 + len(runs) and len(runs) >= 1
    for line, (name, arm) in zip(lines[2:], sorted(runs.items())):
        assert line.startswith(f"| {name} | {arm['run']['changes']} |")
        first = arm["evals"][0]  # iteration 0 where the run evaluated before training
        assert f"| {int(first['iteration'])}: {report._pct(first['eval/greedy_acc'])}" in line


def test_wilson_interval_brackets_the_estimate():
    lo, hi = report.wilson(0.5, 64)
    assert lo < 0.5 < hi and abs((0.5 - lo) - (hi - 0.5)) < 1e-12
    lo0, hi0 = report.wilson(0.0, 64)
    assert lo0 <= 1e-12 and 0 < hi0 < 0.1


def test_readme_quotes_the_generated_benchmark_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    assert "<!-- from: benches/results/cpu_side.md -->" in (REPO / "README.md").read_text()
    assert tables.main(["--check"]) == 0
