"""EM Policy Gradient (arXiv 2504.18587): the training loop, readable in one sitting.

What the method changes against PPO/GRPO: the M-step maximises the plain reward-weighted
log-likelihood of the E-step's samples, ``L = −Σ w_i Σ_t log π_θ(z_it) / N``, for several optimizer
steps, with NO importance ratio and NO clipping (the EM bound justifies it even though the samples
become off-policy). Weights are group-normalised rewards of the K samples of each question; groups
whose rewards all agree carry no signal and are dropped. ``train.algo=grpo`` swaps only the loss
(clipped ratio to the log-probs recorded after the E-step); everything else is shared.

One iteration::

    E-step  sample K completions per prompt with the current weights  (sampler.generate)
            score them with the exact verifier                          (empg.verify_batch)
            weights per group, drop zero-signal groups                  (empg.group_weights)
    M-step  E epochs of optimizer steps over packed micro-batches       (empg.mstep.m_step)
    sync    the sampler takes the new weights                           (sampler.sync_weights)

Launch::

    empg-train                                   # embedded default: SmolLM2-135M on arithmetic, CPU
    empg-train config.yaml train.algo=grpo sampling.temperature=0.7
    empg-train log.run_dir=runs/x resume=true    # continue from the latest complete checkpoint
    torchrun --no-python --nproc-per-node 8 empg-train config.yaml   # 8 GPUs (empg.distributed)
"""

from __future__ import annotations

import copy
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empg import checkpoint as ckpt
from empg import distributed, faults
from empg.config import Config, dump_yaml
from empg.core import group_weights
from empg.distributed import SINGLE, Dist
from empg.evaluation import EvalRaw, eval_metrics, evaluate_raw
from empg.exceptions import CheckpointError, DataError, TrainingError
from empg.losses import LOSSES, LossParams
from empg.metrics import RolloutSummary, RunLogger
from empg.mstep import MStepSettings, Samples, make_optimizer, make_scheduler, num_steps, score
from empg.mstep import m_step as run_m_step
from empg.sampling import Rollout, Sampler, SamplingParams
from empg.samplers import choose_sampler, make_sampler
from empg.signals import GracefulStop
from empg.verify import verify_batch


@dataclass
class Setup:
    """Everything a run holds: config, model, tokenizer, data, sampler, optimizer."""

    cfg: Config
    model: Any
    tokenizer: Any
    sampler: Sampler
    train_prompts: list[list[int]]
    train_answers: list[str]
    eval_prompts: list[list[int]]
    eval_answers: list[str]
    stop: tuple[str, ...]
    optimizer: Any = None
    scheduler: Any = None
    ref_model: Any = None
    iteration: int = 0  # iterations completed
    data_pos: int = 0  # training prompts consumed
    log: RunLogger | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    guard: faults.BadStepGuard = field(default_factory=faults.BadStepGuard)  # NaN/inf steps in a row
    dist: Dist = SINGLE  # this process's rank under torchrun

    def say(self, msg: str) -> None:
        say(self.dist, msg)


def say(d: Dist, msg: str) -> None:
    """Print on rank 0 only."""
    if d.is_main:
        print(msg, flush=True)


@dataclass
class EStep:
    rollouts: list[Rollout]
    rewards: np.ndarray
    samples: Samples  # the kept sequences (zero-signal groups dropped)
    summary: RolloutSummary  # the raw numbers behind ``stats`` (merged over ranks under torchrun)

    @property
    def stats(self) -> dict[str, float]:
        return self.summary.stats()


def e_step(sampler: Sampler, prompts: list[list[int]], answers: list[str], params: SamplingParams,
           *, style: str, scheme: str, iteration: int = 0, part: tuple[int, int] = (0, 1)) -> EStep:
    """Sample K completions per prompt, verify them, weight them per group, drop no-signal groups.
    ``part=(j, T)``: keep only the groups ``j, j+T, ...`` (the share of rank j of a sampler group of
    T ranks that sampled the same prompts with one tensor-parallel engine)."""
    t0 = time.perf_counter()
    rollouts = sampler.generate(prompts, params)
    if part[1] > 1:
        rollouts = [r for r in rollouts if r.group % part[1] == part[0]]
    faults.pause_point("estep-after-sampling", f"iter-{iteration:06d}")  # test hook, inert by default
    t1 = time.perf_counter()
    rewards = verify_batch([r.text for r in rollouts], [answers[r.group] for r in rollouts], style=style)
    t2 = time.perf_counter()
    gw = group_weights(rewards, group_ids=[r.group for r in rollouts], scheme=scheme)
    keep = np.flatnonzero(~gw.zero_signal[gw.group_index])
    samples = Samples.from_tokens([rollouts[i].prompt_ids for i in keep],
                                  [rollouts[i].completion_ids for i in keep], gw.weights[keep])
    t3 = time.perf_counter()
    summary = RolloutSummary.of(rewards, [len(r.completion_ids) for r in rollouts],
                                [r.finish_reason == "length" for r in rollouts], gw.solved, gw.zero_signal,
                                [r.text for r in rollouts],
                                {"sampling": t1 - t0, "verifying": t2 - t1, "weights": t3 - t2})
    return EStep(rollouts, rewards, samples, summary)


