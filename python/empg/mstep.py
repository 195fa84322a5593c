"""The M-step: optimizer steps on one E-step's samples, over packed, padding-free micro-batches.

Each micro-batch is ONE row of concatenated sequences (prompt + completion) with ``position_ids``
restarting at 0 per sequence, built by the Rust core: all micro-batches of an optimizer step in one
parallel call (:meth:`empg.samples.Samples.microbatches`, the layout of :func:`empg.build_microbatch`). With no 2D
attention mask and no KV cache, transformers derives a block-diagonal causal mask from the
restarting positions (``masking_utils.find_packed_sequence_indices``, used by sdpa, eager and flex;
flash-attention uses the same positions as varlen boundaries), so no token attends across a
sequence boundary; ``tests/test_mstep.py`` checks packed log-probs against per-sequence forwards.

The forward (:func:`token_logprobs`) computes logits only at the positions that predict completion
tokens, so the vocabulary-sized tensor is ``completion_tokens × vocab``, not ``all_tokens × vocab``.
It is a small function on purpose: a prefix-sharing forward can replace it.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from empg import distributed
from empg.core import pack_microbatches
from empg.distributed import SINGLE, Dist
from empg.exceptions import TrainingError
from empg.faults import BadStepGuard
from empg.losses import LOSSES, LossParams, TokenBatch, normaliser_coefficients
from empg.samples import Samples, TokenLogProbs
from empg.shared_forward import can_share, shared_microbatches, shared_token_logprobs, target_logprobs


@dataclass(frozen=True)
class MStepSettings:
    algo: str = "empg"
    epochs: int = 1
    mini_batch_size: int = 32
    steps_per_epoch: int = 0  # > 0: this many optimizer steps per epoch, whatever the sample count
    token_budget: int = 4096
    normalize: str = "token"
    max_grad_norm: float = 1.0
    loss: LossParams = field(default_factory=LossParams)
    bf16_autocast: bool = True
    share_prefix: bool = False  # compute shared prompt prefixes once (empg.shared_forward)
    temperature: float = 1.0  # of the log-probs: log softmax(logits / T) (empg.losses.logprob_temperature)


def autocast_for(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def token_logprobs(model: Any, input_ids: torch.Tensor, position_ids: torch.Tensor,
                   loss_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log π(token_j | tokens < j of its sequence) for every j with ``loss_mask[j]``, in order
    (``temperature``: of ``log softmax(logits / T)``).

    One packed row in (1-D tensors), one 1-D tensor out. Token j is predicted by the hidden state at
    j − 1, so ``loss_mask[0]`` must be False (the core never marks a sequence's first token)."""
    pred = torch.nonzero(loss_mask[1:], as_tuple=False).squeeze(-1)  # positions whose next is a target
    targets = input_ids[pred + 1]
    # Through the model's own forward (so FSDP's hooks gather its weights), with the head applied
    # only at ``pred`` (transformers' ``logits_to_keep`` takes indices).
    kwargs = {"logits_to_keep": pred} if _takes_logits_to_keep(model) else {}
    logits = model(input_ids=input_ids[None], position_ids=position_ids[None], use_cache=False,
                   **kwargs).logits[0]
    if not kwargs:
        logits = logits[pred]
    return target_logprobs(logits, targets, temperature)


def _takes_logits_to_keep(model: Any) -> bool:
    import inspect

    fn = type(getattr(model, "_orig_mod", model)).forward  # torch.compile wraps the model
    cached = _TAKES_KEEP.get(fn)
    if cached is None:
        cached = _TAKES_KEEP[fn] = "logits_to_keep" in inspect.signature(fn).parameters
    return cached


_TAKES_KEEP: dict[Any, bool] = {}

