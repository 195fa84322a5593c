"""empg: train language models to reason with EM Policy Gradient (arXiv 2504.18587).

The E-step samples K rationales per question with the current weights and scores them with an exact
verifier; the M-step fine-tunes on them by reward-weighted log-likelihood, several steps, with no
importance ratio and no clipping. The hot paths run in a Rust core (``empg._core``).

``empg.Trainer`` and ``empg.Config`` (imported on first use: they bring torch and transformers)
train a model on a task of your own; see :mod:`empg.trainer`.
"""

from typing import Any

from empg._core import __version__
from empg.core import (
    SCHEMES,
    FlatSequences,
    GroupWeights,
    build_microbatch,
    build_microbatches,
    flatten_sequences,
    group_weights,
    pack_microbatches,
    parallelism,
)
from empg.verify import STYLES, extract_answers, is_equivalent, verify_batch
from empg.exceptions import (
    CheckpointError,
    ConfigError,
    DataError,
    EmpgError,
    InvalidInputError,
    PackingError,
    RewardError,
    TrainingError,
)

_LAZY = {"Trainer": "empg.trainer", "Config": "empg.config"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'empg' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Config",
    "Trainer",
    "SCHEMES",
    "FlatSequences",
    "GroupWeights",
    "build_microbatch",
    "build_microbatches",
    "flatten_sequences",
    "group_weights",
    "pack_microbatches",
    "parallelism",
    "STYLES",
    "extract_answers",
    "is_equivalent",
    "verify_batch",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "EmpgError",
    "InvalidInputError",
    "PackingError",
    "RewardError",
    "TrainingError",
]
