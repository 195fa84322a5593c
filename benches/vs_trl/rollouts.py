"""Realistic rollouts for the CPU-side scaling view: real GSM8K / MATH worked solutions, perturbed.

Group ``g`` (K completions) asks one question, alternately from GSM8K train and MATH test (whose
reference answer is the content of the solution's last ``\\boxed{}``). Each completion is the
question's worked solution written as a model would (GSM8K's ``<<a=b>>`` calculator notes
removed, its ``#### N`` line turned into "The answer is \\boxed{N}."), then perturbed by a seeded draw:

* 50%: kept correct;
* 40%: the final answer changed (GSM8K: N plus 1..9; MATH: the \\boxed{} content replaced by the
  answer of another problem that reads differently) — wrong;
* 10%: cut before the final answer — no answer, wrong.

Sentences of the body are also dropped at random so no two completions are identical. ``labels``
holds the truth of each completion by construction.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from empg.data import default_data_dir

_CALC = re.compile(r"<<[^>]*>>")


@dataclass
class Rollouts:
    questions: list[str]  # one per group
    answers: list[str]  # bare reference answer per group
    texts: list[str]  # one per completion, groups consecutive
    labels: list[bool]  # completion i is correct by construction
    group_size: int

    @property
    def groups(self) -> list[int]:
        return [i // self.group_size for i in range(len(self.texts))]


def _read(path: Path, limit: int) -> list[dict[str, str]]:
    rows = []
    with path.open() as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def _last_boxed_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the content of the last \\boxed{...} (nested braces), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return i, j
    return None


def _body_variant(body: str, rng: random.Random) -> str:
    sentences = re.split(r"(?<=[.!?\n])\s+", body.strip())
    kept = [s for s in sentences if rng.random() > 0.15] or sentences[:1]
    return " ".join(kept)


def make(n: int, group_size: int = 8, seed: int = 0) -> Rollouts:
    """``n`` rollouts (``n`` a multiple of ``group_size``)."""
    if n % group_size:
        raise ValueError(f"n={n} is not a multiple of group_size={group_size}")
    d = default_data_dir()
    n_groups = n // group_size
    gsm = _read(d / "gsm8k" / "train.jsonl", (n_groups + 1) // 2)
    math = []
    for r in _read(d / "math" / "test.jsonl", 5000):
        span = _last_boxed_span(r["solution"])
        if span:  # the reference answer is the content of the solution's last \boxed{}
            math.append({**r, "answer": r["solution"][span[0]:span[1]]})
    rng = random.Random(seed)
    out = Rollouts([], [], [], [], group_size)
    for g in range(n_groups):
        if g % 2 == 0:
            row = gsm[(g // 2) % len(gsm)]
            body, final = row["answer"].rsplit("####", 1)
            answer = final.strip().replace(",", "")
            question, body = row["question"], _CALC.sub("", body)
            solution = body.strip() + f"\nThe answer is \\boxed{{{answer}}}."
        else:
            row = math[(g // 2) % len(math)]
            question, answer, solution = row["problem"], row["answer"], row["solution"]
        out.questions.append(question)
        out.answers.append(answer)
        span = _last_boxed_span(solution)
        assert span is not None
        head, tail = solution[: span[0]], solution[span[1]:]
        for _ in range(group_size):
            u = rng.random()
            text_head = _body_variant(head, rng) if rng.random() < 0.5 else head
            if u < 0.5:
                out.texts.append(text_head + answer + tail)
                out.labels.append(True)
            elif u < 0.9:
                out.texts.append(text_head + _wrong(answer, g, math, rng) + tail)
                out.labels.append(False)
            else:
                out.texts.append(head[: max(1, len(head) // 2)])
                out.labels.append(False)
    return out


def _wrong(answer: str, g: int, math: list[dict[str, str]], rng: random.Random) -> str:
    if re.fullmatch(r"-?\d+", answer):
        return str(int(answer) + rng.randint(1, 9))
    for _ in range(100):
        other = math[rng.randrange(len(math))]["answer"]
        if re.sub(r"\s", "", other) != re.sub(r"\s", "", answer):
            return other
    return answer + "+1"
