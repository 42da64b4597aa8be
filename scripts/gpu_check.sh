#!/usr/bin/env bash
# The GPU check in one command (benchmarks/gpu_check.py): the CUDA tests, the paper training step's speed (fp32 and
# bf16 autocast, batch 100, a DataLoader worker per core), --minutes of paper training on aaron_sheep and the
# evaluation of that checkpoint, all in one JSON (--out, default benchmarks/results/gpu_check.json).
# Without CUDA it says so, runs a two-step CPU dry run of every stage and exits 0.
#
#   bash scripts/gpu_check.sh                    # 20 minutes of training
#   bash scripts/gpu_check.sh --minutes 8 --out /tmp/gpu_check.json
#
# PYTHON: the interpreter (default .venv/bin/python when there is one, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
