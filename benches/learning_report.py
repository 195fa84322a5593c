"""learning.md and learning.png from the records of benches/bench_learning.py (``runs.jsonl``,
``meta.json``): per arm the mean ± 95% CI over seeds, the paired EM-PG − GRPO difference with a
paired bootstrap CI, and the held-out greedy curves with bands.

    python benches/learning_report.py benches/results/learning [--out benches/results/learning.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

# Two-sided 95% quantiles of Student's t by degrees of freedom (a statistical table, not a result).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
BOOTSTRAP = 10_000


def load(d: Path) -> tuple[dict, list[dict]]:
    meta = json.loads((d / "meta.json").read_text())
    runs = [json.loads(line) for line in (d / "runs.jsonl").read_text().splitlines() if line.strip()]
    return meta, runs


def evals(rec: dict) -> list[dict]:
    return [r for r in rec["rows"] if r["kind"] == "eval"]


def mean_ci(xs: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for a single value)."""
    if len(xs) < 2:
        return float(xs.mean()), float("nan")
    return float(xs.mean()), T975.get(len(xs) - 1, 1.96) * float(xs.std(ddof=1)) / np.sqrt(len(xs))


def paired_bootstrap(diffs: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean paired difference, resampling seeds."""
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(BOOTSTRAP, len(diffs)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _fmt(m: float, h: float, scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * m:.{digits}f} ± {scale * h:.{digits}f}" if h == h else f"{scale * m:.{digits}f}"


def report(meta: dict, runs: list[dict]) -> list[str]:
    cmp = [r for r in runs if r["role"] == "compare"]
    by_arm: dict[tuple[str, int], dict[int, dict]] = defaultdict(dict)
    for r in cmp:
        by_arm[r["objective"], r["reuse"]][r["seed"]] = r
    first = evals(cmp[0])
    lines = [f"Commit `{meta.get('commit', 'unknown')}`; machine: {meta['machine']}; load average {meta['load_start']} at start, "
             f"{meta.get('load_end', 'n/a')} at end; {meta['parallel']} runs at a time, one torch thread each.",
             f"Task overrides: `{' '.join(meta['task'])}`; held-out problems per evaluation: "
             f"{int(first[-1]['eval/problems'])}; seeds {meta['seeds']}; learning rates chosen on seed "
             f"{meta['sweep_seed']} from {meta['sweep_lrs']}: {meta.get('chosen_lr', {})}.", "",
             "| arm | seeds | greedy before | greedy after | Δ greedy | sampled after | greedy length after "
             "| wall s/run |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (obj, reuse), seeds in sorted(by_arm.items()):
        recs = list(seeds.values())
        before = np.array([evals(r)[0]["eval/greedy_acc"] for r in recs])
        after = np.array([evals(r)[-1]["eval/greedy_acc"] for r in recs])
        sampled = np.array([evals(r)[-1].get("eval/sampled_acc", np.nan) for r in recs])
        length = np.array([evals(r)[-1]["eval/greedy_length"] for r in recs])
        wall = np.array([r["wall_s"] for r in recs])
        lines.append(f"| {obj}, reuse {reuse} | {len(recs)} | {_fmt(*mean_ci(before))} | {_fmt(*mean_ci(after))} "
                     f"| {_fmt(*mean_ci(after - before))} | {_fmt(*mean_ci(sampled))} "
                     f"| {_fmt(*mean_ci(length), scale=1.0)} | {wall.mean():.0f} |")
    lines += ["", "Accuracies in percent, mean ± 95% t-interval half-width over seeds.", "",
              "Paired difference EM-PG − GRPO in final held-out greedy accuracy (same seed, same first E-step):", "",
              "| reuse | pairs | mean difference (points) | 95% paired bootstrap CI |", "|---:|---:|---:|---|"]
    for reuse in sorted({r for _, r in by_arm}):
        e, g = by_arm.get(("empg", reuse), {}), by_arm.get(("grpo", reuse), {})
        common = sorted(set(e) & set(g))
        if not common:
            continue
        d = np.array([evals(e[s])[-1]["eval/greedy_acc"] - evals(g[s])[-1]["eval/greedy_acc"] for s in common])
        lo, hi = paired_bootstrap(d)
        lines.append(f"| {reuse} | {len(common)} | {100 * d.mean():+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] |")
    return lines


def plot(runs: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    arms: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in runs:
        if r["role"] == "compare":
            arms[r["objective"], r["reuse"]].append(r)
    for (obj, reuse), recs in sorted(arms.items()):
        its = [e["iteration"] for e in evals(recs[0])]
        acc = np.array([[e["eval/greedy_acc"] for e in evals(r)] for r in recs])
        m = acc.mean(axis=0)
        h = np.array([mean_ci(acc[:, j])[1] for j in range(acc.shape[1])]) if len(recs) > 1 else np.zeros_like(m)
        ax.plot(its, 100 * m, marker="o", label=f"{obj}, reuse {reuse}")
        ax.fill_between(its, 100 * (m - np.nan_to_num(h)), 100 * (m + np.nan_to_num(h)), alpha=0.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("held-out greedy accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="markdown (default: <records>.md beside the folder)")
    args = ap.parse_args(argv)
    meta, runs = load(args.records)
    out = args.out or args.records.with_suffix(".md")
    lines = ["# Learning: EM-PG vs GRPO (benches/bench_learning.py)", "",
             "Generated by `benches/learning_report.py` from the records in "
             f"`{args.records.name}/`; the plot is `{out.with_suffix('.png').name}`.", "", *report(meta, runs)]
    out.write_text("\n".join(lines) + "\n")
    plot(runs, out.with_suffix(".png"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
