# Hand-written stub of the compiled module empg._core, checked by `python -m mypy.stubtest empg._core`.
from typing import Any, final

import numpy as np
import numpy.typing as npt

__version__: str
BEHAVIOURS: dict[str, str]
__all__ = [
    "__version__",
    "BEHAVIOURS",
    "behaviour_counts",
    "GroupWeights",
    "group_weights",
    "pack_microbatches",
    "build_microbatch",
    "build_microbatches",
    "build_grouped_microbatches",
    "flatten_ids",
    "parallelism",
    "extract_answers",
    "is_equivalent",
    "verify_batch",
]

@final
class GroupWeights:
    @property
    def weights(self) -> npt.NDArray[np.float32]: ...
    @property
    def group_index(self) -> npt.NDArray[np.int64]: ...
    @property
    def group_ids(self) -> npt.NDArray[np.int64]: ...
    @property
    def size(self) -> npt.NDArray[np.int64]: ...
    @property
    def mean(self) -> npt.NDArray[np.float32]: ...
    @property
    def std(self) -> npt.NDArray[np.float32]: ...
    @property
    def solved(self) -> npt.NDArray[np.float32]: ...
    @property
    def zero_signal(self) -> npt.NDArray[np.bool_]: ...
    @property
    def num_dropped(self) -> int: ...

def group_weights(
    rewards: npt.NDArray[np.float32],
    *,
    group_size: int | None = None,
    group_ids: npt.NDArray[np.int64] | None = None,
    scheme: str = "group_norm",
    eps: float = 1e-06,
    solved_threshold: float = 1.0,
    drop_zero_signal: bool = True,
) -> GroupWeights: ...
def behaviour_counts(texts: list[str]) -> dict[str, int]: ...
def pack_microbatches(
    lengths: npt.NDArray[np.int64], token_budget: int, *, allow_oversize: bool = False
) -> list[npt.NDArray[np.int64]]: ...
def build_microbatch(
    tokens: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    prompt_lens: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    index: npt.NDArray[np.int64],
) -> dict[str, np.ndarray]: ...
def build_microbatches(
    tokens: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    prompt_lens: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    bins: list[npt.NDArray[np.int64]],
) -> list[dict[str, np.ndarray]]: ...
def build_grouped_microbatches(
    prompts: npt.NDArray[np.int32],
    prompt_offsets: npt.NDArray[np.int64],
    completions: npt.NDArray[np.int32],
    completion_offsets: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    bins: list[npt.NDArray[np.int64]],
) -> list[dict[str, np.ndarray]]: ...
def flatten_ids(seqs: list[Any]) -> dict[str, np.ndarray]: ...
def parallelism() -> int: ...
def extract_answers(
    texts: list[str], *, style: str = "auto", fallback: bool = True
) -> list[str | None]: ...
def is_equivalent(reference: str, candidate: str) -> bool: ...
def verify_batch(
    responses: list[str], references: list[str], *, style: str = "auto"
) -> npt.NDArray[np.float32]: ...
