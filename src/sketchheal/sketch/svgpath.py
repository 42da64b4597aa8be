"""SVG path data and transform attributes as geometry: ``d`` -> polylines (curves and arcs flattened),
``transform`` -> a 3x3 affine matrix. Used by :mod:`sketchheal.sketch.svg`."""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["parse_path", "parse_transform", "NUMBER"]

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"([MmLlHhVvCcSsQqTtAaZz])|({NUMBER})|([\s,]+)|(.)")
_TRANSFORM = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}


def parse_transform(text: str, name: str = "<svg text>") -> np.ndarray:
    """A ``transform`` attribute as a 3x3 affine matrix (the list composed left to right, as SVG does)."""
    m = np.eye(3)
    for kind, args in _TRANSFORM.findall(text):
        a = [float(v) for v in re.findall(NUMBER, args)]
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
