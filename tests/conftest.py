"""Shared pytest hooks: tests marked ``gpu`` skip where CUDA is absent."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA (marked gpu); none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
