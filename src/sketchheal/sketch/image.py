"""Raster images in: read an image file or array as grey levels, find its ink, and turn it into the model's input.

``image_to_input`` places the centre lines of a drawing (:mod:`sketchheal.sketch.trace`) exactly where
``render(mode="reference")`` places a sketch's pen positions, so an image of a sketch and the sketch itself give the
model the same picture.
"""

from __future__ import annotations

import os
import struct
import warnings
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
# Images with more pixels are refused (files: from the header, before decoding). 40 million = 6300 x 6300.
MAX_IMAGE_PIXELS = 40_000_000
# The raster formats load_image opens (Pillow's names), the ones IMAGE_SUFFIXES names.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
# Ink pieces (8-connected) of at most this many pixels are specks (scanner / JPEG noise) and are dropped.
SPECK_PIXELS = 2
# The ink left after dropping specks must span at least this fraction of the image's longer side (and 4 px).
MIN_DRAWING_EXTENT = 0.02
# Noise, not a drawing: specks hold more ink than the rest (with at least NOISE_SPECKS of them); or the ink is so
# scattered that more than NOISE_PIECES of its NOISE_MIN_PIECES or more pieces are needed to hold half of it (line
# drawings: 1 or 2); or the paper is cut into more than NOISE_PAPER_DENSITY pieces per pixel (and 40) by ink
# covering over NOISE_INK_FRACTION of the image (random pixels: about 0.068; line drawings: below 0.01).
NOISE_SPECKS = 20
NOISE_PIECES = 16
NOISE_MIN_PIECES = 50
NOISE_PAPER_DENSITY = 0.02
NOISE_INK_FRACTION = 0.3


def _check_pixels(width: int, height: int, name: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"{name}: the image is {width} x {height} = {width * height:,} pixels, more than the "
                         f"{MAX_IMAGE_PIXELS:,} sketchheal reads (sketchheal.sketch.image.MAX_IMAGE_PIXELS); scale "
                         "it down first")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """A raster image file as ``(H, W) float32`` grey levels in [0, 1] (transparent pixels count as white paper).

    Only the formats of ``IMAGE_FORMATS`` are opened (no plug-in that runs other programs, such as EPS), and the
    pixel count is checked against ``MAX_IMAGE_PIXELS`` from the header, before anything is decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower limit follows
            with Image.open(path, formats=IMAGE_FORMATS) as im:
                _check_pixels(im.width, im.height, str(path))
                im.load()
                return _pil_to_gray(im)
    except Image.DecompressionBombError:
        raise ValueError(f"{path}: the image has more pixels than the {MAX_IMAGE_PIXELS:,} sketchheal reads "
                         "(sketchheal.sketch.image.MAX_IMAGE_PIXELS); scale it down first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, struct.error) as e:
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
        _check_pixels(a.shape[1], a.shape[0], name)
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
    _check_pixels(a.shape[1], a.shape[0], name)
    g = a.astype(np.float32)
    if not np.isfinite(g).all():
        raise ValueError(f"{name}: the image contains NaN or inf")
    return np.clip(g / 255.0 if a.dtype == np.uint8 else _unit(g), 0, 1)


array_to_gray = _array_to_gray


def _unit(a: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] stay; anything reaching above 1 is read as 0..255."""
    return a / 255.0 if a.size and a.max() > 1.0 else a


