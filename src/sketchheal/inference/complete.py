"""Completion: keep the input's strokes exactly as given and add strokes where the drawing has gaps (issue 17).

The walk of one drawing (absolute polylines in the input's own coordinates; images come in as traced centre lines):

1. **The model's view.** The strokes are drawn as the model was trained to see them (:func:`render` of the
   stroke-3 form at the model's ``image_size`` / ``render_mode``); every input point's position in that image is
   known exactly from the render layout.
2. **Reconstruction.** The encoder's final Lmser reconstruction ``recons[-1]`` (trained to reproduce the clean
   sketch from the corrupted one) of that image, averaged with those of its mirrored and shifted copies
   (``views``, :mod:`sketchheal.inference.recon`; ``typical_views`` for drawings the domain check finds of the
   model's own kind); its ink is where it is above ``threshold``. The reconstruction may come from a second model
   (the gap-filler) of the same image size.
3. **Bridges.** Every pair of loose ends of the input (first and last points of its strokes) at most ``max_gap``
   apart is tried with three curves: a straight line, a cubic Hermite curve that leaves each end along its own
   direction, and the corner where the two end directions meet (:mod:`sketchheal.inference.bridges`). With a
   bridge scorer (``bridges.json`` beside the reconstructing model) a curve is a bridge when its probability of
   being right reaches ``bridge_prob``; without one, when the reconstruction's ink probability
   ``(recons + 1) / 2`` along it (away from the two ends) averages at least ``bridge_mean``, its 10th percentile
   reaches ``bridge_low`` and at most 30 % of it runs over the input's own ink. Bridges are accepted greedily,
   best first, each end used once; a bridge starts and ends exactly at the input's points.
4. **The rest of the reconstruction.** Reconstruction ink above ``threshold`` farther than ``cover_radius`` from
   the input's ink and from the bridges, less specks (``min_area``), is thinned (Zhang-Suen,
   :func:`sketchheal.sketch.trace.thin`) and traced into strokes, each point moved across the line onto the
   reconstruction's ridge (within ``ridge`` px; bridges too, ``bridge_ridge``); an end within ``snap_radius`` of an
   input loose end is joined to it (else to the nearest input stroke point within ``cover_radius + 1.5``); strokes shorter
   than ``min_length`` or whose mean ink probability is below ``residual_mean`` are dropped; RDP (``simplify``).
5. **A second look** (``passes = 2``): the drawing with the added strokes is drawn and reconstructed again, and
   what that finds (joined to the input's or the added strokes' ends) is added too.
6. **Back to the input's frame.** Points are mapped back by the inverse of the layout's least-squares similarity
   plus the local residual of the four nearest input points (the published placement truncates offsets, so the
   map is not exactly a similarity); joined ends are the input's own points, bit for bit.

The result is the input's strokes, unchanged, and the added strokes (:class:`Completion`). Distances are in pixels
of the model's image (128 px for the bundled model).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from sketchheal.inference.bridges import FEATURES, BridgeScorer, candidates, choose, load_scorer, sample as _sample
from sketchheal.inference.loading import load_model
from sketchheal.inference.recon import parse_views, reconstruct
from sketchheal.sketch.render import Frame, layout, layout_frame, render
from sketchheal.sketch.trace import skeleton_polylines, thin
from sketchheal.sketch.strokes import polylines_to_stroke3, rdp, thin_polylines
from sketchheal.utils.paths import ASSETS_DIR

__all__ = ["BUNDLED_GAPFILL_DIR", "load_gapfill", "CompletionParams", "Completion", "ModelView", "model_view", "working_copy", "view_of_part", "to_image", "reconstruct",
           "complete", "added_strokes"]


# The bundled gap-filler: an encoder trained (on a frozen copy of the bundled decoder) on sheep, Omniglot and
# QuickDraw drawings, used for the reconstruction step only (benchmarks/bench_complete.py measures it).
BUNDLED_GAPFILL_DIR = ASSETS_DIR / "gapfill"
# The working copy of the input's strokes that completion reads (model_view, working_copy): a drawing drawn denser
# than the drawings the models learned (raw QuickDraw, a tablet, a mouse) is thinned by RDP at WORKING_THIN of its
# longer side, which takes at least DENSE_SHARE of its points away; simplified drawings lose far fewer at that
# epsilon (QuickDraw simplified <= 19 %, the sheep <= 26 %; raw QuickDraw 31-78 %, 5th to 95th percentile) and are
# read as given.
WORKING_THIN = 1.0 / 255
DENSE_SHARE = 1.0 / 3


def load_gapfill(path: str | None = None, device: str | None = None):
    """The gap-filler model (a ``Healer``): ``path`` or the bundled one; None when there is none."""
    target = BUNDLED_GAPFILL_DIR if path is None else path
    if path is None and not (BUNDLED_GAPFILL_DIR / "config.json").is_file():
        return None
    return load_model(target, device=device)


@dataclass(frozen=True)
class CompletionParams:
    """Settings of gap filling; distances in pixels of the model's image (see the module docstring)."""

    threshold: float = -0.35  # reconstruction ink: recons[-1] > threshold (images are -1 paper, +1 ink)
    cover_radius: float = 2.5  # reconstruction ink this close to the input's ink is already drawn
    min_area: int = 4  # fill pieces with fewer pixels are specks
    snap_radius: float = 6.0  # a stroke end this close to an input loose end is joined to it
    min_length: float = 3.0  # added strokes shorter than this (after joining) are dropped
    simplify: float = 0.4  # RDP epsilon of the added strokes
    bridge: bool = True  # join pairs of loose ends through the reconstruction
    max_gap: float = 48.0  # longest bridge (straight distance between the two ends)
    bridge_mean: float = 0.25  # a bridge's mean reconstruction ink probability ((recon + 1) / 2) must reach this
    bridge_low: float = 0.05  # ... and its 10th percentile this
    bridge_align: float = 0.0  # weight of the ends' alignment (pointing at each other) when ranking bridges
    min_align: float = 0.0  # bridges whose ends point away from each other more than this are refused
    bridge_prob: float = 0.3  # with a bridge scorer: a bridge's probability of being right must reach this
    residual: bool = True  # also trace reconstruction ink that no bridge explains
    residual_mean: float = 0.3  # a traced stroke's mean ink probability must reach this
    island_length: float = 0.0  # a traced stroke joined to no input stroke must be at least this long
    passes: int = 2  # reconstruct again with the added strokes drawn, and add what the second look finds
    ridge: float = 1.5  # traced points move across the line to the reconstruction's ridge within this (0: off)
    bridge_ridge: float = 1.0  # the same for the inner points of bridges
    views: str = "mirror,flip,turn,shift"  # the reconstruction averaged over these views too (inference.recon; "" = none)
    typical_views: str = "mirror,shift,cross"  # instead, for drawings of the model's own kind: views that keep them upright
    typical_below: float = 90.0  # ... those the domain check puts below this percentile (0: never)

    def __post_init__(self):
        parse_views(self.views)  # one line naming the known views when a name is wrong
        parse_views(self.typical_views)
        if not 0.0 <= self.typical_below <= 100.0:
            raise ValueError(f"typical_below is a percentile between 0 and 100, got {self.typical_below}")


