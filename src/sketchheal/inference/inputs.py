"""What the user hands to ``heal``, turned into sketches, strokes in their own frame and model images.

Files (images, ``.npz``, ``.ndjson``, ``.svg``) and arrays become one :class:`HealInput` per sketch
(:func:`expand_inputs`). For redrawing, each becomes the ``(N, N)`` image the model was trained on
(:func:`input_image`), with the published patch masking when asked for; for completion, its strokes in the input's
own frame (:func:`completion_lines`), with squares erased from them when asked for. Every input is checked here,
so a bad one is reported (naming it) before any healing starts.

The input's own frame (the coordinates of ``HealInput.lines`` and of everything completion writes):

- ``.ndjson``: the drawing's own numbers (``[[x...], [y...](, [t...])]``, timestamps dropped), nothing simplified;
- ``.svg``: the SVG's user coordinates (transforms applied), curves as 16-segment polylines;
- stroke-3 (``.npz``, arrays): the frame whose origin is the sketch's first point: ``p_0 = (0, 0)``, row ``i``
  moves the pen to ``p_{i+1}`` (:func:`sketchheal.sketch.strokes.stroke3_to_polylines`);
- images: pixel coordinates of the input image (x right, y down, pixel centres at integers): the centre lines
  traced from its ink (:func:`sketchheal.sketch.trace.trace_strokes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from sketchheal.inference.loading import Healer
from sketchheal.sketch.erase import erase, erase_squares, square_side
from sketchheal.sketch.image import array_to_gray, binarise, image_to_input, load_image
from sketchheal.sketch.io import IMAGE_SUFFIXES, SKETCH_SUFFIXES, load_file, read_ndjson_records
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import MAX_PATCHES, corrupt, render
from sketchheal.sketch.strokes import polylines_to_stroke3, simplify_polylines, stroke3_to_polylines, validate
from sketchheal.sketch.svg import svg_to_polylines
from sketchheal.sketch.trace import RESAMPLE_THRESHOLD, farthest_points, trace_strokes
from sketchheal.utils.npfile import open_npz
from sketchheal.utils.paths import EXAMPLES_DIR

__all__ = ["HealInput", "TRACE_SIDE", "completion_lines", "drop_long", "example_inputs", "expand_inputs", "image_strokes",
           "input_image", "read_sketches", "too_long"]

# Images with a longer side above this are traced at this size (coordinates scaled back to the image's pixels).
TRACE_SIDE = 1024
# RDP epsilon (pixels) of the traced centre lines: removes the staircase of a pixel skeleton.
TRACE_SIMPLIFY = 1.0


@dataclass
class HealInput:
    """One sketch to heal: exactly one of ``gray`` (an image, white paper = 1) and ``strokes`` is set.

    ``index``: its position among all sketches of the call (it keys its mask row and its sampling noise).
    ``lines``: vector inputs' strokes in the input's own frame (module docstring). ``record``: an ``.ndjson``
    drawing's JSON object as read (every field). ``group``: the output stem of the input file (unique in the
    call; the ndjson output writes one file per group). ``coords``: ``ndjson``, ``svg``, ``stroke-3`` or
    ``pixels``.
    """

    source: str
    name: str
    gray: np.ndarray | None = None  # (H, W) float32 in [0, 1]; ink dark unless the caller inverts
    strokes: np.ndarray | None = None  # (n, 3) float32 stroke-3, unnormalised (what redrawing renders)
    index: int = 0
    lines: list[np.ndarray] | None = None  # absolute (k, 2) float64 strokes in the input's frame
    record: dict | None = None
    group: str = ""
    coords: str = ""


def read_sketches(path: str | os.PathLike, *, split: str = "test", limit: int | None = None) -> list[np.ndarray]:
    """The stroke-3 sketches ``(n, 3) float32`` (unnormalised) of a vector file.

    ``.npz``: a single sketch under ``strokes`` or ``sketch`` (what ``HealResult.save`` writes), or a sketch-rnn
    file with ``train``/``valid``/``test`` arrays of sketches (``split`` picks one; default ``test``).
    ``.ndjson``: QuickDraw drawings, simplified (``[[x...], [y...]]``) or raw (``[[x...], [y...], [t...]]``, put
    through Google's simplification first). ``.svg``: every line of the drawing, scaled so the longer side is 255 and
    simplified like QuickDraw (1-px resampling, RDP 2.0). ``limit`` keeps the first sketches only.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        single = _read_single_npz(path)
        sketches = [single] if single is not None else _load_set(path, split, limit)
    elif suffix == ".ndjson":
        sketches = _load_set(path, split, limit)
    elif suffix == ".svg":
        lines = svg_to_polylines(path)
        if not lines:
            raise ValueError(f"{path}: the SVG has no lines (paths, polylines or lines) to heal")
        sketches = [polylines_to_stroke3(simplify_polylines(lines))]
    else:
        raise ValueError(f"{path}: unknown sketch file type {suffix!r}; use .npz, .ndjson or .svg")
    return sketches[:limit] if limit is not None else sketches


def _read_single_npz(path: Path) -> np.ndarray | None:
    """The sketch stored under ``strokes`` / ``sketch`` in an ``.npz``, None for a sketch-rnn split file."""
    with open_npz(path) as data:  # read safely: never unpickles anything but arrays of numbers
        keys = list(data.keys())
        for key in ("strokes", "sketch"):
            if key in keys:
                try:
                    arr = data[key]
                except ValueError as e:
                    raise ValueError(f"{path}[{key}]: not a numeric stroke-3 array ({e})") from None
                return _check_strokes(arr, f"{path}[{key}]")
    if not any(k in keys for k in ("train", "valid", "test")):
        raise ValueError(f"{path}: no 'strokes'/'sketch' array and no sketch-rnn splits (train/valid/test); "
                         f"keys are {keys}")
    return None


def _load_set(path: Path, split: str, limit: int | None) -> list[np.ndarray]:
    """Every sketch of a sketch-rnn ``.npz`` split or a QuickDraw ``.ndjson`` file (``sketchheal.sketch.io``'s
    reader, with no length limit and no clipping: the length is checked against the model later)."""
    sketches = load_file(path, split, max_seq_len=None, clip=None)
    if len(sketches) == 0:
        raise ValueError(f"{path}: no usable sketches (dropped: {dict(sketches.dropped)})")
    n = len(sketches) if limit is None else min(limit, len(sketches))
    return [sketches[i] for i in range(n)]


def _check_strokes(s3: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(s3)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: not a stroke-3 array ({e})") from None
    return validate(a, name).astype(np.float32)


def _is_stroke3(a: np.ndarray) -> bool:
    """Arrays of shape ``(n, 3)`` are stroke-3 sketches (validated as such); other shapes are images."""
    return a.ndim == 2 and a.shape[1] == 3


def expand_inputs(inputs: Any, *, split: str = "test", limit: int | None = None) -> list[HealInput]:
    """Files and arrays -> one :class:`HealInput` per sketch (multi-sketch files give several), in order.

    Names (and the groups: one per input file or array) are made unique and file-system safe; ``index`` counts
    the sketches from 0.
    """
    if isinstance(inputs, (str, os.PathLike, np.ndarray)) or torch.is_tensor(inputs):
        inputs = [inputs]
    items: list[HealInput] = []
    groups: dict[str, int] = {}
    for j, x in enumerate(inputs):
        if torch.is_tensor(x):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray):
            name, source = f"input_{j}", f"array[{j}]"
            if _is_stroke3(x):
                s3 = _check_strokes(x, source)
                new = [HealInput(source=source, name=name, strokes=s3, lines=stroke3_to_polylines(s3),
                                 coords="stroke-3")]
            else:
                new = [HealInput(source=source, name=name, gray=array_to_gray(x, source), coords="pixels")]
            stem = name
        elif isinstance(x, (str, os.PathLike)):
            new, stem = _file_inputs(Path(x), split=split, limit=limit), Path(x).stem
        else:
            raise ValueError(f"input {j}: expected a file path or a numpy array, got {type(x).__name__}")
        group = _unique(stem, groups, keep=True)
        for it in new:
            it.group = group
        items.extend(new)
    names: dict[str, int] = {}
    for i, it in enumerate(items):  # unique, file-system-safe output names
        it.name = _unique(it.name, names)
        it.index = i
    return items


def _unique(name: str, seen: dict[str, int], keep: bool = False) -> str:
    """A file-system-safe form of ``name``, numbered when it was seen before (``seen`` counts). ``keep``: only
    path separators and control characters are replaced (an input file's stem, spaces and all)."""
    if keep:
        base = "".join("_" if c in "/\\" or not c.isprintable() else c for c in name).strip(".") or "sketch"
    else:
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "sketch"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}_{seen[base]}"


