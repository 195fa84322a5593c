"""empg vs TRL's GRPOTrainer on this machine, side by side in one run.

    python benches/bench_vs_trl.py            # full: ~15-20 min on 2 CPU cores
    python benches/bench_vs_trl.py --quick    # smoke run: tiny model, small sizes, ~3 min

1. End to end: an EM iteration of empg (its own loop: ``empg.em.e_step`` / ``empg.em.m_step``)
   against a step of TRL 1.16's real ``GRPOTrainer.train()`` (vLLM off, ``use_cpu=True``) on the
   same weights (SmolLM2-135M-Instruct converted once from the embedded GGUF; a tiny random Llama),
   prompts, K, sampling settings, length cap, AdamW lr and batch sizes. TRL runs twice: with its
   default math-verify reward (``trl.rewards.accuracy_reward``) and with empg's verifier through
   ``empg.rewards.trl_reward_func`` — what the verifier alone changes, and what the rest does.
   Each system runs in its own process; iterations alternate between them so machine drift hits
   all alike. Prints wall time per iteration, generated and trained tokens/s, peak RSS, the time
   split (generation, reward, advantages/packing, forward, backward, optimizer, other) and ratios.
2. CPU-side scaling: the per-iteration CPU work (verify, weights/advantages, packing, logging) of
   each system's real code on realistic rollouts (GSM8K/MATH solutions, perturbed) from 64 to 16k
   rollouts, plotted to ``benches/results/cpu_side_scaling.png``; and the CPU-side share of an
   iteration at 1k rollouts (CPU-side time / (CPU-side time + 1k x the generation + forward +
   backward seconds per rollout measured end to end)). Target for empg: under 2%.

The tables go to ``benches/results/vs_trl.md`` (``--out``) with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import machine_line  # noqa: E402
from vs_trl import cpu_side, harness, report  # noqa: E402
from vs_trl.task import Settings  # noqa: E402

FULL_SIZES = [64, 256, 1024, 4096, 16384]
QUICK_SIZES = [64, 256]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny model, 2 prompts x 4, 16 tokens, "
                    "2 timed iterations, scaling at 64 and 256 rollouts")
    ap.add_argument("--models", default=None, help="comma list of smollm2,tiny (default: both; --quick: tiny)")
    ap.add_argument("--systems", default=",".join(harness.SYSTEMS), help="end-to-end systems to run")
    ap.add_argument("--smollm2-systems", default=None, help="end-to-end systems for the SmolLM2 model only "
                    "(default: --systems); e.g. empg,trl/math-verify on a busy machine")
    ap.add_argument("--smollm2-iterations", type=int, default=None, help="timed iterations for SmolLM2 only")
    ap.add_argument("--smollm2-warmup", type=int, default=None, help="warm-up iterations for SmolLM2 only")
    ap.add_argument("--iterations", type=int, default=None, help="timed iterations per system (default 3; quick 2)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=8, help="prompts per iteration")
    ap.add_argument("--k", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker process (0 = torch "
                    "default; 1 is the default because oversubscribed OpenMP threads on a busy 2-core machine "
                    "make CPU generation several times slower)")
    ap.add_argument("--empg-token-budget", type=int, default=0, help="empg's M-step micro-batch token budget "
                    "(default: empg's own default)")
    ap.add_argument("--sizes", default=None, help="comma list of rollouts per iteration for the scaling view")
    ap.add_argument("--math-verify-max", type=int, default=None, help="run TRL+math-verify in the scaling "
                    "view only up to this many rollouts (it takes minutes at 16k on a busy machine)")
    ap.add_argument("--scaling-k", type=int, default=8, help="group size in the scaling view")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--out", default=None, help="write the markdown tables here (e.g. benches/results/vs_trl.md)")
    ap.add_argument("--plot", default=None, help="where the scaling plot goes (default: "
                    "benches/results/cpu_side_scaling.png; with --quick: the temporary log folder)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    models = (a.models or ("tiny" if a.quick else "tiny,smollm2")).split(",")
    sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else (QUICK_SIZES if a.quick else FULL_SIZES)
    iterations = a.iterations or (2 if a.quick else 3)
    systems = a.systems.split(",")
    load_before = report.uptime()
    t_start = time.perf_counter()
    command = " ".join(["python benches/bench_vs_trl.py", *(sys.argv[1:] if argv is None else argv)])
    header = [f"`{command}`", "", f"Machine: {machine_line()}.", f"Load when the run started: {load_before} "
              "(the machine is shared; each system's iterations alternate with the others', so load changes "
              "hit all systems alike)."]
    sections: list[tuple[str, list[str]]] = []

    def write(done: bool = False) -> None:
        """The tables so far (after every section, so an interrupted run still leaves them)."""
        if not a.out:
            return
        state = (f"Load when it ended: {report.uptime()}; total run time {time.perf_counter() - t_start:.0f} s."
                 if done else f"(run in progress: {time.perf_counter() - t_start:.0f} s so far, {report.uptime()})")
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        order = ["End to end: smollm2", "End to end: tiny", "CPU-side share", "CPU-side work"]
        ranked = sorted(sections, key=lambda t: next((i for i, o in enumerate(order) if t[0].startswith(o)), 9))
        Path(a.out).write_text(report.as_markdown(ranked, header + [state]))

    log_dir = tempfile.mkdtemp(prefix="bench-vs-trl-logs-")
    points: list[cpu_side.Point] = []
    if not a.skip_scaling:  # first: minutes at most, and the share below needs it
        print("== CPU-side scaling", flush=True)
        points = cpu_side.sweep(sizes, group_size=a.scaling_k, math_verify_max=a.math_verify_max)
        plot = a.plot or (os.path.join(log_dir, "cpu_side_scaling.png") if a.quick
                          else str(HERE / "results" / "cpu_side_scaling.png"))
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        cpu_side.plot(points, plot)
        lines = report.scaling_table(points) + ["", f"Plot: `{os.path.relpath(plot, HERE.parent)}`."]
        print("\n".join(lines), flush=True)
        sections.append(("CPU-side work per iteration vs rollouts", lines))
        write()
    results_by_model: dict[str, dict[str, harness.SystemResult]] = {}
    if not a.skip_e2e:
        for model in models:
            big = model == "smollm2"
            its = a.smollm2_iterations if big and a.smollm2_iterations is not None else iterations
            warm = a.smollm2_warmup if big and a.smollm2_warmup is not None else a.warmup
            p, k, length = (2, 4, 16) if a.quick else (a.prompts, a.k, a.max_new_tokens)
            s = Settings(model=model, prompts_per_iteration=p, group_size=k, max_new_tokens=length,
                         iterations=its, warmup=warm, threads=a.threads, empg_token_budget=a.empg_token_budget)
            print(f"== end to end, model {model} (worker logs in {log_dir})", flush=True)
            os.makedirs(os.path.join(log_dir, model), exist_ok=True)
            chosen = a.smollm2_systems.split(",") if big and a.smollm2_systems else systems
            res = harness.run(s, chosen, log_dir=os.path.join(log_dir, model))
            results_by_model[model] = res
            lines = report.e2e_tables(s, res)
            print("\n".join(lines), flush=True)
            sections.append((f"End to end: {model}", lines))
            write()
    e2e = results_by_model.get("smollm2") or next(iter(results_by_model.values()), None)
    if points and e2e:
        n = 1024 if 1024 <= max(sizes) else max(sizes)
        share_lines, shares = report.share_at(points, e2e, n)
        print("\n".join(share_lines), flush=True)
        target = shares.get("empg")
        verdict = ("n/a" if target is None else ("met" if target < 0.02 else "NOT met"))
        which = "smollm2" if "smollm2" in results_by_model else next(iter(results_by_model))
        sections.append((f"CPU-side share of an iteration at {n} rollouts", [
            f"Device work per rollout from the end-to-end run on {which}.", "", *share_lines, "",
            f"Target for empg (< 2%): {verdict}."]))
    write(done=True)
    if a.out:
        print(f"wrote {a.out}", flush=True)

if __name__ == "__main__":
    main()
