"""The trainer's configuration: nested dataclasses, a YAML file, ``key=value`` overrides.

Every field has a default; the defaults are the **embedded default run** (SmolLM2-135M-Instruct on
the offline arithmetic task, about 10 minutes on 2 CPU cores). A YAML file sets any subset of the
fields (``sampling: {temperature: 0.7}``) and command-line overrides use dotted keys
(``sampling.temperature=0.7``). An unknown key or a bad value raises :class:`ConfigError` naming the
key (with the nearest known key as a suggestion), and :func:`validate` checks the combinations —
all before any model loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from empg.exceptions import ConfigError
from empg.prompts import DEFAULT_INSTRUCTION


@dataclass
class ModelConfig:
    name: str = "smollm2-135m-instruct"  # alias, hub name, local dir, or tiny-llama[-HxL] (tests)
    dtype: str = "float32"  # master weights: float32 | bfloat16
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:N
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2 (packing-aware in all)
    gradient_checkpointing: bool = False  # trade compute for activation memory in the M-step
    bf16_autocast: bool = True  # on CUDA, run the M-step forward under bf16 autocast
    threads: int = 0  # torch CPU threads (0 = auto: the cores not busy by load average)
    share_prefix: bool = True  # run shared prompt prefixes once in sampling and M-step (exact)
    onednn: bool = True  # on a CPU, float32 nn.Linear on oneDNN's kernels (empg.onednn; false: torch's MKL)


@dataclass
class DataConfig:
    source: str = "arith"  # arith (embedded task) | gsm8k | math | a local .jsonl/.parquet file |
    #                        a hub dataset name (owner/name, through datasets.load_dataset)
    path: str = ""  # data directory or file for non-embedded sources ("" = $EMPG_DATA_DIR)
    train_split: str = "train"
    eval_split: str = "test"
    levels: list[int] = field(default_factory=list)  # MATH levels / arith difficulties ([] = default)
    limit: int = 0  # at most this many training problems (0 = all; arith: 1024 generated)
    eval_limit: int = 256  # held-out problems evaluated (0 = all); 256 resolves a ~6-point change
    template: str = "plain"  # prompt template name (see empg.prompts)
    fewshot: int = 2  # worked examples in the prompt
    verify_style: str = "auto"  # answer extraction style for the verifier
    shuffle_seed: int = 0
    skip_bad_rows: bool = False  # skip (and count in the logs) malformed rows instead of failing
    question_field: str = ""  # the column holding the prompt ("" = prompt, question or problem)
    answer_field: str = ""  # the column holding the reference ("" = answer, or the source's own)
    system_prompt: str = ""  # a system message first in every prompt ("" = none)
    instruction: str = DEFAULT_INSTRUCTION  # text before every question ("" = none)
    instruction_file: str = ""  # read the instruction from this text file instead
    fewshot_file: str = ""  # worked examples from a jsonl of {question, answer} rows (data.fewshot of them)
    max_prompt_length: int = 0  # prompt tokens at most (0 = what train.token_budget allows)
    truncation: str = "error"  # a longer prompt: error (naming the row) | left (keep its last tokens)


@dataclass
class RewardConfig:
    funcs: list[str] = field(default_factory=list)  # [] = [verifier]; verifier | format | pkg.mod:func
    weights: list[float] = field(default_factory=list)  # one per function ([] = 1 each); rewards are summed
    format_pattern: str = r"^\s*<think>.+?</think>\s*\S"  # the 'format' reward's regex (from the start)


@dataclass
class SamplingConfig:
    sampler: str = "auto"  # auto | transformers | vllm (auto: vllm on CUDA when it runs there, see empg.samplers)
    prompts_per_iteration: int = 16  # questions per E-step
    group_size: int = 4  # K completions per question
    temperature: float = 1.0  # the policy itself (docs/default_run.md: 0.8 learned less)
    top_p: float = 1.0
    max_new_tokens: int = 32
    stop: list[str] = field(default_factory=list)  # extra stop strings (the template adds its own)
    batch_size: int = 64  # sequences per generate call (transformers sampler)
    gpu_memory_utilization: float = 0.5  # vllm only
    tensor_parallel_size: int = 1  # vllm only: GPUs per engine (under torchrun, ranks per engine)


@dataclass
class TrainConfig:
    algo: str = "empg"  # the loss, from empg.losses.LOSSES: empg | grpo
    iterations: int = 13  # EM iterations (E-step + M-step)
    epochs: int = 1  # passes of the M-step over one E-step's samples
    mini_batch_size: int = 32  # sequences per optimizer step (gradient accumulation over micro-batches)
    steps_per_epoch: int = 2  # if > 0: split each epoch's samples into this many optimizer steps
    #                           instead (as measured for the default, docs/algorithm.md)
    token_budget: int = 1024  # tokens per packed micro-batch (one forward row; with sdpa/eager the
    #                          attention mask is dense, so memory grows with its square: keep it
    #                          small on CPU, raise it with flash-attention on a GPU)
    scheme: str = "group_norm"  # weights: group_norm | mean_baseline | raw | rloo
    drop_zero_signal: bool = True  # skip groups whose rewards all agree (false: train them at weight 0, as TRL)
    normalize: str = "token"  # token: divide by completion tokens per step | sequence: by sequences
    kl_beta: float = 0.0  # KL to the frozen initial model (k3 estimator); 0 = no reference model
    clip_eps: float = 0.2  # grpo only: ratio clip
    lr: float = 1e-5  # safe for 135M; 3e-5 collapsed the embedded default (docs/algorithm.md)
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 2
    schedule: str = "linear"  # constant | linear | cosine (after warm-up); linear: to 0 at the last step, as TRL
    max_grad_norm: float = 1.0  # clip the gradient norm (0 = off)
    seed: int = 0
    max_bad_steps: int = 3  # stop after this many optimizer steps in a row with a NaN/inf loss or grad


@dataclass
class EvalConfig:
    every: int = 0  # evaluate every N iterations (0 = only before and after training)
    every_limit: int = 0  # before training and at the eval.every marks only the first N held-out
    #                       problems, a cheap curve (0 = all); the evaluation at the end uses them all
    before: bool = True  # evaluate at iteration 0, before any update
    greedy: bool = True  # greedy pass@1
    samples: int = 2  # n samples per problem for sampled pass@1 / pass@k (0 = no sampled eval)
    temperature: float = 1.0
    pass_k: list[int] = field(default_factory=lambda: [1, 2])  # k values of pass@k (k <= samples)
    max_new_tokens: int = 0  # 0 = sampling.max_new_tokens


@dataclass
class LogConfig:
    run_dir: str = "runs/empg"  # metrics, config, plots and checkpoints go here
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # tensorboard | wandb (JSONL always)
    wandb_project: str = "empg"  # the wandb project (report_to: [wandb]; WANDB_MODE=offline works)
    progress: bool = True  # tqdm progress bar
    samples_to_print: int = 0  # print this many sampled completions per iteration


@dataclass
class CheckpointConfig:
    every: int = 0  # save every N iterations (0 = only at the end)
    keep_last: int = 2  # complete checkpoints to keep
    resume: bool = False  # continue from the latest complete checkpoint in log.run_dir


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Reading: dicts, YAML, dotted overrides


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _known_keys(cls: type = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, tp in _field_types(cls).items():
        key = prefix + name
        keys.append(key)
        if dataclasses.is_dataclass(tp):
            keys.extend(_known_keys(tp, key + "."))
    return keys


# Keys of earlier releases, and what replaced them (named in the error, so an old YAML says how to move).
RENAMED = {"log.tensorboard": "log.report_to (a list: [tensorboard], [tensorboard, wandb] or [])"}


def _unknown(key: str) -> ConfigError:
    if key in RENAMED:
        return ConfigError(f"config key {key!r} was replaced by {RENAMED[key]}")
    known = _known_keys()
    leaves: dict[str, str] = {}
    for k in known:  # first section wins: sampling.temperature before eval.temperature
        leaves.setdefault(k.rsplit(".", 1)[-1], k)
    leaf = key.rsplit(".", 1)[-1]
    if "." not in key and leaf in leaves:  # a bare field name: its section was left out
        close = [leaves[leaf]]
    else:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if not close:  # match on the last component alone ("train.temperatur")
            last = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)
            close = [leaves[last[0]]] if last else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint}")


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """``value`` as type ``tp`` (from YAML or from a ``key=value`` string)."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            import yaml

            parsed = yaml.safe_load(value) if value.strip() else []
            value = parsed if isinstance(parsed, list) else [parsed]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(f"{key}[{i}]", item, v) for i, v in enumerate(value)]
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            return "" if value is None else str(value)
    except (TypeError, ValueError):
        pass
    else:
        raise ConfigError(f"config key {key!r}: unsupported type {tp}")
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"config key {key!r}: {value!r} is not a valid {name}")


