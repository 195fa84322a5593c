"""The M-step forward with every shared prefix computed once (exact loss and gradients).

The sequences of one E-step share a lot: the K completions of a question share its prompt, and all
prompts share the instruction and few-shot part of the template. The plain packed forward
(:func:`empg.mstep.token_logprobs`) runs every ``prompt + completion`` in full. This module runs,
per micro-batch, three cache-chained forwards instead:

1. the **common prefix** ``S`` of the prompts (their longest common token prefix, so no template
   knowledge is needed), one row, WITH gradient, ``use_cache=True``;
2. each distinct prompt's **suffix** ``u_g`` (prompt minus ``S``), one row per group, right-padded,
   attending to ``S`` through its key/value cache expanded to the groups (``expand``: no copy of
   the computation, and autograd sums the gradients of the rows back into ``S``);
3. every **completion**, one row per sequence, right-padded, attending to its group's cache rows
   (``index_select`` by group: the backward adds the K rows' gradients into the group's prompt).

Positions are the ones the plain forward uses (``S`` at 0.., the suffix after it, the completion
after the prompt); a 2-D attention mask hides the pad columns. The K/V of a prefix token only
depends on the tokens before it, so every log-prob is the plain one, and since expand/index
backward are sums, every gradient is the plain one (``tests/test_prefix.py`` checks loss and every
parameter gradient against the plain path in float64 and float32).

Groups are the ones the sampler made (``Samples.group``) and ``S`` is the prefix common to all
prompts of the E-step (``Samples.prefix_len``, computed once): no prompt is hashed or compared per
micro-batch. Packing: :func:`shared_microbatches` packs whole groups (split only when one group
alone exceeds the budget) under the token budget, counting a group's prompt suffix once and the
common prefix once per micro-batch, via :func:`empg.pack_microbatches` on per-group costs.

Scope: the families of ``tests/test_families.py`` (Llama, Qwen2, Qwen3, Mistral, Gemma-2/3,
Granite, Cohere, Phi-3, OLMo-2) with any attention implementation that takes a 2-D padding mask with a
cache (sdpa, eager, flash-attention-2). Logits come from :func:`lm_logits` (the head plus the
family's own post-processing: Granite's scaling, Cohere's scale, Gemma's soft-capping).
:func:`can_share` is the one gate, for this module and the shared sampler alike: it falls back to
the plain path, with a one-line notice, under gradient checkpointing (transformers turns the cache
off there), for sliding-window layers whose window a sequence reaches, and for a model whose
logits :func:`lm_logits` does not reproduce (checked on a probe, once per model). Flex-attention
block masks could do the same in one packed forward on CUDA; the cache path is used on every device.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from transformers import DynamicCache

from empg.core import pack_microbatches


def lm_logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """The model's logits from its final hidden states: the LM head, then what the family's own
    forward does to the head's output (transformers 5: Granite divides by ``logits_scaling``,
    Cohere multiplies by ``logit_scale``, Gemma-2/3 soft-cap with ``final_logit_softcapping``; the
    other families of ``tests/test_families.py`` use the bare head). The one place the shared
    M-step, the shared sampler and ``benches/attention.py`` turn hidden states into logits;
    :func:`sharing_blocker` checks it against the model's forward before a shared path runs."""
    logits = model.get_output_embeddings()(hidden)
    cfg = _text_config(model)
    scaling = getattr(cfg, "logits_scaling", None)
    if scaling:
        logits = logits / scaling
    scale = getattr(cfg, "logit_scale", None)
    if scale:
        logits = logits * scale
    cap = getattr(cfg, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _text_config(model: Any) -> Any:
    cfg = model.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


_HEAD_GAP: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()
_NOTICED: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()


def lm_logits_gap(model: Any) -> float:
    """Largest |:func:`lm_logits` − the model's own logits| on a 12-token probe, relative to the
    logits' scale (0 when they agree; cached per model: it depends on the family, not the weights)."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile: probe the plain module (no recompile)
    gap = _HEAD_GAP.get(inner)
    if gap is None:
        device = next(inner.parameters()).device
        ids = (torch.arange(12, device=device) * 7 + 3)[None] % int(_text_config(inner).vocab_size)
        was_training = inner.training
        inner.eval()  # no dropout: both forwards see the same weights the same way
        try:
            with torch.no_grad():
                hidden = inner.base_model(input_ids=ids, use_cache=False).last_hidden_state
                ours = lm_logits(inner, hidden).float()
                theirs = inner(input_ids=ids, use_cache=False).logits.float()
        finally:
            inner.train(was_training)
        gap = _HEAD_GAP[inner] = float((ours - theirs).abs().max() / (1.0 + theirs.abs().max()))
    return gap


def head_reproduces_logits(model: Any) -> bool:
    """Whether :func:`lm_logits` on the final hidden states gives the model's own logits (to 1e-3
    of their scale; a missed post-processing is off by far more, rounding by far less)."""
    return lm_logits_gap(model) <= 1e-3


def _sliding_window(cfg: Any) -> int | None:
    """The attention window of a model with sliding-window layers, else None."""
    window = getattr(cfg, "sliding_window", None)
    types = getattr(cfg, "layer_types", None)
    if types:
        return window if any("sliding" in str(t) for t in types) and window else None
    return window if window and getattr(cfg, "use_sliding_window", None) is not False else None


def sharing_blocker(model: Any, longest: int) -> str | None:
    """Why the cache-chained (prefix-shared) forwards would NOT give the model's own numbers on
    sequences of at most ``longest`` tokens, or None when they do. The one gate of the shared
    M-step and the shared sampler: gradient checkpointing (transformers turns the key/value cache
    off in training), sliding-window layers whose window a sequence outgrows (the caches here are
    full), logits that :func:`lm_logits` does not reproduce (an unknown post-processing)."""
    if getattr(model, "is_gradient_checkpointing", False) and model.training:
        return "gradient checkpointing turns the key/value cache off"
    window = _sliding_window(_text_config(model))
    if window is not None and longest >= window:
        return f"sliding-window attention (window {window}) with sequences of up to {longest} tokens"
    if not head_reproduces_logits(model):
        return ("its logits are not the LM head's plus a known post-processing "
                f"(relative gap {lm_logits_gap(model):.2g})")
    return None


def can_share(model: Any, longest: int) -> bool:
    """Whether to take the prefix-shared path (exact) for sequences of at most ``longest``
    tokens; when not, says why once per model and reason, and the caller takes the plain path."""
    reason = sharing_blocker(model, longest)
    if reason is None:
        return True
    seen = _NOTICED.setdefault(getattr(model, "_orig_mod", model), set())
    if reason not in seen:
        seen.add(reason)
        name = type(getattr(model, "_orig_mod", model)).__name__
        print(f"empg: prefix sharing off for {name}: {reason}; using the plain path", flush=True)
    return False


def common_prefix_len(seqs: Sequence[Sequence[int]] | Sequence[np.ndarray]) -> int:
    """Length of the longest common prefix, capped at ``min(len) - 1`` so every sequence keeps at
    least one token of its own (its last prompt token predicts the first completion token)."""
    if not seqs:
        return 0
    first = np.asarray(seqs[0])
    n = min(len(s) for s in seqs) - 1
    for s in seqs[1:]:
        s = np.asarray(s)
        diff = np.flatnonzero(first[:n] != s[:n])
        if len(diff):
            n = int(diff[0])
    return max(n, 0)


@dataclass
class Groups:
    """The sequences of ``index`` grouped by identical prompt, in order of first appearance."""

    prompts: list[np.ndarray]  # one per group
    members: list[np.ndarray]  # sequence indices (into the Samples) per group


def group_by_prompt(samples: Any, index: np.ndarray) -> Groups:
    """By the group ids the Samples carry (no prompt comparison)."""
    g = samples.group[index]
    uniq, first, inverse = np.unique(g, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    r = rank[inverse.reshape(-1)]
    members = np.split(np.asarray(index, dtype=np.int64)[np.argsort(r, kind="stable")],
                       np.cumsum(np.bincount(r, minlength=len(uniq)))[:-1])
    return Groups([samples.prompt(int(u)) for u in uniq[order]], members)


def shared_microbatches(samples: Any, index: np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Split ``index`` into micro-batches of whole groups under ``token_budget`` tokens, where a
    micro-batch costs its common prefix once, each group's prompt suffix once and every completion.
    A group too big for the budget alone is cut into pieces (each carries its prompt suffix)."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) == 0:
        return []
    groups = group_by_prompt(samples, index)
    prefix = samples.prefix_len
    room = max(1, token_budget - prefix)
    clens = samples.completion_lens
    units: list[np.ndarray] = []
    costs: list[int] = []
    for p, mem in zip(groups.prompts, groups.members):
        head = len(p) - prefix
        cur: list[int] = []
        cost = head
        for i in mem:
            if cur and cost + clens[i] > room:
                units.append(np.array(cur, dtype=np.int64))
                costs.append(cost)
                cur, cost = [], head
            cur.append(int(i))
            cost += int(clens[i])
        units.append(np.array(cur, dtype=np.int64))
        costs.append(cost)
    packs = pack_microbatches(np.array(costs, dtype=np.int64), room, allow_oversize=True)
    return [np.concatenate([units[u] for u in pack]) for pack in packs]


def shared_tokens(samples: Any, index: np.ndarray) -> int:
    """Tokens the shared forward runs for one micro-batch ``index`` (without padding)."""
    groups = group_by_prompt(samples, index)
    prefix = samples.prefix_len
    return prefix + sum(len(p) - prefix for p in groups.prompts) + int(
        samples.completion_lens[index].sum())


def length_buckets(lengths: np.ndarray, overhead: int = 32) -> list[np.ndarray]:
    """Rows grouped into right-padded batches of similar length: the split of the rows (sorted by
    length) minimising padded tokens + ``overhead`` tokens per extra forward (dynamic programming).
    Completions of uneven length padded to the longest would otherwise waste most of the work."""
    order = np.argsort(-lengths, kind="stable")
    sorted_len = lengths[order].astype(np.int64)
    n = len(order)
    best = np.zeros(n + 1)
    back = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        i = np.arange(j)
        cand = best[:j] + (j - i) * sorted_len[:j] + overhead
        back[j] = int(np.argmin(cand))
        best[j] = cand[back[j]]
    out: list[np.ndarray] = []
    j = n
    while j > 0:
        out.append(order[back[j]: j])
        j = back[j]
    return out[::-1]


def _cache(kv: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    return DynamicCache(ddp_cache_data=kv)


def _kv(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def right_padded(rows: list[np.ndarray], fill: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded [len(rows), max_len] ids and their 0/1 mask."""
    width = max(1, max(len(r) for r in rows))
    ids = np.full((len(rows), width), fill, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, r in enumerate(rows):
        ids[j, : len(r)] = r
        mask[j, : len(r)] = 1
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``log softmax(logits / T)`` at ``targets``, one per row, in float32 (both forwards' last step)."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def shared_token_logprobs(model: Any, samples: Any, index: np.ndarray, temperature: float = 1.0) -> torch.Tensor:
    """log π(z_t | prompt, z_<t) of every completion token of the sequences ``index``, in the order
    of ``index`` then of the tokens: the same 1-D tensor :func:`empg.mstep.token_logprobs` gives on
    the packed buffer of ``index`` (at ``temperature``), computed with each shared prefix run once."""
    device = next(model.parameters()).device
    base = model.base_model
    groups = group_by_prompt(samples, index)
    prefix = samples.prefix_len
    n_groups = len(groups.prompts)

    # 1. The common prefix, once.
    past = None
    if prefix > 0:
        ids = torch.from_numpy(groups.prompts[0][:prefix].astype(np.int64)).to(device)[None]
        out = base(input_ids=ids, position_ids=torch.arange(prefix, device=device)[None], use_cache=True)
        past = _cache([(k.expand(n_groups, -1, -1, -1), v.expand(n_groups, -1, -1, -1))
                       for k, v in _kv(out.past_key_values)])

    # 2. Each distinct prompt's own part, one row per group, attending to the prefix.
    suffixes = [p[prefix:].astype(np.int64) for p in groups.prompts]
    sfx_len = torch.tensor([len(s) for s in suffixes], device=device)
    sfx_ids, sfx_mask = right_padded(suffixes, int(suffixes[0][-1]), device)
    width = sfx_ids.shape[1]
    pos = prefix + torch.arange(width, device=device)[None].expand(n_groups, -1)
    mask = torch.cat([torch.ones(n_groups, prefix, dtype=torch.long, device=device), sfx_mask], 1)
    out = base(input_ids=sfx_ids, position_ids=pos, attention_mask=mask, past_key_values=past,
               use_cache=True)
    first_hidden = out.last_hidden_state[torch.arange(n_groups, device=device), sfx_len - 1]
    group_kv = _kv(out.past_key_values)

    # 3. The completions, one row per sequence, attending to their group's cache rows.
    seq_group = np.concatenate([np.full(len(m), g) for g, m in enumerate(groups.members)])
    seqs = np.concatenate(groups.members)
    comps = [samples.completion(i) for i in seqs]
    rows = torch.from_numpy(seq_group).to(device)
    n_seq = len(seqs)
    parts = [first_hidden[rows]]  # hidden state predicting each sequence's first completion token
    start = np.zeros(n_seq, dtype=np.int64)  # where each row's other predicting states begin
    offset = n_seq
    for bucket in length_buckets(np.array([max(len(c) - 1, 0) for c in comps])):
        width = max(len(comps[r]) for r in bucket) - 1
        if width <= 0:
            continue
        b_rows = rows[torch.from_numpy(bucket).to(device)]
        c_ids, c_mask = right_padded([comps[r][:-1].astype(np.int64) for r in bucket], 0, device)
        c_pos = (prefix + sfx_len[b_rows])[:, None] + torch.arange(width, device=device)[None]
        c_past = _cache([(k[b_rows], v[b_rows]) for k, v in group_kv])
        c_out = base(input_ids=c_ids, position_ids=c_pos, attention_mask=torch.cat([mask[b_rows], c_mask], 1),
                     past_key_values=c_past, use_cache=True)
        parts.append(c_out.last_hidden_state.reshape(-1, c_out.last_hidden_state.shape[-1]))
        start[bucket] = offset + np.arange(len(bucket)) * width
        offset += len(bucket) * width
    hidden = torch.cat(parts, 0)

    # Gather, per sequence of ``index`` in order, the hidden states that predict its tokens.
    row_of = {int(i): r for r, i in enumerate(seqs)}
    pick: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for i in index:
        r = row_of[int(i)]
        c = comps[r]
        if len(c) == 0:
            continue
        pick.append(np.concatenate([[r], start[r] + np.arange(len(c) - 1)]).astype(np.int64))
        targets.append(c.astype(np.int64))
    sel = torch.from_numpy(np.concatenate(pick or [np.zeros(0, np.int64)])).to(device)
    tgt = torch.from_numpy(np.concatenate(targets or [np.zeros(0, np.int64)])).to(device)
    return target_logprobs(lm_logits(model, hidden[sel]), tgt, temperature)
