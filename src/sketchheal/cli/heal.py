"""``sketchheal heal``: heal images and sketch files (SVG / PNG / npz / side-by-side / ndjson outputs).

The flags build a ``HealConfig`` (``sketchheal.config``); ``sketchheal.inference.heal.heal`` does the work. A
drawing unlike what the model learned gets one line on stderr (and what completion did with it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sketchheal.config import HealConfig
from sketchheal.inference.heal import FORMATS, OUTPUT_FORMATS, heal, save_results
from sketchheal.inference.inputs import example_inputs
from sketchheal.inference.loading import load_model

_DEFAULT = HealConfig()
_MOST_NOTES = 10  # domain notes printed one a line; the rest are counted


def _unlike_action(r) -> str:
    """What completion did with a drawing unlike what the model learned (see inference.heal)."""
    if r.mode != "complete":
        return ""
    return "; completed by the gap-filler, which learned many kinds of drawing" if r.gapfilled else \
        "; gaps filled only, no parts invented"


def _formats(text: str) -> tuple[str, ...]:
    items = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in items if f not in OUTPUT_FORMATS]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown format(s) {bad or text!r}; "
                                         f"choose from {','.join(OUTPUT_FORMATS)}")
    return items


def register(subparsers) -> None:
    """Add ``sketchheal heal``."""
    p = subparsers.add_parser(
        "heal", help="heal sketches (images, .npz, .ndjson, .svg) into vector sketches",
        description="Heal sketches with a trained model and write SVG / PNG / npz / side-by-side files. "
                    "Images: dark ink on light paper (--invert for light on dark), any size.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image, .npz, .ndjson or .svg files")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="folder for the outputs")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="release directory or training checkpoint (default: the bundled model)")
    p.add_argument("--gapfill", default=None, metavar="PATH",
                   help="completion's gap-filler model (default: the bundled one with the bundled model; "
                        "'none': the healing model itself)")
    p.add_argument("--example", action="store_true", help="heal the bundled example inputs")
    p.add_argument("--mode", choices=("complete", "redraw"), default=_DEFAULT.mode,
                   help="complete: keep the input, add strokes (default); redraw: a new sketch from the code "
                        "(the published healing; --temperature, --samples, --candidates, --greedy apply)")
    p.add_argument("--gaps-only", action="store_true",
                   help="completion fills gaps only and adds no missing parts (drawings unlike what the model "
                        "learned always get gaps only)")
    p.add_argument("--mask", type=float, default=_DEFAULT.mask, metavar="P",
                   help="erase each patch candidate with probability P first (published protocol)")
    p.add_argument("--seed", type=int, default=_DEFAULT.seed,
                   help=f"seed of the masks and the sampling (default {_DEFAULT.seed})")
    p.add_argument("--temperature", type=float, default=_DEFAULT.temperature, metavar="T",
                   help=f"sampling temperature (default {_DEFAULT.temperature:g})")
    p.add_argument("--samples", type=int, default=_DEFAULT.samples, metavar="K",
                   help=f"healed sketches per input (default {_DEFAULT.samples})")
    p.add_argument("--greedy", action="store_true", help="deterministic decoding")
    p.add_argument("--candidates", type=int, default=_DEFAULT.candidates, metavar="K",
                   help="draw K sketches per sample and keep the one that agrees best with the ink the input "
                        "shows (default 8, or 1 with --greedy; 1 = plain sampling, the published protocol)")
    p.add_argument("--invert", action="store_true", help="images are light ink on a dark background")
    p.add_argument("--format", type=_formats, default=FORMATS, metavar="LIST",
                   help=f"comma-separated outputs from {','.join(OUTPUT_FORMATS)} (default: {','.join(FORMATS)}); "
                        "ndjson: one OUTDIR/FILE.ndjson per input FILE, one line per sketch in input order, "
                        "QuickDraw-style absolute strokes in the input's coordinates")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default)")
    p.add_argument("--batch-size", type=int, default=_DEFAULT.batch_size,
                   help=f"sketches per batch (default {_DEFAULT.batch_size})")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=_DEFAULT.precision,
                   help="bf16: faster on CPUs with AVX-512 BF16 and on GPUs, slightly different numbers")
    p.add_argument("--split", default=_DEFAULT.split,
                   help=f"split of sketch-rnn .npz files (default {_DEFAULT.split})")
    p.add_argument("--limit", type=int, default=_DEFAULT.limit, metavar="N",
                   help="first N sketches of each multi-sketch file")
    p.add_argument("--skip-long", action="store_true",
                   help="leave out sketches with more points than the model can draw (its max_seq_len) and say "
                        "how many, instead of stopping at the first")
    p.set_defaults(func=_cmd_heal)


def config_from_args(args: argparse.Namespace) -> HealConfig:
    """The ``HealConfig`` that the flags describe (validated)."""
    return HealConfig(mask=args.mask, seed=args.seed, temperature=args.temperature, samples=args.samples,
                      greedy=args.greedy, invert=args.invert, batch_size=args.batch_size, split=args.split,
                      limit=args.limit, precision=args.precision, candidates=args.candidates,
                      skip_long=args.skip_long, mode=args.mode, parts=not args.gaps_only).validate()


def _cmd_heal(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # before the model is loaded: a bad flag costs nothing
    inputs: list[Any] = list(args.inputs)
    if args.example:
        inputs = [*example_inputs(), *inputs]
    if not inputs:
        raise ValueError("no INPUT given; pass image / .npz / .ndjson / .svg files, or --example")
    if cfg.mode == "complete" and (cfg.samples != 1 or cfg.candidates is not None or cfg.greedy):
        print("note: --samples, --candidates and --greedy apply to --mode redraw; completion draws one healing",
              file=sys.stderr)
    healer = load_model(args.checkpoint, device=args.device)
    gapfill = False if (args.gapfill or "").lower() == "none" else args.gapfill
    results = heal(inputs, cfg, model=healer, gapfill=gapfill)
    written = save_results(results, args.out, args.format)
    for path in written:
        print(path)
    if results.skipped:
        print(f"skipped {len(results.skipped)} sketch(es) with more points than the model's "
              f"max_seq_len={healer.max_seq_len} (--skip-long): {_listed(results.skipped)}", file=sys.stderr)
    notes = [f"{r.source}: {r.domain_note}" + _unlike_action(r) for r in results if r.domain_note]
    for line in notes[:_MOST_NOTES]:
        print(line, file=sys.stderr)
    if len(notes) > _MOST_NOTES:
        print(f"... and {len(notes) - _MOST_NOTES} more drawing(s) unlike what the model learned", file=sys.stderr)
    what = (f"completed {len(results)} sketch(es) ({sum(len(r.added_lines) for r in results)} stroke(s) added)"
            if cfg.mode == "complete" else f"healed {len(results)} sketch(es)")
    print(f"{what} with {healer.source} -> {len(written)} file(s) in {args.out}", file=sys.stderr)
    return 0


def _listed(sources: list[str], most: int = 3) -> str:
    shown = ", ".join(sources[:most])
    return shown + (f" and {len(sources) - most} more" if len(sources) > most else "")