def _apply(obj: Any, data: Mapping[str, Any], prefix: str = "") -> None:
    types = _field_types(type(obj))
    for name, value in data.items():
        key = prefix + str(name)
        if name not in types:
            raise _unknown(key)
        tp = types[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {key!r}: expected a section (mapping), got {value!r}")
            _apply(getattr(obj, name), value, key + ".")
        else:
            setattr(obj, name, _coerce(key, tp, value))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> nested dict of strings (typed later against the dataclasses)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. sampling.temperature=0.7)")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = value
    return out


# Short aliases a user types most (``algo=grpo``, ``resume=true``).
ALIASES = {"algo": "train.algo", "resume": "checkpoint.resume", "run_dir": "log.run_dir",
           "model": "model.name", "sampler": "sampling.sampler",
           "share_prefix": "model.share_prefix"}


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file, then the overrides; validated."""
    cfg = Config()
    if path is not None:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {str(p)!r}: not valid YAML ({e})") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file {str(p)!r}: top level must be a mapping of sections")
        _apply(cfg, data)
    items = [f"{ALIASES.get(i.split('=', 1)[0], i.split('=', 1)[0])}={i.split('=', 1)[1]}"
             if "=" in i else i for i in (overrides or [])]
    _apply(cfg, parse_overrides(items))
    validate(cfg)
    return cfg


def from_dict(data: Mapping[str, Any]) -> Config:
    cfg = Config()
    _apply(cfg, data)
    validate(cfg)
    return cfg


# ---------------------------------------------------------------------------------------------
# Validation: every check that does not need the model


def _need(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"config key {key!r}: {msg}")


def validate(cfg: Config) -> None:
    """Raise :class:`ConfigError` naming the key of the first invalid value or combination."""
    from empg import distributed, models
    from empg.losses import LOSSES
    from empg.samplers import SAMPLER_NAMES
    from empg.core import SCHEMES

    s, t, e = cfg.sampling, cfg.train, cfg.eval
    _need(t.algo in LOSSES, "train.algo", f"{t.algo!r} is not one of {sorted(LOSSES)}")
    _need(s.sampler in SAMPLER_NAMES, "sampling.sampler", f"{s.sampler!r} is not one of {list(SAMPLER_NAMES)}")
    _need(t.scheme in SCHEMES, "train.scheme", f"{t.scheme!r} is not one of {list(SCHEMES)}")
    _need(t.normalize in ("token", "sequence"), "train.normalize", "must be 'token' or 'sequence'")
    _need(t.schedule in ("constant", "linear", "cosine"), "train.schedule",
          "must be constant, linear or cosine")
    _need(s.group_size >= 1, "sampling.group_size", f"must be >= 1, got {s.group_size}")
    _need(s.group_size >= 2 or t.scheme == "raw", "sampling.group_size",
          "a group baseline needs K >= 2 (or train.scheme=raw)")
    _need(s.prompts_per_iteration >= 1, "sampling.prompts_per_iteration", "must be >= 1")
    _need(s.temperature >= 0, "sampling.temperature", f"must be >= 0, got {s.temperature}")
    _need(not (s.temperature == 0 and s.group_size > 1), "sampling.temperature",
          "temperature 0 (greedy) gives K identical samples; use temperature > 0 or group_size=1")
    _need(0 < s.top_p <= 1, "sampling.top_p", f"must be in (0, 1], got {s.top_p}")
    _need(s.max_new_tokens >= 1, "sampling.max_new_tokens", "must be >= 1")
    _need(s.batch_size >= 1, "sampling.batch_size", "must be >= 1")
    _need(s.tensor_parallel_size >= 1, "sampling.tensor_parallel_size", "must be >= 1")
    _need(s.tensor_parallel_size == 1 or s.sampler == "vllm", "sampling.tensor_parallel_size",
          "tensor-parallel sampling needs sampling.sampler=vllm")
    world = distributed.from_env().world
    _need(world % s.tensor_parallel_size == 0, "sampling.tensor_parallel_size",
          f"{s.tensor_parallel_size} does not divide the {world} torchrun ranks")
    groups = world // s.tensor_parallel_size
    _need(s.prompts_per_iteration >= groups, "sampling.prompts_per_iteration",
          f"{s.prompts_per_iteration} prompts cannot give each of the {groups} sampler groups "
          f"(torchrun ranks / sampling.tensor_parallel_size) at least one")
    _need(t.iterations >= 0, "train.iterations", "must be >= 0")
    _need(t.epochs >= 1, "train.epochs", "must be >= 1")
    _need(t.mini_batch_size >= 1, "train.mini_batch_size", "must be >= 1")
    _need(t.steps_per_epoch >= 0, "train.steps_per_epoch", "must be >= 0")
    _need(t.token_budget >= 1, "train.token_budget", f"must be >= 1, got {t.token_budget}")
    _need(t.token_budget > s.max_new_tokens, "train.token_budget",
          f"{t.token_budget} cannot hold a prompt plus sampling.max_new_tokens={s.max_new_tokens}")
    _need(t.lr > 0, "train.lr", f"must be > 0, got {t.lr}")
    _need(t.weight_decay >= 0, "train.weight_decay", "must be >= 0")
    _need(len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas), "train.betas",
          "must be two numbers in [0, 1)")
    _need(t.warmup_steps >= 0, "train.warmup_steps", "must be >= 0")
    _need(t.max_grad_norm >= 0, "train.max_grad_norm", "must be >= 0")
    _need(t.kl_beta >= 0, "train.kl_beta", "must be >= 0")
    _need(t.max_bad_steps >= 1, "train.max_bad_steps", f"must be >= 1, got {t.max_bad_steps}")
    _need(0 < t.clip_eps < 1, "train.clip_eps", "must be in (0, 1)")
    _need(cfg.model.dtype != "float16", "model.dtype",
          "float16 is refused: the M-step has no gradient scaler, and float16 master weights lose "
          "small updates and overflow without one; use bfloat16 or float32 (on CUDA the M-step "
          "already runs under bf16 autocast, model.bf16_autocast)")
    _need(cfg.model.dtype in ("float32", "bfloat16"), "model.dtype", "must be float32 or bfloat16")
    _need(cfg.model.device == "auto" or cfg.model.device == "cpu"
          or cfg.model.device.startswith("cuda"), "model.device", "must be auto, cpu or cuda[:N]")
    _need(e.every >= 0, "eval.every", "must be >= 0")
    _need(e.every_limit >= 0, "eval.every_limit", "must be >= 0")
    _need(e.samples >= 0, "eval.samples", "must be >= 0")
    _need(e.temperature > 0 or e.samples <= 1, "eval.temperature", "must be > 0 for several samples")
    for k in e.pass_k:
        _need(1 <= k <= max(e.samples, 1), "eval.pass_k", f"k={k} must be in [1, eval.samples]")
    _need(cfg.model.threads >= 0, "model.threads", "must be >= 0")
    _need(cfg.data.fewshot >= 0, "data.fewshot", "must be >= 0")
    _need(cfg.data.eval_limit >= 0 and cfg.data.limit >= 0, "data.limit", "must be >= 0")
    _need(cfg.checkpoint.keep_last >= 1, "checkpoint.keep_last", "must be >= 1")
    _need(cfg.checkpoint.every >= 0, "checkpoint.every", "must be >= 0")
    _need(bool(cfg.log.run_dir), "log.run_dir", "must not be empty")
    try:
        models.check_model_name(cfg.model.name)
    except ConfigError:
        raise
    if cfg.data.source not in ("arith", "gsm8k", "math", "math500", "math_hard"):
        from empg.data import is_hub_name

        src = cfg.data.source
        _need(Path(src).expanduser().is_file() or is_hub_name(src), "data.source",
              f"{src!r} is neither a known source (arith, gsm8k, math, math500, math_hard), an "
              "existing file nor a hub dataset name (owner/name)")
    _validate_task(cfg)


def _validate_task(cfg: Config) -> None:
    """The keys of a task of one's own: prompt length, rewards, trackers."""
    from empg.trackers import TRACKERS

    _need(cfg.data.max_prompt_length >= 0, "data.max_prompt_length", "must be >= 0")
    _need(cfg.data.truncation in ("error", "left"), "data.truncation", "must be 'error' or 'left'")
    r = cfg.reward
    _need(not r.weights or len(r.weights) == max(len(r.funcs), 1), "reward.weights",
          f"{len(r.weights)} weights for {max(len(r.funcs), 1)} reward functions")
    for name in cfg.log.report_to:
        _need(name in TRACKERS, "log.report_to", f"{name!r} is not one of {sorted(TRACKERS)}")


def dump_yaml(cfg: Config) -> str:
    import yaml

    return str(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
