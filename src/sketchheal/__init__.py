"""sketchheal: sketch healing with Lmser-pix2seq.

The public API::

    import sketchheal
    results = sketchheal.heal(["drawing.png", "sheep.npz"])      # the bundled model
    model = sketchheal.load_model("runs/mine/ckpt_last.pt")       # a release folder, checkpoint or None
    sketches = sketchheal.load_sketches("cat.npz", split="test")  # sketch-rnn .npz / QuickDraw .ndjson
    image = sketchheal.render(sketches[0])                         # the published rasterisation
    sketchheal.train(sketchheal.preset("cpu-small"), "runs/mine")
"""

from __future__ import annotations

from sketchheal.utils.version import __version__
from sketchheal.config import Config, preset
from sketchheal.sketch.io import SketchSet, load_sketches
from sketchheal.sketch.render import corrupt, render
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.inference.heal import Healer, HealResult, heal, load_model
from sketchheal.training.trainer import train
from sketchheal.evaluation.protocol import evaluate

__all__ = [
    "__version__", "heal", "load_model", "Healer", "HealResult", "load_sketches", "SketchSet", "render",
    "corrupt", "Config", "preset", "LmserPix2Seq", "train", "evaluate",
]
