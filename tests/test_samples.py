"""The flat path from rollouts to micro-batches: Samples keeps prompts once per group and the
group of every sequence, and gives the same buffers, lengths and prefixes as the per-sequence
layout it replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import empg
from empg import _core
from empg.exceptions import InvalidInputError
from empg.samples import Samples, TokenLogProbs, flatten_ids
from empg.sampling import Rollout
from empg.shared_forward import common_prefix_len, group_by_prompt


def _rollouts(seed: int = 0, groups: int = 5, k: int = 3) -> list[Rollout]:
    rng = np.random.default_rng(seed)
    head = rng.integers(0, 900, 6).tolist()  # a template part every prompt shares
    out = []
    for g in rng.permutation(groups):  # group ids not in order, as after a rank's share
        prompt = head + rng.integers(0, 900, rng.integers(1, 5)).tolist()
        for _ in range(k):
            comp = rng.integers(0, 900, rng.integers(0, 7)).tolist()
            out.append(Rollout(group=int(g) * 10, prompt_ids=prompt, completion_ids=comp, text="", finish_reason="stop"))
    return out


def test_from_rollouts_equals_the_per_sequence_layout():
    rolls = _rollouts()
    keep = np.array([0, 1, 2, 4, 6, 7, 8, 12, 13, 14])
    w = np.linspace(-1, 1, len(keep)).astype(np.float32)
    s = Samples.from_rollouts(rolls, keep, w)
    ref = empg.flatten_sequences([rolls[i].prompt_ids + rolls[i].completion_ids for i in keep])
    np.testing.assert_array_equal(s.flat.tokens, ref.tokens)
    np.testing.assert_array_equal(s.flat.offsets, ref.offsets)
    np.testing.assert_array_equal(s.prompt_lens, [len(rolls[i].prompt_ids) for i in keep])
    np.testing.assert_array_equal(s.completion_lens, [len(rolls[i].completion_ids) for i in keep])
    assert len(s.prompts.offsets) - 1 == 4  # each kept group's prompt stored once
    assert s.group.tolist() == [0, 0, 0, 1, 2, 2, 2, 3, 3, 3]  # in order of first appearance
    assert s.prompts.tokens.dtype == s.completions.tokens.dtype == np.int32
    # The same sequences given one prompt each make the same Samples.
    t = Samples.from_tokens([rolls[i].prompt_ids for i in keep], [rolls[i].completion_ids for i in keep], w)
    np.testing.assert_array_equal(t.group, s.group)
    np.testing.assert_array_equal(t.prompts.tokens, s.prompts.tokens)


def test_grouped_microbatches_equal_the_flat_builder():
    rolls = _rollouts(1, groups=7, k=4)
    keep = np.arange(len(rolls))
    s = Samples.from_rollouts(rolls, keep, np.random.default_rng(2).normal(size=len(rolls)))
    bins = [np.array([5, 0, 17]), np.array([3]), np.arange(8, 15)]
    flat = s.flat
    for got, b in zip(s.microbatches(bins), bins):
        want = empg.build_microbatch(flat.tokens, flat.offsets, s.prompt_lens, s.weights, b)
        for key in ("input_ids", "position_ids", "loss_mask", "cu_seqlens"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        # The weights come per completion token only: what the loss multiplies.
        np.testing.assert_array_equal(got["target_weights"], want["token_weights"][want["loss_mask"]])
        assert len(got["target_weights"]) == int(s.completion_lens[b].sum())
    with pytest.raises(InvalidInputError, match="index"):
        s.microbatches([np.array([len(s)])])


def test_groups_and_prefix_come_from_the_samples():
    rolls = _rollouts(3)
    s = Samples.from_rollouts(rolls, np.arange(len(rolls)), np.ones(len(rolls)))
    prompts = [np.array(rolls[i].prompt_ids) for i in range(0, len(rolls), 3)]
    assert s.prefix_len == common_prefix_len(prompts) >= 6
    index = np.array([7, 1, 8, 0, 14])
    groups = group_by_prompt(s, index)
    assert [m.tolist() for m in groups.members] == [[7, 8], [1, 0], [14]]
    for p, m in zip(groups.prompts, groups.members):
        np.testing.assert_array_equal(p, rolls[m[0]].prompt_ids)


def test_token_index_and_recorded_logprobs():
    rolls = _rollouts(4)
    s = Samples.from_rollouts(rolls, np.arange(len(rolls)), np.ones(len(rolls)))
    idx = np.array([4, 0, 9])
    want = np.concatenate([np.arange(s.completions.offsets[i], s.completions.offsets[i + 1]) for i in idx])
    np.testing.assert_array_equal(s.token_index(idx), want)
    lp = TokenLogProbs(torch.arange(len(s.completions.tokens), dtype=torch.float32), s.completions.offsets)
    assert len(lp) == len(s)
    np.testing.assert_array_equal(lp[4], np.arange(s.completions.offsets[4], s.completions.offsets[5]))


def test_flatten_ids_takes_lists_tuples_arrays_and_names_bad_ids():
    flat = flatten_ids([[1, 2], (3,), np.array([4, 5], dtype=np.int32), range(6, 8), []])
    assert flat.tokens.tolist() == [1, 2, 3, 4, 5, 6, 7] and flat.offsets.tolist() == [0, 2, 3, 5, 7, 7]
    assert not flat.tokens.flags.writeable  # the core reads it without the GIL
    with pytest.raises(InvalidInputError, match="sequence 1, position 2: .* outside int32"):
        _core.flatten_ids([[1], [2, 3, 2**31]])
    with pytest.raises(InvalidInputError, match="sequence 0, position 1"):
        _core.flatten_ids([[1, "x"]])
    with pytest.raises(ValueError, match="at least one token"):
        Samples.from_tokens([[]], [[1]], [1.0])
