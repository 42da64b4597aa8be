"""How typical a drawing is for the model: is it the kind of drawing the model learned (issue 17, item 4)?

The statistic is the Mahalanobis distance of a drawing's code (the encoder mean ``mu`` of the model's view of it)
under a Gaussian fitted to the codes of the model's own **training** drawings, and it is reported as a percentile
of the same distance over the model's **validation** drawings: ``percentile = 99.5`` means the drawing is farther
from what the model learned than 99.5 % of the validation drawings ("unlike 99 % of them"). The training and
validation drawings are seen as inputs are: with squares erased from their strokes (:mod:`sketchheal.sketch.erase`)
at ``p`` drawn uniformly from ``[0, p_max]``, so that an incomplete drawing of a known kind still looks typical.

A drawing is **unlike** what the model learned when its percentile reaches :data:`UNLIKE_PERCENTILE` (99).

The calibration is computed once per model (:func:`build_domain`) and saved next to its weights as
``domain.json`` (:data:`DOMAIN_FILE`: the code mean, the precision matrix, the validation quantiles; ~60 KB);
:func:`load_domain` reads it from a release folder (None when there is none).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sketchheal.sketch.erase import erase
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.render import render
from sketchheal.sketch.strokes import polylines_to_stroke3, stroke3_to_polylines
from sketchheal.utils.fileio import atomic_write

__all__ = ["DOMAIN_FILE", "UNLIKE_PERCENTILE", "Domain", "build_domain", "calibrate", "load_domain",
           "encode_codes", "describe"]

DOMAIN_FILE = "domain.json"
UNLIKE_PERCENTILE = 99.0
_QUANTILES = np.linspace(0.0, 100.0, 201)  # every half percent


def encode_codes(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Encoder means ``(B, Nz) float64`` of model images ``(B, N, N)`` in [-1, 1]."""
    device = next(model.parameters()).device
    out = []
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for s in range(0, len(images), max(1, batch_size)):
                x = torch.from_numpy(np.ascontiguousarray(images[s: s + batch_size], np.float32))[:, None]
                out.append(model.encode(x.to(device)).mu.double().cpu().numpy())
    finally:
        model.train(was)
    return np.concatenate(out, 0) if out else np.zeros((0, 0))