ForwardFn = Callable[[Any, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class _Micro:
    index: np.ndarray  # sequence indices, in buffer order
    tensors: dict[str, torch.Tensor]  # token_weights: one per completion (target) token
    targets: int  # completion tokens
    shared: bool = False  # run by empg.shared_forward (tensors hold only token_weights)

    def token_index(self, samples: Samples, device: torch.device) -> torch.Tensor:
        """For each completion token: its place in the Samples' completion buffer (and in
        recorded log-probs)."""
        return torch.from_numpy(samples.token_index(self.index)).to(device)


def _filler(samples: Samples, device: torch.device) -> _Micro:
    """A zero-weight, two-token micro-batch: under FSDP a rank with fewer micro-batches in a step
    runs these, so that every rank runs the same forwards and backwards (its collectives)."""
    tok = int(samples.prompts.tokens[0]) if len(samples.prompts.tokens) else 0
    tensors = {"input_ids": torch.tensor([tok, tok], device=device),
               "position_ids": torch.tensor([0, 1], device=device),
               "loss_mask": torch.tensor([False, True], device=device),
               "token_weights": torch.zeros(1, device=device)}
    return _Micro(np.zeros(0, dtype=np.int64), tensors, 0)


def _equalized(micros: list[_Micro], samples: Samples, device: torch.device, d: Dist) -> list[_Micro]:
    """``micros`` padded with :func:`_filler` to the largest count of any rank (a collective)."""
    if not d.enabled:
        return micros
    most = int(distributed.all_reduce(d, [len(micros)], "max")[0])
    return micros + [_filler(samples, device) for _ in range(most - len(micros))]


def _microbatches(samples: Samples, index: np.ndarray, budget: int,
                  device: torch.device, share: bool = False) -> list[_Micro]:
    """The micro-batches of the sequences ``index`` (one optimizer step's, or a scoring pass's):
    packed under ``budget``, their buffers built in one call into the core."""
    clens = samples.completion_lens
    if share:
        return [_Micro(idx, {"token_weights": torch.from_numpy(np.repeat(samples.weights[idx], clens[idx])).to(device)},
                       int(clens[idx].sum()), shared=True) for idx in shared_microbatches(samples, index, budget)]
    idxs = [index[g] for g in pack_microbatches(samples.lengths[index], budget, allow_oversize=True)]
    return [_Micro(idx, {"input_ids": torch.from_numpy(mb["input_ids"]).to(device),
                         "position_ids": torch.from_numpy(mb["position_ids"]).to(device),
                         "loss_mask": torch.from_numpy(mb["loss_mask"]).to(device),
                         "token_weights": torch.from_numpy(mb["target_weights"]).to(device)},
                   len(mb["target_weights"]))
            for idx, mb in zip(idxs, samples.microbatches(idxs))]


def _longest(samples: Samples, index: np.ndarray) -> int:
    return int(samples.lengths[index].max()) if len(index) else 0


def _logprobs(model: Any, samples: Samples, micro: _Micro, forward: ForwardFn, temperature: float) -> torch.Tensor:
    if micro.shared:
        return shared_token_logprobs(model, samples, micro.index, temperature)
    t = micro.tensors
    at = {"temperature": temperature} if temperature != 1.0 else {}  # a custom forward need not take it
    return forward(model, t["input_ids"], t["position_ids"], t["loss_mask"], **at)


def _given(recorded: TokenLogProbs | None, samples: Samples, micro: _Micro,
           logp: torch.Tensor) -> torch.Tensor | None:
    """Recorded log-probs (old or reference) of the micro-batch's tokens; a filler's own."""
    if recorded is None:
        return None
    if not len(micro.index):
        return logp.detach().float()
    return recorded.values.to(logp.device)[micro.token_index(samples, logp.device)]


@torch.no_grad()
def score(model: Any, samples: Samples, *, token_budget: int, autocast: bool = True,
          forward: ForwardFn = token_logprobs, share_prefix: bool = False,
          dist: Dist = SINGLE, temperature: float = 1.0, index: np.ndarray | None = None) -> TokenLogProbs:
    """Log-probs of the completion tokens under ``model`` (no grad, at ``temperature``), as one
    tensor on its device: GRPO's "old" log-probs, or the frozen reference's (``share_prefix``: each
    shared prompt prefix run once, see :mod:`empg.shared_forward`). ``index``: only those sequences
    (the other tokens stay 0). A model sharded over ``dist`` runs the same number of forwards on
    every rank."""
    device = next(model.parameters()).device
    out = torch.zeros(int(samples.completion_lens.sum()), dtype=torch.float32, device=device)
    index = np.arange(len(samples)) if index is None else np.asarray(index, dtype=np.int64)
    sharded = dist.enabled and distributed.is_sharded(model)
    share = (share_prefix and not sharded and forward is token_logprobs
             and can_share(model, _longest(samples, index)))  # else plain
    micros = _microbatches(samples, index, token_budget, device, share) if len(index) else []
    for micro in _equalized(micros, samples, device, dist) if sharded else micros:
        with autocast_for(device, autocast):
            lp = _logprobs(model, samples, micro, forward, temperature)
        if len(micro.index):
            out[micro.token_index(samples, device)] = lp.float()
    if sharded:  # FSDP keeps the root's weights gathered after a no-grad forward: shard them again
        model.reshard()
    return TokenLogProbs(out, samples.completions.offsets)


def num_steps(n: int, mini_batch_size: int, epochs: int, steps_per_epoch: int = 0) -> int:
    """Optimizer steps of one M-step over ``n`` sequences."""
    if n == 0:
        return 0
    per_epoch = min(steps_per_epoch, n) if steps_per_epoch > 0 else math.ceil(n / mini_batch_size)
    return epochs * per_epoch


def accumulate_gradients(model: Any, samples: Samples, index: np.ndarray, settings: MStepSettings,
                         forward: ForwardFn = token_logprobs, *, coef: np.ndarray | None = None,
                         dist: Dist = SINGLE, record_old: bool = False) -> tuple[float, int, dict[str, float]]:
    """Backward of ONE optimizer step's loss over the sequences ``index`` (packed into micro-batches
    under the token budget; gradients add up in ``.grad``). The normaliser counts over all of
    ``index`` (or is given per sequence of ``index`` as ``coef``: the step's share of all ranks),
    so the result does not depend on the packing. ``record_old``: the weights are still those that
    sampled, so this forward's values (detached) are the old log-probs of ``index``: written into
    ``samples.old_logp`` and used as such (the ratio is exactly 1, as in TRL's on-policy step).
    Returns this rank's (loss, tokens, loss stats)."""
    loss = LOSSES[settings.algo]
    device = next(model.parameters()).device
    clens = samples.completion_lens
    coef_seq = np.zeros(len(samples))
    coef_seq[index] = normaliser_coefficients(samples.completion_lens[index], settings.normalize) \
        if coef is None else coef
    total, tokens = 0.0, 0
    stats_sum: dict[str, float] = {}
    sharded = dist.enabled and distributed.is_sharded(model)
    share = (settings.share_prefix and not sharded and forward is token_logprobs
             and can_share(model, _longest(samples, index)))
    micros = _microbatches(samples, index, settings.token_budget, device, share)
    for micro in _equalized(micros, samples, device, dist) if sharded else micros:
        t = micro.tensors
        with autocast_for(device, settings.bf16_autocast):
            logp = _logprobs(model, samples, micro, forward, settings.temperature)
        filler = len(micro.index) == 0  # zero weight and coefficient: adds 0 to every gradient
        if record_old and samples.old_logp is not None and not filler:
            samples.old_logp.values[micro.token_index(samples, device)] = logp.detach().float()
        tok = TokenBatch(
            logp=logp.float(),
            weight=t["token_weights"],
            coef=torch.from_numpy(np.repeat(coef_seq[micro.index], clens[micro.index]).astype(np.float32)).to(device)
            if not filler else torch.zeros_like(t["token_weights"]),
            old_logp=_given(samples.old_logp, samples, micro, logp),
            ref_logp=_given(samples.ref_logp, samples, micro, logp),
        )
        value, stats = loss.fn(tok, settings.loss)
        (value * dist.world if sharded else value).backward()  # FSDP averages: world x mean = sum
        for k in stats:  # the same keys on every rank, also one running only fillers
            stats_sum.setdefault(k, -math.inf if k.endswith("_max") else 0.0)
        if filler:
            continue
        total += float(value.detach())
        tokens += micro.targets
        for k, v in stats.items():
            stats_sum[k] = max(stats_sum[k], v) if k.endswith("_max") else stats_sum[k] + v
    return total, tokens, stats_sum


def m_step(model: Any, optimizer: torch.optim.Optimizer, scheduler: Any, samples: Samples,
           settings: MStepSettings, rng: np.random.Generator,
           forward: ForwardFn = token_logprobs, guard: BadStepGuard | None = None,
           on_step: Callable[[int], None] | None = None, dist: Dist = SINGLE) -> dict[str, float]:
    """``settings.epochs`` passes over ``samples``, split into mini-batches of about
    ``mini_batch_size`` sequences, or into ``steps_per_epoch`` equal mini-batches when that is set
    (one optimizer step each, gradients accumulated over its packed micro-batches). Returns mean
    loss, grad norm, steps, tokens and the loss's own statistics. A step with a non-finite loss or
    gradient is skipped; ``guard`` (default: 3 in a row) decides when to give up with
    :class:`TrainingError`.

    Under torchrun (``dist``) the sequences of all ranks count as one set numbered rank by rank:
    the same permutation and steps everywhere, each rank computing its own sequences' part of each
    step (see :mod:`empg.distributed`); the returned numbers are the run's, not the rank's."""
    guard = guard if guard is not None else BadStepGuard(3)
    loss = LOSSES[settings.algo]
    if settings.loss.kl_beta > 0 and samples.ref_logp is None:
        raise TrainingError("kl_beta > 0 needs reference log-probs")
    params = [p for group in optimizer.param_groups for p in group["params"]]  # what it steps
    model.train()
    per_rank = distributed.gather(dist, samples.completion_lens)
    all_clens = np.concatenate(per_rank)  # every rank's sequences, numbered rank by rank
    lo = sum(len(x) for x in per_rank[:dist.rank])
    n, hi = len(all_clens), lo + len(samples)
    totals: dict[str, float] = {}
    steps = skipped = 0
    tokens = 0
    grad_norms: list[float] = []
    losses: list[float] = []
    per_epoch = num_steps(n, settings.mini_batch_size, 1, settings.steps_per_epoch)
    replan_schedule(optimizer, scheduler, settings.epochs * per_epoch, new_m_step=True)
    if n == 0:  # every group agreed (on every rank): nothing to learn from this E-step
        return {"loss": float("nan"), "grad_norm": float("nan"), "steps": 0.0,
                "skipped_steps": 0.0, "tokens": 0.0}
    plan = [np.array_split(rng.permutation(n), per_epoch) for _ in range(settings.epochs)]
    mine_of = [[c[(c >= lo) & (c < hi)] - lo for c in epoch] for epoch in plan]  # this rank's sequences
    record_old = loss.needs_old_logp and samples.old_logp is None
    if record_old:  # the first step's own forward gives its sequences' old log-probs: score the rest
        rest = np.setdiff1d(np.arange(len(samples)), mine_of[0][0])
        samples.old_logp = score(model, samples, token_budget=settings.token_budget, forward=forward,
                                 autocast=settings.bf16_autocast, share_prefix=settings.share_prefix,
                                 dist=dist, temperature=settings.temperature, index=rest)
    for epoch, chunks in enumerate(plan):
        for j, chunk in enumerate(chunks):
            optimizer.zero_grad(set_to_none=True)
            coef = normaliser_coefficients(all_clens[chunk], settings.normalize)
            mine = (chunk >= lo) & (chunk < hi)
            step_loss, step_tokens, stats = accumulate_gradients(
                model, samples, mine_of[epoch][j], settings, forward, coef=coef[mine], dist=dist,
                record_old=record_old and epoch == 0 and j == 0)
            if dist.enabled:  # the step's numbers over all ranks: every rank decides alike
                step_loss, step_tokens, stats = _reduce_step(dist, step_loss, step_tokens, stats)
            tokens += step_tokens
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            max_norm = settings.max_grad_norm if settings.max_grad_norm > 0 else float("inf")
            gn = _norm(torch.nn.utils.clip_grad_norm_(params, max_norm))
            if not guard.step_ok(step_loss, gn, where=f"optimizer step {steps + skipped + 1}"):
                skipped += 1
                optimizer.zero_grad(set_to_none=True)
                replan_schedule(optimizer, scheduler, settings.epochs * per_epoch - steps - skipped)
                continue
            optimizer.step()
            scheduler.step()
            steps += 1
            grad_norms.append(gn)
            losses.append(step_loss)
            if on_step is not None:  # after each optimizer step (e.g. the faults test hook)
                on_step(steps)
    out = {k: v / max(steps, 1) for k, v in totals.items()}
    out.update(loss=float(np.mean(losses)) if losses else float("nan"),
               grad_norm=float(np.mean(grad_norms)) if grad_norms else float("nan"),
               steps=float(steps), skipped_steps=float(skipped), tokens=float(tokens))
    return out


def _reduce_step(d: Dist, loss: float, tokens: int, stats: dict[str, float]
                 ) -> tuple[float, int, dict[str, float]]:
    """One optimizer step's loss, tokens and loss statistics summed (``*_max``: maxed) over ranks."""
    sums = sorted(k for k in stats if not k.endswith("_max"))
    maxes = sorted(k for k in stats if k.endswith("_max"))
    s = distributed.all_reduce(d, [loss, tokens] + [stats[k] for k in sums])
    m = distributed.all_reduce(d, [stats[k] for k in maxes], "max") if maxes else np.zeros(0)
    return float(s[0]), int(s[1]), {**dict(zip(sums, s[2:].tolist())), **dict(zip(maxes, m.tolist()))}


def _norm(total: torch.Tensor) -> float:
    """The gradient norm as a float (under FSDP, a DTensor over all shards)."""
    full = getattr(total, "full_tensor", None)
    return float(full() if full is not None else total)


def make_optimizer(model: Any, *, lr: float, weight_decay: float, betas: tuple[float, float]
                   ) -> torch.optim.Optimizer:
    """AdamW, fused (one kernel over all parameters) on CUDA and on the CPU (its step is the
    optimizer column of ``benches/results/vs_trl.md``'s time split)."""
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay, "betas": tuple(betas)}
    if device.type in ("cuda", "cpu"):
        kwargs["fused"] = True
    return torch.optim.AdamW(params, **kwargs)


class LRFactor:
    """The learning-rate multiplier at optimizer step ``step`` (the ``LambdaLR`` lambda). Linear
    warm-up over ``warmup_steps``, then constant, linear decay or cosine decay to 0 at
    ``total_steps``. Its fields are the scheduler's state (``LambdaLR`` saves a callable object's
    ``__dict__``), so a resumed run keeps its horizon."""

    def __init__(self, warmup_steps: int, schedule: str, total_steps: int, iterations: int = 0) -> None:
        self.warmup_steps = warmup_steps
        self.schedule = schedule
        self.total_steps = total_steps
        self.iterations_left = iterations  # M-steps still to come (0: a fixed horizon)
        self.per_iteration = total_steps // iterations if iterations > 0 else 0

    def __call__(self, step: int) -> float:
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant" or self.total_steps <= self.warmup_steps:
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        if self.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def plan(self, done: int, steps_left: int, *, new_m_step: bool) -> None:
        """The horizon from the steps actually run: ``done`` so far, ``steps_left`` in this M-step,
        and the most each later M-step can take (zero-signal groups only shorten M-steps, so the
        horizon only moves closer, and the last M-step ends exactly at it)."""
        if self.per_iteration <= 0:
            return
        if new_m_step:
            self.iterations_left = max(self.iterations_left - 1, 0)
        self.total_steps = done + steps_left + self.iterations_left * self.per_iteration


def replan_schedule(optimizer: torch.optim.Optimizer, scheduler: Any, steps_left: int,
                    *, new_m_step: bool = False) -> None:
    """Tell ``scheduler`` (from :func:`make_scheduler`) how many optimizer steps this M-step still
    takes, and set the learning rate of the next step accordingly. Other schedulers: no-op."""
    factors = getattr(scheduler, "lr_lambdas", [])
    if not factors or not all(isinstance(f, LRFactor) for f in factors):
        return
    for fn in {id(f): f for f in factors}.values():  # LambdaLR repeats one lambda per group
        fn.plan(scheduler.last_epoch, steps_left, new_m_step=new_m_step)
    for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, factors):
        group["lr"] = base * fn(scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


def make_scheduler(optimizer: torch.optim.Optimizer, *, warmup_steps: int, schedule: str,
                   total_steps: int, iterations: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then constant, linear decay or cosine decay to 0 at
    ``total_steps``. With ``iterations`` > 0, ``total_steps`` is the most the run can take
    (``iterations`` M-steps of ``total_steps / iterations`` steps) and :func:`m_step` moves the
    horizon to the steps actually taken (dropped zero-signal groups and skipped steps shorten
    M-steps), so linear and cosine reach 0 after the last M-step's last step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LRFactor(warmup_steps, schedule, total_steps, iterations))
