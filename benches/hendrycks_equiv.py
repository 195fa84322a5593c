r"""A reimplementation of the Hendrycks et al. (2021) MATH answer checker (`is_equiv` and its
`_strip_string` normaliser from the MATH repository's evaluation code), used as the second,
independent grader when labelling the verifier corpus. It is a string normaliser: no algebra.

The extraction in front of it (`extract`) is this module's own and simple: the last `\boxed{}`
(as MATH's `last_boxed_only_string`), else what follows the last "answer is"/"Answer:", else the
last number. Nothing here imports empg.
"""

from __future__ import annotations

import re


def _fix_fracs(string: str) -> str:
    substrs = string.split("\\frac")
    new_str = substrs[0]
    for substr in substrs[1:]:
        new_str += "\\frac"
        if substr and substr[0] == "{":
            new_str += substr
            continue
        if len(substr) < 2:
            return string
        a, b = substr[0], substr[1]
        if b != "{":
            new_str += "{" + a + "}{" + b + "}" + substr[2:]
        else:
            new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    parts = string.split("/")
    if len(parts) != 2:
        return string
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    if "\\text{ " in string:
        splits = string.split("\\text{ ")
        if len(splits) != 2:
            raise ValueError("several units")
        return splits[0]
    return string


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split and split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def strip_string(string: str) -> str:
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


def is_equiv(str1: str | None, str2: str | None) -> bool:
    if str1 is None or str2 is None:
        return False
    try:
        return strip_string(str1) == strip_string(str2)
    except Exception:  # noqa: BLE001 - as the original: a normaliser failure compares raw strings
        return str1 == str2


def last_boxed(text: str) -> str | None:
    """MATH's `last_boxed_only_string` + `remove_boxed`."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    if text.startswith("\\boxed ", idx):
        return text[idx + len("\\boxed ") :].split("$")[0].strip()
    depth, start = 0, None
    for i in range(idx, len(text)):
        if text[i] == "{":
            depth += 1
            start = i if start is None else start
        elif text[i] == "}":
            depth -= 1
            if depth == 0 and start is not None:
                return text[start + 1 : i]
    return None


_PHRASE = re.compile(r"(?:answer is|answer:|Answer:)\s*\**\s*:?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract(text: str) -> str | None:
    """The final answer: the last box, else the last answer phrase, else the last number."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    if "####" in text:
        return text.rsplit("####", 1)[1].strip().split("\n")[0].strip()
    phrases = _PHRASE.findall(text)
    if phrases:
        ans = phrases[-1].strip().split("\n")[0]
        m = re.match(r"^\$([^$]+)\$", ans)
        if m:
            return m.group(1)
        return ans.rstrip(".").strip()
    nums = _NUMBER.findall(text)
    return nums[-1].replace(",", "") if nums else None


def grade(completion: str, reference: str) -> bool:
    """MATH's check of a completion: `is_equiv(reference, extracted answer)`, with a numeric
    comparison of plain numbers (GSM8K answers are integers written with or without commas)."""
    ans = extract(completion)
    if ans is None:
        return False
    if is_equiv(reference, ans):
        return True
    try:
        return float(reference.replace(",", "")) == float(ans.replace(",", "").rstrip(".").lstrip("$"))
    except ValueError:
        return False
