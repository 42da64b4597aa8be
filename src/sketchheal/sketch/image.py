"""Raster images in: read an image file or array as grey levels, find its ink, and turn it into the model's input.

``image_to_input`` places the centre lines of a drawing (:mod:`sketchheal.sketch.trace`) exactly where
``render(mode="reference")`` places a sketch's pen positions, so an image of a sketch and the sketch itself give the
model the same picture.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from sketchheal.sketch import render as _render
from sketchheal.sketch.trace import RESAMPLE_THRESHOLD, centre_lines, farthest_points

__all__ = ["load_image", "image_to_input", "array_to_gray", "binarise", "MAX_INK_FRACTION", "MIN_CONTRAST",
           "RESAMPLE_THRESHOLD"]

# Binarised ink above this fraction of the image is taken for the wrong polarity (line drawings are sparse).
MAX_INK_FRACTION = 0.5
# Ink strength (0 paper .. 1 full ink) below this contrast counts as an empty image.
MIN_CONTRAST = 0.1


def load_image(path: str | os.PathLike) -> np.ndarray:
    """A raster image file as ``(H, W) float32`` grey levels in [0, 1] (transparent pixels count as white paper)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            return _pil_to_gray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{path}: not a readable image ({e.__class__.__name__}: {e})") from None


def _pil_to_gray(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float32)
        return np.clip(a / (65535.0 if a.max() > 255 else 255.0), 0, 1)
    if im.mode == "P" or "A" in im.getbands():
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def _array_to_gray(a: np.ndarray, name: str) -> np.ndarray:
    """A numpy image ``(H, W)``, ``(H, W, 1|3|4)`` (uint8 0..255, other ints, or floats in [0, 1]) -> grey [0, 1]."""
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.float32)
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name}: an image must be numeric, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        if a.shape[2] == 1:
            a = a[:, :, 0]
        else:
            u8 = a if a.dtype == np.uint8 else np.clip(_unit(a.astype(np.float32)) * 255 + 0.5, 0, 255).astype(
                np.uint8)
            return _pil_to_gray(Image.fromarray(u8, "RGBA" if a.shape[2] == 4 else "RGB"))
    if a.ndim != 2:
        raise ValueError(f"{name}: an image must have shape (H, W) or (H, W, 1|3|4), got {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: the image is empty (shape {a.shape})")
    g = a.astype(np.float32)
    if not np.isfinite(g).all():
        raise ValueError(f"{name}: the image contains NaN or inf")
    return np.clip(g / 255.0 if a.dtype == np.uint8 else _unit(g), 0, 1)


array_to_gray = _array_to_gray


def _unit(a: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] stay; anything reaching above 1 is read as 0..255."""
    return a / 255.0 if a.size and a.max() > 1.0 else a


def _binarise(gray: np.ndarray, invert: bool, name: str) -> np.ndarray:
    """Grey ``(H, W)`` in [0, 1] -> ink mask ``(H, W) uint8`` (1 = ink), Otsu's threshold on the ink strength."""
    ink = gray if invert else 1.0 - gray
    lo, hi = float(ink.min()), float(ink.max())
    if hi - lo < MIN_CONTRAST:
        raise ValueError(f"{name}: no ink found (the image is blank or of one colour)")
    u8 = np.clip((ink - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n > 2:  # drop 1-2 pixel specks (scanner / JPEG noise) when something bigger exists
        small = stats[1:, cv2.CC_STAT_AREA] <= 2
        if not small.all():
            mask[np.isin(labels, np.flatnonzero(small) + 1)] = 0
    frac = float(mask.mean())
    if frac == 0:
        raise ValueError(f"{name}: no ink found")
    if frac > MAX_INK_FRACTION:
        hint = "dark ink on light paper? drop invert" if invert else \
            "light ink on a dark background? pass invert=True (--invert)"
        raise ValueError(f"{name}: {frac:.0%} of the image is ink; expected a line drawing ({hint})")
    return mask


binarise = _binarise


def image_to_input(image: np.ndarray, *, size: int = 128, mode: str = "reference", invert: bool = False,
                   mask: float | None = None, uniforms: np.ndarray | None = None,
                   max_patches: int = _render.MAX_PATCHES, name: str = "image") -> np.ndarray:
    """Normalise a drawing to the model's input: ``(size, size) float32``, ink +1, background -1.

    ``image``: grey ``(H, W)`` in [0, 1] (or anything :func:`heal` accepts as an image array); dark ink on light
    paper, ``invert=True`` for light on dark. Steps: Otsu binarisation (1-2 px specks dropped); crop to the ink;
    the centre lines of the strokes (distance-transform ridge) are placed exactly as ``render(mode="reference")``
    places a sketch's pen positions: the longer side of their box spans 640 px of a canvas of side
    ``max(w, h) + 34`` with the box's top-left corner at the 17-px margin (so ``size * 640 / 674`` px at the
    model's size, not centred); they are redrawn 16 px wide there (the reference's line, ~3 px at 128) whatever
    the original pen width; the canvas is resized like the reference (bilinear) or, for ``mode="fast"``,
    area-averaged and binarised.

    Masking (``mask=p`` with ``uniforms``, a ``(max_patches,)`` row of a :class:`sketchheal.sketch.render.MaskTable`):
    images have no stroke order, so the candidates are not the published ones; they are up to ``max_patches``
    centre-line points chosen by farthest-point sampling (from the topmost point), each the centre of a
    128 x 128 square of the 640-px canvas (the published patch size), erased iff ``uniforms[k] < p``.
    """
    gray = _array_to_gray(image, name)
    ink = _binarise(gray, invert, name)
    pts, _ = centre_lines(ink)
    lo = pts.min(0)
    extent = float((pts.max(0) - lo).max())
    s1 = _render.CANVAS_EXTENT / extent if extent > 0 else 1.0
    q = (pts - lo) * s1 + _render.MARGIN
    side = int(extent * s1) + 2 * _render.MARGIN
    canvas = np.zeros((side, side), np.uint8)
    qi = np.clip(np.rint(q).astype(np.int64), 0, side - 1)
    canvas[qi[:, 1], qi[:, 0]] = 255
    brush = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_render.LINE_WIDTH + 1, _render.LINE_WIDTH + 1))
    canvas = cv2.dilate(canvas, brush)
    if mask is not None and mask > 0:
        if uniforms is None:
            raise ValueError("image_to_input: mask needs uniforms (a MaskTable row)")
        u = np.asarray(uniforms, np.float64)
        centres = farthest_points(q, max_patches)
        half = _render.PATCH_SIDE // 2
        for (cx, cy), ui in zip(np.rint(centres).astype(np.int64).tolist(), u.tolist()):
            if ui < mask:
                canvas[max(cy - half, 0): cy + half, max(cx - half, 0): cx + half] = 0
    if mode == "fast":
        small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        return np.where(small >= 128, 1.0, -1.0).astype(np.float32)
    if mode != "reference":
        raise ValueError(f"unknown render mode {mode!r}; choose one of {_render.MODES}")
    small = cv2.resize(canvas, (size, size)) if side != size else canvas
    return (small.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)
