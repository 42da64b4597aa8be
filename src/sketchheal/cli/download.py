"""``sketchheal download``: fetch sketch-rnn QuickDraw .npz files (:mod:`sketchheal.sketch.download`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchheal.sketch.categories import PAPER_CATEGORIES, QUICKDRAW_CATEGORIES
from sketchheal.sketch.download import DEFAULT_BASE_URL, download

__all__ = ["register"]


def _cmd_download(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(QUICKDRAW_CATEGORIES))
        return 0
    names = list(args.categories)
    if args.paper:
        names += PAPER_CATEGORIES
    if args.all:
        names += QUICKDRAW_CATEGORIES
    if args.to is None:
        raise ValueError("say where to put the files: --to DIR")

    def report(path: Path, fetched: bool) -> None:
        print(f"{'downloaded' if fetched else 'complete  '} {path}")

    paths = download(names, args.to, base_url=args.base_url, force=args.force, progress=not args.quiet,
                     on_file=report)
    print(f"{len(paths)} file(s) in {args.to}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``download``."""
    p = subparsers.add_parser("download", help="download sketch-rnn QuickDraw .npz files",
                              description="Download sketch-rnn QuickDraw .npz files (one per category) from "
                                          "Google's public bucket. Complete files are skipped.")
    p.add_argument("categories", nargs="*", metavar="CATEGORY", help='category names, e.g. cat "alarm clock"')
    p.add_argument("--to", default=None, metavar="DIR", help="folder to write <category>.npz into")
    p.add_argument("--paper", action="store_true", help="the paper's 17 categories")
    p.add_argument("--all", action="store_true", help="all 345 categories")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"where the files are (default: {DEFAULT_BASE_URL})")
    p.add_argument("--force", action="store_true", help="download again even if a file looks complete")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--list", action="store_true", help="print the 345 category names and exit")
    p.set_defaults(func=_cmd_download)
