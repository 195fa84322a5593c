#!/usr/bin/env bash
# The head-to-head with TRL on a GPU (benches/bench_vs_trl.py --gpu): prepared on the dev machine,
# run on a lent GPU machine that has torch, transformers, accelerate, peft and pyarrow but no
# network, no TRL and no datasets.
#
#   bash benches/gpu_vs_trl.sh --prepare   # dev machine (PyPI reachable): fills .gpu/ (git-ignored)
#   bash benches/gpu_vs_trl.sh [ARGS]      # GPU machine, with .gpu/ carried: bench_vs_trl.py --gpu ARGS
#
# .gpu/ (a few MiB): empg's abi3 wheel (maturin build), TRL 1.16 and what it needs beyond that image
# (datasets, dill, multiprocess), SmolLM2's tokenizer (the random Qwen2.5-0.5B-shaped model is
# built from its config on the GPU machine) and GSM8K's train split. The run stops itself after
# GPU_VS_TRL_LIMIT_S seconds (default 470); the records of every finished workload are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
G=.gpu
if [ "${1:-}" = "--prepare" ]; then
  rm -rf "$G" && mkdir -p "$G/wheels" "$G/data/gsm8k"
  # glibc >= 2.17, as for the GPU check (ziglang is in requirements-dev.txt)
  maturin build --release --quiet --zig --compatibility manylinux_2_17 --target-dir /tmp/empg-zig --out "$G/wheels"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d "$G/wheels" \
    trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  "$PY" - "$G/tokenizer" <<'PYEOF'
import sys
from transformers import AutoTokenizer
from empg.models import embedded_model_dir
AutoTokenizer.from_pretrained(embedded_model_dir()).save_pretrained(sys.argv[1])
PYEOF
  "$PY" -c "from empg.data import default_data_path; print(default_data_path('gsm8k', 'train'))" \
    | xargs -I{} cp {} "$G/data/gsm8k/train.jsonl"
  du -sh "$G"
  exit 0
fi
if [ ! -d "$G/wheels" ]; then
  echo "no $G/wheels: run 'bash benches/gpu_vs_trl.sh --prepare' on the dev machine and carry $G" >&2
  exit 2
fi
SITE="$(mktemp -d)"
trap 'rm -rf "$SITE"' EXIT
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$G"/wheels/*.whl
export PYTHONPATH="$SITE" EMPG_BENCH_TOKENIZER="$PWD/$G/tokenizer" EMPG_DATA_DIR="$PWD/$G/data" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
rc=0
timeout "${GPU_VS_TRL_LIMIT_S:-470}" "$PY" benches/bench_vs_trl.py --gpu "$@" || rc=$?
if [ "$rc" -ne 0 ] && [ -f benches/results/vs_trl_gpu/records.json ]; then  # stopped: report what finished
  "$PY" benches/vs_trl_report.py benches/results/vs_trl_gpu --out benches/results/vs_trl_gpu.md || true
fi
if [ -n "${OUT:-}" ]; then  # the device tool's folder of files to bring back
  cp -r benches/results/vs_trl_gpu benches/results/vs_trl_gpu.md "$OUT"/ 2>/dev/null || true
fi
exit "$rc"
