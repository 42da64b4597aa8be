"""Draw the example inputs shipped with the package (src/sketchheal/assets/examples/) with code.

Nothing here comes from a dataset: each sheep is built from circles, arcs and lines with a seeded random jitter,
as a person might draw one (a woolly body made of bumps, a head, ears, legs). Some examples are saved as stroke-3
.npz files (vector input), one with a part removed, and two as PNG images (raster input, one half erased), so that
`sketchheal heal --example` shows every input path.

    python scripts/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sketchheal.utils.fileio import atomic_path
from sketchheal.sketch.strokes import polylines_to_stroke3, stroke3_to_polylines

OUT = Path(__file__).resolve().parents[1] / "src" / "sketchheal" / "assets" / "examples"


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def woolly_body(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, bumps: int) -> np.ndarray:
    """A closed outline of small outward bumps around an ellipse (one stroke)."""
    pts = []
    for k in range(bumps):
        a0, a1 = 2 * np.pi * k / bumps, 2 * np.pi * (k + 1) / bumps
        mid = (a0 + a1) / 2
        bx, by = cx + rx * np.cos(mid), cy + ry * np.sin(mid)
        r = 0.5 * np.hypot(rx * (np.cos(a1) - np.cos(a0)), ry * (np.sin(a1) - np.sin(a0)))
        r *= 1 + 0.15 * rng.standard_normal()
        pts.append(arc(bx, by, r, r, mid - np.pi / 2 - 0.3, mid + np.pi / 2 + 0.3, 7))
    return np.concatenate(pts + [pts[0][:1]], 0)


def sheep(seed: int, facing: int = 1) -> list[np.ndarray]:
    """Polylines of a sheep, about 200 units wide, y down. ``facing`` = 1 looks right, -1 left."""
    rng = np.random.default_rng(seed)
    j = lambda s=4.0: rng.normal(0, s)  # noqa: E731 - a tiny jitter helper
    body_rx, body_ry = 80 + j(6), 50 + j(4)
    lines = [woolly_body(rng, 100, 100, body_rx, body_ry, int(rng.integers(9, 13)))]
    hx, hy = 100 + facing * (body_rx + 12), 75 + j()
    lines.append(arc(hx, hy, 20 + j(2), 15 + j(2), 0, 2 * np.pi, 14))  # head
    lines.append(arc(hx - facing * 14, hy - 12, 10, 5, np.pi, 2 * np.pi, 5))  # ear
    lines.append(np.array([[hx + facing * 6, hy - 3], [hx + facing * 7, hy - 2]]))  # eye
    for k, lx in enumerate(np.linspace(100 - body_rx * 0.6, 100 + body_rx * 0.6, 4)):  # legs
        top = 100 + body_ry * 0.85
        lines.append(np.array([[lx + j(2), top], [lx + j(3), top + 38 + j(3)]]))
    tail_x = 100 - facing * (body_rx + 6)
    lines.append(arc(tail_x, 90, 8, 8, 0, 2 * np.pi, 8))  # tail
    return lines


def to_image(lines: list[np.ndarray], size: int = 512) -> np.ndarray:
    """Black ink on white, as a person would hand in a scan or a screenshot."""
    pts = np.concatenate(lines)
    lo, hi = pts.min(0), pts.max(0)
    scale = (size * 0.8) / (hi - lo).max()
    img = np.full((size, size), 255, np.uint8)
    for line in lines:
        p = ((line - lo) * scale + size * 0.1).round().astype(np.int32)
        cv2.polylines(img, [p], False, 0, thickness=6, lineType=cv2.LINE_AA)
    return img


def save_npz(path: Path, s3: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, strokes=s3.astype(np.int16))


def save_png(path: Path, img: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), img)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    save_npz(OUT / "sheep_right.npz", polylines_to_stroke3(sheep(1, facing=1)))
    save_npz(OUT / "sheep_left.npz", polylines_to_stroke3(sheep(2, facing=-1)))
    # a sheep whose legs and tail were never drawn: the model should add them
    save_npz(OUT / "sheep_no_legs.npz", polylines_to_stroke3(sheep(3)[:4]))
    save_png(OUT / "sheep_drawing.png", to_image(sheep(4)))
    # a drawing with its right half rubbed out
    img = to_image(sheep(5, facing=-1))
    img[:, img.shape[1] // 2:] = 255
    save_png(OUT / "sheep_half_erased.png", img)
    # round trip check: the vector examples read back as they were drawn
    back = stroke3_to_polylines(np.load(OUT / "sheep_right.npz")["strokes"].astype(np.float32))
    assert len(back) == len(sheep(1)), "example round trip lost strokes"
    print("\n".join(str(p) for p in sorted(OUT.iterdir())))


if __name__ == "__main__":
    main()
