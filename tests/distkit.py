"""Shared pieces of the torchrun tests (tests/test_distributed.py): real torch.distributed processes
on the CPU (gloo), started with ``torch.multiprocessing`` as torchrun would start them (the same
environment variables), each running the real FSDP2-sharded M-step of :mod:`empg.mstep`; and the
same job in one process, the reference the ranks must match.

A job is a plain dict (it crosses process boundaries): the tiny model's config, the sequences of
every rank, the M-step settings, and optionally a checkpoint to resume from and a directory to
checkpoint into.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faultkit import free_port
from tiny_models import tiny_llama


def make_rank_data(counts: list[int], seed: int = 0) -> list[dict[str, Any]]:
    """Random sequences for each rank: prompts of 2-6 tokens, completions of 1-8, weights ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in counts:
        prompts = [rng.integers(1, 64, rng.integers(2, 7)).tolist() for _ in range(n)]
        completions = [rng.integers(1, 64, rng.integers(1, 9)).tolist() for _ in range(n)]
        out.append({"prompts": prompts, "completions": completions,
                    "weights": rng.normal(size=n).astype(np.float32).tolist()})
    return out


def union(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The sequences of all ranks as one process holds them (rank 0's first)."""
    return {k: [x for p in parts for x in p[k]] for k in ("prompts", "completions", "weights")}


def run_job(job: dict[str, Any], data: dict[str, Any], d: Any = None) -> dict[str, Any]:
    """Build (or resume) the model and optimizer, run one M-step on ``data``, checkpoint if asked.
    Returns the M-step's numbers and, on rank 0, the full weights and name-keyed optimizer state."""
    from empg import checkpoint as ckpt
    from empg import distributed
    from empg.losses import LossParams
    from empg.mstep import MStepSettings, Samples, m_step, make_optimizer, make_scheduler, score

    d = d or distributed.SINGLE
    torch.manual_seed(0)
    if job.get("resume"):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(job["resume"], dtype=torch.float32)
    else:
        model = tiny_llama(seed=0, **job.get("model", {}))
    if job.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    ref = copy.deepcopy(model).eval().requires_grad_(False) if job.get("kl_beta", 0) > 0 else None
    if d.enabled:
        distributed.shard_model(model, bf16_params=job.get("bf16_params", False))
    opt = make_optimizer(model, lr=job.get("lr", 1e-2), weight_decay=0.0, betas=(0.9, 0.999))
    sched = make_scheduler(opt, warmup_steps=0, schedule="constant", total_steps=100)
    if job.get("resume"):
        state = ckpt.load_state(job["resume"])
        ckpt.load_optimizer(model, opt, state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    samples = Samples.from_tokens(data["prompts"], data["completions"],
                                  np.asarray(data["weights"], dtype=np.float32))
    settings = MStepSettings(algo=job.get("algo", "empg"), epochs=job.get("epochs", 2),
                             mini_batch_size=job.get("mini_batch_size", 3),
                             token_budget=job.get("token_budget", 24), normalize=job.get("normalize", "token"),
                             loss=LossParams(kl_beta=job.get("kl_beta", 0.0)), bf16_autocast=False)
    if settings.algo == "grpo":
        samples.old_logp = score(model, samples, token_budget=settings.token_budget, dist=d)
    if ref is not None:
        samples.ref_logp = score(ref, samples, token_budget=settings.token_budget, dist=d)
    out = m_step(model, opt, sched, samples, settings, np.random.default_rng(job.get("seed", 1)), dist=d)
    weights = distributed.full_state_dict(model, rank0_only=True)
    optim = distributed.optimizer_state(model, opt)
    if job.get("save") and d.is_main:
        ckpt.save(job["save"], 1, model, None, optim, sched, {"data_pos": 0},
                  weights=weights if d.enabled else None)
    distributed.barrier(d)
    return {"mstep": out, "weights": {k: v.detach().cpu().clone() for k, v in weights.items()},
            "optimizer": optim, "samples": len(samples)}


def _rank_main(rank: int, world: int, port: int, job: dict[str, Any], parts: list[dict[str, Any]],
               out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from empg import distributed

    d, _ = distributed.init("cpu", timeout_minutes=3)
    try:
        res = run_job(job, parts[rank], d)
        res["rank"] = rank
        torch.save(res, Path(out_dir) / f"rank{rank}.pt")
        # Both ranks done before either tears gloo down: a rank that destroys its process group
        # while the other is still in its own teardown can make that one abort (SIGABRT, seen in CI).
        distributed.barrier(d)
    finally:
        distributed.shutdown()


def run_ranks(job: dict[str, Any], parts: list[dict[str, Any]], out_dir: Path,
              timeout: float = 240) -> list[dict[str, Any]]:
    """Run ``job`` on ``len(parts)`` gloo ranks (rank r gets ``parts[r]``); each rank's result.
    A rank that hangs past ``timeout`` fails the test instead of hanging it."""
    import torch.multiprocessing as mp

    world = len(parts)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = mp.start_processes(_rank_main, args=(world, free_port(), job, parts, str(out_dir)),
                             nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise AssertionError(f"{world} ranks still running after {timeout:.0f} s: a hang")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(world)]
