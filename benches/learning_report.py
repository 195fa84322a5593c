"""learning.md and learning.png from the records of benches/bench_learning.py (``runs.jsonl``,
``meta.json``): per arm the mean ± 95% CI over seeds, the paired EM-PG − GRPO difference with a
paired bootstrap CI, the held-out greedy curve, and a plot of the curves (held-out greedy, E-step
sampled accuracy) with bands.

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


def trains(rec: dict) -> list[dict]:
    return [r for r in rec["rows"] if r["kind"] == "train"]


LAST = 2  # "late" E-step numbers: the mean of the last LAST iterations


def late(rec: dict, key: str) -> float:
    return float(np.mean([r.get(key, np.nan) for r in trains(rec)[-LAST:]]))


def report(meta: dict, runs: list[dict]) -> list[str]:
    cmp = [r for r in runs if r["role"] == "compare"]
    base = next(r for r in runs if r["role"] == "baseline")
    start = evals(base)[0]
    by_arm: dict[tuple[str, int], dict[int, dict]] = defaultdict(dict)
    for r in cmp:
        by_arm[r["objective"], r["reuse"]][r["seed"]] = r
    sweep = sorted((r for r in runs if r["role"] == "sweep"), key=lambda r: (r["objective"], r["lr"]))
    n = int(evals(cmp[0])[-1]["eval/problems"])
    lines = [f"Commit `{meta.get('commit', 'unknown')}`; machine: {meta['machine']}; load average {meta['load_start']} "
             f"at start, {meta.get('load_end', 'n/a')} at end; {meta['parallel']} runs at a time, one torch thread each"
             + "".join(f"; resumed at commit `{r['commit']}`, load {r['load']}" for r in meta.get("resumed", [])) + ".",
             f"Task overrides: `{' '.join(meta['task'])}`; {n} held-out problems (disjoint from training); "
             f"seeds {meta['seeds']}.", "",
             f"Learning rates: the same sweep {meta['sweep_lrs']} for each objective at reuse 1 on seed "
             f"{meta['sweep_seed']} (not a comparison seed), ranked by held-out greedy accuracy on "
             f"{int(evals(sweep[0])[-1]['eval/problems'])} problems: "
             + ", ".join(f"{r['objective']} {r['lr']:g}: {100 * final_greedy_of(r):.1f}%" for r in sweep)
             + f"; chosen {meta.get('chosen_lr', {})}, used at both reuse settings.", "",
             f"The initial model (every arm's start): greedy {100 * start['eval/greedy_acc']:.1f}% on the {n} "
             f"held-out problems, mean greedy length {start['eval/greedy_length']:.1f} tokens.", "",
             "| arm | seeds | greedy after | Δ greedy vs start | sampled, first E-step | sampled, last "
             f"{LAST} E-steps | length, last {LAST} E-steps | greedy length after | seeds below start "
             "| optimizer steps | wall s/run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (obj, reuse), seeds in sorted(by_arm.items()):
        recs = list(seeds.values())
        after = np.array([evals(r)[-1]["eval/greedy_acc"] for r in recs])
        first = np.array([trains(r)[0]["reward/mean"] for r in recs])
        last = np.array([late(r, "reward/mean") for r in recs])
        length = np.array([late(r, "length/mean") for r in recs])
        glen = np.array([evals(r)[-1]["eval/greedy_length"] for r in recs])
        steps = np.array([sum(t.get("mstep/steps", 0.0) for t in trains(r)) for r in recs])
        wall = np.array([r["wall_s"] for r in recs])
        lines.append(f"| {obj}, reuse {reuse} | {len(recs)} | {_fmt(*mean_ci(after))} "
                     f"| {_fmt(*mean_ci(after - start['eval/greedy_acc']))} | {_fmt(*mean_ci(first))} "
                     f"| {_fmt(*mean_ci(last))} | {_fmt(*mean_ci(length), scale=1.0)} "
                     f"| {_fmt(*mean_ci(glen), scale=1.0)} | {int((after < start['eval/greedy_acc']).sum())} of {len(recs)} "
                     f"| {steps.mean():.0f} | {wall.mean():.0f} |")
    lines += ["", "Accuracies in percent, mean ± 95% t-interval half-width over seeds. Sampled: the E-step's mean "
              "reward (T = 0.8, K samples of fresh training problems, not yet trained on); the first E-step "
              "samples the initial weights. Optimizer steps: per run (zero-signal groups shorten M-steps). Wall: "
              "per run, its held-out evaluations included.", "",
              "**Paired difference EM-PG − GRPO** in final held-out greedy accuracy (same seed: the same first "
              "E-step):", "",
              "| reuse | pairs | mean difference (points) | 95% paired bootstrap CI | per seed |",
              "|---:|---:|---:|---|---|"]
    for reuse in sorted({r for _, r in by_arm}):
        e, g = by_arm.get(("empg", reuse), {}), by_arm.get(("grpo", reuse), {})
        common = sorted(set(e) & set(g))
        if not common:
            continue
        d = np.array([final_greedy_of(e[s]) - final_greedy_of(g[s]) for s in common])
        lo, hi = paired_bootstrap(d)
        lines.append(f"| {reuse} | {len(common)} | {100 * d.mean():+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] | "
                     + ", ".join(f"{100 * x:+.1f}" for x in d) + " |")
    lines += curve_table(runs, by_arm)
    keys = sorted({k for r in cmp for t in trains(r) for k in t if k.startswith("behaviour/")})
    if keys:
        lines += ["", f"Behaviour counts of the E-step completions (share, mean of the last {LAST} iterations "
                  "and over seeds):", "", "| arm | " + " | ".join(k.split("/", 1)[1] for k in keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        for (obj, reuse), seeds in sorted(by_arm.items()):
            vals = [np.mean([late(r, k) for r in seeds.values()]) for k in keys]
            lines.append(f"| {obj}, reuse {reuse} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    return lines


def curve_start(runs: list[dict]) -> dict[int, float]:
    """The initial model's greedy accuracy by the number of held-out problems evaluated."""
    return {int(evals(r)[0]["eval/problems"]): float(evals(r)[0]["eval/greedy_acc"])
            for r in runs if r["role"].startswith("baseline")}


