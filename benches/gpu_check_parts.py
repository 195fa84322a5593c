"""Building blocks of benches/gpu_check.py: the model (a Qwen2 or a Llama, random weights from a
config), a toy
verifiable reward, a transformers sampler holding its own inference copy, the trainer's M-step
(:mod:`empg.mstep`: bf16 autocast over fp32 master weights, fused AdamW, packed micro-batches) with
benches/attention.py or the trainer's own forward, a probe of a model's log-probs, and the bf16
matmul peak.

Nothing here downloads anything: the machine that runs the check has no network.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import transformers

from empg import group_weights
from attention import masked_token_logprobs, preferred_attn_implementation, token_logprobs
from empg.sampling import Rollout, SamplingParams

#: Qwen2-0.5B-like dimensions (tied embeddings, GQA 14/2): ~494M parameters.
SMALL_05B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=1_000_000.0,
    tie_word_embeddings=True,
)
TINY = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    tie_word_embeddings=True,
)


#: The model families the check builds at those dimensions: ``qwen2`` is the paper's (Qwen2's own
#: class: q/k/v bias, tied embeddings), ``llama`` the layout most others share.
FAMILIES = {"qwen2": "Qwen2Config", "llama": "LlamaConfig"}


def build_model(tiny: bool, device: torch.device, seed: int, family: str = "llama") -> transformers.PreTrainedModel:
    """A causal LM of ``family`` (a key of :data:`FAMILIES`) with random weights in fp32 (the
    master copy the optimizer updates)."""
    config_cls = getattr(transformers, FAMILIES[family])
    config = config_cls(**(TINY if tiny else SMALL_05B), bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).to(device)
    model.set_attn_implementation(preferred_attn_implementation(device))
    return model


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reward(completion_ids: Sequence[int]) -> float:
    """Toy verifiable reward: the share of even token ids. A random model gets ~0.5 with spread
    inside every group, so the M-step has signal; raising it is learnable."""
    if not completion_ids:
        return 0.0
    return float(np.mean(np.asarray(completion_ids) % 2 == 0))


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA (fp32 master weights and optimizer state stay fp32); none on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class HFSampler:
    """transformers ``generate`` on an inference copy of the model (bf16 on CUDA), like an engine
    beside the trainer: :meth:`sync_weights` copies the trainer's parameters into it in place."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.model = copy.deepcopy(model).to(dtype).eval()
        self.model.generation_config.pad_token_id = 0

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Rollout]:
        device = next(self.model.parameters()).device
        lengths = {len(p) for p in prompts}
        if len(lengths) != 1:
            raise ValueError("HFSampler takes prompts of one length (the check makes them so)")
        ids = torch.tensor([list(p) for p in prompts], device=device)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=0,
                max_new_tokens=params.max_new_tokens,
                num_return_sequences=params.n,
                eos_token_id=self.model.config.eos_token_id,
            )
        prompt_len = ids.shape[1]
        eos = self.model.config.eos_token_id
        rollouts = []
        for row, seq in enumerate(out.tolist()):
            completion = seq[prompt_len:]
            reason = "length"
            if eos in completion:
                completion = completion[: completion.index(eos) + 1]
                reason = "stop"
            group = row // params.n
            text = " ".join(map(str, completion))
            rollouts.append(Rollout(group, list(prompts[group]), completion, text, reason))
        return rollouts

    def sync_weights(self, model: object) -> None:
        assert isinstance(model, torch.nn.Module)
        with torch.no_grad():
            for (name, mine), (_, theirs) in zip(self.model.named_parameters(), model.named_parameters()):
                mine.copy_(theirs)

    def prompt_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[list[float]]:
        return [score_sequence(self.model, s).tolist() for s in sequences]

    def sleep(self) -> None:
        pass

    def wake_up(self) -> None:
        pass


def score_sequence(model: torch.nn.Module, seq: Sequence[int]) -> np.ndarray:
    """Per-token log-probs of one sequence under ``model`` (0 for its first token)."""
    device = next(model.parameters()).device
    mb = {
        "input_ids": torch.tensor(list(seq)),
        "position_ids": torch.arange(len(seq)),
        "cu_seqlens": torch.tensor([0, len(seq)], dtype=torch.int32),
    }
    with torch.no_grad(), autocast(device):
        return token_logprobs(model, mb).float().cpu().numpy()


@dataclass
class MStepResult:
    loss: float
    grad_norm: float
    steps: int
    skipped: int
    tokens: int  # tokens run forward and backward (prompt + completion)
    seconds: float


FORWARDS = ("attention", "trainer")


def m_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rollouts: list[Rollout],
    rewards: np.ndarray,
    group_size: int,
    *,
    steps: int,
    token_budget: int,
    forward: str = "attention",
) -> MStepResult:
    """The trainer's M-step (:func:`empg.mstep.m_step`: EM-PG loss, packed micro-batches, bf16
    autocast on CUDA, gradient clipping) on the rollouts with group-normalised weights, ``steps``
    optimizer steps. ``forward``: ``attention`` (:func:`attention.masked_token_logprobs`, the
    path chosen by cost) or ``trainer`` (``empg.mstep.token_logprobs``, packed with the head only at
    completion positions)."""
    from empg import mstep

    device = next(model.parameters()).device
    gw = group_weights(rewards, group_size=group_size)
    samples = mstep.Samples.from_tokens(
        [r.prompt_ids for r in rollouts], [r.completion_ids for r in rollouts], gw.weights
    )
    settings = mstep.MStepSettings(
        algo="empg",
        epochs=1,
        mini_batch_size=-(-len(samples) // steps),
        token_budget=token_budget,
        normalize="token",
        max_grad_norm=1.0,
        bf16_autocast=True,
    )
    fn = masked_token_logprobs if forward == "attention" else mstep.token_logprobs
    sync(device)
    start = time.perf_counter()
    out = mstep.m_step(model, optimizer, scheduler, samples, settings, np.random.default_rng(0), forward=fn)
    sync(device)
    seconds = time.perf_counter() - start
    return MStepResult(
        loss=float(out.get("loss", float("nan"))),
        grad_norm=float(out.get("grad_norm", float("nan"))),
        steps=int(out.get("steps", 0)),
        skipped=int(out.get("skipped_steps", 0)),
        tokens=int(samples.lengths.sum()),
        seconds=seconds,
    )


def make_optimizer(model: torch.nn.Module, lr: float) -> tuple[torch.optim.Optimizer, Any]:
    """The trainer's AdamW (fused on CUDA, fp32 state) and a constant schedule."""
    from empg import mstep

    optimizer = mstep.make_optimizer(model, lr=lr, weight_decay=0.0, betas=(0.9, 0.999))
    scheduler = mstep.make_scheduler(optimizer, warmup_steps=0, schedule="constant", total_steps=1)
    return optimizer, scheduler


def matmul_peak_tflops(device: torch.device, seconds: float = 3.0) -> tuple[float, str]:
    """Measured dense matmul throughput: bf16 8192^3 on CUDA, fp32 1024^3 on the CPU."""
    if device.type == "cuda":
        n, dtype = 8192, torch.bfloat16
    else:
        n, dtype = 1024, torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    iters, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        iters += 10
        sync(device)
    elapsed = time.perf_counter() - start
    return 2.0 * n**3 * iters / elapsed / 1e12, f"{str(dtype).removeprefix('torch.')} {n}^3"
