"""The composition root: a :class:`~empg.config.Config` (plus, from :class:`empg.Trainer`, the
caller's model, datasets and reward functions) becomes the objects a run holds — tokenizer, data
splits, reward functions, model, sampler, optimizer and scheduler — resuming from a checkpoint when
asked. Nothing here runs the loop (:mod:`empg.em`) or evaluates (:mod:`empg.evaluation`).

Order matters for the user: the data and the reward functions are checked before any model loads,
so their errors come in a second.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from empg import checkpoint as ckpt
from empg import distributed, faults
from empg.config import Config
from empg.distributed import SINGLE, Dist
from empg.exceptions import DataError
from empg.mstep import make_optimizer, make_scheduler, num_steps
from empg.sampling import Sampler
from empg.samplers import choose_sampler, make_sampler
from empg.scoring import RewardFunc, Rewards, make_rewards, uses_verifier
from empg.taskdata import Split, build_split, problem_rows, read_dataset
from empg.trackers import RunLogger


@dataclass
class Setup:
    """Everything a run holds: config, model, tokenizer, data, rewards, sampler, optimizer."""

    cfg: Config
    model: Any
    tokenizer: Any
    sampler: Sampler
    train: Split
    eval: Split
    rewards: Rewards
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
        _say(self.dist, msg)


def _say(d: Dist, msg: str) -> None:
    """Print on rank 0 only."""
    if d.is_main:
        print(msg, flush=True)


@dataclass
class Inputs:
    """What a :class:`empg.Trainer` caller passes besides the config (None = ``config`` decides)."""

    model: Any = None  # a PreTrainedModel
    tokenizer: Any = None
    train_dataset: Any = None
    eval_dataset: Any = None
    reward_funcs: Sequence[RewardFunc | str] | None = None
    reward_weights: Sequence[float] | None = None


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


def _template(cfg: Config, builtin_rows: bool) -> Any:
    from empg.prompts import get_template, load_fewshot

    d = cfg.data
    task = "arith" if d.source == "arith" else ("gsm8k" if d.source == "gsm8k" else "math")
    examples = load_fewshot(d.fewshot_file) if d.fewshot_file else None  # None: the task's built-in ones
    fewshot = d.fewshot
    if examples is None and not builtin_rows:  # a caller's own task: no built-in examples
        examples, fewshot = (), 0
    instruction = d.instruction
    if d.instruction_file:
        path = Path(d.instruction_file).expanduser()
        if not path.is_file():
            raise DataError(f"config key 'data.instruction_file': no file at {str(path)!r}")
        instruction = path.read_text(encoding="utf-8").strip()
    return get_template(d.template, fewshot=fewshot, task=task, instruction=instruction,
                        system=d.system_prompt, examples=examples)


@dataclass
class TaskRows:
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    skipped: dict[str, float]  # bad rows skipped (data.skip_bad_rows), for the metrics


def load_rows(cfg: Config, inputs: Inputs, dist: Dist) -> TaskRows:
    """Training and held-out rows: the caller's datasets, else ``config.data``'s problems."""
    from empg.data import load_problems

    d = cfg.data
    if inputs.train_dataset is not None:
        train = read_dataset(inputs.train_dataset, "train_dataset")
        test = read_dataset(inputs.eval_dataset, "eval_dataset") if inputs.eval_dataset is not None else []
        return TaskRows(train, test, {})
    common: dict[str, Any] = dict(path=d.path or None, levels=d.levels or None, skip_bad_rows=d.skip_bad_rows,
                                  question_field=d.question_field or None, answer_field=d.answer_field or None)
    problems, train_report = load_problems(d.source, split=d.train_split, limit=d.limit or None,
                                           shuffle_seed=d.shuffle_seed, **common)
    held_out, test_report = load_problems(d.source, split=d.eval_split, limit=d.eval_limit or None,
                                          shuffle_seed=d.shuffle_seed if d.source == "arith" else None,
                                          **common)
    skipped = faults.report_skipped_rows([train_report, test_report]) if dist.is_main else {}
    if not problems or not held_out:
        raise DataError(f"data.source={d.source!r}: {len(problems)} training and {len(held_out)} held-out "
                        "problems; both must be non-empty")
    return TaskRows(problem_rows(problems), problem_rows(held_out), skipped)


def build(cfg: Config, inputs: Inputs | None = None, *, model_path: str | None = None,
          for_training: bool = True) -> Setup:
    """Load model, tokenizer, data, rewards, sampler (and optimizer), resuming when asked."""
    from empg import models

    inputs = inputs or Inputs()
    custom = inputs.train_dataset is not None
    specs = list(inputs.reward_funcs) if inputs.reward_funcs is not None else list(cfg.reward.funcs)
    weights = inputs.reward_weights if inputs.reward_weights is not None else cfg.reward.weights
    reference = (cfg.data.answer_field or "answer") if custom else "answer"
    rewards = make_rewards(specs, weights, reference_column=reference, style=cfg.data.verify_style,
                           format_pattern=cfg.reward.format_pattern)
    template = _template(cfg, builtin_rows=not custom)
    dist, device = _init_process(cfg)
    rows = load_rows(cfg, inputs, dist)
    resume_from = None
    if for_training and cfg.checkpoint.resume:  # rank 0 decides, so that every rank takes the same
        resume_from = distributed.broadcast(dist, ckpt.latest_complete(Path(cfg.log.run_dir) / "checkpoints"))
    name = str(resume_from) if resume_from else (model_path or cfg.model.name)
    given = inputs.model if resume_from is None and model_path is None else None  # the caller's model
    tokenizer = inputs.tokenizer if inputs.tokenizer is not None else \
        models.load_tokenizer(getattr(given, "name_or_path", "") or name)
    train, test = _splits(cfg, rows, template, tokenizer, custom, dist)
    if uses_verifier(specs):
        for split in (train, test):
            split.require(reference, "the verifier (set data.answer_field, or pass reward_funcs)")
    faults.check_token_budget(cfg, train.prompt_ids + test.prompt_ids)
    if given is None:
        _say(dist, f"empg: loading model {name}")
        given = models.load_model(name, dtype=cfg.model.dtype, seed=cfg.train.seed,
                                  attn=cfg.model.attn_implementation)
    model = given.to(device)
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    stop = tuple(dict.fromkeys(list(template.stop) + list(cfg.sampling.stop)))
    sharded = for_training and dist.enabled  # the trainer sharded by FSDP2, the sampler whole
    choice = choose_sampler(cfg.sampling.sampler, device.type)
    _say(dist, f"empg: E-step sampler {choice.name} ({choice.reason})")
    rollout_model = copy.deepcopy(model) if sharded and choice.name == "transformers" else model
    s = Setup(cfg=cfg, model=model, tokenizer=tokenizer,
              sampler=make_sampler(choice.name, rollout_model, tokenizer, cfg),
              train=train, eval=test, rewards=rewards, stop=stop, dist=dist)
    s.extra.update(rows.skipped)
    s.guard = faults.BadStepGuard(cfg.train.max_bad_steps)
    if for_training:
        _training_state(s, resume_from, sharded, device)
    return s


def _init_process(cfg: Config) -> tuple[Dist, torch.device]:
    """This process's rank and device (torchrun), quiet transformers on ranks > 0, CPU threads."""
    dist, device = distributed.init(cfg.model.device)
    if not dist.is_main:  # one set of progress bars and warnings: rank 0's
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(cfg.model.threads))
    return dist, device


