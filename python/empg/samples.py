"""What one M-step trains on, in flat arrays from the sampler's output to the micro-batches.

:class:`Samples` holds the kept sequences of an E-step with no per-token Python object: every
group's prompt ids ONCE (the K completions of a question share them), every completion's ids in one
int32 buffer with offsets, and each sequence's group, so the prefix-shared M-step knows its groups
and their common prefix without hashing prompts. :meth:`Samples.from_rollouts` is the one
conversion from the sampler's rollouts (one call into the core for all ids, in parallel);
:class:`TokenLogProbs` keeps recorded log-probs (GRPO's old policy, the KL reference) as one tensor
over all completion tokens, indexed by the completion offsets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from empg import _core
from empg.core import FlatSequences


def flatten_ids(seqs: Sequence[Sequence[int]]) -> FlatSequences:
    """Token id sequences as one int32 buffer plus offsets (one parallel call into the core)."""
    out = _core.flatten_ids(list(seqs))
    return _readonly(FlatSequences(tokens=out["tokens"], offsets=out["offsets"]))


def _readonly(flat: FlatSequences) -> FlatSequences:
    """The core reads these buffers with the GIL released: nothing may write them meanwhile."""
    flat.tokens.flags.writeable = False
    flat.offsets.flags.writeable = False
    return flat


@dataclass(frozen=True)
class TokenLogProbs:
    """Log-probs of every completion token of a :class:`Samples`, in its order, as one float32
    tensor (on the scoring model's device); sequence ``i`` is ``values[offsets[i]:offsets[i+1]]``."""

    values: torch.Tensor
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[int(self.offsets[i]): int(self.offsets[i + 1])].detach().float().cpu().numpy()

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))


@dataclass(eq=False)
class Samples:
    """The sequences one M-step trains on (zero-signal groups already dropped). Sequence ``i`` is
    prompt ``group[i]`` of ``prompts`` followed by completion ``i`` of ``completions``."""

    prompts: FlatSequences  # int32 ids of each group's prompt, once per group (>= 1 token each)
    completions: FlatSequences  # int32 ids of each sequence's completion
    group: np.ndarray  # int64 per sequence: its prompt in ``prompts``
    weights: np.ndarray  # float32, EM weight or GRPO advantage per sequence
    old_logp: TokenLogProbs | None = None  # per completion token (grpo)
    ref_logp: TokenLogProbs | None = None  # per completion token (kl_beta > 0)

    def __post_init__(self) -> None:
        self.group = np.array(self.group, dtype=np.int64)  # our own copy, read-only (the core reads it)
        self.group.flags.writeable = False
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        if len(self.group) != len(self.completions.offsets) - 1 or len(self.weights) != len(self.group):
            raise ValueError(f"Samples: {len(self.group)} group ids and {len(self.weights)} weights for "
                             f"{len(self.completions.offsets) - 1} completions")
        if len(self.group) and (self.group.min() < 0 or self.group.max() >= len(self.prompts.offsets) - 1):
            raise ValueError(f"Samples: group ids must index the {len(self.prompts.offsets) - 1} prompts")
        if (self.prompts.lengths < 1).any():
            raise ValueError("every sequence needs a prompt of at least one token")

    @classmethod
    def from_rollouts(cls, rollouts: Sequence[Any], keep: np.ndarray, weights: np.ndarray) -> "Samples":
        """The rollouts ``keep`` (as from a sampler: ``group``, ``prompt_ids``, ``completion_ids``)
        with their ``weights``: each group's prompt taken once (from its first kept rollout), all ids
        flattened in one call, groups numbered in order of first appearance."""
        kept = [rollouts[i] for i in keep]
        ids = np.fromiter((r.group for r in kept), dtype=np.int64, count=len(kept))
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[order] = np.arange(len(uniq))
        prompts = flatten_ids([kept[j].prompt_ids for j in first[order]])
        return cls(prompts, flatten_ids([r.completion_ids for r in kept]), rank[inverse.reshape(-1)], weights)

    @classmethod
    def from_tokens(cls, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                    weights: Any) -> "Samples":
        """One prompt per sequence (identical prompts become one group)."""
        if any(len(p) < 1 for p in prompts):
            raise ValueError("every sequence needs a prompt of at least one token")
        where: dict[tuple[int, ...], int] = {}
        group = np.array([where.setdefault(tuple(int(t) for t in p), len(where)) for p in prompts],
                         dtype=np.int64)
        return cls(flatten_ids([list(p) for p in where]), flatten_ids(completions), group, weights)

    def __len__(self) -> int:
        return len(self.group)

    @functools.cached_property
    def prompt_lens(self) -> np.ndarray:
        return self.prompts.lengths[self.group]

    @functools.cached_property
    def completion_lens(self) -> np.ndarray:
        return self.completions.lengths

    @property
    def lengths(self) -> np.ndarray:
        return self.prompt_lens + self.completion_lens

    @functools.cached_property
    def prefix_len(self) -> int:
        """The longest token prefix common to every prompt, capped so each prompt keeps at least one
        token of its own (what the prefix-shared forward runs once)."""
        p = self.prompts
        lens = p.lengths
        if len(lens) == 0:
            return 0
        n = int(lens.min()) - 1
        first = p.tokens[: n]
        if len(lens) > 1 and n > 0:
            starts = p.offsets[:-1, None] + np.arange(n)[None]
            diff = (p.tokens[starts] != first[None]).any(0)
            n = int(np.argmax(diff)) if diff.any() else n
        return max(n, 0)

    def prompt(self, g: int) -> np.ndarray:
        return self.prompts.tokens[self.prompts.offsets[g]: self.prompts.offsets[g + 1]]

    def completion(self, i: int) -> np.ndarray:
        return self.completions.tokens[self.completions.offsets[i]: self.completions.offsets[i + 1]]

    def token_index(self, idx: np.ndarray) -> np.ndarray:
        """Positions in the completion buffer (and in :class:`TokenLogProbs`) of the completion
        tokens of sequences ``idx``, in that order."""
        lens = self.completion_lens[idx]
        starts = np.repeat(self.completions.offsets[idx] - (np.cumsum(lens) - lens), lens)
        return starts + np.arange(int(lens.sum()))

    @functools.cached_property
    def flat(self) -> FlatSequences:
        """Prompt + completion ids of every sequence, flat (int64), as :func:`empg.build_microbatch`
        takes them (built once, when asked)."""
        mb = self.microbatches([np.arange(len(self))])[0] if len(self) else {"input_ids": np.zeros(0, np.int64)}
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        return FlatSequences(mb["input_ids"], offsets)

    def microbatches(self, bins: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """The buffers of the micro-batches ``bins`` (sequence indices each) as
        :func:`empg.build_microbatch` lays them out, but with ``target_weights`` (one per completion
        token) for ``token_weights``: one call into the core, in parallel, with the GIL released."""
        return _core.build_grouped_microbatches(
            self.prompts.tokens, self.prompts.offsets, self.completions.tokens, self.completions.offsets,
            self.group, self.weights, [np.ascontiguousarray(b, dtype=np.int64) for b in bins])
