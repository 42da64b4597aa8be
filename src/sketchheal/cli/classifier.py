"""``sketchheal train-classifier``: the Sketch-a-Net classifier of the recognition-accuracy metric; the work is
:func:`sketchheal.training.classifier.train_classifier`."""

from __future__ import annotations

import argparse
import json

from sketchheal.config import RENDER_MODES, ClassifierConfig
from sketchheal.training.classifier import REPORT_NAME, train_classifier


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-classifier", help="train the Sketch-a-Net classifier for recognition accuracy",
        description="Train Sketch-a-Net on the uncorrupted training sketches (one category per file) and report "
                    "its accuracy on the uncorrupted test sketches. Pass the result to `sketchheal evaluate "
                    "--classifier`.",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="sketch-rnn .npz or QuickDraw .ndjson files")
    p.add_argument("-o", "--out", required=True, help="output folder (classifier.pt, classifier.json)")
    p.add_argument("--steps", type=int, default=10_000, help="optimiser steps (default 10000)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--image-size", type=int, default=128, help="input side in pixels (default 128)")
    p.add_argument("--render-mode", default="reference", choices=RENDER_MODES,
                   help="how sketches are drawn (default reference, as the healing model)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers that render (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.set_defaults(func=_cli_train_classifier)


def _cli_train_classifier(args: argparse.Namespace) -> int:
    cfg = ClassifierConfig(steps=args.steps, batch_size=args.batch_size, image_size=args.image_size,
                           render_mode=args.render_mode, lr=args.lr, seed=args.seed)
    path = train_classifier(args.data, args.out, cfg, device=args.device, num_workers=args.workers,
                            progress=not args.no_progress)
    meta = json.loads((path.parent / REPORT_NAME).read_text())
    print(json.dumps({"checkpoint": str(path), "test_accuracy": meta["test_accuracy"], "n_test": meta["n_test"],
                      "categories": len(meta["categories"]), "note": meta["test_note"]}, indent=2))
    return 0
