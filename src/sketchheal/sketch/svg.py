"""SVG in and out for vector sketches.

- :func:`strokes_to_svg` writes a stroke-3 sketch as an SVG document with one ``<path>`` per stroke, fitted into a
  square ``viewBox`` with a margin (the sketch's own scale does not matter, so normalised and unnormalised
  stroke-3 give the same picture).
- :func:`svg_to_polylines` reads the lines of an SVG drawing: ``<path>`` (commands M L H V C S Q T A Z, absolute
  and relative, curves and arcs flattened), ``<polyline>``, ``<polygon>``, ``<line>``, with ``transform``
  attributes (``matrix``, ``translate``, ``scale``, ``rotate``, ``skewX``, ``skewY``) on groups and elements
  composed as SVG does. Fills, colours, ``<use>``, text and clipping are ignored: every drawn line counts as ink.

Coordinates follow SVG (and QuickDraw): x to the right, y downwards.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from sketchheal.sketch.strokes import stroke3_to_polylines

__all__ = ["strokes_to_svg", "polylines_to_svg", "svg_to_polylines", "fit_transform", "parse_path", "parse_transform"]


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

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"([MmLlHhVvCcSsQqTtAaZz])|({_NUMBER})|([\s,]+)|(.)")
_TRANSFORM = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")
_SKIP_TAGS = {"defs", "clipPath", "mask", "symbol", "marker", "pattern", "title", "desc", "metadata", "style",
              "text", "script", "linearGradient", "radialGradient", "filter"}
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}


def svg_to_polylines(source: str | os.PathLike, *, curve_segments: int = 16) -> list[np.ndarray]:
    """The polylines of an SVG drawing, in the document's user coordinates after all transforms.

    ``source`` is a path to an ``.svg`` file or the SVG text itself. Returns a list of ``(k, 2)`` float64
    arrays (k >= 1), one per subpath / polyline / line, in document order. Bezier curves and arcs become
    ``curve_segments`` straight segments each. Raises ``ValueError`` (naming the file) when the text is not SVG
    or a path's data cannot be parsed.
    """
    text, name = _read_source(source)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"{name}: not a readable SVG/XML document ({e})") from None
    if _local(root.tag) != "svg":
        raise ValueError(f"{name}: the root element is <{_local(root.tag)}>, not <svg>")
    lines: list[np.ndarray] = []
    _walk(root, np.eye(3), lines, name, curve_segments)
    return lines


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


def _walk(el: ET.Element, ctm: np.ndarray, out: list[np.ndarray], name: str, segs: int) -> None:
    tag = _local(el.tag)
    if tag in _SKIP_TAGS or el.get("display") == "none" or "display:none" in (el.get("style") or "").replace(" ", ""):
        return
    if el.get("transform"):
        ctm = ctm @ parse_transform(el.get("transform"), name)
    local: list[np.ndarray] = []
    if tag == "path":
        local = parse_path(el.get("d") or "", curve_segments=segs, name=name)
    elif tag in ("polyline", "polygon"):
        vals = [float(v) for v in re.findall(_NUMBER, el.get("points") or "")]
        pts = np.asarray(vals[: len(vals) // 2 * 2], dtype=np.float64).reshape(-1, 2)
        if len(pts):
            if tag == "polygon" and len(pts) > 1:
                pts = np.concatenate([pts, pts[:1]], 0)
            local = [pts]
    elif tag == "line":
        pts = np.array([[_length(el, "x1"), _length(el, "y1")], [_length(el, "x2"), _length(el, "y2")]])
        local = [pts]
    for p in local:
        out.append(p @ ctm[:2, :2].T + ctm[:2, 2])
    for child in el:
        _walk(child, ctm, out, name, segs)


def _length(el: ET.Element, attr: str) -> float:
    m = re.match(_NUMBER, (el.get(attr) or "0").strip())
    return float(m.group(0)) if m else 0.0


def parse_transform(text: str, name: str = "<svg text>") -> np.ndarray:
    """A ``transform`` attribute as a 3x3 affine matrix (the list composed left to right, as SVG does)."""
    m = np.eye(3)
    for kind, args in _TRANSFORM.findall(text):
        a = [float(v) for v in re.findall(_NUMBER, args)]
        t = np.eye(3)
        try:
            if kind == "matrix":
                t[0, :] = [a[0], a[2], a[4]]
                t[1, :] = [a[1], a[3], a[5]]
            elif kind == "translate":
                t[0, 2], t[1, 2] = a[0], (a[1] if len(a) > 1 else 0.0)
            elif kind == "scale":
                t[0, 0], t[1, 1] = a[0], (a[1] if len(a) > 1 else a[0])
            elif kind == "rotate":
                r = math.radians(a[0])
                c, s = math.cos(r), math.sin(r)
                rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
                if len(a) >= 3:
                    cx, cy = a[1], a[2]
                    t = _translate(cx, cy) @ rot @ _translate(-cx, -cy)
                else:
                    t = rot
            elif kind == "skewX":
                t[0, 1] = math.tan(math.radians(a[0]))
            elif kind == "skewY":
                t[1, 0] = math.tan(math.radians(a[0]))
        except IndexError:
            raise ValueError(f"{name}: transform {kind}({args}) has too few numbers") from None
        m = m @ t
    return m


def _translate(x: float, y: float) -> np.ndarray:
    t = np.eye(3)
    t[0, 2], t[1, 2] = x, y
    return t


def _tokens(d: str, name: str) -> list[str | float]:
    out: list[str | float] = []
    for cmd, num, _sep, bad in _TOKEN.findall(d):
        if bad:
            raise ValueError(f"{name}: unexpected character {bad!r} in path data {d[:60]!r}")
        if cmd:
            out.append(cmd)
        elif num:
            out.append(num)  # kept as text: arc flags may be glued ("0 01 1")
    return out


def parse_path(d: str, *, curve_segments: int = 16, name: str = "<svg text>") -> list[np.ndarray]:
    """The subpaths of an SVG path's ``d`` attribute as polylines ``(k, 2)`` (curves flattened)."""
    toks = _tokens(d, name)
    lines: list[np.ndarray] = []
    cur: list[tuple[float, float]] = []
    pos = np.zeros(2)
    start = np.zeros(2)
    last_ctrl: np.ndarray | None = None  # for S/T reflection
    last_cmd = ""
    i = 0
    cmd = ""
    ts = np.linspace(0.0, 1.0, curve_segments + 1)[1:]

    def flush() -> None:
        if cur:
            lines.append(np.asarray(cur, dtype=np.float64))
        cur.clear()

    while i < len(toks):
        tok = toks[i]
        if isinstance(tok, str) and tok.isalpha():
            cmd = tok
            i += 1
            if cmd in "Zz":
                if cur:
                    cur.append((start[0], start[1]))
                flush()
                pos = start.copy()
                last_cmd, last_ctrl = "Z", None
                continue
        elif not cmd or cmd in "Zz":
            raise ValueError(f"{name}: numbers without a command in path data {d[:60]!r}")
        upper = cmd.upper()
        rel = cmd.islower()
        n = _ARGS[upper]
        args, i = _take(toks, i, n, upper == "A", name, d)
        base = pos if rel else np.zeros(2)
        if upper == "M":
            flush()
            pos = base + args
            start = pos.copy()
            cur.append(tuple(pos))
            cmd = "l" if rel else "L"  # further pairs are implicit line-tos
            last_ctrl = None
        elif upper in ("L", "H", "V"):
            if not cur:
                cur.append(tuple(pos))
            if upper == "L":
                pos = base + args
            elif upper == "H":
                pos = np.array([(pos[0] if rel else 0.0) + args[0], pos[1]])
            else:
                pos = np.array([pos[0], (pos[1] if rel else 0.0) + args[0]])
            cur.append(tuple(pos))
            last_ctrl = None
        elif upper in ("C", "S", "Q", "T"):
            if not cur:
                cur.append(tuple(pos))
            if upper == "C":
                c1, c2, end = base + args[0:2], base + args[2:4], base + args[4:6]
            elif upper == "S":
                c1 = 2 * pos - last_ctrl if last_cmd in "CS" and last_ctrl is not None else pos.copy()
                c2, end = base + args[0:2], base + args[2:4]
            elif upper == "Q":
                q, end = base + args[0:2], base + args[2:4]
            else:  # T
                q = 2 * pos - last_ctrl if last_cmd in "QT" and last_ctrl is not None else pos.copy()
                end = base + args[0:2]
            if upper in ("C", "S"):
                u = 1 - ts[:, None]
                pts = u**3 * pos + 3 * u**2 * ts[:, None] * c1 + 3 * u * ts[:, None] ** 2 * c2 + ts[:, None] ** 3 * end
                last_ctrl = c2
            else:
                u = 1 - ts[:, None]
                pts = u**2 * pos + 2 * u * ts[:, None] * q + ts[:, None] ** 2 * end
                last_ctrl = q
            cur.extend(map(tuple, pts))
            pos = end
        elif upper == "A":
            if not cur:
                cur.append(tuple(pos))
            end = base + args[5:7]
            pts = _arc(pos, end, args[0], args[1], args[2], args[3] != 0, args[4] != 0, curve_segments)
            cur.extend(map(tuple, pts))
            pos = end
            last_ctrl = None
        last_cmd = upper
    flush()
    return lines


