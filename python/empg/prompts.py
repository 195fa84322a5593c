"""Prompt templates: how a question becomes the text the sampler continues.

Two kinds:

- ``"plain"``: an instruction, then ``Question: ...\\nAnswer: ...`` blocks (the few-shot pairs),
  then the question and ``Answer:``. Works with base and instruct models alike; the model tends to
  go on with a new ``Question:`` after its answer, so :attr:`PromptTemplate.stop` ends it there.
- ``"chat"``: the tokenizer's chat template, the few-shot pairs as prior user/assistant turns, the
  instruction at the head of every user turn.

A system prompt (``data.system_prompt``) is the chat's first (system) message, or the first
paragraph of a plain prompt. A conversational row (its prompt a list of ``{"role", "content"}``
messages) is rendered by :func:`render_messages` through the chat template as it is, the system
prompt put first when the row has none. Token ids come from :func:`encode`: a BOS token is added
exactly when the tokenizer adds one itself (``add_bos_token``) and the text is not a chat
template's output (the template decides there).

Every rendered prompt starts with :meth:`PromptTemplate.shared_prefix` (instruction and few-shot
part), which the sampler and the M-step may compute once and share between all prompts; the
prefix ends where the question text starts, so its tokens are a prefix of the prompt's tokens for
the usual BPE tokenizers (:meth:`PromptTemplate.shared_prefix_ids` checks and trims when not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from empg.exceptions import ConfigError, DataError

DEFAULT_INSTRUCTION = "Solve the problem. Put the final answer in \\boxed{}."
TEMPLATE_NAMES = ("plain", "chat")

# Few-shot pairs per task, written for this package (not taken from any test set). The bare arith
# examples are train-split problems of the embedded task; the word problem uses a name and item
# the generator never draws, so it cannot be a held-out problem (tests/test_prompts.py checks).
FEWSHOT: dict[str, tuple[tuple[str, str], ...]] = {
    "arith": (
        ("What is 7 + 6?", "7 + 6 = 13. The answer is \\boxed{13}."),
        ("What is 12 + 9?", "12 + 9 = 21. The answer is \\boxed{21}."),
        (
            "Nora has 9 crayons. She buys 4 more. How many crayons does Nora have now?",
            "Nora has 9 + 4 = 13 crayons. The answer is \\boxed{13}.",
        ),
        ("What is 5 × 8?", "5 × 8 = 40. The answer is \\boxed{40}."),
    ),
    "gsm8k": (
        (
            "A baker makes 24 muffins. She sells 15 of them and gives a third of the rest to a "
            "neighbour. How many muffins does she have left?",
            "After selling she has 24 - 15 = 9 muffins. A third of them is 9 / 3 = 3, so she "
            "keeps 9 - 3 = 6. The answer is \\boxed{6}.",
        ),
        (
            "A train ticket costs $12 and a bus ticket costs $5. How much do 3 train tickets "
            "and 2 bus tickets cost together?",
            "The train tickets cost 3 * 12 = 36 dollars and the bus tickets 2 * 5 = 10 "
            "dollars, so together 36 + 10 = 46 dollars. The answer is \\boxed{46}.",
        ),
    ),
    "math": (
        (
            "What is the sum of the roots of $x^2 - 5x + 6 = 0$?",
            "The equation factors as $(x-2)(x-3) = 0$, so the roots are $2$ and $3$ and their "
            "sum is $5$. The answer is $\\boxed{5}$.",
        ),
        (
            "Simplify $\\frac{3}{4} + \\frac{1}{6}$.",
            "With the common denominator $12$: $\\frac{9}{12} + \\frac{2}{12} = \\frac{11}{12}$. "
            "The answer is $\\boxed{\\frac{11}{12}}$.",
        ),
    ),
}


@dataclass(frozen=True)
class PromptTemplate:
    """How questions are rendered; see the module docstring."""

    name: str  # "chat" | "plain"
    instruction: str = DEFAULT_INSTRUCTION
    fewshot: tuple[tuple[str, str], ...] = ()  # (question, worked answer ending in \boxed{...})
    stop: tuple[str, ...] = ()  # stop strings for sampling
    system: str = ""  # system prompt ("" = none)

    def __post_init__(self) -> None:
        if self.name not in TEMPLATE_NAMES:
            raise ConfigError(f"template name must be one of {TEMPLATE_NAMES}, got {self.name!r}")

    # -- plain -------------------------------------------------------------------------------
    def _plain_head(self) -> str:
        parts = [self.system + "\n\n"] if self.system else []
        parts += [self.instruction + "\n\n"] if self.instruction else []
        parts += [f"Question: {q}\nAnswer: {a}\n\n" for q, a in self.fewshot]
        return "".join(parts) + "Question:"

    # -- chat --------------------------------------------------------------------------------
    def _user_turn(self, question: str) -> str:
        return f"{self.instruction}\n\n{question}" if self.instruction else question

    def messages(self, question: str) -> list[dict[str, str]]:
        """The chat messages of ``question``: system prompt, few-shot turns, the question's turn."""
        messages: list[dict[str, str]] = [{"role": "system", "content": self.system}] if self.system else []
        for q, a in self.fewshot:
            messages.append({"role": "user", "content": self._user_turn(q)})
            messages.append({"role": "assistant", "content": a})
        messages.append({"role": "user", "content": self._user_turn(question)})
        return messages

    def _chat(self, question: str, tokenizer: Any) -> str:
        return _apply_chat(tokenizer, self.messages(question), "template 'chat'")

    # -- public ------------------------------------------------------------------------------
    def render(self, question: str, tokenizer: Any = None) -> str:
        """The prompt text for ``question`` (the sampler tokenizes it without special tokens
        added again: a chat template already has them)."""
        if self.name == "plain":
            return f"{self._plain_head()} {question}\nAnswer:"
        return self._chat(question, tokenizer)

    def shared_prefix(self, tokenizer: Any = None) -> str:
        """The text every rendered prompt starts with: instruction and few-shot part, up to where
        the question goes. For ``chat`` it is found by rendering two different probe questions
        and cutting at the first one (so it holds whatever the tokenizer's template does)."""
        if self.name == "plain":
            return self._plain_head()
        probe_a, probe_b = "\x00probe-A\x00", "\x01probe-B\x01"
        text_a, text_b = self._chat(probe_a, tokenizer), self._chat(probe_b, tokenizer)
        cut = text_a.find(probe_a)
        common = 0
        for ca, cb in zip(text_a, text_b):
            if ca != cb:
                break
            common += 1
        return text_a[: min(cut if cut >= 0 else common, common)]

    def shared_prefix_ids(self, tokenizer: Any, questions: tuple[str, ...] = ()) -> list[int]:
        """Token ids of :meth:`shared_prefix`, trimmed so they are a prefix of the token ids of
        every rendered prompt (checked on ``questions`` plus two probes): a token that could merge
        with the question's first characters is left to the per-prompt part."""
        prefix = tokenizer(self.shared_prefix(tokenizer), add_special_tokens=False)["input_ids"]
        checks = questions or ("What is 1 + 1?", "Tom has 3 apples.")
        n = len(prefix)
        for q in checks:
            full = tokenizer(self.render(q, tokenizer), add_special_tokens=False)["input_ids"]
            while n and full[:n] != prefix[:n]:
                n -= 1
        return list(prefix[:n])


