"""The default-run tables of README.md and docs/default_run.md, generated from the committed run files.

Each arm of the embedded default run has its directory under ``docs/default_run/`` holding the run's
own ``config.yaml`` and ``metrics.jsonl`` (copied from its run directory, unchanged) and ``run.json``
(the commit, machine and load it ran at); the default (EM-PG) at other seeds has the same under
``docs/default_run/seeds/seed-N/`` (seed 0 is the EM-PG arm itself); ``docs/default_run/earlier/`` keeps the
same for the default before its E-step and lr schedule changed. This script writes the tables between the
``<!-- default-run:NAME -->`` / ``<!-- /default-run:NAME -->`` markers; ``--check`` fails when the
committed files differ from what it would write (a test runs it).

    python scripts/default_run_report.py run        # both arms and the other seeds, two at a time
    python scripts/default_run_report.py            # rewrite the tables
    python scripts/default_run_report.py --check    # exit 1 if README/docs are stale
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "docs" / "default_run"
ARMS = {"empg": "EM-PG", "grpo": "GRPO"}
SEEDS = (1, 2, 3, 4)  # the default at these seeds too (seed 0 = the default itself)
TARGETS = (REPO / "README.md", REPO / "docs" / "default_run.md")


def load_arm(name: str) -> dict:
    d = RUNS / name  # an arm ("empg") or a seed ("seeds/seed-1")
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last: dict[tuple[str, int], dict] = {}
    for r in rows:  # a resumed run may log an iteration twice: the last record wins
        last[(r.get("kind", ""), r["iteration"])] = r
    evals = sorted((r for (k, _), r in last.items() if k == "eval"), key=lambda r: r["iteration"])
    train = sorted((r for (k, _), r in last.items() if k == "train"), key=lambda r: r["iteration"])
    return {"config": yaml.safe_load((d / "config.yaml").read_text()), "evals": evals, "train": train,
            "run": json.loads((d / "run.json").read_text())}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of a proportion p measured on n trials."""
    if n == 0:
        return (math.nan, math.nan)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _with_ci(row: dict, key: str) -> str:
    p = row.get(key)
    if p is None:
        return "n/a"
    n = int(row["eval/problems"]) * (int(row.get("_samples", 1)))
    lo, hi = wilson(p, n)
    return f"{100 * p:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}]"


def accuracy_table(arms: dict[str, dict]) -> list[str]:
    first = next(iter(arms.values()))
    before = first["evals"][0]
    assert before["iteration"] == 0, "the first eval row of a default run is the before-training one"
    samples = int(first["config"]["eval"]["samples"])
    header = "| held-out accuracy | before | " + " | ".join(f"{ARMS[a]}, after" for a in arms) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(arms)]
    after = {a: arm["evals"][-1] for a, arm in arms.items()}
    for key, label, per in (("eval/greedy_acc", "greedy pass@1", 1),
                            ("eval/sampled_acc", f"sampled pass@1, T = {first['config']['eval']['temperature']:g} "
                                                 f"({samples} samples per problem)", samples),
                            *((f"eval/pass@{k}", f"pass@{k}", 1) for k in first["config"]["eval"]["pass_k"]
                              if k > 1)):
        cells = [_with_ci({**r, "_samples": per}, key) for r in (before, *after.values())]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = int(before["eval/problems"])
    lines += ["", f"{n} held-out problems; brackets: 95% Wilson interval over the {n} problems (sampled: over "
              f"the {n * samples} samples, which are not independent per problem, so that interval is too narrow)."]
    return lines


def seeds_table(runs: dict[int, dict]) -> list[str]:
    """Per seed: greedy accuracy before and after, the rise, and the 95% Wilson half-width of the
    after-training accuracy (the rise must exceed it); sampled pass@1 before and after beside it."""
    lines = ["| seed | held-out problems | greedy before | greedy after | rise | 95% half-width | rise > half-width "
             "| sampled pass@1 before | sampled pass@1 after | sampled rise |",
             "|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|"]
    cleared = 0
    for seed, arm in sorted(runs.items()):
        before, after = arm["evals"][0], arm["evals"][-1]
        n = int(after["eval/problems"])
        lo, hi = wilson(after["eval/greedy_acc"], n)
        rise, half = after["eval/greedy_acc"] - before["eval/greedy_acc"], (hi - lo) / 2
        cleared += rise > half
        s0, s1 = before.get("eval/sampled_acc"), after.get("eval/sampled_acc")
        sampled_rise = "n/a" if s0 is None or s1 is None else f"{100 * (s1 - s0):+.1f}"
        lines.append(f"| {seed} | {n} | {_pct(before['eval/greedy_acc'])} | {_pct(after['eval/greedy_acc'])} | "
                     f"{100 * rise:+.1f} | {100 * half:.1f} | {'yes' if rise > half else 'no'} | {_pct(s0)} | "
                     f"{_pct(s1)} | {sampled_rise} |")
    lines += ["", f"Greedy rise above its half-width in {cleared} of {len(runs)} seeds."]
    return lines


