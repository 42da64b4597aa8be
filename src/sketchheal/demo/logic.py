"""The demo's work, as plain functions that need no browser and no Gradio (the page is ``sketchheal.demo.app``).

- :func:`heal_sketch`: a canvas value (``gr.Sketchpad``'s dict with ``composite``, or an image array) and the
  page's settings -> :class:`DemoResult` (the library's SVG / PNG of the result: completion shows the input's
  strokes black and the added strokes in colour; the domain warning; the files).
- :func:`erasure_preview`: what Heal will erase from the drawing (shown with the canvas while erasing is on).
- :func:`model_name`: the model named by what it learned ("Sheep (bundled model)").
- :func:`canvas_to_image` / :func:`has_ink`: what is on the canvas, as a grey picture.
- :func:`list_examples` / :func:`example_strokes` / :func:`example_canvas`: the shipped examples and their pictures.
- :class:`OutputFolders`: a fresh folder for each press of Heal, pruned, removed when the server stops.

Limits on what a visitor can send: an upload is at most ``MAX_UPLOAD_MB`` (enforced by the server, see
``sketchheal.demo.app.serve``) and a canvas picture at most ``MAX_CANVAS_PIXELS`` (checked here).
"""

from __future__ import annotations

import atexit
import html
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sketchheal.inference.candidates import DEFAULT_CANDIDATES
from sketchheal.inference.heal import HealResult, heal
from sketchheal.inference.inputs import completion_lines, expand_inputs, input_image, read_sketches
from sketchheal.inference.loading import Healer
from sketchheal.sketch.image import load_image
from sketchheal.sketch.io import IMAGE_SUFFIXES, SKETCH_SUFFIXES
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.svg import fit_transform
from sketchheal.sketch.viz import draw_lines, draw_strokes, model_image_to_u8
from sketchheal.sketch.writers import ADDED_COLOUR
from sketchheal.utils.paths import BUNDLED_MODEL_DIR, EXAMPLES_DIR

__all__ = ["DemoResult", "OutputFolders", "heal_sketch", "erasure_preview", "model_name", "domain_warning",
           "canvas_to_image", "has_ink", "list_examples", "example_strokes", "example_canvas", "canvas_unchanged",
           "results_html", "completion_html", "MODES", "CANVAS_SIZE", "RESULT_SIZE",
           "MAX_UPLOAD_MB", "MAX_CANVAS_PIXELS", "ADDED_COLOUR"]

# The two healings (HealConfig.mode), as the page names them.
MODES = {"complete": "Complete the drawing", "redraw": "Redraw from the code (published)"}
# Side of the square drawing canvas, in canvas pixels.
CANVAS_SIZE = 512
# Brush radius in canvas pixels: a ~8 px pen on the 512-px canvas (the model redraws every input with its own
# line width, so this only has to look right).
BRUSH_RADIUS = 4
# Side of each redrawn sample's SVG, of the picture of the model's input and of the erasure preview.
RESULT_SIZE = 256
# The erased ink in the erasure preview (RGB); the kept ink is black.
ERASED_GREY = (200, 200, 200)
MAX_SAMPLES = 8
# Most candidates per sample (best of K by ink agreement with the input, sketchheal.inference.candidates).
MAX_CANDIDATES = 16
# Largest file a visitor may upload (the server refuses bigger ones with HTTP 413 before reading them).
MAX_UPLOAD_MB = 10
# Largest canvas picture healed (width x height); the model sees 128 x 128 px, a phone photo is ~12 M.
MAX_CANVAS_PIXELS = 4096 * 4096
# A loaded vector example counts as unchanged (and is healed from its strokes) while at most this fraction of the
# canvas pixels differ from its picture by more than DIFF_LEVEL grey levels.
UNCHANGED_FRACTION = 1e-4
DIFF_LEVEL = 96
# Per-call output folders kept on disk (older ones are removed).
KEEP_OUTPUTS = 64


