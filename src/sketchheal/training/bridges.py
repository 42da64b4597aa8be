"""Fit the bridge scorer of completion (:mod:`sketchheal.inference.bridges`) on erased drawings whose originals are
known.

For every drawing: squares are erased from its strokes (:func:`sketchheal.sketch.erase.erase`, a random ``p``),
the model reconstructs what is left, and every bridge candidate of the erased drawing gets its features and a
label: **right** when at least ``right_share`` of its inner samples lie within ``tolerance`` px of the original's
ink (1-px lines in the model's image) -- the condition under which a bridge adds ink that the added-ink precision
counts as right. A small MLP is fitted to those labels by weighted binary cross-entropy (full batch, Adam), and the
threshold that maximises F1 on a held-out share of the drawings is stored with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from sketchheal.inference.bridges import FEATURES, BridgeScorer, candidates, sample
from sketchheal.inference.complete import CompletionParams, model_view, to_image
from sketchheal.inference.recon import reconstruct
from sketchheal.sketch.erase import erase

__all__ = ["BridgeExamples", "bridge_examples", "fit_bridge_scorer"]


@dataclass
class BridgeExamples:
    """features ``(m, F) float32`` of valid (pair, curve) candidates, labels ``(m,) float32`` (1: right) and the
    index of the drawing each came from ``(m,)`` (to split by drawing)."""

    features: np.ndarray
    labels: np.ndarray
    drawing: np.ndarray


def _ink_distance(lines: Sequence[np.ndarray], size: int) -> np.ndarray:
    img = np.zeros((size, size), np.uint8)
    polys = [np.rint(line * 16).astype(np.int32) for line in lines if len(line) > 1]
    if polys:
        cv2.polylines(img, polys, False, 1, thickness=1, lineType=cv2.LINE_8, shift=4)
    for line in lines:
        if len(line) == 1:
            x, y = np.rint(line[0]).astype(int)
            if 0 <= x < size and 0 <= y < size:
                img[y, x] = 1
    if not img.any():
        return np.full((size, size), np.inf, np.float32)
    return cv2.distanceTransform((1 - img).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def bridge_examples(model: torch.nn.Module, drawings: Sequence[Sequence[np.ndarray]], *, size: int, mode: str,
                    ps: tuple[float, float] = (0.1, 0.5), repeats: int = 2, seed: int = 0,
                    params: CompletionParams | None = None, tolerance: float = 2.0, right_share: float = 0.9,
                    batch_size: int = 64, ordered: bool = True, point_erase: float = 0.0) -> BridgeExamples:
    """Erase each drawing ``repeats`` times (p uniform in ``ps``), reconstruct with ``model`` and label every bridge
    candidate (module docstring); ``ordered=False`` fits a scorer that does not use the drawing order;
    ``point_erase``: the share of erasures that remove only the points inside the squares
    (:func:`~sketchheal.sketch.erase.erase_points`) instead of cutting the strokes on their borders."""
    params = params or CompletionParams()
    rng = np.random.default_rng(seed)
    cases = []
    for i, d in enumerate(drawings):
        for _ in range(repeats):
            p = float(rng.uniform(*ps))
            cut = not (point_erase and rng.random() < point_erase)
            e = erase(d, p, uniforms=rng.random(20), cut=cut)
            view = model_view(e.lines, size, mode)
            if view is not None and len(e.centres):
                cases.append((i, d, view))
    feats, labels, which = [], [], []
    for start in range(0, len(cases), 256):
        chunk = cases[start: start + 256]
        recons, _ = reconstruct(model, np.stack([v.image for _, _, v in chunk]), batch_size, params.views)
        for (i, d, view), recon in zip(chunk, recons):
            prob = np.clip((recon + 1) / 2, 0, 1)
            ink = view.image > 0
            d_input = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) \
                if ink.any() else np.full(ink.shape, np.inf, np.float32)
            c = candidates(view.px, view.starts, prob, d_input, max_gap=params.max_gap,
                           cover_radius=params.cover_radius, ordered=ordered)
            if c is None:
                continue
            d_orig = _ink_distance([to_image(line, view) for line in d], size)
            outside = ((c.curves < 0) | (c.curves > size - 1)).any(-1)
            from_orig = np.where(outside, np.inf, sample(np.minimum(d_orig, 1e3), c.curves))  # (P, 3, n)
            good = ((from_orig <= tolerance) & c.inner).sum(-1) / np.maximum(c.inner.sum(-1), 1)
            ok = c.valid & c.inner.any(-1)
            feats.append(c.features[ok])
            labels.append((good[ok] >= right_share).astype(np.float32))
            which.append(np.full(int(ok.sum()), i, np.int64))
    if not feats:
        raise ValueError("no bridge candidates in these drawings: give drawings with several strokes")
    return BridgeExamples(np.concatenate(feats), np.concatenate(labels), np.concatenate(which))


def fit_bridge_scorer(train: BridgeExamples, valid: BridgeExamples, *, hidden: int = 32, steps: int = 4000,
                      batch: int = 4096, lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0,
                      features: Sequence[str] = FEATURES, right: float = 0.5) -> dict[str, Any]:
    """Fit the MLP on ``train`` (minibatches of ``batch`` candidates, classes weighted equally), choose the
    F1-best threshold on ``valid``; returns the JSON spec of a :class:`~sketchheal.inference.bridges.BridgeScorer`
    with its validation figures. Labels may be soft (a share in [0, 1]: the cross-entropy takes them as they are;
    for the class weights and the F1 a label counts as right when at least ``right``)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(train.features.astype(np.float32))
    mean = x.mean(0)
    scale = x.std(0).clamp_min(1e-3)
    y = torch.from_numpy(train.labels.astype(np.float32))
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    hard = y >= right
    pos = float(hard.float().mean())
    weight = torch.where(hard, 0.5 / max(pos, 1e-6), 0.5 / max(1 - pos, 1e-6))  # balanced classes
    xs = (x - mean) / scale
    for _ in range(steps):
        k = torch.randint(0, len(xs), (min(batch, len(xs)),), generator=gen)
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xs[k])[:, 0], y[k], weight=weight[k])
        loss.backward()
        opt.step()
        sched.step()
    spec = {"features": list(features), "mean": mean.double().tolist(), "scale": scale.double().tolist(),
            "w1": net[0].weight.detach().double().T.tolist(), "b1": net[0].bias.detach().double().tolist(),
            "w2": net[2].weight.detach().double()[0].tolist(), "b2": float(net[2].bias.detach()[0])}
    p = BridgeScorer(spec, features)(valid.features)
    truth = valid.labels >= right
    best = (0.0, 0.5, 0.0, 0.0)
    for t in np.linspace(0.05, 0.95, 91):
        tp = float(((p >= t) & truth).sum())
        prec = tp / max(float((p >= t).sum()), 1.0)
        rec = tp / max(float(truth.sum()), 1.0)
        f1 = 2 * prec * rec / max(prec + rec, 1e-9)
        if f1 > best[0]:
            best = (f1, float(t), prec, rec)
    spec.update(threshold=best[1], fit={"train_candidates": int(len(train.labels)),
                                        "train_right": float((train.labels >= right).mean()),
                                        "valid_candidates": int(len(valid.labels)),
                                        "valid_f1": best[0], "valid_precision": best[2], "valid_recall": best[3],
                                        "hidden": hidden, "steps": steps, "final_loss": float(loss.detach())})
    return spec
