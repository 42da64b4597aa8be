"""The ``sketchheal`` command. Each subcommand lives in the module that does its work.

A module takes part by defining ``register(subparsers)``, which adds its subcommand(s) and sets
``func`` (a function ``args -> int``) on each. Every subcommand is a thin layer over a Python function
of the same module, so everything the command does can also be called from Python.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sketchheal.utils.version import __version__

# (module, one-line help of what it adds) in the order shown by --help.
COMMAND_MODULES = (
    "sketchheal.cli.data",               # data info, data show, data convert
    "sketchheal.cli.download",           # download
    "sketchheal.cli.train",              # train
    "sketchheal.cli.export",             # export, import-reference
    "sketchheal.cli.heal",               # heal
    "sketchheal.cli.evaluate",           # evaluate
    "sketchheal.cli.classifier",         # train-classifier
    "sketchheal.cli.demo",               # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchheal",
        description="Sketch healing: complete partially erased sketches as vector drawings.",
    )
    parser.add_argument("--version", action="version", version=f"sketchheal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # Only an optional third-party dependency (e.g. gradio for `demo`) may be missing.
            if e.name and e.name.split(".")[0] == "sketchheal" and e.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `sketchheal data info ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"sketchheal {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
