"""Checkpoints: complete ones are found, half-written ones never are, the last N are kept."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from empg import checkpoint as ckpt
from empg.exceptions import CheckpointError


@pytest.fixture(scope="module")
def parts():
    from empg.models import load_model, load_tokenizer

    model = load_model("tiny-llama-32x1", seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.tensor([[5, 6, 7]]), use_cache=False).logits.sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return model, load_tokenizer("tiny-llama"), opt, sched


def test_save_load_and_keep_last(tmp_path, parts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok, opt, sched = parts
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    for it in (1, 2, 3):
        ckpt.save(tmp_path, it, model, tok, opt, sched, {"data_pos": 10 * it}, keep_last=2)
    names = [p.name for p in ckpt.complete_checkpoints(tmp_path)]
    assert names == ["iter-000002", "iter-000003"]
    latest = ckpt.latest_complete(tmp_path)
    state = ckpt.load_state(latest)
    assert state["iteration"] == 3 and state["data_pos"] == 30
    names = [n for n, _ in model.named_parameters()]
    for k, st in opt.state_dict()["state"].items():  # stored by parameter name, not position
        for name, t in st.items():
            torch.testing.assert_close(state["optimizer"]["state"][names[k]][name], t, rtol=0, atol=0)
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ckpt.load_optimizer(model, fresh, state["optimizer"])
    _assert_same_optimizer_state(fresh, opt)
    # RNG states restore the exact streams.
    expected = (random.random(), np.random.rand(), torch.rand(1))
    ckpt.set_rng_state(state["rng"])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
    loaded = AutoModelForCausalLM.from_pretrained(latest)
    for a, b in zip(model.parameters(), loaded.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert AutoTokenizer.from_pretrained(latest)("What is 2 + 2?")["input_ids"] == tok("What is 2 + 2?")["input_ids"]
    assert not list(tmp_path.glob(".tmp-*"))


def _assert_same_optimizer_state(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys() and sa["state"]
    for k in sa["state"]:
        for name in sb["state"][k]:
            torch.testing.assert_close(sa["state"][k][name], sb["state"][k][name], rtol=0, atol=0)


def test_position_keyed_optimizer_state_still_loads(parts):
    """Checkpoints written before the states were keyed by name hold ``optimizer.state_dict()``."""
    model, _, opt, _ = parts
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ckpt.load_optimizer(model, fresh, opt.state_dict())
    _assert_same_optimizer_state(fresh, opt)


def test_optimizer_state_of_another_model_is_refused(parts):
    from empg.models import load_model

    _, _, opt, _ = parts
    other = load_model("tiny-llama-32x2", seed=0)
    with pytest.raises(CheckpointError, match="does not fit"):
        ckpt.load_optimizer(other, torch.optim.AdamW(other.parameters(), lr=1e-3), opt.state_dict())


def test_incomplete_checkpoint_is_never_taken(tmp_path, parts):
    model, tok, opt, sched = parts
    ckpt.save(tmp_path, 1, model, tok, opt, sched, {"data_pos": 0})
    # A crash mid-write: a later directory without the marker, and a leftover temporary dir.
    half = tmp_path / "iter-000002"
    half.mkdir()
    (half / "training_state.pt").write_bytes(b"\x00" * 10)
    (tmp_path / ".tmp-iter-000003-1").mkdir()
    assert ckpt.latest_complete(tmp_path).name == "iter-000001"
    with pytest.raises(CheckpointError, match="incomplete"):
        ckpt.load_state(half)
