#!/usr/bin/env bash
# Run benches/gpu_check.py on a GPU machine without network: install empg's abi3 wheel (built on the
# dev machine by `maturin build --release`, carried along in target/wheels/) into a temporary target
# directory, no dependencies fetched, and run the check with it. Arguments go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WHEEL="$(ls -t target/wheels/empg-*.whl 2>/dev/null | head -n 1 || true)"
if [ -z "$WHEEL" ]; then
  echo "no target/wheels/empg-*.whl: build it first (benches/README.md, GPU check)" >&2
  exit 2
fi
SITE="$(mktemp -d)"
trap 'rm -rf "$SITE"' EXIT
# pip where it exists; a wheel is a zip file, so unpacking it is the same install otherwise.
"$PY" -m pip install -q --no-deps --no-index --target "$SITE" "$WHEEL" 2>/dev/null \
  || "$PY" -m zipfile -e "$WHEEL" "$SITE"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
PYTHONPATH="$SITE" "$PY" benches/gpu_check.py "$@"
