"""Does EM-PG learn as well as GRPO? Paired seeds, two M-step reuse settings, a learning-rate sweep
on a seed of its own, held-out greedy accuracy every few iterations on >= 1,000 problems.

Arms: objective (empg | grpo) x reuse (1: one pass over each E-step's samples, today's default;
4: four passes, the off-policy setting the paper is about). Every arm gets the same rollouts per
iteration and, within a reuse setting, the same optimizer steps. Seed s gives both objectives the
same first E-step (sampling seeds derive from train.seed). Each objective's learning rate is the best
of the same small sweep, run on SWEEP_SEED, which the comparison never uses.

Each run is the real `empg-train` in a subprocess (two at a time, one torch thread each); the
compact record of every run (arm, seed, settings, every train and eval row) is appended to
``<out>/runs.jsonl``, which ``benches/learning_report.py`` turns into ``learning.md`` and a plot.

    python benches/bench_learning.py --out benches/results/learning          # ~1 hour on 2 cores
    python benches/bench_learning.py --tiny --out /tmp/learning               # harness smoke test
    python benches/learning_report.py benches/results/learning
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402

OBJECTIVES = ("empg", "grpo")
REUSE = (1, 4)
SWEEP_SEED = 1000
SWEEP_LRS = (5e-6, 1e-5, 2e-5)
# The task: difficulties 1-2 of the embedded arithmetic (SmolLM2-135M starts at 15-50% greedy,
# thousands of distinct held-out problems, disjoint from training by construction).
TASK = ["data.source=arith", "data.levels=[1,2]", "data.eval_limit=1000", "eval.every=4", "eval.samples=1",
        "eval.pass_k=[1]", "train.iterations=12", "sampling.prompts_per_iteration=8", "sampling.group_size=8",
        "train.steps_per_epoch=2", "log.progress=false", "model.threads=1"]
# The sweep picks a learning rate by the final greedy accuracy alone: no curve, no sampled eval.
SWEEP_EVAL = ["eval.before=false", "eval.every=0", "eval.samples=0", "eval.pass_k=[]"]
TINY = ["model.name=tiny-llama", "data.source=arith", "data.eval_limit=8", "eval.every=1", "eval.samples=1",
        "eval.pass_k=[1]", "train.iterations=2", "sampling.prompts_per_iteration=2", "sampling.group_size=4",
        "sampling.max_new_tokens=8", "log.progress=false", "model.threads=1", "log.report_to=[]"]


def arm_args(objective: str, reuse: int, seed: int, lr: float) -> list[str]:
    return [f"train.algo={objective}", f"train.epochs={reuse}", f"train.seed={seed}", f"train.lr={lr:g}"]


def run_one(base: list[str], objective: str, reuse: int, seed: int, lr: float, role: str) -> dict:
    """One `empg-train` run; its record: settings, every train/eval row of metrics.jsonl, wall time."""
    args = [*base, *arm_args(objective, reuse, seed, lr)]
    with tempfile.TemporaryDirectory(prefix="empg-learning-") as tmp:
        run_dir = Path(tmp) / "run"
        t0 = time.time()
        res = subprocess.run(["empg-train", *args, f"log.run_dir={run_dir}", "checkpoint.keep_last=1"],
                             capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.time() - t0
        if res.returncode != 0:
            raise RuntimeError(f"{objective} reuse={reuse} seed={seed} lr={lr:g} failed (exit {res.returncode}):\n"
                               f"{res.stderr[-3000:]}")
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    keep = ("kind", "iteration", "reward/mean", "groups/dropped", "length/mean", "mstep/steps", "time/iteration",
            "eval/problems", "eval/greedy_acc", "eval/greedy_length", "eval/sampled_acc", "eval/sampled_length")
    slim = [{k: v for k, v in r.items() if k in keep or k.startswith("behaviour/")}
            for r in rows if r.get("kind") in ("train", "eval")]
    return {"role": role, "objective": objective, "reuse": reuse, "seed": seed, "lr": lr, "args": args,
            "wall_s": wall, "rows": slim}


def _commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent)
    return res.stdout.strip() or "unknown"


def final_greedy(rec: dict) -> float:
    evals = [r for r in rec["rows"] if r["kind"] == "eval"]
    return evals[-1]["eval/greedy_acc"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="the harness on a tiny random model (CI)")
    args = ap.parse_args(argv)
    base = TINY if args.tiny else TASK
    seeds = list(range(1, args.seeds + 1))
    lrs = SWEEP_LRS[1:2] if args.tiny else SWEEP_LRS
    args.out.mkdir(parents=True, exist_ok=True)
    records_path = args.out / "runs.jsonl"
    records_path.write_text("")
    (args.out / "meta.json").write_text(json.dumps({
        "machine": machine_line(), "commit": _commit(), "load_start": os.getloadavg(), "task": base, "seeds": seeds,
        "sweep_seed": SWEEP_SEED, "sweep_lrs": list(lrs), "parallel": args.parallel}, indent=1) + "\n")

    def record(rec: dict) -> dict:
        with records_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{rec['role']:7s} {rec['objective']} reuse={rec['reuse']} seed={rec['seed']} lr={rec['lr']:g}: "
              f"greedy {final_greedy(rec):.3f} in {rec['wall_s']:.0f} s", flush=True)
        return rec

    arms = list(itertools.product(OBJECTIVES, REUSE))
    with ThreadPoolExecutor(args.parallel) as pool:
        sweep = list(pool.map(lambda a: record(run_one(base + SWEEP_EVAL, a[0], a[1], SWEEP_SEED, a[2], "sweep")),
                              [(o, r, lr) for o, r in arms for lr in lrs]))
        chosen = {(o, r): max((s for s in sweep if (s["objective"], s["reuse"]) == (o, r)), key=final_greedy)["lr"]
                  for o, r in arms}
        list(pool.map(lambda a: record(run_one(base, a[0], a[1], a[2], chosen[a[0], a[1]], "compare")),
                      [(o, r, s) for s in seeds for o, r in arms]))
    meta = json.loads((args.out / "meta.json").read_text())
    meta.update(load_end=os.getloadavg(), chosen_lr={f"{o}/reuse{r}": lr for (o, r), lr in chosen.items()})
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
