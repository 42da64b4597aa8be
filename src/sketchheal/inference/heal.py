"""Heal sketches: any input (image, stroke file, SVG, array) -> the model's input image -> healed vector sketches.

Python::

    import sketchheal
    results = sketchheal.heal(["cat.png", "sheep.npz"], mask=0.3, seed=7)   # the bundled model
    results[0].save("out", formats=("svg", "png"))

Command line (``sketchheal.cli.heal``)::

    sketchheal heal cat.png sheep.npz -o out --mask 0.3 --seed 7

The walk of one call: the settings (:class:`sketchheal.config.HealConfig`) are checked; the inputs are read and
checked (:mod:`sketchheal.inference.inputs`) and turned into the images the model was trained on; the images are
healed (:func:`sketchheal.inference.redraw.redraw`: the published redrawing from the code); the results are
:class:`HealResult` objects that encode themselves as SVG / PNG / npz files. Everything is validated and healed
before anything is written, and every file is written atomically, so a bad input never leaves partial output.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sketchheal.config import HealConfig
from sketchheal.inference.inputs import (
    HealInput, example_inputs, expand_inputs, input_image, long_sketch_error, read_sketches, too_long,
)
from sketchheal.inference.loading import Healer, as_healer, load_model
from sketchheal.inference.redraw import redraw
from sketchheal.sketch.image import image_to_input, load_image
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.svg import strokes_to_svg
from sketchheal.sketch.viz import PREVIEW_SIZE, draw_strokes, model_image_to_u8
from sketchheal.utils.fileio import atomic_write, png_bytes

__all__ = ["FORMATS", "HealConfig", "HealResult", "HealResults", "Healer", "draw_strokes", "example_inputs",
           "heal", "heal_config", "image_to_input", "load_image", "load_model", "read_sketches", "save_results",
           "write_files"]

FORMATS = ("svg", "png", "npz", "side")


# ============================================================================================== results


@dataclass
class HealResult:
    """The healing of one input.

    source: the file (``path`` or ``path#i`` for the i-th sketch of a file) or ``array[j]``.
    name: a file-system-safe stem, unique within one :func:`heal` call (used by the CLI).
    input_image: ``(N, N) float32`` what the model saw (after normalisation and masking), ink +1.
    healed: one unnormalised stroke-3 ``(n, 3) float32`` per sample.
    original: the input sketch (unnormalised stroke-3) for vector inputs, else None.
    """

    source: str
    name: str
    input_image: np.ndarray
    healed: list[np.ndarray]
    original: np.ndarray | None = None

    def to_svg(self, k: int = 0, *, size: int = PREVIEW_SIZE, stroke_width: float | None = None) -> str:
        """Sample ``k`` as an SVG document (one ``<path>`` per stroke)."""
        return strokes_to_svg(self.healed[k], size=size, stroke_width=stroke_width)

    def to_png(self, k: int = 0, size: int = PREVIEW_SIZE) -> np.ndarray:
        """Sample ``k`` drawn black on white: ``(size, size) uint8``."""
        return draw_strokes(self.healed[k], size)

    def side_by_side(self, size: int = PREVIEW_SIZE) -> np.ndarray:
        """``(size, W) uint8``: input image | healed sample 0 | sample 1 ... | original (vector inputs)."""
        panels = [model_image_to_u8(self.input_image, size)] + [draw_strokes(s, size) for s in self.healed]
        if self.original is not None:
            panels.append(draw_strokes(self.original, size))
        gap = np.full((size, 4), 160, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [gap, p]
        return np.concatenate(row, 1)

    def files(self, stem: str | None = None, formats: Sequence[str] = FORMATS) -> dict[str, bytes]:
        """The output files as ``{file name: bytes}`` (nothing written). With several samples, per-sample files get
        ``_s0``, ``_s1``, ... suffixes; the npz holds all samples, the side-by-side shows all."""
        stem = stem or self.name
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown output format(s) {bad}; choose from {list(FORMATS)}")
        many = len(self.healed) > 1
        out: dict[str, bytes] = {}
        for k in range(len(self.healed)):
            sub = f"{stem}_s{k}" if many else stem
            if "svg" in formats:
                out[f"{sub}.svg"] = self.to_svg(k).encode("utf-8")
            if "png" in formats:
                out[f"{sub}.png"] = png_bytes(self.to_png(k))
        if "npz" in formats:
            arrays = {"strokes": self.healed[0], "input_image": self.input_image,
                      "samples": np.int64(len(self.healed))}
            for k in range(1, len(self.healed)):
                arrays[f"strokes_{k}"] = self.healed[k]
            if self.original is not None:
                arrays["original"] = self.original
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            out[f"{stem}.npz"] = buf.getvalue()
        if "side" in formats:
            out[f"{stem}_side.png"] = png_bytes(self.side_by_side())
        return out

    def save(self, out_dir: str | os.PathLike, stem: str | None = None,
             formats: Sequence[str] = FORMATS) -> list[Path]:
        """Write the outputs (see :meth:`files`) into ``out_dir``, each atomically; returns the paths written.

        All files are encoded before the first is written; if a write fails, the files already written by this
        call are removed again.
        """
        return write_files(Path(out_dir), self.files(stem, formats))


class HealResults(list):
    """The list of :class:`HealResult` that :func:`heal` returns, in input order, plus what was left out.

    skipped: the sources of the vector sketches left out for having more points than the model's max_seq_len
    (only with ``skip_long=True``; otherwise such a sketch is an error).
    """

    def __init__(self, results: Sequence[HealResult] = (), skipped: Sequence[str] = ()):
        super().__init__(results)
        self.skipped: list[str] = list(skipped)


def save_results(results: Sequence[HealResult], out_dir: str | os.PathLike,
                 formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write every result's files (named by ``result.name``) into ``out_dir``: all are encoded first, then written
    atomically; if a write fails, the files this call wrote are removed again. Returns the paths written."""
    files: dict[str, bytes] = {}
    for r in results:
        files.update(r.files(r.name, formats))
    return write_files(out_dir, files)


def write_files(out_dir: str | os.PathLike, files: dict[str, bytes]) -> list[Path]:
    """Write ``{name: bytes}`` into ``out_dir`` atomically; on any error remove what this call wrote, re-raise."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    try:
        for fname, data in files.items():
            path = out_dir / fname
            with atomic_write(path, "wb") as f:
                f.write(data)
            written.append(path)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return written


# ============================================================================================== healing


_FIELDS = tuple(f.name for f in dataclasses.fields(HealConfig))


def heal_config(config: HealConfig | None = None, **settings: Any) -> HealConfig:
    """``config`` (default ``HealConfig()``) with ``settings`` (HealConfig fields) set, validated; the caller's
    config is not changed. ``TypeError`` for a name that is not a field."""
    unknown = sorted(set(settings) - set(_FIELDS))
    if unknown:
        raise TypeError(f"unknown heal setting(s) {unknown}; HealConfig has {list(_FIELDS)}")
    if config is None:
        config = HealConfig()
    elif not isinstance(config, HealConfig):
        raise TypeError(f"config must be a HealConfig, got {type(config).__name__}")
    return dataclasses.replace(config, **settings).validate()


def heal(inputs: Any, config: HealConfig | None = None, *, model: Healer | str | os.PathLike | None = None,
         **settings: Any) -> HealResults:
    """Heal sketches.

    ``heal(inputs, mask=0.3, seed=7)``, or ``heal(inputs, HealConfig(mask=0.3), seed=7)``: the settings are the
    fields of :class:`~sketchheal.config.HealConfig`, given as one config, as keywords, or both (a keyword wins).
    ``inspect.signature(heal)`` lists every keyword with its default.

    Args:
        inputs: a path or numpy array, or a list of them. Files: images (PNG, JPG, ... any size), ``.npz``
            (``strokes``/``sketch`` key or sketch-rnn splits: ``split``, ``limit``), QuickDraw ``.ndjson``,
            ``.svg``. Arrays: any ``(n, 3)`` array is a stroke-3 sketch; other shapes are images ``(H, W)`` /
            ``(H, W, 1|3|4)`` (uint8 0..255 or floats in [0, 1]).
        config: the settings as one :class:`~sketchheal.config.HealConfig` (default: ``HealConfig()``).
        model: a :class:`Healer`, a path for :func:`load_model`, or None for the bundled model.
        mask: erase probability ``p`` for the published patch protocol (None / 0 = heal the input as it is).
            Input ``i`` uses row ``i`` of ``MaskTable(n, seed)``; images use stand-in candidates (see
            :func:`sketchheal.sketch.image.image_to_input`).
        seed: seeds the masks and the sampling; sample ``k`` of input ``i`` draws from noise key ``(seed, i, k)``,
            so results do not depend on ``batch_size``.
        temperature: sampling temperature tau (> 0; the published evaluation uses 0.01).
        samples: healed sketches per input (each from the same code, different noise).
        greedy: deterministic decoding (most likely component and pen, component mean).
        invert: image inputs are light ink on a dark background.
        batch_size: sketches encoded / decoded together.
        split, limit: which sketches of multi-sketch files (sketch-rnn split; the first ``limit`` of each file).
        precision: ``"fp32"`` (default) or ``"bf16"``: encoder under bfloat16 autocast and the decoder's matrix
            products in bfloat16 (faster on CPUs with AVX-512 BF16 and on GPUs; see ``sketchheal.inference.sample``).
        candidates: draw this many sketches for every sample and keep the one whose drawing agrees best with the
            ink the input shows (:mod:`sketchheal.inference.candidates`); 1 = plain sampling (the published
            protocol). None (default) = ``DEFAULT_CANDIDATES`` (8) when sampling, 1 with ``greedy`` (which draws
            one sketch). Pays off at temperatures of about 0.1 and above, where candidates differ.
        skip_long: leave out vector sketches with more points than the model's ``max_seq_len`` instead of failing;
            their sources are listed in the returned ``skipped`` (the others keep their index ``i``).

    Returns a :class:`HealResults` list: one :class:`HealResult` per sketch (a multi-sketch file gives several), in
    input order, with ``.skipped``. Raises ``ValueError`` / ``FileNotFoundError`` naming the input or the setting,
    before any healing, for bad inputs and settings (settings are checked before the model is loaded), and
    ``TypeError`` for a keyword that is not a setting.
    """
    cfg = heal_config(config, **settings)
    healer = as_healer(model)
    items = expand_inputs(inputs, split=cfg.split, limit=cfg.limit)
    if not items:
        raise ValueError("nothing to heal: no inputs")
    items, skipped = _drop_long(items, healer, cfg.skip_long)
    table = MaskTable(len(items) + len(skipped), cfg.seed) if cfg.mask else None
    images = np.stack([input_image(it, healer, mask=cfg.mask, table=table, invert=cfg.invert)
                       for it in items])  # (B, N, N)
    healed = redraw(healer, images, [it.index for it in items], cfg)
    return HealResults([HealResult(source=it.source, name=it.name, input_image=images[j], healed=healed[j],
                                   original=it.strokes) for j, it in enumerate(items)],
                       skipped=[it.source for it in skipped])


def _drop_long(items: list[HealInput], healer: Healer,
               skip_long: bool) -> tuple[list[HealInput], list[HealInput]]:
    """``(kept, skipped)``: without ``skip_long`` the first sketch over the model's limit is an error."""
    long = [it for it in items if too_long(it, healer)]
    if not long:
        return items, []
    if not skip_long:
        raise long_sketch_error(long[0], healer)
    kept = [it for it in items if not too_long(it, healer)]
    if not kept:
        raise ValueError(f"nothing to heal: all {len(long)} sketch(es) have more points than the model's "
                         f"max_seq_len={healer.max_seq_len}; simplify them (sketchheal.sketch.strokes.rdp)")
    return kept, long


def _signature_with_settings(fn) -> inspect.Signature:
    """``fn``'s signature with ``**settings`` spelled out as the HealConfig fields (keyword-only, their defaults)."""
    sig = inspect.signature(fn)
    defaults = HealConfig()
    hints = {f.name: f.type for f in dataclasses.fields(HealConfig)}
    fields = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, name),
                                annotation=hints[name]) for name in _FIELDS]
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return sig.replace(parameters=params + fields)


heal.__signature__ = _signature_with_settings(heal)