def _file_inputs(path: Path, *, split: str, limit: int | None) -> list[HealInput]:
    suffix = path.suffix.lower()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; pass the files in it")
    if suffix == ".ndjson":
        return _ndjson_inputs(path, limit)
    if suffix == ".svg":
        lines = svg_to_polylines(path)
        if not lines:
            raise ValueError(f"{path}: the SVG has no lines (paths, polylines or lines) to heal")
        return [HealInput(source=str(path), name=path.stem, strokes=polylines_to_stroke3(simplify_polylines(lines)),
                          lines=lines, coords="svg")]
    if suffix in SKETCH_SUFFIXES:
        sketches = read_sketches(path, split=split, limit=limit)
        multi = len(sketches) > 1
        return [HealInput(source=f"{path}#{i}" if multi else str(path), name=f"{path.stem}_{i}" if multi
                          else path.stem, strokes=s3, lines=stroke3_to_polylines(s3), coords="stroke-3")
                for i, s3 in enumerate(sketches)]
    try:  # any other suffix: try it as an image, the error says what was expected
        gray = load_image(path)
    except ValueError as e:
        if suffix in IMAGE_SUFFIXES:
            raise
        raise ValueError(f"{e}; heal reads images ({', '.join(IMAGE_SUFFIXES)}) and sketches "
                         f"({', '.join(SKETCH_SUFFIXES)})") from None
    return [HealInput(source=str(path), name=path.stem, gray=gray, coords="pixels")]