@dataclass
class DemoResult:
    """What one press of Heal produces.

    html: markup showing the result as inline SVG (for ``gr.HTML``): complete: the library's SVG of the drawing
        (``<g id="input">`` black, ``<g id="added">`` in ``ADDED_COLOUR``); redraw: one SVG per sample.
    svgs: the SVG documents shown (complete: one; redraw: one per sample).
    svg_paths / png_paths: the files written by ``HealResult.save`` (for download).
    input_image: ``(N, N) uint8`` black-on-white picture of what the model saw (after erasing).
    source: "canvas" (the drawing was healed as an image) or the example file healed from its strokes.
    points: the number of stroke-3 rows of each healed sketch (0 when the model ended the sketch at once).
    mode: "complete" or "redraw". result: the library's ``HealResult`` (``input_lines``, ``added_lines``, ...).
    warning: the domain warning for the page (:func:`domain_warning`), None when the drawing is typical.
    """

    html: str
    svgs: list[str]
    svg_paths: list[Path]
    png_paths: list[Path]
    input_image: np.ndarray
    source: str = "canvas"
    points: list[int] = field(default_factory=list)
    mode: str = "complete"
    result: HealResult | None = None
    warning: str | None = None

    @property
    def files(self) -> list[Path]:
        """All downloadable files: the SVGs, then the PNGs."""
        return [*self.svg_paths, *self.png_paths]


# ============================================================================================== canvas values


