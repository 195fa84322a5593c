"""Shared pytest setup: the tests folder on sys.path (for `reference`), the shared data location,
GPU tests skipped without CUDA, and vLLM engine tests run only in the vLLM tier."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The shared GSM8K/MATH data: $EMPG_DATA_DIR, else <repo>/../shared/data."""
    return Path(os.environ.get("EMPG_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    d = data_dir()
    if not (d / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"shared data not found at {d} (set EMPG_DATA_DIR to the folder holding gsm8k/ and math/)")
    return d


#: Set to 1 by scripts/test-vllm-cpu.sh: the tier where the tests marked ``vllm_engine`` run a real
#: vLLM engine. They must run there (vLLM missing is an error, a skip a failure) and skip elsewhere:
#: vLLM's CPU worker replaces ``torch.set_num_threads`` for the whole process.
VLLM_TIER_ENV = "EMPG_VLLM_TIER"


def _in_vllm_tier() -> bool:
    return os.environ.get(VLLM_TIER_ENV) == "1"


def pytest_collection_modifyitems(config, items):
    engine = [item for item in items if "vllm_engine" in item.keywords]
    if _in_vllm_tier() and engine:
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise pytest.UsageError(f"{VLLM_TIER_ENV}=1 but vLLM does not import ({e}): "
                                    "run bash scripts/setup-vllm-cpu.sh and its venv") from e
    elif engine:
        skip_engine = pytest.mark.skip(reason="runs a vLLM engine: only in the vLLM tier (bash scripts/test-vllm-cpu.sh)")
        for item in engine:
            item.add_marker(skip_engine)
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In the vLLM tier, an engine test that skips fails: the tier exists to run them."""
    outcome = yield
    report = outcome.get_result()
    if _in_vllm_tier() and report.skipped and "vllm_engine" in item.keywords:
        report.outcome = "failed"
        report.longrepr = f"an engine test skipped in the vLLM tier ({VLLM_TIER_ENV}=1): {report.longrepr}"
