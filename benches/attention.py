"""Per-token log-probs of a packed micro-batch, attended without cross-sequence leakage.

The packer (:func:`empg.core.build_microbatch`) lays the sequences of a micro-batch end to end in one
flat buffer (``input_ids``, ``position_ids`` restarting at 0 per sequence, ``cu_seqlens``). A token
must attend only to earlier tokens of *its own* sequence. Three ways to run the model on it:

``"flash_varlen"``
    flash-attention's variable-length kernel over the flat buffer (``cu_seqlens`` handed to
    transformers as ``cu_seq_lens_q/k``): no padding, no mask, attention cost ``sum L_i^2``. Needs the
    ``flash_attn`` package, a CUDA device and a model loaded with a flash attention implementation
    (see :func:`preferred_attn_implementation`).
``"packed_sdpa"``
    the flat buffer as one row; transformers sees the position ids restart and builds a
    block-diagonal causal mask for SDPA (or eager) attention. No padding, but the dense mask costs
    ``N^2`` attention work for ``N`` tokens: good for few or long sequences.
``"padded_buckets"``
    the sequences re-bucketed by length into padded ``[B, T]`` batches (each at most ``N`` padded
    tokens), run with an ordinary padding mask: costs ``sum B*T^2`` attention and some padding.

:func:`token_logprobs` picks the cheapest available path unless told; every path gives the same
log-probs as running each sequence on its own (tests check this).
"""

from __future__ import annotations

import importlib.util
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from empg.exceptions import ConfigError, InvalidInputError
from empg.shared_forward import head_reproduces_logits, lm_logits

PATHS = ("flash_varlen", "packed_sdpa", "padded_buckets")

#: Rows of logits turned into log-probs at a time (bounds the fp32 copy of ``[rows, vocab]``).
LOGPROB_CHUNK = 1024


def flash_attn_available() -> bool:
    """Whether the ``flash_attn`` package can be imported (without importing it)."""
    return importlib.util.find_spec("flash_attn") is not None


def preferred_attn_implementation(device: torch.device | str) -> str:
    """The ``attn_implementation`` to load a training model with on ``device``: flash-attention 2
    where its kernels exist (CUDA and the ``flash_attn`` package), else SDPA."""
    if torch.device(device).type == "cuda" and flash_attn_available():
        return "flash_attention_2"
    return "sdpa"


def _attn_implementation(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "eager")


def _model_dims(model: torch.nn.Module) -> tuple[int, int]:
    config = getattr(model, "config", None)
    hidden = int(getattr(config, "hidden_size", 1024) or 1024)
    inter = int(getattr(config, "intermediate_size", 4 * hidden) or 4 * hidden)
    return hidden, inter


