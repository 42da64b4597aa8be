"""Draw the example inputs shipped with the package (src/sketchheal/assets/examples/) with code.

Nothing here comes from a dataset: each sheep is built from circles, arcs and lines with a seeded random jitter,
as a person might draw one (a woolly body made of bumps, a head, ears, legs). Every example is incomplete in its
own way, and each comes in another input format, so that `sketchheal heal --example` shows completion doing its
job on every input path:

- ``sheep_no_legs.npz``: a sheep whose legs and tail were never drawn (stroke-3, vector);
- ``sheep_half_erased.png``: a drawing with its right half rubbed out (an image);
- ``sheep_gaps.ndjson``: a sheep with squares erased from its strokes (``sketchheal.sketch.erase``, as the
  healing benchmarks corrupt drawings), one QuickDraw-style line in 0..255 coordinates;
- ``not_a_sheep.svg``: a table, which the sheep model should say is unlike what it learned (an SVG).

The files are the same on every run (fixed seeds).

    python scripts/make_examples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from sketchheal.sketch.erase import erase
from sketchheal.sketch.strokes import polylines_to_stroke3, stroke3_to_polylines
from sketchheal.sketch.svg import polylines_to_svg
from sketchheal.sketch.writers import ndjson_line, quickdraw_strokes
from sketchheal.utils.fileio import atomic_path, atomic_write

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


def table() -> list[np.ndarray]:
    """Polylines of a table seen from the front, with a cup on it (not a sheep), about 300 units wide."""
    top = np.array([[0.0, 80.0], [300.0, 80.0]])
    legs = [np.array([[x0, 80.0], [x1, 200.0]]) for x0, x1 in ((20, 20), (280, 280), (45, 60), (255, 240))]
    cup = np.array([[120.0, 40.0], [125.0, 80.0], [155.0, 80.0], [160.0, 40.0], [120.0, 40.0]])
    return [top, *legs, cup]


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


def save_ndjson(path: Path, lines: list[np.ndarray], key: str) -> None:
    """One QuickDraw-style line: the strokes scaled to 0..255 (as QuickDraw's simplified files), 1 decimal."""
    pts = np.concatenate(lines)
    lo, extent = pts.min(0), float((pts.max(0) - pts.min(0)).max())
    scaled = [np.round((p - lo) * 255 / extent, 1) for p in lines]
    record = {"word": "sheep", "countrycode": "XX", "recognized": True, "key_id": key,
              "drawing": quickdraw_strokes(scaled)}
    with atomic_write(path, "w") as f:
        f.write(ndjson_line(record) + "\n")


def save_svg(path: Path, lines: list[np.ndarray]) -> None:
    with atomic_write(path, "w") as f:
        f.write(polylines_to_svg(lines, size=256))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    # a sheep whose legs and tail were never drawn: body, head, ear, eye
    save_npz(OUT / "sheep_no_legs.npz", polylines_to_stroke3(sheep(3)[:4]))
    # a drawing with its right half rubbed out
    img = to_image(sheep(5, facing=-1))
    img[:, img.shape[1] // 2:] = 255
    save_png(OUT / "sheep_half_erased.png", img)
    # a sheep with squares erased from its strokes (p = 0.35, squares of 15 % of its longer side)
    save_ndjson(OUT / "sheep_gaps.ndjson", erase(sheep(12), 0.35, seed=0, side_fraction=0.15).lines, "gaps-12")
    save_svg(OUT / "not_a_sheep.svg", table())
    # round trip check: the vector example reads back as it was drawn
    back = stroke3_to_polylines(np.load(OUT / "sheep_no_legs.npz")["strokes"].astype(np.float32))
    assert len(back) == 4, "example round trip lost strokes"
    assert len(json.loads((OUT / "sheep_gaps.ndjson").read_text())["drawing"]) > len(sheep(12))
    print("\n".join(str(p) for p in sorted(OUT.iterdir())))


if __name__ == "__main__":
    main()
