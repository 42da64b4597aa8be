"""``sketchheal data info | show | convert``: inspect, draw and convert sketch files (.npz, .ndjson)."""

from __future__ import annotations

import argparse
import json

from sketchheal.sketch.convert import SKETCHRNN_SPLIT, convert
from sketchheal.sketch.io import RAW_MODES, SPLITS, InvalidSketchError
from sketchheal.sketch.summary import format_info, info
from sketchheal.sketch.viz import show

__all__ = ["register"]


def _limit(text: str) -> int | None:
    v = int(text)
    return None if v <= 0 else v


def _add_load_options(p: argparse.ArgumentParser, max_default: int | None, clip_default: float | None) -> None:
    p.add_argument("--max-seq-len", type=_limit, default=max_default, metavar="N",
                   help=f"keep sketches with at most N points; 0 = no limit (default: {max_default or 'no limit'})")
    p.add_argument("--clip", type=float, default=clip_default,
                   help=f"clip dx, dy to +-CLIP (default: {clip_default or 'none'})")
    p.add_argument("--recognized-only", action="store_true", help="drop drawings QuickDraw did not recognise")
    p.add_argument("--skip-invalid", action="store_true", help="count and skip invalid sketches instead of failing")
    p.add_argument("--raw", choices=RAW_MODES, default="simplify",
                   help="raw QuickDraw drawings: QuickDraw's simplification (default) or as drawn")


def _hint(e: InvalidSketchError) -> ValueError:
    """The library's error plus the flag of this command that skips such sketches."""
    return ValueError(f"{e}; fix the file, or skip such sketches with --skip-invalid")


def _cmd_info(args: argparse.Namespace) -> int:
    try:
        report = info(args.paths, max_seq_len=args.max_seq_len, clip=args.clip,
                      recognized_only=args.recognized_only, skip_invalid=args.skip_invalid, raw=args.raw)
    except InvalidSketchError as e:
        raise _hint(e) from None
    print(json.dumps(report, indent=2) if args.json else format_info(report))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    out = show(args.paths, args.output, split=args.split, n=args.n, cols=args.cols, cell=args.cell,
               captions=not args.no_captions, seed=args.seed, start=args.start, thickness=args.thickness,
               max_seq_len=args.max_seq_len, raw=args.raw)
    print(f"wrote {out}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    try:
        written = convert(args.inputs, args.output, to=args.to, split_sizes=args.split_sizes, seed=args.seed,
                          splits=[s for s in args.splits.split(",") if s], max_seq_len=args.max_seq_len,
                          clip=args.clip, recognized_only=args.recognized_only, skip_invalid=args.skip_invalid,
                          raw=args.raw)
    except InvalidSketchError as e:
        raise _hint(e) from None
    for path in written:
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data info``, ``data show`` and ``data convert``."""
    p = subparsers.add_parser("data", help="inspect, draw and convert sketch files (.npz, .ndjson)",
                              description="Inspect, draw and convert sketch files (sketch-rnn .npz, QuickDraw "
                                          ".ndjson).")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = sub.add_parser("info", help="counts, lengths, dropped sketches and the scale of sketch files")
    q.add_argument("paths", nargs="+", metavar="PATH", help=".npz / .ndjson files or folders")
    _add_load_options(q, 200, 1000.0)
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=_cmd_info)

    q = sub.add_parser("show", help="draw sketches into a grid picture")
    q.add_argument("paths", nargs="+", metavar="PATH", help=".npz / .ndjson files or folders")
    q.add_argument("--split", default="test", help="which .npz split (default: test)")
    q.add_argument("-n", type=int, default=64, help="how many sketches (default: 64)")
    q.add_argument("-o", "--output", required=True, help="picture to write (.png, .jpg)")
    q.add_argument("--cols", type=int, default=None, help="sketches per row (default: a square grid)")
    q.add_argument("--cell", type=int, default=160, help="cell side in pixels (default: 160)")
    q.add_argument("--thickness", type=int, default=2, help="line width in pixels (default: 2)")
    q.add_argument("--no-captions", action="store_true", help="no category captions")
    q.add_argument("--seed", type=int, default=None, help="pick sketches at random with this seed")
    q.add_argument("--start", type=int, default=0, help="skip the first START sketches (of each category)")
    q.add_argument("--max-seq-len", type=_limit, default=None, metavar="N", help="only sketches with <= N points")
    q.add_argument("--raw", choices=RAW_MODES, default="simplify", help="raw QuickDraw drawings: simplify or not")
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("convert", help="convert .ndjson <-> .npz (or filter / simplify within a format)")
    q.add_argument("inputs", nargs="+", metavar="IN", help=".npz / .ndjson files or folders")
    q.add_argument("-o", "--output", required=True,
                   help="output file (.npz / .ndjson, one input) or folder (one file per input, or per category "
                        "for .npz)")
    q.add_argument("--to", choices=("npz", "ndjson"), default=None,
                   help="output format (default: from -o, else the other format)")
    q.add_argument("--split-sizes", default=",".join(f"{x:.6g}" for x in SKETCHRNN_SPLIT),
                   help="ndjson -> npz: train,valid,test as fractions or counts (default: the sketch-rnn "
                        "proportions 70000:2500:2500)")
    q.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    q.add_argument("--splits", default=",".join(SPLITS), help="npz -> ndjson: splits to write (default: all)")
    _add_load_options(q, None, None)
    q.set_defaults(func=_cmd_convert)