def _take(toks: list, i: int, n: int, arc: bool, name: str, d: str) -> tuple[np.ndarray, int]:
    """Read the ``n`` numeric arguments of one command starting at token ``i``."""
    vals: list[float] = []
    while len(vals) < n:
        if i >= len(toks) or (isinstance(toks[i], str) and toks[i].isalpha()):
            raise ValueError(f"{name}: a path command is missing numbers in {d[:60]!r}")
        tok = toks[i]
        if arc and len(vals) in (3, 4) and len(tok) > 1 and tok[0] in "01" and not _is_plain_flag(tok):
            # flags may be glued to what follows: "01 5" or "1.5" after a flag means "1", ".5"
            vals.append(float(tok[0]))
            toks[i] = tok[1:]
            continue
        vals.append(float(tok))
        i += 1
    return np.asarray(vals, dtype=np.float64), i


def _is_plain_flag(tok: str) -> bool:
    return tok in ("0", "1")


def _arc(p0: np.ndarray, p1: np.ndarray, rx: float, ry: float, phi_deg: float, large: bool, sweep: bool,
         segments: int) -> np.ndarray:
    """Points (excluding ``p0``) on an SVG elliptical arc, endpoint parameterisation (SVG 1.1, F.6)."""
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0 or np.allclose(p0, p1):
        return p1[None, :].copy()
    phi = math.radians(phi_deg)
    c, s = math.cos(phi), math.sin(phi)
    dx, dy = (p0 - p1) / 2
    x1p, y1p = c * dx + s * dy, -s * dx + c * dy
    lam = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx**2 * ry**2 - rx**2 * y1p**2 - ry**2 * x1p**2
    den = rx**2 * y1p**2 + ry**2 * x1p**2
    coef = math.sqrt(max(0.0, num / den)) if den > 0 else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = c * cxp - s * cyp + (p0[0] + p1[0]) / 2
    cy = s * cxp + c * cyp + (p0[1] + p1[1]) / 2

    def angle(ux: float, uy: float, vx: float, vy: float) -> float:
        return math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)

    t1 = angle(1, 0, (x1p - cxp) / rx, (y1p - cyp) / ry)
    dt = angle((x1p - cxp) / rx, (y1p - cyp) / ry, (-x1p - cxp) / rx, (-y1p - cyp) / ry)
    if not sweep and dt > 0:
        dt -= 2 * math.pi
    elif sweep and dt < 0:
        dt += 2 * math.pi
    th = t1 + dt * np.linspace(0, 1, segments + 1)[1:]
    x = cx + rx * np.cos(th) * c - ry * np.sin(th) * s
    y = cy + rx * np.cos(th) * s + ry * np.sin(th) * c
    pts = np.stack([x, y], 1)
    pts[-1] = p1
    return pts