def bucket_sequences(lengths: Sequence[int] | np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Group sequence indices into padded batches of similar lengths: longest first, each batch's
    ``rows * longest`` at most ``max(max_tokens, longest)`` (a sequence longer than the cap gets a
    batch of its own). Every index appears exactly once."""
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    order = np.argsort(-lengths, kind="stable")
    buckets: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        rows = max(1, max_tokens // max(longest, 1))
        buckets.append(order[start : start + rows])
        start += rows
    return buckets


def _attention_costs(lengths: np.ndarray, hidden: int, inter: int) -> dict[str, float]:
    """Rough FLOPs per layer of the packed (dense N x N mask) and the padded-bucket forward: linear
    layers ~ 2*(4h^2 + 3*h*i) per token, attention ~ 4*h per query-key pair."""
    n = float(lengths.sum())
    per_token = 2.0 * (4 * hidden * hidden + 3 * hidden * inter)
    packed = n * per_token + 4.0 * hidden * n * n
    padded = 0.0
    for b in bucket_sequences(lengths, int(n)):
        t = float(lengths[b].max())
        padded += len(b) * t * per_token + 4.0 * hidden * len(b) * t * t
    varlen = n * per_token + 2.0 * hidden * float((lengths.astype(np.float64) ** 2).sum())
    return {"packed_sdpa": packed, "padded_buckets": padded, "flash_varlen": varlen}


def choose_path(model: torch.nn.Module, lengths: Sequence[int] | np.ndarray, device: torch.device) -> str:
    """The path :func:`token_logprobs` takes when not told: ``flash_varlen`` where it can run (CUDA,
    ``flash_attn``, a flash-attention model), else the cheaper of ``packed_sdpa`` and
    ``padded_buckets`` by estimated FLOPs."""
    if (
        device.type == "cuda"
        and flash_attn_available()
        and _attn_implementation(model).startswith("flash_attention")
    ):
        return "flash_varlen"
    costs = _attention_costs(np.asarray(lengths, dtype=np.int64), *_model_dims(model))
    return "packed_sdpa" if costs["packed_sdpa"] <= costs["padded_buckets"] else "padded_buckets"


def selected_logprobs(
    rows: torch.Tensor, targets: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """``log_softmax(head(rows[i]))[targets[i]]`` in fp32 for each row (``head`` None: the rows are
    logits already). Chunked over rows, so the vocabulary-sized fp32 tensor is built
    :data:`LOGPROB_CHUNK` rows at a time."""
    pieces = []
    for s in range(0, rows.shape[0], LOGPROB_CHUNK):
        chunk = rows[s : s + LOGPROB_CHUNK]
        logits = (chunk if head is None else head(chunk)).float()
        tgt = targets[s : s + LOGPROB_CHUNK].unsqueeze(-1)
        pieces.append((logits.gather(-1, tgt) - torch.logsumexp(logits, dim=-1, keepdim=True)).squeeze(-1))
    return torch.cat(pieces) if pieces else rows.new_zeros(0, dtype=torch.float32)


def _as_tensor(mb: Mapping[str, Any], key: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if key not in mb:
        raise InvalidInputError(f"micro-batch lacks field {key!r} (has {sorted(mb)})")
    value = mb[key]
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    return tensor.reshape(-1).to(device=device, dtype=dtype)


def _validate(input_ids: torch.Tensor, position_ids: torch.Tensor, cu: np.ndarray) -> np.ndarray:
    n = input_ids.numel()
    if position_ids.numel() != n:
        raise InvalidInputError(f"micro-batch field 'position_ids' has {position_ids.numel()} entries, 'input_ids' {n}")
    if cu.size < 2 or cu[0] != 0 or cu[-1] != n or np.any(np.diff(cu) <= 0):
        raise InvalidInputError(
            f"micro-batch field 'cu_seqlens' must rise strictly from 0 to len(input_ids)={n}, got {cu.tolist()[:8]}..."
        )
    lengths = np.diff(cu)
    expected = np.arange(n, dtype=np.int64) - np.repeat(cu[:-1], lengths)
    if not np.array_equal(position_ids.cpu().numpy(), expected):
        bad = int(np.flatnonzero(position_ids.cpu().numpy() != expected)[0])
        raise InvalidInputError(
            f"micro-batch field 'position_ids' must restart at 0 at each 'cu_seqlens' boundary; index {bad} differs"
        )
    return lengths


def _run(model: torch.nn.Module, **kwargs: Any) -> torch.Tensor:
    """``[B, T, D]``: the final hidden states (D = hidden size; the LM head and the family's logit
    post-processing, :func:`empg.shared_forward.lm_logits`, are applied later, only where log-probs
    are wanted) or, for a model whose logits that does not reproduce, the logits."""
    if not head_reproduces_logits(model):
        logits: torch.Tensor = model(use_cache=False, **kwargs).logits
        return logits
    base: Any = getattr(model, "base_model")
    hidden: torch.Tensor = base(use_cache=False, **kwargs).last_hidden_state
    return hidden


def _flash_varlen(model: torch.nn.Module, ids: torch.Tensor, pos: torch.Tensor, cu: np.ndarray) -> torch.Tensor:
    if not _attn_implementation(model).startswith("flash_attention"):
        raise ConfigError(
            "path='flash_varlen' needs a model loaded with attn_implementation='flash_attention_2' "
            f"(this one uses {_attn_implementation(model)!r})"
        )
    cu_t = torch.as_tensor(cu, dtype=torch.int32, device=ids.device)
    max_len = int(np.diff(cu).max())
    states = _run(
        model,
        input_ids=ids[None],
        position_ids=pos[None],
        cu_seq_lens_q=cu_t,
        cu_seq_lens_k=cu_t,
        max_length_q=max_len,
        max_length_k=max_len,
    )
    return states[0]


def _packed_sdpa(model: torch.nn.Module, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    # attention_mask=None with restarting position ids: transformers detects the packed format and
    # builds the block-diagonal causal mask for the model's attention implementation.
    return _run(model, input_ids=ids[None], position_ids=pos[None], attention_mask=None)[0]


def _padded_buckets(model: torch.nn.Module, ids: torch.Tensor, cu: np.ndarray) -> torch.Tensor:
    lengths = np.diff(cu)
    pieces: list[torch.Tensor] = []
    owners: list[int] = []
    for bucket in bucket_sequences(lengths, int(lengths.sum())):
        t = int(lengths[bucket].max())
        rows = torch.zeros(len(bucket), t, dtype=ids.dtype, device=ids.device)
        mask = torch.zeros(len(bucket), t, dtype=torch.long, device=ids.device)
        for r, s in enumerate(bucket):
            rows[r, : lengths[s]] = ids[cu[s] : cu[s + 1]]
            mask[r, : lengths[s]] = 1
        positions = torch.arange(t, device=ids.device).expand(len(bucket), t)
        states = _run(model, input_ids=rows, attention_mask=mask, position_ids=positions)
        for r, s in enumerate(bucket):
            pieces.append(states[r, : lengths[s]])
            owners.append(int(s))
    # Put the per-sequence pieces back in flat (cu_seqlens) order.
    order = np.argsort(np.asarray(owners), kind="stable")
    return torch.cat([pieces[i] for i in order])


def token_logprobs(
    model: torch.nn.Module,
    mb: Mapping[str, Any],
    *,
    path: str | None = None,
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """``log pi(token j | earlier tokens of its own sequence)`` for every token of a packed
    micro-batch, as a flat fp32 tensor aligned to ``mb["input_ids"]``, 0 at each sequence's first
    token. ``mb`` holds ``input_ids``, ``position_ids`` (restarting per sequence) and ``cu_seqlens``
    (numpy arrays or tensors, as :func:`empg.core.build_microbatch` returns them). ``path`` is one of
    :data:`PATHS` or ``None`` (choose, see :func:`choose_path`). ``targets`` (bool, one per token)
    limits the work to those tokens (the LM head runs only at the positions predicting them; the
    others hold 0). Differentiable: call it under ``torch.no_grad()`` when no gradient is wanted."""
    device = next(model.parameters()).device
    ids = _as_tensor(mb, "input_ids", device, torch.long)
    pos = _as_tensor(mb, "position_ids", device, torch.long)
    cu = _as_tensor(mb, "cu_seqlens", torch.device("cpu"), torch.long).numpy()
    lengths = _validate(ids, pos, cu)
    chosen = path if path is not None else choose_path(model, lengths, device)
    if chosen == "flash_varlen":
        if device.type != "cuda" or not flash_attn_available():
            raise ConfigError("path='flash_varlen' needs a CUDA device and the flash_attn package")
        states = _flash_varlen(model, ids, pos, cu)
    elif chosen == "packed_sdpa":
        states = _packed_sdpa(model, ids, pos)
    elif chosen == "padded_buckets":
        states = _padded_buckets(model, ids, cu)
    else:
        raise ConfigError(f"attention path {chosen!r} is not one of {PATHS}")
    # A sequence's first token has no context inside its sequence: it is never a target.
    wanted = torch.ones(ids.numel(), dtype=torch.bool, device=device)
    if targets is not None:
        if targets.numel() != ids.numel():
            raise InvalidInputError(f"targets has {targets.numel()} entries, 'input_ids' {ids.numel()}")
        wanted = targets.reshape(-1).to(device=device, dtype=torch.bool).clone()
    wanted[torch.as_tensor(cu[:-1], device=device)] = False
    where = torch.nonzero(wanted).reshape(-1)
    head = partial(lm_logits, model) if head_reproduces_logits(model) else None
    values = selected_logprobs(states[where - 1], ids[where], head)
    return torch.zeros(ids.numel(), dtype=torch.float32, device=device).index_put((where,), values)


def masked_token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    loss_mask: torch.Tensor,
    *,
    path: str | None = None,
) -> torch.Tensor:
    """:func:`token_logprobs` of one packed row at the ``loss_mask`` positions only (in order): the
    ``forward(model, input_ids, position_ids, loss_mask)`` an M-step takes
    (:func:`empg.mstep.m_step`). Sequence starts are read from ``position_ids == 0``."""
    starts = torch.nonzero(position_ids.reshape(-1) == 0).reshape(-1).cpu()
    cu = torch.cat([starts, torch.tensor([input_ids.numel()])]).to(torch.int32)
    mb = {"input_ids": input_ids, "position_ids": position_ids, "cu_seqlens": cu}
    mask = loss_mask.reshape(-1).to(torch.bool)
    return token_logprobs(model, mb, path=path, targets=mask)[mask.to(input_ids.device)]
