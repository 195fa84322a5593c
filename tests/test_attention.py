"""Every attention path of :func:`attention.token_logprobs` (``benches/attention.py``, the GPU
check's log-probs) gives the log-probs of separate per-sequence forwards, on a tiny real
LlamaForCausalLM built from a config."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from empg import build_microbatch, flatten_sequences

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))

from attention import (  # noqa: E402
    bucket_sequences,
    choose_path,
    flash_attn_available,
    token_logprobs,
)
from empg.exceptions import ConfigError, InvalidInputError

transformers = pytest.importorskip("transformers")
import tiny_models  # noqa: E402


def tiny_llama(attn: str = "sdpa") -> torch.nn.Module:
    model = tiny_models.tiny_llama(vocab_size=97, hidden_size=32, intermediate_size=64).to(torch.float64)
    model.set_attn_implementation(attn)
    return model.eval()


def random_microbatch(lengths: list[int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, 97, size=n) for n in lengths]
    flat = flatten_sequences(seqs)
    prompt_lens = np.ones(len(seqs), dtype=np.int64)
    weights = np.ones(len(seqs), dtype=np.float32)
    return build_microbatch(flat.tokens, flat.offsets, prompt_lens, weights, np.arange(len(seqs)))


def reference_logprobs(model: torch.nn.Module, mb: dict[str, np.ndarray]) -> torch.Tensor:
    """Each sequence run on its own, no packing, no padding."""
    ids = torch.as_tensor(mb["input_ids"])
    cu = mb["cu_seqlens"]
    out = []
    for s in range(len(cu) - 1):
        seq = ids[cu[s] : cu[s + 1]]
        logits = model(input_ids=seq[None]).logits[0]
        lp = torch.log_softmax(logits.double(), -1)[:-1].gather(-1, seq[1:, None])[:, 0]
        out.append(torch.cat([torch.zeros(1, dtype=lp.dtype), lp]))
    return torch.cat(out)


def available_paths() -> list[str]:
    paths = ["packed_sdpa", "padded_buckets"]
    if torch.cuda.is_available() and flash_attn_available():
        paths.append("flash_varlen")
    return paths


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("path", ["packed_sdpa", "padded_buckets"])
@pytest.mark.parametrize("lengths", [[7, 1, 12, 3, 12], [20], [2, 2, 2, 9]])
def test_paths_match_separate_forwards(attn: str, path: str, lengths: list[int]) -> None:
    model = tiny_llama(attn)
    mb = random_microbatch(lengths, seed=sum(lengths))
    with torch.no_grad():
        expected = reference_logprobs(model, mb)
        got = token_logprobs(model, mb, path=path)
    assert got.shape == (sum(lengths),)
    assert got.dtype == torch.float32
    starts = torch.as_tensor(mb["cu_seqlens"][:-1], dtype=torch.long)
    assert torch.all(got[starts] == 0)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


def test_auto_path_matches_and_is_a_known_path() -> None:
    model = tiny_llama()
    lengths = [5, 9, 3, 14, 6, 6]
    mb = random_microbatch(lengths, seed=3)
    chosen = choose_path(model, np.asarray(lengths), torch.device("cpu"))
    assert chosen in available_paths()
    with torch.no_grad():
        torch.testing.assert_close(
            token_logprobs(model, mb).double(), reference_logprobs(model, mb), atol=1e-5, rtol=1e-5
        )


def test_gradients_agree_between_paths() -> None:
    """The M-step differentiates these log-probs: both CPU paths give the same gradient."""
    mb = random_microbatch([6, 11, 4], seed=11)
    grads = []
    for path in ["packed_sdpa", "padded_buckets"]:
        model = tiny_llama()
        token_logprobs(model, mb, path=path).sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]))
    assert torch.isfinite(grads[0]).all()
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-6)


def test_choice_prefers_buckets_for_many_short_sequences_in_a_long_buffer() -> None:
    model = tiny_llama()
    cpu = torch.device("cpu")
    assert choose_path(model, np.full(64, 256), cpu) == "padded_buckets"
    assert choose_path(model, np.array([30]), cpu) == "packed_sdpa"


def test_bucket_sequences_covers_every_index_once_under_the_cap() -> None:
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 200, size=300)
    cap = int(lengths.sum()) // 7
    buckets = bucket_sequences(lengths, cap)
    flat = np.sort(np.concatenate(buckets))
    assert np.array_equal(flat, np.arange(len(lengths)))
    for b in buckets:
        assert len(b) * lengths[b].max() <= max(cap, lengths[b].max())


def test_selected_logprobs_chunks_equal_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    import attention

    torch.manual_seed(1)
    hidden = torch.randn(11, 5)
    head = torch.nn.Linear(5, 13, bias=False)
    targets = torch.randint(0, 13, (11,))
    full = attention.selected_logprobs(hidden, targets, head)
    monkeypatch.setattr(attention, "LOGPROB_CHUNK", 3)
    torch.testing.assert_close(attention.selected_logprobs(hidden, targets, head), full)
    direct = torch.log_softmax(head(hidden), -1).gather(-1, targets[:, None])[:, 0]
    torch.testing.assert_close(full, direct)
    torch.testing.assert_close(attention.selected_logprobs(head(hidden), targets), direct)


def test_bad_microbatches_raise_naming_the_field() -> None:
    model = tiny_llama()
    mb = random_microbatch([4, 5], seed=0)
    broken = dict(mb, position_ids=np.arange(9))
    with pytest.raises(InvalidInputError, match="position_ids"):
        token_logprobs(model, broken)
    with pytest.raises(InvalidInputError, match="cu_seqlens"):
        token_logprobs(model, dict(mb, cu_seqlens=np.array([0, 4, 8], dtype=np.int32)))
    with pytest.raises(InvalidInputError, match="input_ids"):
        token_logprobs(model, {k: v for k, v in mb.items() if k != "input_ids"})
    with pytest.raises(ConfigError, match="not one of"):
        token_logprobs(model, mb, path="ring")
    if not (torch.cuda.is_available() and flash_attn_available()):
        with pytest.raises(ConfigError, match="flash_attn"):
            token_logprobs(model, mb, path="flash_varlen")


@pytest.mark.gpu
def test_flash_varlen_matches_on_cuda() -> None:
    if not flash_attn_available():
        pytest.skip("flash_attn is not installed")
    model = tiny_llama("flash_attention_2").to("cuda", torch.bfloat16)
    mb = random_microbatch([7, 1, 12, 3, 12], seed=2)
    with torch.no_grad():
        got = token_logprobs(model, mb, path="flash_varlen")
        want = token_logprobs(model, mb, path="padded_buckets")
    torch.testing.assert_close(got, want, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("path", ["packed_sdpa", "padded_buckets"])
def test_masked_form_keeps_loss_positions_in_order(path: str) -> None:
    from attention import masked_token_logprobs

    model = tiny_llama()
    mb = random_microbatch([6, 3, 9], seed=4)
    with torch.no_grad():
        full = token_logprobs(model, mb, path=path)
        got = masked_token_logprobs(
            model,
            torch.as_tensor(mb["input_ids"]),
            torch.as_tensor(mb["position_ids"]),
            torch.as_tensor(mb["loss_mask"]),
            path=path,
        )
    mask = torch.as_tensor(mb["loss_mask"])
    assert got.shape == (int(mask.sum()),)
    torch.testing.assert_close(got, full[mask])
    with torch.no_grad():
        only = token_logprobs(model, mb, path=path, targets=mask)
    assert torch.all(only[~mask] == 0)
    torch.testing.assert_close(only[mask], full[mask])