def curve(recs: list[dict]) -> list[tuple[int, int, np.ndarray]]:
    """(iteration, problems, greedy accuracy per seed) at each held-out evaluation of the runs."""
    marks = [(int(e["iteration"]), int(e["eval/problems"])) for e in evals(recs[0])]
    return [(it, n, np.array([next(e["eval/greedy_acc"] for e in evals(r) if e["iteration"] == it) for r in recs]))
            for it, n in marks]


def curve_table(runs: list[dict], by_arm: dict[tuple[str, int], dict[int, dict]]) -> list[str]:
    """Held-out greedy accuracy at every evaluation, iteration 0 being the initial model."""
    marks = [(it, n) for it, n, _ in curve(list(next(iter(by_arm.values())).values()))]
    if len(marks) < 2:
        return []
    start = curve_start(runs)
    cols = [(0, n) for n in sorted(start) if n in {m for _, m in marks}] + marks
    lines = ["", "**Held-out greedy curve** (percent, mean ± 95% t-interval over seeds; iteration 0 is the "
             "initial model):", "", "| arm | " + " | ".join(f"it {it}, {n} problems" for it, n in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for (obj, reuse), seeds in sorted(by_arm.items()):
        cells = {(it, n): _fmt(*mean_ci(acc)) for it, n, acc in curve(list(seeds.values()))}
        cells.update({(0, n): f"{100 * start[n]:.1f}" for n in start})
        lines.append(f"| {obj}, reuse {reuse} | " + " | ".join(cells.get(c, "") for c in cols) + " |")
    return lines


def final_greedy_of(rec: dict) -> float:
    return float(evals(rec)[-1]["eval/greedy_acc"])


def plot(runs: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    arms: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in runs:
        if r["role"] == "compare":
            arms[r["objective"], r["reuse"]].append(r)
    start = curve_start(runs)
    for (obj, reuse), recs in sorted(arms.items()):
        points = curve(recs)
        small = points[:-1]  # the marks before the end: the smaller set
        n_small = small[0][1] if small else None
        xs = ([0] if n_small in start else []) + [it for it, _, _ in small]
        mh = ([(start[n_small], 0.0)] if n_small in start else []) + [mean_ci(acc) for _, _, acc in small]
        m, h = np.array([a for a, _ in mh]), np.nan_to_num(np.array([b for _, b in mh]))
        line, = left.plot(xs, 100 * m, marker="o", label=f"{obj}, reuse {reuse}")
        left.fill_between(xs, 100 * (m - h), 100 * (m + h), alpha=0.15, color=line.get_color())
        it_end, _, acc_end = points[-1]
        me, he = mean_ci(acc_end)
        left.errorbar([it_end], [100 * me], yerr=[[100 * np.nan_to_num(he)]], fmt="s", mfc="none", capsize=4,
                      color=line.get_color())
        its = [t["iteration"] for t in trains(recs[0])]
        acc = np.array([[t["reward/mean"] for t in trains(r)] for r in recs])
        m = acc.mean(axis=0)
        h = np.nan_to_num(np.array([mean_ci(acc[:, i])[1] for i in range(acc.shape[1])]))
        right.plot(its, 100 * m, marker="o", label=f"{obj}, reuse {reuse}", color=line.get_color())
        right.fill_between(its, 100 * (m - h), 100 * (m + h), alpha=0.15, color=line.get_color())
    if start:
        n_all = max(start)
        left.axhline(100 * start[n_all], color="grey", linestyle="--", label=f"initial model, {n_all} problems")
    sizes = sorted({n for recs in arms.values() for _, n, _ in curve(recs)})
    left.set_title("held-out greedy: " + " (circles), ".join(f"{n} problems" for n in sizes) + " (squares, at the end)",
                   fontsize=9)
    left.set_xlabel("iteration")
    left.set_ylabel("held-out greedy accuracy (%)")
    right.set_title("E-step: fresh training problems, sampled at T = 0.8", fontsize=9)
    right.set_xlabel("iteration")
    right.set_ylabel("E-step sampled accuracy (%)")
    for ax in (left, right):
        ax.set_ylim(0, 100)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
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
