"""scripts/gpu_check.sh without CUDA (or with --dry-run): it says so, runs every stage as a two-step CPU dry run
(CUDA tests skipped, the step benchmark, a training run, the evaluation of its checkpoint), writes one JSON and
exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_sketch

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path):
    rng = np.random.default_rng(0)

    def split(n):
        arr = np.empty(n, dtype=object)
        for i in range(n):
            arr[i] = make_sketch(rng, n_strokes=2, points=int(rng.integers(3, 9))).astype(np.int16)
        return arr

    data = tmp_path / "toy.npz"
    np.savez(data, train=split(40), valid=split(12), test=split(12))
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--data", str(data),
                           "--out", str(out), "--work", str(tmp_path / "work")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "two-step CPU dry run" in proc.stdout
    report = json.loads(out.read_text())
    assert report["cuda"] is False
    assert "skipped" in report["cuda_tests"]
    (bench,) = report["benchmarks"]
    assert bench["device"] == "cpu" and bench["steps_timed"] == 2 and bench["median_step_s"] > 0
    assert report["training"]["returncode"] == 0 and report["training"]["steps"] == 2
    assert report["training"]["checkpoint"]
    assert report["evaluation"]["results"]
    assert report["environment"]["cpu"] and report["environment"]["cores"] >= 1
