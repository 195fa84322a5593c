"""Time to accuracy on the embedded task: held-out greedy accuracy against training wall-clock for
TRL's GRPOTrainer, empg's GRPO and empg's EM-PG, on the same prompts, weights and settings.

    python benches/bench_time_to_accuracy.py                 # 3 arms x 2 seeds (~30 min, 2 quiet cores)
    python benches/bench_time_to_accuracy.py --quick --out /tmp/tta   # tiny random model (~2 min)
    python benches/time_to_accuracy_report.py benches/results/time_to_accuracy

Arms (each its own process, two at a time, one torch thread each):

* ``trl``: TRL's real ``GRPOTrainer.train()`` (``benches/vs_trl/trl_worker.make_trainer``: its loss,
  gradient accumulation to the whole batch, gradient checkpointing off, its faster setting here);
* ``empg-grpo``: empg's GRPO with TRL's loss, every group trained (TRL's work);
* ``empg``: empg as shipped (EM-PG, zero-signal groups dropped).

Everything else is shared (``vs_trl.task.Settings``): the embedded arithmetic in the chat template
with two worked examples, P prompts x K completions per iteration in the same order, T = 0.8, the
same length cap, AdamW at the same lr, one optimizer step per iteration, the same verifier as the
reward. Each arm trains until its training wall-clock reaches the budget; the clock runs only while
it trains (sampling, scoring, the update) and stops while it is evaluated. After the iteration that
crosses each of ``--marks`` seconds of training (and at the end) the model is evaluated by the SAME
code for every arm: greedy completions of the held-out problems (test split, disjoint from
training) from empg's prefix-shared transformers sampler, judged by empg's verifier. The initial weights are evaluated
once (every arm starts from them).

Records: ``<out>/runs.jsonl`` (one line per arm and seed: every evaluation with the training
seconds and iterations behind it) and ``<out>/meta.json`` (commit, machine, load, settings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import machine_line  # noqa: E402
from vs_trl.task import Settings, model_dir, problems, prompt_ids, rows_of, template  # noqa: E402

ARMS = ("trl", "empg-grpo", "empg")
OVERRIDES = {"empg": [], "empg-grpo": ["train.algo=grpo", "train.drop_zero_signal=false"]}
MAX_ITERATIONS = 2000  # rows prepared per run; the budget ends it long before
# Evaluations after the iteration that crosses each mark (seconds of training), closer together early,
# where the accuracy moves most, and at the end of the budget.
FULL = dict(prompts=4, k=8, max_new_tokens=32, budget_s=300.0, marks="30,60,120,200", eval_n=256, seeds=2)
QUICK = dict(prompts=2, k=2, max_new_tokens=8, budget_s=6.0, marks="3", eval_n=8, seeds=1)


def heldout_rows(settings: Settings, n: int) -> list[dict[str, Any]]:
    """The held-out problems: ``n`` distinct test-split problems of the workload's difficulties."""
    from empg.data import load_problems

    probs, _ = load_problems("arith", split="test", levels=settings.levels, limit=n, shuffle_seed=0)
    return rows_of(probs, settings.workload)


def evaluate(model: Any, tokenizer: Any, rows: list[dict[str, Any]], settings: Settings) -> dict[str, float]:
    """Greedy accuracy and mean length on ``rows``: the same sampler and verifier for every arm."""
    import torch

    from empg.evaluation import evaluate_raw
    from empg.samplers.hf import TransformersSampler
    from empg.scoring import verify_rollouts

    ids = prompt_ids(tokenizer, rows, settings.workload)
    score = verify_rollouts([r["answer"] for r in rows])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        raw = evaluate_raw(TransformersSampler(model, tokenizer), ids, lambda rolls: score(rolls).total,
                           stop=template(settings.workload).stop, max_new_tokens=settings.max_new_tokens,
                           greedy=True, samples=0)
    model.train(was_training)
    return {"greedy_acc": float(raw.greedy_correct.mean()), "greedy_length": float(raw.greedy_lengths.mean()),
            "eval_s": raw.seconds}


