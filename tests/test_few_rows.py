"""The decode-step Linear layouts (empg.samplers.few_rows): the same numbers as nn.Linear, only
inside the context, with every module restored afterwards (also after an error)."""

from __future__ import annotations

import pytest
import torch

from empg.samplers import few_rows
from empg.samplers.few_rows import few_row_linears, transposed_is_faster
from tiny_models import one_thread  # noqa: F401 (fixture)


def _model():
    from empg.models import load_model

    return load_model("tiny-llama", seed=3).eval()


def _linears(model) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if type(m) is torch.nn.Linear]


@pytest.mark.parametrize("rows", [1, 3, 8, 40])
def test_logits_inside_the_context_are_the_plain_ones(rows, one_thread):
    model = _model()
    ids = torch.randint(0, model.config.vocab_size, (rows, 1), generator=torch.Generator().manual_seed(rows))
    few_rows._FASTER.clear()
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with few_row_linears(model):
            ours = model(input_ids=ids).logits
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    decided = {k[0] for k in few_rows._FASTER}
    assert decided == ({few_rows.row_bucket(rows)} if rows <= few_rows.MAX_ROWS else set())  # prefill: nn.Linear's
    assert [few_rows.row_bucket(r) for r in (1, 2, 3, 4, 5, 8, 9, 16)] == [1, 2, 4, 4, 8, 8, 16, 16]


def test_both_layouts_and_the_bias_agree(one_thread):
    lin = torch.nn.Linear(24, 40, bias=True)
    x = torch.randn(2, 3, 24)
    transposed_is_faster(6, [lin.weight])  # decided either way: both layouts are checked below
    for won in (True, False):
        few_rows._FASTER[(8, 40, 24, torch.float32)] = won  # 6 rows: the bucket of 8
        got = few_rows._forward(lin, [lin.weight], x)
        assert got.shape == (2, 3, 40)
        torch.testing.assert_close(got, lin(x), rtol=1e-6, atol=1e-6)


def test_modules_are_restored_also_after_an_error(one_thread):
    model = _model()
    with pytest.raises(RuntimeError, match="inside"):
        with few_row_linears(model):
            assert all("forward" in vars(m) for m in _linears(model))
            raise RuntimeError("inside")
    assert _linears(model) and not any("forward" in vars(m) for m in _linears(model))
    assert type(model.lm_head).forward is torch.nn.Linear.forward
