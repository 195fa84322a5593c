"""Many processes, one run: ``torchrun`` starts ``empg-train`` once per GPU (or CPU process), and
torch.distributed ties them together. Nothing here is home-made: FSDP2 (``fully_shard``) shards the
trainer, ``torch.distributed.checkpoint.state_dict`` gathers full state dicts, and collectives carry
the rest. In one process every helper is a no-op, so the single-process code path is the same code.

Who does what (rank ``r`` of ``W``, sampler tensor-parallel size ``T``):

* **E-step.** The iteration's prompts are cut into ``W / T`` contiguous shards; the ``T`` ranks of a
  sampler group sample shard ``r // T`` together (a vLLM engine per group; ``T = 1``: one per rank),
  then each keeps every ``T``-th group of K completions. A group therefore never spans ranks, and
  the group weights are exact where they are computed.
* **M-step.** The trainer is sharded by FSDP2, which averages gradients over the ranks; each rank's
  backward scales its part of the loss by the world size, so the average is the sum.
  :func:`empg.mstep.m_step` numbers the sequences of all ranks ``0..N−1`` (rank-major), draws the
  same permutation of ``N`` everywhere and cuts the same optimizer steps: every rank takes the same
  number of steps (also one holding no sequences) and each step's normaliser counts the tokens of
  all ranks, so the update equals one process training on the union. Ranks with fewer packed
  micro-batches in a step run zero-weight ones, since FSDP's collectives need every rank to run
  the same forwards and backwards.
* **Checkpoints.** Full (unsharded) weights and optimizer state, keyed by parameter name, written
  by rank 0 in the single-process format: any number of ranks resumes from them.
* **Logs.** Metrics are computed from the gathered raw numbers of all ranks (the same values one
  process would log) and written by rank 0 only; progress bars and prints are rank 0's.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from empg.exceptions import ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in the run (``world == 1``: a plain single process)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()


def from_env() -> Dist:
    """The place torchrun gives this process (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``LOCAL_WORLD_SIZE``); a single process without them."""
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
        local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError as e:
        raise ConfigError(f"torchrun environment: {e} (RANK/WORLD_SIZE/LOCAL_RANK must be integers)") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"torchrun environment: RANK={rank} is not in [0, WORLD_SIZE={world})")
    return Dist(rank, world, local_rank, local_world)


def init(device: str = "auto", timeout_minutes: float = 60.0) -> tuple[Dist, torch.device]:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPUs) and pick this rank's
    device (``cuda:LOCAL_RANK``). Without torchrun: the single process and its device."""
    d = from_env()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if d.enabled and dev.type == "cuda":
        dev = torch.device("cuda", d.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if d.enabled and not torch.distributed.is_initialized():
        timeout = datetime.timedelta(minutes=timeout_minutes)
        if dev.type == "cuda":
            torch.distributed.init_process_group("nccl", timeout=timeout, device_id=dev)
        else:
            torch.distributed.init_process_group("gloo", timeout=timeout)
    return d, dev


def current() -> Dist:
    """The running process group's view (single process when there is none)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        w = torch.distributed.get_world_size()
        return Dist(torch.distributed.get_rank(), w, int(os.environ.get("LOCAL_RANK", "0")),
                    int(os.environ.get("LOCAL_WORLD_SIZE", str(w))))
    return SINGLE


#: What :func:`shutdown` runs before the process group goes (see :func:`on_shutdown`).
_BEFORE_SHUTDOWN: list[Callable[[], None]] = []


def on_shutdown(fn: Callable[[], None]) -> None:
    """Run ``fn`` in :func:`shutdown`, before the default process group is destroyed: for an engine
    that joined the group (vLLM in process) and tears its own groups down when it closes."""
    _BEFORE_SHUTDOWN.append(fn)


def shutdown() -> None:
    while _BEFORE_SHUTDOWN:
        _BEFORE_SHUTDOWN.pop()()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shard_bounds(n: int, parts: int, index: int) -> tuple[int, int]:
    """``[lo, hi)`` of the ``index``-th of ``parts`` contiguous, near-equal shards of ``n`` items
    (the first ``n % parts`` shards hold one more)."""
    base, extra = divmod(n, parts)
    lo = index * base + min(index, extra)
    return lo, lo + base + (1 if index < extra else 0)


# -- collectives (no-ops in one process) ----------------------------------------------------------


def gather(d: Dist, obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order, on every rank."""
    if not d.enabled:
        return [obj]
    out: list[Any] = [None] * d.world
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast(d: Dist, obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce(d: Dist, values: Sequence[float], op: str = "sum") -> np.ndarray:
    """Element-wise ``sum`` or ``max`` of a float vector over the ranks (float64)."""
    arr = np.asarray(values, dtype=np.float64)
    if not d.enabled:
        return arr
    t = torch.from_numpy(arr.copy())
    dev = _collective_device()
    t = t.to(dev)
    torch.distributed.all_reduce(t, op={"sum": torch.distributed.ReduceOp.SUM,
                                        "max": torch.distributed.ReduceOp.MAX}[op])
    return t.cpu().numpy()


def any_true(d: Dist, flag: bool) -> bool:
    """True on every rank when it is True on any (e.g. a stop signal that reached one rank)."""
    return bool(all_reduce(d, [float(flag)], "max")[0] > 0)


def barrier(d: Dist) -> None:
    if d.enabled:
        torch.distributed.barrier()


def _collective_device() -> torch.device:
    backend = torch.distributed.get_backend()
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


# -- the sharded trainer --------------------------------------------------------------------------


def shard_model(model: Any, *, bf16_params: bool = False) -> Any:
    """FSDP2 ``fully_shard`` on every decoder layer (the classes of the model's
    ``_no_split_modules``), then on the whole model. FSDP averages gradients over the ranks (the
    M-step scales each rank's loss by the world size, see :mod:`empg.distributed`).
    ``bf16_params``: all-gather and compute in bf16, reduce in fp32 (fp32 master weights stay
    sharded)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    kwargs: dict[str, Any] = {}
    if bf16_params:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    layer_classes = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in layer_classes]
    for layer in layers:
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


def is_sharded(model: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state_dict(model: Any, *, rank0_only: bool = False) -> dict[str, Any]:
    """The model's full (unsharded) weights keyed by parameter name: on every rank, or only on
    rank 0 (``rank0_only``: on its CPU, the others get ``{}``). A collective when the model is
    sharded; an unsharded model's own tensors otherwise."""
    if not is_sharded(model):
        return {k: v.detach() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=rank0_only))


def optimizer_state(model: Any, optimizer: Any) -> dict[str, Any]:
    """The optimizer's full state keyed by parameter NAME (not position), which loads on any number
    of ranks; rank 0 holds it (the others get ``{}``). A collective when the model is sharded."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return dict(get_optimizer_state_dict(model, optimizer,
                                         options=StateDictOptions(full_state_dict=True, cpu_offload=True)))


def load_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Load :func:`optimizer_state`'s name-keyed state (every rank passes the full state; a
    sharded model takes its shard). A collective when the model is sharded."""
    if not is_sharded(model):
        optimizer.load_state_dict(_by_position(model, state))
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def _trainable_names(model: Any) -> list[str]:
    """Parameter names in ``model.parameters()`` order (how :func:`empg.mstep.make_optimizer`
    hands them to the optimizer)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _by_position(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    index = {n: i for i, n in enumerate(_trainable_names(model))}
    missing = sorted(set(state["state"]) - set(index))
    if missing:
        raise KeyError(f"no parameter named {missing[0]!r} in this model ({len(missing)} such names)")
    groups = [{**g, "params": [index[n] for n in g["params"]]} for g in state["param_groups"]]
    return {"state": {index[n]: v for n, v in state["state"].items()}, "param_groups": groups}


def by_name(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """A position-keyed ``optimizer.state_dict()`` (checkpoints written before name-keyed states, parameters in
    ``model.parameters()`` order as :func:`empg.mstep.make_optimizer` builds it) keyed by name."""
    names = _trainable_names(model)
    if len(state["state"]) > len(names) or any(i >= len(names) for i in state["state"]):
        raise ValueError(f"the state holds {len(state['state'])} parameters, this model has {len(names)}")
    pos = dict(enumerate(names))
    groups = [{**g, "params": [pos[i] for i in g["params"]]} for g in state["param_groups"]]
    return {"state": {pos[i]: v for i, v in state["state"].items()}, "param_groups": groups}
