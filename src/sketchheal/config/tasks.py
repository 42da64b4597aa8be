"""Configs of the tasks that use a trained model: healing, evaluation, and the classifier of the recognition figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


from sketchheal.config.checks import RENDER_MODES, _check, _check_fields, _finite, _integer, _whole
from sketchheal.config.run import _build


@dataclass
class ClassifierConfig:
    """The Sketch-a-Net classifier of the recognition-accuracy metric (``sketchheal train-classifier``).

    Saved as ``config`` in ``classifier.pt`` / ``classifier.json``; the network is built from it again on loading.
    """
    # Side of the rendered input image (the papers: 225 or 256; ours: the healing model's 128).
    image_size: int = 128
    # sketchheal.sketch.render mode of the training images: "reference" = the published 640-px rendering.
    render_mode: str = "reference"
    # Keep sketches with at most this many points (the healing protocol's filter).
    max_seq_len: int = 200
    # Channel-width multiplier (1.0 = Sketch-a-Net's 64/128/256/256/256/512/512).
    width: float = 1.0
    # Dropout after L6 and L7. Sketch-a-Net: 0.5.
    dropout: float = 0.5
    # Batch normalisation after every convolution (not in Sketch-a-Net; stable training from scratch with Adam).
    batch_norm: bool = True
    # Optimiser steps.
    steps: int = 10_000
    # Images per step.
    batch_size: int = 128
    # AdamW; the rate decays by a cosine to 1 % of this over the run, after a 2 % linear warm-up.
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # Seed of the weights, the data order and the jitter.
    seed: int = 0
    # Random small affine jitter of the training images: scale, rotation (degrees), shift (fraction of the side),
    # horizontal flip.
    jitter_scale: float = 0.1
    jitter_rotate: float = 10.0
    jitter_shift: float = 0.05
    jitter_flip: bool = True

    def validate(self) -> "ClassifierConfig":
        """Raise ``ValueError`` naming the first field a classifier cannot be trained or built from."""
        _check_fields("classifier", self, {
            "render_mode": RENDER_MODES, "max_seq_len": "int>=1", "width": ">0", "dropout": "[0,1)",
            "steps": "int>=1", "batch_size": "int>=1", "lr": ">0", "weight_decay": ">=0", "seed": "int>=0",
            "jitter_scale": "[0,1)", "jitter_rotate": ">=0", "jitter_shift": ">=0"})
        _check(_whole(self.image_size, 28), f"classifier.image_size must be an integer >= 28, got {self.image_size!r}")
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifierConfig":
        return _build(cls, d)


HEAL_PRECISIONS = ("fp32", "bf16")  # heal.precision
HEAL_MODES = ("complete", "redraw")  # heal.mode


@dataclass
class HealConfig:
    """``sketchheal heal`` / ``sketchheal.heal``: how inputs are healed (the model itself is not a setting).

    "Paper" is the published healing: one sample at temperature 0.01 from the encoder mean of the masked image.
    """

    # Erase probability p of the published patch protocol before healing; None or 0 = heal the input as it is.
    mask: float | None = None
    # Seed of the masks (row i of MaskTable(n, seed) for input i) and the sampling (noise key (seed, i, k)).
    seed: int = 0
    # Sampling temperature tau (> 0; ignored with greedy). Paper: 0.01; our default with best of 8: 0.1.
    temperature: float = 0.1
    # Healed sketches per input, each from the same code with its own noise.
    samples: int = 1
    # Deterministic decoding: the most likely mixture component and pen state, the component's mean.
    greedy: bool = False
    # Image inputs are light ink on a dark background.
    invert: bool = False
    # Sketches encoded and decoded together; changes speed only, never a result.
    batch_size: int = 64
    # Split of sketch-rnn .npz files that is read (train, valid or test).
    split: str = "test"
    # Heal only the first N sketches of each multi-sketch file; None = all.
    limit: int | None = None
    # "fp32", or "bf16": encoder under bfloat16 autocast, the decoder's matrix products in bfloat16 (faster on
    # CPUs with AVX-512 BF16 and on GPUs, slightly different numbers).
    precision: str = "fp32"
    # Best of K: draw K sketches per sample, keep the one agreeing best with the input's ink; 1 = plain sampling
    # (paper); None = 8 when sampling, 1 with greedy.
    candidates: int | None = None
    # Leave out vector sketches with more points than the model's max_seq_len (and count them) instead of failing.
    skip_long: bool = False
    # "complete": keep the input's strokes, add strokes where it has gaps or missing parts (issue 17); "redraw": a
    # new sketch decoded from the code (paper; temperature, samples, greedy, candidates, precision apply to it).
    mode: str = "complete"
    # Completion may add missing parts (not only bridge gaps) to drawings typical of the model.
    parts: bool = True

    def validate(self) -> "HealConfig":
        """Raise ``ValueError`` naming the first field healing cannot run with (before anything is loaded)."""
        _check(self.mode in HEAL_MODES, f"mode must be one of {HEAL_MODES}, got {self.mode!r}")
        _check(self.mask is None or (_finite(self.mask) and 0 <= self.mask <= 1),
               f"mask must be a probability in [0, 1] (or None), got {self.mask!r}")
        _check(_integer(self.seed, 0), f"seed must be an integer >= 0, got {self.seed!r}")
        for name in ("greedy", "invert", "skip_long", "parts"):
            _check(isinstance(getattr(self, name), bool),
                   f"{name} must be true or false, got {getattr(self, name)!r}")
        _check(self.greedy or (_finite(self.temperature) and self.temperature > 0),
               f"temperature must be > 0 (or use greedy), got {self.temperature!r}")
        _check(_integer(self.samples, 1), f"samples must be >= 1, got {self.samples!r}")
        _check(_integer(self.batch_size, 1), f"batch_size must be >= 1, got {self.batch_size!r}")
        _check(isinstance(self.split, str) and bool(self.split), f"split must be a split name, got {self.split!r}")
        _check(self.limit is None or _integer(self.limit, 1),
               f"limit must be an integer >= 1 (or None: all), got {self.limit!r}")
        _check(self.precision in HEAL_PRECISIONS,
               f"precision must be one of {HEAL_PRECISIONS}, got {self.precision!r}")
        _check(self.candidates is None or (_integer(self.candidates, 1)
                                           and not (self.greedy and self.candidates > 1)),
               f"candidates must be >= 1 (and 1 with greedy decoding, which draws one sketch), "
               f"got {self.candidates!r}")
        return self


EVAL_DEVICES = ("auto", "cpu", "cuda", "mps")  # eval.device (also cuda:N)
EVAL_MODES = ("complete", "redraw")  # eval.modes
EVAL_ERASE = ("raster", "vector")  # eval.erase


@dataclass
class EvalConfig:
    """``sketchheal evaluate`` (``sketchheal.evaluation.protocol.evaluate``): the protocol of docs/evaluation.md.

    "Paper" is the published Lmser-pix2seq evaluation. Not part of ``Config``: an evaluation reads trained models,
    it is not a setting of a training run.
    """

    # Split of each category file that is evaluated. Paper: "test" (2,500 sketches per category, 17 categories).
    split: str = "test"
    # Erase probabilities p of the patch candidates, one evaluation per p; one mask table for all, so the masks are
    # nested across p. Paper: 0.1 and 0.3 (0.5 in later work).
    masks: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    # Sampling temperature of the healed sketch (ignored with greedy). Paper: 0.01.
    temperature: float = 0.01
    # Greedy decoding (most likely mixture component and pen state) instead of sampling. Paper: False.
    greedy: bool = False
    # Seed of the mask table (when none is loaded) and of the sampling noise, keyed per sketch. Paper: a fixed
    # seed.npy indexed by sketch and point (not the same draws as ours, see docs/evaluation.md).
    seed: int = 0
    # Healed candidates per sketch; the one whose ink agrees best with the corrupted input is kept. Paper: 1.
    candidates: int = 1
    # Output of `sketchheal train-classifier` (file or folder) for recognition accuracy; "" = none. Paper: a
    # Sketch-a-Net at 256 px, not released.
    classifier: str = ""
    # Keep the first N sketches of each category (development numbers: a smaller gallery makes top-k easier);
    # None = all. Paper: all.
    max_per_category: int | None = None
    # masks.npy of an earlier evaluation to reuse its exact masks (at least as many rows as sketches); "" = make
    # one from the seed. Paper: its own seed.npy.
    mask_table: str = ""
    # Sketches per batch when encoding and decoding; changes speed only, never a number.
    batch_size: int = 100
    # auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.
    device: str = "auto"
    # DataLoader workers that render the images; None = one less than the CPU count, at most 8; 0 = in-process.
    num_workers: int | None = None
    # Sketches per category in each picture grid (corrupted | healed | original); 0 = no grids.
    grid_count: int = 8
    # Healings compared side by side with the floor: "complete" (keep the input, add strokes: sketchheal heal's
    # default) and/or "redraw" (a new sketch decoded from the code). Paper: redraw only.
    modes: list[str] = field(default_factory=lambda: ["complete", "redraw"])
    # How the inputs lose ink: "raster" (the published patch masks on the rendered image) and/or "vector" (the same
    # squares erased from the vector strokes, as healing an ndjson file). Paper: raster.
    erase: list[str] = field(default_factory=lambda: ["raster"])
    # Completion's gap-filler: "auto" (the bundled one with the bundled model when one ships, as sketchheal heal),
    # "none" (the model's own reconstruction) or a path (release folder or checkpoint).
    gapfill: str = "auto"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field an evaluation cannot run with (before anything is loaded)."""
        _check(isinstance(self.split, str) and bool(self.split), f"eval.split must be a split name, got {self.split!r}")
        _check(isinstance(self.masks, (list, tuple)) and len(self.masks) > 0
               and all(_finite(p) and 0 <= p <= 1 for p in self.masks),
               f"eval.masks must be a non-empty list of probabilities in [0, 1], e.g. 0.1,0.3,0.5, got {self.masks!r}")
        _check(isinstance(self.greedy, bool), f"eval.greedy must be true or false, got {self.greedy!r}")
        _check_fields("eval", self, {"seed": "int>=0", "candidates": "int>=1", "batch_size": "int>=1",
                                     "grid_count": "int>=0"})
        _check(_finite(self.temperature) and (self.temperature > 0 or self.greedy),
               f"eval.temperature must be > 0 (or use greedy decoding), got {self.temperature!r}")
        _check(not (self.greedy and self.candidates > 1),
               f"eval.candidates must be 1 with greedy decoding, got {self.candidates!r}")
        for name in ("classifier", "mask_table"):
            value = getattr(self, name)
            _check(isinstance(value, str), f"eval.{name} must be a path or \"\", got {value!r}")
        for name, low in (("max_per_category", 1), ("num_workers", 0)):
            value = getattr(self, name)
            _check(value is None or _whole(value, low),
                   f"eval.{name} must be an integer >= {low} or None, got {value!r}")
        for name, allowed in (("modes", EVAL_MODES), ("erase", EVAL_ERASE)):
            value = getattr(self, name)
            _check(isinstance(value, (list, tuple)) and len(value) > 0 and len(set(value)) == len(value)
                   and all(v in allowed for v in value),
                   f"eval.{name} must be a non-empty list of distinct names from {allowed}, got {value!r}")
        _check(isinstance(self.gapfill, str) and bool(self.gapfill),
               f"eval.gapfill must be auto, none or a path, got {self.gapfill!r}")
        device = self.device if isinstance(self.device, str) else ""
        _check(device in EVAL_DEVICES or (device.startswith("cuda:") and device[5:].isdigit()),
               f"eval.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
