"""SVG in and out for vector sketches.

- :func:`strokes_to_svg` writes a stroke-3 sketch as an SVG document with one ``<path>`` per stroke, fitted into a
  square ``viewBox`` with a margin (the sketch's own scale does not matter, so normalised and unnormalised
  stroke-3 give the same picture).
- :func:`read_svg` / :func:`svg_to_polylines` read the lines of an SVG drawing: ``<path>`` (commands M L H V C S Q
  T A Z, absolute and relative, curves and arcs flattened), ``<polyline>``, ``<polygon>``, ``<line>``, and the
  shapes ``<rect>`` (a closed 4-point outline; rounded corners are drawn square), ``<circle>`` and ``<ellipse>``
  (closed outlines of ``4 * curve_segments`` points), with ``transform`` attributes (``matrix``, ``translate``,
  ``scale``, ``rotate``, ``skewX``, ``skewY``) on groups and elements composed as SVG does. Colours are ignored:
  every drawn outline counts as ink, except a shape that paints only paper (no stroke, a white or no fill, as
  the background rectangle :func:`polylines_to_svg` writes). Elements that draw something else (``<text>``, ``<image>``,
  ``<use>``, ``<foreignObject>``) are skipped and counted (:class:`SvgDrawing` ``skipped``; ``svg_to_polylines``
  warns with :class:`SkippedElementsWarning`), never dropped silently.

The document is walked without recursion (any nesting depth), and every coordinate must be finite and within
``MAX_COORDINATE`` after the transforms, else ``ValueError`` naming the file. The XML parser is Python's expat,
which resolves no external entities and limits entity expansion.

Coordinates follow SVG (and QuickDraw): x to the right, y downwards.
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchheal.sketch.strokes import stroke3_to_polylines
from sketchheal.sketch.svgpath import NUMBER, parse_path, parse_transform

__all__ = ["strokes_to_svg", "polylines_to_svg", "svg_to_polylines", "read_svg", "SvgDrawing",
           "SkippedElementsWarning", "fit_transform", "parse_path", "parse_transform", "MAX_COORDINATE"]


# ----------------------------------------------------------------------------------------------------- writing


def fit_transform(lines: list[np.ndarray], size: float, margin: float) -> tuple[float, np.ndarray]:
    """``(scale, offset (2,))`` that fit all points of ``lines`` (list of ``(k, 2)``, not all empty) centred into
    ``[margin, size - margin]^2`` keeping the aspect ratio: ``p -> p * scale + offset``."""
    pts = np.concatenate(lines, 0)
    lo, hi = pts.min(0), pts.max(0)
    extent = float((hi - lo).max())
    inner = size - 2 * margin
    scale = inner / extent if extent > 0 else 1.0
    offset = (size - (hi - lo) * scale) / 2 - lo * scale
    return scale, offset


def polylines_to_svg(lines: list[np.ndarray], *, size: int = 256, stroke_width: float | None = None,
                     margin: float | None = None, color: str = "black", background: str | None = "white") -> str:
    """An SVG document of ``lines`` (list of ``(k, 2)`` absolute points), one ``<path>`` per polyline.

    The drawing is scaled uniformly and centred into a ``size`` x ``size`` viewBox leaving ``margin`` (default
    5 % of ``size`` plus half the line width) on each side. ``stroke_width`` defaults to 1 % of ``size`` (at
    least 1), close to the ~2.4 % line of the training rendering at thumbnail sizes.
    """
    if stroke_width is None:
        stroke_width = max(1.0, size / 100)
    if margin is None:
        margin = 0.05 * size + stroke_width / 2
    lines = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in lines]
    lines = [p for p in lines if len(p)]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
    ]
    if background:
        out.append(f'<rect width="100%" height="100%" fill="{background}"/>')
    out.append(f'<g fill="none" stroke="{color}" stroke-width="{_num(stroke_width)}" stroke-linecap="round" '
               'stroke-linejoin="round">')
    if lines:
        scale, offset = fit_transform(lines, size, margin)
        for p in lines:
            q = p * scale + offset
            d = "M" + " L".join(f"{_num(x)} {_num(y)}" for x, y in q)
            if len(q) == 1:
                d += " l0 0"  # a dot: a zero-length segment drawn with round caps
            out.append(f'<path d="{d}"/>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def strokes_to_svg(s3: np.ndarray, *, size: int = 256, stroke_width: float | None = None,
                   margin: float | None = None, color: str = "black", background: str | None = "white") -> str:
    """An SVG document of a stroke-3 sketch ``(n, 3)``: one ``<path>`` per stroke, fitted into the viewBox.

    See :func:`polylines_to_svg` for the layout; an empty sketch gives an empty (blank) drawing.
    """
    s3 = np.asarray(s3)
    lines = stroke3_to_polylines(s3) if len(s3) else []
    return polylines_to_svg(lines, size=size, stroke_width=stroke_width, margin=margin,
                            color=color, background=background)


def _num(v: float) -> str:
    """A compact decimal (2 places, no trailing zeros)."""
    s = f"{float(v):.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


# ----------------------------------------------------------------------------------------------------- reading

# Containers and resources that draw nothing themselves.
_SKIP_TAGS = {"defs", "clipPath", "mask", "symbol", "marker", "pattern", "title", "desc", "metadata", "style",
              "script", "linearGradient", "radialGradient", "filter"}
# Elements that draw something other than lines: skipped, and counted.
_UNREAD_TAGS = {"text", "image", "use", "foreignObject"}
# Coordinates (after the transforms) beyond this are refused (a drawing has no use for them; 1e308 overflows).
MAX_COORDINATE = 1e9


class SkippedElementsWarning(UserWarning):
    """An SVG drawing had elements that sketchheal does not read as strokes (text, images, ...)."""


@dataclass
class SvgDrawing:
    """What :func:`read_svg` found: ``lines`` (``(k, 2)`` float64 polylines in document order) and ``skipped``
    (``{tag: count}`` of drawing elements that are not read as strokes)."""

    lines: list[np.ndarray]
    skipped: dict[str, int] = field(default_factory=dict)
    name: str = "<svg text>"

    def skipped_text(self) -> str:
        """``"2 <text>, 1 <image>"``, or ``""``."""
        return ", ".join(f"{n} <{tag}>" for tag, n in self.skipped.items())


def read_svg(source: str | os.PathLike, *, curve_segments: int = 16) -> SvgDrawing:
    """The polylines of an SVG drawing, in the document's user coordinates after all transforms, and what was
    skipped.

    ``source`` is a path to an ``.svg`` file or the SVG text itself. Bezier curves and arcs become
    ``curve_segments`` straight segments each. Raises ``ValueError`` (naming the file) when the text is not SVG,
    a path's data cannot be parsed, or a coordinate is not finite or beyond ``MAX_COORDINATE``.
    """
    text, name = _read_source(source)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"{name}: not a readable SVG/XML document ({e})") from None
    if _local(root.tag) != "svg":
        raise ValueError(f"{name}: the root element is <{_local(root.tag)}>, not <svg>")
    drawing = SvgDrawing([], {}, name)
    _walk(root, drawing, name, curve_segments)
    return drawing


def svg_to_polylines(source: str | os.PathLike, *, curve_segments: int = 16) -> list[np.ndarray]:
    """The polylines of :func:`read_svg` (``list[(k, 2) float64]``, k >= 1). Skipped drawing elements are reported
    with a :class:`SkippedElementsWarning` naming the file and what was skipped."""
    drawing = read_svg(source, curve_segments=curve_segments)
    if drawing.skipped:
        warnings.warn(f"{drawing.name}: skipped {drawing.skipped_text()} (sketchheal reads lines and shapes only)",
                      SkippedElementsWarning, stacklevel=2)
    return drawing.lines


def _read_source(source: str | os.PathLike) -> tuple[str, str]:
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "<" not in source):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such SVG file")
        try:
            return path.read_text(encoding="utf-8", errors="replace"), str(path)
        except OSError as e:
            raise ValueError(f"{path}: cannot read ({e})") from None
    return str(source), "<svg text>"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _hidden(el: ET.Element) -> bool:
    return el.get("display") == "none" or "display:none" in (el.get("style") or "").replace(" ", "")


_PAPER = {"none", "white", "#fff", "#ffffff", "rgb(255,255,255)", "transparent"}


def _paint(el: ET.Element, inherited: tuple[str, str]) -> tuple[str, str]:
    """``(stroke, fill)`` of ``el``: its attributes or ``style`` over the inherited ones (SVG's defaults: no stroke,
    black fill)."""
    stroke, fill = el.get("stroke", inherited[0]), el.get("fill", inherited[1])
    for item in (el.get("style") or "").split(";"):
        key, _, value = item.partition(":")
        if key.strip() == "stroke":
            stroke = value.strip()
        elif key.strip() == "fill":
            fill = value.strip()
    return stroke, fill


def _paper_only(paint: tuple[str, str]) -> bool:
    """A shape with no stroke and a white (or no) fill paints nothing but paper (e.g. a background rectangle)."""
    return all(v.replace(" ", "").lower() in _PAPER for v in paint)


def _walk(root: ET.Element, drawing: SvgDrawing, name: str, segs: int) -> None:
    """Depth-first over the document with an explicit stack (children in document order)."""
    stack: list[tuple[ET.Element, np.ndarray, tuple[str, str]]] = [(root, np.eye(3), ("none", "black"))]
    while stack:
        el, ctm, paint = stack.pop()
        paint = _paint(el, paint)
        tag = _local(el.tag)
        if tag in _SKIP_TAGS or _hidden(el):
            continue
        if tag in _UNREAD_TAGS:
            drawing.skipped[tag] = drawing.skipped.get(tag, 0) + 1
            continue
        if el.get("transform"):
            with np.errstate(over="ignore", invalid="ignore"):
                ctm = ctm @ parse_transform(el.get("transform"), name)
        shape = tag in ("rect", "circle", "ellipse")
        for p in [] if shape and _paper_only(paint) else _element_lines(el, tag, name, segs):
            with np.errstate(over="ignore", invalid="ignore"):
                q = p @ ctm[:2, :2].T + ctm[:2, 2]
            if not (np.isfinite(q).all() and np.abs(q).max() <= MAX_COORDINATE):
                worst = f"{np.abs(q).max():.3g}" if np.isfinite(q).all() else "not finite"
                raise ValueError(f"{name}: a <{tag}> has coordinates out of range ({worst} after the transforms); "
                                 f"sketchheal reads finite coordinates up to {MAX_COORDINATE:.0e}")
            drawing.lines.append(q)
        stack.extend((child, ctm, paint) for child in reversed(list(el)))


def _numbers(text: str | None) -> list[float]:
    return [float(v) for v in re.findall(NUMBER, text or "")]


def _element_lines(el: ET.Element, tag: str, name: str, segs: int) -> list[np.ndarray]:
    """The outlines one element draws in its own coordinates."""
    if tag == "path":
        return parse_path(el.get("d") or "", curve_segments=segs, name=name)
    if tag in ("polyline", "polygon"):
        vals = _numbers(el.get("points"))
        pts = np.asarray(vals[: len(vals) // 2 * 2], dtype=np.float64).reshape(-1, 2)
        if not len(pts):
            return []
        if tag == "polygon" and len(pts) > 1:
            pts = np.concatenate([pts, pts[:1]], 0)
        return [pts]
    if tag == "line":
        return [np.array([[_length(el, "x1"), _length(el, "y1")], [_length(el, "x2"), _length(el, "y2")]])]
    if tag == "rect":
        x, y, w, h = (_length(el, a) for a in ("x", "y", "width", "height"))
        if not (w > 0 and h > 0):  # SVG draws nothing for a zero or negative size
            return []
        return [np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]], np.float64)]
    if tag in ("circle", "ellipse"):
        cx, cy = _length(el, "cx"), _length(el, "cy")
        if tag == "circle":
            rx = ry = _length(el, "r")
        else:
            rx, ry = _length(el, "rx"), _length(el, "ry")
        if not (rx > 0 and ry > 0):
            return []
        t = np.linspace(0.0, 2 * np.pi, 4 * segs + 1)
        pts = np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)
        pts[-1] = pts[0]
        return [pts]
    return []


def _length(el: ET.Element, attr: str) -> float:
    m = re.match(NUMBER, (el.get(attr) or "0").strip())
    return float(m.group(0)) if m else 0.0
