"""Prompt templates: rendering, the shared prefix (text and tokens), few-shot hygiene."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empg.exceptions import ConfigError
from empg.prompts import FEWSHOT, PromptTemplate, get_template
from empg.tasks import DIFFICULTIES, arith_split_of, make_arith_problems

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def small_chat_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained here on a few sentences, with a ChatML template: a real
    tokenizer with a real chat template, built offline in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [q + " " + a for pairs in FEWSHOT.values() for q, a in pairs] * 3
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>")
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="module")
def smollm2_tokenizer() -> Any:
    """The embedded model's own tokenizer and chat template, read from its GGUF file."""
    pytest.importorskip("gguf")
    from empg.embedded import load_embedded_tokenizer

    try:
        return load_embedded_tokenizer()
    except ConfigError as e:
        pytest.skip(str(e))


def sample_questions() -> list[str]:
    qs = [p.question for d in DIFFICULTIES for p in make_arith_problems(3, seed=0, difficulty=d)]
    return qs + ["", "Question: trick?\nAnswer: 3", "Soit $x^2 = 4$, trouver $x$ — é ∑ 数"]


TEMPLATES = [
    get_template(name, fewshot=k, task=task)
    for name in ("plain", "chat")
    for task, k in (("arith", 2), ("arith", 0), ("math", 2), ("gsm8k", 1))
]


def test_plain_render_layout() -> None:
    t = get_template("plain", fewshot=2, task="arith")
    text = t.render("What is 3 + 4?")
    assert text.startswith(t.instruction + "\n\n")
    assert text.endswith("Question: What is 3 + 4?\nAnswer:")
    for q, a in FEWSHOT["arith"][:2]:
        assert f"Question: {q}\nAnswer: {a}\n\n" in text
    assert text.count("Question:") == 3 and "\\boxed{}" in t.instruction
    assert t.stop == ("\nQuestion:", "\n\n")
    assert get_template("plain", fewshot=1, task="math").stop == ("\nQuestion:",)
    assert get_template("plain", task="math").render("Q?").count("Question:") == 1


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: f"{t.name}-{len(t.fewshot)}")
def test_shared_prefix_is_a_prefix(template: PromptTemplate, small_chat_tokenizer: Any) -> None:
    prefix = template.shared_prefix(small_chat_tokenizer)
    assert prefix.endswith("Question:") if template.name == "plain" else prefix.endswith("\n\n")
    for q, _ in template.fewshot:
        assert q in prefix
    for q in sample_questions():
        text = template.render(q, small_chat_tokenizer)
        assert text.startswith(prefix) and q in text[len(prefix) :]


@settings(max_examples=60, deadline=None)
@given(question=st.text(max_size=60))
def test_shared_prefix_any_question(question: str) -> None:
    for template in TEMPLATES[:4]:  # plain; chat is covered with a real template above and below
        text = template.render(question)
        assert text.startswith(template.shared_prefix())
        assert text == template.shared_prefix() + f" {question}\nAnswer:"


def test_chat_needs_a_chat_template() -> None:
    with pytest.raises(ConfigError, match="chat template"):
        get_template("chat").render("Q?")
    with pytest.raises(ConfigError, match="template name"):
        PromptTemplate(name="fancy")
    with pytest.raises(ConfigError, match="fewshot"):
        get_template("plain", fewshot=99, task="arith")
    with pytest.raises(ConfigError, match="task"):
        get_template("plain", task="chess")


@pytest.mark.slow
def test_chat_prefix_with_smollm2_tokenizer(smollm2_tokenizer: Any) -> None:
    tok = smollm2_tokenizer
    template = get_template("chat", fewshot=2, task="arith")
    prefix = template.shared_prefix(tok)
    questions = sample_questions()
    ids = template.shared_prefix_ids(tok, tuple(questions))
    prefix_len = len(tok(prefix, add_special_tokens=False)["input_ids"])
    assert prefix_len - 2 <= len(ids) <= prefix_len  # at most a boundary token left out
    for q in questions:
        text = template.render(q, tok)
        assert text.startswith(prefix) and text.endswith("<|im_start|>assistant\n")
        assert tok(text, add_special_tokens=False)["input_ids"][: len(ids)] == ids
    # The few-shot pairs are prior turns: one assistant turn per example, then the question.
    assert template.render("Q?", tok).count("<|im_start|>assistant") == 3
    plain = get_template("plain", fewshot=2, task="arith")
    plain_ids = plain.shared_prefix_ids(tok, tuple(questions))
    assert tok.decode(plain_ids) == plain.shared_prefix()  # ends on a token boundary


def test_arith_fewshot_examples_are_not_test_problems() -> None:
    held_out = {
        p.question
        for d in DIFFICULTIES
        for seed in range(10)
        for p in make_arith_problems(40, seed=seed, difficulty=d, split="test")
    }
    for question, answer in FEWSHOT["arith"]:
        assert question not in held_out
        if question.startswith("What is "):
            assert arith_split_of(question) == "train", question
        result = re.findall(r"= (\d+)", answer)[-1]  # the worked answer boxes its own result
        assert answer.endswith("\\boxed{" + result + "}.")