class Clock:
    """Training seconds so far; evaluates when they pass the next mark, and says when to stop."""

    def __init__(self, budget_s: float, marks: list[float], run_eval: Callable[[], dict[str, float]]) -> None:
        self.budget_s, self.marks, self.run_eval = budget_s, sorted(marks), run_eval
        self.train_s, self.iterations = 0.0, 0
        self.rows: list[dict[str, Any]] = []
        self.rewards: list[float] = []

    def tick(self, seconds: float, reward_mean: float) -> bool:
        """One iteration took ``seconds`` of training; True when the budget is spent."""
        self.train_s += seconds
        self.iterations += 1
        self.rewards.append(reward_mean)
        done = self.train_s >= self.budget_s
        if done or (self.marks and self.train_s >= self.marks[0]):
            self.rows.append({"train_s": self.train_s, "iterations": self.iterations,
                              "reward_mean": sum(self.rewards) / len(self.rewards), **self.run_eval()})
            self.rewards = []
            self.marks = [m for m in self.marks if m > self.train_s]
        return done


def run_empg(settings: Settings, overrides: list[str], clock_args: tuple[float, list[float]],
             eval_rows: list[dict]) -> Clock:
    import torch

    from empg import em
    from empg.build import build
    from empg.sampling import SamplingParams
    from empg.scoring import verify_rollouts
    from vs_trl.empg_worker import build_config

    rows, path = problems(settings), model_dir(settings.model)
    with tempfile.TemporaryDirectory(prefix="tta-empg-") as run_dir:
        cfg = build_config(settings, str(path), run_dir, overrides)
        s = build(cfg)
        torch.set_num_threads(settings.threads)
        prompts = prompt_ids(s.tokenizer, rows, settings.workload)
        clock = Clock(*clock_args, lambda: evaluate(s.model, s.tokenizer, eval_rows, settings))
        P = settings.prompts_per_iteration
        for it in range(settings.total_iterations):
            start = time.perf_counter()
            batch = slice(it * P, (it + 1) * P)
            params = SamplingParams(n=settings.group_size, temperature=settings.temperature, top_p=settings.top_p,
                                    max_new_tokens=settings.max_new_tokens, stop=(), seed=settings.seed * 100_003 + it)
            est = em.e_step(s.sampler, prompts[batch], params,
                            verify_rollouts([r["answer"] for r in rows[batch]], cfg.data.verify_style),
                            scheme=cfg.train.scheme, drop_zero_signal=cfg.train.drop_zero_signal)
            em.m_step(s, est.samples, it + 1)
            s.sampler.sync_weights(s.model)
            if clock.tick(time.perf_counter() - start, float(est.rewards.mean())):
                break
    return clock


def run_trl(settings: Settings, clock_args: tuple[float, list[float]], eval_rows: list[dict]) -> Clock:
    from transformers import TrainerCallback

    from vs_trl.trl_worker import make_trainer

    class Timing(TrainerCallback):
        def __init__(self) -> None:
            self.start = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            seconds = time.perf_counter() - self.start
            reward = trainer._metrics["train"]["reward"][-1] if trainer._metrics["train"].get("reward") else float("nan")
            if clock.tick(seconds, float(reward)):
                control.should_training_stop = True

    timing = Timing()
    with tempfile.TemporaryDirectory(prefix="tta-trl-") as out:
        trainer = make_trainer(settings, False, out, [timing])
        clock = Clock(*clock_args, lambda: evaluate(trainer.model, trainer.processing_class, eval_rows, settings))
        trainer.train()
    return clock


def arm_main(a: argparse.Namespace) -> None:
    """One arm and seed (a subprocess of the parent): train to the budget, write the record."""
    import torch

    settings = Settings(**json.loads(a.settings))
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    eval_rows = heldout_rows(settings, a.eval_n)
    t0 = time.time()
    clock_args = (a.budget_s, a.mark_s)
    clock = (run_trl(settings, clock_args, eval_rows) if a.arm == "trl"
             else run_empg(settings, OVERRIDES[a.arm], clock_args, eval_rows))
    rec = {"arm": a.arm, "seed": settings.seed, "wall_s": time.time() - t0, "rows": clock.rows}
    Path(a.record).write_text(json.dumps(rec) + "\n")