@dataclass
class ModelView:
    """One drawing as the model sees it: image ``(N, N) float32`` (ink +1), the input points ``uv (n, 2)`` in
    input coordinates and ``px (n, 2)`` in image pixels (same order: the strokes concatenated), the index of each
    stroke's first point ``starts``, and the layout's least-squares frame."""

    image: np.ndarray
    uv: np.ndarray
    px: np.ndarray
    starts: np.ndarray
    frame: Frame


@dataclass
class Completion:
    """input_lines: the input's strokes exactly as given; added_lines: the new strokes (both absolute ``(k, 2)``
    float64 polylines in the input's coordinates). image: the model's view of the input; recon: the reconstruction
    used (``(N, N)``, None when there was nothing to complete); frame: input coordinates -> model image pixels;
    typicality: see :mod:`sketchheal.inference.domain` (None when not computed)."""

    input_lines: list[np.ndarray]
    added_lines: list[np.ndarray]
    image: np.ndarray | None = None
    recon: np.ndarray | None = None
    frame: Frame | None = None
    typicality: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def lines(self) -> list[np.ndarray]:
        """The healed drawing: the input's strokes, then the added ones."""
        return list(self.input_lines) + list(self.added_lines)


def _clean_lines(lines: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(line, np.float64).reshape(-1, 2) for line in lines]
    return [line for line in out if len(line)]


