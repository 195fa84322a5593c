"""Reward functions with TRL's calling convention (empg.scoring): how several combine, None as
"no reward", the built-in verifier and format rewards, import paths, and the named errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from empg.exceptions import ConfigError, RewardError
from empg.scoring import THINK_PATTERN, Batch, Rewards, import_reward, make_rewards, regex_reward


def batch(completions: list, **columns: list) -> Batch:
    n = len(completions)
    return Batch(prompts=[f"p{i}" for i in range(n)], completions=completions,
                 completion_ids=[[i] for i in range(n)], columns=columns,
                 rows=[f"train_dataset row {i + 1}" for i in range(n)])


def test_weighted_rewards_sum_over_the_functions_that_scored():
    def f(completions, **kw):
        return [1.0, None, 0.0, None]

    def g(completions, **kw):
        return [0.5, 0.5, None, None]

    scores = Rewards([f, g], weights=[2.0, 1.0])(batch(["a", "b", "c", "d"]))
    got = list(scores.total)
    assert got[:3] == [2.0 * 1.0 + 0.5, 0.5, 0.0] and math.isnan(got[3])  # none scored d: unscored
    stats = scores.stats()
    assert stats["reward/unscored"] == 1 and stats["reward/f"] == 0.5 and stats["reward/g"] == 0.5


def test_the_verifier_is_the_default_and_reads_the_reference_column():
    b = batch(["so \\boxed{7}", "it is 8", [{"role": "assistant", "content": "\\boxed{7}"}]],
              answer=["7", "7", "Janet ... #### 7"])
    assert list(make_rewards([], None)(b).total) == [1.0, 0.0, 1.0]
    b = batch(["\\boxed{3}"], target=["3"])
    assert list(make_rewards(["verifier"], None, reference_column="target")(b).total) == [1.0]


def test_format_reward_and_import_paths():
    f = regex_reward(THINK_PATTERN)
    assert f(completions=["<think>a\nb</think> 4", "4 <think>a</think>", "<think></think>4"]) == [1.0, 0.0, 0.0]
    from trl.rewards import think_format_reward

    assert import_reward("trl.rewards:think_format_reward") is think_format_reward
    assert import_reward("trl.rewards.think_format_reward") is think_format_reward
    with pytest.raises(ConfigError, match="reward.funcs.*cannot import 'no_such_mod'"):
        import_reward("no_such_mod:f")
    with pytest.raises(ConfigError, match="module 'trl.rewards' has no 'nope'"):
        import_reward("trl.rewards:nope")
    with pytest.raises(ConfigError, match="reward.format_pattern"):
        regex_reward("(")
    with pytest.raises(ConfigError, match="reward.weights.*2 weights for 1"):
        make_rewards(["format"], [1.0, 2.0])


def test_each_bad_reward_names_the_function_and_the_row():
    def raises_on_b(completions, **kw):
        return [1.0 if c != "b" else {}["missing"] for c in completions]

    def short(completions, **kw):
        return [1.0]

    def nan(completions, **kw):
        return [0.0, float("nan"), 0.0]

    def text(completions, **kw):
        return [0.0, "high", 0.0]

    b = batch(["a", "b", "c"])
    for f, msg in [(raises_on_b, r"'raises_on_b' raised KeyError.*first failing: train_dataset row 2, completion 1"),
                   (short, r"'short' returned 1 values for 3 completions \(rows train_dataset row 1 \.\. "),
                   (nan, r"'nan' returned nan for train_dataset row 2 \(completion 1\); use None"),
                   (text, r"'text' returned 'high' for train_dataset row 2")]:
        with pytest.raises(RewardError, match=msg):
            Rewards([f])(b)


def test_the_verifier_fast_path_returns_its_array():
    b = batch(["\\boxed{1}"] * 4, answer=["1", "2", "1", "2"])
    total = make_rewards([], None)(b).total
    assert total.dtype == np.float64 and list(total) == [1.0, 0.0, 1.0, 0.0]