def canvas_to_image(value: Any) -> np.ndarray | None:
    """A canvas value -> ``(H, W) uint8`` grey picture (white paper 255), or None when there is nothing drawn.

    ``value``: ``gr.Sketchpad``'s dict (``composite``, else ``background`` + ``layers``) or an image array
    ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (uint8, or floats in [0, 1]). Transparent pixels count as
    white paper, whatever colour they hold. Raises ``ValueError`` for a bad shape or a picture larger than
    ``MAX_CANVAS_PIXELS``.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        image = value.get("composite")
        if image is None:
            image = _flatten(value.get("background"), value.get("layers") or [])
        if image is None:
            return None
    else:
        image = value
    return _to_gray(np.asarray(image))


def _check_size(shape: tuple[int, ...]) -> None:
    if len(shape) >= 2 and shape[0] * shape[1] > MAX_CANVAS_PIXELS:
        raise ValueError(f"the picture is too large to heal: {shape[1]} x {shape[0]} pixels, at most "
                         f"{MAX_CANVAS_PIXELS / 1e6:.1f} million (the model sees 128 x 128)")


def _flatten(background: Any, layers: list[Any]) -> np.ndarray | None:
    """Composite RGBA ``layers`` over ``background`` (both optional) onto white paper."""
    parts = [np.asarray(p) for p in [background, *layers] if p is not None]
    if not parts:
        return None
    h, w = parts[0].shape[:2]
    _check_size(parts[0].shape)
    out = np.full((h, w), 255.0, np.float32)
    for p in parts:
        if p.shape[:2] != (h, w):
            continue
        rgba = _as_rgba(p)
        alpha = rgba[..., 3] / 255.0
        out = out * (1 - alpha) + _luma(rgba[..., :3]) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _as_rgba(a: np.ndarray) -> np.ndarray:
    """Any ``(H, W[, C])`` image -> ``(H, W, 4) float32`` in 0..255."""
    a = a.astype(np.float32)
    if a.size and a.max() <= 1.0:
        a = a * 255.0
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255.0, np.float32)], axis=2)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"a canvas image must have shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    return a


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"a canvas image must have shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    _check_size(image.shape)
    rgba = _as_rgba(image)
    alpha = rgba[..., 3] / 255.0
    gray = 255.0 * (1 - alpha) + _luma(rgba[..., :3]) * alpha
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)


def has_ink(gray: np.ndarray | None) -> bool:
    """Whether a grey picture (white paper 255) holds any dark mark."""
    return gray is not None and bool((gray < 128).any())


# ============================================================================================== examples


def list_examples(folder: str | os.PathLike | None = None) -> list[Path]:
    """The example sketches shipped with the package (images and vector files), sorted; [] when there are none."""
    folder = Path(folder) if folder is not None else EXAMPLES_DIR
    if not folder.is_dir():
        return []
    kinds = SKETCH_SUFFIXES + IMAGE_SUFFIXES
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in kinds)


def example_strokes(path: str | os.PathLike) -> np.ndarray | None:
    """The first sketch (stroke-3) of a vector example file, or None for an image file."""
    path = Path(path)
    if path.suffix.lower() not in SKETCH_SUFFIXES:
        return None
    return read_sketches(path, limit=1)[0]


def example_canvas(path: str | os.PathLike, size: int = CANVAS_SIZE) -> np.ndarray:
    """The picture of an example for the canvas: ``(size, size, 4) uint8`` RGBA, black ink on opaque white.

    Vector examples are drawn (fitted with a 5 % margin, a ~8 px pen at 512); images are scaled to fit and centred.
    """
    strokes = example_strokes(path)
    if strokes is not None:
        gray = draw_strokes(strokes, size, line_width=max(1, 2 * BRUSH_RADIUS * size // CANVAS_SIZE))
    else:
        gray = _letterbox(np.clip(load_image(path) * 255 + 0.5, 0, 255).astype(np.uint8), size)
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def _letterbox(gray: np.ndarray, size: int) -> np.ndarray:
    """Scale a grey picture to fit ``size`` x ``size`` (aspect kept) and centre it on white."""
    h, w = gray.shape
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.full((size, size), 255, np.uint8)
    y, x = (size - nh) // 2, (size - nw) // 2
    out[y:y + nh, x:x + nw] = small
    return out


def canvas_unchanged(gray: np.ndarray, example: str | os.PathLike) -> bool:
    """Whether the canvas still shows the vector example ``example`` as loaded (so it can be healed from its
    strokes, with the published patch candidates)."""
    if example_strokes(example) is None:
        return False
    h, w = gray.shape
    ref = example_canvas(example, CANVAS_SIZE)[..., 0]
    if (h, w) != ref.shape:
        ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
    differ = np.abs(gray.astype(np.int16) - ref.astype(np.int16)) > DIFF_LEVEL
    return float(differ.mean()) <= UNCHANGED_FRACTION


# ============================================================================================== the model


def model_name(healer: Healer) -> str:
    """The model named by what it learned, for people: ``"Sheep (bundled model)"``, ``"Cat, dog and sheep
    (loaded model)"`` (never a file path)."""
    kinds = [str(c).replace("aaron_", "").replace("_", " ").strip() for c in healer.categories]
    kinds = [k for k in kinds if k]
    if not kinds:
        what = "Drawings of an unnamed kind"
    elif len(kinds) <= 3:
        what = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    else:
        what = f"{len(kinds)} kinds of drawings ({', '.join(kinds[:3])}, ...)"
    bundled = bool(healer.source) and Path(healer.source).resolve() == BUNDLED_MODEL_DIR.resolve()
    return f"{what[:1].upper()}{what[1:]} ({'bundled' if bundled else 'loaded'} model)"


def domain_warning(result: HealResult) -> str | None:
    """The page's warning when the drawing is unlike what the model learned (else None), e.g. "This model learned
    sheep; your drawing is unlike 99 % of them: only its gaps are filled"."""
    note = result.domain_note
    if not note:
        return None
    if result.mode != "complete":
        then = "the redrawn sketch may not follow it"
    elif result.gapfilled:
        then = "it is completed by the gap-filler, which learned many kinds of drawing"
    else:
        then = "only its gaps are filled, no parts are added"
    return f"{note[:1].upper()}{note[1:]}: {then}."


# ============================================================================================== healing


def _check_settings(mode: str, mask: float, samples: int, candidates: int) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ValueError(f"candidates must be between 1 and {MAX_CANDIDATES}, got {candidates}")
    if not 0.0 <= float(mask) <= 1.0:
        raise ValueError(f"the erase probability p must be in [0, 1], got {mask}")


