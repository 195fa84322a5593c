"""Reward functions on the verifier, and the TRL adapter called the way TRL 1.16's GRPOTrainer
calls a reward function (`reward_func(prompts=, completions=, completion_ids=, **columns)`)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from empg.exceptions import InvalidInputError
from empg.rewards import (
    accuracy_reward,
    combined_reward,
    completion_text,
    format_reward,
    reference_answers,
    trl_reward_func,
)


def trl_kwargs(columns: dict[str, list]) -> dict:
    """The extra keyword arguments TRL 1.16 passes besides the dataset columns
    (GRPOTrainer._calculate_rewards)."""
    logged: dict[str, list] = {}
    return {
        **columns,
        "trainer_state": None,
        "log_extra": lambda name, values: logged.setdefault(name, values),
        "log_metric": lambda name, value: logged.setdefault(name, [value]),
    }


def test_completion_text_handles_strings_and_chat_messages():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "x \\boxed{2}"}]) == "x \\boxed{2}"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert completion_text(parts) == "ab"


def test_reference_answers_extracts_from_worked_solutions():
    refs = ["Janet has 3 + 4 = 7 eggs.\n#### 7", "So $\\boxed{\\frac{1}{2}}$.", 18, "\\frac{1}{3}"]
    assert reference_answers(refs) == ["7", "\\frac{1}{2}", "18", "\\frac{1}{3}"]


def test_accuracy_format_and_combined_rewards():
    completions = ["so \\boxed{7}", "the answer is 7", "\\boxed{8}", "I give up"]
    refs = ["7", "7", "7", "7"]
    np.testing.assert_array_equal(accuracy_reward(completions, refs), [1, 1, 0, 0])
    np.testing.assert_array_equal(format_reward(completions), [1, 0, 1, 0])
    np.testing.assert_allclose(combined_reward(completions, refs, format_weight=0.1), [1.1, 1.0, 0.1, 0.0], rtol=1e-6)
    with pytest.raises(InvalidInputError, match="references has 1 entries but 4"):
        accuracy_reward(completions, ["7"])


@pytest.mark.parametrize("column", ["answer", "solution"])
def test_trl_adapter_called_as_grpo_trainer_calls_it(column):
    f = trl_reward_func()
    # TRL passes these three by keyword; the signature must accept them and **columns.
    params = inspect.signature(f).parameters
    assert {"prompts", "completions", "completion_ids"} <= set(params)
    prompts = [[{"role": "user", "content": "What is 3 + 4?"}]] * 2 + [[{"role": "user", "content": "Half of 1?"}]] * 2
    completions = [
        [{"role": "assistant", "content": "3 + 4 = 7, so \\boxed{7}."}],
        [{"role": "assistant", "content": "It is 8.\n#### 8"}],
        [{"role": "assistant", "content": "The answer is $\\frac{1}{2}$."}],
        [{"role": "assistant", "content": "\\boxed{0.5}"}],
    ]
    refs = ["3 + 4 = <<3+4=7>>7\n#### 7"] * 2 + ["\\boxed{\\dfrac12}"] * 2
    out = f(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2, 3]] * 4,
        **trl_kwargs({column: refs, "question": ["q"] * 4}),
    )
    assert out == [1.0, 0.0, 1.0, 1.0]
    assert all(type(r) is float for r in out)


def test_trl_adapter_with_plain_text_completions_and_real_gsm8k_rows(shared_data):
    rows = [json.loads(line) for line in (shared_data / "gsm8k" / "test.jsonl").open()][:64]
    f = trl_reward_func(format_weight=0.0)
    completions = [r["answer"] for r in rows]  # the official worked solutions are correct completions
    out = f(prompts=[r["question"] for r in rows], completions=completions, completion_ids=None,
            **trl_kwargs({"answer": [r["answer"] for r in rows]}))
    assert out == [1.0] * 64
    shifted = completions[1:] + completions[:1]
    out = f(prompts=None, completions=shifted, completion_ids=None, **trl_kwargs({"answer": [r["answer"] for r in rows]}))
    finals = [r["answer"].rsplit("####", 1)[1].strip() for r in rows]
    expected = [1.0 if a == b else 0.0 for a, b in zip(finals[1:] + finals[:1], finals)]
    assert out == expected


def test_trl_adapter_names_missing_columns():
    f = trl_reward_func()
    with pytest.raises(InvalidInputError, match=r"no reference column .*\['question'\]"):
        f(prompts=["p"], completions=["c"], completion_ids=None, **trl_kwargs({"question": ["q"]}))
    g = trl_reward_func(reference_column="gold")
    with pytest.raises(InvalidInputError, match="gold"):
        g(prompts=["p"], completions=["c"], completion_ids=None, **trl_kwargs({"answer": ["1"]}))
    with pytest.raises(InvalidInputError, match="style"):
        trl_reward_func(style="nope")


@pytest.mark.slow
def test_trl_grpo_trainer_calls_the_adapter(tmp_path):
    """A real GRPOTrainer step (tiny random Llama, CPU) calls empg's reward function with its own
    keyword arguments; the rewards it gets are the verifier's on those completions."""
    pytest.importorskip("trl")
    from datasets import Dataset
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import GRPOConfig, GRPOTrainer

    import empg

    corpus = ["What is 2+2? 2+2=4, so the answer is \\boxed{4}.\n#### 4"] * 20
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        corpus,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<pad>")
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=2)
    )
    reward = trl_reward_func()
    calls = []

    def empg_accuracy(**kwargs):  # records what TRL passes, and what the real adapter returns
        out = reward(**kwargs)
        calls.append((kwargs, out))
        return out

    ds = Dataset.from_list([{"prompt": "What is 2+2?", "answer": "2+2=<<2+2=4>>4\n#### 4"}] * 4)
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, max_completion_length=8, num_generations=2,
                      per_device_train_batch_size=2, max_steps=1, report_to=[], save_strategy="no")
    GRPOTrainer(model=model, reward_funcs=[empg_accuracy], args=args, train_dataset=ds, processing_class=tok).train()
    assert calls
    kwargs, out = calls[0]
    assert {"prompts", "completions", "completion_ids", "answer"} <= set(kwargs)
    texts = [completion_text(c) for c in kwargs["completions"]]
    assert out == empg.verify_batch(texts, ["4"] * len(texts)).tolist()
    assert all(type(r) is float for r in out)
