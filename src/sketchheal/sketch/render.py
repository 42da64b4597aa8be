"""Rasterise stroke-3 sketches and corrupt them with erased patches (the sketch-healing protocol).

Two modes:

- ``"reference"`` reproduces the published Lmser-pix2seq rendering pixel for pixel: offsets scaled so that the
  bounding box's longer side is 640 px and truncated to int16, drawn with 16-px OpenCV lines on a square canvas of
  side ``max(w, h) + 34`` (box corner at the 17-px margin, not centred), patches erased on that canvas, then a
  bilinear ``cv2.resize`` to ``size``. Each stroke is drawn with one ``cv2.polylines`` call, which gives the same
  pixels as the published per-segment ``cv2.line`` loop (tested) at several times the speed.
- ``"fast"`` uses the same geometry (same placement and truncated pen positions) but draws directly at ``size``
  with sub-pixel coordinates and a line width scaled from the 640-px canvas; it is binary (no grey edges).

Patch candidates follow the published rule: the pen position before the first segment of every stroke and before
every 4th drawn segment inside a stroke, at most ``max_patches``. Candidate ``k`` is erased iff ``uniforms[k] < p``,
so masks drawn from one table of uniforms are nested across ``p``. All patches are erased after everything is
drawn, so erased ink never leaks back. See ``docs/protocol.md``. ``corrupt(..., erasure="points")`` erases the same
squares the way an eraser of points does (the training augmentation ``data.point_erase``): every segment with an
end point inside an erased square is left out of the drawing, and nothing else (a segment crossing a square
without a point in it stays).

Images are ``(size, size) float32`` with ink ``+1`` and background ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import cv2
import numpy as np


MODES = ("reference", "fast")
ERASURES = ("pixels", "points")  # corrupt(): squares of pixels (published), or the points inside them
# Longer side of the sketch's bounding box on the reference canvas, in pixels.
CANVAS_EXTENT = 640
# Line thickness on the reference canvas: int(640 * 0.025).
LINE_WIDTH = 16
# The box's top-left corner sits at this margin; the canvas side is max(w, h) + 2 * MARGIN.
MARGIN = LINE_WIDTH + 1
# Side of an erased square on the reference canvas (1/5 of the sketch's longer side).
PATCH_SIDE = 128
# The published code erases on a copy of the canvas padded by this many pixels and skips squares that do not fit.
_ERASE_PAD = 384
# Draw one candidate every this many drawn segments inside a stroke.
CANDIDATE_STRIDE = 4
MAX_PATCHES = 20
# Sub-pixel bits for the fast mode's cv2.polylines coordinates.
_FAST_SHIFT = 4

# uint8 -> [-1, 1] exactly as torchvision's ToTensor() + Normalize(0.5, 0.5) computes it in float32.
_U8_TO_UNIT = ((np.arange(256, dtype=np.float32) / np.float32(255)) - np.float32(0.5)) / np.float32(0.5)
_U8_TO_UNIT_CV = _U8_TO_UNIT.reshape(1, 256)


@dataclass(frozen=True)
class Corruption:
    """Result of :func:`corrupt`.

    corrupted: ``(size, size) float32`` image with the chosen patches erased.
    clean: ``(size, size) float32`` image of the same sketch without erasure (the ground truth).
    erased: ``(k,) bool``, one flag per patch candidate (``k <= max_patches``), True where ``uniforms[k] < p``.
    """

    corrupted: np.ndarray
    clean: np.ndarray
    erased: np.ndarray


@dataclass(frozen=True)
class Layout:
    """Where a sketch lands on the reference canvas.

    side: ``S``, side of the square reference canvas (``max(w, h) + 34``).
    points: ``(n + 1, 2) int64`` pen positions ``p_0 .. p_n`` as ``(x, y)`` canvas pixels.
    drawn: ``(n,) bool``, True where row ``i`` draws segment ``p_i -> p_{i+1}`` (False for moves).
    lifted: ``(n,) bool``, the (truncated) pen-lifted column.
    """

    side: int
    points: np.ndarray
    drawn: np.ndarray
    lifted: np.ndarray


# --------------------------------------------------------------------------------------------------- validation


def _check_sketch(s3: np.ndarray) -> np.ndarray:
    """Return ``s3`` as a C-contiguous ``(n, 3) float32`` array; raise ValueError for unusable input."""
    try:
        a = np.asarray(s3, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"sketch must be a numeric (n, 3) stroke-3 array: {e}") from None
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"sketch must be a stroke-3 array of shape (n, 3) (dx, dy, pen_lifted); got {a.shape}")
    if a.shape[0] == 0:
        raise ValueError("sketch is empty (0 points); drop empty sketches before rendering")
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        raise ValueError(f"sketch has a non-finite value (NaN or inf) in row {bad}; clean the data first")
    return np.ascontiguousarray(a)


def _check_size(size: int) -> int:
    if isinstance(size, (bool, np.bool_)) or int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return int(size)


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown render mode {mode!r}; choose one of {MODES}")
    return mode


# ------------------------------------------------------------------------------------------------------ geometry


def _box_from_second_point(d: np.ndarray) -> tuple[float, float, float, float]:
    """``(xmin, ymin, w, h)`` of the points ``p_2 .. p_n`` measured from ``p_1`` (cumulative sums of ``d[1:]``).

    ``d``: ``(n, 2)`` offsets; the cumulative sum keeps ``d``'s dtype (float32 input, int64 after scaling), as the
    published code does. Returns zeros when ``n < 2``.
    """
    if d.shape[0] < 2:
        return 0, 0, 0, 0
    c = np.cumsum(d[1:], axis=0)
    lo = c.min(axis=0)
    hi = c.max(axis=0)
    return lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]


def _scaled_offsets(a: np.ndarray) -> np.ndarray:
    """Offsets of ``a (n, 3) float32`` scaled so the box's longer side is 640, truncated to int16: ``(n, 2) int64``.

    The published code divides by the integer box side and multiplies by 640 in float64, then casts to int16
    (truncation toward zero). Values beyond the int16 range (an offset more than ~51 times the box side) are
    clipped here instead of wrapping around. A box of zero extent (a single point, or all of ``p_2 .. p_n``
    equal) leaves the offsets unscaled.
    """
    _, _, w, h = _box_from_second_point(a[:, :2])
    longer = int(h) if int(h) >= int(w) else int(w)
    d = a[:, :2].astype(np.float64)
    if longer > 0:
        d = d / np.float64(longer) * np.float64(CANVAS_EXTENT)
    if np.abs(d).max() >= 32768.0:
        d = np.clip(d, np.iinfo(np.int16).min, np.iinfo(np.int16).max)
    return d.astype(np.int64)  # truncates toward zero, as the int16 cast does


def _drawn_rows(lifted: np.ndarray) -> np.ndarray:
    """``(n,) bool``: row ``i`` draws unless it is a move, i.e. the previous row was drawn and lifted the pen.

    This is the published loop's state machine (a move row's own pen state is ignored). Within a run of
    consecutive lifted rows, the rows alternate drawn / move starting with drawn; without such runs this is
    simply "drawn unless the previous row lifted the pen", and row 0 is always drawn.
    """
    move = np.zeros(lifted.shape[0], dtype=bool)
    move[1:] = lifted[:-1]
    if not (move & lifted).any():  # no two consecutive lifted rows: the common case
        return ~move
    n = lifted.shape[0]
    idx = np.arange(n)
    run_start = lifted & np.concatenate(([True], ~lifted[:-1]))
    first = np.maximum.accumulate(np.where(run_start, idx, 0))
    drawn_lift = lifted & ((idx - first) % 2 == 0)
    move = np.concatenate(([False], drawn_lift[:-1]))
    return ~move


def layout(s3: np.ndarray) -> Layout:
    """Place a stroke-3 sketch ``(n, 3)`` on the reference canvas (see :class:`Layout`)."""
    a = _check_sketch(s3)
    d = _scaled_offsets(a)
    lifted = np.trunc(a[:, 2]) != 0  # the pen column goes through the same int16 cast
    xmin, ymin, w, h = _box_from_second_point(d)
    start = np.array([MARGIN - xmin - d[0, 0], MARGIN - ymin - d[0, 1]], dtype=np.int64)
    points = np.empty((a.shape[0] + 1, 2), dtype=np.int64)
    points[0] = start
    np.cumsum(d, axis=0, out=points[1:])
    points[1:] += start
    side = int(max(w, h)) + 2 * MARGIN
    return Layout(side=side, points=points, drawn=_drawn_rows(lifted), lifted=lifted)


def _polylines(points: np.ndarray, drawn: np.ndarray) -> list[np.ndarray]:
    """Split pen positions ``(n + 1, 2)`` into the connected runs of drawn segments, each ``(k >= 2, 2)``."""
    bounds = [0, *(np.flatnonzero(~drawn) + 1).tolist(), points.shape[0]]
    return [points[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= 2]


def _candidate_rows(lay: Layout, max_patches: int) -> np.ndarray:
    """Rows ``i`` whose pen position ``p_i`` is a patch candidate, in drawing order, at most ``max_patches``.

    Candidates sit at drawn rows where the count of drawn segments since the last pen-up is a multiple of 4.
    """
    rows = np.flatnonzero(lay.drawn)
    if rows.size == 0 or max_patches <= 0:
        return rows[:0]
    j = np.arange(rows.size)
    starts = np.concatenate(([True], lay.lifted[rows[:-1]]))
    first = np.maximum.accumulate(np.where(starts, j, 0))
    keep = (j - first) % CANDIDATE_STRIDE == 0
    return rows[keep][:max_patches]


def patch_candidates(s3: np.ndarray, max_patches: int = MAX_PATCHES, size: int | None = None) -> np.ndarray:
    """Centres of the patch candidates of a stroke-3 sketch ``(n, 3)``.

    Returns ``(k, 2)`` positions ``(x, y)``, ``k <= max_patches``, in drawing order: int64 pixels of the reference
    canvas (side ``layout(s3).side``) when ``size`` is None, else float64 pixel coordinates of a ``size x size``
    image (pixel centres at integers, as ``cv2.resize`` maps them).
    """
    lay = layout(s3)
    centres = lay.points[_candidate_rows(lay, max_patches)]
    if size is None:
        return centres
    return _to_image_coords(centres, lay.side, _check_size(size))


def candidate_uniforms(s3: np.ndarray, point_uniforms: np.ndarray, max_patches: int = MAX_PATCHES) -> np.ndarray:
    """Per-candidate uniforms from a per-point row, as the published evaluation indexes its ``seed.npy``.

    The published evaluation erases the candidate taken at row ``i`` iff ``seed[sketch, i] < p``. Given that
    sketch's row ``point_uniforms (m,)`` (``m >= n``), this returns ``(max_patches,)`` uniforms for :func:`corrupt`
    that give the same masks: the entries at the candidates' rows, padded with 1.0 (never erased).
    """
    u = np.asarray(point_uniforms, dtype=np.float64)
    lay = layout(s3)
    if u.ndim != 1 or u.shape[0] < lay.drawn.shape[0]:
        raise ValueError(f"point_uniforms must be 1-D with at least one number per point "
                         f"({lay.drawn.shape[0]}), got shape {u.shape}")
    out = np.ones(max_patches, dtype=np.float64)
    rows = _candidate_rows(lay, max_patches)
    out[: rows.shape[0]] = u[rows]
    return out


def _to_image_coords(xy: np.ndarray, side: int, size: int) -> np.ndarray:
    """Canvas pixel coordinates -> coordinates in a ``size`` image resized from the ``side`` canvas."""
    return (xy.astype(np.float64) + 0.5) * (size / side) - 0.5


# ----------------------------------------------------------------------------------------------- reference mode


def _draw_reference(lay: Layout) -> np.ndarray:
    """``(S, S) uint8`` canvas, ink 255: 16-px 8-connected lines, one ``cv2.polylines`` contour per stroke."""
    canvas = np.zeros((lay.side, lay.side), dtype=np.uint8)
    lines = _polylines(lay.points.astype(np.int32), lay.drawn)
    if lines:
        cv2.polylines(canvas, lines, False, 255, thickness=LINE_WIDTH, lineType=cv2.LINE_8)
    return canvas


def _published_slice(lo: int, hi: int, side: int) -> tuple[int, int] | None:
    """Canvas rows/columns ``[a, b)`` that the published code erases for the padded-canvas slice ``[lo, hi)``.

    The published code pads the canvas by 384 px, slices ``[c - 64 : c + 64]`` with Python's slicing rules
    (negative indices wrap around) and erases only when the slice is exactly 128 long. Returns None when it
    skips the square.
    """
    start, stop, _ = slice(lo + _ERASE_PAD, hi + _ERASE_PAD).indices(side + 2 * _ERASE_PAD)
    if stop - start != PATCH_SIDE:
        return None
    a = min(max(start - _ERASE_PAD, 0), side)
    b = min(max(stop - _ERASE_PAD, 0), side)
    return a, b


def _erase_reference(canvas: np.ndarray, centres: np.ndarray) -> None:
    """Set to 0 the 128 x 128 squares centred on ``centres (k, 2)`` (x, y) of the reference canvas, in place."""
    side = canvas.shape[0]
    half = PATCH_SIDE // 2
    for x, y in centres.tolist():
        rows = _published_slice(y - half, y + half, side)
        cols = _published_slice(x - half, x + half, side)
        if rows is not None and cols is not None:
            canvas[rows[0]:rows[1], cols[0]:cols[1]] = 0


def _resize_to_unit(canvas: np.ndarray, size: int) -> np.ndarray:
    """Bilinear ``cv2.resize`` of a uint8 canvas to ``size`` (skipped when equal), then to float32 in [-1, 1]."""
    if canvas.shape[0] != size or canvas.shape[1] != size:
        canvas = cv2.resize(canvas, (size, size))
    return cv2.LUT(canvas, _U8_TO_UNIT_CV)


# ---------------------------------------------------------------------------------------------------- fast mode


def fast_line_width(side: int, size: int) -> int:
    """Line thickness for the fast mode: the reference's 16 px on the ``side`` canvas, scaled to ``size``.

    OpenCV's 8-connected thick lines come out about one pixel wider than their nominal thickness, so the nominal
    value is ``round(17 * size / side) - 1`` (at least 1): 2 at 128 px, 5 at 256 px.
    """
    return max(1, int(round((LINE_WIDTH + 1) * size / side)) - 1)


def _draw_fast(lay: Layout, size: int) -> np.ndarray:
    """``(size, size) uint8`` image drawn directly at ``size`` with the reference placement, ink 255."""
    image = np.zeros((size, size), dtype=np.uint8)
    xy = np.rint(_to_image_coords(lay.points, lay.side, size) * (1 << _FAST_SHIFT)).astype(np.int32)
    lines = _polylines(xy, lay.drawn)
    if lines:
        cv2.polylines(image, lines, False, 255, thickness=fast_line_width(lay.side, size),
                      lineType=cv2.LINE_8, shift=_FAST_SHIFT)
    return image


def _erase_fast(image: np.ndarray, centres: np.ndarray, side: int) -> None:
    """Erase, in place, the image pixels whose centres fall inside the reference's squares scaled to the image."""
    size = image.shape[0]
    half = PATCH_SIDE // 2
    # The canvas square covers [c - 64, c + 64) in pixel-edge coordinates; keep pixels with centres inside.
    lo = np.clip(np.ceil((centres - half) * (size / side) - 0.5), 0, size).astype(np.int64).tolist()
    hi = np.clip(np.ceil((centres + half) * (size / side) - 0.5), 0, size).astype(np.int64).tolist()
    for (c0, r0), (c1, r1) in zip(lo, hi):
        image[r0:r1, c0:c1] = 0

