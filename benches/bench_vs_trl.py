"""empg vs TRL 1.16's GRPOTrainer at equal work, with the ablations that explain the gap.

    python benches/bench_vs_trl.py           # full run: both workloads, every row (~30 min, 2 quiet cores)
    python benches/bench_vs_trl.py --quick   # smoke run: tiny random model, tiny sizes (~1-2 min)
    bash benches/gpu_vs_trl.sh               # on a GPU: --gpu, both sides in bf16 (under 8 min on an H100/H200)

Every row is its own worker process on the same weights (SmolLM2-135M-Instruct converted once from
the embedded GGUF; ``--quick``: a tiny random Llama) and the same prompts, in rounds: every row's
iteration i before any row's i + 1, ``--lanes`` of them at a time (see ``vs_trl/harness.py``). The
rows (``vs_trl.harness.SYSTEMS``): TRL's real ``GRPOTrainer.train()`` with gradient accumulation to
the same global batch, gradient checkpointing on (TRL's default) and off; empg's own loop as
shipped (EM-PG, prefix sharing, zero-signal groups dropped), with prefix sharing off, dropping off,
both off, and ``train.algo=grpo`` (TRL's loss) with dropping off, prefix sharing on and off. Two
workloads: the embedded 2-shot arithmetic (long shared prefix, short completions) and GSM8K
zero-shot (long completions; skipped when the data is absent).

Every iteration's record goes to ``<out>/records.json`` (after each workload, so an interrupted
run keeps what it finished) with ``<out>/meta.json`` (commits, machine, load at start and end,
settings); the report ``benches/results/vs_trl.md`` is generated from them by
``benches/vs_trl_report.py`` at the end (or any time later).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import machine_line  # noqa: E402
from vs_trl import harness  # noqa: E402
from vs_trl.task import Settings, missing_data  # noqa: E402

import vs_trl_report  # noqa: E402

# Prompts per iteration, K, max new tokens: what fits ~30 min for both workloads and every row on 2
# cores (a TRL iteration of GSM8K at 1 x 4 x 256 is about a minute of one core).
FULL = {"arith": (2, 4, 48), "gsm8k": (1, 4, 256)}
GIB_PER_ROW = 2.5  # a SmolLM2 worker between iterations (fp32 weights, AdamW state, libraries)
QUICK = {"arith": (2, 2, 8), "gsm8k": (2, 2, 8)}
# --gpu: Qwen2.5-0.5B's shape (random weights), bf16 on both sides, one row at a time on the GPU;
# sizes, rows and iterations that fit 8 minutes on one H100/H200 with transformers generation.
GPU = {"arith": (8, 8, 48), "gsm8k": (4, 8, 256)}
GPU_ROWS = ("trl/gc", "empg", "empg-grpo/no-share", "trl/no-gc", "empg-grpo")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny random model, tiny sizes, 1 warm-up + 2 timed")
    ap.add_argument("--gpu", action="store_true", help="on CUDA: Qwen2.5-0.5B's shape with random weights, bf16, "
                    f"sizes {GPU}, rows {','.join(GPU_ROWS)}, 1 warm-up + 3 timed, one row at a time")
    ap.add_argument("--device", default=None, help="both systems' device (default cpu; --gpu: cuda)")
    ap.add_argument("--dtype", default=None, choices=("float32", "bfloat16"),
                    help="both systems' weights (default float32; --gpu: bfloat16)")
    ap.add_argument("--workloads", default=None, help="(default arith,gsm8k; --gpu: gsm8k,arith)")
    ap.add_argument("--systems", default=None, help="rows to run (default: every row; --gpu: "
                    f"{','.join(GPU_ROWS)})")
    ap.add_argument("--iterations", type=int, default=None, help="timed iterations per row (default 5; quick 2)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--lanes", type=int, default=None, help="iterations in flight at once (default 2; --gpu: "
                    "1); each worker gets cores / lanes torch threads (1: strictly alternating, all cores each)")
    for w, (p, k, t) in FULL.items():
        ap.add_argument(f"--{w}", default=None, metavar="P,K,T",
                        help=f"prompts per iteration, K, max new tokens (default {p},{k},{t})")
    ap.add_argument("--trl-micro-batch", type=int, default=None, help="TRL's per_device_train_batch_size "
                    "(gradient accumulation makes up P x K; default 2, --gpu: 8)")
    ap.add_argument("--out", default=None, help="the records' folder (default benches/results/vs_trl, --gpu: "
                    "benches/results/vs_trl_gpu; quick: a temporary folder)")
    ap.add_argument("--report", default=None, help="the generated report (default: benches/results/vs_trl.md "
                    "or vs_trl_gpu.md for the default --out, else <out>/vs_trl.md)")
    a = ap.parse_args(argv)
    a.workloads = a.workloads or ("gsm8k,arith" if a.gpu else "arith,gsm8k")
    a.systems = a.systems or ",".join(GPU_ROWS if a.gpu else (s.name for s in harness.SYSTEMS))
    a.lanes = a.lanes or (1 if a.gpu else 2)
    a.device = a.device or ("cuda" if a.gpu else "cpu")
    a.dtype = a.dtype or ("bfloat16" if a.gpu else "float32")
    a.trl_micro_batch = a.trl_micro_batch or (8 if a.gpu else 2)
    for what, given, known in (("workload", a.workloads, FULL), ("row", a.systems, harness.BY_NAME)):
        if set(given.split(",")) - set(known):
            ap.error(f"unknown {what} in {given!r}: choose from {', '.join(known)}")
    return a


def _git(path: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance() -> dict[str, Any]:
    """Which code ran: this checkout's commit, and the commit of the checkout empg is imported from."""
    import empg
    import torch
    import transformers
    import trl

    where = Path(empg.__file__).resolve().parent
    return {"bench_commit": _git(HERE, "rev-parse", "HEAD"), "bench_dirty": bool(_git(HERE, "status", "--porcelain")),
            "empg_from": str(where), "empg_commit": _git(where, "rev-parse", "HEAD"),
            "empg_dirty": bool(_git(where, "status", "--porcelain", "--", ".")),
            "versions": {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__}}


