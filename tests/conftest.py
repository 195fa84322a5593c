"""Shared pytest setup: the tests folder on sys.path (for `reference`), the shared data location,
and GPU tests skipped without CUDA."""

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


def pytest_collection_modifyitems(config, items):
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
