"""Raster -> vector: the centre lines of an ink mask as points, and farthest-point sampling of them."""

from __future__ import annotations

import cv2
import numpy as np

from sketchheal.sketch.render import CANVAS_EXTENT
from sketchheal.sketch.strokes import rdp

__all__ = ["centre_lines", "farthest_points", "RESAMPLE_THRESHOLD", "thin", "skeleton_polylines", "trace_strokes"]

# Ink masks are resampled to the reference canvas with ink kept where coverage >= this (keeps thin lines).
RESAMPLE_THRESHOLD = 0.25


def centre_lines(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink mask cropped to its box -> centre-line points ``(k, 2)`` (x, y) on a scale where the ink box's longer
    side is 640 px, and that scale factor (640 / longer side of the ink box).

    The centre line is the ridge of the distance transform (pixels at least as far from the paper as their 8
    neighbours), which is independent of the drawn line width.
    """
    ys, xs = np.nonzero(mask)
    crop = mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.float32)
    h, w = crop.shape
    s0 = CANVAS_EXTENT / max(h, w)
    size = (max(1, int(round(w * s0))), max(1, int(round(h * s0))))
    big = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if s0 < 1 else cv2.INTER_LINEAR)
    big = np.pad((big >= RESAMPLE_THRESHOLD).astype(np.uint8), 2)
    dist = cv2.distanceTransform(big, cv2.DIST_L2, 5)
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (big > 0)
    ry, rx = np.nonzero(ridge)
    return np.stack([rx, ry], 1).astype(np.float64), s0


def farthest_points(points: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` of ``points (m, 2)`` by farthest-point sampling from the topmost (then leftmost) point."""
    if len(points) == 0 or k <= 0:
        return points[:0]
    first = int(np.lexsort((points[:, 0], points[:, 1]))[0])
    chosen = [first]
    dist = np.linalg.norm(points - points[first], axis=1)
    for _ in range(min(k, len(points)) - 1):
        nxt = int(dist.argmax())
        if dist[nxt] <= 0:
            break
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return points[chosen]


# ------------------------------------------------------------------ thinning and skeleton tracing (completion)
# Neighbour offsets (dy, dx) in Zhang-Suen order P2..P9: N, NE, E, SE, S, SW, W, NW.
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _zhang_suen_tables() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of the two Zhang-Suen sub-iterations, indexed by the 8-bit neighbour code (bit k = P(k+2))."""
    first = np.zeros(256, bool)
    second = np.zeros(256, bool)
    for code in range(256):
        p = [(code >> k) & 1 for k in range(8)]  # P2..P9
        b = sum(p)
        a = sum(1 for k in range(8) if p[k] == 0 and p[(k + 1) % 8] == 1)
        if not (2 <= b <= 6 and a == 1):
            continue
        p2, p3, p4, p5, p6, p7, p8, p9 = p
        first[code] = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        second[code] = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return first, second


_ZS_FIRST, _ZS_SECOND = _zhang_suen_tables()


def _codes(img: np.ndarray) -> np.ndarray:
    """8-bit neighbour code of every pixel of a padded ``uint8`` image (borders count as paper)."""
    h, w = img.shape
    pad = np.pad(img, 1)
    code = np.zeros((h, w), np.int32)
    for k, (dy, dx) in enumerate(_NEIGHBOURS):
        code |= pad[1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w].astype(np.int32) << k
    return code


def thin(mask: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask ``(H, W)`` -> its 8-connected skeleton, one pixel wide (bool)."""
    img = np.asarray(mask, bool).astype(np.uint8)
    for _ in range(max_iter):
        changed = False
        for table in (_ZS_FIRST, _ZS_SECOND):
            kill = (img > 0) & table[_codes(img)]
            if kill.any():
                img[kill] = 0
                changed = True
        if not changed:
            break
    return img.astype(bool)


def skeleton_polylines(skel: np.ndarray) -> list[np.ndarray]:
    """Trace a 1-px skeleton ``(H, W) bool`` into polylines ``(k, 2) float64`` of pixel ``(x, y)``.

    Pixels are nodes of the 8-neighbour graph (a diagonal step is dropped where a 4-neighbour path joins the
    same two pixels, so staircase corners do not look like junctions). Every path between end points/junctions
    becomes a polyline; loops without a junction are traced from their top-left pixel and closed.
    """
    ys, xs = np.nonzero(skel)
    if len(ys) == 0:
        return []
    h, w = skel.shape
    on = set(zip(ys.tolist(), xs.tolist()))

    def neighbours(y: int, x: int) -> list[tuple[int, int]]:
        out = []
        for dy, dx in _NEIGHBOURS:
            q = (y + dy, x + dx)
            if q not in on:
                continue
            if dy and dx and ((y + dy, x) in on or (y, x + dx) in on):
                continue  # a 4-connected detour exists
            out.append(q)
        return out

    adj = {p: neighbours(*p) for p in on}
    seen: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    lines: list[np.ndarray] = []

    def walk(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
        path = [a, b]
        seen.add((a, b))
        seen.add((b, a))
        prev, cur = a, b
        while len(adj[cur]) == 2:
            nxt = adj[cur][0] if adj[cur][1] == prev else adj[cur][1]
            if (cur, nxt) in seen:
                break
            seen.add((cur, nxt))
            seen.add((nxt, cur))
            path.append(nxt)
            prev, cur = cur, nxt
        return path

    nodes = sorted(p for p in on if len(adj[p]) != 2)
    for p in nodes:
        if not adj[p]:
            lines.append(np.array([[p[1], p[0]]], np.float64))
            continue
        for q in adj[p]:
            if (p, q) not in seen:
                path = walk(p, q)
                lines.append(np.array([[x, y] for y, x in path], np.float64))
    for p in sorted(on):  # loops made only of degree-2 pixels
        for q in adj[p]:
            if (p, q) not in seen:
                path = walk(p, q)
                lines.append(np.array([[x, y] for y, x in path], np.float64))
    return lines


def trace_strokes(mask: np.ndarray, simplify: float = 0.5, min_length: float = 2.0) -> list[np.ndarray]:
    """An ink mask ``(H, W) bool`` -> its centre lines as strokes ``list[(k, 2) float64]`` in pixel ``(x, y)``
    coordinates of the mask: Zhang-Suen skeleton, traced (:func:`skeleton_polylines`), simplified by RDP
    (``simplify`` px); strokes shorter than ``min_length`` px are dropped unless they are the only ones."""
    lines = skeleton_polylines(thin(np.asarray(mask, bool)))
    out = []
    for line in lines:
        length = float(np.hypot(*np.diff(line, axis=0).T).sum()) if len(line) > 1 else 0.0
        if length >= min_length:
            out.append(rdp(line, simplify) if len(line) > 2 else line)
    return out if out else lines
