"""The decode-step Linear layouts (empg.samplers.few_rows): the same numbers as nn.Linear, only
inside the context, with every module restored afterwards (also after an error)."""

from __future__ import annotations

import pytest
import torch

from empg.samplers import few_rows
from empg.samplers.few_rows import few_row_linears, transposed_layout
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
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with few_row_linears(model):
            ours = model(input_ids=ids).logits
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    taken = {transposed_layout(rows, *m.weight.shape) for m in _linears(model)}
    assert taken == ({True, False} if 2 <= rows <= few_rows.MAX_ROWS else {False})  # the head, the down proj


def test_transposed_layout_and_the_bias_agree(one_thread):
    lin = torch.nn.Linear(24, 40, bias=True)
    x = torch.randn(2, 3, 24)
    assert transposed_layout(6, 40, 24) and not transposed_layout(6, 24, 40) and not transposed_layout(1, 40, 24)
    got = few_rows._forward(lin, x)
    assert got.shape == (2, 3, 40) and got.is_contiguous()
    torch.testing.assert_close(got, lin(x), rtol=1e-6, atol=1e-6)


def test_modules_are_restored_also_after_an_error(one_thread):
    model = _model()
    with pytest.raises(RuntimeError, match="inside"):
        with few_row_linears(model):
            assert all("forward" in vars(m) for m in _linears(model))
            raise RuntimeError("inside")
    assert _linears(model) and not any("forward" in vars(m) for m in _linears(model))
    assert type(model.lm_head).forward is torch.nn.Linear.forward
