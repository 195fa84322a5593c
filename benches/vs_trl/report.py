"""Markdown tables of the head-to-head and the CPU-side share estimate."""

from __future__ import annotations

import math
from vs_trl.cpu_side import Point
from vs_trl.harness import SystemResult
from vs_trl.task import Settings
from vs_trl.timing import CATEGORIES

GIB = 2**30


def _f(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def e2e_tables(settings: Settings, results: dict[str, SystemResult]) -> list[str]:
    base = results.get("empg")
    lines = [
        f"Settings: {settings.prompts_per_iteration} prompts x K={settings.group_size} completions, "
        f"at most {settings.max_new_tokens} new tokens, T={settings.temperature}, top-p {settings.top_p}, "
        f"AdamW lr {settings.lr}, one optimizer step per iteration over all {settings.rollouts} sequences, "
        f"{settings.iterations} timed iterations per system after {settings.warmup} warm-up, "
        f"torch threads per process: {settings.threads or 'default'}"
        + (f"; empg M-step micro-batch token budget {base.records[0]['token_budget']}" if base and base.records else "")
        + ".",
        "",
        "| system | wall s/iter | TRL÷empg | generated tok/s | trained tok/s | tokens trained/iter "
        "| tokens through fwd/iter | mean reward | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if r.error or not r.records:
            err = (r.error or "no records").strip().splitlines()[0]
            lines.append(f"| {name} | unavailable: {err} | | | | | | | |")
            continue
        ratio = r.wall / base.wall if base and base.records else float("nan")
        lines.append(
            f"| {name} | {_f(r.wall)} ± {_f(r.wall_sd)} | {'n/a' if math.isnan(ratio) else f'{ratio:.2f}x'} | {_f(r.gen_tok_s, 1)} | "
            f"{_f(r.trained_tok_s, 1)} | {r.total('trained_tokens') / len(r.records):.0f} | "
            f"{r.total('forward_tokens') / len(r.records):.0f} | {_f(r.mean(lambda x: x['reward_mean']))} | "
            f"{r.info.get('peak_rss', 0) / GIB:.2f} GiB |")
    idle = [n for n, r in results.items() if r.records and r.total("trained_tokens") == 0]
    if idle:
        lines += ["", f"Note: {', '.join(idle)} trained no token: every group's K rewards agreed (all 0 with the "
                  "random tiny model), so empg dropped them all before the M-step, while TRL still runs forward and "
                  "backward with zero advantages. This row compares the pipelines' overheads, not equal M-step work."]
    lines += ["", "Time split, seconds per iteration (share of the wall time):", "",
              "| system | " + " | ".join(c.replace("_", "/") for c in CATEGORIES) + " | CPU-side share |",
              "|---|" + "---:|" * (len(CATEGORIES) + 1)]
    for name, r in results.items():
        if r.error or not r.records:
            continue
        cells = [f"{r.split(c):.2f} ({r.split(c) / r.wall:.0%})" for c in CATEGORIES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r.cpu_side / r.wall:.1%} |")
    return lines


def scaling_table(points: list[Point]) -> list[str]:
    systems = list(dict.fromkeys(p.system for p in points))
    sizes = sorted({p.rollouts for p in points})
    at = {(p.system, p.rollouts): p for p in points}
    head = "| rollouts | " + " | ".join(f"{s} (ms)" for s in systems)
    others = [s for s in systems if s != "empg"]
    head += "".join(f" | {s} ÷ empg" for s in others) + " |"
    lines = [head, "|---:|" + "---:|" * (len(systems) + len(others))]
    for n in sizes:
        row = [f"{at[(s, n)].seconds * 1e3:.1f}" if (s, n) in at else "-" for s in systems]
        ratios = [f"{at[(s, n)].seconds / at[('empg', n)].seconds:.1f}x"
                  if (s, n) in at and ("empg", n) in at else "-" for s in others]
        lines.append(f"| {n} | " + " | ".join(row + ratios) + " |")
    lines += ["", "Parts at the largest size (ms):", ""]
    for s in systems:
        p = at.get((s, sizes[-1]))
        if p:
            lines.append(f"- {s}: " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in p.parts.items()))
    return lines


def interpolate(points: list[Point], system: str, n: int) -> float | None:
    """CPU-side seconds of ``system`` at ``n`` rollouts (measured, or log-log interpolated)."""
    pts = sorted((p.rollouts, p.seconds) for p in points if p.system == system)
    for x, y in pts:
        if x == n:
            return y
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 < n < x1:
            a = math.log(n / x0) / math.log(x1 / x0)
            return math.exp(math.log(y0) + a * math.log(y1 / y0))
    return None


def share_at(points: list[Point], results: dict[str, SystemResult], n: int = 1024) -> tuple[list[str], dict[str, float]]:
    """CPU-side share of an iteration of ``n`` rollouts: cpu(n) / (cpu(n) + n * device_per_rollout),
    device_per_rollout = (generation + forward + backward) seconds per rollout measured end to end
    by the same system (the optimizer step is left out: it does not grow with rollouts)."""
    lines, shares = [], {}
    pairs = {"empg": "empg", "trl/math-verify": "trl/math-verify", "trl/empg-verifier": "trl/empg-verifier"}
    for scaling_name, e2e_name in pairs.items():
        cpu = interpolate(points, scaling_name, n)
        r = results.get(e2e_name)
        if cpu is None or r is None or not r.records:
            continue
        per_rollout = sum(r.split(c) for c in ("generation", "forward", "backward")) / (
            r.total("rollouts") / len(r.records))
        share = cpu / (cpu + n * per_rollout)
        shares[scaling_name] = share
        lines.append(f"| {scaling_name} | {cpu * 1e3:.0f} ms | {per_rollout:.3f} s | {n * per_rollout:.0f} s | {share:.2%} |")
    if lines:
        lines = ["| system | CPU-side at %d rollouts | device work per rollout (e2e) | device work at %d | CPU-side share |" % (n, n),
                 "|---|---:|---:|---:|---:|"] + lines
    return lines, shares


def uptime() -> str:
    try:
        with open("/proc/loadavg") as f:
            return "load average " + ", ".join(f.read().split()[:3])
    except OSError:
        return "load average unknown"


def as_markdown(sections: list[tuple[str, list[str]]], header: list[str]) -> str:
    out = ["# bench_vs_trl: empg vs TRL GRPOTrainer", "", *header, ""]
    for title, lines in sections:
        out += [f"## {title}", "", *lines, ""]
    return "\n".join(out)