def baseline_main(a: argparse.Namespace) -> None:
    """The initial weights on the held-out problems (every arm starts from them)."""
    import torch

    from vs_trl.task import load_policy

    settings = Settings(**json.loads(a.settings))
    torch.set_num_threads(settings.threads)
    model, tok = load_policy(settings.model)
    row = {"train_s": 0.0, "iterations": 0, **evaluate(model, tok, heldout_rows(settings, a.eval_n), settings)}
    Path(a.record).write_text(json.dumps({"arm": "start", "seed": None, "rows": [row]}) + "\n")


def _commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    return res.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny random model, tiny sizes (a smoke run)")
    ap.add_argument("--out", type=Path, default=None, help="records folder (default benches/results/time_to_accuracy)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=None, help="seconds of training per arm and seed")
    ap.add_argument("--marks", default=None, help="evaluate after the iteration crossing each of these "
                    "training seconds (comma-separated), and at the end")
    ap.add_argument("--eval-n", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--levels", default="0", help="embedded-task difficulties, comma-separated")
    # internal: one arm in a subprocess
    ap.add_argument("--arm", help=argparse.SUPPRESS)
    ap.add_argument("--settings", help=argparse.SUPPRESS)
    ap.add_argument("--record", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    size = QUICK if a.quick else FULL
    for k in ("budget_s", "marks", "eval_n", "seeds"):
        if getattr(a, k) is None:
            setattr(a, k, size[k])
    a.mark_s = [float(x) for x in a.marks.split(",") if x]  # the string goes on to the arm workers
    if a.arm:
        (baseline_main if a.arm == "start" else arm_main)(a)
        return 0
    arms = a.arms.split(",")
    if set(arms) - set(ARMS):
        ap.error(f"unknown arm in {a.arms!r}: choose from {', '.join(ARMS)}")
    out = a.out or HERE / "results" / "time_to_accuracy"
    out.mkdir(parents=True, exist_ok=True)
    levels = tuple(int(x) for x in a.levels.split(","))

    def settings(seed: int) -> Settings:
        return Settings(workload="arith", model="tiny" if a.quick else "smollm2", prompts_per_iteration=size["prompts"],
                        group_size=size["k"], max_new_tokens=size["max_new_tokens"], lr=a.lr, seed=seed,
                        iterations=MAX_ITERATIONS, warmup=0, threads=1, trl_micro_batch=size["k"], levels=levels)

    model_dir(settings(0).model)  # converted once, before the workers race for it
    meta = {"machine": machine_line(), "commit": _commit(), "load_start": [round(x, 2) for x in os.getloadavg()],
            "settings": {k: v for k, v in settings(0).to_dict().items() if k not in ("seed", "iterations", "warmup")},
            "budget_s": a.budget_s, "marks": a.mark_s, "eval_n": a.eval_n, "arms": arms,
            "seeds": list(range(1, a.seeds + 1)), "parallel": a.parallel, "started": time.strftime("%Y-%m-%d %H:%M")}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    records = out / "runs.jsonl"
    records.write_text("")
    jobs = [("start", 0)] + [(arm, seed) for seed in meta["seeds"] for arm in arms]

    def run(job: tuple[str, int]) -> None:
        arm, seed = job
        with tempfile.TemporaryDirectory(prefix="tta-") as tmp:
            rec_path = Path(tmp) / "record.json"
            cmd = [sys.executable, __file__, "--arm", arm, "--settings", json.dumps(settings(seed).to_dict()),
                   "--record", str(rec_path), "--budget-s", str(a.budget_s), "--marks", a.marks,
                   "--eval-n", str(a.eval_n)]
            res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if res.returncode != 0:
                raise RuntimeError(f"{arm} seed {seed} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
            line = rec_path.read_text()
        with records.open("a") as f:
            f.write(line)
        last = json.loads(line)["rows"][-1]
        print(f"{arm} seed {seed}: greedy {last['greedy_acc']:.3f} after {last['iterations']} iterations, "
              f"{last['train_s']:.0f} s of training", flush=True)

    with ThreadPoolExecutor(a.parallel) as pool:
        list(pool.map(run, jobs))
    meta["load_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    import time_to_accuracy_report

    time_to_accuracy_report.main([str(out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
