"""``sketchheal evaluate``: healing (ink measures), retrieval top-k and recognition accuracy of healing models at
fixed masks, completion and redraw side by side with the floor.

The flags build an ``EvalConfig`` (``sketchheal.config``); ``sketchheal.evaluation.protocol.evaluate`` does the work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchheal.config import EvalConfig
from sketchheal.evaluation.evalset import parse_masks, parse_names
from sketchheal.evaluation.protocol import evaluate

_DEFAULT = EvalConfig()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="healing, retrieval top-k and recognition accuracy of healing models at fixed masks",
        description="Evaluate one or more healing models side by side on the test split, completion and redraw "
                    "next to the no-healing floor: the ink measures (erased-ink recall, added-ink precision, kept "
                    "ink), retrieval (healed -> originals and back; correct top-k and the published off-by-one "
                    "top-10) and recognition accuracy with a Sketch-a-Net classifier. See docs/evaluation.md.",
    )
    p.add_argument("--checkpoint", action="append", required=True, metavar="PATH",
                   help="release directory or training checkpoint; repeat for a side-by-side table")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="one .npz/.ndjson file per category")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--split", default=_DEFAULT.split, help=f"split to evaluate (default {_DEFAULT.split})")
    masks = ",".join(f"{m:g}" for m in _DEFAULT.masks)
    p.add_argument("--masks", default=masks, help=f"erase probabilities (default {masks})")
    p.add_argument("--temperature", type=float, default=_DEFAULT.temperature,
                   help=f"sampling temperature (default {_DEFAULT.temperature:g})")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--candidates", type=int, default=_DEFAULT.candidates, metavar="K",
                   help="heal K candidates per sketch and keep the one that agrees best with the ink of the "
                        f"corrupted input (default {_DEFAULT.candidates} = the published protocol)")
    p.add_argument("--seed", type=int, default=_DEFAULT.seed,
                   help=f"seed of the mask table and the sampling (default {_DEFAULT.seed})")
    p.add_argument("--classifier", default=None, help="output of `sketchheal train-classifier` (file or folder)")
    p.add_argument("--max-per-category", type=int, default=None, help="first N test sketches of each category")
    p.add_argument("--mask-table", default=None, help="masks.npy of an earlier evaluation: reuse its exact masks")
    p.add_argument("--batch-size", type=int, default=_DEFAULT.batch_size,
                   help=f"sketches per batch (default {_DEFAULT.batch_size})")
    p.add_argument("--device", default=_DEFAULT.device, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--workers", type=int, default=None, help="rendering workers (default: CPU count - 1, max 8)")
    p.add_argument("--grid-count", type=int, default=_DEFAULT.grid_count,
                   help=f"sketches per category grid (default {_DEFAULT.grid_count}; 0 = no grids)")
    p.add_argument("--modes", default=",".join(_DEFAULT.modes),
                   help="healings to compare with the floor: complete (keep the input, add strokes) and/or redraw "
                        f"(the published: a new sketch from the code) (default {','.join(_DEFAULT.modes)})")
    p.add_argument("--erase", default=",".join(_DEFAULT.erase),
                   help="raster (the published patch masks on the image) and/or vector (the same squares erased "
                        f"from the strokes) (default {','.join(_DEFAULT.erase)})")
    p.add_argument("--gapfill", default=_DEFAULT.gapfill, metavar="auto|none|PATH",
                   help="completion's gap-filler: auto = the bundled one with the bundled model when it ships "
                        "(as sketchheal heal), none = the model's own reconstruction, or a model path "
                        f"(default {_DEFAULT.gapfill})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli_evaluate)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """The ``EvalConfig`` that the flags describe (validated)."""
    cfg = EvalConfig(
        split=args.split, masks=list(parse_masks(args.masks)), temperature=args.temperature, greedy=args.greedy,
        seed=args.seed, candidates=args.candidates, classifier=args.classifier or "",
        max_per_category=args.max_per_category, mask_table=args.mask_table or "", batch_size=args.batch_size,
        device=args.device, num_workers=args.workers, grid_count=args.grid_count, modes=parse_names(args.modes),
        erase=parse_names(args.erase), gapfill=args.gapfill,
    )
    cfg.validate()
    return cfg


def _cli_evaluate(args: argparse.Namespace) -> int:
    evaluate(args.checkpoint, args.data, config_from_args(args), out_dir=args.out, progress=not args.no_progress)
    out = Path(args.out)
    print((out / "results.md").read_text())
    print(f"written: {out / 'results.json'}, results.md, per_category.json/.md, masks.npy, grids/")
    return 0