@dataclass
class Domain:
    """The calibration of one model (see the module docstring)."""

    categories: list[str]
    mean: np.ndarray  # (Nz,)
    precision: np.ndarray  # (Nz, Nz), inverse of the (regularised) covariance of the training codes
    quantiles: np.ndarray  # (201,) validation distances at percentiles 0, 0.5, ..., 100
    info: dict[str, Any] = field(default_factory=dict)

    def distance(self, codes: np.ndarray) -> np.ndarray:
        """Mahalanobis distances ``(B,)`` of codes ``(B, Nz)``."""
        d = np.asarray(codes, np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("bi,ij,bj->b", d, self.precision, d), 0.0))

    def percentile(self, distance: np.ndarray) -> np.ndarray:
        """Share (in %) of the validation drawings closer to the training codes than ``distance``."""
        return np.interp(np.asarray(distance, np.float64), self.quantiles, _QUANTILES, left=0.0, right=100.0)

    def assess(self, codes: np.ndarray) -> list[dict[str, Any]]:
        """Per code: ``distance``, ``percentile``, ``typical`` (percentile below :data:`UNLIKE_PERCENTILE`) and a
        one-line ``message`` for people."""
        dist = self.distance(codes)
        pct = self.percentile(dist)
        return [{"distance": float(d), "percentile": float(p), "typical": bool(p < UNLIKE_PERCENTILE),
                 "message": describe(float(p), self.categories)} for d, p in zip(dist, pct)]

    def typicality(self, model: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> list[dict[str, Any]]:
        """:meth:`assess` of the codes ``model`` gives the model images ``(B, N, N)``."""
        return self.assess(encode_codes(model, images, batch_size))

    def to_dict(self) -> dict[str, Any]:
        return {"format": "sketchheal-domain-1", "statistic": "mahalanobis distance of the encoder mean",
                "categories": list(self.categories), "unlike_percentile": UNLIKE_PERCENTILE,
                "mean": [float(f"{v:.6g}") for v in self.mean],
                "precision": [[float(f"{v:.6g}") for v in row] for row in self.precision],
                "quantile_percents": [float(q) for q in _QUANTILES],
                "quantiles": [float(f"{v:.6g}") for v in self.quantiles], "info": self.info}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Domain":
        try:
            mean = np.asarray(d["mean"], np.float64)
            prec = np.asarray(d["precision"], np.float64)
            q = np.asarray(d["quantiles"], np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a domain calibration: {e}") from None
        if mean.ndim != 1 or prec.shape != (len(mean), len(mean)) or q.shape != _QUANTILES.shape:
            raise ValueError("not a domain calibration: inconsistent shapes")
        return cls(categories=list(d.get("categories", [])), mean=mean, precision=prec, quantiles=q,
                   info=dict(d.get("info", {})))

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / DOMAIN_FILE
        with atomic_write(path, "w") as f:
            json.dump(self.to_dict(), f, separators=(",", ":"))
        return path


def load_domain(folder: str | os.PathLike | None) -> Domain | None:
    """The calibration saved in a release folder (``domain.json``; for a checkpoint file, the one beside it),
    or None when there is none."""
    if folder is None:
        return None
    path = Path(folder)
    if not path.exists():
        return None
    path = path / DOMAIN_FILE if path.is_dir() else path.with_name(DOMAIN_FILE)  # a checkpoint: its folder
    if not path.is_file():
        return None
    try:
        return Domain.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a domain calibration ({e})") from None


def _kind(categories: Sequence[str]) -> str:
    names = [c.replace("aaron_", "").replace("_", " ") for c in categories]
    if not names:
        return "its training drawings"
    if len(names) == 1:
        return names[0]
    if len(names) <= 3:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return f"{len(names)} kinds of drawings"


def describe(percentile: float, categories: Sequence[str]) -> str:
    """A sentence about a percentile, e.g. "this model learned sheep; your drawing is unlike 99 % of them"."""
    kind = _kind(categories)
    if percentile >= UNLIKE_PERCENTILE:
        share = math.floor(min(percentile, 99.9) * 10) / 10
        share_s = f"{share:.0f}" if share == int(share) else f"{share:.1f}"
        return f"this model learned {kind}; your drawing is unlike {share_s} % of them"
    return (f"this model learned {kind}; your drawing is within their range (more unusual than "
            f"{percentile:.0f} % of them)")


def _views(sketches: Sequence[np.ndarray], size: int, mode: str, rng: np.random.Generator,
           p_max: float) -> np.ndarray:
    images = []
    for s3 in sketches:
        lines = stroke3_to_polylines(s3)
        kept = erase(lines, float(rng.uniform(0.0, p_max)), seed=int(rng.integers(1 << 31))).lines
        try:
            images.append(render(polylines_to_stroke3(kept if kept else lines), size=size, mode=mode))
        except ValueError:
            images.append(render(s3, size=size, mode=mode))
    return np.stack(images)


def build_domain(healer: Any, train: Sequence[np.ndarray], valid: Sequence[np.ndarray], *,
                 categories: Sequence[str] | None = None, seed: int = 0, p_max: float = 0.5,
                 batch_size: int = 64) -> Domain:
    """Calibrate on a model's own drawings: ``train`` (stroke-3 arrays the Gaussian is fitted to) and ``valid``
    (whose distances give the percentiles). ``healer``: a loaded model (``model``, ``image_size``,
    ``render_mode``)."""
    if len(train) < 10 or len(valid) < 10:
        raise ValueError(f"calibration needs at least 10 training and 10 validation drawings, got "
                         f"{len(train)} and {len(valid)}")
    rng = np.random.default_rng(seed)
    size, mode = int(healer.image_size), str(healer.render_mode)
    codes = encode_codes(healer.model, _views(train, size, mode, rng, p_max), batch_size)
    mean = codes.mean(0)
    cov = np.cov(codes, rowvar=False)
    cov += np.eye(len(mean)) * (1e-3 * np.trace(cov) / len(mean))
    precision = np.linalg.inv(cov)
    precision = (precision + precision.T) / 2
    dom = Domain(categories=list(categories if categories is not None else getattr(healer, "categories", [])),
                 mean=mean, precision=precision, quantiles=np.zeros_like(_QUANTILES))
    vcodes = encode_codes(healer.model, _views(valid, size, mode, rng, p_max), batch_size)
    dom.quantiles = np.percentile(dom.distance(vcodes), _QUANTILES)
    dom.info = {"n_train": len(train), "n_valid": len(valid), "seed": seed, "p_max": p_max,
                "erasure": "sketchheal.sketch.erase, p ~ U[0, p_max]", "image_size": size, "render_mode": mode}
    return dom


def calibrate(healer: Any, paths: Sequence[str | os.PathLike] | None = None, *, n_train: int = 2000,
              n_valid: int | None = 1000, seed: int = 0, max_seq_len: int | None = None) -> Domain:
    """:func:`build_domain` on a model's own training data: the ``train`` and ``valid`` splits of ``paths``
    (default: the data paths its release config records, ``extra.data.paths``), at most ``n_train`` /
    ``n_valid`` drawings of each, drawn at random (``seed``)."""
    meta = getattr(healer, "meta", {}) or {}
    data = ((meta.get("extra") or {}).get("data") or (meta.get("config") or {}).get("data") or {})
    paths = list(paths) if paths is not None else list(data.get("paths") or [])
    if not paths:
        raise ValueError("no training data to calibrate on: pass the data paths the model was trained on")
    max_len = max_seq_len or int(getattr(healer, "max_seq_len", 200))
    rng = np.random.default_rng(seed)

    def pick(split: str, n: int | None) -> list[np.ndarray]:
        sk = load_sketches(paths, split=split, max_seq_len=max_len)
        idx = np.arange(len(sk)) if n is None or n >= len(sk) else np.sort(rng.choice(len(sk), n, replace=False))
        return [sk[int(i)] for i in idx]

    dom = build_domain(healer, pick("train", n_train), pick("valid", n_valid), seed=seed)
    dom.info["paths"] = [str(Path(p).name) for p in paths]
    return dom
