"""Runs the systems side by side: one worker process per system, iterations alternated.

Each system lives in its own process (spawned, so nothing is shared and each has its own peak
RSS), loads its model once, then waits. The parent sends "step" to each system in turn
(empg, TRL, TRL, empg, TRL, TRL, ...): only one system computes at any time and a slow phase of
the shared machine hits all of them alike. The first ``warmup`` iterations of each are not timed.
A system that cannot start (a missing module, say) is reported as unavailable with its error,
never replaced by something else.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from vs_trl.task import Settings
from vs_trl.timing import CATEGORIES


def _entry(target: str, conn: Any, settings: dict[str, Any], arg: str, log_path: str | None) -> None:
    """Worker process entry: output to ``log_path``, import the system's module, run it, report
    any failure."""
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    try:
        if target == "trl":
            from vs_trl import trl_worker as mod
        else:
            from vs_trl import empg_worker as mod  # type: ignore[no-redef]
        mod.main(conn, settings, arg)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which prints it
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"))


@dataclass
class SystemResult:
    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def mean(self, key: Callable[[dict[str, Any]], float]) -> float:
        return statistics.fmean(key(r) for r in self.records) if self.records else float("nan")

    @property
    def wall(self) -> float:
        return self.mean(lambda r: r["wall"])

    @property
    def wall_sd(self) -> float:
        return statistics.stdev(r["wall"] for r in self.records) if len(self.records) > 1 else 0.0

    def split(self, cat: str) -> float:
        return self.mean(lambda r: r["split"][cat])

    def total(self, key: str) -> float:
        return float(sum(r[key] for r in self.records))

    @property
    def gen_tok_s(self) -> float:
        return self.total("generated_tokens") / sum(r["split"]["generation"] for r in self.records)

    @property
    def trained_tok_s(self) -> float:
        t = sum(r["split"]["forward"] + r["split"]["backward"] for r in self.records)
        return self.total("trained_tokens") / t if t > 0 else float("nan")

    @property
    def device_work(self) -> float:
        """Mean seconds per iteration of the work an accelerator would do: generation, forward,
        backward, optimizer step."""
        return sum(self.split(c) for c in ("generation", "forward", "backward", "optimizer"))

    @property
    def cpu_side(self) -> float:
        """Mean seconds per iteration of everything else: reward, advantages/packing, other."""
        return sum(self.split(c) for c in ("reward", "advantages_packing", "other"))


SYSTEMS = {
    # name: (worker module, argument)
    "empg": ("empg", "empg"),
    "trl/math-verify": ("trl", "math-verify"),
    "trl/empg-verifier": ("trl", "empg-verifier"),
}


def run(settings: Settings, systems: list[str], log: Callable[[str], None] = print,
        timeout_s: float = 1800.0, log_dir: str | None = None) -> dict[str, SystemResult]:
    """Start every system, alternate their iterations, collect the records. Worker output goes
    to ``<log_dir>/<system>.log`` when ``log_dir`` is given."""
    ctx = mp.get_context("spawn")
    results = {name: SystemResult(name) for name in systems}
    live: dict[str, tuple[Any, Any]] = {}
    for name in systems:  # start one at a time: loading does not overlap with anything
        target, arg = SYSTEMS[name]
        parent, child = ctx.Pipe()
        log_path = os.path.join(log_dir, name.replace("/", "_") + ".log") if log_dir else None
        proc = ctx.Process(target=_entry, args=(target, child, settings.to_dict(), arg, log_path), daemon=True)
        proc.start()
        kind, payload = _recv(parent, proc, timeout_s)
        if kind != "ready":
            results[name].error = payload
            log(f"[{name}] unavailable: {payload.splitlines()[0] if payload else kind}")
            proc.join(5)
            continue
        results[name].info.update(payload)
        live[name] = (parent, proc)
        log(f"[{name}] ready in {payload['setup_s']:.1f} s")
    for it in range(settings.total_iterations):
        for name in list(live):
            parent, proc = live[name]
            parent.send("step")
            kind, payload = _recv(parent, proc, timeout_s)
            if kind != "done":
                results[name].error = payload
                log(f"[{name}] failed at iteration {it}: {payload}")
                proc.kill()
                del live[name]
                continue
            timed = it >= settings.warmup
            if timed:
                results[name].records.append(payload)
            split = ", ".join(f"{k} {v:.2f}" for k, v in payload["split"].items())
            log(f"[{name}] iteration {it}{'' if timed else ' (warm-up)'}: {payload['wall']:.2f} s, "
                f"{payload['generated_tokens']} tokens generated, {payload['trained_tokens']} trained, "
                f"reward {payload['reward_mean']:.2f} ({split})")
    for name, (parent, proc) in live.items():
        parent.send("stop")
        kind, payload = _recv(parent, proc, timeout_s)
        if kind == "final":
            results[name].info.update(payload)
        proc.join(30)
    return results


def _recv(conn: Any, proc: Any, timeout_s: float) -> tuple[str, Any]:
    """The worker's next message; an error when it exits or stays silent for ``timeout_s``."""
    waited = 0.0
    while not conn.poll(1.0):
        waited += 1.0
        if not proc.is_alive():
            return "error", f"worker exited (code {proc.exitcode}) without an answer"
        if waited >= timeout_s:
            proc.kill()
            return "error", f"no answer within {timeout_s:.0f} s"
    try:
        return conn.recv()  # type: ignore[no-any-return]
    except EOFError:
        return "error", f"worker exited (code {proc.exitcode})"


def split_shares(res: SystemResult) -> dict[str, float]:
    return {c: res.split(c) / res.wall for c in CATEGORIES}
