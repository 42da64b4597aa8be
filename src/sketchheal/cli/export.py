"""``sketchheal export`` (a training checkpoint -> a release folder) and ``sketchheal import-reference`` (the
published Lmser-pix2seq weights -> a release folder); the work is :mod:`sketchheal.training.export`'s."""

from __future__ import annotations

import argparse

from sketchheal.config import PAPER_CATEGORIES
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.training.export import REFERENCE_SCALE, export_checkpoint, import_reference


def _summary(model: LmserPix2Seq, out_dir: str) -> str:
    n = model.num_parameters()
    return f"wrote {out_dir} (encoder {n['encoder']:,} parameters, decoder {n['decoder']:,})"


def _cmd_import(args: argparse.Namespace) -> int:
    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else PAPER_CATEGORIES
    extra = {"license": args.license} if args.license else None
    model = import_reference(args.encoder, args.decoder, args.out_dir, scale=args.scale, categories=categories,
                             max_seq_len=args.max_seq_len, lmser_loops=args.lmser_loops, extra=extra)
    print(_summary(model, args.out_dir))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    extra = {"license": args.license} if args.license else None
    model = export_checkpoint(args.checkpoint, args.out_dir, extra=extra)
    print(_summary(model, args.out_dir))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="turn a training checkpoint into a release directory",
                              description="Write model.safetensors + config.json from a `sketchheal train` checkpoint.")
    p.add_argument("checkpoint", help="training checkpoint (.pt) written by `sketchheal train`")
    p.add_argument("out_dir", help="release directory to write")
    p.add_argument("--license", default=None, help="licence note stored in config.json's extra")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser("import-reference", help="convert the published Lmser-pix2seq weights",
                              description="Map the published encoderRNN_*.pth and decoderRNN_*.pth state dicts onto "
                                          "this package's model (gmlp_residual='reference') and write a release "
                                          "directory.")
    p.add_argument("encoder", help="published encoder state dict, e.g. encoderRNN_epoch_150000.pth")
    p.add_argument("decoder", help="published decoder state dict, e.g. decoderRNN_epoch_150000.pth")
    p.add_argument("out_dir", help="release directory to write")
    p.add_argument("--scale", type=float, default=REFERENCE_SCALE,
                   help=f"offset normalisation the weights were trained with (default {REFERENCE_SCALE})")
    p.add_argument("--categories", default=None,
                   help="comma-separated category names (default: the paper's 17)")
    p.add_argument("--max-seq-len", type=int, default=200, help="longest sketch in points (default 200)")
    p.add_argument("--lmser-loops", type=int, default=2, help="Lmser feedback loops T (published: 2)")
    p.add_argument("--license", default=None, help="licence note stored in config.json's extra")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    p.set_defaults(func=_cmd_import)
