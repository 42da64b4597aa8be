"""``sketchheal demo``: serve the demo page (``sketchheal.demo.app.launch_demo``)."""

from __future__ import annotations

import argparse
import sys

from sketchheal.demo.app import INSTALL_HINT, gradio_available, launch_demo
from sketchheal.demo.logic import MAX_UPLOAD_MB


def register(subparsers) -> None:
    """Add ``sketchheal demo``."""
    p = subparsers.add_parser(
        "demo", help="draw or pick a sketch, erase parts, heal it in the browser (needs sketchheal[demo])",
        description="Serve a local web page to draw a sketch (or pick an example), erase parts of it, and heal "
                    "it: complete it (your strokes kept, the added strokes in colour) or redraw it as the "
                    "published method does. Works offline; uploads are "
                    f"limited to {MAX_UPLOAD_MB} MB; the files it writes are removed when it stops. "
                    "Needs Gradio: pip install 'sketchheal[demo]'.")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="release directory or training checkpoint (default: the bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port, 1-65535 (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs internet)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    if not gradio_available():
        print(f"sketchheal demo: {INSTALL_HINT}", file=sys.stderr)
        return 1
    launch_demo(args.checkpoint, host=args.host, port=args.port, share=args.share, device=args.device)
    return 0
