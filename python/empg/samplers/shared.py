"""Prefix-shared sampling for the transformers backend: each shared prefix is encoded once.

One call samples ``n`` completions of each of G prompts (B = G·n rows):

1. the longest common token prefix ``S`` of the G prompts (instruction + few-shot part of the
   template, found on the tokens, no template knowledge needed) runs once, batch 1;
2. each prompt's own part runs once, one row per prompt (right-padded, 2-D mask), on ``S``'s
   key/value cache expanded to G rows; the last prompt token's logits give the first-token
   distribution of its group;
3. the G-row cache is repeated ``n`` times along the batch (``batch_repeat_interleave``: copied,
   not recomputed) and a hand-written loop decodes one token per step for the rows still running:
   temperature, top-p (the same filter as transformers' ``TopPLogitsWarper``), categorical draws
   (inverse CDF) from a ``torch.Generator`` seeded per call;
4. a row finishes at EOS or when the text of its last few tokens contains a stop string (only the
   tail is decoded, never the whole completion); finished rows are dropped from the batch and from
   the cache (``batch_select_indices``), so they cost nothing afterwards.

Positions are the plain ones (prompt tokens at 0.., token t of the completion at
``len(prompt) + t``), so with greedy decoding the token ids equal those of ``generate`` on the
plain batch (``tests/test_prefix.py``), and with sampling the distribution is the same.
:attr:`SharedSamplerStats` counts the tokens each phase ran through the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from empg.exceptions import InvalidInputError
from empg.sampling import SamplingParams
from empg.shared_forward import common_prefix_len, lm_logits, right_padded


@dataclass
class SharedSamplerStats:
    """Tokens run through the model by the last calls (accumulated until reset)."""

    prefix_tokens: int = 0  # the common prefix, once per call
    prompt_tokens: int = 0  # each distinct prompt's own part, with padding
    decode_tokens: int = 0  # one per running row per step

    @property
    def total(self) -> int:
        return self.prefix_tokens + self.prompt_tokens + self.decode_tokens


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``top_p`` (at least
    one); the others get −inf. Same rule as transformers' ``TopPLogitsWarper``."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=False)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cum <= (1 - top_p)
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def next_tokens(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> torch.Tensor:
    """One token per row: argmax at temperature 0, else temperature + top-p + a categorical draw.
    Non-finite logits (a diverged model) raise, as ``torch.multinomial`` does on the plain path,
    instead of sampling garbage (−inf alone is a masked token and allowed)."""
    logits = logits.float()
    if not bool(torch.isfinite(logits.sum())) and (
            bool((logits.isnan() | logits.isposinf()).any()) or not bool(logits.isfinite().any(dim=-1).all())):
        raise RuntimeError("sampling: the model's logits contain nan or inf (the weights have diverged)")
    if params.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = top_p_filter(logits / params.temperature, params.top_p).softmax(dim=-1)
    # Inverse CDF in float64: the first token whose cumulative probability exceeds u ~ U[0, total)
    # (``right``: a zero-probability token is never picked). One uniform per row, where an
    # exponential race or torch.multinomial draws one random number per vocabulary entry.
    cdf = probs.double().cumsum(dim=-1)
    u = torch.rand(len(cdf), 1, generator=gen, dtype=torch.float64, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


class PreallocatedLayer(DynamicLayer):
    """A decode cache layer whose keys and values live in buffers with room for ``capacity``
    positions: each step writes one column in place where ``DynamicLayer`` concatenates (a fresh
    copy of the whole cache per layer and step). ``keys``/``values`` are views of the filled part,
    so everything that reads a ``DynamicLayer`` reads this one alike; past the capacity it grows
    the buffers (copied once)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.length = keys.shape[-2]
        self._kbuf, self._vbuf = (self._room(t, max(capacity, self.length)) for t in (keys, values))
        self._views()

    @staticmethod
    def _room(t: torch.Tensor, capacity: int) -> torch.Tensor:
        buf = t.new_empty(*t.shape[:-2], capacity, t.shape[-1])
        buf[..., : t.shape[-2], :] = t
        return buf

    def _views(self) -> None:
        self.keys = self._kbuf[..., : self.length, :]
        self.values = self._vbuf[..., : self.length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self._kbuf.shape[-2]:
            self._kbuf, self._vbuf = (self._room(b[..., : self.length, :], 2 * end) for b in (self._kbuf, self._vbuf))
        self._kbuf[..., self.length: end, :] = key_states
        self._vbuf[..., self.length: end, :] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._kbuf, self._vbuf = self._kbuf[indices], self._vbuf[indices]
        self._views()

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a decode cache is never cropped")


def preallocated(cache: Any, room: int) -> Any:
    """``cache`` (a ``DynamicCache``) with each plain ``DynamicLayer`` a :class:`PreallocatedLayer`
    that holds ``room`` more positions without copying (other layer types stay as they are)."""
    cache.layers = [PreallocatedLayer(layer.keys, layer.values, layer.keys.shape[-2] + room)
                    if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


class StopChecker:
    """Stop strings checked on the last few tokens of each row: a stop string completed by the
    newest token lies within the text of the last ``window`` tokens (a token decodes to at least
    one character, plus slack for tokens that merge), so earlier text is never decoded again."""

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.window = max((len(s) for s in self.stops), default=0) + 3

    def hits(self, rows: list[list[int]]) -> list[bool]:
        if not self.stops:
            return [False] * len(rows)
        tails = self.tokenizer.batch_decode([r[-self.window:] for r in rows], skip_special_tokens=True)
        return [any(s in t for s in self.stops) for t in tails]


@dataclass
class EncodedPrompts:
    """G prompts run through the model (phases 1-2): what decoding starts from."""

    logits: torch.Tensor  # [G, vocab] fp32: the next-token logits after each prompt
    cache: Any  # DynamicCache, one row per prompt
    mask: torch.Tensor  # [G, columns]: 1 on each row's prompt tokens, 0 on its padding
    next_pos: torch.Tensor  # [G]: the position of each prompt's first completion token


@torch.no_grad()
def encode_prompts(model: Any, prompts: Sequence[Sequence[int]], stats: SharedSamplerStats | None = None
                   ) -> EncodedPrompts:
    """The common prefix once, then each prompt's own part once on the expanded prefix cache; the
    first-token logits through :func:`empg.shared_forward.lm_logits` (the model's own logits)."""
    device = next(model.parameters()).device
    stats = stats if stats is not None else SharedSamplerStats()
    prompts = [list(p) for p in prompts]
    n_prompts = len(prompts)
    empty = [i for i, p in enumerate(prompts) if not p]
    if empty:
        raise InvalidInputError(f"prompt {empty[0]} of the batch is empty (needs at least one token)")
    prefix = common_prefix_len(prompts)
    past = None
    if prefix > 0:
        ids = torch.tensor(prompts[0][:prefix], dtype=torch.long, device=device)[None]
        out = model.base_model(input_ids=ids, position_ids=torch.arange(prefix, device=device)[None],
                               use_cache=True)
        past = DynamicCache(ddp_cache_data=[
            (layer.keys.expand(n_prompts, -1, -1, -1), layer.values.expand(n_prompts, -1, -1, -1))
            for layer in out.past_key_values.layers])
        stats.prefix_tokens += prefix
    own, own_mask = right_padded([np.array(p[prefix:], dtype=np.int64) for p in prompts], prompts[0][-1], device)
    lens = own_mask.sum(1)
    width = own.shape[1]
    pos = prefix + torch.arange(width, device=device)[None].expand(n_prompts, -1)
    mask = torch.cat([torch.ones(n_prompts, prefix, dtype=torch.long, device=device), own_mask], 1)
    out = model.base_model(input_ids=own, position_ids=pos, attention_mask=mask, past_key_values=past,
                           use_cache=True)
    stats.prompt_tokens += own.numel()
    last = out.last_hidden_state[torch.arange(n_prompts, device=device), lens - 1]
    return EncodedPrompts(lm_logits(model, last).float(), out.past_key_values, mask, prefix + lens)


@torch.no_grad()
def sample_shared(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], params: SamplingParams,
                  *, eos_ids: set[int], seed: int | None, stats: SharedSamplerStats | None = None
                  ) -> list[list[int]]:
    """``params.n`` generated id lists per prompt (prompt-major: row ``g * n + k``), each ending at
    EOS or at the token that completes a stop string, or after ``max_new_tokens`` tokens. The
    caller decides with :func:`empg.shared_forward.can_share` that this path is exact."""
    device = next(model.parameters()).device
    n, n_prompts = params.n, len(prompts)
    stats = stats if stats is not None else SharedSamplerStats()
    gen = None
    if seed is not None and params.temperature > 0:
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed))
    enc = encode_prompts(model, prompts, stats)
    logits = enc.logits.repeat_interleave(n, 0)
    cache = enc.cache
    cache.batch_repeat_interleave(n)
    cache = preallocated(cache, params.max_new_tokens)
    mask = enc.mask.repeat_interleave(n, 0)
    next_pos = enc.next_pos.repeat_interleave(n, 0)

    # 3-4. Decode the running rows; drop finished rows from the batch and the cache.
    generated: list[list[int]] = [[] for _ in range(n_prompts * n)]
    active = list(range(n_prompts * n))  # row id of each batch position
    stop = StopChecker(tokenizer, params.stop)
    for step in range(params.max_new_tokens):
        tok = next_tokens(logits, params, gen)
        tok_list = tok.tolist()
        for r, t in zip(active, tok_list):
            generated[r].append(t)
        hit = stop.hits([generated[r] for r in active])
        done = [t in eos_ids or h for t, h in zip(tok_list, hit)]
        if step == params.max_new_tokens - 1 or all(done):
            break
        if any(done):
            keep = torch.tensor([j for j, d in enumerate(done) if not d], device=device)
            active = [r for r, d in zip(active, done) if not d]
            cache.batch_select_indices(keep)
            tok, mask, next_pos = tok[keep], mask[keep], next_pos[keep]
        mask = torch.cat([mask, torch.ones(len(active), 1, dtype=mask.dtype, device=device)], 1)
        out = model(input_ids=tok[:, None], position_ids=next_pos[:, None], attention_mask=mask,
                    past_key_values=cache, use_cache=True)
        stats.decode_tokens += len(active)
        cache = out.past_key_values
        logits = out.logits[:, -1]
        next_pos = next_pos + 1
    return generated

