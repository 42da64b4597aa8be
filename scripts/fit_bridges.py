"""Fit the bridge scorer of completion (which loose ends to join) for a gap-filling model and write it beside the
model (``bridges.json``).

    python scripts/fit_bridges.py --model src/sketchheal/assets/gapfill --gapfill-data GAPDATA

Drawings (none of them the test sheep, none of the held-out QuickDraw categories, none of the test splits that
``benchmarks/bench_complete.py --sets qd-tune`` chooses settings on): the validation split of the gap-filler's 301
QuickDraw training categories (``GAPDATA/qd_train_npz``, made by
``scripts/make_gapfill_data.py``; drawings the gap-filler never trained on) and the first 5 of each category's
training split, the sheep's validation split and its first 1,000 training sheep, and the validation split of
``GAPDATA/omniglot_subset.npz``. Each is erased ``--repeats`` times (p uniform in 0.1-0.5);
80 % of the drawings fit the MLP, 20 % choose its threshold (sketchheal.training.bridges).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from sketchheal.inference.bridges import SCORER_FILE
from sketchheal.inference.loading import load_model
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.strokes import stroke3_to_polylines
from sketchheal.training.bridges import BridgeExamples, bridge_examples, fit_bridge_scorer
from sketchheal.utils.fileio import write_json
from sketchheal.utils.npfile import load_npz
from sketchheal.utils.paths import shared_data_dir


def drawings(gapdata: Path, train_per_file: int = 5, train_sheep: int = 1000) -> list[list[np.ndarray]]:
    out = []
    sk = load_sketches(sorted((gapdata / "qd_train_npz").glob("*.npz")), split="valid")
    out += [stroke3_to_polylines(sk[i]) for i in range(len(sk))]
    for path in sorted((gapdata / "qd_train_npz").glob("*.npz")):  # a few of the gap-filler's own drawings
        sk = load_sketches(path, split="train")
        out += [stroke3_to_polylines(sk[i]) for i in range(min(train_per_file, len(sk)))]
    sheep = shared_data_dir() / "sketch-rnn" / "aaron_sheep.npz"
    for path, split, n in ((sheep, "valid", None), (sheep, "train", train_sheep),
                           (gapdata / "omniglot_subset.npz", "valid", None)):
        sk = load_sketches(path, split=split)
        out += [stroke3_to_polylines(sk[i]) for i in range(len(sk) if n is None else min(n, len(sk)))]
    return out


def _subset(ex: BridgeExamples, keep: np.ndarray) -> BridgeExamples:
    m = keep[ex.drawing]
    return BridgeExamples(ex.features[m], ex.labels[m], ex.drawing[m])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the gap-filling model (release folder or checkpoint)")
    ap.add_argument("--gapfill-data", required=True, type=Path, help="folder made by scripts/make_gapfill_data.py")
    ap.add_argument("--out", default=None, help="folder for bridges.json (default: the model's "
                    "release folder, or the folder of the checkpoint)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-order", action="store_true", help="a scorer that does not use the drawing order")
    ap.add_argument("--point-erase", type=float, default=0.0,
                    help="share of the erasures that remove only the points inside the squares (default 0)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="an .npz to keep the labelled candidates in (read when it exists, to refit quickly)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ds = drawings(args.gapfill_data)
    if args.cache is not None and args.cache.is_file():
        z = load_npz(args.cache)
        ex = BridgeExamples(z["features"], z["labels"], z["drawing"])
    else:
        healer = load_model(args.model, device="cpu")
        ex = bridge_examples(healer.model, ds, size=healer.image_size, mode=healer.render_mode,
                             repeats=args.repeats, ordered=not args.no_order, point_erase=args.point_erase)
        if args.cache is not None:
            np.savez(args.cache, features=ex.features, labels=ex.labels, drawing=ex.drawing)
    print(f"{len(ex.labels)} candidates from {len(ds)} drawings, {ex.labels.mean():.3f} right "
          f"({time.perf_counter() - t0:.0f} s)")
    rng = np.random.default_rng(0)
    is_train = rng.random(len(ds)) < 0.8
    spec = fit_bridge_scorer(_subset(ex, is_train), _subset(ex, ~is_train), hidden=args.hidden)
    spec["fit"].update(drawings=len(ds), repeats=args.repeats, model=str(args.model), point_erase=args.point_erase,
                       seconds=round(time.perf_counter() - t0, 1))
    model = Path(args.model)
    out = Path(args.out) if args.out else (model if model.is_dir() else model.parent)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SCORER_FILE, spec)
    print(json.dumps(spec["fit"], indent=1))
    print(f"wrote {out / SCORER_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
