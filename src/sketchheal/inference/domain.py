"""How typical a drawing is for the model: is it the kind of drawing the model learned (issue 17, item 4)?

Two statistics, each reported as a percentile over the model's own **validation** drawings:

- the Mahalanobis distance of a drawing's code (the encoder mean ``mu`` of the model's view of it) under a Gaussian
  fitted to the codes of the model's **training** drawings;
- the decoder's negative log-likelihood of the drawing's own pen offsets (nats per point, sketch-rnn's ``L_s``,
  teacher-forced with the drawing's code; the drawing first resized so that its box's longer side is the training
  drawings' median, since the decoder learned their scale; at most ``max_seq_len`` points). A decoder that learned
  sheep finds a bicycle's strokes improbable even where the encoder gives it a sheep-like code. Dense strokes
  (raw QuickDraw, a tablet) are first thinned to the density of the model's own drawings (``Domain.nll_thin``,
  found by :func:`density_thin` at calibration): sampled every pixel, any stroke is a run of tiny, easily
  predicted offsets and would look typical whatever it draws.

The drawing's percentile is the larger of the two: ``percentile = 99.5`` means it is farther from what the model
learned than 99.5 % of the validation drawings by one of them ("unlike 99 % of them"). For the bundled model,
with squares erased at p = 0.3, this flags 50 % of 430 QuickDraw drawings of 43 other categories (the code distance
alone: 20 %), 1.0 % of the 300 test sheep (0.7 %), and of 250 drawings of 10 QuickDraw categories 18 % in their raw
form and 34 % simplified (``benchmarks/bench_domain.py``). A calibration without the decoder statistic (older
``domain.json`` files) uses the code distance alone, one without ``nll_thin`` reads strokes as given. The training
and validation drawings are seen as inputs are: with squares erased from their strokes (:mod:`sketchheal.sketch.erase`)
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

from sketchheal.inference.complete import working_copy
from sketchheal.sketch.erase import erase
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.render import render
from sketchheal.model.mixture import reconstruction_terms
from sketchheal.sketch.strokes import normalize, polylines_to_stroke3, stroke3_to_polylines, thin_polylines, to_stroke5
from sketchheal.utils.fileio import atomic_write

__all__ = ["DOMAIN_FILE", "UNLIKE_PERCENTILE", "Domain", "build_domain", "calibrate", "load_domain",
           "encode_codes", "drawing_nll", "density_thin", "describe"]

DOMAIN_FILE = "domain.json"
UNLIKE_PERCENTILE = 99.0
_QUANTILES = np.linspace(0.0, 100.0, 201)  # every half percent
# Candidate RDP tolerances (fractions of the longer side) for reading drawings at the density of the model's own:
# the largest that leaves the training drawings as they are (see density_thin).
_THIN_GRID = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0]) / 255
_THIN_KEEP = 0.02  # "as they are": RDP removes at most this share of a median training drawing's points


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
    nll_quantiles: np.ndarray | None = None  # (201,) validation decoder NLLs at the same percentiles
    extent: float | None = None  # median longer side of the training drawings' boxes (the decoder's scale)
    nll_thin: float = 0.0  # RDP tolerance (of the longer side) drawings are read at for the NLL (0: as given)

    def distance(self, codes: np.ndarray) -> np.ndarray:
        """Mahalanobis distances ``(B,)`` of codes ``(B, Nz)``."""
        d = np.asarray(codes, np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("bi,ij,bj->b", d, self.precision, d), 0.0))

    def percentile(self, distance: np.ndarray) -> np.ndarray:
        """Share (in %) of the validation drawings closer to the training codes than ``distance``."""
        return np.interp(np.asarray(distance, np.float64), self.quantiles, _QUANTILES, left=0.0, right=100.0)

    def assess(self, codes: np.ndarray, nll: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Per code (and decoder NLL, when given and calibrated; NaN = none): ``distance``, ``nll``,
        ``percentile`` (the larger of the two), ``typical`` (percentile below :data:`UNLIKE_PERCENTILE`) and a
        one-line ``message`` for people."""
        dist = self.distance(codes)
        pct = self.percentile(dist)
        nll = np.full(len(dist), np.nan) if nll is None else np.asarray(nll, np.float64)
        if self.nll_quantiles is not None:
            by_nll = np.interp(nll, self.nll_quantiles, _QUANTILES, left=0.0, right=100.0)
            pct = np.where(np.isfinite(nll), np.maximum(pct, by_nll), pct)
        return [{"distance": float(d), "nll": None if not np.isfinite(n) else float(n), "percentile": float(p),
                 "typical": bool(p < UNLIKE_PERCENTILE), "message": describe(float(p), self.categories)}
                for d, n, p in zip(dist, nll, pct)]

    def nll(self, healer: Any, drawings: Sequence[Sequence[np.ndarray]], codes: np.ndarray,
            batch_size: int = 64) -> np.ndarray | None:
        """The decoder NLL of each drawing (absolute strokes) under its code, or None when this calibration has
        none (see :func:`drawing_nll`)."""
        if self.nll_quantiles is None or self.extent is None:
            return None
        return drawing_nll(healer, drawings, codes, self.extent, batch_size, thin=self.nll_thin)

    def typicality(self, healer: Any, images: np.ndarray, drawings: Sequence[Sequence[np.ndarray]] | None = None,
                   batch_size: int = 64) -> list[dict[str, Any]]:
        """:meth:`assess` of the codes ``healer.model`` gives the model images ``(B, N, N)`` (and of the
        decoder NLL of ``drawings``, one per image, when given)."""
        codes = encode_codes(healer.model, images, batch_size)
        return self.assess(codes, None if drawings is None else self.nll(healer, drawings, codes, batch_size))

    def to_dict(self) -> dict[str, Any]:
        return {"format": "sketchheal-domain-1", "statistic": "mahalanobis distance of the encoder mean",
                "categories": list(self.categories), "unlike_percentile": UNLIKE_PERCENTILE,
                "mean": [float(f"{v:.6g}") for v in self.mean],
                "precision": [[float(f"{v:.6g}") for v in row] for row in self.precision],
                "quantile_percents": [float(q) for q in _QUANTILES],
                "quantiles": [float(f"{v:.6g}") for v in self.quantiles], "info": self.info,
                **({} if self.nll_quantiles is None else {
                    "nll_statistic": "decoder offset NLL per point, teacher-forced with the drawing's code",
                    "nll_quantiles": [float(f"{v:.6g}") for v in self.nll_quantiles],
                    "extent": float(self.extent), "nll_thin": float(f"{self.nll_thin:.6g}")})}

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
        nq, extent, nll_thin = d.get("nll_quantiles"), d.get("extent"), d.get("nll_thin", 0.0)
        if nq is not None:
            try:
                nq, extent, nll_thin = np.asarray(nq, np.float64), float(extent), float(nll_thin)
            except (TypeError, ValueError) as e:
                raise ValueError(f"not a domain calibration: {e}") from None
            if nq.shape != _QUANTILES.shape or not np.isfinite(nq).all() or not extent > 0 \
                    or not 0.0 <= nll_thin < 0.5:
                raise ValueError("not a domain calibration: inconsistent decoder quantiles")
        return cls(categories=list(d.get("categories", [])), mean=mean, precision=prec, quantiles=q,
                   info=dict(d.get("info", {})), nll_quantiles=nq, extent=extent if nq is not None else None,
                   nll_thin=float(nll_thin) if nq is not None else 0.0)

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


