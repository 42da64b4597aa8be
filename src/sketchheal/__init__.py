"""sketchheal: sketch healing with Lmser-pix2seq.

Public API (imported lazily so that ``import sketchheal`` stays fast):

- ``sketchheal.heal(inputs, ...)``: heal sketches (images, stroke-3 arrays, files) into vector sketches.
- ``sketchheal.load_model(path=None)``: the bundled model, a release directory or a training checkpoint.
- ``sketchheal.load_sketches(paths, ...)``: sketch-rnn .npz / QuickDraw .ndjson into a packed SketchSet.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "heal": ("sketchheal.heal", "heal"),
    "load_model": ("sketchheal.heal", "load_model"),
    "load_sketches": ("sketchheal.data", "load_sketches"),
    "SketchSet": ("sketchheal.data", "SketchSet"),
    "Config": ("sketchheal.config", "Config"),
    "preset": ("sketchheal.config", "preset"),
    "LmserPix2Seq": ("sketchheal.model.pix2seq", "LmserPix2Seq"),
    "render": ("sketchheal.render", "render"),
    "corrupt": ("sketchheal.render", "corrupt"),
    "train": ("sketchheal.train", "train"),
    "evaluate": ("sketchheal.evaluate", "evaluate"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sketchheal' has no attribute {name!r}")