def working_copy(lines: Sequence[np.ndarray], thin: float = WORKING_THIN) -> list[np.ndarray]:
    """The strokes completion works on: as given, or, for a drawing denser than the models' drawings (RDP at
    ``thin`` of its longer side removes at least :data:`DENSE_SHARE` of its points), that thinned copy
    (:func:`~sketchheal.sketch.strokes.thin_polylines`; stroke ends kept exactly). ``thin = 0``: as given."""
    lines = _clean_lines(lines)
    if thin <= 0 or not lines:
        return lines
    thinned = thin_polylines(lines, thin)
    n = sum(len(line) for line in lines)
    return thinned if n - sum(len(line) for line in thinned) >= DENSE_SHARE * n else lines


def model_view(lines: Sequence[np.ndarray], size: int, mode: str, thin: float = WORKING_THIN) -> ModelView | None:
    """The model's image of absolute strokes and where every point of their :func:`working_copy` lands in it
    (None: nothing drawable)."""
    lines = working_copy(lines, thin)
    if not lines:
        return None
    pts = np.concatenate(lines, 0)
    if not (np.ptp(pts, 0) > 0).any():
        return None
    first = lines[0]
    doubled = len(first) == 1  # polylines_to_stroke3 doubles a one-point first stroke
    s3 = polylines_to_stroke3(lines)
    lay = layout(s3)
    px_all = (lay.points.astype(np.float64) + 0.5) * (size / lay.side) - 0.5
    px = px_all[1:] if doubled else px_all
    starts = np.cumsum([0] + [len(line) for line in lines[:-1]])
    image = render(s3, size=size, mode=mode)
    return ModelView(image=image, uv=pts, px=px, starts=starts, frame=layout_frame(s3, size, start=tuple(pts[0])))


