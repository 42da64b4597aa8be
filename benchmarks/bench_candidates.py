"""What healing as shipped costs: the bundled model healing real test sheep, one sample against best of K.

    python benchmarks/bench_candidates.py            # 64 test sheep, K = 1, 8 (and 16), writes results/candidates.json
    python benchmarks/bench_candidates.py --quick    # 16 sheep, K = 1, 8

Reads ``sketch-rnn/aaron_sheep.npz`` from ``sketchheal.utils.paths.shared_data_dir()`` (``$SKETCHHEAL_DATA`` overrides).
Each figure is ``sketchheal.inference.heal`` end to end after the model is loaded (rendering the inputs, patch masking at
p = 0.3, encoding, decoding every candidate, rendering and scoring the candidates), the best of ``--repeats`` runs,
with the temperature each setting uses: 0.01 for one sample (the published protocol), 0.1 for best of K (the
default of ``sketchheal heal``). Healed sketches stop at their own end or at 200 points, so the figures depend on
the trained model (unlike ``bench_heal.py``, which times a random one); mean healed points are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sketchheal import __version__
from sketchheal.inference.heal import heal, load_model
from sketchheal.utils.paths import shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results" / "candidates.json"


def test_sheep(n: int) -> list[np.ndarray]:
    path = shared_data_dir() / "sketch-rnn" / "aaron_sheep.npz"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set SKETCHHEAL_DATA to the folder that holds sketch-rnn/aaron_sheep.npz")
    with np.load(path, allow_pickle=True, encoding="latin1") as z:
        sheep = [np.asarray(s, np.float32) for s in z["test"] if len(s) <= 200]
    return sheep[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="16 sheep, K = 1 and 8")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best is kept)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sheep = test_sheep(16 if args.quick else 64)
    healer = load_model(None, device="cpu")  # the bundled model
    load_before = os.getloadavg()[0]
    rows = []
    for k in (1, 8) if args.quick else (1, 8, 16):
        tau = 0.01 if k == 1 else 0.1
        times, points = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = heal(sheep, model=healer, mask=0.3, seed=0, temperature=tau, candidates=k)
            times.append(time.perf_counter() - start)
            points = [len(r.healed[0]) for r in results]
        best = min(times)
        row = {"candidates": k, "temperature": tau, "sketches": len(sheep), "seconds": round(best, 3),
               "sketches_per_s": round(len(sheep) / best, 2), "ms_per_sketch": round(1000 * best / len(sheep), 1),
               "mean_healed_points": round(float(np.mean(points)), 1)}
        rows.append(row)
        print(f"K={k:2d} tau={tau:<4g} {row['sketches_per_s']:6.2f} sketches/s  {row['ms_per_sketch']:7.1f} ms each  "
              f"mean {row['mean_healed_points']:.0f} points", flush=True)
    out = {"benchmark": "sketchheal.inference.heal with the bundled model, test sheep, p = 0.3",
           "sketchheal": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "cpu": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                        if ln.startswith("model name")), platform.processor() or "unknown"),
           "cores": os.cpu_count(), "threads": args.threads,
           "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
