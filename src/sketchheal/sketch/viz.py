"""Pictures of sketches for people: the one sketch drawer, model images as pictures, grids of sketches.

:func:`draw_sketch` is the drawer: a stroke-3 sketch fitted and centred into a box of a canvas, anti-aliased
OpenCV lines with sub-pixel coordinates. :func:`draw_strokes` (one sketch on its own white picture, as the SVGs
are laid out) and :func:`draw_grid` (many sketches, ``sketchheal data show``) draw with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from sketchheal.sketch.io import PathLike, expand_paths, load_sketches
from sketchheal.sketch.sketchset import SketchSet
from sketchheal.sketch.strokes import stroke3_to_polylines
from sketchheal.sketch.svg import fit_transform
from sketchheal.utils.fileio import atomic_write, png_bytes

__all__ = ["draw_lines", "draw_sketch", "draw_strokes", "draw_grid", "show", "model_image_to_u8", "PREVIEW_SIZE"]

# Output raster side of the PNG / side-by-side panels.
PREVIEW_SIZE = 256
# Sub-pixel precision of cv2's fixed-point coordinates (bits).
_SHIFT = 4


def _draw_lines(canvas: np.ndarray, lines: Sequence[np.ndarray], scale: float, offset: np.ndarray, thickness: int,
                color) -> None:
    """Draw absolute polylines mapped by ``p * scale + offset`` onto ``canvas``; a stroke that does not move is a
    round dot of the line's width."""
    for line in lines:
        p = np.rint((line * scale + offset) * (1 << _SHIFT)).astype(np.int32)
        if len(p) == 1 or np.all(p == p[0]):
            cv2.circle(canvas, tuple(int(v) for v in p[0]), max(thickness, 1) << _SHIFT >> 1, color, -1, cv2.LINE_AA,
                       _SHIFT)
        else:
            cv2.polylines(canvas, [p.reshape(-1, 1, 2)], False, color, thickness, cv2.LINE_AA, _SHIFT)


draw_lines = _draw_lines  # the drawer for lines that share one transform (sketch.writers: input + added strokes)


def draw_sketch(canvas: np.ndarray, s3: np.ndarray, box: tuple[float, float, float, float], thickness: int = 2,
                color: tuple[int, int, int] | int = (0, 0, 0)) -> None:
    """Draw stroke-3 ``s3`` onto ``canvas`` (``(H, W, 3)`` or ``(H, W)`` uint8) fitted and centred in
    ``box = (x, y, w, h)``, aspect kept. An empty sketch draws nothing."""
    x0, y0, w, h = box
    if len(s3) == 0:
        return
    lines = stroke3_to_polylines(np.asarray(s3, np.float64))
    pts = np.concatenate(lines)
    lo, hi = pts.min(0), pts.max(0)
    size = max(float((hi - lo).max()), 1e-6)
    scale = min(w, h) / size
    centre = np.array([x0 + w / 2, y0 + h / 2]) - (lo + hi) / 2 * scale
    _draw_lines(canvas, lines, scale, centre, thickness, color)


def draw_strokes(s3: np.ndarray, size: int = PREVIEW_SIZE, line_width: int | None = None) -> np.ndarray:
    """Anti-aliased picture of a stroke-3 sketch for people: ``(size, size) uint8``, black ink on white.

    Fitted and centred like :func:`sketchheal.sketch.svg.strokes_to_svg` (5 % margin plus half the line width,
    default 1 % of ``size``); an empty sketch is a blank page.
    """
    img = np.full((size, size), 255, np.uint8)
    lines = [p for p in stroke3_to_polylines(s3) if len(p)] if len(s3) else []
    if not lines:
        return img
    lw = line_width or max(1, int(round(size / 100)))
    scale, offset = fit_transform(lines, size, 0.05 * size + lw / 2)
    _draw_lines(img, lines, scale, offset, lw, 0)
    return img


