"""Storage benchmark: a paper-sized training set (17 categories x 70,000 sketches) in packed SketchSet form.

Builds synthetic stroke-3 sketches with realistic lengths (gamma-distributed, mean about 65 points, 2..250),
packs them per category and concatenates them as ``load_sketches`` does, then measures memory (``nbytes``) against
a list of per-sketch numpy arrays, and the time to index, iterate, subset, compute the scale and pickle.

    python benchmarks/bench_storage.py                  # full size, about 20 s and 2 GB of RAM
    python benchmarks/bench_storage.py --per-category 5000

Prints a summary and writes benchmarks/results/storage.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from sketchheal.sketch.io import SketchSet, compute_scale
from sketchheal.utils.fileio import atomic_write


def synthetic_category(rng: np.random.Generator, n: int, mean_len: float = 65.0) -> SketchSet:
    """``n`` random sketches: lengths ~ Gamma(3, mean/3) clipped to 2..250, int16 offsets, pen-ups ~1 in 12."""
    lengths = np.clip(np.round(rng.gamma(3.0, mean_len / 3.0, n)), 2, 250).astype(np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    points = np.empty((total, 3), np.int16)
    points[:, :2] = rng.integers(-40, 41, (total, 2), dtype=np.int16)
    points[:, 2] = rng.random(total) < 1 / 12
    points[offsets[1:] - 1, 2] = 1  # every sketch ends with a pen-up
    return SketchSet(points, offsets, np.zeros(n, np.int16), ["c"])


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls of ``fn`` and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def list_of_arrays_bytes(sketches: SketchSet, sample: int, dtype) -> float:
    """Bytes per sketch of a Python list of per-sketch arrays (measured on ``sample`` sketches by tracemalloc)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    arrays = [sketches.points[sketches.offsets[i]:sketches.offsets[i + 1]].astype(dtype) for i in range(sample)]
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del arrays
    return used / sample


def run(categories: int, per_category: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t_build, parts = timed(lambda: [synthetic_category(rng, per_category) for _ in range(categories)])
    for k, part in enumerate(parts):
        part.categories = [f"category {k}"]
    t_concat, s = timed(lambda: SketchSet.concat(parts))
    del parts
    n = len(s)
    idx = rng.integers(0, n, 100_000)
    t_random, _ = timed(lambda: [s[int(i)] for i in idx], repeat=3)
    t_iter, count = timed(lambda: sum(1 for _ in s))
    t_lengths, lengths = timed(lambda: s.lengths, repeat=3)
    t_subset, sub = timed(lambda: s.subset(rng.permutation(n)[: n // 10]), repeat=3)
    t_scale, scale = timed(lambda: compute_scale(s))
    t_dump, blob = timed(lambda: pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL))
    t_load, _ = timed(lambda: pickle.loads(blob))
    sample = min(n, 100_000)
    per_int16 = list_of_arrays_bytes(s, sample, np.int16)
    per_float32 = list_of_arrays_bytes(s, sample, np.float32)
    return {
        "sketches": n,
        "categories": categories,
        "points": int(len(s.points)),
        "mean_length": round(float(lengths.mean()), 2),
        "packed": {
            "nbytes": s.nbytes,
            "MiB": round(s.nbytes / 2**20, 1),
            "bytes_per_sketch": round(s.nbytes / n, 1),
            "points_dtype": str(s.points.dtype),
        },
        "list_of_arrays_estimate": {
            "int16_MiB": round(per_int16 * n / 2**20, 1),
            "float32_MiB": round(per_float32 * n / 2**20, 1),
            "bytes_per_sketch_int16": round(per_int16, 1),
            "bytes_per_sketch_float32": round(per_float32, 1),
            "python_objects": n,
        },
        "seconds": {
            "build_synthetic": round(t_build, 3),
            "concat_categories": round(t_concat, 3),
            "random_getitem_100k": round(t_random, 3),
            "iterate_all": round(t_iter, 3),
            "lengths": round(t_lengths, 6),
            "subset_10pct_random": round(t_subset, 3),
            "compute_scale": round(t_scale, 3),
            "pickle_dumps": round(t_dump, 3),
            "pickle_loads": round(t_load, 3),
        },
        "us_per_getitem": round(t_random / len(idx) * 1e6, 2),
        "us_per_item_iterating": round(t_iter / count * 1e6, 2),
        "pickle_MiB": round(len(blob) / 2**20, 1),
        "scale": round(scale, 4),
        "subset_sketches": len(sub),
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--categories", type=int, default=17)
    p.add_argument("--per-category", type=int, default=70_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "storage.json"))
    args = p.parse_args(argv)
    result = run(args.categories, args.per_category, args.seed)
    sec = result["seconds"]
    print(f"{result['sketches']:,} sketches, {result['points']:,} points (mean length {result['mean_length']})")
    print(f"packed SketchSet: {result['packed']['MiB']} MiB ({result['packed']['bytes_per_sketch']} B/sketch, "
          f"{result['packed']['points_dtype']} points)")
    est = result["list_of_arrays_estimate"]
    print(f"list of arrays:   {est['int16_MiB']} MiB as int16, {est['float32_MiB']} MiB as float32 "
          f"({est['python_objects']:,} Python objects)")
    print(f"s[i]: {result['us_per_getitem']} us, iterate all: {sec['iterate_all']} s "
          f"({result['us_per_item_iterating']} us/item), 10% random subset: {sec['subset_10pct_random']} s")
    print(f"compute_scale: {sec['compute_scale']} s, pickle: {result['pickle_MiB']} MiB in {sec['pickle_dumps']} s "
          f"(loads {sec['pickle_loads']} s), concat of {result['categories']}: {sec['concat_categories']} s")
    out = Path(args.out)
    with atomic_write(out, "w") as f:
        f.write(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
