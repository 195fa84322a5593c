"""The peers of empg's verifier in the benchmark and in the corpus labelling (no empg here).

* `trl_math_verify`: math-verify exactly as TRL 1.16's `trl.rewards.accuracy_reward` calls it
  (that function itself is called, one completion at a time, as a chat message): the reference
  parsed with math-verify's default extraction, the completion with
  `LatexExtractionConfig(normalization_config=NormalizationConfig(units=True),
  boxed_match_priority=0, try_extract_without_anchor=False)`, `extraction_mode="first_match"`,
  and `verify(gold, answer)`. A reference math-verify cannot parse gets TRL's `None` (skip),
  counted here as "not equivalent".
* `regex_baseline`: the trivial ten-line grader: last `\\boxed{}`, else the last number; equal
  strings after dropping spaces, `$`, commas and a trailing `.0`.
"""

from __future__ import annotations

import re


def trl_math_verify(completion: str, reference: str, *, dollars: bool = False) -> bool:
    """math-verify through TRL's `accuracy_reward`; `dollars` puts the reference in `$...$` (a bare
    answer such as `x^2 + 2x + 1` is otherwise read by math-verify's default extraction as `1`)."""
    from trl.rewards import accuracy_reward

    solution = f"${reference}$" if dollars else reference
    try:
        reward = accuracy_reward([[{"role": "assistant", "content": completion}]], [solution])[0]
    except Exception:  # noqa: BLE001 - a crash of the peer is a non-match for it
        return False
    return bool(reward)


def regex_baseline(completion: str, reference: str) -> bool:
    boxed = re.findall(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}", completion)
    nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", completion)
    ans = boxed[-1] if boxed else (nums[-1] if nums else None)
    if ans is None:
        return False

    def key(s: str) -> str:
        return re.sub(r"\.0+$", "", re.sub(r"[\s$,]", "", s))

    return key(ans) == key(reference)
