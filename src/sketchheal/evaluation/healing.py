"""Ink measures of healing: how much of the erased ink a healing restores, how much of what it adds is right, and
how much of the input it keeps (issue 17).

All three drawings of one case -- the **original** (the complete sketch), the **input** (what the healer was given:
the original with parts erased) and the **healed** drawing (everything the healer returns: for completion the
input's strokes plus the added ones, for redraw the redrawn sketch) -- are absolute polylines in ONE coordinate
system, and all three are drawn with ONE transform: the one that places the original's bounding box on a
``size x size`` image (default 128) as the published rendering places a sketch (longer side ``640 / 674`` of the
image, box corner at the ``17 / 674`` margin). That is "the original's frame": an input that lost points, or a
healing that drew outside the original's box, is not re-fitted into a box of its own.

Ink is a thin rendering: every stroke drawn with 1-px 8-connected OpenCV lines (sub-pixel end points) at
``size``; a one-point stroke is one pixel. "Within 2 px" is the Euclidean distance transform ``<= tolerance``
(default 2). With ``O``, ``I``, ``H`` the ink pixels of the original, input and healed drawings and ``d_X`` the
distance to the nearest ink pixel of ``X``:

    erased ink     E = {o in O : d_I(o) > 2}                       original ink the corruption removed
    recall         |{e in E : d_H(e) <= 2}| / |E|                  erased-ink recall
    added ink      A = {h in H : d_I(h) > 2}                       healed ink where the input has none
    precision      |{a in A : d_O(a) <= 2}| / |A|                  added-ink precision
    kept           |{i in I : d_H(i) <= 2}| / |I|                  kept ink

So healing that returns the input unchanged scores recall 0 and kept 1 (precision undefined: it adds nothing);
healing that returns the original scores 1 / 1 / 1. :func:`ink_counts` returns the pixel counts of one case;
:func:`summarise` pools the counts of many cases (a ratio of sums, so large drawings weigh more, and a case that
adds nothing contributes no denominator to precision) and also gives the per-case means.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from sketchheal.sketch.render import CANVAS_EXTENT, MARGIN, Frame

__all__ = ["FRAME_SIZE", "TOLERANCE", "Frame", "frame_of", "ink", "ink_counts", "distance_map", "summarise",
           "COUNT_KEYS"]

FRAME_SIZE = 128
TOLERANCE = 2.0
_SHIFT = 4  # sub-pixel bits of cv2.polylines
COUNT_KEYS = ("erased", "erased_hit", "added", "added_hit", "input", "input_kept")


def _points(lines: Sequence[np.ndarray]) -> np.ndarray:
    pts = [np.asarray(line, np.float64).reshape(-1, 2) for line in lines]
    pts = [p for p in pts if len(p)]
    return np.concatenate(pts, 0) if pts else np.zeros((0, 2))


def frame_of(lines: Sequence[np.ndarray], size: int = FRAME_SIZE) -> Frame:
    """The frame that places the bounding box of ``lines`` on a ``size`` image as the published rendering does."""
    pts = _points(lines)
    if len(pts) == 0:
        raise ValueError("cannot fit a frame to a drawing with no points")
    lo, hi = pts.min(0), pts.max(0)
    longer = float((hi - lo).max())
    side = CANVAS_EXTENT + 2 * MARGIN
    scale = (CANVAS_EXTENT / longer if longer > 0 else 1.0) * size / side
    off = MARGIN * size / side - lo * scale
    return Frame(scale=scale, offset=(float(off[0]), float(off[1])))


def ink(lines: Sequence[np.ndarray], frame: Frame, size: int = FRAME_SIZE, width: int = 1) -> np.ndarray:
    """``(size, size) bool``: ``lines`` (absolute polylines) drawn through ``frame`` with OpenCV thickness
    ``width`` (1: one-pixel lines; 2: the published rendering's line at 128 px, about 3 px wide)."""
    img = np.zeros((size, size), np.uint8)
    polys, dots = [], []
    for line in lines:
        p = np.asarray(line, np.float64).reshape(-1, 2)
        if len(p) == 0:
            continue
        q = np.rint(frame.apply(p) * (1 << _SHIFT))
        q = np.clip(q, -(1 << 26), 1 << 26).astype(np.int32)
        (polys if len(p) > 1 else dots).append(q)
    if polys:
        cv2.polylines(img, polys, False, 1, thickness=width, lineType=cv2.LINE_8, shift=_SHIFT)
    for d in dots:
        x, y = np.rint(d[0] / (1 << _SHIFT)).astype(int).tolist()
        if width > 1:
            cv2.circle(img, (x, y), width // 2, 1, -1)
        elif 0 <= x < size and 0 <= y < size:
            img[y, x] = 1
    return img.astype(bool)


def distance_map(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest True pixel of ``mask`` (inf when it has none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def ink_counts(original: Sequence[np.ndarray], inputs: Sequence[np.ndarray], healed: Sequence[np.ndarray], *,
               frame: Frame | None = None, size: int = FRAME_SIZE, tolerance: float = TOLERANCE,
               width: int = 1) -> dict[str, int]:
    """Pixel counts of one case (see the module docstring): ``erased, erased_hit, added, added_hit, input,
    input_kept``. ``frame`` defaults to :func:`frame_of` ``(original)``."""
    frame = frame_of(original, size) if frame is None else frame
    o, i, h = (ink(x, frame, size, width) for x in (original, inputs, healed))
    return counts_from_masks(o, i, h, tolerance)


def counts_from_masks(o: np.ndarray, i: np.ndarray, h: np.ndarray, tolerance: float = TOLERANCE) -> dict[str, int]:
    """:func:`ink_counts` from the three ink masks (bool images of one size)."""
    d_o, d_i, d_h = distance_map(o), distance_map(i), distance_map(h)
    erased = o & (d_i > tolerance)
    added = h & (d_i > tolerance)
    return {"erased": int(erased.sum()), "erased_hit": int((erased & (d_h <= tolerance)).sum()),
            "added": int(added.sum()), "added_hit": int((added & (d_o <= tolerance)).sum()),
            "input": int(i.sum()), "input_kept": int((i & (d_h <= tolerance)).sum())}


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def summarise(counts: Iterable[Mapping[str, int]]) -> dict[str, float | int | None]:
    """Pool the counts of many cases: ``recall``, ``precision``, ``kept`` (ratios of summed pixel counts; None when
    a denominator is 0), their per-case means (``*_mean``, over the cases where defined), ``n`` cases, and
    ``f1`` of the pooled recall and precision."""
    rows = [dict(c) for c in counts]
    tot = {k: sum(int(r[k]) for r in rows) for k in COUNT_KEYS}
    out: dict[str, float | int | None] = {
        "n": len(rows),
        "recall": _ratio(tot["erased_hit"], tot["erased"]),
        "precision": _ratio(tot["added_hit"], tot["added"]),
        "kept": _ratio(tot["input_kept"], tot["input"]),
    }
    for name, (num, den) in {"recall": ("erased_hit", "erased"), "precision": ("added_hit", "added"),
                             "kept": ("input_kept", "input")}.items():
        vals = [r[num] / r[den] for r in rows if r[den] > 0]
        out[f"{name}_mean"] = float(np.mean(vals)) if vals else None
    r, p = out["recall"], out["precision"]
    out["f1"] = float(2 * r * p / (r + p)) if r is not None and p is not None and r + p > 0 else None
    out.update({f"px_{k}": v for k, v in tot.items()})
    return out
