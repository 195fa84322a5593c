#!/bin/bash
# The documented 2-rank command of docs/distributed.md exactly (no per-iteration evaluation), at aedf969.
set -e
source ~/.cache/empg/venv/bin/activate
cd /work/snap-old
export PYTHONPATH=/work/snap-old/python
rm -rf /tmp/runs/dist2-exact
date
OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 2 --no-python empg-train log.run_dir=/tmp/runs/dist2-exact \
  log.progress=false > /tmp/runs/dist2-exact.log 2>&1
date
