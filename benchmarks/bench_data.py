"""Data pipeline throughput: render + corrupt per core (both modes), dataset items, DataLoader batches.

Usage: ``python benchmarks/bench_data.py [--sketches 2000] [--repeats 3] [--batches 30] [--workers 2]``

Reads ``sketch-rnn/aaron_sheep.npz`` from ``sketchheal.utils.paths.shared_data_dir()`` (``$SKETCHHEAL_DATA`` overrides),
prints a table and writes ``benchmarks/results/data.json``. Single-process figures run with one OpenCV and one
torch thread and count CPU time (per core); each is the best of ``--repeats`` runs. DataLoader figures are wall
time and depend on what else runs on the machine (``load_average`` is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from sketchheal.data.dataset import HealingDataset, make_loader
from sketchheal.utils.fileio import atomic_write
from sketchheal.utils.paths import shared_data_dir
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import corrupt, render

TARGETS = {"reference": 1500.0, "fast": 5000.0}  # sketches/s per core
RESULTS = Path(__file__).resolve().parent / "results" / "data.json"


def load_sheep(split: str = "train") -> tuple[list[np.ndarray], float]:
    """The sheep sketches (filtered to <= 250 points, as float32 stroke-3) and the split's dx/dy std."""
    path = shared_data_dir() / "sketch-rnn" / "aaron_sheep.npz"
    if not path.is_file():
        sys.exit(f"{path} not found: set SKETCHHEAL_DATA to the folder that holds sketch-rnn/aaron_sheep.npz")
    raw = np.load(path, encoding="latin1", allow_pickle=True)[split]
    sketches = [np.asarray(s, np.float32) for s in raw if 0 < len(s) <= 250]
    xy = np.concatenate([s[:, :2] for s in sketches])
    return sketches, float(xy.std())


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Best items per CPU-second of this process over ``repeats`` calls of ``fn`` (it returns the item count).

    CPU time (``time.process_time``, all threads of the process) rather than wall time, so that other work on a
    shared machine does not count against the figure; with one thread this is the rate of one core.
    """
    best = 0.0
    for _ in range(repeats):
        t = time.process_time()
        n = fn()
        best = max(best, n / max(time.process_time() - t, 1e-9))
    return best


def bench_render(sketches: list[np.ndarray], repeats: int) -> dict[str, dict[str, float]]:
    table = MaskTable(len(sketches), seed=0)
    out: dict[str, dict[str, float]] = {}
    for mode in ("reference", "fast"):
        def run_corrupt(p: float) -> int:
            for i, s in enumerate(sketches):
                corrupt(s, table.uniforms(i), p, size=128, mode=mode)
            return len(sketches)

        def run_render() -> int:
            for s in sketches:
                render(s, 128, mode)
            return len(sketches)

        out[mode] = {
            "render_per_s": best_rate(run_render, repeats),
            "corrupt_p0.1_per_s": best_rate(lambda: run_corrupt(0.1), repeats),
            "corrupt_p0.5_per_s": best_rate(lambda: run_corrupt(0.5), repeats),
            "target_per_s": TARGETS[mode],
        }
    return out


def bench_items(sketches: list[np.ndarray], scale: float, repeats: int) -> dict[str, float]:
    out = {}
    for mode in ("reference", "fast"):
        ds = HealingDataset(sketches, scale=scale, max_len=250, render_mode=mode, mask_prob=0.1)

        def run() -> int:
            for i in range(len(ds)):
                ds[i]
            return len(ds)

        out[f"{mode}_items_per_s"] = best_rate(run, repeats)
    return out


def bench_loader(sketches: list[np.ndarray], scale: float, batches: int, workers: int,
                 batch_size: int = 100) -> dict[str, float]:
    out = {}
    for mode in ("reference", "fast"):
        ds = HealingDataset(sketches, scale=scale, max_len=250, render_mode=mode, mask_prob=0.1)
        loader = make_loader(ds, batch_size, shuffle=True, num_workers=workers, seed=0, drop_last=True)
        it = iter(loader)
        for _ in range(2):  # warm-up: worker start and the first prefetched batches
            next(it)
        t = time.perf_counter()
        n = 0
        for _ in range(batches):
            try:
                next(it)
            except StopIteration:
                it = iter(loader)
                next(it)
            n += 1
        rate = n / (time.perf_counter() - t)
        out[f"{mode}_batches_per_s"] = rate
        out[f"{mode}_sketches_per_s"] = rate * batch_size
        del it, loader
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sketches", type=int, default=2000, help="sketches per single-process run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (the best is kept)")
    ap.add_argument("--batches", type=int, default=30, help="DataLoader batches timed per mode")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = ap.parse_args(argv)

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    sketches, scale = load_sheep()
    subset = sketches[: args.sketches]

    results = {
        "data": "aaron_sheep.npz train",
        "sketches_timed": len(subset),
        "image_size": 128,
        "per_core": bench_render(subset, args.repeats),
        "dataset_items_per_core": bench_items(subset[:1000], scale, args.repeats),
        "dataloader": {"workers": args.workers, "batch_size": 100,
                       **bench_loader(sketches, scale, args.batches, args.workers)},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(), "numpy": np.__version__,
                    "opencv": cv2.__version__, "torch": torch.__version__, "processor": platform.processor()},
        "command": "python benchmarks/bench_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }

    print(f"render + corrupt, single process, 1 thread, {len(subset)} sheep, 128 px (sketches per CPU-second)")
    for mode, r in results["per_core"].items():
        ok = "ok" if r["corrupt_p0.1_per_s"] >= r["target_per_s"] else "BELOW TARGET"
        print(f"  {mode:9s} render {r['render_per_s']:8.0f}   corrupt p=0.1 {r['corrupt_p0.1_per_s']:8.0f}   "
              f"p=0.5 {r['corrupt_p0.5_per_s']:8.0f}   target {r['target_per_s']:.0f} ({ok})")
    items = results["dataset_items_per_core"]
    print(f"dataset items (image + stroke-5 tensors), single process: reference {items['reference_items_per_s']:.0f}/s,"
          f" fast {items['fast_items_per_s']:.0f}/s")
    dl = results["dataloader"]
    print(f"DataLoader, {dl['workers']} workers, batch 100, wall time (load {os.getloadavg()[0]:.1f}): reference {dl['reference_batches_per_s']:.1f} batches/s "
          f"({dl['reference_sketches_per_s']:.0f} sketches/s), fast {dl['fast_batches_per_s']:.1f} batches/s "
          f"({dl['fast_sketches_per_s']:.0f} sketches/s)")

    with atomic_write(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
