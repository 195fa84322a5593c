"""Behaviour counts from the Rust core equal the Python ``re`` patterns they replaced, on the real
GSM8K and MATH solutions and on edge cases of case, word boundaries and Unicode."""

from __future__ import annotations

import json

import reference as ref
from empg import _core
from empg.metrics import BEHAVIOURS, RolloutSummary, behaviour_counts


def test_same_counts_as_the_python_patterns_on_real_solutions(shared_data):
    texts = []
    for path, field in ((shared_data / "gsm8k" / "train.jsonl", "answer"),
                        (shared_data / "math" / "train.jsonl", "solution")):
        texts += [json.loads(line)[field] for line in path.read_text().splitlines() if line.strip()]
    assert len(texts) > 10_000
    want = ref.behaviour_counts(texts)
    assert behaviour_counts(texts) == want
    assert all(c > 0 for c in want.values())  # every pattern fires on real text
    # Text by text, too (a count can hide two opposite differences).
    for name, pat in ref.BEHAVIOURS.items():
        flags = [bool(pat.search(t)) for t in texts[:3000]]
        got = [behaviour_counts([t])[name] == 1 for t in texts[:3000]]
        assert got == flags, name


def test_edge_cases_match_python():
    texts = ["FIRST we add", "thence", "Step 3: x", "step3", "re-check", "unchecked", "Let me redo it",
             "let me re", "That's wrong", "thats incorrect", "double check", "double-check",
             "plugging it back", "plug back", "sub-problems", "subproblem", "éthen", "x→then",
             "ÉTAPE first", "Wait—no", "_then_", "then_", "١٢ step ٣", "", "confirmed.", "confirmation"]
    for t in texts:
        assert behaviour_counts([t]) == ref.behaviour_counts([t]), t
    assert list(BEHAVIOURS) == list(ref.BEHAVIOURS) == list(_core.BEHAVIOURS)


def test_summary_counts_and_rates():
    texts = ["First, then check.", "Wait, actually no.", "nothing"]
    s = RolloutSummary.of([1, 0, 0], [3, 4, 1], [False] * 3, [1 / 3], [False], texts, {})
    assert s.behaviours == {"decomposition": 1, "verification": 1, "backtracking": 1}
    assert s.stats()["behaviour/backtracking"] == 1 / 3
    assert behaviour_counts([]) == {k: 0 for k in BEHAVIOURS}