class Splits(NamedTuple):
    train: Split
    eval: Split


def _splits(cfg: Config, rows: TaskRows, template: Any, tokenizer: Any, custom: bool, dist: Dist) -> Splits:
    """The training and held-out splits, rendered and tokenized (the caller's rows or config.data's)."""
    d = cfg.data
    where = ("train_dataset", "eval_dataset") if custom else (f"{d.source}/{d.train_split}", f"{d.source}/{d.eval_split}")
    kw: dict[str, Any] = dict(template=template, tokenizer=tokenizer, max_prompt_length=d.max_prompt_length,
                              truncation=d.truncation, question_field=d.question_field if custom else "question")
    origin = "train_dataset/eval_dataset" if custom else f"{d.source} ({d.train_split}/{d.eval_split})"
    _say(dist, f"empg: {len(rows.train)} training problems, {len(rows.eval)} held-out, from {origin}"
         + (f"; {dist.world} ranks" if dist.enabled else ""))
    return Splits(build_split(rows.train, where=where[0], **kw), build_split(rows.eval, where=where[1], **kw))


def _training_state(s: Setup, resume_from: Path | None, sharded: bool, device: torch.device) -> None:
    """Reference model, FSDP2 sharding, optimizer and scheduler; the checkpoint's state on resume."""
    cfg, t, model = s.cfg, s.cfg.train, s.model
    if t.kl_beta > 0:
        s.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    if sharded:
        distributed.shard_model(model, bf16_params=device.type == "cuda" and cfg.model.bf16_autocast)
    s.optimizer = make_optimizer(model, lr=t.lr, weight_decay=t.weight_decay, betas=(t.betas[0], t.betas[1]))
    total = t.iterations * num_steps(cfg.sampling.prompts_per_iteration * cfg.sampling.group_size,
                                     t.mini_batch_size, t.epochs, t.steps_per_epoch)
    s.scheduler = make_scheduler(s.optimizer, warmup_steps=t.warmup_steps, schedule=t.schedule,
                                 total_steps=total, iterations=t.iterations)
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


__all__ = ["Inputs", "Setup", "TaskRows", "build", "cpu_threads", "load_rows"]
