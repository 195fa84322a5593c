"""The empg side of the head-to-head: empg's own EM iteration through its public API.

The worker (its own process) builds a run with :func:`empg.build.build` (model from the shared
directory, fp32 on the CPU, the transformers sampler, AdamW at the shared lr, constant schedule,
no warm-up, ``kl_beta = 0``), then per "step" runs one iteration as :func:`empg.em.train` does:

    e_step  (sampler.generate, the verifier (empg.scoring.verify_rollouts), empg.group_weights,
            zero-signal groups dropped)
    m_step  (one optimizer step over all kept sequences, packed micro-batches)
    sampler.sync_weights; one metrics row through empg.trackers.RunLogger

on the SAME prompts (token ids identical to TRL's chat-template rendering) with the same sampling
settings and no stop strings (TRL stops at EOS or the length cap only, so empg does too). The
mini-batch is all ``P * K`` sequences (one optimizer step per iteration, as TRL with these
settings). The M-step's micro-batch token budget is empg's default unless
``empg_token_budget`` sets it (it trades packed-row length, hence masked-attention cost on a CPU,
against the number of forward passes).

The split: generation / reward / weights are the times :func:`empg.em.e_step` itself records
(``time/sampling``, ``time/verifying``, ``time/weights``). Inside the M-step, timing wrappers
(same results returned) around ``torch.Tensor.backward`` (backward), the optimizer's ``step``
(optimizer), empg's packing calls ``pack_microbatches`` / ``Samples.microbatches`` as the M-step
looks them up (advantages/packing) and gradient clipping (other, as in TRL's split); forward = the rest
of the M-step (the packed forward and the loss). Other = the rest of the iteration's wall time.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from vs_trl.task import Settings, model_dir, problems, prompt_ids
from vs_trl.timing import Timers, peak_rss_bytes, rss_bytes


def build_config(settings: Settings, path: str, run_dir: str) -> Any:
    from empg.config import Config

    cfg = Config()
    cfg.model.name = path
    cfg.model.dtype = "float32"
    cfg.model.device = "cpu"
    cfg.model.attn_implementation = "sdpa"
    cfg.model.threads = settings.threads
    s = cfg.sampling
    s.sampler = "transformers"
    s.prompts_per_iteration = settings.prompts_per_iteration
    s.group_size = settings.group_size
    s.temperature = settings.temperature
    s.top_p = settings.top_p
    s.max_new_tokens = settings.max_new_tokens
    s.stop = []
    s.batch_size = settings.rollouts  # one generate call for the whole E-step, as TRL
    t = cfg.train
    t.algo = "empg"
    t.iterations = settings.total_iterations
    t.epochs = 1
    t.mini_batch_size = settings.rollouts
    t.steps_per_epoch = 1  # one optimizer step per iteration, as TRL here (empg's default is 2)
    if settings.empg_token_budget:
        t.token_budget = settings.empg_token_budget
    t.scheme = "group_norm"
    t.kl_beta = 0.0
    t.lr = settings.lr
    t.weight_decay = 0.0
    t.betas = [0.9, 0.999]
    t.warmup_steps = 0
    t.schedule = "constant"
    t.max_grad_norm = settings.max_grad_norm
    t.seed = settings.seed
    cfg.log.run_dir = run_dir
    cfg.log.report_to = []
    cfg.log.progress = False
    cfg.eval.every = 0
    return cfg


class _Instrument:
    """Timing wrappers inside the M-step (results unchanged)."""

    def __init__(self, timers: Timers, optimizer: Any) -> None:
        import torch

        from empg import mstep, samples

        self.t = timers
        timers.wrap(optimizer, "step", "optimizer.step")
        timers.wrap(mstep, "pack_microbatches")
        timers.wrap(samples.Samples, "microbatches")
        timers.wrap(torch.nn.utils, "clip_grad_norm_")
        timers.wrap(torch.Tensor, "backward")


def main(conn: Any, settings_dict: dict[str, Any], _arg: str) -> None:
    """Worker entry point (multiprocessing, spawn): build, report ready, one iteration per "step"."""
    import torch

    from empg import em
    from empg.build import build
    from empg.scoring import verify_rollouts
    from empg.trackers import RunLogger
    from empg.sampling import SamplingParams

    settings = Settings(**settings_dict)
    t0 = time.perf_counter()
    rows = problems(settings)
    path = model_dir(settings.model)
    with tempfile.TemporaryDirectory(prefix="bench-empg-") as run_dir:
        from transformers import AutoTokenizer

        prompts = prompt_ids(AutoTokenizer.from_pretrained(path), rows)
        cfg = build_config(settings, str(path), run_dir)
        s = build(cfg)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        log = RunLogger(run_dir, report_to=[])
        timers = Timers()
        _Instrument(timers, s.optimizer)
        conn.send(("ready", {"setup_s": time.perf_counter() - t0, "rss_after_load": rss_bytes()}))
        P = settings.prompts_per_iteration
        for it in range(settings.total_iterations):
            cmd = conn.recv()
            if cmd != "step":
                raise RuntimeError(f"empg worker: expected 'step', got {cmd!r}")
            timers.reset()
            start = time.perf_counter()
            batch = slice(it * P, (it + 1) * P)
            params = SamplingParams(n=settings.group_size, temperature=settings.temperature,
                                    top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                                    stop=(), seed=settings.seed * 100_003 + it)
            est = em.e_step(s.sampler, prompts[batch], params,
                            verify_rollouts([r["answer"] for r in rows[batch]], cfg.data.verify_style),
                            scheme=cfg.train.scheme)
            m0 = time.perf_counter()
            mst = em.m_step(s, est.samples, it + 1)
            m1 = time.perf_counter()
            s.sampler.sync_weights(s.model)
            log.log(it + 1, {"kind": "train", **est.stats, **{f"mstep/{k}": v for k, v in mst.items()}})
            wall = time.perf_counter() - start
            conn.send(("done", {**record(timers, est, mst, m1 - m0, wall), "token_budget": cfg.train.token_budget}))
        log.close()
    cmd = conn.recv()
    conn.send(("final", {"peak_rss": peak_rss_bytes(), "cmd": cmd}))


def record(timers: Timers, est: Any, mst: dict[str, float], mstep_s: float, wall: float) -> dict[str, Any]:
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
            "trained_tokens": int(mst.get("tokens", 0)), "forward_tokens": int(est.samples.lengths.sum()),
            "rollouts": len(est.rollouts), "reward_mean": float(est.rewards.mean()), "rss": rss_bytes()}
