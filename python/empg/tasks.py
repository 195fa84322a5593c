"""The embedded offline task: arithmetic problems generated from a seed, no data files, no network.

It exists so that ``empg-train`` can show learning on a laptop in minutes with the embedded
SmolLM2-135M-Instruct model (docs/embedded_task.md): every answer is an integer the verifier checks
exactly, and a difficulty knob moves from bare sums the small model half solves to two-step word
problems it rarely does.

Difficulties (``Problem.level``; ``Problem.subject`` names the family):

0. ``What is a + b?`` with a, b in 1..40 (``D0_MAX``; 395 held-out questions).
1. ``What is a + b?`` / ``What is a - b?`` with operands up to 100 (differences stay positive).
   Sums share the family ``add`` with difficulty 0: a sum is held out at every difficulty or none.
2. ``What is a × b?`` with a, b in 2..12, or ``What is a + b + c?`` with a, b, c in 1..30.
3. One-step word problems (buy more, give away, bags of, share equally).
4. Two-step word problems (buy then give, bags plus some, give to each, change from a bill).

**Splits are disjoint by construction**: each problem has a canonical key (its family and numbers,
operands sorted where the operation commutes, names and items ignored); a stable hash of the key
puts a quarter of all keys in ``"test"`` and the rest in ``"train"``. The same arithmetic can
therefore never appear in both splits, whatever the seeds. Train draws are i.i.d. (repeats allowed:
a small pool serves long runs); test draws are distinct questions, and asking for more than a pool
holds is an error that says how many there are.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

from empg.problem import Problem

SPLITS = ("train", "test")
DIFFICULTIES = (0, 1, 2, 3, 4)
D0_MAX = 40  # difficulty 0: a + b with a, b in 1..D0_MAX (enough sums for 256+ held-out questions)
TEST_FRACTION_DENOMINATOR = 4  # one key in four is held out
MAX_MISSES = 20_000  # fruitless draws in a row before a test pool counts as exhausted

_NAMES = ("Tom", "Anna", "Sam", "Lily", "Ben", "Mia", "Jack", "Emma", "Leo", "Zoe")
_PRONOUNS = {"Tom": "He", "Sam": "He", "Ben": "He", "Jack": "He", "Leo": "He"}
_ITEMS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "shells")


class _Draw(NamedTuple):
    family: str
    key: tuple[object, ...]  # canonical: decides the split
    question: str
    answer: int


def _pronoun(name: str) -> str:
    return _PRONOUNS.get(name, "She")


def _bare(family: str, op: str, nums: Sequence[int], answer: int, commutes: bool) -> _Draw:
    key = (family, *sorted(nums)) if commutes else (family, *nums)
    text = f" {op} ".join(str(x) for x in nums)
    return _Draw(family, key, f"What is {text}?", answer)


def _d0(rng: random.Random) -> _Draw:
    a, b = rng.randint(1, D0_MAX), rng.randint(1, D0_MAX)
    return _bare("add", "+", (a, b), a + b, commutes=True)


def _d1(rng: random.Random) -> _Draw:
    if rng.random() < 0.5:
        a, b = rng.randint(1, 100), rng.randint(1, 100)
        return _bare("add", "+", (a, b), a + b, commutes=True)
    a = rng.randint(2, 100)
    b = rng.randint(1, a - 1)
    return _bare("sub", "-", (a, b), a - b, commutes=False)


def _d2(rng: random.Random) -> _Draw:
    if rng.random() < 0.5:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return _bare("mul", "×", (a, b), a * b, commutes=True)
    a, b, c = rng.randint(1, 30), rng.randint(1, 30), rng.randint(1, 30)
    return _bare("add3", "+", (a, b, c), a + b + c, commutes=True)


def _who(rng: random.Random) -> tuple[str, str, str]:
    name = rng.choice(_NAMES)
    return name, _pronoun(name), rng.choice(_ITEMS)


def _d3(rng: random.Random) -> _Draw:
    name, he, items = _who(rng)
    kind = rng.randrange(4)
    if kind == 0:
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        q = f"{name} has {a} {items}. {he} buys {b} more. How many {items} does {name} have now?"
        return _Draw("word_add", ("word_add", *sorted((a, b))), q, a + b)
    if kind == 1:
        a = rng.randint(2, 50)
        b = rng.randint(1, a - 1)
        q = (
            f"{name} has {a} {items}. {he} gives {b} to a friend. "
            f"How many {items} does {name} have left?"
        )
        return _Draw("word_sub", ("word_sub", a, b), q, a - b)
    if kind == 2:
        a, b = rng.randint(2, 10), rng.randint(2, 10)
        q = (
            f"{name} buys {a} bags with {b} {items} in each bag. "
            f"How many {items} does {name} buy in total?"
        )
        return _Draw("word_mul", ("word_mul", *sorted((a, b))), q, a * b)
    each, friends = rng.randint(2, 10), rng.randint(2, 10)
    q = (
        f"{name} shares {each * friends} {items} equally among {friends} friends. "
        f"How many {items} does each friend get?"
    )
    return _Draw("word_div", ("word_div", each * friends, friends), q, each)


def _d4(rng: random.Random) -> _Draw:
    name, he, items = _who(rng)
    kind = rng.randrange(4)
    if kind == 0:
        a, b = rng.randint(1, 40), rng.randint(1, 40)
        c = rng.randint(1, a + b - 1)
        q = (
            f"{name} has {a} {items}. {he} buys {b} more and then gives {c} to a friend. "
            f"How many {items} does {name} have now?"
        )
        return _Draw("word_add_sub", ("word_add_sub", a, b, c), q, a + b - c)
    if kind == 1:
        a, b, c = rng.randint(2, 10), rng.randint(2, 10), rng.randint(1, 30)
        q = (
            f"{name} already has {c} {items} and buys {a} bags with {b} {items} in each bag. "
            f"How many {items} does {name} have now?"
        )
        return _Draw("word_mul_add", ("word_mul_add", *sorted((a, b)), c), q, a * b + c)
    if kind == 2:
        b, c = rng.randint(2, 6), rng.randint(2, 6)
        a = rng.randint(b * c + 1, b * c + 40)
        q = (
            f"{name} has {a} {items} and gives {b} to each of {c} friends. "
            f"How many {items} does {name} have left?"
        )
        return _Draw("word_sub_mul", ("word_sub_mul", a, b, c), q, a - b * c)
    price, count = rng.randint(2, 9), rng.randint(2, 5)
    bill = next(x for x in (10, 20, 50, 100) if x > price * count)
    q = (
        f"A shop sells {items} for ${price} each. {name} buys {count} and pays with a ${bill} "
        f"bill. How many dollars of change does {name} get?"
    )
    return _Draw("word_change", ("word_change", price, count, bill), q, bill - price * count)


_FAMILIES: dict[int, Callable[[random.Random], _Draw]] = {0: _d0, 1: _d1, 2: _d2, 3: _d3, 4: _d4}


def split_of_key(key: tuple[object, ...]) -> str:
    """``"test"`` or ``"train"`` for a canonical problem key, by a hash stable across runs and
    Python versions (not the salted built-in ``hash``)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") % TEST_FRACTION_DENOMINATOR == 0 else "train"


