#!/usr/bin/env bash
# The vLLM tier: build (or reuse) the venv with vLLM's CPU build (scripts/setup-vllm-cpu.sh) and run
# the tests that drive a real vLLM engine, apart from the main suite (vLLM's CPU worker replaces
# torch.set_num_threads for the whole process). EMPG_VLLM_TIER=1 makes a missing vLLM an error and
# a skipped engine test a failure (tests/conftest.py). Usage: bash scripts/test-vllm-cpu.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(bash scripts/setup-vllm-cpu.sh | tail -n 1)"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
echo "== pytest (vLLM tier: vllm-cpu $(python -c 'from importlib.metadata import version; print(version("vllm-cpu"))'))"
EMPG_VLLM_TIER=1 VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}" python -m pytest -q -rs -p no:cacheprovider \
  tests/test_vllm_sampler.py tests/test_vllm_weights.py tests/test_vllm_engine.py tests/test_vllm_train.py "$@"
