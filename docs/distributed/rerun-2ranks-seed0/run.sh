#!/bin/bash
# The 2-rank seed-0 default run of docs/distributed.md (commit aedf969, difficulty 0 = 1..20, 64 held-out),
# again, with a greedy evaluation after every iteration.
set -e
source ~/.cache/empg/venv/bin/activate
cd /work/snap-old
export PYTHONPATH=/work/snap-old/python
rm -rf /tmp/runs/dist2-s0
date
OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 2 --no-python empg-train log.run_dir=/tmp/runs/dist2-s0 \
  log.progress=false log.report_to=[] eval.every=1 > /tmp/runs/dist2-s0.log 2>&1
date
ls /tmp/runs/dist2-s0
