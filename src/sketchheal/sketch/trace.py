"""Raster -> vector: the centre lines of an ink mask as points, and farthest-point sampling of them."""

from __future__ import annotations

import cv2
import numpy as np

from sketchheal.sketch.render import CANVAS_EXTENT

__all__ = ["centre_lines", "farthest_points", "RESAMPLE_THRESHOLD"]

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
