"""The exceptions empg raises. One base class; every message names the file, row, field or index at
fault. The Rust core maps its one error enum onto these classes (see ``rust/py/errors.rs``).

An answer that cannot be parsed is *data* (reward 0), never an exception.
"""

from __future__ import annotations


class EmpgError(Exception):
    """Base class of every error empg raises on purpose."""


class InvalidInputError(EmpgError, ValueError):
    """An argument or array handed to empg is malformed (NaN reward, mismatched lengths, ...)."""


class PackingError(InvalidInputError):
    """A sequence cannot be placed in a micro-batch under the token budget."""


class ConfigError(EmpgError, ValueError):
    """A configuration key is unknown or its value is invalid; the message names the key."""


class DataError(EmpgError, ValueError):
    """A dataset file or row is malformed; the message names the file and the row."""


class CheckpointError(EmpgError):
    """A checkpoint is missing, incomplete or cannot be written."""


class TrainingError(EmpgError):
    """Training cannot go on (e.g. too many non-finite losses in a row)."""


class RewardError(EmpgError):
    """A reward function raised or returned something unusable; the message names it and the row."""


__all__ = [
    "EmpgError",
    "InvalidInputError",
    "PackingError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "TrainingError",
    "RewardError",
]