def _ndjson_inputs(path: Path, limit: int | None) -> list[HealInput]:
    """Every drawing of an ``.ndjson`` file as given (:func:`sketchheal.sketch.io.read_ndjson_records`): its
    strokes unchanged for completion, its stroke-3 form (raw drawings simplified as QuickDraw does, as
    :func:`read_sketches` reads them) for redrawing."""
    records = read_ndjson_records(path)[:limit]
    multi = len(records) > 1
    items = []
    for i, (_, rec, lines) in enumerate(records):
        raw = any(len(stroke) == 3 for stroke in rec["drawing"])
        empty = not any(len(p) for p in lines)  # completion hands it back as it is; redraw refuses it
        s3 = None if empty else polylines_to_stroke3(simplify_polylines(lines) if raw else lines)
        items.append(HealInput(source=f"{path}#{i}" if multi else str(path),
                               name=f"{path.stem}_{i}" if multi else path.stem, strokes=s3, lines=lines,
                               record=rec, coords="ndjson"))
    return items


def too_long(item: HealInput, healer: Healer) -> bool:
    """Whether a vector input has more points than the model can draw (its ``max_seq_len``)."""
    return item.strokes is not None and len(item.strokes) > healer.max_seq_len


def long_sketch_error(item: HealInput, healer: Healer) -> ValueError:
    """The error for a sketch longer than the model's limit, with the two ways out."""
    return ValueError(f"{item.source}: the sketch has {len(item.strokes)} points, more than the model's "
                      f"max_seq_len={healer.max_seq_len}: simplify it (sketchheal.sketch.strokes.rdp) or pass "
                      "--skip-long (skip_long=True) to heal the others without it")