def explored_table(runs: dict[str, dict]) -> list[str]:
    """The settings tried on the way (``docs/default_run/explored/<name>/``): what each changed from
    the default, how far it ran, and its held-out greedy accuracy at each evaluation."""
    lines = ["| run | changed from the earlier default (8 prompts × K = 8, T = 0.8) | seed | iterations run "
             "| held-out problems | greedy accuracy (iteration: value) |", "|---|---|---:|---:|---:|---|"]
    for name, arm in sorted(runs.items()):
        cfg, run = arm["config"], arm["run"]
        curve = ", ".join(f"{int(e['iteration'])}: {_pct(e['eval/greedy_acc'])}" for e in arm["evals"])
        lines.append(f"| {name} | {run['changes']} | {cfg['train']['seed']} | {len(arm['train'])} | "
                     f"{int(arm['evals'][0]['eval/problems'])} | {curve} |")
    return lines


def iteration_table(arm: dict) -> list[str]:
    k = int(arm["config"]["sampling"]["prompts_per_iteration"])
    lines = [f"| iteration | reward | dropped (of {k}) | mean length | sampling s | M-step s |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in arm["train"]:
        lines.append(f"| {r['iteration']} | {r['reward/mean']:.3f} | {r['groups/dropped']:.0f} | "
                     f"{r['length/mean']:.1f} | {r['time/sampling']:.0f} | {r['time/mstep']:.0f} |")
    return lines


def run_line(arms: dict[str, dict]) -> list[str]:
    out = []
    for a, arm in arms.items():
        run = arm["run"]
        iters = sum(r["time/iteration"] for r in arm["train"])
        evals = sum(r.get("eval/seconds", 0.0) for r in arm["evals"])
        out.append(f"- {ARMS[a]}: commit `{run['commit']}`, {run['machine']}; load average at start "
                   f"{run['load_start']}, at end {run['load_end']}; {len(arm['train'])} iterations in "
                   f"{iters:.0f} s, evaluations {evals:.0f} s, wall {run['wall_s']:.0f} s.")
    return out


def sections(arms: dict[str, dict], seeds: dict[int, dict]) -> dict[str, list[str]]:
    out = {"accuracy": accuracy_table(arms), "runs": run_line(arms), "seeds": seeds_table(seeds),
           "explored": explored_table({d.name: load_arm(f"explored/{d.name}") for d in sorted((RUNS / "explored").glob("*"))
                                       if d.is_dir()})}
    if (RUNS / "earlier").is_dir():  # the default before its E-step and lr schedule changed
        out["seeds-earlier"] = seeds_table(load_seeds("earlier/"))
    for a, arm in arms.items():
        out[f"iterations-{a}"] = iteration_table(arm)
    return out


def load_seeds(prefix: str = "") -> dict[int, dict]:
    """Seed 0 (the EM-PG arm) and every other seed that has a directory under ``<prefix>seeds/``."""
    return {0: load_arm(f"{prefix}empg"), **{k: load_arm(f"{prefix}seeds/seed-{k}") for k in SEEDS
                                              if (RUNS / f"{prefix}seeds/seed-{k}").is_dir()}}


def render(text: str, parts: dict[str, list[str]]) -> str:
    for name, lines in parts.items():
        pat = re.compile(rf"(<!-- default-run:{name} -->\n).*?(<!-- /default-run:{name} -->)", re.S)
        text = pat.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text)
    return text


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_arms(work: Path, extra: list[str]) -> None:
    """`empg-train` with no arguments but the arm (train.algo) or the seed and a run directory, two
    runs at a time with one torch thread each (the arms first, side by side); then copy each run's
    config.yaml and metrics.jsonl here."""
    sys.path.insert(0, str(REPO / "benches"))
    from _machine import machine_line

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    jobs = [(a, [f"train.algo={a}"]) for a in ARMS] + [(f"seeds/seed-{k}", [f"train.seed={k}"]) for k in SEEDS]
    (work / "seeds").mkdir(parents=True, exist_ok=True)  # the logs go beside the run directories

    def one(job: tuple[str, list[str]]) -> None:
        name, args = job
        out, log = work / name, work / f"{name.replace('/', '-')}.log"
        start, load_start = time.time(), _load()
        res = subprocess.run(["empg-train", *args, f"log.run_dir={out}", "log.progress=false", "model.threads=1",
                              *extra], stdout=open(log, "w"), stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise SystemExit(f"the {name} run failed (exit {res.returncode}); see {log}")
        run = {"commit": commit + ("+changes" if dirty else ""), "machine": machine_line(), "load_start": load_start,
               "load_end": _load(), "wall_s": time.time() - start, "extra_args": args + extra}
        (RUNS / name).mkdir(parents=True, exist_ok=True)
        for f in ("config.yaml", "metrics.jsonl"):
            shutil.copyfile(out / f, RUNS / name / f)
        (RUNS / name / "run.json").write_text(json.dumps(run, indent=1) + "\n")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, jobs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", choices=["tables", "run"], default="tables")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is not what would be written")
    ap.add_argument("--work", type=Path, default=Path("/tmp/empg-default-run"), help="run directories (run)")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides for both arms (run)")
    args = ap.parse_args(argv)
    if args.what == "run":
        run_arms(args.work, args.overrides)
    parts = sections({a: load_arm(a) for a in ARMS}, load_seeds())
    stale = []
    for target in TARGETS:
        old = target.read_text()
        if "<!-- default-run:" not in old:
            print(f"{target}: no default-run markers", file=sys.stderr)
            return 1
        new = render(old, parts)
        if new != old:
            stale.append(target)
            if not args.check:
                target.write_text(new)
    if args.check and stale:
        print("stale, rerun scripts/default_run_report.py: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