def density_thin(lines: Sequence[Sequence[np.ndarray]]) -> float:
    """The largest RDP tolerance of :data:`_THIN_GRID` (a fraction of the longer side) that leaves drawings (lists
    of absolute strokes; a model's training drawings) as they are: it removes at most :data:`_THIN_KEEP` of the
    points of the median drawing. 0 when even the smallest does more.

    The decoder NLL is a statistic of the drawing's density as much as of its shapes: a stroke sampled every pixel
    (raw QuickDraw, a tablet, a finely flattened SVG) is a run of tiny, easily predicted offsets and looks typical
    whatever it draws. Thinned at this tolerance (:func:`drawing_nll`), such a drawing has about the density of the
    model's own drawings, and theirs are unchanged."""
    best = 0.0
    for t in _THIN_GRID:
        removed = [1.0 - sum(map(len, thin_polylines(d, float(t)))) / max(1, sum(map(len, d))) for d in lines]
        if not removed or float(np.median(removed)) > _THIN_KEEP:
            break
        best = float(t)
    return best


def drawing_nll(healer: Any, drawings: Sequence[Sequence[np.ndarray]], codes: np.ndarray, extent: float,
                batch_size: int = 64, thin: float = 0.0) -> np.ndarray:
    """``(B,)`` the decoder's offset NLL per point (nats) of each drawing (absolute strokes), teacher-forced with
    its code ``codes[i]``, read as completion reads it (:func:`~sketchheal.inference.complete.working_copy`: when
    RDP at ``thin`` of its longer side removes a third of its points or more, that thinned copy; 0: as given; see
    :func:`density_thin`) and resized so
    that its box's longer side is ``extent`` (its first ``max_seq_len`` points); NaN for a drawing with no
    extent, or for all when the model has no teacher-forcing interface (``decoder``, ``decoder_inputs``)."""
    model = healer.model
    out = np.full(len(drawings), np.nan)
    if getattr(model, "decoder", None) is None or not hasattr(model, "decoder_inputs"):
        return out
    max_len = int(healer.max_seq_len)
    size = float(getattr(getattr(model, "config", None), "target_size", 0.0))
    rows, s5, lengths = [], [], []
    for i, d in enumerate(drawings):
        lines = working_copy(d, thin)  # a dense drawing thinned, the model's own kind of drawing as given
        pts = np.concatenate(lines, 0) if lines else np.zeros((0, 2))
        longer = float(np.ptp(pts, 0).max()) if len(pts) > 1 else 0.0
        if longer <= 0:
            continue
        s3 = polylines_to_stroke3([x * (extent / longer) for x in lines])[:max_len]
        rows.append(i)
        s5.append(to_stroke5(normalize(s3, healer.scale, size), max_len))
        lengths.append(len(s3))
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for a in range(0, len(rows), max(1, batch_size)):
                b = min(len(rows), a + batch_size)
                strokes = torch.from_numpy(np.stack(s5[a:b])).to(dev)  # (B, L+1, 5)
                z = torch.from_numpy(np.ascontiguousarray(codes[rows[a:b]], np.float32)).to(dev)  # (B, Nz)
                params, _ = model.decoder(model.decoder_inputs(strokes), z)  # (B, L+1, 6M+3)
                for k in range(b - a):
                    n = lengths[a + k]
                    offset, _ = reconstruction_terms(params[k:k + 1], strokes[k:k + 1],
                                                     torch.tensor([n], device=dev))
                    out[rows[a + k]] = float(offset) * strokes.shape[1] / n  # mean over L+1 steps -> per point
    finally:
        model.train(was)
    return out