def arith_split_of(question: str) -> str | None:
    """The split a bare sum/difference/product question (``What is 3 + 5?``) belongs to, or
    ``None`` when the text is not one; used to check that few-shot examples are train problems."""
    body = question.strip()
    if not (body.startswith("What is ") and body.endswith("?")):
        return None
    parts = body[len("What is ") : -1].split()
    nums, ops = parts[0::2], set(parts[1::2])
    if not all(n.isdigit() for n in nums) or len(ops) != 1:
        return None
    values = [int(n) for n in nums]
    op = ops.pop()
    if op == "+" and len(values) == 2:
        return split_of_key(("add", *sorted(values)))
    if op == "+" and len(values) == 3:
        return split_of_key(("add3", *sorted(values)))
    if op == "-" and len(values) == 2:
        return split_of_key(("sub", *values))
    if op == "×" and len(values) == 2:
        return split_of_key(("mul", *sorted(values)))
    return None


def make_arith_problems(
    n: int, *, seed: int, difficulty: int = 0, split: str = "train"
) -> list[Problem]:
    """``n`` problems of one difficulty from the seeded stream of ``split``.

    Deterministic for ``(n, seed, difficulty, split)``; the first ``m`` problems of a call with
    ``n > m`` are those of the call with ``m`` (a longer run extends a shorter one).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if difficulty not in _FAMILIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    draw = _FAMILIES[difficulty]
    rng = random.Random(f"empg-arith/{split}/d{difficulty}/s{seed}")
    out: list[Problem] = []
    seen: set[str] = set()
    misses = 0  # draws in a row that gave nothing new: the pool is exhausted when this grows
    while len(out) < n:
        if misses > MAX_MISSES:
            raise ValueError(
                f"only {len(out)} distinct {split} problems found at difficulty {difficulty} "
                f"(asked for {n}); held-out questions are drawn without repeats, ask for fewer"
            )
        d = draw(rng)
        if split_of_key(d.key) != split or (split == "test" and d.question in seen):
            misses += 1
            continue
        misses = 0
        seen.add(d.question)
        out.append(
            Problem(
                id=f"arith/{split}/d{difficulty}/s{seed}/{len(out)}",
                question=d.question,
                answer=str(d.answer),
                source="arith",
                level=difficulty,
                subject=d.family,
            )
        )
    return out


def make_mixed_arith_problems(
    n: int, *, seed: int, difficulties: Sequence[int] = (0, 1), split: str = "train"
) -> list[Problem]:
    """``n`` problems spread evenly over ``difficulties`` and shuffled by ``seed``: a simple
    curriculum mix (e.g. mostly-solvable sums with some harder items that still give signal)."""
    if not difficulties:
        raise ValueError("difficulties must not be empty")
    k = len(difficulties)
    counts = [n // k + (1 if i < n % k else 0) for i in range(k)]
    out: list[Problem] = []
    for d, count in zip(difficulties, counts):
        out.extend(make_arith_problems(count, seed=seed, difficulty=d, split=split))
    random.Random(f"empg-arith-mix/{split}/s{seed}").shuffle(out)
    return out


__all__ = [
    "D0_MAX",
    "DIFFICULTIES",
    "SPLITS",
    "arith_split_of",
    "make_arith_problems",
    "make_mixed_arith_problems",
    "split_of_key",
]