def _apply_chat(tokenizer: Any, messages: list[dict[str, Any]], what: str) -> str:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{what} needs a tokenizer with a chat template (use template 'plain' for "
                          "base models, or rows whose prompt is text)")
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def render_messages(messages: Sequence[dict[str, Any]], tokenizer: Any, *, system: str = "",
                    where: str = "a conversational row") -> str:
    """A conversational prompt (``[{"role": ..., "content": ...}, ...]``) through the tokenizer's
    chat template, ready for the assistant's turn; ``system`` goes first when it has no system
    message. A malformed message is a :class:`DataError` naming ``where``."""
    msgs = list(messages)
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
            raise DataError(f"{where}: message {i} is not a {{'role', 'content'}} mapping: {m!r}")
    if system and not (msgs and msgs[0]["role"] == "system"):
        msgs.insert(0, {"role": "system", "content": system})
    return _apply_chat(tokenizer, msgs, where)


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts a BOS token in front of a text by itself (``add_bos_token``, or
    its post-processor): then a prompt the model sees must start with one, as in its training."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def encode(tokenizer: Any, texts: Sequence[str], *, templated: bool) -> list[list[int]]:
    """Token ids of prompts. Special tokens are never added twice: a chat template's output
    (``templated``) already holds what the template wants (its BOS included), and a plain text
    gets the tokenizer's BOS exactly when :func:`adds_bos` says the tokenizer expects one."""
    ids = [list(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    if not templated and ids and adds_bos(tokenizer):
        bos = int(tokenizer.bos_token_id)
        ids = [x if x[:1] == [bos] else [bos, *x] for x in ids]
    return ids


def load_fewshot(path: str | Path) -> tuple[tuple[str, str], ...]:
    """Worked examples from a jsonl file of ``{"question": ..., "answer": ...}`` rows (the answer a
    worked solution), in file order; a bad row is a :class:`DataError` naming the file and row."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config key 'data.fewshot_file': no file at {str(file)!r}")
    pairs: list[tuple[str, str]] = []
    for no, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{file}, row {no}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("question", "answer")):
            raise DataError(f"{file}, row {no}: expected text fields 'question' and 'answer'")
        pairs.append((row["question"], row["answer"]))
    return tuple(pairs)


def get_template(
    name: str, *, fewshot: int = 0, task: str = "math", instruction: str | None = None,
    system: str = "", examples: Sequence[tuple[str, str]] | None = None,
) -> PromptTemplate:
    """A template by name with ``fewshot`` worked examples for ``task`` ("math", "gsm8k" or
    "arith"), or from ``examples`` when given. ``get_template("plain", fewshot=2, task="arith")``
    is the embedded default."""
    if task not in FEWSHOT:
        raise ConfigError(f"task must be one of {tuple(FEWSHOT)}, got {task!r}")
    pool = FEWSHOT[task] if examples is None else tuple(examples)
    if not 0 <= fewshot <= len(pool):
        raise ConfigError(f"fewshot for task {task!r} must be in 0..{len(pool)}, got {fewshot}")
    # A plain prompt's model goes on with a new "Question:"; short arith answers also end at a
    # blank line, worked math solutions may contain one.
    stop: tuple[str, ...] = ()
    if name == "plain":
        stop = ("\nQuestion:", "\n\n") if task == "arith" else ("\nQuestion:",)
    return PromptTemplate(
        name=name,
        instruction=DEFAULT_INSTRUCTION if instruction is None else instruction,
        fewshot=pool[:fewshot],
        stop=stop,
        system=system,
    )


__all__ = ["DEFAULT_INSTRUCTION", "FEWSHOT", "TEMPLATE_NAMES", "PromptTemplate", "adds_bos", "encode",
           "get_template", "load_fewshot", "render_messages"]
