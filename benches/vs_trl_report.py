"""vs_trl.md from the records of benches/bench_vs_trl.py (``records.json``, ``meta.json``): per
workload every row's medians (time per iteration, per generated and per trained token, tokens,
peak RSS, time split) and every ratio TRL row ÷ empg row as the median over the timed iterations
with a 95% bootstrap interval (rounds resampled, pairing each row's iteration i with the other's).
Its ``## Summary`` section is what README.md quotes (``scripts/readme_tables.py``).

    python benches/vs_trl_report.py benches/results/vs_trl [--out benches/results/vs_trl.md] [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP = 10_000
GIB = 2**30
SPLIT = ("generation", "reward", "advantages_packing", "forward", "backward", "optimizer", "other")
TRL = ("trl/no-gc", "trl/gc")
# The summary's chain: equal work first, then one saving per row, each against the row above.
CHAIN = (
    ("empg-grpo/no-share/torch", "equal work: GRPO with TRL's loss, every group trained, no prefix sharing, "
                                 "torch's own linear kernels (MKL, as TRL's): the implementation alone"),
    ("empg-grpo/no-share", "+ oneDNN's linear kernels in sampling and the M-step instead of MKL's (the same "
                           "float32 products; oneDNN compiles its kernels for the CPU it runs on)"),
    ("empg-grpo", "+ prefix sharing: each shared prompt prefix run once in sampling and the M-step (exact)"),
    ("empg/no-drop", "EM-PG's loss instead of GRPO's, the same sequences trained"),
    ("empg", "as shipped: + zero-signal groups dropped (no gradient in them; TRL trains them at advantage 0)"),
)


def timed(row: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["iteration"]: r for r in row["iterations"] if not r["warmup"]}


def per(r: dict[str, Any], key: str) -> float:
    """Seconds of the iteration per token of ``key`` (inf when it has none)."""
    return r["wall"] / r[key] if r[key] else math.inf


METRICS = {"iteration": lambda r: r["wall"], "generated token": lambda r: per(r, "generated_tokens"),
           "trained token": lambda r: per(r, "trained_tokens")}


def ratio(a: dict[int, dict], b: dict[int, dict], metric: str, seed: int = 0) -> tuple[float, float, float]:
    """Median of ``a``'s metric ÷ median of ``b``'s over their common iterations, and the 95%
    percentile interval of that ratio with the iterations resampled (paired)."""
    common = sorted(set(a) & set(b))
    if not common:
        return math.nan, math.nan, math.nan
    f = METRICS[metric]
    x, y = np.array([f(a[i]) for i in common]), np.array([f(b[i]) for i in common])
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(np.median(x) / np.median(y))
        idx = np.random.default_rng(seed).integers(0, len(common), size=(BOOTSTRAP, len(common)))
        boot = np.median(x[idx], axis=1) / np.median(y[idx], axis=1)
    return est, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def _x(est: float, lo: float | None = None, hi: float | None = None) -> str:
    if not (math.isfinite(est) and est > 0):
        return "n/a"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{est:.2f}×"
    return f"{est:.2f}× ({lo:.2f}–{hi:.2f})"


def _med(rs: dict[int, dict], f: Any) -> float:
    return float(np.median([f(r) for r in rs.values()])) if rs else math.nan


def _ms(x: float) -> str:
    return f"{x * 1e3:.0f}" if math.isfinite(x) else "n/a"


def settings_line(s: dict[str, Any], meta: dict[str, Any]) -> str:
    return (f"{s['prompts_per_iteration']} prompts × K = {s['group_size']}, at most {s['max_new_tokens']} new tokens "
            f"(stop at EOS only), temperature {s['temperature']}, top-p {s['top_p']}, AdamW lr {s['lr']} (constant, "
            f"no warm-up, no weight decay), gradient norm clipped at {s['max_grad_norm']}, one optimizer step over "
            f"all {s['prompts_per_iteration'] * s['group_size']} sequences per iteration, {s['warmup']} warm-up + "
            f"{s['iterations']} timed iterations per row, {meta['lanes']} iteration(s) in flight at a time, "
            f"{s['threads']} torch thread(s) per worker; model {s['model']}"
            f"{'' if s.get('device', 'cpu') == 'cpu' else ' on ' + s['device']}, {s.get('dtype', 'float32')}.")


def rows_table(systems: dict[str, Any]) -> list[str]:
    lines = ["| row | what | s / iteration | CPU s / iteration | ms / generated token | ms / trained token | generated tokens "
             "| trained tokens | tokens through the model in training | mean reward | peak RSS |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in systems.items():
        rs = timed(row)
        if row["error"] or not rs:
            err = (row["error"] or "no timed iteration").strip().splitlines()[0]
            lines.append(f"| {name} | {row['what']} | unavailable: {err} | | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {row['what']} | {_med(rs, METRICS['iteration']):.2f} | {_med(rs, lambda r: r['cpu_s']):.2f} | "
            f"{_ms(_med(rs, METRICS['generated token']))} | {_ms(_med(rs, METRICS['trained token']))} | "
            f"{_med(rs, lambda r: r['generated_tokens']):.0f} | {_med(rs, lambda r: r['trained_tokens']):.0f} | "
            f"{_med(rs, lambda r: r['forward_tokens']):.0f} | {_med(rs, lambda r: r['reward_mean']):.2f} | "
            f"{row['info'].get('peak_rss', 0) / GIB:.2f} GiB"
            + (f" (GPU {row['info']['peak_cuda'] / GIB:.2f} GiB)" if "peak_cuda" in row["info"] else "") + " |")
    return lines


def ratios_table(systems: dict[str, Any]) -> list[str]:
    trl = [t for t in TRL if t in systems and timed(systems[t])]
    head = "| empg row | " + " | ".join(f"{t} ÷ row: per {m}" for t in trl for m in METRICS) + " |"
    lines = [head, "|---|" + "---:|" * (len(trl) * len(METRICS))]
    for name, row in systems.items():
        if row["side"] != "empg" or not timed(row):
            continue
        cells = [_x(*ratio(timed(systems[t]), timed(row), m)) for t in trl for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if len(trl) == 2:
        lines += ["", f"TRL's gradient checkpointing: trl/gc ÷ trl/no-gc per iteration "
                      f"{_x(*ratio(timed(systems['trl/gc']), timed(systems['trl/no-gc']), 'iteration'))}."]
    return lines


def split_table(systems: dict[str, Any]) -> list[str]:
    lines = ["| row | " + " | ".join(c.replace("_", "/") for c in SPLIT) + " |", "|---|" + "---:|" * len(SPLIT)]
    for name, row in systems.items():
        rs = timed(row)
        if rs:
            lines.append(f"| {name} | " + " | ".join(f"{_med(rs, lambda r: r['split'][c]):.2f}" for c in SPLIT) + " |")
    return lines


def config_lines(systems: dict[str, Any]) -> list[str]:
    """The configurations as the workers reported them (TRL's GRPOConfig, empg's train section)."""
    out = []
    for name, row in systems.items():
        cfg = row["info"].get("config")
        if cfg:
            out.append(f"- {name}: " + ", ".join(f"`{k}={v}`" for k, v in cfg.items()))
    return out


def summary(records: dict[str, Any]) -> list[str]:
    done = {w: r["systems"] for w, r in records.items() if "systems" in r}
    cols = [(w, t) for w in done for t in TRL if t in done[w] and timed(done[w][t])]
    lines = ["Time per iteration of TRL's GRPOTrainer ÷ empg's on the same prompts and weights (median of the "
             "timed iterations, 95% bootstrap interval; above 1: empg is faster). Each row adds one change to "
             "the row above it:", "",
             "| empg row | what it changes | " + " | ".join(f"{w}: ÷ {t}" for w, t in cols) + " |",
             "|---|---|" + "---:|" * len(cols)]
    for name, what in CHAIN:
        cells = [_x(*ratio(timed(done[w][t]), timed(done[w][name]), "iteration")) if name in done[w] else "n/a"
                 for w, t in cols]
        lines.append(f"| {name} | {what} | " + " | ".join(cells) + " |")
    for w, systems in done.items():
        names = [n for n in (*TRL, *(c for c, _ in CHAIN)) if n in systems and timed(systems[n])]
        trained = {n: float(np.median([r["trained_tokens"] for r in timed(systems[n]).values()])) for n in names}
        none = [n for n in names if trained[n] == 0]
        lines += ["", f"{w}: tokens trained per iteration (median): "
                  + ", ".join(f"{n} {trained[n]:.0f}" for n in names) + "."
                  + (f" {', '.join(none)} trained nothing in most iterations: every group's rewards were equal, so "
                     "the ratio of that row is sampling (and scoring) alone, not a faster M-step." if none else "")]
    lines += totals(done)
    lines += generation_bound(done)
    gc = [f"{w} {_x(*ratio(timed(s['trl/gc']), timed(s['trl/no-gc']), 'iteration'))}" for w, s in done.items()
          if all(t in s and timed(s[t]) for t in TRL)]
    if gc:
        lines += ["", "trl/gc is TRL as its docs configure it (gradient checkpointing on, its default: the "
                  "forward recomputed in the backward to save memory); trl/no-gc is TRL at empg's setting. "
                  "TRL's time per iteration with checkpointing ÷ without: " + ", ".join(gc) + "."]
    skipped = [f"{w} ({r['skipped']})" for w, r in records.items() if "skipped" in r]
    if skipped:
        lines += ["", "Not run: " + "; ".join(skipped) + "."]
    return lines


def totals(done: dict[str, Any]) -> list[str]:
    """Per workload, the equal-work row over ALL its timed iterations: each side samples its own
    completions, so an iteration's work differs between the sides and the medians can pair a long
    iteration with a short one; the totals say how much each side generated in all, and the ratio
    of total times, overall and per generated token."""
    out = []
    for w, s in done.items():
        trls = [t for t in TRL if t in s and timed(s[t])]
        if not trls or "empg-grpo" not in s or not timed(s["empg-grpo"]):
            continue
        ours = timed(s["empg-grpo"])

        def tot(rs: dict[int, dict], key: str) -> float:
            return float(sum(r[key] for r in rs.values()))

        gen = {t: tot(timed(s[t]), "generated_tokens") for t in trls}
        wall = {t: tot(timed(s[t]), "wall") for t in trls}
        our_wall, our_gen = tot(ours, "wall"), tot(ours, "generated_tokens")
        ratios = [wall[t] / our_wall for t in trls]
        token = [(wall[t] / gen[t]) / (our_wall / our_gen) for t in trls]
        out.append(f"{w}, the equal-work row over all {len(ours)} timed iterations (each side samples its own "
                   f"completions): {', '.join(f'{t} generated {gen[t]:,.0f} tokens' for t in trls)}, empg-grpo "
                   f"{our_gen:,.0f}; TRL's total time ÷ empg-grpo's: "
                   + ", ".join(f"{_x(x)} ({t})" for x, t in zip(ratios, trls)) + "; per generated token: "
                   + ", ".join(f"{_x(x)} ({t})" for x, t in zip(token, trls)) + ".")
    return ["", *out] if out else []


def generation_bound(done: dict[str, Any]) -> list[str]:
    """Per workload, how much of the equal-work row is sampling (a decode bound by reading the
    weights at these batch sizes, little prompt to share in a zero-shot batch of one prompt) and the
    ratio it caps:
    TRL's iteration ÷ empg-grpo's sampling alone, as if empg's M-step cost nothing."""
    out = []
    for w, s in done.items():
        if not all(n in s and timed(s[n]) for n in ("trl/no-gc", "empg-grpo")):
            continue
        trl, ours = timed(s["trl/no-gc"]), timed(s["empg-grpo"])
        gen = _med(ours, lambda r: r["split"]["generation"])
        rest_trl = _med(trl, lambda r: r["wall"] - r["split"]["generation"])
        rest_ours = _med(ours, lambda r: r["wall"] - r["split"]["generation"])
        out.append(f"{w}: sampling is {gen:.1f} s of empg-grpo's {_med(ours, lambda r: r['wall']):.1f} s per "
                   f"iteration (TRL's: {_med(trl, lambda r: r['split']['generation']):.1f} s); the rest "
                   f"(scoring and the update) is {rest_ours:.1f} s against TRL's {rest_trl:.1f} s "
                   f"({_x(rest_trl / rest_ours)}). With a free update the equal-work ratio could reach at most "
                   f"{_x(_med(trl, lambda r: r['wall']) / gen)} (TRL's iteration ÷ empg's sampling).")
    return ["", *out] if out else []