def m_step(s: Setup, samples: Samples, iteration: int) -> dict[str, float]:
    """GRPO's old log-probs / the KL reference's log-probs (no grad), then the optimizer steps."""
    t = s.cfg.train
    if LOSSES[t.algo].needs_old_logp:
        samples.old_logp = score(s.model, samples, token_budget=t.token_budget, dist=s.dist,
                                 autocast=s.cfg.model.bf16_autocast, share_prefix=s.cfg.model.share_prefix)
    if t.kl_beta > 0:
        samples.ref_logp = score(s.ref_model, samples, token_budget=t.token_budget, dist=s.dist,
                                 autocast=s.cfg.model.bf16_autocast, share_prefix=s.cfg.model.share_prefix)
    settings = MStepSettings(algo=t.algo, epochs=t.epochs, mini_batch_size=t.mini_batch_size,
                             steps_per_epoch=t.steps_per_epoch,
                             token_budget=t.token_budget, normalize=t.normalize,
                             max_grad_norm=t.max_grad_norm,
                             loss=LossParams(kl_beta=t.kl_beta, clip_eps=t.clip_eps),
                             bf16_autocast=s.cfg.model.bf16_autocast,
                             share_prefix=s.cfg.model.share_prefix)
    rng = np.random.default_rng([t.seed, iteration])
    return run_m_step(s.model, s.optimizer, s.scheduler, samples, settings, rng, guard=s.guard, dist=s.dist,
                      on_step=lambda k: faults.pause_point("mstep-after-step", f"iter-{iteration:06d}:{k}"))


# ---------------------------------------------------------------------------------------------


