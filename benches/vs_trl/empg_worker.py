"""The empg side of the head-to-head: empg's own EM iteration through its public API.

The worker (its own process) builds a run with :func:`empg.build.build` from a config made of the
shared settings plus its row's overrides (``model.share_prefix``, ``train.drop_zero_signal``,
``train.algo``): model from the shared directory, on the shared device and dtype (fp32 on the CPU by
default), the transformers sampler, AdamW
at the shared lr, constant schedule, no warm-up, ``kl_beta = 0``. Per "step" it runs one iteration
as :func:`empg.em.train` does:

    e_step  (sampler.generate, the verifier (empg.scoring.verify_rollouts), empg.group_weights,
            zero-signal groups dropped unless train.drop_zero_signal=false)
    m_step  (one optimizer step over all kept sequences, packed micro-batches)
    sampler.sync_weights; one metrics row through empg.trackers.RunLogger

on the SAME prompts (token ids identical to TRL's chat-template rendering) with the same sampling
settings and no stop strings (TRL stops at EOS or the length cap only, so empg does too). The
mini-batch is all ``P * K`` sequences: one optimizer step per iteration, as TRL's accumulated one
(empg's default is two steps).

The split: generation / reward / weights are the times :func:`empg.em.e_step` itself records
(``time/sampling``, ``time/verifying``, ``time/weights``). Inside the M-step, timing wrappers
(same results returned) around ``torch.Tensor.backward`` (backward), the optimizer's ``step``
(optimizer), empg's packing calls ``pack_microbatches`` / ``Samples.microbatches`` as the M-step
looks them up (advantages/packing) and gradient clipping (other, as in TRL's split); forward = the
rest of the M-step (the packed forward and the loss). Other = the rest of the iteration's wall time.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from vs_trl.task import Settings, model_dir, problems, prompt_ids
from vs_trl.timing import Timers, TokenCounter, peak_memory, release_memory, rss_bytes

# What the report shows of the config each empg worker built (its loss, batch and sharing settings).
CONFIG_KEYS = (("train", "algo"), ("train", "normalize"), ("train", "scheme"), ("train", "clip_eps"),
               ("train", "drop_zero_signal"), ("model", "share_prefix"), ("train", "token_budget"),
               ("train", "steps_per_epoch"), ("sampling", "temperature"), ("model", "onednn"))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_config(settings: Settings, path: str, run_dir: str, overrides: list[str]) -> Any:
    """The shared settings as an empg config, then the row's ``key=value`` overrides (validated)."""
    from empg.config import from_dict, parse_overrides

    base = {
        "model": {"name": path, "dtype": settings.dtype, "device": settings.device, "attn_implementation": "sdpa",
                  "threads": settings.threads},
        "sampling": {"sampler": "transformers", "prompts_per_iteration": settings.prompts_per_iteration,
                     "group_size": settings.group_size, "temperature": settings.temperature,
                     "top_p": settings.top_p, "max_new_tokens": settings.max_new_tokens, "stop": [],
                     "batch_size": settings.rollouts},  # one generate call for the whole E-step, as TRL
        "train": {"algo": "empg", "iterations": settings.total_iterations, "epochs": 1,
                  "mini_batch_size": settings.rollouts, "steps_per_epoch": 1, "kl_beta": 0.0,
                  "lr": settings.lr, "weight_decay": 0.0, "betas": [0.9, 0.999], "warmup_steps": 0,
                  "schedule": "constant", "max_grad_norm": settings.max_grad_norm, "seed": settings.seed},
        "log": {"run_dir": run_dir, "report_to": [], "progress": False},
        "eval": {"every": 0},
    }
    return from_dict(_merge(base, parse_overrides(overrides)))


class _Instrument:
    """Timing wrappers inside the M-step (results unchanged)."""

    def __init__(self, timers: Timers, optimizer: Any) -> None:
        import torch

        from empg import mstep, samples

        timers.wrap(optimizer, "step", "optimizer.step")
        timers.wrap(mstep, "pack_microbatches")
        timers.wrap(samples.Samples, "microbatches")
        timers.wrap(torch.nn.utils, "clip_grad_norm_")
        timers.wrap(torch.Tensor, "backward")