def _distance_to(mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _drop_specks(mask: np.ndarray, min_area: int) -> np.ndarray:
    if min_area <= 1 or not mask.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def _nearest_on_strokes(q: np.ndarray, view: ModelView) -> tuple[float, np.ndarray, np.ndarray]:
    """Nearest point to ``q (2,)`` (px) on the input's strokes: distance, px point, uv point."""
    best = (np.inf, view.px[0], view.uv[0])
    bounds = list(view.starts) + [len(view.px)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        p, u = view.px[a:b], view.uv[a:b]
        if len(p) == 1:
            d = float(np.hypot(*(p[0] - q)))
            if d < best[0]:
                best = (d, p[0], u[0])
            continue
        seg = p[1:] - p[:-1]
        L2 = (seg * seg).sum(1)
        t = np.clip(((q - p[:-1]) * seg).sum(1) / np.where(L2 > 0, L2, 1), 0, 1)
        proj = p[:-1] + t[:, None] * seg
        d = np.hypot(*(proj - q).T)
        j = int(d.argmin())
        if d[j] < best[0]:
            best = (float(d[j]), proj[j], u[j] + t[j] * (u[j + 1] - u[j]))
    return best


def _idw(resid: np.ndarray, idx: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Inverse-distance weighted residuals ``(m, 2)`` of the neighbours ``idx (m, k)`` at distances ``dist``;
    a query on a point (distance < 1e-6) takes that point's residual exactly."""
    w = 1.0 / (dist + 1e-3)
    out = (resid[idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
    first = np.argmin(dist, axis=1)
    hit = np.take_along_axis(dist, first[:, None], 1)[:, 0] < 1e-6
    out[hit] = resid[idx[hit, first[hit]]]
    return out


def _to_input(q: np.ndarray, view: ModelView, k: int = 4) -> np.ndarray:
    """Model-image points ``(m, 2)`` -> input coordinates: inverse frame + inverse-distance residual of the ``k``
    nearest input points."""
    base = view.frame.invert(q)
    resid = view.uv - view.frame.invert(view.px)  # (n, 2)
    d = np.hypot(q[:, None, 0] - view.px[None, :, 0], q[:, None, 1] - view.px[None, :, 1])  # (m, n)
    k = min(k, d.shape[1])
    idx = np.argpartition(d, k - 1, axis=1)[:, :k]
    return base + _idw(resid, idx, np.take_along_axis(d, idx, 1))


def to_image(uv: np.ndarray, view: ModelView, k: int = 4) -> np.ndarray:
    """Input coordinates ``(m, 2)`` -> model-image pixels: the frame plus the inverse-distance residual of the
    ``k`` nearest input points (exact at the input's own points)."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    base = view.frame.apply(uv)
    resid = view.px - view.frame.apply(view.uv)
    d = np.hypot(uv[:, None, 0] - view.uv[None, :, 0], uv[:, None, 1] - view.uv[None, :, 1]) * view.frame.scale
    k = min(k, d.shape[1])
    idx = np.argpartition(d, k - 1, axis=1)[:, :k]
    return base + _idw(resid, idx, np.take_along_axis(d, idx, 1))


def view_of_part(lines: Sequence[np.ndarray], whole: ModelView, image: np.ndarray,
                 thin: float = WORKING_THIN) -> ModelView:
    """The view of ``lines`` (e.g. what is left of a drawing after erasure; thinned as :func:`model_view` does)
    placed in the frame of ``whole`` (the drawing it came from), with the model image ``image`` (e.g. the
    published raster corruption of ``whole``)."""
    lines = working_copy(lines, thin)
    if not lines:
        empty = np.zeros((0, 2))
        return ModelView(image=image, uv=empty, px=empty, starts=np.zeros(0, np.int64), frame=whole.frame)
    uv = np.concatenate(lines, 0)
    starts = np.cumsum([0] + [len(line) for line in lines[:-1]])
    return ModelView(image=image, uv=uv, px=to_image(uv, whole), starts=starts, frame=whole.frame)


def _length(line: np.ndarray) -> float:
    return float(np.hypot(*np.diff(line, axis=0).T).sum()) if len(line) > 1 else 0.0


def _bridges(view: ModelView, prob: np.ndarray, d_input: np.ndarray, params: CompletionParams,
             scorer: BridgeScorer | None = None, ordered: bool = True) -> list[tuple[int, int, np.ndarray]]:
    """Pairs of loose ends joined through the reconstruction: ``[(point i, point j, px curve (n, 2))]`` (the
    curve runs from the one input point to the other), accepted greedily, each end once: by the ``scorer``'s
    probability (at least ``params.bridge_prob``) when there is one, else by the hand-set ink rule."""
    c = candidates(view.px, view.starts, prob, d_input, max_gap=params.max_gap, cover_radius=params.cover_radius,
                   ordered=ordered)
    if c is None:
        return []
    if scorer is not None:
        score = np.where(c.valid, scorer(c.features), -1.0)  # (P, 3)
        threshold = params.bridge_prob
    else:
        f = {name: c.features[..., k] for k, name in enumerate(FEATURES)}
        align = (f["cos_a"] + f["cos_b"]) / 2
        ok = c.valid & c.inner.any(-1) & (f["p_mean"] >= params.bridge_mean) & (f["p_low"] >= params.bridge_low) \
            & (f["dup"] <= 0.3) & (align >= params.min_align)
        score = np.where(ok, f["p_mean"] + params.bridge_align * align, -1.0)
        threshold = -0.5
    out = []
    for k, kind in choose(c, score, threshold):
        m = max(6, int(np.ceil(c.dist[k])) + 1)  # resample the chosen curve at ~1 px
        curve = c.curves[k, kind]
        arc = np.r_[0.0, np.cumsum(np.hypot(*np.diff(curve, axis=0).T))]
        at = np.linspace(0.0, arc[-1], m)
        pts = np.stack([np.interp(at, arc, curve[:, 0]), np.interp(at, arc, curve[:, 1])], 1)
        if params.bridge_ridge > 0:
            pts = _to_ridge(pts, prob, params.bridge_ridge)
        out.append((int(c.ends[c.a[k]]), int(c.ends[c.b[k]]), pts))
    return out


def _bridge_lines(view: ModelView, bridges: list[tuple[int, int, np.ndarray]], params: CompletionParams
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """The bridges as strokes in input coordinates (ending exactly on the input's points) and drawn ``(N, N)``."""
    out = []
    drawn = np.zeros(view.image.shape, np.uint8)
    for i, j, curve in bridges:
        keep = rdp(curve, params.simplify)
        uv = _to_input(keep[1:-1], view) if len(keep) > 2 else np.zeros((0, 2))
        out.append(np.vstack([view.uv[i], uv, view.uv[j]]))
        cv2.polylines(drawn, [np.rint(curve).astype(np.int32)], False, 1, thickness=1)
    return out, drawn


def bridge_stage(view: ModelView, recon: np.ndarray, params: CompletionParams, scorer: BridgeScorer | None = None,
                 ordered: bool = True) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The bridges of one drawing (strokes in input coordinates), the distance ``(N, N)`` to what is drawn (the
    input's ink and the bridges) and the distance to the input's ink alone."""
    prob = np.clip((recon.astype(np.float32) + 1) / 2, 0, 1)
    d_input = _distance_to(view.image > 0.0)
    bridges = _bridges(view, prob, d_input, params, scorer, ordered) if params.bridge else []
    out, drawn = _bridge_lines(view, bridges, params)
    covered = np.minimum(d_input, _distance_to(drawn > 0)) if drawn.any() else d_input
    return out, covered, d_input


def _to_ridge(px: np.ndarray, prob: np.ndarray, reach: float) -> np.ndarray:
    """Each traced point ``(m, 2)`` moved across the line (along the normal of its neighbours' chord) to where
    the ink probability peaks within ``reach`` px (sub-pixel, a parabola through the best sample and its two
    neighbours); the skeleton of a thresholded blob lies on pixel centres, the drawn line on the ridge."""
    if len(px) < 3:
        return px
    prev = np.vstack([px[:1], px[:-2], px[-2:-1]])
    nxt = np.vstack([px[1:2], px[2:], px[-1:]])
    t = nxt - prev
    t /= np.maximum(np.hypot(*t.T), 1e-9)[:, None]
    nrm = np.stack([-t[:, 1], t[:, 0]], 1)  # (m, 2)
    offs = np.linspace(-reach, reach, int(round(2 * reach / 0.5)) + 1)  # every 0.5 px
    pts = px[:, None] + offs[None, :, None] * nrm[:, None]  # (m, k, 2)
    v = _sample(prob, pts)  # (m, k)
    j = np.clip(v.argmax(1), 1, len(offs) - 2)
    a, b, c = (np.take_along_axis(v, (j + d)[:, None], 1)[:, 0] for d in (-1, 0, 1))
    den = a - 2 * b + c
    shift = np.where(den < -1e-9, 0.5 * (a - c) / np.where(den < -1e-9, den, -1.0), 0.0)
    o = offs[j] + np.clip(shift, -1, 1) * (offs[1] - offs[0])
    out = px + o[:, None] * nrm
    out[[0, -1]] = px[[0, -1]]  # the ends stay where they join
    return out


def residual_strokes(view: ModelView, recon: np.ndarray, covered: np.ndarray, params: CompletionParams
                     ) -> list[np.ndarray]:
    """Reconstruction ink above ``threshold`` that nothing drawn explains (farther than ``cover_radius`` from
    ``covered``, the distance to the input's ink and the bridges), less specks, thinned and traced; each end
    joined to a nearby input point; kept when at least ``min_length`` long (with its joins), not an island shorter
    than ``island_length``, and its mean ink probability reaches ``residual_mean`` (strokes in input
    coordinates)."""
    prob = np.clip((recon.astype(np.float32) + 1) / 2, 0, 1)
    fill = (recon > params.threshold) & (covered > params.cover_radius)
    fill = _drop_specks(fill, params.min_area)
    if not fill.any():
        return []
    ends_idx = np.unique(np.concatenate([view.starts, np.r_[view.starts[1:], len(view.px)] - 1]))
    ends_px, ends_uv = view.px[ends_idx], view.uv[ends_idx]
    out = []
    for px in skeleton_polylines(thin(fill)):
        px = _to_ridge(px, prob, params.ridge) if params.ridge > 0 else px
        joined = [None, None]  # (px, uv) of the input point each end is joined to
        for side in (0, 1):
            q = px[0] if side == 0 else px[-1]
            d = np.hypot(*(ends_px - q).T)
            j = int(d.argmin())
            if d[j] <= params.snap_radius:
                joined[side] = (ends_px[j], ends_uv[j])
            else:
                dist, p_px, p_uv = _nearest_on_strokes(q, view)
                if dist <= params.cover_radius + 1.5:
                    joined[side] = (p_px, p_uv)
        full_px = px
        if joined[0] is not None:
            full_px = np.vstack([joined[0][0], full_px])
        if joined[1] is not None:
            full_px = np.vstack([full_px, joined[1][0]])
        length = _length(full_px)
        if length < params.min_length:
            continue
        if joined[0] is None and joined[1] is None and length < params.island_length:
            continue  # an island of haze, joined to nothing the input drew
        if float(_sample(prob, px).mean()) < params.residual_mean:
            continue
        keep = rdp(px, params.simplify) if len(px) > 2 else px
        uv = _to_input(keep, view)
        if joined[0] is not None:
            uv = np.vstack([joined[0][1], uv])
        if joined[1] is not None:
            uv = np.vstack([uv, joined[1][1]])
        out.append(uv)
    return out


def added_strokes(view: ModelView, recon: np.ndarray, params: CompletionParams, scorer: BridgeScorer | None = None,
                  ordered: bool = True) -> list[np.ndarray]:
    """The strokes to add to one drawing (input coordinates), from its view and reconstruction ``(N, N)``:
    bridges (chosen by ``scorer``, else by the hand-set rule), then the residual strokes."""
    if len(view.px) == 0:
        return []
    out, covered, _ = bridge_stage(view, recon, params, scorer, ordered)
    return out + residual_strokes(view, recon, covered, params) if params.residual else out


def _reconstruct_grouped(model: torch.nn.Module, images: np.ndarray, batch_size: int,
                         views: Sequence[str]) -> np.ndarray:
    """:func:`reconstruct` of ``images (B, N, N)``, image ``j`` averaged over ``views[j]`` (one batch per views)."""
    out = np.empty_like(np.asarray(images, np.float32))
    for names in dict.fromkeys(views):
        sel = [j for j, v in enumerate(views) if v == names]
        out[sel] = reconstruct(model, images[sel], batch_size, names)[0]
    return out


def _model_of(m: Any) -> torch.nn.Module:
    return m.model if hasattr(m, "model") else m


def complete(healer: Any, drawings: Sequence[Sequence[np.ndarray]], *, gapfill: Any = None,
             params: CompletionParams | None = None, views: Sequence[ModelView | None] | None = None,
             images: np.ndarray | None = None, batch_size: int = 64, domain: Any = None,
             scorer: BridgeScorer | str | None = "auto", ordered: bool | Sequence[bool] = True
             ) -> list[Completion]:
    """Complete many drawings (each a list of absolute ``(k, 2)`` strokes in its own coordinates).

    healer: the loaded model (a ``Healer``: its ``model``, ``image_size``, ``render_mode`` are used). gapfill: an
    optional second model (``Healer`` or ``LmserPix2Seq``) whose reconstruction fills the gaps instead (same image
    size). views: precomputed :func:`model_view` s (one per drawing); images: ``(B, N, N)`` model inputs to use
    instead of the views' own images (e.g. the published raster corruption, whose frame is the view's). domain:
    a :class:`sketchheal.inference.domain.Domain` to report how typical each drawing is (None: not reported).
    scorer: the :class:`~sketchheal.inference.bridges.BridgeScorer` that decides bridges; "auto" (default): the
    one stored beside the model that reconstructs (``bridges.json``, :func:`~sketchheal.inference.bridges.
    load_scorer`), if any; None: the hand-set rule. ordered: whether the strokes are in drawing order (one flag,
    or one per drawing); False for traced pictures, whose stroke order means nothing and whose fragmented centre
    lines are unlike the erased drawings the scorer learned: they are bridged by the hand-set rule.
    Returns one :class:`Completion` per drawing, in order.
    """
    params = params or CompletionParams()
    size, mode = int(healer.image_size), str(healer.render_mode)
    drawings = [_clean_lines(d) for d in drawings]
    if isinstance(scorer, str):
        if scorer != "auto":
            raise ValueError(f"scorer must be a BridgeScorer, None or 'auto', not {scorer!r}")
        scorer = load_scorer(getattr(gapfill if gapfill is not None else healer, "source", "") or None)
    order = [bool(ordered)] * len(drawings) if isinstance(ordered, (bool, np.bool_)) else [bool(o) for o in ordered]
    if len(order) != len(drawings):
        raise ValueError(f"ordered: {len(order)} flags for {len(drawings)} drawings")
    if views is None:
        views = [model_view(d, size, mode) for d in drawings]
    ok = [i for i, v in enumerate(views) if v is not None]
    results = [Completion(input_lines=[line.copy() for line in d], added_lines=[]) for d in drawings]
    if not ok:
        return results
    if images is None:
        batch = np.stack([views[i].image for i in ok])
    else:
        batch = np.asarray(images, np.float32)[ok]
    filler = _model_of(gapfill if gapfill is not None else healer)
    typical = None
    if domain is not None:  # how typical, by the main model's codes (its identity view)
        _, codes = reconstruct(_model_of(healer), batch, batch_size)
        typical = domain.assess(codes, domain.nll(healer, [drawings[i] for i in ok], codes, batch_size))
    # Each drawing's views: upright ones for drawings of the model's own kind (turning a sheep upside-down shows
    # the model something it never saw), all of params.views for the others.
    own_kind = [t is not None and t["percentile"] < params.typical_below for t in (typical or [None] * len(ok))]
    views_of = {i: params.typical_views if own else params.views for i, own in zip(ok, own_kind)}
    recons = _reconstruct_grouped(filler, batch, batch_size, [views_of[i] for i in ok])
    for j, i in enumerate(ok):
        view = views[i] if images is None else replace(views[i], image=batch[j])
        res = results[i]
        res.image, res.recon, res.frame = view.image, recons[j], view.frame
        res.added_lines = added_strokes(view, recons[j], params, scorer if order[i] else None, order[i])
        if typical is not None:
            res.typicality = typical[j]
    for _ in range(params.passes - 1):  # look again at the drawing with what was added
        again = [i for i in ok if results[i].added_lines]
        if not again:
            break
        views2 = [model_view(results[i].lines, size, mode) for i in again]
        recons2 = _reconstruct_grouped(filler, np.stack([v.image for v in views2]), batch_size,
                                       [views_of[i] for i in again])
        for v, r, i in zip(views2, recons2, again):
            results[i].added_lines = results[i].added_lines + added_strokes(v, r, params, scorer if order[i] else None, order[i])
    return results
