"""Does EM-PG learn as well as GRPO? Paired seeds, two M-step reuse settings, a learning-rate sweep
on a seed of its own, held-out greedy accuracy on 1,000 problems.

Arms: objective (empg | grpo) x reuse (1: one pass over each E-step's samples, today's default;
4: four passes, the off-policy setting the paper is about). Every arm gets the same rollouts per
iteration and, within a reuse setting, the same optimizer steps. Seed s gives both objectives the
same first E-step (sampling seeds derive from train.seed). Each objective's learning rate is the best
of the same small sweep, run at reuse 1 on SWEEP_SEED (which the comparison never uses) and used at
both reuse settings.

What it measures, per run: held-out greedy accuracy every 2 iterations (the curve: the first 256
held-out problems at iterations 2, 4 and 6, ``eval.every_limit``; all 1,000 at the end; the initial
model's accuracy on the 256 and on the 1,000 is one ``baseline`` run each, since every arm starts
from the same weights); and per iteration, the E-step's own numbers: its mean reward is the sampled
(T = 0.8) accuracy on fresh training problems, drawn new each iteration and not trained on before;
its mean length and behaviour counts. A greedy pass costs about 3 core-minutes per 1,000 problems on this CPU, hence the
smaller set at the intermediate marks.

Each run is the real `empg-train` in a subprocess (two at a time, one torch thread each); the
compact record of every run (arm, seed, settings, every train and eval row) is appended to
``<out>/runs.jsonl``, which ``benches/learning_report.py`` turns into ``learning.md`` and a plot.

    python benches/bench_learning.py --out benches/results/learning          # ~2.5 hours on 2 cores
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
# thousands of distinct held-out problems, disjoint from training by construction). The E-step's
# temperature and the lr schedule are pinned at what the committed records ran with (the defaults
# are now T = 1.0 and a linear decay).
TASK = ["data.source=arith", "data.levels=[1,2]", "data.eval_limit=1000", "eval.before=false", "eval.every=2",
        "eval.every_limit=256", "eval.samples=0", "eval.pass_k=[]", "train.iterations=8",
        "sampling.prompts_per_iteration=4", "sampling.group_size=8", "sampling.temperature=0.8", "train.schedule=constant", "train.steps_per_epoch=2",
        "log.progress=false", "model.threads=1"]
# The sweep only ranks learning rates: no curve, and half the held-out problems at the end.
SWEEP = ["eval.every=0"]
SWEEP_EVAL = ["data.eval_limit=500"]
# The initial model, once (greedy: the same for every arm).
BASELINE_CURVE = ["train.iterations=0", "eval.before=true"]  # on the curve's problems (eval.every_limit)
BASELINE = [*BASELINE_CURVE, "eval.every_limit=0"]  # on all of them
TINY = ["model.name=tiny-llama", "data.source=arith", "data.eval_limit=8", "eval.before=false", "eval.every=1",
        "eval.every_limit=4", "eval.samples=0", "eval.pass_k=[]", "train.iterations=2",
        "sampling.prompts_per_iteration=2", "sampling.group_size=4", "sampling.max_new_tokens=8", "log.progress=false", "model.threads=1",
        "log.report_to=[]"]


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
    ap.add_argument("--resume", action="store_true", help="keep the runs already in <out>/runs.jsonl (same "
                    "task and sweep) and run only the missing ones")
    args = ap.parse_args(argv)
    base = TINY if args.tiny else TASK
    seeds = list(range(1, args.seeds + 1))
    lrs = SWEEP_LRS[1:2] if args.tiny else SWEEP_LRS
    args.out.mkdir(parents=True, exist_ok=True)
    records_path = args.out / "runs.jsonl"
    kept = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()] \
        if args.resume and records_path.exists() else []
    records_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    have = {(r["role"], r["objective"], r["reuse"], r["seed"], r["lr"]): r for r in kept}
    old_meta = json.loads((args.out / "meta.json").read_text()) if kept else {}
    if kept and (old_meta.get("task"), old_meta.get("sweep_lrs")) != (base, list(lrs)):
        raise SystemExit(f"--resume: {records_path} holds runs of another task or sweep")
    load = [round(x, 2) for x in os.getloadavg()]
    meta = {**old_meta, "resumed": old_meta.get("resumed", []) + [{"commit": _commit(), "load": load}]} if kept else {
        "machine": machine_line(), "commit": _commit(), "load_start": load, "task": base, "seeds": seeds,
        "sweep_seed": SWEEP_SEED, "sweep_lrs": list(lrs), "parallel": args.parallel}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")

    def run_or_keep(base_args: list[str], objective: str, reuse: int, seed: int, lr: float, role: str) -> dict:
        done = have.get((role, objective, reuse, seed, lr))
        return done if done is not None else record(run_one(base_args, objective, reuse, seed, lr, role))

    def record(rec: dict) -> dict:
        with records_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{rec['role']:7s} {rec['objective']} reuse={rec['reuse']} seed={rec['seed']} lr={rec['lr']:g}: "
              f"greedy {final_greedy(rec):.3f} in {rec['wall_s']:.0f} s", flush=True)
        return rec

    arms = list(itertools.product(OBJECTIVES, REUSE))
    with ThreadPoolExecutor(args.parallel) as pool:
        # the initial model on all the held-out problems, and on the curve's first eval.every_limit
        jobs = [(base + BASELINE, "empg", 1, 0, lrs[0], "baseline"),
                (base + BASELINE_CURVE, "empg", 1, 0, lrs[0], "baseline-curve")]
        sweep_base = base + SWEEP + ([] if args.tiny else SWEEP_EVAL)
        jobs += [(sweep_base, o, 1, SWEEP_SEED, lr, "sweep") for o in OBJECTIVES for lr in lrs]
        done = list(pool.map(lambda a: run_or_keep(*a), jobs))
        best = {o: max((d for d in done if d["role"] == "sweep" and d["objective"] == o), key=final_greedy)["lr"]
                for o in OBJECTIVES}
        chosen = {(o, r): best[o] for o, r in arms}
        list(pool.map(lambda a: run_or_keep(base, a[0], a[1], a[2], chosen[a[0], a[1]], "compare"),
                      [(o, r, s) for s in seeds for o, r in arms]))
    meta = json.loads((args.out / "meta.json").read_text())
    meta.update(load_end=[round(x, 2) for x in os.getloadavg()], chosen_lr={f"{o}/reuse{r}": lr for (o, r), lr in chosen.items()})
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
