"""Vector erasure: squares erased from a drawing's strokes (the corruption issue 17's checker applies to ndjson).

It mirrors the published raster masks (:func:`sketchheal.sketch.render.corrupt`) on the vector strokes:

- **candidates**: in drawing order, the first point of every stroke and every 4th point after it that starts a
  segment (the published rule: the pen position before the first segment of every stroke and before every 4th
  drawn segment inside it), at most ``max_patches`` (20); a one-point stroke is its own candidate.
- candidate ``k`` is erased iff ``uniforms[k] < p`` (so masks of one table of uniforms are nested across ``p``;
  rows of a :class:`~sketchheal.sketch.masks.MaskTable` give the same choices as the raster masks of the
  evaluation), or, without uniforms, with probability ``p`` from ``numpy.random.default_rng(seed)``.
- each erased candidate is the centre of an axis-aligned square of side ``side_fraction`` (1/5) of the longer side
  of the drawing's bounding box (the published 128 px of 640).

Inside a square (``|x - cx| < side / 2`` and ``|y - cy| < side / 2``, open) nothing is kept: points inside are
removed, and every segment is cut where it crosses a square's border, so that no kept segment crosses a square
(a segment passing through a square without a point inside it is cut too). A stroke is split where it enters a
square; the new end points lie on the border. Kept original points are returned unchanged (bit for bit).

``erase(..., cut=False)`` (:func:`erase_points`) erases the same squares the way an eraser of points does: the
points inside a square are removed and a stroke is split where they were, with no new points: a segment with an
end inside a square goes whole, and one that crosses a square between two kept points stays. On sparse strokes
(QuickDraw's simplified drawings, RDP at 2/255) this erases much more ink than the squares themselves (at p = 0.3,
39 % of the held-out QuickDraw drawings' ink against 24 %); on dense strokes the two are nearly the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sketchheal.sketch.render import MAX_PATCHES, CANDIDATE_STRIDE
from sketchheal.sketch.strokes import stroke3_to_polylines

__all__ = ["SIDE_FRACTION", "Erasure", "candidate_points", "square_side", "erase_squares", "erase_points", "erase",
           "erase_stroke3"]

SIDE_FRACTION = 0.2  # square side / longer side of the drawing's box (the published 128 of 640)
_EPS = 1e-12


@dataclass(frozen=True)
class Erasure:
    """lines: the kept strokes (absolute ``(k, 2) float64``, in the input's coordinates); centres ``(m, 2)`` and
    side: the erased squares; erased ``(c,) bool``: one flag per candidate, in drawing order."""

    lines: list[np.ndarray]
    centres: np.ndarray
    side: float
    erased: np.ndarray


def _clean(lines: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(line, np.float64).reshape(-1, 2) for line in lines]
    return [line for line in out if len(line)]


def candidate_points(lines: Sequence[np.ndarray], max_patches: int = MAX_PATCHES) -> np.ndarray:
    """Patch candidates ``(k, 2)`` of absolute strokes, in drawing order (module docstring), ``k <= max_patches``."""
    pts = []
    for line in _clean(lines):
        n_seg = max(len(line) - 1, 1)
        pts.append(line[np.arange(0, n_seg, CANDIDATE_STRIDE)])
    if not pts:
        return np.zeros((0, 2))
    return np.concatenate(pts, 0)[:max_patches]


def square_side(lines: Sequence[np.ndarray], side_fraction: float = SIDE_FRACTION) -> float:
    """``side_fraction`` of the longer side of the bounding box of ``lines``."""
    lines = _clean(lines)
    if not lines:
        return 0.0
    pts = np.concatenate(lines, 0)
    return float((pts.max(0) - pts.min(0)).max() * side_fraction)


def _inside_intervals(a: np.ndarray, b: np.ndarray, centres: np.ndarray, half: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """For segments ``a -> b`` (``(m, 2)`` each) and squares: ``(m, k)`` entry/exit parameters of the open square
    (Liang-Barsky), clipped to [0, 1]; empty where ``t0 >= t1``."""
    d = (b - a)[:, None, :]  # (m, 1, 2)
    lo = (centres - half)[None]  # (1, k, 2)
    hi = (centres + half)[None]
    p = a[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - p) / d
        t2 = (hi - p) / d
    moving = np.abs(d) > _EPS
    inside_static = (p > lo) & (p < hi)  # a coordinate that does not move must lie strictly inside
    tmin = np.where(moving, np.minimum(t1, t2), np.where(inside_static, -np.inf, np.inf))
    tmax = np.where(moving, np.maximum(t1, t2), np.where(inside_static, np.inf, -np.inf))
    t0 = np.clip(tmin.max(-1), 0.0, 1.0)
    t1_ = np.clip(tmax.min(-1), 0.0, 1.0)
    return t0, t1_


def _kept(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The complement in [0, 1] of a union of open intervals."""
    out, start = [], 0.0
    for s, e in sorted(intervals):
        if s > start:
            out.append((start, s))
        start = max(start, e)
    if start < 1.0:
        out.append((start, 1.0))
    return out


def erase_squares(lines: Sequence[np.ndarray], centres: np.ndarray, side: float) -> list[np.ndarray]:
    """The parts of ``lines`` outside every open square of ``side`` centred on ``centres (m, 2)``."""
    lines = _clean(lines)
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    if len(centres) == 0 or side <= 0:
        return [line.copy() for line in lines]
    half = side / 2.0
    out: list[np.ndarray] = []
    for line in lines:
        if len(line) == 1:
            if not (np.abs(line[0] - centres) < half).all(1).any():
                out.append(line.copy())
            continue
        a, b = line[:-1], line[1:]
        t0, t1 = _inside_intervals(a, b, centres, half)
        hit = t0 < t1  # (m, k)
        touched = hit.any(1)
        if not touched.any():
            out.append(line.copy())
            continue
        cur: list[np.ndarray] = []
        for j in range(len(a)):
            if touched[j]:
                kept = _kept([(float(t0[j, k]), float(t1[j, k])) for k in np.flatnonzero(hit[j])])
            else:
                kept = [(0.0, 1.0)]
            if not any(e - s > _EPS for s, e in kept):  # wholly inside (it may enter on a vertex): the stroke ends
                if len(cur) > 1:
                    out.append(np.array(cur))
                cur = []
                continue
            for s, e in kept:
                if e - s <= _EPS:
                    continue
                pe = b[j] if e == 1.0 else a[j] + e * (b[j] - a[j])
                if cur and s == 0.0:  # continues the stroke from the previous segment's end
                    cur.append(pe)
                else:
                    if len(cur) > 1:
                        out.append(np.array(cur))
                    cur = [a[j] if s == 0.0 else a[j] + s * (b[j] - a[j]), pe]
                if e < 1.0:  # the segment enters a square: the stroke ends on its border
                    out.append(np.array(cur))
                    cur = []
        if len(cur) > 1:
            out.append(np.array(cur))
    return out


def erase_points(lines: Sequence[np.ndarray], centres: np.ndarray, side: float) -> list[np.ndarray]:
    """``lines`` without their points inside any open square of ``side`` centred on ``centres (m, 2)``, each
    stroke split where points were removed (runs of kept points; a run of one point is a one-point stroke)."""
    lines = _clean(lines)
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    if len(centres) == 0 or side <= 0:
        return [line.copy() for line in lines]
    half = side / 2.0
    out: list[np.ndarray] = []
    for line in lines:
        inside = (np.abs(line[:, None, :] - centres[None]) < half).all(-1).any(-1)  # (k,)
        bounds = np.flatnonzero(np.diff(np.concatenate([[True], inside, [True]]).astype(np.int8)))
        out += [line[a:b].copy() for a, b in zip(bounds[::2], bounds[1::2])]  # runs of kept points
    return out


def erase(lines: Sequence[np.ndarray], p: float, *, uniforms: np.ndarray | None = None, seed: int | None = 0,
          max_patches: int = MAX_PATCHES, side_fraction: float = SIDE_FRACTION, cut: bool = True) -> Erasure:
    """Erase squares from absolute strokes ``lines``: candidate ``k`` is erased iff ``uniforms[k] < p`` (fresh
    uniforms from ``default_rng(seed)`` when None). ``cut``: strokes cut on the squares' borders
    (:func:`erase_squares`); False: only the points inside removed (:func:`erase_points`). See the module
    docstring."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"erase probability p must be in [0, 1], got {p}")
    lines = _clean(lines)
    cands = candidate_points(lines, max_patches)
    if uniforms is None:
        uniforms = np.random.default_rng(seed).random(max_patches)
    u = np.asarray(uniforms, np.float64).reshape(-1)
    if u.shape[0] < len(cands):
        raise ValueError(f"need at least {len(cands)} uniforms (one per candidate), got {u.shape[0]}")
    erased = u[: len(cands)] < float(p)
    side = square_side(lines, side_fraction)
    centres = cands[erased]
    kept = erase_squares(lines, centres, side) if cut else erase_points(lines, centres, side)
    return Erasure(lines=kept, centres=centres, side=side, erased=erased)


def erase_stroke3(s3: np.ndarray, p: float, **kw) -> Erasure:
    """:func:`erase` on a stroke-3 sketch: its strokes as absolute polylines from ``p_0 = (0, 0)``."""
    return erase(stroke3_to_polylines(s3), p, **kw)
