"""Heal sketches: any input (image, stroke file, SVG, array) -> the healed drawing, in the input's own frame.

Python::

    import sketchheal
    results = sketchheal.heal(["cat.png", "sheep.ndjson"])        # the bundled model; completion
    r = results[0]
    r.input_lines, r.added_lines, r.domain_note                    # the input's strokes, the new ones, a warning
    results[0].save("out", formats=("svg", "png", "ndjson"))

Command line (``sketchheal.cli.heal``)::

    sketchheal heal cat.png sheep.ndjson -o out --format svg,ndjson

Two modes (``HealConfig.mode``):

- ``"complete"`` (default): the healed drawing is the input's own strokes, exactly as given (vector inputs; images:
  the centre lines traced from their ink), plus new strokes where the drawing has gaps or missing parts
  (:func:`sketchheal.inference.complete.complete`); nothing else changes. A drawing unlike what the model learned
  (:mod:`sketchheal.inference.domain`, ``HealResult.domain_note``) gets its gaps filled only, no invented parts,
  when the healing model reconstructs it; a gap-filler, which learned many kinds of drawing, completes it in full.
- ``"redraw"``: the published healing: the (masked) input image is encoded and the code decoded into a new sketch
  (:func:`sketchheal.inference.redraw.redraw`; ``temperature``, ``samples``, ``candidates``, ``greedy`` apply).

The walk of one call: the settings (:class:`sketchheal.config.HealConfig`) are checked; the inputs are read and
checked (:mod:`sketchheal.inference.inputs`), then healed; the results are :class:`HealResult` objects that encode
themselves as SVG / PNG / npz / side-by-side / ndjson files (:mod:`sketchheal.sketch.writers`). Everything is
validated and healed before anything is written, and every file is written atomically, so a bad input never leaves
partial output. Coordinates: see :mod:`sketchheal.inference.inputs` (the input's own frame).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sketchheal.config import HealConfig
from sketchheal.inference.complete import CompletionParams, complete, load_gapfill, model_view
from sketchheal.inference.domain import load_domain
from sketchheal.inference.inputs import (
    HealInput, completion_lines, drop_long, example_inputs, expand_inputs, image_strokes, input_image, read_sketches,
)
from sketchheal.inference.loading import Healer, as_healer, load_model
from sketchheal.inference.redraw import redraw
from sketchheal.sketch.image import image_to_input, load_image
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import blank
from sketchheal.sketch.strokes import stroke3_to_polylines
from sketchheal.sketch.svg import strokes_to_svg
from sketchheal.sketch.viz import PREVIEW_SIZE, draw_strokes, model_image_to_u8
from sketchheal.sketch.writers import (
    clean_lines, healed_picture, healed_stroke3, healed_svg, ndjson_line, ndjson_record, place_on_box,
)
from sketchheal.utils.fileio import atomic_write, png_bytes
from sketchheal.utils.paths import BUNDLED_MODEL_DIR

__all__ = ["FORMATS", "OUTPUT_FORMATS", "HealConfig", "HealResult", "HealResults", "Healer", "draw_strokes",
           "example_inputs", "heal", "heal_config", "image_to_input", "load_image", "load_model", "read_sketches",
           "save_results", "write_files"]

FORMATS = ("svg", "png", "npz", "side")  # the files of one sketch (the default outputs)
OUTPUT_FORMATS = FORMATS + ("ndjson",)  # ndjson: one file per input file, one line per sketch


# ============================================================================================== results


@dataclass
class HealResult:
    """The healing of one input.

    source: the file (``path`` or ``path#i`` for the i-th sketch of a file) or ``array[j]``.
    name: a file-system-safe stem, unique within one :func:`heal` call (used by the CLI).
    input_image: ``(N, N) float32`` what the model saw (after normalisation and masking), ink +1.
    healed: stroke-3 ``(n, 3) float32`` sketches. Redraw: one unnormalised sketch per sample. Complete: one, the
        healed drawing (the input's strokes, then the added ones) whose pen starts at :attr:`start`.
    original: the input sketch (unnormalised stroke-3, before any masking) for vector inputs, else None.
    mode: ``"complete"`` or ``"redraw"``.
    input_lines: the input's strokes in its own frame (absolute ``(k, 2) float64``; see
        :mod:`sketchheal.inference.inputs`): exactly as given, after the erasure when ``mask`` is set; images:
        the traced centre lines.
    added_lines: the strokes completion added, in the same frame (empty for redraw). gapfilled: a gap-filler
        reconstructed the drawing (then a drawing unlike what the healing model learned is completed in full).
    typicality: how typical the input is for the model (``distance``, ``percentile``, ``typical``, ``message``;
        :mod:`sketchheal.inference.domain`), None when the model has no calibration.
    record: an ``.ndjson`` input's JSON object (every field), else None. input_drawing: its strokes as given, when
        they are the input's strokes (not masked), else None. group: the ndjson output file's stem. coords: the
        input's frame (``ndjson``, ``svg``, ``stroke-3``, ``pixels``).
    redrawn_lines: redraw only: sample 0 placed on the bounding box of ``input_lines``.
    start, input_rows: complete only: where the pen of ``healed[0]`` starts (the input's first point, in its
    frame) and how many of its rows draw the input's strokes. masked: the input was erased (``mask``) first.
    """

    source: str
    name: str
    input_image: np.ndarray
    healed: list[np.ndarray]
    original: np.ndarray | None = None
    mode: str = "redraw"
    input_lines: list[np.ndarray] = field(default_factory=list)
    added_lines: list[np.ndarray] = field(default_factory=list)
    typicality: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    input_drawing: list | None = None
    group: str = ""
    coords: str = ""
    redrawn_lines: list[np.ndarray] = field(default_factory=list)
    gapfilled: bool = False
    start: np.ndarray = field(default_factory=lambda: np.zeros(2))
    input_rows: int = 0
    masked: bool = False

    @property
    def lines(self) -> list[np.ndarray]:
        """The healed drawing in the input's frame: complete: ``input_lines + added_lines``; redraw: the
        redrawn sample 0 placed on the input's bounding box."""
        if self.mode == "redraw":
            return list(self.redrawn_lines)
        return list(self.input_lines) + list(self.added_lines)

    @property
    def domain_note(self) -> str | None:
        """A sentence for people when the input is unlike what the model learned (else None)."""
        t = self.typicality
        return None if t is None or t.get("typical", True) else str(t["message"])

    def to_svg(self, k: int = 0, *, size: int = PREVIEW_SIZE, stroke_width: float | None = None) -> str:
        """Complete: the drawing in the input's coordinates, ``<g id="input">`` and ``<g id="added">``
        (``stroke_width`` in input units). Redraw: sample ``k`` fitted into a ``size`` square."""
        if self.mode == "redraw":
            return strokes_to_svg(self.healed[k], size=size, stroke_width=stroke_width)
        return healed_svg(self.input_lines, self.added_lines, size=size, stroke_width=stroke_width)

    def to_png(self, k: int = 0, size: int = PREVIEW_SIZE) -> np.ndarray:
        """Complete: ``(size, size, 3) uint8`` BGR, input black, added strokes in colour. Redraw: sample ``k``
        drawn black on white, ``(size, size) uint8``."""
        if self.mode == "redraw":
            return draw_strokes(self.healed[k], size)
        return healed_picture(self.input_lines, self.added_lines, size)

    def to_ndjson_record(self) -> dict[str, Any]:
        """The QuickDraw-style record: the input's fields (``word``, ``key_id``, ...; other inputs: ``key_id`` =
        ``name``) and ``drawing`` = the input's strokes as given, then the added strokes (redraw: the redrawn
        strokes only), absolute, in the input's coordinates."""
        fields = {"key_id": self.name}
        if self.mode == "redraw":
            return ndjson_record([], self.redrawn_lines, record=self.record, drawing=[], fields=fields)
        return ndjson_record(self.input_lines, self.added_lines, record=self.record, drawing=self.input_drawing,
                             fields=fields)

    def side_by_side(self, size: int = PREVIEW_SIZE) -> np.ndarray:
        """Redraw: ``(size, W) uint8``: input image | sample 0 | sample 1 ... | original (vector inputs).
        Complete: ``(size, W, 3) uint8``: input image | the healed drawing in colour (| the original, when the
        input was masked)."""
        if self.mode == "redraw":
            panels = [model_image_to_u8(self.input_image, size)] + [draw_strokes(s, size) for s in self.healed]
            if self.original is not None:
                panels.append(draw_strokes(self.original, size))
            gap = np.full((size, 4), 160, np.uint8)
        else:
            gray = [model_image_to_u8(self.input_image, size)]
            if self.original is not None and self.masked:
                gray.append(draw_strokes(self.original, size))
            panels = [np.repeat(p[..., None], 3, 2) for p in gray]
            panels.insert(1, self.to_png(size=size))
            gap = np.full((size, 4, 3), 160, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [gap, p]
        return np.concatenate(row, 1)

    def _npz(self) -> bytes:
        if self.mode == "redraw":
            arrays = {"strokes": self.healed[0], "input_image": self.input_image,
                      "samples": np.int64(len(self.healed))}
            for k in range(1, len(self.healed)):
                arrays[f"strokes_{k}"] = self.healed[k]
        else:
            arrays = {"strokes": self.healed[0], "start": np.asarray(self.start, np.float64),
                      "input_rows": np.int64(self.input_rows), "input_image": self.input_image,
                      "samples": np.int64(1)}
        if self.original is not None:
            arrays["original"] = self.original
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def files(self, stem: str | None = None, formats: Sequence[str] = FORMATS) -> dict[str, bytes]:
        """The output files as ``{file name: bytes}`` (nothing written). Redraw with several samples: per-sample
        files get ``_s0``, ``_s1``, ... suffixes; the npz holds all samples, the side-by-side shows all.
        ``ndjson``: ``stem.ndjson``, this sketch's one line (:func:`save_results` writes one file per input file).
        """
        stem = stem or self.name
        bad = [f for f in formats if f not in OUTPUT_FORMATS]
        if bad:
            raise ValueError(f"unknown output format(s) {bad}; choose from {list(OUTPUT_FORMATS)}")
        n = len(self.healed) if self.mode == "redraw" else 1
        out: dict[str, bytes] = {}
        for k in range(n):
            sub = f"{stem}_s{k}" if n > 1 else stem
            if "svg" in formats:
                out[f"{sub}.svg"] = self.to_svg(k).encode("utf-8")
            if "png" in formats:
                out[f"{sub}.png"] = png_bytes(self.to_png(k))
        if "npz" in formats:
            out[f"{stem}.npz"] = self._npz()
        if "side" in formats:
            out[f"{stem}_side.png"] = png_bytes(self.side_by_side())
        if "ndjson" in formats:
            out[f"{stem}.ndjson"] = (ndjson_line(self.to_ndjson_record()) + "\n").encode("utf-8")
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
    (redraw with ``skip_long=True`` only; otherwise such a sketch is an error; completion has no length limit).
    """

    def __init__(self, results: Sequence[HealResult] = (), skipped: Sequence[str] = ()):
        super().__init__(results)
        self.skipped: list[str] = list(skipped)


def save_results(results: Sequence[HealResult], out_dir: str | os.PathLike,
                 formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write every result's files (named by ``result.name``) into ``out_dir``; ``ndjson``: one file per input
    file (``group.ndjson``), one line per sketch in input order. All are encoded first, then written atomically;
    if a write fails, the files this call wrote are removed again. Returns the paths written."""
    files: dict[str, bytes] = {}
    per_sketch = [f for f in formats if f != "ndjson"]
    for r in results:
        files.update(r.files(r.name, per_sketch))
    if "ndjson" in formats:
        groups: dict[str, list[str]] = {}
        for r in results:
            groups.setdefault(f"{r.group or r.name}.ndjson", []).append(ndjson_line(r.to_ndjson_record()) + "\n")
        files.update({name: "".join(lines).encode("utf-8") for name, lines in groups.items()})
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
         gapfill: Healer | str | os.PathLike | bool | None = None, **settings: Any) -> HealResults:
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
        gapfill: completion's gap-filler, whose reconstruction fills the gaps (:mod:`sketchheal.inference.complete`):
            a :class:`Healer` or a path; None: the bundled gap-filler when healing with the bundled model and one
            ships, else the model itself; False: the model itself.
        mode: ``"complete"`` (default: keep the input, add strokes) or ``"redraw"`` (the published healing).
        parts: completion may add parts the drawing lacks (strokes of the model's reconstruction that join no gap)
            when the drawing is typical for the model; False: fill gaps only.
        mask: erase probability ``p`` (None / 0 = heal the input as it is); input ``i`` uses row ``i`` of
            ``MaskTable(n, seed)``. Completion erases squares from vector strokes (:mod:`sketchheal.sketch.erase`),
            redraw uses the published raster masks; images use stand-in candidates (see
            :func:`sketchheal.sketch.image.image_to_input`).
        seed: seeds the masks and the sampling; sample ``k`` of input ``i`` draws from noise key ``(seed, i, k)``,
            so results do not depend on ``batch_size``.
        temperature, samples, greedy, candidates, precision: redraw only (see
            :mod:`sketchheal.inference.redraw` and :mod:`sketchheal.inference.candidates`): sampling temperature
            (the published evaluation uses 0.01), healed sketches per input, deterministic decoding, best of K
            (None = 8 when sampling, 1 with greedy), ``"fp32"`` / ``"bf16"``.
        invert: image inputs are light ink on a dark background.
        batch_size: sketches encoded / decoded together (speed only).
        split, limit: which sketches of multi-sketch files (sketch-rnn split; the first ``limit`` of each file).
        skip_long: redraw: leave out vector sketches with more points than the model's ``max_seq_len`` instead of
            failing; their sources are listed in the returned ``skipped`` (the others keep their index ``i``).

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
    domain = load_domain(healer.source) if healer.source else None
    if cfg.mode == "complete":
        return _complete(healer, items, cfg, domain, _gapfill(gapfill, healer))
    return _redraw(healer, items, cfg, domain)


def _gapfill(gapfill: Any, healer: Healer) -> Healer | None:
    """The gap-filler to use (see :func:`heal`'s ``gapfill``)."""
    if gapfill is False:
        return None
    if gapfill is None:
        bundled = bool(healer.source) and Path(healer.source).resolve() == BUNDLED_MODEL_DIR.resolve()
        return load_gapfill(device=str(healer.device)) if bundled else None
    return gapfill if isinstance(gapfill, Healer) else load_model(gapfill, device=str(healer.device))


def _common(it: HealInput) -> dict[str, Any]:
    return dict(source=it.source, name=it.name, original=it.strokes if it.lines is not None else None,
                record=it.record, group=it.group, coords=it.coords)


def _complete(healer: Healer, items: list[HealInput], cfg: HealConfig, domain: Any,
              gapfill: Healer | None) -> HealResults:
    """Completion of every item (one batched encoder pass); atypical drawings get their gaps filled only."""
    table = MaskTable(len(items), cfg.seed) if cfg.mask else None
    drawings = [completion_lines(it, mask=cfg.mask, table=table, invert=cfg.invert) for it in items]
    size, mode = healer.image_size, healer.render_mode
    views = [model_view(d, size, mode) for d in drawings]
    params = CompletionParams() if cfg.parts else dataclasses.replace(CompletionParams(), residual=False)
    ordered = [it.lines is not None for it in items]  # traced pictures: the stroke order means nothing
    comps = complete(healer, drawings, gapfill=gapfill, params=params, views=views, batch_size=cfg.batch_size,
                     domain=domain, ordered=ordered)
    unlike = [i for i, c in enumerate(comps) if c.typicality is not None and not c.typicality["typical"]]
    if params.residual and unlike and gapfill is None:
        # the healing model itself reconstructs a drawing unlike what it learned: fill its gaps, invent no parts
        # (a gap-filler, which learned many kinds of drawing, completes every drawing in full)
        again = complete(healer, [drawings[i] for i in unlike], gapfill=gapfill, views=[views[i] for i in unlike],
                         params=dataclasses.replace(params, residual=False), batch_size=cfg.batch_size,
                         ordered=[ordered[i] for i in unlike])
        for i, c in zip(unlike, again):
            comps[i].added_lines = c.added_lines
    results = []
    for it, c in zip(items, comps):
        c.added_lines = [a for a in c.added_lines if len(a) and np.isfinite(a).all()]
        exact = not cfg.mask and it.lines is not None
        rows, start, n_in = healed_stroke3(c.input_lines, c.added_lines,
                                           it.strokes if exact and it.coords == "stroke-3" else None)
        results.append(HealResult(
            **_common(it), input_image=c.image if c.image is not None else blank(size), healed=[rows],
            mode="complete", input_lines=c.input_lines, added_lines=c.added_lines, typicality=c.typicality,
            input_drawing=it.record["drawing"] if exact and it.record is not None else None, start=start,
            input_rows=n_in, masked=bool(cfg.mask), gapfilled=gapfill is not None))
    return HealResults(results)


def _redraw(healer: Healer, items: list[HealInput], cfg: HealConfig, domain: Any) -> HealResults:
    """The published healing of every item (see :mod:`sketchheal.inference.redraw`)."""
    items, skipped = drop_long(items, healer, cfg.skip_long)
    table = MaskTable(len(items) + len(skipped), cfg.seed) if cfg.mask else None
    images = np.stack([input_image(it, healer, mask=cfg.mask, table=table, invert=cfg.invert)
                       for it in items])  # (B, N, N)
    healed = redraw(healer, images, [it.index for it in items], cfg)
    drawn = [it.lines if it.lines is not None else image_strokes(it.gray, invert=cfg.invert, name=it.source)
             for it in items]
    typical = domain.typicality(healer, images, [clean_lines(x) for x in drawn], cfg.batch_size) \
        if domain is not None else [None] * len(items)
    results = []
    for j, it in enumerate(items):
        lines = drawn[j]
        redrawn = stroke3_to_polylines(healed[j][0]) if len(healed[j][0]) else []
        results.append(HealResult(**_common(it), input_image=images[j], healed=healed[j], mode="redraw",
                                  input_lines=clean_lines(lines), typicality=typical[j],
                                  redrawn_lines=place_on_box(redrawn, clean_lines(lines)), masked=bool(cfg.mask)))
    return HealResults(results, skipped=[it.source for it in skipped])


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