def main(conn: Any, settings_dict: dict[str, Any], overrides: list[str]) -> None:
    """Worker entry point (multiprocessing, spawn): build, report ready, one iteration per "step"."""
    import torch
    from transformers import AutoTokenizer

    from empg import em
    from empg.build import build
    from empg.sampling import SamplingParams
    from empg.scoring import verify_rollouts
    from empg.trackers import RunLogger

    settings = Settings(**settings_dict)
    t0 = time.perf_counter()
    rows = problems(settings)
    path = model_dir(settings.model)
    with tempfile.TemporaryDirectory(prefix="bench-empg-") as run_dir:
        prompts = prompt_ids(AutoTokenizer.from_pretrained(path), rows, settings.workload)
        cfg = build_config(settings, str(path), run_dir, overrides)
        s = build(cfg)
        torch.set_num_threads(settings.threads)
        log = RunLogger(run_dir, report_to=[])
        timers = Timers()
        _Instrument(timers, s.optimizer)
        counter = TokenCounter(s.model.base_model)
        config = {f"{sec}.{k}": getattr(getattr(cfg, sec), k) for sec, k in CONFIG_KEYS}
        conn.send(("ready", {"setup_s": time.perf_counter() - t0, "rss_after_load": rss_bytes(), "config": config}))
        P = settings.prompts_per_iteration
        for it in range(settings.total_iterations):
            if conn.recv() != "step":
                raise RuntimeError("empg worker: expected 'step'")
            timers.reset()
            start, cpu = time.perf_counter(), time.process_time()
            batch = slice(it * P, (it + 1) * P)
            params = SamplingParams(n=settings.group_size, temperature=settings.temperature,
                                    top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                                    stop=(), seed=settings.seed * 100_003 + it)
            est = em.e_step(s.sampler, prompts[batch], params,
                            verify_rollouts([r["answer"] for r in rows[batch]], cfg.data.verify_style),
                            scheme=cfg.train.scheme, drop_zero_signal=cfg.train.drop_zero_signal)
            m0 = time.perf_counter()
            counter.on = True
            mst = em.m_step(s, est.samples, it + 1)
            counter.on = False
            m1 = time.perf_counter()
            s.sampler.sync_weights(s.model)
            log.log(it + 1, {"kind": "train", **est.stats, **{f"mstep/{k}": v for k, v in mst.items()}})
            wall = time.perf_counter() - start
            rec = {**record(timers, est, mst, m1 - m0, wall, counter.take()), "cpu_s": time.process_time() - cpu}
            s.optimizer.zero_grad(set_to_none=True)  # idle workers hold no gradients (TRL's neither)
            release_memory()
            conn.send(("done", rec))
        log.close()
    conn.recv()
    conn.send(("final", peak_memory()))


def record(timers: Timers, est: Any, mst: dict[str, float], mstep_s: float, wall: float,
           forward_tokens: int) -> dict[str, Any]:
    t = timers.get
    packing = t("pack_microbatches") + t("microbatches")
    split = {
        "generation": est.stats["time/sampling"],
        "reward": est.stats["time/verifying"],
        "advantages_packing": est.stats["time/weights"] + packing,
        "forward": mstep_s - t("backward") - t("optimizer.step") - packing - t("clip_grad_norm_"),
        "backward": t("backward"),
        "optimizer": t("optimizer.step"),
    }
    split["other"] = wall - sum(split.values())
    return {"wall": wall, "split": split, "generated_tokens": int(est.stats["tokens/sampled"]),
            "trained_tokens": int(mst.get("tokens", 0)), "forward_tokens": forward_tokens,
            "rollouts": len(est.rollouts), "reward_mean": float(est.rewards.mean()), "rss": rss_bytes()}
