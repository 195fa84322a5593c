"""The rows of the head-to-head and how they run: one worker process per row, iterations in rounds.

Each row (:data:`SYSTEMS`) lives in its own process (spawned, so nothing is shared and each has
its own peak RSS), loads its model once, then waits. The parent sends "step" to the rows in
round-robin order (every row's iteration ``i`` before any row's ``i + 1``), with at most ``lanes``
iterations in flight: ``lanes=1`` alternates the rows, one computing at a time; ``lanes=2`` runs two
at once (each worker then has one torch thread), a row's iteration overlapping whatever the next
rows in the round do. Either way a slow phase of the shared machine hits all rows alike. The first
``warmup`` iterations of each row are recorded but marked as warm-up. A row that cannot start or
fails is reported with its error, never replaced by something else.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable

from vs_trl.task import Settings


@dataclass(frozen=True)
class System:
    name: str
    side: str  # "empg" | "trl"
    what: str  # one line for the report
    overrides: tuple[str, ...] = ()  # empg: config overrides of the row
    gradient_checkpointing: bool = False  # trl

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "what": self.what, "overrides": list(self.overrides),
                "gradient_checkpointing": self.gradient_checkpointing}


NO_SHARE, NO_DROP, GRPO = "model.share_prefix=false", "train.drop_zero_signal=false", "train.algo=grpo"
TORCH_KERNELS = "model.onednn=false"
SYSTEMS = (  # TRL rows spread through the round
    System("trl/gc", "trl", "TRL as its docs configure it: gradient accumulation, gradient checkpointing on",
           gradient_checkpointing=True),
    System("empg", "empg", "empg as shipped: EM-PG, prefix sharing on, zero-signal groups dropped"),
    System("empg-grpo/no-share", "empg", "empg's GRPO (TRL's loss), every group trained, prefix sharing off",
           (GRPO, NO_DROP, NO_SHARE)),
    System("empg/no-drop", "empg", "EM-PG, prefix sharing on, every group trained", (NO_DROP,)),
    System("trl/no-gc", "trl", "TRL with gradient accumulation, gradient checkpointing off"),
    System("empg-grpo", "empg", "empg's GRPO (TRL's loss), every group trained, prefix sharing on", (GRPO, NO_DROP)),
    System("empg/no-share", "empg", "EM-PG, prefix sharing off, zero-signal groups dropped", (NO_SHARE,)),
    System("empg/no-share/no-drop", "empg", "EM-PG, prefix sharing off, every group trained", (NO_SHARE, NO_DROP)),
    System("empg-grpo/no-share/torch", "empg", "empg's GRPO (TRL's loss), every group trained, prefix sharing off, "
           "torch's own linear kernels (MKL, as TRL)", (GRPO, NO_DROP, NO_SHARE, TORCH_KERNELS)),
)
BY_NAME = {s.name: s for s in SYSTEMS}


@dataclass
class Result:
    system: System
    iterations: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.system.to_dict(), "info": self.info, "error": self.error, "iterations": self.iterations}


def _entry(side: str, conn: Any, settings: dict[str, Any], arg: Any, log_path: str) -> None:
    """Worker process entry: output to ``log_path``, run the side's worker, report any failure."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        if side == "trl":
            from vs_trl import trl_worker as mod
        else:
            from vs_trl import empg_worker as mod  # type: ignore[no-redef]
        mod.main(conn, settings, arg)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which records it
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"))


@dataclass
class _Worker:
    proc: Any
    conn: Any


