"""The transformers sampler: batched ``model.generate`` on CPU or GPU.

K copies of each prompt, left-padded into batches of ``batch_size`` sequences, sampled with the
given temperature / top-p (no top-k), stopped per row at EOS or at a stop string (a token-level
check on the decoded completion). Each completion is cut right after the token that completes the
stop string (its ``text`` ends before the stop string), so the M-step trains the model to stop.

By default (``share_prefix=True``, config ``model.share_prefix``) the batch runs through
:func:`empg.samplers.shared.sample_shared` instead: the prompts' common prefix and each prompt are
encoded once, a hand-written decode loop drops finished rows; ``share_prefix=False`` is the plain
``generate`` path described above, the reference in ``tests/test_prefix.py``. On a CPU, both
paths run every float32 ``nn.Linear`` on oneDNN's kernels, on weights packed for it once per call
(:mod:`empg.onednn`: the same products; ``onednn=False``, config ``model.onednn``, keeps torch's
own). The shared path runs
only where :func:`empg.shared_forward.can_share` (the M-step's gate too) says it is exact; else
the batch takes the plain path, with a one-line notice.

The sampler shares the trainer's model object when they live on the same device, so
:meth:`sync_weights` is then a no-op; given another model it copies the weights in place (under
torchrun it holds a whole copy, while FSDP shards the trainer, and gathers the new weights).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from empg.onednn import onednn_linears
from empg.samplers.shared import SharedSamplerStats, sample_shared
from empg.sampling import Rollout, SamplingParams
from empg.shared_forward import can_share


class _StopStrings(StoppingCriteria):
    """Per row: True once the generated text contains a stop string."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_len = prompt_len
        self.window = 4 * max(len(s) for s in self.stops) + 8  # tokens decoded per check

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        gen = input_ids[:, self.prompt_len :]
        tails = self.tokenizer.batch_decode(gen[:, -self.window :], skip_special_tokens=False)
        done = [any(s in t for s in self.stops) for t in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def cut_completion(tokenizer: Any, ids: list[int], stops: Sequence[str], eos_ids: set[int]
                   ) -> tuple[list[int], str, str]:
    """Truncate generated ids at EOS (kept) or at the first stop string (ids kept up to the token
    that completes it; text cut before it). Returns (ids, text, finish_reason)."""
    finish = "length"
    for j, t in enumerate(ids):
        if t in eos_ids:
            ids, finish = ids[: j + 1], "stop"
            break
    text = tokenizer.decode(ids, skip_special_tokens=True)
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return ids, text, finish
    pos, stop = min(hits)
    # The fewest tokens whose text contains the stop string (monotone in the prefix length).
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if stop in tokenizer.decode(ids[:mid], skip_special_tokens=True):
            hi = mid
        else:
            lo = mid + 1
    return ids[:lo], text[:pos], "stop"


class TransformersSampler:
    """:class:`empg.sampling.Sampler` on ``transformers.generate``."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 64, share_prefix: bool = True,
                 onednn: bool = True) -> None:
        self.model = model
        self.onednn = onednn
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        # Fast path (default): empg.samplers.shared, each shared prefix encoded once.
        self.share_prefix = share_prefix
        self.shared_stats = SharedSamplerStats()
        eos = model.generation_config.eos_token_id
        eos_list = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in eos_list if e is not None} | (
            {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set())
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _batch(self, prompts: list[list[int]], params: SamplingParams, seed: int | None
               ) -> list[tuple[list[int], str, str]]:
        """``params.n`` completions of each prompt. Each distinct prompt is run through the model
        once; its KV cache is repeated ``n`` times and handed to ``generate``, which then only
        decodes (K-fold less prefill work than ``generate`` on K copies, same distribution)."""
        n = params.n
        if self.share_prefix:
            was_training = self.model.training
            self.model.eval()
            try:
                if can_share(self.model, max(len(p) for p in prompts) + params.max_new_tokens):
                    gen = sample_shared(self.model, self.tokenizer, prompts, params, eos_ids=self.eos_ids,
                                        seed=seed, stats=self.shared_stats)
                    return [cut_completion(self.tokenizer, g, params.stop, self.eos_ids) for g in gen]
            finally:
                self.model.train(was_training)
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        kwargs: dict[str, Any] = dict(max_new_tokens=params.max_new_tokens, pad_token_id=self.pad_id,
                                      eos_token_id=sorted(self.eos_ids), use_cache=True)
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopStrings(self.tokenizer, params.stop, width)])
        was_training = self.model.training
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                if seed is not None:
                    torch.manual_seed(seed)
                if width > 1 and n > 1:
                    # Positions as generate computes them for left padding.
                    pos = (mask.cumsum(-1) - 1).clamp(min=0)
                    pre = self.model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1],
                                     position_ids=pos[:, :-1], use_cache=True, logits_to_keep=1)
                    cache = pre.past_key_values
                    cache.batch_repeat_interleave(n)
                    kwargs["past_key_values"] = cache
                out = self.model.generate(input_ids=ids.repeat_interleave(n, 0),
                                          attention_mask=mask.repeat_interleave(n, 0), **kwargs)
        finally:
            self.model.train(was_training)
        gen = out[:, width:].tolist()
        return [cut_completion(self.tokenizer, g, params.stop, self.eos_ids) for g in gen]

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Rollout]:
        per_call = max(1, self.batch_size // max(params.n, 1))  # prompts per generate call
        rollouts: list[Rollout] = []
        for b, start in enumerate(range(0, len(prompts), per_call)):
            chunk = [list(p) for p in prompts[start : start + per_call]]
            seed = None if params.seed is None else params.seed * 1_000_003 + b
            with onednn_linears(self.model, enabled=self.onednn, packed=True):
                outs = self._batch(chunk, params, seed)
            for j, (ids, text, finish) in enumerate(outs):
                g = start + j // params.n
                rollouts.append(Rollout(group=g, prompt_ids=chunk[j // params.n], completion_ids=ids,
                                        text=text, finish_reason=finish))
        return rollouts

    def sync_weights(self, model: object) -> None:
        """Take ``model``'s weights (gathered in full when FSDP shards it: every rank calls this)."""
        if model is not self.model:
            from empg.distributed import full_state_dict

            self.model.load_state_dict(full_state_dict(model))

    def sleep(self) -> None:
        return None

    def wake_up(self) -> None:
        return None