def _views(sketches: Sequence[np.ndarray], size: int, mode: str, rng: np.random.Generator,
           p_max: float) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """The model images of the drawings with squares erased, and the erased drawings' strokes."""
    images, kept_lines = [], []
    for s3 in sketches:
        lines = stroke3_to_polylines(s3)
        kept = erase(lines, float(rng.uniform(0.0, p_max)), seed=int(rng.integers(1 << 31))).lines
        try:
            images.append(render(polylines_to_stroke3(kept if kept else lines), size=size, mode=mode))
            kept_lines.append(kept if kept else lines)
        except ValueError:
            images.append(render(s3, size=size, mode=mode))
            kept_lines.append(lines)
    return np.stack(images), kept_lines


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
    images, _ = _views(train, size, mode, rng, p_max)
    codes = encode_codes(healer.model, images, batch_size)
    mean = codes.mean(0)
    cov = np.cov(codes, rowvar=False)
    cov += np.eye(len(mean)) * (1e-3 * np.trace(cov) / len(mean))
    precision = np.linalg.inv(cov)
    precision = (precision + precision.T) / 2
    dom = Domain(categories=list(categories if categories is not None else getattr(healer, "categories", [])),
                 mean=mean, precision=precision, quantiles=np.zeros_like(_QUANTILES))
    vimages, vlines = _views(valid, size, mode, rng, p_max)
    vcodes = encode_codes(healer.model, vimages, batch_size)
    dom.quantiles = np.percentile(dom.distance(vcodes), _QUANTILES)
    train_lines = [stroke3_to_polylines(s) for s in train]
    extent = float(np.median([np.ptp(np.concatenate(d), 0).max() for d in train_lines]))
    nll_thin = density_thin(train_lines)
    nll = drawing_nll(healer, vlines, vcodes, extent, batch_size, thin=nll_thin) if extent > 0 \
        else np.full(len(vlines), np.nan)
    if np.isfinite(nll).sum() >= 10:
        dom.nll_quantiles = np.percentile(nll[np.isfinite(nll)], _QUANTILES)
        dom.extent, dom.nll_thin = extent, nll_thin
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