def drop_long(items: list[HealInput], healer: Healer,
               skip_long: bool) -> tuple[list[HealInput], list[HealInput]]:
    """Redraw's check: ``(kept, skipped)``; without ``skip_long`` the first sketch over the model's limit is an
    error, and so is a drawing with no points (an ``.ndjson`` line whose strokes are all empty)."""
    for it in items:
        if it.strokes is None and it.gray is None:
            raise ValueError(f"{it.source}: the drawing is empty (no points): nothing to redraw")
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


def input_image(item: HealInput, healer: Healer, *, mask: float | None, table: MaskTable | None,
                invert: bool = False) -> np.ndarray:
    """The ``(N, N) float32`` model input of ``item`` (ink +1, background -1), masked with row ``item.index`` of
    ``table`` when ``mask`` is set. Images go through :func:`sketchheal.sketch.image.image_to_input`."""
    size, mode = healer.image_size, healer.render_mode
    u = table.uniforms(item.index) if table is not None and mask else None
    if item.strokes is not None:
        if too_long(item, healer):
            raise long_sketch_error(item, healer)
        if u is not None:
            return corrupt(item.strokes, u, mask, size, mode).corrupted
        return render(item.strokes, size, mode)
    return image_to_input(item.gray, size=size, mode=mode, invert=invert, mask=mask, uniforms=u, name=item.source)


def completion_lines(item: HealInput, *, mask: float | None, table: MaskTable | None,
                     invert: bool = False) -> list[np.ndarray]:
    """The strokes completion starts from, absolute ``(k, 2) float64`` in the input's own frame.

    Vector inputs: their strokes as given; with ``mask``, squares erased from them in vector
    (:func:`sketchheal.sketch.erase.erase`: the published candidates, row ``item.index`` of ``table``). Images:
    the centre lines traced from the ink (:func:`image_strokes`); with ``mask``, the squares of the stand-in
    candidates of :func:`sketchheal.sketch.image.image_to_input` (farthest points of the centre lines from the
    topmost, side 1/5 of the drawing's longer side) are erased from them.
    """
    u = table.uniforms(item.index) if table is not None and mask else None
    if item.lines is not None:
        lines = [np.asarray(p, np.float64).reshape(-1, 2) for p in item.lines]
        return erase(lines, float(mask), uniforms=u).lines if u is not None else lines
    lines = image_strokes(item.gray, invert=invert, name=item.source)
    if u is None or not lines:
        return lines
    centres = farthest_points(np.concatenate(lines, 0), MAX_PATCHES)
    return erase_squares(lines, centres[u[: len(centres)] < mask], square_side(lines))


def image_strokes(gray: np.ndarray, *, invert: bool = False, name: str = "image") -> list[np.ndarray]:
    """The centre lines of an image's ink as strokes in its pixel coordinates (x right, y down): Otsu's ink
    (:func:`sketchheal.sketch.image.binarise`, whose errors name ``name``), thinned and traced (RDP
    :data:`TRACE_SIMPLIFY`); an image longer
    than :data:`TRACE_SIDE` is traced at that size and the points scaled back."""
    ink = binarise(gray, invert, name).astype(np.float32)  # (H, W) 1 = ink
    h, w = ink.shape
    f = max(h, w) / TRACE_SIDE
    if f > 1:
        small = cv2.resize(ink, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
        fx, fy = w / small.shape[1], h / small.shape[0]
        lines = trace_strokes(small >= RESAMPLE_THRESHOLD, simplify=TRACE_SIMPLIFY)
        return [(line + 0.5) * np.array([fx, fy]) - 0.5 for line in lines]
    return trace_strokes(ink > 0, simplify=TRACE_SIMPLIFY)


def example_inputs() -> list[Path]:
    """The bundled example inputs (``sketchheal.utils.paths.EXAMPLES_DIR``), sorted by name."""
    if not EXAMPLES_DIR.is_dir():
        raise FileNotFoundError(f"no bundled examples at {EXAMPLES_DIR}")
    files = sorted(p for p in EXAMPLES_DIR.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + SKETCH_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no example inputs in {EXAMPLES_DIR}")
    return files