def model_image_to_u8(image: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """Model image ``(N, N)`` (ink +1, background -1) -> black-on-white ``(size, size) uint8`` (small images are
    enlarged with nearest-neighbour pixels, others bilinearly)."""
    u8 = np.clip((1.0 - np.asarray(image, np.float32)) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    interp = cv2.INTER_NEAREST if image.shape[0] * 2 <= size and image.shape[0] < 64 else cv2.INTER_LINEAR
    return cv2.resize(u8, (size, size), interpolation=interp)


# ================================================================================================== grids
def _fit_text(text: str, width: int, font: int, font_scale: float) -> str:
    """``text`` shortened with ".." until it is at most ``width`` pixels wide."""
    if cv2.getTextSize(text, font, font_scale, 1)[0][0] <= width:
        return text
    while len(text) > 1 and cv2.getTextSize(text + "..", font, font_scale, 1)[0][0] > width:
        text = text[:-1]
    return text.rstrip() + ".."


def draw_grid(sketches: Sequence[np.ndarray], captions: Sequence[str] | None = None, cols: int | None = None,
              cell: int = 160, thickness: int = 2, margin: int | None = None) -> np.ndarray:
    """A grid picture ``(H, W, 3) uint8`` (BGR): black ink on white, one sketch per ``cell`` x ``cell`` square.

    Every sketch is scaled to fit its cell (aspect kept) and centred; ``captions`` go under the sketches.
    """
    n = len(sketches)
    if n == 0:
        raise ValueError("nothing to draw: no sketches")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    margin = margin if margin is not None else max(4, cell // 12)
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, cell / 400)
    text_h = cv2.getTextSize("Ag", font, font_scale, 1)[0][1] + 6 if captions else 0
    cell_h = cell + text_h
    img = np.full((rows * cell_h + 1, cols * cell + 1, 3), 255, np.uint8)
    for k, s3 in enumerate(sketches):
        r, c = divmod(k, cols)
        x, y = c * cell, r * cell_h
        cv2.rectangle(img, (x, y), (x + cell, y + cell_h), (225, 225, 225), 1)
        draw_sketch(img, s3, (x + margin, y + margin, cell - 2 * margin, cell - 2 * margin), thickness)
        if captions:
            text = _fit_text(str(captions[k]), cell - 6, font, font_scale)
            tw = cv2.getTextSize(text, font, font_scale, 1)[0][0]
            cv2.putText(img, text, (x + (cell - tw) // 2, y + cell + text_h - 6), font, font_scale, (90, 90, 90), 1,
                        cv2.LINE_AA)
    return img


def _pick(sketches: SketchSet, n: int, seed: int | None, start: int) -> np.ndarray:
    """``n`` indices: random with ``seed``, else from ``start`` on, taking categories in turn."""
    if seed is not None:
        return np.sort(np.random.default_rng(seed).permutation(len(sketches))[:n])
    labels = sketches.labels.astype(np.int64)
    rank = np.zeros(len(sketches), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    order = np.lexsort((labels, rank))
    return order[rank[order] >= start][:n] if start else order[:n]


def _encode(img: np.ndarray, out: Path) -> bytes:
    """``img`` encoded as ``out``'s suffix says (PNG through the package's one PNG encoder)."""
    if out.suffix.lower() == ".png":
        return png_bytes(img)
    try:
        ok, buf = cv2.imencode(out.suffix or ".none", img)
    except cv2.error as e:
        raise ValueError(f"{out}: cannot write this image type ({e.msg.strip()}); use .png or .jpg") from None
    if not ok:
        raise ValueError(f"{out}: cannot write this image type; use .png or .jpg")
    return buf.tobytes()


def show(paths: PathLike | Iterable[PathLike], out: PathLike, split: str = "test", n: int = 64,
         cols: int | None = None, cell: int = 160, captions: bool = True, seed: int | None = None, start: int = 0,
         thickness: int = 2, max_seq_len: int | None = None, raw: str = "simplify") -> Path:
    """Draw ``n`` sketches of ``split`` into a grid picture at ``out`` (PNG/JPEG by suffix), written atomically.

    Sketches are taken in file order from ``start`` (several categories: in turn), or at random with ``seed``.
    Captions give the category and the index within the loaded split.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = Path(out)
    sketches = load_sketches(paths, split=split, max_seq_len=max_seq_len, clip=None, skip_invalid=True, raw=raw)
    if len(sketches) == 0:
        raise ValueError(f"no sketches to show in split {split!r} of {[str(p) for p in expand_paths(paths)]}")
    idx = _pick(sketches, n, seed, start)
    if len(idx) == 0:
        raise ValueError(f"start={start} is past the last sketch")
    texts = [f"{sketches.category(i)} #{i}" for i in idx] if captions else None
    data = _encode(draw_grid([sketches[i] for i in idx], texts, cols=cols, cell=cell, thickness=thickness), out)
    with atomic_write(out, "wb") as f:
        f.write(data)
    return out
