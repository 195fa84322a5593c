#!/usr/bin/env bash
# Install everything and run every test: cargo (Rust unit and property tests), the stub check of
# the compiled module, and pytest. Usage: bash scripts/test.sh [extra pytest args]
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
python -m pytest -q "$@"