def _what_to_heal(value: Any, example: str | os.PathLike | None, healer: Healer,
                  mode: str) -> tuple[np.ndarray | str, str]:
    """``(input for heal, source)``: the vector example file while the canvas still shows it unchanged (redraw:
    and it is not longer than the model's ``max_seq_len``), else the canvas picture (``source`` "canvas")."""
    gray = canvas_to_image(value)
    if not has_ink(gray):
        raise ValueError("the canvas is empty: draw a sketch (or pick an example) first")
    if example is not None and canvas_unchanged(gray, example):
        strokes = example_strokes(example)
        if strokes is not None and (mode == "complete" or len(strokes) <= healer.max_seq_len):
            return str(example), str(example)
    return gray, "canvas"


def heal_sketch(value: Any, *, healer: Healer, out_dir: str | os.PathLike, mode: str = "complete",
                parts: bool = True, mask: float = 0.0, seed: int = 0, temperature: float = 0.1, samples: int = 1,
                example: str | os.PathLike | None = None, size: int = RESULT_SIZE,
                candidates: int = DEFAULT_CANDIDATES) -> DemoResult:
    """Heal what is on the canvas; write the result as SVG and PNG into ``out_dir``.

    ``mode``: ``"complete"`` (keep the strokes, add strokes where the drawing has gaps or missing parts; ``parts``
    False: gaps only) or ``"redraw"`` (the published healing; ``temperature``, ``samples`` and ``candidates``,
    best of K, apply). ``mask``: erase probability ``p`` before healing (0 = heal the drawing as it is; see
    :func:`erasure_preview`). ``example``: the vector example last loaded into the canvas; while the canvas still
    shows it unchanged it is healed from its file (its own strokes and frame), else the picture on the canvas is
    (its strokes are the centre lines traced from the ink). ``size``: side of each redrawn sample's SVG.
    Raises ``ValueError`` when the canvas is empty or too large, or the settings are out of range.
    """
    samples, candidates = int(samples), int(candidates)
    _check_settings(mode, mask, samples, candidates)
    inputs, source = _what_to_heal(value, example, healer, mode)
    settings: dict[str, Any] = dict(mode=mode, mask=float(mask) or None, seed=int(seed), limit=1)
    if mode == "complete":
        settings["parts"] = bool(parts)
    else:
        settings.update(temperature=float(temperature), samples=samples, candidates=candidates)
    result = heal([inputs], model=healer, **settings)[0]
    return _package(result, Path(out_dir), source, size)


def _package(result: HealResult, out_dir: Path, source: str, size: int) -> DemoResult:
    """Write ``result`` as ``healed[_sK].svg/.png`` and build the page's markup."""
    paths = result.save(out_dir, "healed", formats=("svg", "png"))
    svg_paths = [p for p in paths if p.suffix == ".svg"]
    png_paths = [p for p in paths if p.suffix == ".png"]
    if result.mode == "complete":
        svgs = [result.to_svg()]  # the file's SVG (the page scales it)
        markup = completion_html(svgs[0], len(result.input_lines), len(result.added_lines), result.masked)
    else:
        svgs = [result.to_svg(k, size=size) for k in range(len(result.healed))]
        markup = results_html(svgs, [len(s) for s in result.healed])
    return DemoResult(html=markup, svgs=svgs, svg_paths=svg_paths, png_paths=png_paths,
                      input_image=model_image_to_u8(result.input_image, size), source=source,
                      points=[len(s) for s in result.healed], mode=result.mode, result=result,
                      warning=domain_warning(result))


def completion_html(svg: str, kept: int, added: int, erased: bool = False) -> str:
    """Markup of a completed drawing (the library's SVG: the input's strokes black, the added ones in colour) with
    a caption saying which is which (``erased``: the input was erased first)."""
    plural = lambda n, word: f"{n} {word}{'s' if n != 1 else ''}"  # noqa: E731
    swatch = f'<span class="sh-swatch" style="background:{ADDED_COLOUR}"></span>'
    added_s = f"{swatch} {plural(added, 'added stroke')}" if added else "nothing added: no gap was found"
    yours = f"your drawing{' after erasing' if erased else ''} ({plural(kept, 'stroke')}), kept as drawn"
    return (f'<div class="sh-results"><figure class="sh-sample sh-complete" data-kept="{kept}" data-added="{added}">'
            f"{svg}<figcaption>black: {yours} &middot; {added_s}</figcaption></figure></div>")


