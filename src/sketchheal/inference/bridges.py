"""Bridges: curves that join two loose ends of a drawing across a gap, and how likely each is right (issue 17).

A **loose end** is the first or last point of an input stroke, with its outward unit tangent (from the stroke's
points within ~4 px of the end). For every pair of loose ends at most ``max_gap`` apart three curves are tried: a
straight line, a cubic Hermite curve that leaves each end along its own direction, and the corner where the two
tangent rays meet (:func:`bridge_curves`). Each (pair, curve) gets the features of :data:`FEATURES`: its geometry
(length, how the ends point at each other, how much it bends), the model's reconstruction along it (ink
probability ``(recons + 1) / 2``: mean, low and high percentiles, and whether the reconstruction carries on past
each end), how much of it runs over the input's own ink, and the drawing order (a stroke cut in two by an erasure
goes on in the next stroke).

A :class:`BridgeScorer` (a small MLP, JSON weights fitted by ``scripts/fit_bridges.py`` on erased drawings whose
originals are known: a curve is right when nearly all of it lies within 2 px of the original's ink) turns the
features into the probability that the curve is right; :func:`choose` accepts bridges greedily, most probable
first, each end once. Without a scorer the hand-set rule of :class:`~sketchheal.inference.complete.CompletionParams`
(mean and 10th-percentile ink thresholds) decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

__all__ = ["FEATURES", "Candidates", "BridgeScorer", "load_scorer", "sample", "loose_ends", "bridge_curves",
           "candidates", "choose", "SCORER_FILE"]

SCORER_FILE = "bridges.json"  # a scorer sits beside the model whose reconstruction it was fitted on
FEATURES = (
    "length",  # length with its joins / 48 px (capped at 3)
    "p_mean", "p_low", "p_min", "p_high",  # reconstruction ink along the traced line
    "joined",  # ends joined to the input (0, 1/2, 1)
    "to_ends",  # ends joined to the input's loose ends (0, 1/2, 1)
    "d_mean", "d_min",  # distance from the input's ink / 10 px
    "straight",  # chord / length
    "inked",  # share of the line where the ink probability is above 1/2
    "points",  # traced points / 48
)

FEATURES = (
    "dist",  # straight distance between the ends / 48 px
    "cos_a", "cos_b",  # how each end points at the other (1: straight at it)
    "tangents",  # agreement of the two ends' directions (1: one line continued)
    "has_tan",  # both ends have a direction (not one-point strokes)
    "p_mean", "p_low", "p_high", "p_min",  # reconstruction ink along the curve's inner part
    "ahead_a", "ahead_b",  # reconstruction ink 3 px past each end, along its direction
    "dup",  # share of the inner part over the input's own ink
    "straight", "hermite", "corner",  # which curve
    "stretch",  # curve length / straight distance
    "consecutive",  # last point of stroke i and first point of stroke i + 1 (drawing order known)
    "same_stroke",  # the two ends of one stroke
    "rank_a", "rank_b",  # how many other ends are nearer to a (to b) than this partner, / 4, capped at 1
)


@dataclass
class Candidates:
    """Bridge candidates of one drawing: ``ends`` (e,) input point indices of the loose ends; pairs ``a, b (P,)``
    (indices into ``ends``), ``dist (P,)`` px; ``curves (P, 3, n, 2)`` px from end a to end b; ``valid (P, 3)``;
    ``inner (P, 3, n)`` the samples away from the two ends; ``features (P, 3, F)`` in the order of FEATURES."""

    ends: np.ndarray
    a: np.ndarray
    b: np.ndarray
    dist: np.ndarray
    curves: np.ndarray
    valid: np.ndarray
    inner: np.ndarray
    features: np.ndarray


def sample(prob: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``prob (N, N) float32`` at ``pts (..., 2)`` pixel (x, y) (0 outside)."""
    shape = pts.shape[:-1]
    flat = pts.reshape(-1, 2).astype(np.float32)
    m, w = len(flat), 4096  # remap maps are 2-D and under 32767 wide
    rows = max(1, -(-m // w))
    grid = np.full((rows * w, 2), -10.0, np.float32)
    grid[:m] = flat
    grid = grid.reshape(rows, w, 2)
    out = cv2.remap(np.ascontiguousarray(prob, np.float32), grid[..., 0], grid[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return out.reshape(-1)[:m].reshape(shape)


def loose_ends(px: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loose ends of strokes given as points ``px (n, 2)`` with stroke starts ``starts``: point indices ``(e,)``,
    outward unit tangents ``(e, 2)`` (zero for a one-point stroke), stroke index ``(e,)``, and ``(e,) bool`` True
    for a stroke's first point."""
    bounds = list(starts) + [len(px)]
    idx, tan, stroke, first = [], [], [], []
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        for end, step in ((a, 1), (b - 1, -1)):
            q = px[end]
            t = np.zeros(2)
            j = end + step
            while a <= j < b:
                v = q - px[j]
                n = float(np.hypot(*v))
                if n >= 4.0 or j in (a, b - 1):
                    t = v / n if n > 1e-9 else t
                    break
                j += step
            idx.append(end)
            tan.append(t)
            stroke.append(s)
            first.append(step == 1)
            if b - a == 1:
                break
    return (np.asarray(idx, np.int64), np.asarray(tan, np.float64).reshape(-1, 2), np.asarray(stroke, np.int64),
            np.asarray(first, bool))


def bridge_curves(e: np.ndarray, te: np.ndarray, f: np.ndarray, tf: np.ndarray, n: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate curves for pairs of ends ``e, f (P, 2)`` with outward unit tangents ``te, tf (P, 2)``:
    ``(P, 3, n, 2)`` samples of a straight line, a cubic Hermite curve leaving ``e`` along ``te`` and arriving
    at ``f`` against ``tf``, and the corner where the two tangent rays meet; and ``(P, 3)`` which are valid
    (the Hermite curve needs both tangents, the corner rays that meet ahead of both ends)."""
    t = np.linspace(0.0, 1.0, n)[None, :, None]  # (1, n, 1)
    E, F = e[:, None], f[:, None]  # (P, 1, 2)
    d = np.hypot(*(f - e).T)[:, None, None]  # (P, 1, 1)
    straight = E + t * (F - E)
    h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
    hermite = h00 * E + h10 * (d * te[:, None]) + h01 * F + h11 * (-d * tf[:, None])
    has_tan = (np.abs(te).sum(1) > 0) & (np.abs(tf).sum(1) > 0)
    # e + s te = f + u tf  ->  [te, -tf] (s, u) = f - e
    r = f - e
    det = te[:, 0] * -tf[:, 1] + tf[:, 0] * te[:, 1]
    safe = np.where(np.abs(det) > 1e-3, det, 1.0)
    s_ = (r[:, 0] * -tf[:, 1] + tf[:, 0] * r[:, 1]) / safe
    u_ = (te[:, 0] * r[:, 1] - te[:, 1] * r[:, 0]) / safe
    dd = d[:, 0, 0]
    corner_ok = has_tan & (np.abs(det) > 1e-3) & (s_ > 0) & (u_ > 0) & (s_ < 1.5 * dd) & (u_ < 1.5 * dd)
    s_c, u_c = np.where(corner_ok, s_, 1.0)[:, None], np.where(corner_ok, u_, 1.0)[:, None]
    x = e + s_c * te  # (P, 2) the corner
    w = t[..., 0] * (s_c + u_c)  # (P, n) arc position
    first = E + np.minimum(w, s_c)[..., None] * te[:, None]
    second = x[:, None] + (w - s_c)[..., None] * ((f - x) / u_c)[:, None]
    corner = np.where((w <= s_c)[..., None], first, second)
    curves = np.stack([straight, hermite, corner], 1)  # (P, 3, n, 2)
    valid = np.stack([np.ones_like(has_tan), has_tan, corner_ok], 1)
    return curves, valid


def candidates(px: np.ndarray, starts: np.ndarray, prob: np.ndarray, d_input: np.ndarray, *, max_gap: float,
               cover_radius: float, ordered: bool = True) -> Candidates | None:
    """Every bridge candidate of one drawing (points ``px``, stroke ``starts``, model-image pixels) with its
    features; ``prob`` is the reconstruction's ink probability, ``d_input`` the distance to the input's ink;
    ``ordered``: the strokes' order is the drawing order (False for traced pictures). None when there is none."""
    idx, tan, stroke, first = loose_ends(px, starts)
    if len(idx) < 2:
        return None
    pe = px[idx]
    a, b = np.triu_indices(len(idx), 1)
    dist = np.hypot(*(pe[b] - pe[a]).T)
    keep = (idx[a] != idx[b]) & (dist > 1.0) & (dist <= max_gap)
    a, b, dist = a[keep], b[keep], dist[keep]
    if len(a) == 0:
        return None
    n = int(np.ceil(max_gap)) + 1
    curves, valid = bridge_curves(pe[a], tan[a], pe[b], tan[b], n)  # (P, 3, n, 2), (P, 3)
    pr = sample(prob, curves)  # (P, 3, n)
    near = np.minimum(np.hypot(*np.moveaxis(curves - pe[a][:, None, None], -1, 0)),
                      np.hypot(*np.moveaxis(curves - pe[b][:, None, None], -1, 0)))
    inner = near > cover_radius + 1.5
    cnt = np.maximum(inner.sum(-1), 1)
    mean = (pr * inner).sum(-1) / cnt
    ranked = np.sort(np.where(inner, pr, np.inf), -1)

    def pct(q: float) -> np.ndarray:
        k = np.floor(q * (cnt - 1)).astype(np.int64)[..., None]
        out = np.take_along_axis(ranked, k, -1)[..., 0]
        return np.where(inner.any(-1), out, 0.0)

    dup = ((sample(d_input, curves) <= cover_radius) & inner).sum(-1) / cnt
    chord = (pe[b] - pe[a]) / dist[:, None]
    cos_a, cos_b = (tan[a] * chord).sum(1), -(tan[b] * chord).sum(1)
    agree = -(tan[a] * tan[b]).sum(1)
    has_tan = (np.abs(tan[a]).sum(1) > 0) & (np.abs(tan[b]).sum(1) > 0)
    ahead_a = sample(prob, pe[a] + 3.0 * tan[a]) * (np.abs(tan[a]).sum(1) > 0)
    ahead_b = sample(prob, pe[b] + 3.0 * tan[b]) * (np.abs(tan[b]).sum(1) > 0)
    length = np.hypot(*np.diff(curves, axis=2).transpose(3, 0, 1, 2)).sum(-1)  # (P, 3)
    consec = ((stroke[b] == stroke[a] + 1) & ~first[a] & first[b]) | ((stroke[a] == stroke[b] + 1) & first[a]
                                                                       & ~first[b])
    consec &= ordered
    same = stroke[a] == stroke[b]
    d_all = np.hypot(*(pe[:, None] - pe[None]).transpose(2, 0, 1))  # (e, e)
    np.fill_diagonal(d_all, np.inf)
    rank_a = ((d_all[a] < dist[:, None] - 1e-9).sum(1) - 0) / 4.0
    rank_b = ((d_all[b] < dist[:, None] - 1e-9).sum(1) - 0) / 4.0
    P = len(a)

    def per_pair(x: np.ndarray) -> np.ndarray:
        return np.repeat(np.asarray(x, np.float64)[:, None], 3, 1)

    kinds = np.broadcast_to(np.eye(3), (P, 3, 3))
    cols = [per_pair(dist / 48.0), per_pair(cos_a), per_pair(cos_b), per_pair(agree), per_pair(has_tan),
            mean, pct(0.1), pct(0.9), pct(0.0), per_pair(ahead_a), per_pair(ahead_b), dup,
            kinds[..., 0], kinds[..., 1], kinds[..., 2], np.minimum(length / np.maximum(dist, 1e-6)[:, None], 3.0),
            per_pair(consec), per_pair(same), per_pair(np.minimum(rank_a, 1.0)), per_pair(np.minimum(rank_b, 1.0))]
    feats = np.stack(cols, -1).astype(np.float32)  # (P, 3, F)
    return Candidates(ends=idx, a=a, b=b, dist=dist, curves=curves, valid=valid, inner=inner, features=feats)


class BridgeScorer:
    """The probability that a bridge is right, from its ``features`` (by default :data:`FEATURES`): an MLP ``F -> H -> 1`` (ReLU), with the features standardised by the stored mean and scale. Loaded
    from JSON only (numbers, no code)."""

    def __init__(self, spec: dict[str, Any], features: Sequence[str] = FEATURES):
        if list(spec.get("features", [])) != list(features):
            raise ValueError("bridge scorer: its features differ from this version's; refit it "
                             "(scripts/fit_bridges.py)")
        self.mean = np.asarray(spec["mean"], np.float64)
        self.scale = np.asarray(spec["scale"], np.float64)
        self.w1, self.b1 = np.asarray(spec["w1"], np.float64), np.asarray(spec["b1"], np.float64)
        self.w2, self.b2 = np.asarray(spec["w2"], np.float64), float(spec["b2"])
        self.threshold = float(spec.get("threshold", 0.5))
        self.spec = spec
        f = len(features)
        if self.mean.shape != (f,) or self.scale.shape != (f,) or self.w1.shape[0] != f or \
                self.w2.shape != (self.w1.shape[1],) or self.b1.shape != (self.w1.shape[1],):
            raise ValueError("bridge scorer: its weights have the wrong shapes; refit it (scripts/fit_bridges.py)")
        if not all(np.isfinite(x).all() for x in (self.mean, self.scale, self.w1, self.b1, self.w2)):
            raise ValueError("bridge scorer: its weights are not finite numbers; refit it")

    def __call__(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float64) - self.mean) / self.scale
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        z = h @ self.w2 + self.b2
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def load_scorer(folder: str | Path | None, name: str = SCORER_FILE, features: Sequence[str] = FEATURES
                ) -> BridgeScorer | None:
    """The scorer stored beside a model: ``folder/bridges.json`` for a release folder, the ``bridges.json`` next to
    a checkpoint file, or a ``.json`` file itself; None when there is none."""
    if folder is None:
        return None
    path = Path(folder)
    if path.is_dir():
        path = path / name
    elif path.suffix != ".json":
        path = path.with_name(name)
    if not path.is_file():
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable bridge scorer ({e}); delete it or refit it") from None
    return BridgeScorer(spec, features)


def choose(cands: Candidates, score: np.ndarray, threshold: float) -> list[tuple[int, int, int]]:
    """Greedy matching: ``[(pair k, curve c, ...)]`` as ``(k, c)`` -- best curve of each pair by ``score (P, 3)``
    (invalid curves must hold -1), pairs taken most probable first when at least ``threshold``, each end once."""
    best = score.argmax(1)
    top = score[np.arange(len(best)), best]
    used = np.zeros(len(cands.ends), bool)
    out = []
    for k in np.argsort(-top, kind="stable"):
        if top[k] < threshold:
            break
        if used[cands.a[k]] or used[cands.b[k]]:
            continue
        used[cands.a[k]] = used[cands.b[k]] = True
        out.append((int(k), int(best[k])))
    return out
