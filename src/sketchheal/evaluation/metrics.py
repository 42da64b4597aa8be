"""Pure retrieval and recognition metrics for sketch healing (numpy/torch, no I/O, no models).

Retrieval (the sketch-healing protocol): each query code should find its own original among the gallery codes.
``target_ranks`` gives, for every query, the 0-based rank of its target among all gallery codes by Euclidean
distance; ``retrieval_topk`` turns ranks into top-k accuracies.

Ranks and ties
    rank(q) = #{gallery j : d(q, j) < d(q, t)} + #{gallery j < t : d(q, j) == d(q, t)}
    i.e. the position of the target in a *stable* sort of the distances: ties go to the lower gallery index.
    This is deterministic and, for a degenerate encoder that maps everything to one code, gives chance level
    (k / G), neither 0 nor 1. Two distances count as equal when they differ by less than the float64 rounding of
    the computation (see ``_tie_tolerance``), so identical gallery codes always tie exactly.

Top-k, correct and published
    ``top{k}``: the target is among the k nearest gallery codes (rank < k).
    ``top{k}_published`` (k > 1): the off-by-one variant of the published Lmser-pix2seq / DC-gra2seq /
    Sketch-HARP retrieval scripts, which look at the first k - 1 neighbours only (rank < k - 1): their "top-10"
    is a top-9 and their "top-50" a top-49. Reported so that our numbers can be set beside theirs.

``model_metrics`` applies them to one model's run (``evalset.ModelRun``): per mask level, healed and no-healing
retrieval in both directions, recognition accuracy, per category, and the classifier's ceiling (the published
protocol: raster masks, redraw). ``healing_metrics`` gives, per erase kind, mask level and mode (and the floor), the
ink measures (``sketchheal.evaluation.healing.summarise``) beside the same retrieval and recognition.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from sketchheal.evaluation.evalset import KS, EvalSet, ModelRun, mask_label
from sketchheal.evaluation.healing import summarise

# Bytes of float64 distance matrix per chunk (a few temporaries of this size exist at once).
DEFAULT_CHUNK_BYTES = 64 * 2**20


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)


def _tie_tolerance(q2: torch.Tensor, g2_max: torch.Tensor, dim: int) -> torch.Tensor:
    """Distances closer than this are equal: a bound on the float64 error of ``|q|^2 + |g|^2 - 2 q.g``.

    q2 (c,) squared query norms; returns (c, 1). The bound (dim * 8 * eps * (|q|^2 + |g|^2)) is far below the
    smallest real difference between float32 codes (~1e-7 relative), so it only merges rounding noise.
    """
    eps = torch.finfo(torch.float64).eps
    return (8.0 * (dim + 1) * eps * (1.0 + q2 + g2_max)).unsqueeze(1)


def target_ranks(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor | Sequence[int],
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """0-based rank of each query's target among all gallery codes (Euclidean distance, stable ties).

    query (Q, D), gallery (G, D), targets (Q,) gallery indices. Returns ``(ranks (Q,) int64, ties (Q,) int64)``
    where ``ties[i]`` counts the *other* gallery codes exactly as far from query i as its target.
    Works in float64, ``chunk_bytes`` of distances at a time, so 42,500 x 42,500 needs no more than a few times
    ``chunk_bytes`` of memory. ``device`` (default: the query's device for tensors, else CPU) runs it on a GPU.
    """
    if device is None:
        device = query.device if isinstance(query, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    q = _as_tensor(query, device)
    g = _as_tensor(gallery, device)
    t = torch.as_tensor(np.asarray(targets), dtype=torch.int64, device=device)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"query {tuple(q.shape)} and gallery {tuple(g.shape)} must be (Q, D) and (G, D)")
    if t.shape != (q.shape[0],):
        raise ValueError(f"targets {tuple(t.shape)} must be ({q.shape[0]},): one gallery index per query")
    n_gallery = g.shape[0]
    if n_gallery == 0:
        raise ValueError("the gallery is empty")
    if q.shape[0] and (int(t.min()) < 0 or int(t.max()) >= n_gallery):
        raise ValueError(f"targets must lie in [0, {n_gallery}) (gallery size)")

    g2 = (g * g).sum(1)
    g2_max = g2.max()
    rows = max(1, chunk_bytes // (8 * n_gallery))
    ranks, ties = [], []
    for start in range(0, q.shape[0], rows):
        qc, tc = q[start:start + rows], t[start:start + rows]
        q2 = (qc * qc).sum(1)
        # Squared distance minus the target's, up to the per-row constant |q|^2: (c, G).
        diff = g2[None, :] - 2.0 * (qc @ g.T)
        diff -= diff.gather(1, tc[:, None]).clone()
        tol = _tie_tolerance(q2, g2_max, q.shape[1])
        closer = (diff < -tol).sum(1)
        n_tied = (diff.abs_() <= tol).sum(1) - 1                       # other codes as far as the target
        tied_before = torch.zeros_like(closer)
        for r in torch.nonzero(n_tied > 0).flatten().tolist():         # rare: duplicates or a collapsed encoder
            tied_before[r] = (diff[r, : int(tc[r])] <= tol[r]).sum()
        ranks.append(closer + tied_before)
        ties.append(n_tied)
    if not ranks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return torch.cat(ranks).cpu().numpy(), torch.cat(ties).cpu().numpy()


def topk_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (1, 10, 50)) -> dict[str, float]:
    """Top-k accuracies from 0-based target ranks (Q,): ``top{k}`` (rank < k) and, for k > 1,
    ``top{k}_published`` (rank < k - 1, the published scripts' off-by-one). Empty input gives NaN."""
    ranks = np.asarray(ranks)
    out: dict[str, float] = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        out[f"top{k}"] = _mean(ranks < k)
    for k in ks:
        if k > 1:
            out[f"top{k}_published"] = _mean(ranks < k - 1)
    return out


def _mean(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def retrieval_topk(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor | Sequence[int],
    ks: Sequence[int] = (1, 10, 50),
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    device: str | torch.device | None = None,
) -> dict[str, float | int]:
    """Top-k retrieval accuracy: is each query's own original (``targets[i]``) among its k nearest gallery codes?

    query (Q, D), gallery (G, D), targets (Q,). Returns ``top{k}`` for each k (correct), ``top{k}_published``
    for each k > 1 (first k - 1 neighbours, as the published scripts), ``mean_rank`` and ``median_rank``
    (1-based), ``mrr`` (mean reciprocal rank), ``n_queries``, ``n_gallery`` and ``n_tied`` (queries whose target
    ties with another gallery code; ties go to the lower gallery index).
    """
    ranks, ties = target_ranks(query, gallery, targets, chunk_bytes=chunk_bytes, device=device)
    out: dict[str, float | int] = dict(topk_from_ranks(ranks, ks))
    out.update(rank_summary(ranks))
    out["n_gallery"] = int(len(gallery))
    out["n_tied"] = int((ties > 0).sum())
    return out


def rank_summary(ranks: np.ndarray) -> dict[str, float | int]:
    """``mean_rank``, ``median_rank`` (1-based), ``mrr`` and ``n_queries`` of 0-based ranks (Q,)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        nan = float("nan")
        return {"mean_rank": nan, "median_rank": nan, "mrr": nan, "n_queries": 0}
    return {
        "mean_rank": float(ranks.mean() + 1),
        "median_rank": float(np.median(ranks) + 1),
        "mrr": float((1.0 / (ranks + 1)).mean()),
        "n_queries": int(ranks.size),
    }


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predicted (N,) equal to labels (N,); NaN when N = 0."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} differ in shape")
    return _mean(predicted == labels)


def per_group_mean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of values (N,) within each group id in [0, n_groups) -> (n_groups,) float64; NaN for empty groups."""
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    sums = np.bincount(groups, weights=values, minlength=n_groups)[:n_groups]
    counts = np.bincount(groups, minlength=n_groups)[:n_groups]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# ----------------------------------------------------------------------------------------------------------------
# the metrics of one model's run


def _retrieval(query: np.ndarray, gallery: np.ndarray, labels: np.ndarray, n_categories: int,
               device: torch.device) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """Retrieval of each query's own counterpart (same index): overall and per query category."""
    ranks, ties = target_ranks(query, gallery, np.arange(len(query)), device=device)
    overall: dict[str, Any] = {**topk_from_ranks(ranks, KS), **rank_summary(ranks),
                               "n_gallery": int(len(gallery)), "n_tied": int((ties > 0).sum())}
    per_cat = {c: {**topk_from_ranks(ranks[labels == c], KS), "n": int((labels == c).sum())}
               for c in range(n_categories) if (labels == c).any()}
    return overall, per_cat


def model_metrics(run: ModelRun, ev: EvalSet, ps: Sequence[float], clf_labels: np.ndarray | None,
                  device: torch.device) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Per mask level: healed and no-healing retrieval (both directions) and accuracy; also the per-category
    breakdown and the classifier ceiling. ``clf_labels`` (n_eval,): true labels in the classifier's label space."""
    labels = ev.labels[run.ids]
    n_cat = len(ev.categories)
    # Accuracies compare predictions with the true labels in the classifier's label space (y) and are grouped by
    # the evaluation-set category (labels).
    y = clf_labels[run.ids] if clf_labels is not None else None
    ceiling, ceiling_cat = None, {}
    if y is not None:
        ceiling = accuracy(run.pred_clean, y)
        ceiling_cat = {ev.categories[c]: accuracy(run.pred_clean[labels == c], y[labels == c])
                       for c in range(n_cat) if (labels == c).any()}
    rows, per_category = [], {ev.categories[c]: {} for c in np.unique(labels).tolist()}
    nan = float("nan")
    for j, p in enumerate(ps if run.corrupted else []):  # no raster masks evaluated: no published rows
        if run.healed:
            h_q, h_cat = _retrieval(run.healed[j], run.gallery, labels, n_cat, device)
            h_r, _ = _retrieval(run.gallery, run.healed[j], labels, n_cat, device)
        else:  # redraw not evaluated: the floor only
            h_q, h_cat, h_r = None, {}, None
        f_q, f_cat = _retrieval(run.corrupted[j], run.gallery, labels, n_cat, device)
        f_r, _ = _retrieval(run.gallery, run.corrupted[j], labels, n_cat, device)
        h_acc = f_acc = None
        h_acc_cat: dict[int, float] = {}
        f_acc_cat: dict[int, float] = {}
        if y is not None:
            h_acc = accuracy(run.pred_healed[j], y) if run.healed else None
            f_acc = accuracy(run.pred_corrupted[j], y)
            h_acc_cat = {c: accuracy(run.pred_healed[j][labels == c], y[labels == c]) for c in h_cat}
            f_acc_cat = {c: accuracy(run.pred_corrupted[j][labels == c], y[labels == c]) for c in f_cat}
        row: dict[str, Any] = {"mask": p, "erased_fraction": run.erased_fraction[j]}
        if run.healed:
            points = run.healed_points[j]
            row["healed"] = {"healed_to_original": h_q, "original_to_healed": h_r, "accuracy": h_acc}
        row["no_healing"] = {"corrupted_to_original": f_q, "original_to_corrupted": f_r, "accuracy": f_acc}
        if run.healed:
            row["healed_sketches"] = {"empty": int((points == 0).sum()), "mean_points": float(points.mean())
                                      if len(points) else nan, "hit_max_len": int((points >= run.max_len).sum())}
        rows.append(row)
        for c in f_cat:
            entry: dict[str, Any] = {"n": f_cat[c]["n"]}
            if c in h_cat:
                entry["healed"] = {**{k: v for k, v in h_cat[c].items() if k != "n"}, "accuracy": h_acc_cat.get(c)}
            entry["no_healing"] = {**{k: v for k, v in f_cat[c].items() if k != "n"}, "accuracy": f_acc_cat.get(c)}
            per_category[ev.categories[c]][mask_label(p)] = entry
    ceiling_info = {"accuracy": ceiling, "per_category": ceiling_cat}
    return rows, per_category, ceiling_info


def healing_metrics(run: ModelRun, ev: EvalSet, clf_labels: np.ndarray | None, device: torch.device
                    ) -> list[dict[str, Any]]:
    """One row per erase kind x mask level x mode of ``run.healing`` (the floor included): ``erase``, ``mask``,
    ``mode``, ``erased_fraction``, ``ink`` (``summarise`` of the per-sketch ink counts: ``recall``,
    ``precision``, ``kept``, their per-sketch means, ``f1``, pixel totals), the retrieval of the re-encoded
    healed sketches in both directions (floor: of the corrupted input), ``accuracy``, ``healed_sketches`` and
    ``seconds_per_sketch``."""
    labels = ev.labels[run.ids]
    n_cat = len(ev.categories)
    y = clf_labels[run.ids] if clf_labels is not None else None
    rows = []
    for h in run.healing:
        q, _ = _retrieval(h.codes, run.gallery, labels, n_cat, device)
        r, _ = _retrieval(run.gallery, h.codes, labels, n_cat, device)
        n = max(1, len(run.ids))
        rows.append({"erase": h.erase, "mask": h.mask, "mode": h.mode, "erased_fraction": h.erased_fraction,
                     "ink": summarise(h.ink), "healed_to_original": q, "original_to_healed": r,
                     "accuracy": accuracy(h.pred, y) if y is not None and h.pred is not None else None,
                     "healed_sketches": h.stats,
                     "seconds_per_sketch": None if h.mode == "floor" else h.seconds / n})
    return rows