def _drive(jobs: list[str], begin: Callable[[str], None], workers: dict[str, _Worker], lanes: int,
           timeout_s: float, finish: Callable[[str, str, Any, float], None]) -> None:
    """Run ``jobs`` (row names, in order) with at most ``lanes`` in flight: ``begin(name)`` starts
    one, the worker's next message ends it, handed to ``finish(name, kind, payload, started)``; a
    job whose row is still busy waits (the order is kept); a dead or silent worker ends in an error."""
    queue, busy, begun = list(jobs), {}, set()
    while queue or busy:
        queue = [n for n in queue if n not in begun or n in workers]  # a failed row's jobs are dropped
        while queue and len(busy) < lanes and queue[0] not in busy:
            name = queue.pop(0)
            begin(name)
            begun.add(name)
            busy[name] = time.time()
        ready = wait([workers[n].conn for n in busy if n in workers], timeout=2.0)
        for name in list(busy):
            w = workers.get(name)
            if w is not None and w.conn in ready:
                try:
                    kind, payload = w.conn.recv()
                except EOFError:
                    kind, payload = "error", f"worker exited (code {w.proc.exitcode})"
            elif w is None or not w.proc.is_alive():
                kind, payload = "error", "worker exited without an answer"
            elif time.time() - busy[name] > timeout_s:
                w.proc.kill()
                kind, payload = "error", f"no answer within {timeout_s:.0f} s"
            else:
                continue
            finish(name, kind, payload, busy.pop(name))


def run(settings: Settings, systems: list[str], lanes: int, log_dir: str, log: Callable[[str], None] = print,
        timeout_s: float = 1800.0) -> dict[str, Result]:
    """Start every row, run ``settings.total_iterations`` rounds, stop them; worker output goes to
    ``<log_dir>/<row>.log``. Each iteration's record gets its round (``iteration``), whether it is
    a warm-up, and its start and end in seconds since the rows were started (so overlaps can be read
    off)."""
    ctx = mp.get_context("spawn")
    results = {n: Result(BY_NAME[n]) for n in systems}
    workers: dict[str, _Worker] = {}
    t0 = time.time()

    def fail(name: str, why: str) -> None:
        results[name].error = why
        log(f"[{settings.workload}] {name} failed: {why.strip().splitlines()[0] if why else why}")
        w = workers.pop(name, None)
        if w is not None:
            w.proc.kill()

    def spawn(name: str) -> None:
        sys_ = BY_NAME[name]
        arg = sys_.gradient_checkpointing if sys_.side == "trl" else list(sys_.overrides)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_entry, daemon=True, args=(
            sys_.side, child, settings.to_dict(), arg, os.path.join(log_dir, name.replace("/", "_") + ".log")))
        proc.start()
        workers[name] = _Worker(proc, parent)

    def ready(name: str, kind: str, payload: Any, started: float) -> None:
        if kind != "ready":
            return fail(name, payload)
        results[name].info.update(payload)
        log(f"[{settings.workload}] {name} ready in {payload['setup_s']:.1f} s")

    _drive(systems, spawn, workers, lanes, timeout_s, ready)
    jobs = [n for _ in range(settings.total_iterations) for n in systems if n in workers]
    count = {"done": 0, "step_start": time.time()}

    def step(name: str) -> None:
        workers[name].conn.send("step")

    def done(name: str, kind: str, payload: Any, started: float) -> None:
        if kind != "done":
            return fail(name, payload)
        it = len(results[name].iterations)
        rec = {"iteration": it, "warmup": it < settings.warmup, "start_s": started - t0,
               "end_s": time.time() - t0, **payload}
        results[name].iterations.append(rec)
        count["done"] += 1
        elapsed = time.time() - count["step_start"]
        left = elapsed / count["done"] * (len(jobs) - count["done"])
        log(f"[{settings.workload} {count['done']}/{len(jobs)}, ~{left / 60:.0f} min left] {name} iteration {it}"
            f"{' (warm-up)' if rec['warmup'] else ''}: {payload['wall']:.1f} s, {payload['generated_tokens']} "
            f"tokens generated, {payload['trained_tokens']} trained, reward {payload['reward_mean']:.2f}")

    _drive(jobs, step, workers, lanes, timeout_s, done)
    for name, w in list(workers.items()):
        w.conn.send("stop")
        if w.conn.poll(60):
            kind, payload = w.conn.recv()
            if kind == "final":
                results[name].info.update(payload)
        w.proc.join(30)
    return results
