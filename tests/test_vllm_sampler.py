"""The vLLM sampler's conversions, against vLLM's real classes (skipped where vLLM is absent), its
version gate, and (on CUDA) a real colocated engine."""

from __future__ import annotations

import sys

import pytest

from empg.exceptions import ConfigError, TrainingError
from empg.sampling import Rollout, Sampler, SamplingParams
from empg.samplers.vllm import ALLOW_ANY_VLLM_ENV, SUPPORTED_VLLM, check_vllm_version, import_vllm


def test_missing_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # what Python does for a package that is absent
    with pytest.raises(ImportError, match=r"empg\[vllm\]"):
        import_vllm()


def test_version_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = SUPPORTED_VLLM
    check_vllm_version(".".join(map(str, low)) + ".0")
    check_vllm_version(".".join(map(str, low)) + ".2.dev3+g1234abc")
    monkeypatch.delenv(ALLOW_ANY_VLLM_ENV, raising=False)
    for bad in [f"{low[0]}.{low[1] - 1}.9", f"{high[0]}.{high[1]}.0", "1.0.0"]:
        with pytest.raises(ConfigError, match=r"empg\[vllm\]") as err:
            check_vllm_version(bad)
        assert bad in str(err.value)
    monkeypatch.setenv(ALLOW_ANY_VLLM_ENV, "1")
    check_vllm_version("1.0.0")


vllm = pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'empg[vllm]')")
from vllm.logprobs import Logprob  # noqa: E402
from vllm.outputs import CompletionOutput, RequestOutput  # noqa: E402

from empg.samplers.vllm_io import rollouts_from_outputs, to_vllm_sampling_params  # noqa: E402


def test_installed_vllm_is_supported() -> None:
    check_vllm_version(vllm.__version__)


@pytest.mark.parametrize("logprobs", [False, True])
def test_sampling_params_read_back_from_vllm(logprobs: bool) -> None:
    ours = SamplingParams(
        n=6, temperature=0.7, top_p=0.9, max_new_tokens=48, stop=("\n\n", "Question:"), seed=13, return_logprobs=logprobs
    )
    theirs = to_vllm_sampling_params(ours)
    assert isinstance(theirs, vllm.SamplingParams)
    assert theirs.n == ours.n
    assert theirs.temperature == pytest.approx(ours.temperature)
    assert theirs.top_p == pytest.approx(ours.top_p)
    assert theirs.max_tokens == ours.max_new_tokens
    assert list(theirs.stop) == list(ours.stop)
    assert theirs.include_stop_str_in_output is False  # text cut before the stop, as the HF sampler
    assert theirs.seed == ours.seed
    assert theirs.logprobs == (0 if logprobs else None)


def test_sampling_params_defaults_without_stop_or_seed() -> None:
    theirs = to_vllm_sampling_params(SamplingParams())
    assert not theirs.stop
    assert theirs.seed is None
    assert theirs.logprobs is None
    assert theirs.max_tokens == SamplingParams().max_new_tokens


def completion(index: int, ids: list[int], reason: str | None, lps: list[float] | None = None) -> CompletionOutput:
    logprobs = None
    if lps is not None:
        logprobs = [{t: Logprob(logprob=lp, rank=1), t + 1: Logprob(logprob=lp - 1.0, rank=2)} for t, lp in zip(ids, lps)]
    return CompletionOutput(
        index=index,
        text="".join(chr(97 + t % 26) for t in ids),
        token_ids=ids,
        cumulative_logprob=sum(lps) if lps else None,
        logprobs=logprobs,
        finish_reason=reason,
    )


def request(rid: str, prompt: list[int], outs: list[CompletionOutput]) -> RequestOutput:
    return RequestOutput(
        request_id=rid, prompt=None, prompt_token_ids=prompt, prompt_logprobs=None, outputs=outs, finished=True
    )


