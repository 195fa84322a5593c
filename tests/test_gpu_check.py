"""benches/gpu_check.py keeps working: its CPU path (tiny Qwen2 and Llama, 1 iteration) passes every check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parent.parent / "benches"


@pytest.mark.slow
def test_gpu_check_cpu_tiny_passes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHES))
    import gpu_check

    status = gpu_check.main(["--cpu", "--tiny", "--samplers", "transformers,vllm"])
    out = capsys.readouterr().out
    assert "RESULT            PASS" in out, out[-3000:]
    assert status == 0
    assert "sampler=vllm         skipped: needs CUDA" in out
    assert "0 failed" in out
    for family in ("qwen2", "llama"):  # the paper's family and today's layout both ran
        assert f"sampler=transformers family={family} " in out, out[-3000:]
        assert f"[{family}/transformers iter 1]" in out
    sys.modules.pop("gpu_check", None)
    sys.modules.pop("gpu_check_parts", None)
