"""A healed drawing written in the input's own frame (issue 17): SVG with two groups, a picture with the added
strokes in a colour, stroke-3 from the input's first point, and QuickDraw-style ndjson records.

A healed drawing is two lists of absolute polylines ``(k, 2)`` in the input's coordinates (x to the right, y down,
as in QuickDraw, SVG and images): the input's strokes and the strokes healing added. Every writer keeps the input's
numbers exactly (an integral value is written as an integer, any other as the shortest decimal that reads back as
the same float64) and rounds the added strokes' numbers to a 10^-4 share of the drawing's longer side (2 decimals for
QuickDraw's 0..255), except where an added point is one of the input's own points, which is written exactly.

- :func:`healed_svg`: ``viewBox`` in the input's coordinates (the box of all strokes plus a 5 % margin), no
  transform, ``<g id="input">`` (black) then ``<g id="added">`` (:data:`ADDED_COLOUR`), one ``<path>`` a stroke.
- :func:`healed_picture`: ``(size, size, 3) uint8`` BGR, the input's strokes black, the added ones in colour.
- :func:`healed_stroke3`: stroke-3 rows whose pen starts at the input's first point (``start``): the input's
  strokes first (a stroke-3 input's own rows, bit for bit), then the added strokes.
- :func:`ndjson_record`: the input's JSON object with every field kept and ``drawing`` = the input's strokes as
  given, then the added strokes ``[[x...], [y...]]``; :func:`ndjson_line` writes it as one compact line.
- :func:`place_on_box`: a redrawn sketch placed on the input's bounding box (redraw's strokes in the input's frame).
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

from sketchheal.sketch.strokes import polylines_to_stroke3
from sketchheal.sketch.svg import fit_transform
from sketchheal.sketch.viz import PREVIEW_SIZE, draw_lines

__all__ = ["ADDED_COLOUR", "ADDED_BGR", "clean_lines", "exact_number", "added_decimals", "quickdraw_strokes",
           "healed_svg", "healed_picture", "healed_stroke3", "ndjson_record", "ndjson_line", "place_on_box"]

ADDED_COLOUR = "#e4572e"  # the added strokes (SVG); the input's strokes are black
ADDED_BGR = (46, 87, 228)  # the same colour for OpenCV pictures (blue, green, red)
_SHARE = 1e-4  # added strokes are rounded to this share of the drawing's longer side


def clean_lines(lines: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    """``lines`` as ``(k, 2) float64`` arrays, empty ones left out."""
    out = [np.asarray(p, np.float64).reshape(-1, 2) for p in (lines or [])]
    return [p for p in out if len(p)]


def exact_number(v: float) -> int | float:
    """``v`` as a Python number that JSON writes exactly: an int when it is integral, else the float itself."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _text(v: int | float) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def added_decimals(lines: Sequence[np.ndarray]) -> int:
    """Decimals that round to at most a ``10^-4`` share of the longer side of ``lines``' box (at least 0)."""
    lines = clean_lines(lines)
    if not lines:
        return 4
    pts = np.concatenate(lines, 0)
    extent = float((pts.max(0) - pts.min(0)).max())
    return max(0, math.ceil(-math.log10(extent * _SHARE))) if extent > 0 else 4


def _numbers(line: np.ndarray, decimals: int | None, exact: set[tuple[float, float]]) -> list[list[int | float]]:
    """``(k, 2)`` -> ``[[x...], [y...]]``: exact (``decimals`` None, or a point of ``exact``), else rounded."""
    xs, ys = [], []
    for x, y in line.tolist():
        if decimals is not None and (x, y) not in exact:
            x, y = round(x, decimals), round(y, decimals)
        xs.append(exact_number(x))
        ys.append(exact_number(y))
    return [xs, ys]


def quickdraw_strokes(lines: Sequence[np.ndarray], decimals: int | None = None,
                      exact: Sequence[np.ndarray] = ()) -> list[list[list[int | float]]]:
    """Polylines -> QuickDraw strokes ``[[x...], [y...]]``: exact numbers, or rounded to ``decimals`` except the
    points that are points of the polylines ``exact`` (the input's strokes)."""
    keep = {tuple(p) for line in clean_lines(exact) for p in line.tolist()}
    return [_numbers(line, decimals, keep) for line in clean_lines(lines)]


def place_on_box(lines: list[np.ndarray], onto: list[np.ndarray]) -> list[np.ndarray]:
    """``lines`` scaled and moved so that their bounding box has the top-left corner and the longer side of the
    box of ``onto`` (the published rendering places both so in the model's image)."""
    lines = clean_lines(lines)
    if not lines or not onto:
        return lines
    a, b = np.concatenate(lines, 0), np.concatenate(onto, 0)
    ext_a, ext_b = float(np.ptp(a, 0).max()), float(np.ptp(b, 0).max())
    s = ext_b / ext_a if ext_a > 0 else 1.0
    return [(p - a.min(0)) * s + b.min(0) for p in lines]


# ================================================================================================== SVG


def _path(stroke: list[list[int | float]]) -> str:
    xs, ys = stroke
    d = "M" + " L".join(f"{_text(x)} {_text(y)}" for x, y in zip(xs, ys))
    return f'<path d="{d}{" l0 0" if len(xs) == 1 else ""}"/>'  # a dot: a zero-length segment, round caps