def results_html(svgs: list[str], points: list[int]) -> str:
    """Markup that shows each SVG inline with a caption (sample number, strokes, points)."""
    figures = []
    for k, (svg, n) in enumerate(zip(svgs, points)):
        strokes = svg.count("<path")
        what = f"{strokes} stroke{'s' if strokes != 1 else ''}, {n} points" if n else "empty: the model stopped at once"
        figures.append(f'<figure class="sh-sample" data-sample="{k}">{svg}'
                       f"<figcaption>sample {k + 1}: {html.escape(what)}</figcaption></figure>")
    return f'<div class="sh-results">{"".join(figures)}</div>'


# ============================================================================================== erasure preview


def erasure_preview(value: Any, *, healer: Healer, mask: float, seed: int = 0, mode: str = "complete",
                    example: str | os.PathLike | None = None, size: int = RESULT_SIZE) -> np.ndarray | None:
    """What Heal will erase, as ``(size, size, 3) uint8`` RGB: the kept ink black, the erased ink light grey;
    None when ``mask`` is 0 or the canvas is empty.

    The erasure is the one :func:`heal_sketch` applies (the same functions, mask row 0 of ``MaskTable(1, seed)``).
    Complete: squares erased from the strokes, drawn in the canvas's frame (a vector example: fitted as on the
    canvas). Redraw: the published raster masking of the model's input image.
    """
    if not mask or not has_ink(canvas_to_image(value)):
        return None
    _check_settings(mode, mask, 1, 1)
    inputs, source = _what_to_heal(value, example, healer, mode)
    item = expand_inputs([inputs], limit=1)[0]
    table = MaskTable(1, int(seed))
    if mode == "redraw":
        before = input_image(item, healer, mask=None, table=None) > 0  # (N, N) ink
        after = input_image(item, healer, mask=float(mask), table=table) > 0
        out = np.full(before.shape + (3,), 255, np.uint8)
        out[before & ~after] = ERASED_GREY
        out[after] = 0
        return cv2.resize(out, (size, size), interpolation=cv2.INTER_NEAREST)
    whole = completion_lines(item, mask=None, table=None)
    kept = completion_lines(item, mask=float(mask), table=table)
    out = np.full((size, size, 3), 255, np.uint8)
    if not whole:
        return out
    lw = max(2, size // 64)
    if source == "canvas":  # the canvas's own frame: the preview lines up with the canvas
        h, w = item.gray.shape
        scale = size / max(h, w)
        offset = np.array([(size - w * scale) / 2, (size - h * scale) / 2])
    else:
        scale, offset = fit_transform(whole, size, 0.05 * size + lw / 2)
    draw_lines(out, whole, scale, offset, lw, ERASED_GREY)
    draw_lines(out, kept, scale, offset, lw, (0, 0, 0))
    return out


# ============================================================================================== output folders


class OutputFolders:
    """Fresh folders for each press of Heal under one root, pruned to the newest ``keep``.

    Without ``root`` the folders go under a new temporary directory, removed by :meth:`cleanup` and at interpreter
    exit (``sketchheal.demo.app.launch_demo`` also turns SIGTERM into a normal exit, so a stopped server leaves
    nothing behind). A given ``root`` belongs to the caller and is never removed.
    """

    def __init__(self, root: str | os.PathLike | None = None, keep: int = KEEP_OUTPUTS) -> None:
        self.owned = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="sketchheal-demo-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.count = 0
        if self.owned:
            atexit.register(self.cleanup)

    def new(self) -> Path:
        self.count += 1
        self.root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{self.count:06d}-", dir=self.root))
        old = sorted(p for p in self.root.iterdir() if p.is_dir())[:-self.keep]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
        return path

    def cleanup(self) -> None:
        """Remove the temporary root (only one this object created); safe to call more than once."""
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)
