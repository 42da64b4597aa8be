"""Pictures of sketches for people: the one sketch drawer, model images as pictures, grids."""

from __future__ import annotations

import cv2
import numpy as np

from sketchheal.sketch.strokes import stroke3_to_polylines
from sketchheal.sketch.svg import fit_transform

__all__ = ["draw_strokes", "model_image_to_u8", "PREVIEW_SIZE"]

# Output raster side of the PNG / side-by-side panels.
PREVIEW_SIZE = 256


def draw_strokes(s3: np.ndarray, size: int = PREVIEW_SIZE, line_width: int | None = None) -> np.ndarray:
    """Anti-aliased picture of a stroke-3 sketch for people: ``(size, size) uint8``, black ink on white.

    Fitted and centred like :func:`sketchheal.sketch.svg.strokes_to_svg` (5 % margin); an empty sketch is a blank
    page.
    """
    img = np.full((size, size), 255, np.uint8)
    lines = [p for p in stroke3_to_polylines(s3) if len(p)] if len(s3) else []
    if not lines:
        return img
    lw = line_width or max(1, int(round(size / 100)))
    scale, offset = fit_transform(lines, size, 0.05 * size + lw / 2)
    shift = 4
    for p in lines:
        q = np.rint((p * scale + offset) * (1 << shift)).astype(np.int32)
        if len(q) == 1 or (q == q[0]).all():
            cv2.circle(img, tuple(int(v) for v in q[0]), (lw << shift) // 2, 0, -1, cv2.LINE_AA, shift)
        else:
            cv2.polylines(img, [q], False, 0, lw, cv2.LINE_AA, shift)
    return img


def model_image_to_u8(image: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """Model image ``(N, N)`` (ink +1, background -1) -> black-on-white ``(size, size) uint8`` (small images are
    enlarged with nearest-neighbour pixels, others bilinearly)."""
    u8 = np.clip((1.0 - np.asarray(image, np.float32)) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    interp = cv2.INTER_NEAREST if image.shape[0] * 2 <= size and image.shape[0] < 64 else cv2.INTER_LINEAR
    return cv2.resize(u8, (size, size), interpolation=interp)
