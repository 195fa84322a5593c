"""The embedded arithmetic task: determinism, answers recomputed from the question text, disjoint
splits, and the difficulty knob."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from empg.tasks import (
    D0_MAX,
    DIFFICULTIES,
    arith_split_of,
    make_arith_problems,
    make_mixed_arith_problems,
)


def solve(question: str) -> int:
    """Recompute the answer from the text alone, by the words the question uses."""
    nums = [int(x) for x in re.findall(r"\d+", question)]
    if question.startswith("What is "):
        ops = re.findall(r" ([+\-×]) ", question)
        assert len(ops) == len(nums) - 1
        total = nums[0]
        for op, x in zip(ops, nums[1:]):
            total = total + x if op == "+" else total - x if op == "-" else total * x
        return total
    if "more and then gives" in question:
        a, b, c = nums
        return a + b - c
    if "already has" in question:
        c, a, b = nums
        return c + a * b
    if "to each of" in question:
        a, b, c = nums
        return a - b * c
    if "change" in question:
        price, count, bill = nums
        return bill - price * count
    if "buys" in question and "more" in question:
        a, b = nums
        return a + b
    if "gives" in question:
        a, b = nums
        return a - b
    if "in each bag" in question:
        a, b = nums
        return a * b
    if "equally among" in question:
        a, b = nums
        assert a % b == 0, question
        return a // b
    raise AssertionError(f"unknown problem form: {question}")


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_answers_recompute_from_text(difficulty: int) -> None:
    for split, n in (("train", 400), ("test", 40)):
        problems = make_arith_problems(n, seed=1, difficulty=difficulty, split=split)
        assert len(problems) == n
        for p in problems:
            assert p.answer == str(solve(p.question)), p
            assert int(p.answer) >= 0 and p.level == difficulty and p.source == "arith"


def test_deterministic_and_seeded() -> None:
    a = make_arith_problems(50, seed=7, difficulty=3)
    assert a == make_arith_problems(50, seed=7, difficulty=3)
    assert a[:20] == make_arith_problems(20, seed=7, difficulty=3)  # longer extends shorter
    other = make_arith_problems(50, seed=8, difficulty=3)
    assert [p.question for p in a] != [p.question for p in other]
    assert len({p.id for p in a}) == 50


def canon(question: str) -> tuple[object, ...]:
    """A bare question's operator and operands, sorted unless it is a difference."""
    op = question.split()[3]
    nums = [int(x) for x in re.findall(r"\d+", question)]
    return (op, *(nums if op == "-" else sorted(nums)))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_splits_are_disjoint(difficulty: int) -> None:
    train = make_arith_problems(3000, seed=0, difficulty=difficulty, split="train")
    tests = [make_arith_problems(60, seed=s, difficulty=difficulty, split="test") for s in (0, 1)]
    test_questions = {p.question for t in tests for p in t}
    assert not test_questions & {p.question for p in train}
    if difficulty <= 2:  # not just the text: the same sum in either order is never in both
        assert not {canon(q) for q in test_questions} & {canon(p.question) for p in train}
    for t in tests:
        assert len({p.question for p in t}) == len(t)  # held-out draws never repeat


def test_held_out_share_and_exhaustion() -> None:
    # Difficulty 0 has D0_MAX ** 2 ordered sums; about a quarter of them are held out.
    pool = {f"What is {a} + {b}?" for a in range(1, D0_MAX + 1) for b in range(1, D0_MAX + 1)}
    held = {q for q in pool if arith_split_of(q) == "test"}
    assert 0.15 < len(held) / len(pool) < 0.35
    everything = make_arith_problems(len(held), seed=0, difficulty=0, split="test")
    assert {p.question for p in everything} == held
    with pytest.raises(ValueError, match=f"only {len(held)} distinct test problems"):
        make_arith_problems(len(held) + 1, seed=0, difficulty=0, split="test")


def test_difficulty_changes_problem_family() -> None:
    families = {
        d: Counter(p.subject for p in make_arith_problems(400, seed=0, difficulty=d))
        for d in DIFFICULTIES
    }
    assert set(families[0]) == {"add"}
    assert set(families[1]) == {"add", "sub"}
    assert set(families[2]) == {"mul", "add3"}
    assert set(families[3]) == {"word_add", "word_sub", "word_mul", "word_div"}
    assert set(families[4]) == {"word_add_sub", "word_mul_add", "word_sub_mul", "word_change"}
    def numbers(d: int) -> list[list[int]]:
        problems = make_arith_problems(200, seed=0, difficulty=d)
        return [[int(x) for x in re.findall(r"\d+", p.question)] for p in problems]

    assert max(map(max, numbers(0))) <= D0_MAX < max(map(max, numbers(1)))
    # Word problems: one step takes two numbers, two steps three.
    assert {len(ns) for ns in numbers(3)} == {2} and {len(ns) for ns in numbers(4)} == {3}
    for d in (3, 4):
        word = make_arith_problems(50, seed=0, difficulty=d)
        assert not any(p.question.startswith("What is ") for p in word)


def test_mixed_curriculum() -> None:
    mixed = make_mixed_arith_problems(31, seed=2, difficulties=(0, 1, 3))
    assert Counter(p.level for p in mixed) == Counter({0: 11, 1: 10, 3: 10})
    assert mixed == make_mixed_arith_problems(31, seed=2, difficulties=(0, 1, 3))
    assert [p.level for p in mixed] != sorted(p.level for p in mixed)  # shuffled, not blocked
    assert all(p.answer == str(solve(p.question)) for p in mixed)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split"):
        make_arith_problems(3, seed=0, split="dev")
    with pytest.raises(ValueError, match="difficulty"):
        make_arith_problems(3, seed=0, difficulty=9)
    with pytest.raises(ValueError, match="difficulties"):
        make_mixed_arith_problems(3, seed=0, difficulties=())
