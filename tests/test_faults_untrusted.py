"""Untrusted text: model completions (and dataset answers) are data, never code.

* The package never evaluates text: no eval/exec/compile, no pickle/marshal loads, no unsafe YAML,
  no shell; every ``torch.load`` passes ``weights_only=True`` (checked on the source's syntax tree).
* A checkpoint whose training state carries a pickled callable is refused, and the callable never
  runs.
* The verifier's work per item is bounded: adversarial completions (a megabyte of digits, 10^5
  nested ``\\boxed{``, power towers) come back as reward 0 without an error. (No timed assertion:
  the call returning is the point; benches/ measures speed.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import empg
from empg import checkpoint as ckpt
from empg.exceptions import CheckpointError

PACKAGE = Path(empg.__file__).resolve().parent
FORBIDDEN_NAMES = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("marshal", "loads"), ("marshal", "load"),
                   ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
                   ("os", "system"), ("os", "popen"), ("subprocess", "run"), ("subprocess", "Popen"),
                   ("subprocess", "call"), ("subprocess", "check_output"), ("dill", "loads")}


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node


def test_the_package_never_evaluates_or_unpickles_text():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    found = []
    for f in files:
        for call in _calls(f):
            fn = call.func
            where = f"{f.relative_to(PACKAGE)}:{call.lineno}"
            if isinstance(fn, ast.Name) and fn.id in FORBIDDEN_NAMES:
                found.append(f"{where} {fn.id}()")
            if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
                if (fn.value.id, fn.attr) in FORBIDDEN_ATTRS:
                    found.append(f"{where} {fn.value.id}.{fn.attr}()")
                if (fn.value.id, fn.attr) == ("torch", "load"):
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                               and k.value.value is True for k in call.keywords)
                    if not safe:
                        found.append(f"{where} torch.load without weights_only=True")
    assert not found, found


class _Payload:
    """Would create ``path`` if unpickled with a full unpickler."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    target = tmp_path / "iter-000001"
    target.mkdir()
    touched = tmp_path / "code-ran"
    torch.save({"iteration": 1, "evil": _Payload(touched)}, target / ckpt.STATE_FILE)
    (target / ckpt.MARKER).write_text("1\n")
    with pytest.raises(CheckpointError, match=f"checkpoint {target}: cannot read {ckpt.STATE_FILE}"):
        ckpt.load_state(target)
    assert not touched.exists()


NEST = 100_000
ADVERSARIAL = {
    "a megabyte of digits": "9" * (1 << 20),
    "a megabyte of braces": "{" * (1 << 20),
    "10^5 nested boxed": "\\boxed{" * NEST + "8" + "}" * NEST,
    "10^5 unclosed boxed": "\\boxed{" * NEST,
    "power tower": "\\boxed{10^{10^{10^{10}}}}",
    "deep power tower": "\\boxed{" + "10^{" * 10_000 + "10" + "}" * 10_000 + "}",
    "deep parentheses": "\\boxed{" + "(" * NEST + "1" + ")" * NEST + "}",
    "deep fractions": "\\boxed{" + "\\frac{1}{" * 50_000 + "2" + "}" * 50_000 + "}",
    "deep roots": "\\boxed{" + "\\sqrt{" * 50_000 + "x" + "}" * 50_000 + "}",
    "huge exponent": "\\boxed{(x+1)^{1000000}}",
    "huge literal": "\\boxed{1e999999999}",
    "huge factorial": "\\boxed{100000!}",
    "wide matrix": "\\boxed{\\begin{pmatrix}" + "1&" * NEST + "1\\end{pmatrix}}",
    "wide set": "\\boxed{\\{" + "1," * NEST + "1\\}}",
    "python code": "\\boxed{__import__('os').system('touch /tmp/empg-pwned')}",
}


def test_adversarial_completions_score_zero_and_return():
    texts = list(ADVERSARIAL.values())
    refs = ["7", "7", "7", "7", "10^{10^{10^{11}}}", "7", "7", "7", "7", "(x+1)^{999999}", "7", "7",
            "7", "7", "0"]
    rewards = empg.verify_batch(texts, refs, style="auto")
    assert rewards.dtype == np.float32 and rewards.shape == (len(texts),)
    bad = {name: float(r) for name, r in zip(ADVERSARIAL, rewards) if r != 0.0}
    assert not bad, bad
    assert not Path("/tmp/empg-pwned").exists()


def test_the_answer_after_a_megabyte_of_junk_is_still_found():
    """Bounded does not mean truncated: the final answer of a long completion still counts."""
    text = "blah 3 " * (1 << 17) + "so the answer is \\boxed{7}"
    assert empg.verify_batch([text, text], ["7", "8"]).tolist() == [1.0, 0.0]
    nested = "\\boxed{" * NEST + "7" + "}" * NEST
    assert empg.extract_answers([nested], style="boxed")[0] is not None