def mem_available_gib() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable")) / 2**20


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    sizes = QUICK if a.quick else GPU if a.gpu else FULL
    threads = max(1, (os.cpu_count() or 1) // a.lanes)
    common = {"model": "tiny" if a.quick else "qwen0.5b" if a.gpu else "smollm2",
              "iterations": a.iterations or (2 if a.quick else 3 if a.gpu else 5), "warmup": a.warmup,
              "threads": threads, "trl_micro_batch": a.trl_micro_batch, "device": a.device, "dtype": a.dtype}
    systems = a.systems.split(",")
    results = HERE / "results" / ("vs_trl_gpu" if a.gpu else "vs_trl")
    out = Path(a.out or (tempfile.mkdtemp(prefix="bench-vs-trl-") if a.quick else results))
    report = a.report or str(results.with_suffix(".md") if out == results else out / "vs_trl.md")
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-vs-trl-logs-"))
    command = " ".join(["python benches/bench_vs_trl.py", *(sys.argv[1:] if argv is None else argv)])
    machine = machine_line()
    if a.device.startswith("cuda"):
        import torch

        machine += f"; GPU {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB"
    meta = {"command": command, "machine": machine, "load_start": os.getloadavg(), "lanes": a.lanes,
            "threads_per_worker": threads, "mem_available_gib": mem_available_gib(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **provenance()}
    records: dict[str, Any] = {}
    t0 = time.time()

    def save() -> None:
        """Records and meta so far (after every workload: an interrupted run keeps what it finished)."""
        meta.update(load_end=os.getloadavg(), wall_s=round(time.time() - t0, 1))
        (out / "records.json").write_text(json.dumps(records, indent=1) + "\n")
        (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")

    if not a.quick and not a.gpu and meta["mem_available_gib"] < GIB_PER_ROW * len(systems) + 2:
        print(f"warning: {meta['mem_available_gib']:.1f} GiB available; {len(systems)} SmolLM2 workers need about "
              f"{GIB_PER_ROW * len(systems) + 2:.0f} GiB (fewer --systems, or free memory)", flush=True)
    print(f"{len(systems)} rows x {common['warmup']} + {common['iterations']} iterations per workload, "
          f"{a.lanes} at a time, {threads} torch thread(s) each; worker logs in {logs}", flush=True)
    for w in a.workloads.split(","):
        why = missing_data(w)
        if why:
            print(f"== {w}: skipped: {why}", flush=True)
            records[w] = {"skipped": why}
            continue
        p, k, t = (int(x) for x in (getattr(a, w) or ",".join(map(str, sizes[w]))).split(","))
        s = Settings(workload=w, prompts_per_iteration=p, group_size=k, max_new_tokens=t, **common)
        print(f"== {w}: {p} prompts x K={k}, up to {t} new tokens", flush=True)
        (logs / w).mkdir()
        res = harness.run(s, systems, a.lanes, str(logs / w))
        records[w] = {"settings": s.to_dict(), "systems": {n: r.to_dict() for n, r in res.items()}}
        save()
    save()
    print(f"records in {out} ({meta['wall_s'] / 60:.1f} min)", flush=True)
    return vs_trl_report.main([str(out), "--out", report])


if __name__ == "__main__":
    sys.exit(main())