def test_request_outputs_become_grouped_rollouts() -> None:
    prompts = [[1, 2, 3], [4, 5]]
    params = SamplingParams(n=2, return_logprobs=True)
    outputs = [
        # completions out of index order: rollouts follow the index
        request("a", prompts[0], [completion(1, [7, 8], "length", [-0.5, -1.5]), completion(0, [9], "stop", [-0.25])]),
        request("b", prompts[1], [completion(0, [10, 11, 12], "stop", [-1.0, -2.0, -3.0]), completion(1, [], "stop", [])]),
    ]
    rollouts = rollouts_from_outputs(outputs, prompts, params)
    assert all(isinstance(r, Rollout) for r in rollouts)
    assert [r.group for r in rollouts] == [0, 0, 1, 1]
    assert [r.prompt_ids for r in rollouts] == [prompts[0], prompts[0], prompts[1], prompts[1]]
    assert [r.completion_ids for r in rollouts] == [[9], [7, 8], [10, 11, 12], []]
    assert [r.finish_reason for r in rollouts] == ["stop", "length", "stop", "stop"]
    assert rollouts[1].text == outputs[0].outputs[0].text
    assert rollouts[1].sampler_logprobs == [-0.5, -1.5]
    assert rollouts[2].sampler_logprobs == [-1.0, -2.0, -3.0]
    without = rollouts_from_outputs(outputs, prompts, SamplingParams(n=2))
    assert all(r.sampler_logprobs is None for r in without)


def test_bad_outputs_raise_naming_the_request() -> None:
    prompts = [[1, 2]]
    aborted = [request("r7", prompts[0], [completion(0, [3], "abort")])]
    with pytest.raises(TrainingError, match=r"'r7'.*'abort'"):
        rollouts_from_outputs(aborted, prompts, SamplingParams(n=1))
    short = [request("r8", prompts[0], [completion(0, [3], "stop")])]
    with pytest.raises(TrainingError, match=r"'r8'.*1 completions.*n=2"):
        rollouts_from_outputs(short, prompts, SamplingParams(n=2))
    with pytest.raises(TrainingError, match="2 prompts"):
        rollouts_from_outputs(short, [[1], [2]], SamplingParams(n=1))
    no_lp = [request("r9", prompts[0], [completion(0, [3], "stop")])]
    with pytest.raises(TrainingError, match="'r9'.*log-probs"):
        rollouts_from_outputs(no_lp, prompts, SamplingParams(n=1, return_logprobs=True))


@pytest.mark.gpu
@pytest.mark.slow
def test_colocated_engine_generates_sleeps_and_takes_new_weights(tmp_path) -> None:
    import torch
    import transformers

    from empg.samplers.vllm import VLLMSampler

    config = transformers.LlamaConfig(
        vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).cuda()
    model.save_pretrained(tmp_path)
    sampler = VLLMSampler(str(tmp_path), skip_tokenizer_init=True, gpu_memory_utilization=0.2, max_model_len=256)
    assert isinstance(sampler, Sampler)
    params = SamplingParams(n=3, max_new_tokens=8, temperature=1.0, seed=0, return_logprobs=True)
    rollouts = sampler.generate([[1, 2, 3], [4, 5]], params)
    assert [r.group for r in rollouts] == [0, 0, 0, 1, 1, 1]
    assert all(0 < len(r.completion_ids) <= 8 for r in rollouts)
    probe = [[1, 2, 3, 4, 5, 6, 7, 8]]
    before = sampler.prompt_logprobs(probe)[0]
    sampler.sleep()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    sampler.wake_up()
    sampler.sync_weights(model)
    after = sampler.prompt_logprobs(probe)[0]
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor(probe, device="cuda")).logits[0].float(), -1)
    want = [0.0] + [float(lp[j - 1, probe[0][j]]) for j in range(1, len(probe[0]))]
    assert after != pytest.approx(before, abs=1e-3)
    assert after == pytest.approx(want, abs=5e-2)


def test_prompt_logprobs_pick_the_token_at_each_position() -> None:
    from empg.samplers.vllm_io import sequence_logprobs

    seq = [5, 6, 7, 8]
    positions = [None] + [{t: Logprob(logprob=-0.1 * t, rank=1), t + 100: Logprob(logprob=-9.0, rank=2)} for t in seq[1:]]
    out = RequestOutput(
        request_id="p0", prompt=None, prompt_token_ids=seq, prompt_logprobs=positions, outputs=[], finished=True
    )
    assert sequence_logprobs(out, seq) == pytest.approx([0.0] + [-0.1 * t for t in seq[1:]])
    with pytest.raises(TrainingError, match="'p0'.*token 2"):
        sequence_logprobs(out, [5, 6, 99, 8])
    with pytest.raises(TrainingError, match="'p0'.*3 tokens"):
        sequence_logprobs(out, seq[:3])



def test_auto_does_not_take_a_vllm_built_for_another_platform() -> None:
    from vllm.platforms import current_platform

    from empg.samplers import choose_sampler, vllm_problem

    other = "cuda" if current_platform.is_cpu() else "cpu"
    assert "the installed vLLM runs on" in (vllm_problem(other) or "")
    assert choose_sampler("auto", "cpu").name == "transformers"  # the CPU rule, vLLM or not