def healed_svg(input_lines: Sequence[np.ndarray], added_lines: Sequence[np.ndarray], *, size: int = PREVIEW_SIZE,
               stroke_width: float | None = None, colour: str = ADDED_COLOUR,
               background: str | None = "white") -> str:
    """An SVG document of a healed drawing in the input's coordinates (see the module docstring).

    ``stroke_width`` is in the input's units (default 1 % of the drawing's longer side); the document's width and
    height make the longer side of the view ``size`` px.
    """
    inputs, added = clean_lines(input_lines), clean_lines(added_lines)
    lines = inputs + added
    if lines:
        pts = np.concatenate(lines, 0)
        lo, hi = pts.min(0), pts.max(0)
    else:
        lo = hi = np.zeros(2)
    extent = float((hi - lo).max()) or 1.0
    sw = float(stroke_width) if stroke_width is not None else extent / 100
    margin = 0.05 * extent + sw / 2
    x0, y0 = lo - margin
    w, h = hi - lo + 2 * margin
    px = size / max(w, h)
    box = " ".join(_text(exact_number(v)) for v in (x0, y0, w, h))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * px:.6g}" height="{h * px:.6g}" viewBox="{box}">']
    if background:
        out.append(f'<rect x="{_text(exact_number(x0))}" y="{_text(exact_number(y0))}" width="{_text(exact_number(w))}"'
                   f' height="{_text(exact_number(h))}" fill="{background}"/>')
    style = f'fill="none" stroke-width="{sw:.6g}" stroke-linecap="round" stroke-linejoin="round"'
    for name, colour_, strokes in (("input", "black", quickdraw_strokes(inputs)),
                                   ("added", colour, quickdraw_strokes(added, added_decimals(lines), inputs))):
        out.append(f'<g id="{name}" stroke="{colour_}" {style}>')
        out.extend(_path(s) for s in strokes)
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ============================================================================================== picture


def healed_picture(input_lines: Sequence[np.ndarray], added_lines: Sequence[np.ndarray], size: int = PREVIEW_SIZE,
                   line_width: int | None = None, colour: tuple[int, int, int] = ADDED_BGR) -> np.ndarray:
    """``(size, size, 3) uint8`` BGR: the healed drawing fitted and centred as :func:`sketchheal.sketch.svg.
    strokes_to_svg` lays a sketch out, the input's strokes black, the added strokes in ``colour``."""
    img = np.full((size, size, 3), 255, np.uint8)
    inputs, added = clean_lines(input_lines), clean_lines(added_lines)
    if not inputs + added:
        return img
    lw = line_width or max(1, int(round(size / 100)))
    scale, offset = fit_transform(inputs + added, size, 0.05 * size + lw / 2)
    draw_lines(img, inputs, scale, offset, lw, (0, 0, 0))
    draw_lines(img, added, scale, offset, lw, tuple(int(c) for c in colour))
    return img


# ============================================================================================== stroke-3


def healed_stroke3(input_lines: Sequence[np.ndarray], added_lines: Sequence[np.ndarray],
                   input_s3: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The healed drawing as stroke-3: ``(rows (n, 3) float32, start (2,) float64, input_rows)``.

    The pen starts at ``start``, the first point of the input's strokes (of the added strokes when the input has
    none), so point ``i`` of the drawing is ``start + rows[:i].sum(0)[:2]`` (the convention of
    :func:`sketchheal.sketch.strokes.stroke3_to_polylines` with ``start``). The first ``input_rows`` rows draw
    the input's strokes, the rest the added ones. ``input_s3``: the stroke-3 sketch that ``input_lines`` came from
    (its polylines from ``p_0 = (0, 0)``); its rows are then kept bit for bit (the last one lifting the pen).
    """
    inputs, added = clean_lines(input_lines), clean_lines(added_lines)
    if not inputs + added:
        return np.zeros((0, 3), np.float32), np.zeros(2), 0
    rows = polylines_to_stroke3(inputs + added)
    n_in = len(polylines_to_stroke3(inputs)) if inputs else 0
    if input_s3 is not None and inputs:
        given = np.asarray(input_s3, np.float32)
        if len(given) != n_in:
            raise ValueError(f"input_s3 has {len(given)} rows, its strokes make {n_in}")
        rows[:n_in] = given
        rows[n_in - 1, 2] = 1.0
    return rows, inputs[0][0].copy() if inputs else added[0][0].copy(), n_in


# ================================================================================================ ndjson


def ndjson_record(input_lines: Sequence[np.ndarray], added_lines: Sequence[np.ndarray], *,
                  record: dict[str, Any] | None = None, drawing: list | None = None,
                  fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A QuickDraw-style record of the healed drawing: ``record`` (the input's JSON object: every field kept, in
    its order) or ``fields``, with ``drawing`` = the input's strokes (``drawing``, the input's own JSON strokes
    as given, else ``input_lines`` written exactly), then the added strokes."""
    out = dict(record) if record is not None else dict(fields or {})
    inputs = clean_lines(input_lines)
    strokes = list(drawing) if drawing is not None else quickdraw_strokes(inputs)
    out["drawing"] = strokes + quickdraw_strokes(added_lines, added_decimals(inputs + clean_lines(added_lines)),
                                                 inputs)
    return out


def ndjson_line(record: dict[str, Any]) -> str:
    """One compact JSON line (QuickDraw's own separators, non-ASCII kept), without the newline."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