def machine_lines(meta: dict[str, Any]) -> list[str]:
    v = meta["versions"]
    return [f"Machine: {meta['machine']}; load average {', '.join(f'{x:.2f}' for x in meta['load_start'])} at the "
           f"start, {', '.join(f'{x:.2f}' for x in meta['load_end'])} at the end; run time "
           f"{meta['wall_s'] / 60:.1f} min. Bench code at {meta['bench_commit'][:10]}"
           f"{' (uncommitted changes)' if meta['bench_dirty'] else ''}; empg from {meta['empg_commit'][:10]}"
           f"{' (uncommitted changes)' if meta['empg_dirty'] else ''}; trl {v['trl']}, transformers "
           f"{v['transformers']}, torch {v['torch']}."]


def render(meta: dict[str, Any], records: dict[str, Any]) -> str:
    out = ["# bench_vs_trl: empg vs TRL's GRPOTrainer at equal work", "",
           f"`{meta['command']}` (report: `python benches/vs_trl_report.py benches/results/vs_trl`)", "",
           "## Summary", "", *summary(records), "", *machine_lines(meta), ""]
    for w, rec in records.items():
        if "systems" not in rec:
            continue
        systems = rec["systems"]
        out += [f"## {w}", "", settings_line(rec["settings"], meta), "",
                "Medians over the timed iterations (tokens per iteration):", "", *rows_table(systems), "",
                "Ratios TRL row ÷ empg row (median, 95% bootstrap interval):", "",
                *ratios_table(systems), "",
                "Time split, seconds per iteration (median):", "", *split_table(systems), "",
                "Configurations as the workers built them:", "", *config_lines(systems), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", help="the folder with records.json and meta.json")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "vs_trl.md"))
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from what the records give")
    a = ap.parse_args(argv)
    d = Path(a.records)
    text = render(json.loads((d / "meta.json").read_text()), json.loads((d / "records.json").read_text()))
    if a.check:
        if Path(a.out).read_text() != text:
            print(f"{a.out} is not what {d} gives: run benches/vs_trl_report.py {d}", file=sys.stderr)
            return 1
        return 0
    Path(a.out).write_text(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