def _binarise(gray: np.ndarray, invert: bool, name: str) -> np.ndarray:
    """Grey ``(H, W)`` in [0, 1] -> ink mask ``(H, W) uint8`` (1 = ink), Otsu's threshold on the ink strength.

    Specks (pieces of at most ``SPECK_PIXELS``) are dropped. Raises ``ValueError`` naming the image when there is no
    ink, when what is left is no drawing (only specks, or one dot) or looks like noise (see ``NOISE_*``), and when
    most of the image is ink (the wrong polarity: see ``invert``).
    """
    ink = gray if invert else 1.0 - gray
    lo, hi = float(ink.min()), float(ink.max())
    if hi - lo < MIN_CONTRAST:
        raise ValueError(f"{name}: no ink found (the image is blank or of one colour)")
    u8 = np.clip((ink - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    speck = areas <= SPECK_PIXELS
    speck_ink, kept_ink = int(areas[speck].sum()), int(areas[~speck].sum())
    if kept_ink == 0:
        raise ValueError(f"no drawing found in {name}: only specks of ink ({int(speck.sum())} of 1-{SPECK_PIXELS} "
                         "pixels, which are dropped as noise)")
    frac = kept_ink / mask.size
    if frac <= 1 - NOISE_INK_FRACTION:  # beyond: the wrong polarity, said below
        _check_drawing(mask, areas[~speck], stats[1:][~speck], speck_ink, int(speck.sum()), frac, name)
    if speck.any():
        mask[np.isin(labels, np.flatnonzero(speck) + 1)] = 0
    if frac > MAX_INK_FRACTION:
        hint = "dark ink on light paper? drop invert" if invert else \
            "light ink on a dark background? pass invert=True (--invert)"
        raise ValueError(f"{name}: {frac:.0%} of the image is ink; expected a line drawing ({hint})")
    return mask


def _check_drawing(mask: np.ndarray, areas: np.ndarray, stats: np.ndarray, speck_ink: int, specks: int,
                   frac: float, name: str) -> None:
    """Raise unless the ink pieces ``areas`` (specks left out; ``stats`` their OpenCV boxes) look like a drawing."""
    h, w = mask.shape
    x0, y0 = stats[:, cv2.CC_STAT_LEFT].min(), stats[:, cv2.CC_STAT_TOP].min()
    x1 = (stats[:, cv2.CC_STAT_LEFT] + stats[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]).max()
    extent = int(max(x1 - x0, y1 - y0))
    if extent < max(4, MIN_DRAWING_EXTENT * max(h, w)):
        raise ValueError(f"no drawing found in {name}: the ink is one dot of {x1 - x0} x {y1 - y0} pixels in a "
                         f"{w} x {h} image")
    total = int(areas.sum())
    if specks >= NOISE_SPECKS and speck_ink > total:
        raise ValueError(f"no drawing found in {name}: the ink is mostly specks ({specks} of 1-{SPECK_PIXELS} "
                         "pixels): noise, not a line drawing")
    half = int(np.searchsorted(np.cumsum(np.sort(areas)[::-1]), total / 2)) + 1
    if half > NOISE_PIECES and len(areas) >= NOISE_MIN_PIECES:
        raise ValueError(f"no drawing found in {name}: the ink is scattered over {len(areas)} pieces ({half} of "
                         "them hold half of it; a line drawing's strokes hold it in one or two): noise, not a "
                         "line drawing")
    if frac > NOISE_INK_FRACTION:
        paper = cv2.connectedComponents(1 - mask, connectivity=4)[0] - 1
        if paper > max(40, NOISE_PAPER_DENSITY * mask.size):
            raise ValueError(f"no drawing found in {name}: {frac:.0%} of the image is ink and it cuts the paper "
                             f"into {paper} pieces: noise, not a line drawing")


binarise = _binarise


def image_to_input(image: np.ndarray, *, size: int = 128, mode: str = "reference", invert: bool = False,
                   mask: float | None = None, uniforms: np.ndarray | None = None,
                   max_patches: int = _render.MAX_PATCHES, name: str = "image") -> np.ndarray:
    """Normalise a drawing to the model's input: ``(size, size) float32``, ink +1, background -1.

    ``image``: grey ``(H, W)`` in [0, 1] (or anything :func:`heal` accepts as an image array); dark ink on light
    paper, ``invert=True`` for light on dark. Steps: Otsu binarisation (1-2 px specks dropped; a blank image, one
    with only specks or a dot, and noise are errors: see :func:`binarise`); crop to the ink;
    the centre lines of the strokes (distance-transform ridge) are placed exactly as ``render(mode="reference")``
    places a sketch's pen positions: the longer side of their box spans 640 px of a canvas of side
    ``max(w, h) + 34`` with the box's top-left corner at the 17-px margin (so ``size * 640 / 674`` px at the
    model's size, not centred); they are redrawn 16 px wide there (the reference's line, ~3 px at 128) whatever
    the original pen width; the canvas is resized like the reference (bilinear) or, for ``mode="fast"``,
    area-averaged and binarised.

    Masking (``mask=p`` with ``uniforms``, a ``(max_patches,)`` row of a :class:`sketchheal.sketch.masks.MaskTable`):
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
