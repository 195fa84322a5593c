"""EM Policy Gradient (arXiv 2504.18587): the training loop, readable in one sitting.

What the method changes against PPO/GRPO: the M-step maximises the plain reward-weighted
log-likelihood of the E-step's samples, ``L = −Σ w_i Σ_t log π_θ(z_it) / N``, for several optimizer
steps, with NO importance ratio and NO clipping (the EM bound justifies it even though the samples
become off-policy). Weights are group-normalised rewards of the K samples of each question; groups
whose rewards all agree carry no signal and are dropped. ``train.algo=grpo`` swaps only the loss
(clipped ratio to the log-probs recorded after the E-step); everything else is shared.

One iteration::

    E-step  sample K completions per prompt with the current weights  (sampler.generate)
            score them: the verifier, or reward functions              (empg.scoring.Rewards)
            weights per group, drop zero-signal groups                  (empg.group_weights)
    M-step  E epochs of optimizer steps over packed micro-batches       (empg.mstep.m_step)
    sync    the sampler takes the new weights                           (sampler.sync_weights)

The objects come from the composition root (:func:`empg.build.build`, driven by
:class:`empg.Trainer`); torchrun, checkpoint and console plumbing sit behind the small helpers of
:mod:`empg.runtime`; held-out evaluation is :mod:`empg.evaluation`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from empg import distributed, faults
from empg import runtime as rt
from empg.build import Setup
from empg.core import group_weights
from empg.evaluation import run_eval
from empg.exceptions import TrainingError
from empg.losses import LossParams, logprob_temperature
from empg.metrics import RolloutSummary
from empg.mstep import MStepSettings, Samples, score
from empg.mstep import m_step as run_m_step
from empg.onednn import onednn_linears
from empg.sampling import Rollout, Sampler, SamplingParams
from empg.scoring import Scores
from empg.signals import GracefulStop
from empg.trackers import RunLogger

Scorer = Callable[[list[Rollout]], Scores]  # rewards of a list of rollouts (NaN = unscored)


@dataclass
class EStep:
    rollouts: list[Rollout]
    rewards: np.ndarray  # per rollout, NaN where no reward function scored it
    samples: Samples  # the kept sequences (zero-signal groups and unscored rollouts dropped)
    summary: RolloutSummary  # the raw numbers behind ``stats`` (merged over ranks under torchrun)
    scores: Scores

    @property
    def stats(self) -> dict[str, float]:
        return self.summary.stats()


def e_step(sampler: Sampler, prompts: list[list[int]], params: SamplingParams, scorer: Scorer, *,
           scheme: str, iteration: int = 0, part: tuple[int, int] = (0, 1),
           drop_zero_signal: bool = True) -> EStep:
    """Sample K completions per prompt, score them, weight them per group, drop no-signal groups
    (``drop_zero_signal=False``: keep them, at weight 0, as TRL does). ``part=(j, T)``: keep only the
    groups ``j, j+T, ...`` (the share of rank j of a sampler group of T ranks that sampled the same
    prompts with one tensor-parallel engine)."""
    t0 = time.perf_counter()
    rollouts = sampler.generate(prompts, params)
    if part[1] > 1:
        rollouts = [r for r in rollouts if r.group % part[1] == part[0]]
    faults.pause_point("estep-after-sampling", f"iter-{iteration:06d}")  # test hook, inert by default
    t1 = time.perf_counter()
    scores = scorer(rollouts)
    t2 = time.perf_counter()
    scored = np.flatnonzero(~np.isnan(scores.total))  # a rollout no reward function scored: left out
    gw = group_weights(scores.total[scored], group_ids=[rollouts[i].group for i in scored], scheme=scheme)
    dropped = gw.zero_signal & drop_zero_signal
    signal = np.flatnonzero(~dropped[gw.group_index])
    samples = Samples.from_rollouts(rollouts, scored[signal], gw.weights[signal])
    t3 = time.perf_counter()
    summary = RolloutSummary.of(np.nan_to_num(scores.total), [len(r.completion_ids) for r in rollouts],
                                [r.finish_reason == "length" for r in rollouts], gw.solved, dropped,
                                [r.text for r in rollouts],
                                {"sampling": t1 - t0, "verifying": t2 - t1, "weights": t3 - t2})
    return EStep(rollouts, scores.total, samples, summary, scores)


def m_step(s: Setup, samples: Samples, iteration: int) -> dict[str, float]:
    """The KL reference's log-probs (no grad), then the optimizer steps (GRPO's old log-probs are
    recorded inside them: see :func:`empg.mstep.m_step`). On a CPU the linear layers run on oneDNN
    (``model.onednn``, :mod:`empg.onednn`; not under FSDP, whose weights are sharded tensors)."""
    t = s.cfg.train
    temperature = logprob_temperature(t.algo, s.cfg.sampling.temperature)
    onednn = s.cfg.model.onednn and not distributed.is_sharded(s.model)
    if t.kl_beta > 0:
        with onednn_linears(s.ref_model, enabled=onednn):
            samples.ref_logp = score(s.ref_model, samples, token_budget=t.token_budget, dist=s.dist,
                                     autocast=s.cfg.model.bf16_autocast, share_prefix=s.cfg.model.share_prefix,
                                     temperature=temperature)
    settings = MStepSettings(algo=t.algo, epochs=t.epochs, mini_batch_size=t.mini_batch_size,
                             steps_per_epoch=t.steps_per_epoch,
                             token_budget=t.token_budget, normalize=t.normalize,
                             max_grad_norm=t.max_grad_norm,
                             loss=LossParams(kl_beta=t.kl_beta, clip_eps=t.clip_eps),
                             bf16_autocast=s.cfg.model.bf16_autocast,
                             share_prefix=s.cfg.model.share_prefix, temperature=temperature)
    rng = np.random.default_rng([t.seed, iteration])
    with onednn_linears(s.model, enabled=onednn):
        return run_m_step(s.model, s.optimizer, s.scheduler, samples, settings, rng, guard=s.guard, dist=s.dist,
                          on_step=lambda k: faults.pause_point("mstep-after-step", f"iter-{iteration:06d}:{k}"))


# ---------------------------------------------------------------------------------------------


def train(s: Setup, stop: GracefulStop) -> dict[str, Any]:
    """Run EM (or GRPO) until ``cfg.train.iterations``; returns the last eval metrics. A stop
    signal ends it at the end of the current E- or M-step with a checkpoint."""
    cfg, smp, t = s.cfg, s.cfg.sampling, s.cfg.train
    s.log = s.log or RunLogger(cfg.log.run_dir, report_to=cfg.log.report_to, enabled=s.dist.is_main,
                               config=cfg.to_dict())
    if s.extra.get("data/skipped_rows"):
        s.log.log(s.iteration, {"kind": "data", "data/skipped_rows": s.extra["data/skipped_rows"]})
    if "resumed_from" in s.extra:
        s.say(f"empg: resumed from {s.extra['resumed_from']} at iteration {s.iteration}")
    last_eval: dict[str, Any] = {}
    if s.iteration == 0 and cfg.eval.before:
        last_eval = _eval_and_log(s, 0, "before training", cfg.eval.every_limit)
    bar = rt.progress_bar(s)
    while s.iteration < t.iterations:
        it = s.iteration + 1
        start_pos = s.data_pos
        rt.phase(s, it, "E-step")
        rows = rt.next_rows(s, smp.prompts_per_iteration)[rt.my_share(s, smp.prompts_per_iteration)]
        params = SamplingParams(n=smp.group_size, temperature=smp.temperature, top_p=smp.top_p,
                                max_new_tokens=smp.max_new_tokens, stop=s.stop,
                                seed=t.seed * 100_003 + it + rt.GROUP_SEED_STRIDE * rt.sampler_group(s)[0])
        s.sampler.wake_up()
        try:
            est = e_step(s.sampler, [s.train.prompt_ids[i] for i in rows], params,
                         lambda rollouts: s.rewards(s.train.batch(rows, rollouts)),
                         scheme=t.scheme, iteration=it, part=rt.tp_part(s), drop_zero_signal=t.drop_zero_signal)
        except RuntimeError as e:  # NaN/inf probabilities: the weights diverged in the last M-step
            if not faults.is_nonfinite_error(e):
                raise
            raise TrainingError(f"iteration {it}: sampling failed ({e}); the weights have diverged "
                                f"(try a lower train.lr); {rt.last_good(s)}") from e
        s.sampler.sleep()
        if rt.stop_requested(s, stop):  # the E-step's samples are dropped; resuming redraws them
            s.data_pos = start_pos
            rt.stop_here(s, stop, f"the E-step of iteration {it}")
            break
        rt.phase(s, it, f"M-step on {len(est.samples)} sequences" + (" on rank 0" if s.dist.enabled else ""))
        t0 = time.perf_counter()
        try:
            mst = m_step(s, est.samples, it)
        except TrainingError as e:
            raise TrainingError(f"iteration {it}: {e}; {rt.last_good(s)}") from e
        t1 = time.perf_counter()
        s.sampler.sync_weights(s.model)
        t2 = time.perf_counter()
        s.iteration = it
        row = _train_row(s, est, mst, t1 - t0, t2 - t1)
        s.log.log(it, row)
        rt.print_samples(s, est.rollouts, est.rewards)
        if rt.stop_requested(s, stop) and rt.stop_here(s, stop, f"the M-step of iteration {it}"):
            break
        done = it == t.iterations
        if (cfg.eval.every and it % cfg.eval.every == 0) or done:
            limit = 0 if done else cfg.eval.every_limit  # the last evaluation: every held-out problem
            last_eval = _eval_and_log(s, it, f"iteration {it}", limit) or last_eval
        if (cfg.checkpoint.every and it % cfg.checkpoint.every == 0) or done:
            rt.save_if_good(s, it)
        bar.update(1)
        bar.set_postfix(rt.progress_fields(row, mst))
        rt.phase(s, it, "done")
    bar.close()
    s.log.close()
    return last_eval


def _train_row(s: Setup, est: EStep, mst: dict[str, float], mstep_s: float, sync_s: float) -> dict[str, Any]:
    """The iteration's metrics row (over all ranks under torchrun)."""
    stats = RolloutSummary.merge(distributed.gather(s.dist, est.summary)).stats()
    scores = Scores.merge(distributed.gather(s.dist, est.scores)).stats()
    row: dict[str, Any] = {"kind": "train", **stats, **scores,
                           **{f"mstep/{k}": v for k, v in mst.items()},
                           "lr": s.scheduler.get_last_lr()[0], "time/mstep": mstep_s, "time/sync": sync_s}
    total_time = sum(v for k, v in row.items() if k.startswith("time/"))
    row["time/iteration"] = total_time
    row["tokens_per_s"] = (stats["tokens/sampled"] + mst.get("tokens", 0.0)) / max(total_time, 1e-9)
    return row


def _eval_and_log(s: Setup, iteration: int, when: str, limit: int = 0) -> dict[str, Any]:
    out = run_eval(s, limit)
    if out:
        assert s.log is not None
        s.log.log(iteration, {"kind": "eval", **out})
        s.say(f"empg: {when}: {rt.fmt(out)}")
    return out