def cpu_threads(requested: int) -> int:
    """Threads for torch on the CPU. 0 = auto: the cores not busy with other work (by load
    average), shared by the processes torchrun started on this machine, at least 1 —
    oversubscribed OpenMP threads make CPU generation many times slower."""
    if requested > 0:
        return requested
    cores = os.cpu_count() or 1
    try:
        busy = int(round(os.getloadavg()[0]))
    except OSError:
        busy = 0
    return max(1, min(cores, cores - busy) // distributed.from_env().local_world)


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def setup(cfg: Config, *, model_path: str | None = None, for_training: bool = True) -> Setup:
    """Load model, tokenizer, data, sampler (and optimizer), resuming when asked."""
    from empg import models
    from empg.data import load_problems
    from empg.prompts import get_template

    # Data and template first: their errors come before any model loads.
    d = cfg.data
    task = "arith" if d.source == "arith" else ("gsm8k" if d.source == "gsm8k" else "math")
    template = get_template(d.template, fewshot=d.fewshot, task=task)
    common: dict[str, Any] = dict(path=d.path or None, levels=d.levels or None,
                                  skip_bad_rows=d.skip_bad_rows)
    train, train_report = load_problems(d.source, split=d.train_split, limit=d.limit or None,
                                        shuffle_seed=d.shuffle_seed, **common)
    test, test_report = load_problems(d.source, split=d.eval_split, limit=d.eval_limit or None,
                                      shuffle_seed=d.shuffle_seed if d.source == "arith" else None,
                                      **common)
    dist, device = distributed.init(cfg.model.device)
    if not dist.is_main:  # one set of progress bars and warnings: rank 0's
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    skipped = faults.report_skipped_rows([train_report, test_report]) if dist.is_main else {}
    if not train or not test:
        raise DataError(f"data.source={d.source!r}: {len(train)} training and {len(test)} held-out "
                        "problems; both must be non-empty")
    say(dist, f"empg: {len(train)} training problems ({d.train_split}), {len(test)} held-out "
        f"({d.eval_split}) from {d.source}" + (f"; {dist.world} ranks" if dist.enabled else ""))
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(cfg.model.threads))
    run_dir = Path(cfg.log.run_dir)
    resume_from = None
    if for_training and cfg.checkpoint.resume:  # rank 0 decides, so that every rank takes the same
        resume_from = distributed.broadcast(dist, ckpt.latest_complete(run_dir / "checkpoints"))
    name = str(resume_from) if resume_from else (model_path or cfg.model.name)

    tokenizer = models.load_tokenizer(name)
    train_prompts = _tokenize(tokenizer, [template.render(p.question, tokenizer) for p in train])
    eval_prompts = _tokenize(tokenizer, [template.render(p.question, tokenizer) for p in test])
    faults.check_token_budget(cfg, train_prompts + eval_prompts)
    say(dist, f"empg: loading model {name}")
    model = models.load_model(name, dtype=cfg.model.dtype, seed=cfg.train.seed,
                              attn=cfg.model.attn_implementation).to(device)
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False

    stop = tuple(dict.fromkeys(list(template.stop) + list(cfg.sampling.stop)))
    sharded = for_training and dist.enabled  # the trainer sharded by FSDP2, the sampler whole
    choice = choose_sampler(cfg.sampling.sampler, device.type)
    say(dist, f"empg: E-step sampler {choice.name} ({choice.reason})")
    rollout_model = copy.deepcopy(model) if sharded and choice.name == "transformers" else model
    s = Setup(
        cfg=cfg, model=model, tokenizer=tokenizer,
        sampler=make_sampler(choice.name, rollout_model, tokenizer, cfg),
        train_prompts=train_prompts, train_answers=[p.answer for p in train],
        eval_prompts=eval_prompts, eval_answers=[p.answer for p in test], stop=stop, dist=dist,
    )
    s.extra.update(skipped)
    s.guard = faults.BadStepGuard(cfg.train.max_bad_steps)
    if not for_training:
        return s
    t = cfg.train
    if t.kl_beta > 0:
        s.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    if sharded:
        distributed.shard_model(model, bf16_params=device.type == "cuda" and cfg.model.bf16_autocast)
    s.optimizer = make_optimizer(model, lr=t.lr, weight_decay=t.weight_decay, betas=tuple(t.betas))
    total = t.iterations * num_steps(cfg.sampling.prompts_per_iteration * cfg.sampling.group_size,
                                     t.mini_batch_size, t.epochs, t.steps_per_epoch)
    s.scheduler = make_scheduler(s.optimizer, warmup_steps=t.warmup_steps, schedule=t.schedule,
                                 total_steps=total)
    if resume_from is not None:
        state = ckpt.load_state(resume_from)
        ckpt.load_optimizer(model, s.optimizer, state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        faults.use_config_lr(s.optimizer, s.scheduler, t.lr)  # e.g. resume with a lower lr
        ckpt.set_rng_state(state["rng"])
        s.iteration, s.data_pos = int(state["iteration"]), int(state["data_pos"])
        s.guard.in_row = int(state.get("bad_steps_in_row", 0))
        s.extra["resumed_from"] = str(resume_from)
    else:
        random.seed(t.seed)
        np.random.seed(t.seed)
        torch.manual_seed(t.seed)
    return s


def next_batch(s: Setup, n: int) -> tuple[list[list[int]], list[str]]:
    """The next ``n`` training prompts: a fresh seeded permutation of the data per pass."""
    size = len(s.train_prompts)
    prompts, answers = [], []
    for pos in range(s.data_pos, s.data_pos + n):
        order = np.random.default_rng([s.cfg.train.seed, pos // size]).permutation(size)
        i = int(order[pos % size])
        prompts.append(s.train_prompts[i])
        answers.append(s.train_answers[i])
    s.data_pos += n
    return prompts, answers


GROUP_SEED_STRIDE = 1_000_003  # sampling seeds of sampler groups lie this far apart


def _sampler_group(s: Setup) -> tuple[int, int]:
    """(this rank's sampler group, the number of groups): ranks sharing one tensor-parallel engine
    sample the same prompts; with ``sampling.tensor_parallel_size=1`` a group is one rank."""
    tp = s.cfg.sampling.tensor_parallel_size
    return s.dist.rank // tp, s.dist.world // tp


def run_eval(s: Setup, iteration: int) -> dict[str, Any]:
    """Held-out metrics; under torchrun each sampler group evaluates its share of the problems."""
    e, smp = s.cfg.eval, s.cfg.sampling
    group, groups = _sampler_group(s)
    lo, hi = distributed.shard_bounds(len(s.eval_prompts), groups, group)
    raw = evaluate_raw(s.sampler, s.eval_prompts[lo:hi], s.eval_answers[lo:hi], stop=s.stop,
                       max_new_tokens=e.max_new_tokens or smp.max_new_tokens, style=s.cfg.data.verify_style,
                       greedy=e.greedy, samples=e.samples, temperature=e.temperature, top_p=smp.top_p,
                       seed=s.cfg.train.seed * 7919 + 1 + GROUP_SEED_STRIDE * group)
    parts = distributed.gather(s.dist, raw)[::smp.tensor_parallel_size]  # one copy per sampler group
    return eval_metrics(EvalRaw.merge(parts), e.pass_k)


def _eval_and_log(s: Setup, iteration: int) -> dict[str, Any]:
    out = run_eval(s, iteration)
    assert s.log is not None
    s.log.log(iteration, {"kind": "eval", **out})
    return out


def _save(s: Setup) -> Path:
    """A checkpoint of the full weights and optimizer state, written by rank 0 (gathering them is
    a collective: every rank calls this)."""
    weights = distributed.full_state_dict(s.model, rank0_only=True) if s.dist.enabled else None
    optimizer = distributed.optimizer_state(s.model, s.optimizer)
    path, error = None, None
    if s.dist.is_main:
        try:
            path = ckpt.save(Path(s.cfg.log.run_dir) / "checkpoints", s.iteration, s.model, s.tokenizer,
                             optimizer, s.scheduler,
                             {"data_pos": s.data_pos, "bad_steps_in_row": s.guard.in_row},
                             keep_last=s.cfg.checkpoint.keep_last, weights=weights)
        except CheckpointError as e:
            error = str(e)
    path, error = distributed.broadcast(s.dist, (path, error))
    if error is not None:
        raise CheckpointError(error)
    return Path(path)


def train(cfg: Config) -> dict[str, Any]:
    """Run EM (or GRPO) for ``cfg.train.iterations`` iterations; returns the last eval metrics.
    SIGINT/SIGTERM stop it at the end of the current E- or M-step with a checkpoint."""
    with GracefulStop() as stop:
        return _train(cfg, stop)


def _train(cfg: Config, stop: GracefulStop) -> dict[str, Any]:
    d = distributed.from_env()
    run_dir = Path(cfg.log.run_dir)
    if d.is_main:
        faults.check_run_dir(cfg.log.run_dir)  # writable, before any model loads
        (run_dir / "config.yaml").write_text(dump_yaml(cfg))
        print(f"empg: config (saved to {run_dir / 'config.yaml'}):\n{dump_yaml(cfg)}", flush=True)
    s = setup(cfg)
    s.log = RunLogger(run_dir, tensorboard=cfg.log.tensorboard, enabled=s.dist.is_main)
    if s.extra.get("data/skipped_rows"):
        s.log.log(s.iteration, {"kind": "data", "data/skipped_rows": s.extra["data/skipped_rows"]})
    if "resumed_from" in s.extra:
        s.say(f"empg: resumed from {s.extra['resumed_from']} at iteration {s.iteration}")
    smp, t = cfg.sampling, cfg.train
    group, groups = _sampler_group(s)
    last_eval: dict[str, Any] = {}
    if s.iteration == 0 and cfg.eval.before:
        last_eval = _eval_and_log(s, 0)
        s.say(f"empg: before training: {_fmt(last_eval)}")
    bar = _progress(cfg, s.iteration, s.dist)
    while s.iteration < t.iterations:
        it = s.iteration + 1
        start_pos = s.data_pos
        _phase(s, it, "E-step")
        prompts, answers = next_batch(s, smp.prompts_per_iteration)  # the same on every rank
        lo, hi = distributed.shard_bounds(len(prompts), groups, group)  # this sampler group's share
        params = SamplingParams(n=smp.group_size, temperature=smp.temperature, top_p=smp.top_p,
                                max_new_tokens=smp.max_new_tokens, stop=s.stop,
                                seed=t.seed * 100_003 + it + GROUP_SEED_STRIDE * group)
        s.sampler.wake_up()
        try:
            est = e_step(s.sampler, prompts[lo:hi], answers[lo:hi], params, style=cfg.data.verify_style,
                         scheme=t.scheme, iteration=it,
                         part=(s.dist.rank % smp.tensor_parallel_size, smp.tensor_parallel_size))
        except RuntimeError as e:  # NaN/inf probabilities: the weights diverged in the last M-step
            if not faults.is_nonfinite_error(e):
                raise
            raise TrainingError(f"iteration {it}: sampling failed ({e}); the weights have diverged "
                                f"(try a lower train.lr); {_last_good(s)}") from e
        s.sampler.sleep()
        if _stop_requested(s, stop):  # the E-step's samples are dropped; resuming redraws them
            s.data_pos = start_pos
            _stop_here(s, stop, f"the E-step of iteration {it}")
            break
        _phase(s, it, f"M-step on {len(est.samples)} sequences" + (" on rank 0" if s.dist.enabled else ""))
        t0 = time.perf_counter()
        try:
            mst = m_step(s, est.samples, it)
        except TrainingError as e:
            raise TrainingError(f"iteration {it}: {e}; {_last_good(s)}") from e
        t1 = time.perf_counter()
        s.sampler.sync_weights(s.model)
        t2 = time.perf_counter()
        s.iteration = it
        stats = RolloutSummary.merge(distributed.gather(s.dist, est.summary)).stats()
        row: dict[str, Any] = {"kind": "train", **stats, **{f"mstep/{k}": v for k, v in mst.items()},
                               "lr": s.scheduler.get_last_lr()[0], "time/mstep": t1 - t0,
                               "time/sync": t2 - t1}
        total_time = sum(v for k, v in row.items() if k.startswith("time/"))
        row["time/iteration"] = total_time
        row["tokens_per_s"] = (stats["tokens/sampled"] + mst.get("tokens", 0.0)) / max(total_time, 1e-9)
        s.log.log(it, row)
        if s.dist.is_main:
            _print_samples(cfg, est)
        if _stop_requested(s, stop) and _stop_here(s, stop, f"the M-step of iteration {it}"):
            break
        done = it == t.iterations
        if (cfg.eval.every and it % cfg.eval.every == 0) or done:
            last_eval = _eval_and_log(s, it)
            s.say(f"empg: iteration {it}: {_fmt(last_eval)}")
        if (cfg.checkpoint.every and it % cfg.checkpoint.every == 0) or done:
            if s.guard.in_row:  # the weights gave a NaN/inf loss on the last step: not "good"
                if s.dist.is_main:
                    print(f"empg: warning: no checkpoint at iteration {it}: its last optimizer step "
                          "had a non-finite loss or gradient", file=sys.stderr, flush=True)
            else:
                _save(s)
        bar.update(1)
        bar.set_postfix(reward=f"{row['reward/mean']:.2f}", loss=f"{mst.get('loss', float('nan')):.3f}",
                        len=f"{row['length/mean']:.0f}", dropped=int(row["groups/dropped"]))
        _phase(s, it, "done")
    bar.close()
    s.log.close()
    return last_eval


def _stop_requested(s: Setup, stop: GracefulStop) -> bool:
    """A stop signal seen by any rank (torchrun forwards it to all, not always at the same step)."""
    stop.requested = distributed.any_true(s.dist, stop.requested)
    return stop.requested


def _phase(s: Setup, it: int, what: str) -> None:
    """A line per phase when there is no progress bar (long runs logged to a file)."""
    if not s.cfg.log.progress:
        s.say(f"empg: iteration {it}: {what}")


def _last_good(s: Setup) -> str:
    latest = ckpt.latest_complete(Path(s.cfg.log.run_dir) / "checkpoints")
    return f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"


def _stop_here(s: Setup, stop: GracefulStop, after: str) -> bool:
    """At a safe point: when a stop was requested, checkpoint and say where (True = stop)."""
    if not stop.requested:
        return False
    latest = distributed.broadcast(s.dist, ckpt.latest_complete(Path(s.cfg.log.run_dir) / "checkpoints"))
    path = latest if latest is not None and latest.name == f"{ckpt.PREFIX}{s.iteration:06d}" \
        else _save(s)
    s.say(f"empg: stopped by {stop.signal_name or 'a signal to another rank'} after {after}; checkpoint "
          f"at iteration {s.iteration}: {path} (to continue, run the same command with --resume)")
    return True


def _fmt(m: dict[str, Any]) -> str:
    return ", ".join(f"{k.removeprefix('eval/')}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in m.items())


def _progress(cfg: Config, start: int, d: Dist) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=cfg.train.iterations, initial=start, desc=f"empg {cfg.train.algo}",
                unit="it", disable=not (cfg.log.progress and d.is_main), dynamic_ncols=True)


def _print_samples(cfg: Config, est: EStep) -> None:
    for r, x in list(zip(est.rollouts, est.rewards))[: cfg.log.samples_to_print]:
        print(f"  [reward {x:.0f}] {r.text!r}", flush=True)