# ---------------------------------------------------------------------------------------------------- public API


def _draw(lay: Layout, size: int, mode: str) -> np.ndarray:
    return _draw_reference(lay) if mode == "reference" else _draw_fast(lay, size)


def blank(size: int) -> np.ndarray:
    """An empty model image ``(size, size) float32`` of background -1 (the one blank image of the package)."""
    return np.full((size, size), -1.0, np.float32)


def render_or_blank(s3: np.ndarray | None, size: int = 128, mode: str = "reference") -> np.ndarray:
    """:func:`render`, with an empty or undrawable sketch (e.g. a healing with no points) drawn as :func:`blank`."""
    if s3 is None or len(s3) == 0:
        return blank(size)
    try:
        return render(s3, size=size, mode=mode)
    except ValueError:
        return blank(size)


def render(s3: np.ndarray, size: int = 128, mode: str = "reference") -> np.ndarray:
    """Render a stroke-3 sketch ``(n, 3)`` (unnormalised offsets) to a ``(size, size) float32`` image in [-1, 1]."""
    size = _check_size(size)
    lay = layout(s3)
    canvas = _draw(lay, size, _check_mode(mode))
    return _resize_to_unit(canvas, size)


def corrupt(
    s3: np.ndarray,
    uniforms: np.ndarray,
    p: float,
    size: int = 128,
    mode: str = "reference",
    max_patches: int = MAX_PATCHES,
    erasure: str = "pixels",
) -> Corruption:
    """Render a stroke-3 sketch ``(n, 3)`` and erase its patch candidates ``k`` with ``uniforms[k] < p``.

    uniforms: ``(m,)`` numbers in [0, 1), ``m >= max_patches``; one per candidate in drawing order (a row of a
    :class:`~sketchheal.sketch.masks.MaskTable`, or fresh draws). p: erase probability in [0, 1]. With
    ``erasure="pixels"`` (the published corruption) all squares are erased after the whole sketch is drawn and
    before resizing; with ``"points"`` the sketch is drawn without the segments that have an end point inside an
    erased square (the square ``[c - 64, c + 64)`` on the reference canvas, as the pixels). Returns
    :class:`Corruption` ``(corrupted, clean, erased)``.
    """
    size = _check_size(size)
    mode = _check_mode(mode)
    if erasure not in ERASURES:
        raise ValueError(f"unknown erasure {erasure!r}; choose one of {ERASURES}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"mask probability p must be in [0, 1], got {p}")
    u = np.asarray(uniforms, dtype=np.float64)
    if u.ndim != 1 or u.shape[0] < max_patches:
        raise ValueError(f"uniforms must be a 1-D array of at least max_patches={max_patches} numbers, "
                         f"got shape {u.shape}")
    lay = layout(s3)
    centres = lay.points[_candidate_rows(lay, max_patches)]
    erased = u[: centres.shape[0]] < float(p)
    canvas = _draw(lay, size, mode)
    clean = _resize_to_unit(canvas, size)
    if not erased.any():
        return Corruption(corrupted=clean.copy(), clean=clean, erased=erased)
    if erasure == "points":
        c = centres[erased]  # (k, 2) canvas pixels
        half = PATCH_SIDE // 2
        inside = ((lay.points[:, None, :] >= c[None] - half) & (lay.points[:, None, :] < c[None] + half)
                  ).all(-1).any(-1)  # (n + 1,) pen positions inside an erased square
        kept = replace(lay, drawn=lay.drawn & ~inside[:-1] & ~inside[1:])  # segment i: p_i -> p_{i+1}
        return Corruption(corrupted=_resize_to_unit(_draw(kept, size, mode), size), clean=clean, erased=erased)
    damaged = canvas.copy()
    if mode == "reference":
        _erase_reference(damaged, centres[erased])
    else:
        _erase_fast(damaged, centres[erased], lay.side)
    return Corruption(corrupted=_resize_to_unit(damaged, size), clean=clean, erased=erased)


def render_batch(sketches: Iterable[np.ndarray], size: int = 128, mode: str = "reference") -> np.ndarray:
    """Render several stroke-3 sketches: ``(B, size, size) float32`` (``B = 0`` gives ``(0, size, size)``)."""
    size = _check_size(size)
    images = [render(s, size, mode) for s in sketches]
    if not images:
        return np.zeros((0, size, size), dtype=np.float32)
    return np.stack(images)


# ------------------------------------------------------------------------------------------- the layout's frame


@dataclass(frozen=True)
class Frame:
    """A similarity without rotation from drawing coordinates to image pixels: ``xy = scale * uv + offset``."""

    scale: float
    offset: tuple[float, float]

    def apply(self, points: np.ndarray) -> np.ndarray:
        """``(k, 2)`` drawing coordinates -> image pixel coordinates (pixel centres at integers)."""
        return np.asarray(points, np.float64) * self.scale + np.asarray(self.offset, np.float64)

    def invert(self, points: np.ndarray) -> np.ndarray:
        """``(k, 2)`` image pixel coordinates -> drawing coordinates."""
        return (np.asarray(points, np.float64) - np.asarray(self.offset, np.float64)) / self.scale


def layout_frame(s3: np.ndarray, size: int, start: tuple[float, float] = (0.0, 0.0)) -> Frame:
    """The frame in which :func:`render` ``(s3, size)`` draws a stroke-3 sketch whose pen starts at ``start``.

    The published placement truncates every scaled offset, so the exact map is not a similarity; this is the
    least-squares similarity (one scale, a translation) from the absolute pen positions ``start + p_i`` to the
    layout's pen positions on the reference canvas, followed by the resize to ``size`` (both modes share it).
    """
    lay = layout(s3)
    a = _check_sketch(s3)
    uv = np.zeros((a.shape[0] + 1, 2), np.float64)
    np.cumsum(a[:, :2].astype(np.float64), axis=0, out=uv[1:])
    xy = lay.points.astype(np.float64)
    du, dx = uv - uv.mean(0), xy - xy.mean(0)
    var = float((du * du).sum())
    s = float((du * dx).sum() / var) if var > 0 else 1.0
    t = xy.mean(0) - s * (uv.mean(0) + np.asarray(start, np.float64))
    k = _check_size(size) / lay.side  # canvas -> image: (c + 0.5) * k - 0.5
    off = (t + 0.5) * k - 0.5
    return Frame(scale=s * k, offset=(float(off[0]), float(off[1])))


__all__ = [
    "MODES", "ERASURES", "Corruption", "Frame", "Layout", "candidate_uniforms", "corrupt", "fast_line_width", "layout",
    "layout_frame", "patch_candidates", "render", "render_batch",
]
