"""The Rust core's group weights and packing: parity with the pure-Python reference on generated
inputs, invariants, and errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import empg
import reference as ref
from empg.exceptions import InvalidInputError, PackingError

rewards_and_ids = st.lists(
    st.tuples(st.integers(-3, 8), st.sampled_from([0.0, 1.0, 0.5, -1.0, 2.25])), min_size=1, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(rewards_and_ids, st.sampled_from(empg.SCHEMES), st.booleans())
def test_group_weights_match_reference(pairs, scheme, drop):
    ids = [g for g, _ in pairs]
    rewards = [r for _, r in pairs]
    out = empg.group_weights(rewards, group_ids=ids, scheme=scheme, drop_zero_signal=drop)
    want, groups = ref.group_weights(rewards, ids, scheme=scheme, drop_zero_signal=drop)
    np.testing.assert_allclose(out.weights, want, rtol=1e-5, atol=1e-5)
    assert list(out.group_ids) == list(dict.fromkeys(ids))  # first-appearance order
    for k, g in enumerate(out.group_ids):
        assert out.size[k] == groups[g]["size"]
        assert out.zero_signal[k] == groups[g]["zero_signal"]
        assert out.mean[k] == pytest.approx(groups[g]["mean"], abs=1e-6)
        assert out.std[k] == pytest.approx(groups[g]["std"], abs=1e-6)
        assert out.solved[k] == pytest.approx(groups[g]["solved"])
    assert [out.group_ids[j] for j in out.group_index] == ids


def test_fixed_group_size_equals_consecutive_ids():
    rng = np.random.default_rng(0)
    r = rng.integers(0, 2, size=64).astype(np.float32)
    a = empg.group_weights(r, group_size=8)
    b = empg.group_weights(r, group_ids=np.repeat(np.arange(8), 8))
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.zero_signal, b.zero_signal)
    assert a.num_dropped == int(sum(len(set(r[i : i + 8])) == 1 for i in range(0, 64, 8)))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_reward_names_its_index(bad):
    with pytest.raises(InvalidInputError, match="index 3"):
        empg.group_weights([0, 1, 0, bad], group_size=2)


def test_grouping_errors():
    with pytest.raises(InvalidInputError, match="group_size"):
        empg.group_weights([0, 1, 0], group_size=2)
    with pytest.raises(InvalidInputError, match="exactly one"):
        empg.group_weights([0, 1], group_size=2, group_ids=[0, 0])
    with pytest.raises(InvalidInputError, match="group_ids has 1 entries but 2"):
        empg.group_weights([0, 1], group_ids=[0])
    with pytest.raises(InvalidInputError, match="scheme"):
        empg.group_weights([0, 1], group_size=2, scheme="ppo")
    # The hierarchy: a ValueError and an EmpgError.
    assert issubclass(InvalidInputError, ValueError) and issubclass(PackingError, empg.EmpgError)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=120), st.integers(400, 2000))
def test_packing_places_every_sequence_once_within_budget(lengths, budget):
    bins = empg.pack_microbatches(lengths, budget)
    placed = np.concatenate(bins) if bins else np.zeros(0, dtype=np.int64)
    assert sorted(placed.tolist()) == list(range(len(lengths)))
    for b in bins:
        assert sum(lengths[i] for i in b) <= budget
    # Best-fit decreasing never needs more micro-batches than first-fit decreasing here.
    assert len(bins) <= len(ref.pack_first_fit_decreasing(lengths, budget))


def test_oversize_sequence():
    with pytest.raises(PackingError, match="sequence 1 has 30 tokens"):
        empg.pack_microbatches([5, 30, 8], 10)
    bins = empg.pack_microbatches([5, 30, 8], 10, allow_oversize=True)
    assert [1] in [b.tolist() for b in bins]
    with pytest.raises(InvalidInputError, match="negative length"):
        empg.pack_microbatches([5, -1], 10)
    with pytest.raises(InvalidInputError, match="token_budget"):
        empg.pack_microbatches([5], 0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.floats(-3, 3)), min_size=1, max_size=15),
    st.randoms(use_true_random=False),
)
def test_build_microbatch_matches_reference(spec, rnd):
    seqs, prompt_lens, weights = [], [], []
    for k, (p, c, w) in enumerate(spec):
        seqs.append([k * 100 + t for t in range(max(p + c, 1))])
        prompt_lens.append(min(p, len(seqs[-1])))
        weights.append(np.float32(w))
    index = list(range(len(seqs)))
    rnd.shuffle(index)
    flat = empg.flatten_sequences(seqs)
    got = empg.build_microbatch(flat.tokens, flat.offsets, prompt_lens, weights, index)
    want = ref.build_microbatch(seqs, prompt_lens, weights, index)
    for key in want:
        np.testing.assert_array_equal(got[key], np.asarray(want[key], dtype=got[key].dtype), err_msg=key)
    assert got["cu_seqlens"].dtype == np.int32 and got["loss_mask"].dtype == np.bool_


def test_build_microbatch_errors_name_the_field():
    flat = empg.flatten_sequences([[1, 2, 3]])
    with pytest.raises(InvalidInputError, match="prompt_lens"):
        empg.build_microbatch(flat.tokens, flat.offsets, [5], [1.0], [0])
    with pytest.raises(InvalidInputError, match="out of range"):
        empg.build_microbatch(flat.tokens, flat.offsets, [1], [1.0], [1])
    with pytest.raises(InvalidInputError, match="weights"):
        empg.build_microbatch(flat.tokens, flat.offsets, [1], [float("nan")], [0])


def test_parallelism_switch(monkeypatch):
    monkeypatch.setenv("EMPG_PARALLELISM", "0")
    assert empg.parallelism() == 1
    monkeypatch.setenv("EMPG_PARALLELISM", "1")
    monkeypatch.setenv("EMPG_NUM_THREADS", "3")
    assert empg.parallelism() == 3
    # Still correct with the pool resized.
    assert empg.group_weights([0, 1], group_size=2).weights.tolist() == pytest.approx([-1, 1], abs=1e-5)


def test_core_works_in_a_forked_child():
    """vLLM and data loaders fork: a pool used in the parent must not hang the child."""
    import multiprocessing as mp

    empg.pack_microbatches(list(range(1, 2000)), 4000)  # start the pool in the parent
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        n = pool.apply_async(_pack_count, (list(range(1, 2000)), 4000)).get(timeout=60)
    assert n == len(empg.pack_microbatches(list(range(1, 2000)), 4000))


def _pack_count(lengths, budget):
    return len(empg.pack_microbatches(lengths, budget))


def test_build_microbatches_equals_one_at_a_time():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 300, size=200)
    seqs = [rng.integers(0, 1000, size=int(n)) for n in lengths]
    prompt_lens = rng.integers(0, 50, size=200).clip(max=lengths)
    weights = rng.standard_normal(200).astype(np.float32)
    flat = empg.flatten_sequences(seqs)
    bins = empg.pack_microbatches(flat.lengths, 1024)
    many = empg.build_microbatches(flat.tokens, flat.offsets, prompt_lens, weights, bins)
    assert len(many) == len(bins)
    for b, mb in zip(bins, many):
        one = empg.build_microbatch(flat.tokens, flat.offsets, prompt_lens, weights, b)
        for key in one:
            np.testing.assert_array_equal(mb[key], one[key], err_msg=key)
    with pytest.raises(InvalidInputError, match="out of range"):
        empg.build_microbatches(flat.tokens, flat.offsets, prompt_lens, weights, [np.array([0, 200])])
