"""Calibrate a model's domain check and save it in its release folder (``domain.json``).

    python scripts/calibrate_domain.py src/sketchheal/assets/model --data ../shared/data/sketch-rnn/aaron_sheep.npz

The model's own training drawings (``--n-train`` of the train split) fit the code Gaussian, its validation split
gives the percentiles of the code distance and of the decoder NLL (sketchheal.inference.domain).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sketchheal.inference.domain import calibrate
from sketchheal.inference.loading import load_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path, help="a release folder")
    ap.add_argument("--data", nargs="+", default=None, help="its training data (default: what its config records)")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not args.model.is_dir():
        raise SystemExit(f"{args.model}: not a release folder (export a checkpoint with `sketchheal export` first)")
    torch.set_num_threads(args.threads)
    healer = load_model(args.model, device="cpu")
    dom = calibrate(healer, args.data, n_train=args.n_train, n_valid=None)
    path = dom.save(args.model)
    print(json.dumps(dom.info))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
