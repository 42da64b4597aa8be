"""Evaluate sketch-healing models: retrieval top-k and recognition accuracy at fixed, reproducible masks.

Protocol (``docs/evaluation.md`` says it in full and compares it with each published variant):

1. Sketches: the ``split`` of the given category files, filtered to the longest ``max_seq_len`` among the models
   (and then, per model, to that model's ``max_seq_len``), optionally the first ``max_per_category`` of each
   category. Sketch ``i`` of this *evaluation set* is corrupted with row ``i`` of a ``MaskTable`` (seeded, saved as
   ``masks.npy``; or loaded from a file), so the masks are identical for every model and nested across ``p``.
2. Per model and mask level ``p``: the corrupted image (the model's own size and render mode) is encoded; its
   mean code ``mu`` is decoded into the healed sketch (temperature ``temperature``, seeded); the healed sketch is
   rendered again, uncorrupted, and encoded (mean) = the *healed code*.
3. Retrieval: gallery = mean codes of the uncorrupted sketches; query = healed codes ("healed -> originals"), and
   the reverse ("originals -> healed": query = original codes, gallery = healed codes). Top-k = own counterpart
   among the k nearest (Euclidean), plus the published off-by-one "top-10 over the first 9 neighbours".
4. Recognition (>= 2 categories and a classifier): fraction of healed sketches that the classifier assigns to the
   original's category; its accuracy on the uncorrupted sketches is the ceiling.
5. Floor: the same metrics with no healing (query = code of the corrupted image; classifier on the corrupted
   image).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sketchheal.utils.version import __version__
from sketchheal.utils.devices import pick_device
from sketchheal.utils.fileio import atomic_path, atomic_write
from sketchheal.evaluation.metrics import accuracy, rank_summary, target_ranks, topk_from_ranks

KS = (1, 10, 50)
MASK_FILE = "masks.npy"
GRID_COUNT = 8


# ----------------------------------------------------------------------------------------------------------------
# small helpers




def parse_masks(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"0.1,0.3,0.5"`` (or a sequence) -> sorted unique mask probabilities, each in [0, 1]."""
    items = [t for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    try:
        values = sorted({float(v) for v in items})
    except ValueError:
        raise ValueError(f"masks {text!r}: give comma-separated probabilities, e.g. 0.1,0.3,0.5") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"masks {text!r}: each mask probability must lie in [0, 1]")
    return tuple(values)


def mask_label(p: float) -> str:
    """0.3 -> ``"p0.3"`` (folder and key names)."""
    return f"p{p:g}"


def model_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Short unique display names: the folder (or file stem) name; when two coincide, their parent folder's name
    goes in front (``cnn/ckpt_step0001500``), and only names that still coincide are numbered."""
    names = []
    for p in paths:
        path = Path(p)
        base = path.stem if path.suffix in (".pt", ".pth", ".ckpt") or path.is_file() else path.name
        if base in ("ckpt_last", "ckpt_best", "model") and path.parent.name:
            base = f"{path.parent.name}/{base}"
        names.append(base or str(p))
    clashes = {n for n in names if names.count(n) > 1}
    for i, p in enumerate(paths):
        parent = Path(p).parent.name
        if names[i] in clashes and parent and "/" not in names[i]:
            names[i] = f"{parent}/{names[i]}"
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n}#{seen[n]}")
    return out


def _safe(name: str) -> str:
    """A file-name-safe version of a model or category name (spaces kept)."""
    return "".join(c if c.isalnum() or c in " ._-" else "_" for c in name).strip() or "_"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git_commit() -> str | None:
    from sketchheal.utils.paths import repo_root

    root = repo_root()
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, Any]:
    import cv2

    return {"sketchheal": __version__, "git_commit": _git_commit(), "torch": torch.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__, "python": platform.python_version()}


def blank(size: int) -> np.ndarray:
    return np.full((size, size), -1.0, np.float32)


# ----------------------------------------------------------------------------------------------------------------
# the evaluation set and its masks


@dataclass
class EvalSet:
    """The sketches every model is evaluated on, and their masks.

    sketches: the SketchSet (after the length filter and ``max_per_category``); labels (n,) index ``categories``;
    lengths (n,) points per sketch; masks: the MaskTable whose row i corrupts sketch i.
    """

    sketches: Any
    categories: list[str]
    labels: np.ndarray
    lengths: np.ndarray
    masks: Any
    info: dict[str, Any]


def first_per_category(labels: np.ndarray, n: int | None) -> np.ndarray:
    """Indices of the first ``n`` items of each label, in their original order (all when n is None)."""
    labels = np.asarray(labels)
    if n is None:
        return np.arange(len(labels))
    if n < 1:
        raise ValueError(f"max_per_category must be >= 1, got {n}")
    keep = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        keep[np.nonzero(labels == c)[0][:n]] = True
    return np.nonzero(keep)[0]


def build_eval_set(data_paths: Sequence[str | os.PathLike], *, split: str, max_seq_len: int,
                   max_per_category: int | None, seed: int, mask_table: str | os.PathLike | None,
                   out_dir: Path) -> EvalSet:
    """Load the split, keep sketches with <= max_seq_len points and the first max_per_category per category,
    then make (seed) or load (mask_table) the MaskTable and write it to ``out_dir/masks.npy``."""
    from sketchheal.sketch.io import load_sketches
    from sketchheal.sketch.render import MaskTable

    paths = [str(p) for p in data_paths]
    full = load_sketches(paths, split=split, max_seq_len=max_seq_len)
    idx = first_per_category(np.asarray(full.labels), max_per_category)
    sketches = full.subset(idx) if len(idx) != len(full) else full
    if len(sketches) == 0:
        raise ValueError(f"no {split!r} sketches with <= {max_seq_len} points in {paths}")
    labels = np.asarray(sketches.labels, dtype=np.int64)
    lengths = np.asarray(sketches.lengths, dtype=np.int64)
    n = len(sketches)
    out_file = out_dir / MASK_FILE
    if mask_table is not None:
        src = Path(mask_table)
        masks = MaskTable.load(src, n_sketches=n)
        if masks.n_sketches > n:  # keep the rows of this evaluation set
            masks = MaskTable.from_array(np.asarray(masks.table)[:n])
        source = {"loaded_from": str(src), "rows_in_file": int(np.load(src, mmap_mode="r").shape[0])}
        seed_used = None
    else:
        masks = MaskTable(n, seed)
        source = {"generated": True}
        seed_used = seed
    masks.save(out_file)
    categories = list(sketches.categories)
    per_cat = {c: int((labels == i).sum()) for i, c in enumerate(categories)}
    info = {
        "paths": paths, "split": split, "max_seq_len_filter": int(max_seq_len),
        "max_per_category": max_per_category, "n_sketches": n, "n_per_category": per_cat,
        "dropped_by_loader": {k: int(v) for k, v in dict(getattr(full, "dropped", {}) or {}).items()},
        "n_in_split_after_filter": len(full),
        "mask_table": {"file": MASK_FILE, "shape": list(np.asarray(masks.table).shape), "seed": seed_used,
                       "sha256": _sha256(out_file), **source},
    }
    return EvalSet(sketches=sketches, categories=categories, labels=labels, lengths=lengths, masks=masks, info=info)


# ----------------------------------------------------------------------------------------------------------------
# rendering workers


class _InputImages(torch.utils.data.Dataset):
    """Item i = clean image (1,N,N) and corrupted images (P,1,N,N) of sketch ``ids[i]``; with a classifier of
    another size/mode also its clean (1,M,M) and corrupted (P,1,M,M) images; plus erased fractions (P,)."""

    def __init__(self, sketches, ids: np.ndarray, masks, ps: Sequence[float], size: int, mode: str,
                 clf_size: int | None, clf_mode: str | None):
        self.sketches, self.ids, self.masks, self.ps = sketches, ids, masks, list(ps)
        self.size, self.mode, self.clf_size, self.clf_mode = size, mode, clf_size, clf_mode

    def __len__(self) -> int:
        return len(self.ids)

    def _images(self, s3: np.ndarray, u: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray]:
        from sketchheal.sketch.render import corrupt

        clean, corrupted, erased = None, [], []
        for p in self.ps:
            try:
                c = corrupt(s3, u, p, size=size, mode=mode)
            except ValueError:  # a sketch the renderer cannot draw (no ink): blank
                corrupted.append(blank(size))
                erased.append(0.0)
                clean = blank(size) if clean is None else clean
                continue
            clean = c.clean if clean is None else clean
            corrupted.append(c.corrupted)
            erased.append(float(c.erased.mean()) if c.erased.size else 0.0)
        return clean, np.stack(corrupted), np.asarray(erased, np.float32)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sid = int(self.ids[i])
        s3, u = self.sketches[sid], self.masks.uniforms(sid)
        clean, corrupted, erased = self._images(s3, u, self.size, self.mode)
        item = {"clean": torch.from_numpy(clean)[None], "corrupted": torch.from_numpy(corrupted)[:, None],
                "erased": torch.from_numpy(erased)}
        if self.clf_size is not None:
            c_clean, c_corrupted, _ = self._images(s3, u, self.clf_size, self.clf_mode)
            item["clf_clean"] = torch.from_numpy(c_clean)[None]
            item["clf_corrupted"] = torch.from_numpy(c_corrupted)[:, None]
        return item


class _HealedImages(torch.utils.data.Dataset):
    """Item i = healed sketch i (unnormalised stroke-3) rendered uncorrupted at the model's (and the classifier's)
    size and mode: dict ``image (1,N,N)`` [+ ``clf_image (1,M,M)``]."""

    def __init__(self, healed: list[np.ndarray], size: int, mode: str, clf_size: int | None,
                 clf_mode: str | None):
        self.healed, self.size, self.mode, self.clf_size, self.clf_mode = healed, size, mode, clf_size, clf_mode

    def __len__(self) -> int:
        return len(self.healed)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from sketchheal.training.classifier import render_or_blank

        item = {"image": torch.from_numpy(render_or_blank(self.healed[i], self.size, self.mode))[None]}
        if self.clf_size is not None:
            item["clf_image"] = torch.from_numpy(render_or_blank(self.healed[i], self.clf_size, self.clf_mode))[None]
        return item


def _loader(dataset: torch.utils.data.Dataset, batch_size: int, num_workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def _progress(iterable, *, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False)


# ----------------------------------------------------------------------------------------------------------------
# one model


@dataclass
class ModelRun:
    """Everything computed for one model, before the metrics: codes (n, Nz) float32 and predicted labels (n,)."""

    ids: np.ndarray                      # evaluation-set indices of the sketches this model saw
    gallery: np.ndarray                  # codes of the uncorrupted sketches
    corrupted: list[np.ndarray]          # per mask level: codes of the corrupted images (the floor)
    healed: list[np.ndarray]             # per mask level: codes of the re-rendered healed sketches
    erased_fraction: list[float]         # per mask level: mean fraction of patch candidates erased
    healed_points: list[np.ndarray]      # per mask level: points per healed sketch (n,)
    pred_clean: np.ndarray | None        # classifier on the uncorrupted sketches (the ceiling)
    pred_corrupted: list[np.ndarray] | None
    pred_healed: list[np.ndarray] | None
    max_len: int                         # the model's max_seq_len (longest healed sketch it can draw)
    grid: dict[int, list[int]]           # category -> positions (into ids) of the sketches shown in its grid
    healed_grid: list[dict[int, list[np.ndarray]]]  # per mask level: category -> healed stroke-3 of those sketches


def _model_render_mode(healer) -> str:
    """The render mode the model was trained with (``Healer.render_mode``; "reference" when unknown)."""
    return str(getattr(healer, "render_mode", None) or "reference")


def _encode(model, images: torch.Tensor) -> torch.Tensor:
    """Mean codes ``mu (B, Nz)`` (float32, on the model's device) of images (B, 1, N, N)."""
    from sketchheal.inference.sample import encode_images

    return encode_images(model, images, batch_size=max(1, images.shape[0]))


def sample_key(seed: int, p: float, sketch_id: int) -> tuple[int, int, int]:
    """Noise key of one healed sketch: (seed, p in 1/10000, evaluation-set index). A sketch's healed result does not
    depend on the batch size, on the other mask levels or on the other models."""
    return (int(seed), int(round(p * 10_000)), int(sketch_id))


@dataclass
class _Setup:
    """How one model (and the classifier) see the sketches."""

    healer: Any
    size: int
    mode: str
    clf: Any
    clf_separate: bool  # the classifier needs its own renderings (other size or render mode)

    @property
    def clf_size(self) -> int | None:
        return self.clf.image_size if self.clf_separate else None

    @property
    def clf_mode(self) -> str | None:
        return self.clf.render_mode if self.clf_separate else None


def _heal_stage(st: _Setup, ev: EvalSet, ids: np.ndarray, ps: Sequence[float], *, temperature: float,
                greedy: bool, seed: int, batch_size: int, num_workers: int, progress: bool, desc: str,
                candidates: int = 1) -> dict:
    """Stage 1 over sketches ``ids``: gallery codes, corrupted codes, healed sketches (unnormalised stroke-3),
    erased fractions and the classifier's labels for the clean and corrupted images."""
    from sketchheal.inference.candidates import best_of
    from sketchheal.training.classifier import classify

    model, healer = st.healer.model, st.healer
    out: dict[str, Any] = {"gallery": [], "corrupted": [[] for _ in ps], "healed": [[] for _ in ps],
                           "erased": [[] for _ in ps], "pred_clean": [], "pred_corrupted": [[] for _ in ps]}
    clean_key, corrupted_key = ("clf_clean", "clf_corrupted") if st.clf_separate else ("clean", "corrupted")
    data = _InputImages(ev.sketches, ids, ev.masks, ps, st.size, st.mode, st.clf_size, st.clf_mode)
    loader = _loader(data, batch_size, num_workers)
    pos = 0
    for batch in _progress(loader, total=len(loader), desc=f"{desc}: heal", enabled=progress):
        batch_ids = ids[pos:pos + batch["clean"].shape[0]].tolist()
        pos += len(batch_ids)
        out["gallery"].append(_encode(model, batch["clean"]).cpu())
        if st.clf is not None:
            out["pred_clean"].append(classify(st.clf, batch[clean_key])[0])
        for j, p in enumerate(ps):
            mu = _encode(model, batch["corrupted"][:, j])
            out["corrupted"][j].append(mu.cpu())
            out["erased"][j].append(batch["erased"][:, j].numpy())
            # candidates > 1: the best of several by agreement with the corrupted input (never the original)
            strokes, _ = best_of(model, mu, batch["corrupted"][:, j, 0].numpy(),
                                 [sample_key(seed, p, sid) for sid in batch_ids], candidates=candidates,
                                 scale=float(healer.scale), size=st.size, mode=st.mode,
                                 max_len=int(healer.max_seq_len), temperature=temperature, greedy=greedy)
            out["healed"][j] += [_denormalise(s, float(healer.scale)) for s in strokes]
            if st.clf is not None:
                out["pred_corrupted"][j].append(classify(st.clf, batch[corrupted_key][:, j])[0])
    return out


def _denormalise(s3: np.ndarray, scale: float) -> np.ndarray:
    s = np.asarray(s3, dtype=np.float32).copy()
    s[:, :2] *= scale
    return s


def _reencode_stage(st: _Setup, healed: list[np.ndarray], *, batch_size: int, num_workers: int, progress: bool,
                    desc: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Stage 2: render the healed sketches uncorrupted (the model's size and mode) and encode them -> codes (n, Nz);
    with a classifier also its labels (n,) for them."""
    from sketchheal.training.classifier import classify

    data = _HealedImages(healed, st.size, st.mode, st.clf_size, st.clf_mode)
    loader = _loader(data, batch_size, num_workers)
    codes, preds = [], []
    for batch in _progress(loader, total=len(loader), desc=desc, enabled=progress):
        codes.append(_encode(st.healer.model, batch["image"]).cpu())
        if st.clf is not None:
            preds.append(classify(st.clf, batch["clf_image" if st.clf_separate else "image"])[0])
    return torch.cat(codes).numpy(), (np.concatenate(preds) if st.clf is not None else None)


def run_model(healer, ev: EvalSet, ps: Sequence[float], *, clf=None, temperature: float, greedy: bool, seed: int,
              candidates: int = 1,
              batch_size: int, num_workers: int, grid_count: int, progress: bool, desc: str) -> ModelRun:
    """Encode, heal (decode from the corrupted input's mean code), re-render and re-encode every sketch of the
    evaluation set that fits the model's max_seq_len."""
    healer.model.eval()
    size, mode = int(healer.image_size), _model_render_mode(healer)
    st = _Setup(healer=healer, size=size, mode=mode, clf=clf,
                clf_separate=clf is not None and (clf.image_size != size or clf.render_mode != mode))
    ids = np.nonzero(ev.lengths <= int(healer.max_seq_len))[0]
    s1 = _heal_stage(st, ev, ids, ps, temperature=temperature, greedy=greedy, seed=seed, candidates=candidates,
                     batch_size=batch_size,
                     num_workers=num_workers, progress=progress, desc=desc)
    healed_codes, pred_healed = [], []
    for j, p in enumerate(ps):
        codes, preds = _reencode_stage(st, s1["healed"][j], batch_size=batch_size, num_workers=num_workers,
                                       progress=progress, desc=f"{desc}: re-encode {mask_label(p)}")
        healed_codes.append(codes)
        pred_healed.append(preds)
    with_clf = clf is not None
    grid = {int(c): np.nonzero(ev.labels[ids] == c)[0][:grid_count].tolist() for c in np.unique(ev.labels[ids])}
    return ModelRun(
        ids=ids,
        gallery=torch.cat(s1["gallery"]).numpy(),
        corrupted=[torch.cat(c).numpy() for c in s1["corrupted"]],
        healed=healed_codes,
        erased_fraction=[float(np.concatenate(e).mean()) for e in s1["erased"]],
        healed_points=[np.array([len(s) for s in h], np.int64) for h in s1["healed"]],
        pred_clean=np.concatenate(s1["pred_clean"]) if with_clf else None,
        pred_corrupted=[np.concatenate(p) for p in s1["pred_corrupted"]] if with_clf else None,
        pred_healed=pred_healed if with_clf else None,
        max_len=int(healer.max_seq_len),
        grid=grid,
        healed_grid=[{c: [h[k] for k in pos] for c, pos in grid.items()} for h in s1["healed"]],
    )


@torch.no_grad()
def decoder_check(healer, sketches, ids: np.ndarray, codes: np.ndarray, *, batch_size: int = 100
                  ) -> dict[str, Any] | None:
    """Does the decoder read the code?  Teacher-forced on the uncorrupted sketches ``ids`` with their own codes
    ``codes (n, Nz)`` (encoder means of the clean images) and again with each sketch given the code of the sketch
    before it (a fixed derangement).

    A decoder that ignores z predicts both equally well (``code_gain`` ~ 0); one that reconstructs its input is
    much worse with another sketch's code. Also the pen states the near-greedy sampler will pick (argmax): the
    share of true pen lifts and of true sketch ends (the first end token) predicted as such with the own code.
    Returns None for models without the package's teacher-forcing interface, or with fewer than 2 sketches.
    """
    from sketchheal.model.mixture import bivariate_normal_log_prob, split_params
    from sketchheal.sketch.strokes import normalize, to_stroke5

    model = healer.model
    decoder = getattr(model, "decoder", None)
    if decoder is None or not hasattr(model, "decoder_inputs") or len(ids) < 2:
        return None
    dev = next(model.parameters()).device
    n, max_len = len(ids), int(healer.max_seq_len)
    other = np.roll(np.arange(n), 1)  # sketch i reads the code of sketch i - 1
    nll = {"own": 0.0, "other": 0.0}
    pen_nll = {"own": 0.0, "other": 0.0}
    points = steps = lifts = lifts_hit = ends_hit = 0
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(n, start + batch_size))
        s3s = [np.asarray(sketches[int(ids[r])], np.float32) for r in rows]
        size = float(getattr(getattr(model, "config", None), "target_size", 0.0))  # the targets as trained
        strokes = torch.from_numpy(np.stack([to_stroke5(normalize(s, healer.scale, size), max_len)
                                             for s in s3s])).to(dev)
        lengths = torch.tensor([len(s) for s in s3s], device=dev)  # (B,)
        inputs = model.decoder_inputs(strokes)  # (B, L+1, 5)
        real = torch.arange(strokes.shape[1], device=dev)[None] < lengths[:, None]  # (B, L+1) rows that are points
        target_pen = strokes[..., 2:].argmax(-1)  # (B, L+1): 0 down, 1 lifted, 2 end
        for which, code_rows in (("own", rows), ("other", other[rows])):
            z = torch.from_numpy(np.ascontiguousarray(codes[code_rows], dtype=np.float32)).to(dev)
            params, _ = decoder(inputs, z)  # (B, L+1, 6M+3)
            logits_pi, mu_x, mu_y, log_sx, log_sy, rho, pen_logits = split_params(params.float())
            log_n = bivariate_normal_log_prob(strokes[..., 0:1], strokes[..., 1:2], mu_x, mu_y, log_sx, log_sy, rho)
            log_mix = torch.logsumexp(torch.log_softmax(logits_pi, -1) + log_n, -1)  # (B, L+1), mixture eq. 9
            nll[which] += float(-(log_mix * real).sum())
            pen_nll[which] += float(-(torch.log_softmax(pen_logits, -1) * strokes[..., 2:]).sum())
            if which == "own":
                picked = pen_logits.argmax(-1)  # (B, L+1)
                lifted = (target_pen == 1) & real
                lifts += int(lifted.sum())
                lifts_hit += int(((picked == 1) & lifted).sum())
                ends_hit += int((picked[torch.arange(len(rows), device=dev), lengths] == 2).sum())
        points += int(lengths.sum())
        steps += strokes.shape[0] * strokes.shape[1]
    own, oth = nll["own"] / points, nll["other"] / points
    return {
        "n": n,
        "offset_nll_own": own, "offset_nll_other": oth, "code_gain": oth - own,
        "pen_nll_own": pen_nll["own"] / steps, "pen_nll_other": pen_nll["other"] / steps,
        "lift_recall": lifts_hit / max(1, lifts), "end_recall": ends_hit / n,
        "note": "teacher forcing on the uncorrupted sketches; nll in nats per point (offsets) and per step (pen); "
                "other = each sketch given the code of another; recalls: argmax pen state with the own code",
    }


def _rotated(s3: np.ndarray, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    out = np.array(s3, np.float32, copy=True)
    out[:, :2] = (np.asarray(s3, np.float64)[:, :2] @ np.array([[np.cos(a), np.sin(a)],
                                                                [-np.sin(a), np.cos(a)]])).astype(np.float32)
    return out


def _stretched(s3: np.ndarray, axis: int, factor: float) -> np.ndarray:
    out = np.array(s3, np.float32, copy=True)
    out[:, axis] *= np.float32(factor)
    return out


def _wobbled(s3: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    from sketchheal.sketch.strokes import longer_side

    out = np.array(s3, np.float32, copy=True)
    out[:, :2] += rng.normal(0.0, sigma * longer_side(s3), out[:, :2].shape).astype(np.float32)
    return out


# Small deformations a person would not call another drawing; each sketch draws its own sign / axis from the seed.
STABILITY_TESTS: tuple[tuple[str, Any], ...] = (
    ("rotated 5 deg", lambda s, rng: _rotated(s, 5.0 * rng.choice([-1.0, 1.0]))),
    ("rotated 10 deg", lambda s, rng: _rotated(s, 10.0 * rng.choice([-1.0, 1.0]))),
    ("one axis x 0.9", lambda s, rng: _stretched(s, int(rng.integers(2)), 0.9)),
    ("one axis x 0.8", lambda s, rng: _stretched(s, int(rng.integers(2)), 0.8)),
    ("wobble 1 %", lambda s, rng: _wobbled(s, rng, 0.01)),
    ("wobble 2 %", lambda s, rng: _wobbled(s, rng, 0.02)),
)


@torch.no_grad()
def code_stability(healer, sketches, ids: np.ndarray, gallery: np.ndarray, *, seed: int = 0,
                   tests: Sequence[tuple[str, Any]] = STABILITY_TESTS, batch_size: int = 100,
                   device: torch.device | None = None) -> list[dict[str, Any]]:
    """How far do small deformations move a sketch's code?  For each test: every uncorrupted sketch ``ids`` is
    deformed (rotated by +-5 or +-10 degrees, one axis shrunk to 0.9 or 0.8, or every offset wobbled by Gaussian
    noise of 1 or 2 % of its longer side), rendered as the model sees its inputs and encoded; the deformed code
    then retrieves its own original among the ``gallery`` codes (the encoder means of the uncorrupted sketches).

    A healed sketch is never exact, so this is the yardstick behind healed retrieval: a representation that a
    5-degree rotation already moves past other sketches cannot retrieve the original from a good but imperfect
    healing either. Each sketch's deformation comes from ``(seed, test, sketch index)``. Returns one dict per test:
    ``name``, ``top1``, ``top10``, ``top50``, ``mean_rank``.
    """
    from sketchheal.training.classifier import render_or_blank

    size, mode = int(healer.image_size), _model_render_mode(healer)
    metric_device = device or torch.device("cpu")
    out = []
    for t, (name, fn) in enumerate(tests):
        images = np.stack([render_or_blank(fn(np.asarray(sketches[int(i)], np.float32),
                                              np.random.default_rng([int(seed), t, int(i)])), size, mode)
                           for i in ids])
        codes = np.concatenate([_encode(healer.model, torch.from_numpy(images[a:a + batch_size])[:, None]).cpu()
                                .numpy() for a in range(0, len(images), batch_size)])
        ranks, _ = target_ranks(codes, gallery, np.arange(len(codes)), device=metric_device)
        top = topk_from_ranks(ranks, KS)
        out.append({"name": name, **{f"top{k}": top[f"top{k}"] for k in KS},
                    "mean_rank": float(rank_summary(ranks)["mean_rank"])})
    return out


# ----------------------------------------------------------------------------------------------------------------
# metrics of one model


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
    for j, p in enumerate(ps):
        h_q, h_cat = _retrieval(run.healed[j], run.gallery, labels, n_cat, device)
        h_r, _ = _retrieval(run.gallery, run.healed[j], labels, n_cat, device)
        f_q, f_cat = _retrieval(run.corrupted[j], run.gallery, labels, n_cat, device)
        f_r, _ = _retrieval(run.gallery, run.corrupted[j], labels, n_cat, device)
        h_acc = f_acc = None
        h_acc_cat: dict[int, float] = {}
        f_acc_cat: dict[int, float] = {}
        if y is not None:
            h_acc = accuracy(run.pred_healed[j], y)
            f_acc = accuracy(run.pred_corrupted[j], y)
            h_acc_cat = {c: accuracy(run.pred_healed[j][labels == c], y[labels == c]) for c in h_cat}
            f_acc_cat = {c: accuracy(run.pred_corrupted[j][labels == c], y[labels == c]) for c in f_cat}
        points = run.healed_points[j]
        rows.append({
            "mask": p,
            "erased_fraction": run.erased_fraction[j],
            "healed": {"healed_to_original": h_q, "original_to_healed": h_r, "accuracy": h_acc},
            "no_healing": {"corrupted_to_original": f_q, "original_to_corrupted": f_r, "accuracy": f_acc},
            "healed_sketches": {"empty": int((points == 0).sum()), "mean_points": float(points.mean()),
                                "hit_max_len": int((points >= run.max_len).sum())},
        })
        for c in h_cat:
            per_category[ev.categories[c]][mask_label(p)] = {
                "n": h_cat[c]["n"],
                "healed": {**{k: v for k, v in h_cat[c].items() if k != "n"}, "accuracy": h_acc_cat.get(c)},
                "no_healing": {**{k: v for k, v in f_cat[c].items() if k != "n"}, "accuracy": f_acc_cat.get(c)},
            }
    ceiling_info = {"accuracy": ceiling, "per_category": ceiling_cat}
    return rows, per_category, ceiling_info


# ----------------------------------------------------------------------------------------------------------------
# outputs


def _pct(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.2f}"


def results_markdown(results: dict[str, Any]) -> str:
    """The side-by-side table(s) of ``results.json`` as markdown (percentages)."""
    s = results["settings"]
    d = results["data"]
    lines = [
        "# Sketch-healing evaluation",
        "",
        f"Split `{d['split']}` of {len(d['n_per_category'])} categor{'y' if len(d['n_per_category']) == 1 else 'ies'}"
        f", {d['n_sketches']} sketches (<= {d['max_seq_len_filter']} points"
        + (f", first {d['max_per_category']} per category" if d["max_per_category"] else "") + "). "
        f"Masks: {', '.join(f'{p:g}' for p in s['masks'])} (patch candidates erased with probability p; fixed table "
        f"`{d['mask_table']['file']}`, nested across p). Healing: z = encoder mean of the corrupted image, "
        f"temperature {s['temperature']:g}{' (greedy)' if s['greedy'] else ''}, seed {s['seed']}"
        + (f"; best of {s['candidates']} candidates by ink agreement with the corrupted input"
           if s.get("candidates", 1) > 1 else "") + ".",
        "",
        "All numbers are percentages. **top-k**: the query's own counterpart is among its k nearest codes "
        "(Euclidean, encoder means). **top-10 (pub.)**: the published scripts' off-by-one top-10, which looks at "
        "the first 9 neighbours only. **acc**: recognition accuracy of the Sketch-a-Net classifier. "
        "**floor**: the same metric for the corrupted input without healing.",
        "",
    ]
    for m in results["models"]:
        ceiling = m.get("classifier_ceiling", {}).get("accuracy")
        lines.append(f"- `{m['name']}`: {m['n_evaluated']} sketches evaluated ({m['n_excluded_too_long']} longer than "
                     f"its max_seq_len {m['max_seq_len']} left out); image {m['image_size']} px, render "
                     f"`{m['render_mode']}`; chance top-1/10/50 = {_pct(1 / max(1, m['n_evaluated']))}/"
                     f"{_pct(min(1, 10 / max(1, m['n_evaluated'])))}/{_pct(min(1, 50 / max(1, m['n_evaluated'])))}"
                     + (f"; classifier on uncorrupted sketches (ceiling): {_pct(ceiling)}" if ceiling is not None
                        else ""))
    if results.get("classifier") is None:
        lines.append(f"- recognition accuracy: not computed ({results.get('accuracy_note', 'no classifier given')})")
    lines += ["", "## Healed -> originals (query: re-encoded healed sketch; gallery: uncorrupted sketches)", "",
              "| mask | model | top-1 | top-10 | top-50 | top-10 (pub.) | acc | floor top-1 | floor top-10 | "
              "floor top-50 | floor top-10 (pub.) | floor acc |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in s["masks"]:
        for m in results["models"]:
            r = _row(m, p)
            h, f = r["healed"]["healed_to_original"], r["no_healing"]["corrupted_to_original"]
            lines.append(f"| {p:g} | {m['name']} | {_pct(h['top1'])} | {_pct(h['top10'])} | {_pct(h['top50'])} | "
                         f"{_pct(h['top10_published'])} | {_pct(r['healed']['accuracy'])} | {_pct(f['top1'])} | "
                         f"{_pct(f['top10'])} | {_pct(f['top50'])} | {_pct(f['top10_published'])} | "
                         f"{_pct(r['no_healing']['accuracy'])} |")
    lines += ["", "## Originals -> healed (query: uncorrupted sketch; gallery: re-encoded healed sketches)", "",
              "| mask | model | top-1 | top-10 | top-50 | top-10 (pub.) | floor top-1 | floor top-10 | floor top-50 | "
              "floor top-10 (pub.) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in s["masks"]:
        for m in results["models"]:
            r = _row(m, p)
            h, f = r["healed"]["original_to_healed"], r["no_healing"]["original_to_corrupted"]
            lines.append(f"| {p:g} | {m['name']} | {_pct(h['top1'])} | {_pct(h['top10'])} | {_pct(h['top50'])} | "
                         f"{_pct(h['top10_published'])} | {_pct(f['top1'])} | {_pct(f['top10'])} | "
                         f"{_pct(f['top50'])} | {_pct(f['top10_published'])} |")
    lines += ["", "Erased fraction of patch candidates and healed-sketch statistics:", "",
              "| mask | model | erased | empty healed | mean points |", "|---|---|---|---|---|"]
    for p in s["masks"]:
        for m in results["models"]:
            r = _row(m, p)
            lines.append(f"| {p:g} | {m['name']} | {_pct(r['erased_fraction'])} | {r['healed_sketches']['empty']} | "
                         f"{r['healed_sketches']['mean_points']:.1f} |")
    checks = [(m["name"], m.get("decoder_check")) for m in results["models"] if m.get("decoder_check")]
    if checks:
        lines += ["", "Does the decoder read the code? Teacher forcing on the uncorrupted sketches: offset NLL "
                      "(nats per point) with each sketch's own code and with another sketch's code, and the share of "
                      "true pen lifts / sketch ends that the near-greedy sampler would draw (argmax pen state). "
                      "A code gain near 0 means healing cannot follow its input.", "",
                  "| model | offset NLL, own code | offset NLL, other code | code gain | pen lifts drawn | "
                  "ends drawn |", "|---|---|---|---|---|---|"]
        for name, c in checks:
            lines.append(f"| {name} | {c['offset_nll_own']:.3f} | {c['offset_nll_other']:.3f} | "
                         f"{c['code_gain']:.3f} | {_pct(c['lift_recall'])} | {_pct(c['end_recall'])} |")
    stab = [(m["name"], m.get("code_stability")) for m in results["models"] if m.get("code_stability")]
    if stab:
        names = [t["name"] for t in stab[0][1]]
        lines += ["", "How stable are the codes? Each uncorrupted sketch slightly deformed (rotated, one axis "
                      "shrunk, its offsets wobbled), re-rendered and encoded, retrieving its own original: top-1 / "
                      "top-10. A healed sketch is never exact; codes that such small changes already move cannot "
                      "find the original from a good healing either.", "",
                  "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for name, tests in stab:
            lines.append(f"| {name} | " + " | ".join(f"{_pct(t['top1'])} / {_pct(t['top10'])}" for t in tests)
                         + " |")
    lines += ["", "These numbers follow the protocol of `docs/evaluation.md`; numbers from papers with other "
                  "protocols (patch size, mask order, random source, top-k definition, classifier) are not "
                  "directly comparable.", ""]
    return "\n".join(lines)


def _row(model_entry: dict[str, Any], p: float) -> dict[str, Any]:
    return next(r for r in model_entry["results"] if r["mask"] == p)


def per_category_markdown(results: dict[str, Any], per_category: dict[str, Any]) -> str:
    """Per category: healed top-1 / top-10 / acc and the floor, one table per model."""
    lines = ["# Per-category results", "", "Percentages; healed -> originals retrieval within the whole gallery, "
             "grouped by the query's category. floor = no healing.", ""]
    for m in results["models"]:
        lines += [f"## {m['name']}", "", "| category | n | mask | top-1 | top-10 | top-50 | top-10 (pub.) | acc | "
                  "floor top-1 | floor top-10 | floor acc | ceiling acc |", "|---|---|---|---|---|---|---|---|---|---|"
                  "---|---|"]
        ceiling = m.get("classifier_ceiling", {}).get("per_category", {})
        for cat, by_mask in per_category[m["name"]].items():
            for p in results["settings"]["masks"]:
                e = by_mask.get(mask_label(p))
                if e is None:
                    continue
                h, f = e["healed"], e["no_healing"]
                lines.append(f"| {cat} | {e['n']} | {p:g} | {_pct(h['top1'])} | {_pct(h['top10'])} | "
                             f"{_pct(h['top50'])} | {_pct(h['top10_published'])} | {_pct(h['accuracy'])} | "
                             f"{_pct(f['top1'])} | {_pct(f['top10'])} | {_pct(f['accuracy'])} | "
                             f"{_pct(ceiling.get(cat))} |")
        lines.append("")
    return "\n".join(lines)


def grid_image(corrupted: list[np.ndarray], healed: list[np.ndarray], clean: list[np.ndarray],
               pad: int = 2) -> np.ndarray:
    """Rows corrupted | healed | original, one column per sketch (each (N, N) in [-1, 1]) -> uint8 image,
    black ink on white, grey separators."""
    if not clean:
        raise ValueError("no sketches for the grid")
    n = clean[0].shape[0]
    cols = len(clean)
    h, w = 3 * n + 4 * pad, cols * n + (cols + 1) * pad
    out = np.full((h, w), 160, np.uint8)
    for r, row in enumerate((corrupted, healed, clean)):
        for c, img in enumerate(row):
            y, x = pad + r * (n + pad), pad + c * (n + pad)
            out[y:y + n, x:x + n] = np.clip((1 - (img + 1) / 2) * 255, 0, 255).astype(np.uint8)
    return out


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 (H, W) image as PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def write_grids(out_dir: Path, name: str, run: ModelRun, ev: EvalSet, ps: Sequence[float], mode: str,
                size: int = 128) -> list[str]:
    """One PNG per category and mask level, ``grids/<model>/<p>/<category>.png``: rows corrupted | healed |
    original, drawn at ``size`` px with the model's render mode and the same masks. Returns the relative paths."""
    from sketchheal.training.classifier import render_or_blank
    from sketchheal.sketch.render import corrupt

    written = []
    for c, positions in sorted(run.grid.items()):
        sids = [int(run.ids[k]) for k in positions]
        clean = [render_or_blank(ev.sketches[sid], size, mode) for sid in sids]
        for j, p in enumerate(ps):
            corrupted = []
            for sid, img in zip(sids, clean):
                try:
                    corrupted.append(corrupt(ev.sketches[sid], ev.masks.uniforms(sid), p, size=size,
                                             mode=mode).corrupted)
                except ValueError:
                    corrupted.append(img)
            healed = [render_or_blank(s, size, mode) for s in run.healed_grid[j][c]]
            rel = Path("grids") / _safe(name) / mask_label(p) / f"{_safe(ev.categories[c])}.png"
            write_png(out_dir / rel, grid_image(corrupted, healed, clean))
            written.append(str(rel))
    return written


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, allow_nan=True)
        f.write("\n")


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


# ----------------------------------------------------------------------------------------------------------------
# the entry point


def evaluate(
    model_paths: Sequence[str | os.PathLike],
    data_paths: Sequence[str | os.PathLike],
    *,
    split: str = "test",
    masks: Sequence[float] = (0.1, 0.3, 0.5),
    temperature: float = 0.01,
    greedy: bool = False,
    seed: int = 0,
    candidates: int = 1,
    out_dir: str | os.PathLike,
    classifier: str | os.PathLike | Any | None = None,
    max_per_category: int | None = None,
    batch_size: int = 100,
    device: str | torch.device | None = None,
    mask_table: str | os.PathLike | None = None,
    num_workers: int | None = None,
    grid_count: int = GRID_COUNT,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate one or more healing models side by side (see the module docstring for the protocol).

    model_paths: release directories or training checkpoints (anything ``sketchheal.inference.heal.load_model`` reads).
    data_paths: one category per file (.npz with splits, or .ndjson). masks: erase probabilities p.
    mask_table: a ``masks.npy`` from an earlier evaluation (rows >= number of evaluated sketches) to reuse its
    exact masks; otherwise ``MaskTable(n, seed)``. classifier: a ``train-classifier`` output (file or folder) or
    a loaded ``sketchheal.training.classifier.Classifier``.
    num_workers: DataLoader workers that render (None: up to 8, one less than the CPU count).
    Writes into ``out_dir``: masks.npy, results.json, results.md, per_category.json, per_category.md and
    grids/<model>/<p>/<category>.png. Returns the content of results.json.
    """
    from sketchheal.inference.heal import load_model

    started = time.time()
    if not model_paths:
        raise ValueError("give at least one model (--checkpoint PATH)")
    if not data_paths:
        raise ValueError("give at least one data file (--data PATH ...)")
    if temperature <= 0 and not greedy:
        raise ValueError(f"temperature must be > 0 (or use greedy decoding), got {temperature}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if candidates < 1 or (greedy and candidates > 1):
        raise ValueError(f"candidates must be >= 1 (and 1 with greedy decoding), got {candidates}")
    ps = parse_masks(masks)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    if num_workers is None:
        num_workers = min(8, max(0, (os.cpu_count() or 1) - 1))

    healers = [load_model(str(p), device=dev) for p in model_paths]
    names = model_names(model_paths)
    ev = build_eval_set(data_paths, split=split, max_seq_len=max(int(h.max_seq_len) for h in healers),
                        max_per_category=max_per_category, seed=seed, mask_table=mask_table, out_dir=out)

    clf, clf_labels, accuracy_note = None, None, None
    if classifier is not None and len(ev.categories) < 2:
        accuracy_note = "recognition accuracy needs at least 2 categories; the data has 1"
    elif classifier is not None:
        from sketchheal.training.classifier import Classifier, load_classifier, map_labels

        clf = classifier if isinstance(classifier, Classifier) else load_classifier(classifier, device=dev)
        clf_labels = map_labels(ev.categories, ev.labels, clf.categories)
    else:
        accuracy_note = "no classifier given (--classifier)"

    models, per_category = [], {}
    for name, path, healer in zip(names, model_paths, healers):
        run = run_model(healer, ev, ps, clf=clf, temperature=temperature, greedy=greedy, seed=seed,
                        candidates=candidates,
                        batch_size=batch_size, num_workers=num_workers, grid_count=grid_count, progress=progress,
                        desc=name)
        # float64 distances: CUDA or CPU (MPS has no float64)
        metric_device = dev if dev.type == "cuda" else torch.device("cpu")
        rows, cats, ceiling = model_metrics(run, ev, ps, clf_labels, metric_device)
        check = decoder_check(healer, ev.sketches, run.ids, run.gallery, batch_size=batch_size)
        stability = code_stability(healer, ev.sketches, run.ids, run.gallery, seed=seed, batch_size=batch_size,
                                   device=metric_device)
        size, mode = int(healer.image_size), _model_render_mode(healer)
        grids = write_grids(out, name, run, ev, ps, mode, size=max(128, size))
        kept = ev.labels[run.ids]
        models.append({
            "name": name, "path": str(path), "max_seq_len": int(healer.max_seq_len), "image_size": size,
            "render_mode": mode, "scale": float(healer.scale),
            "model_config": dataclasses.asdict(healer.model.config) if dataclasses.is_dataclass(
                getattr(healer.model, "config", None)) else None,
            "training_step": (getattr(healer, "meta", None) or {}).get("step"),
            "categories": list(getattr(healer, "categories", []) or []),
            "n_evaluated": int(len(run.ids)), "n_excluded_too_long": int(len(ev.labels) - len(run.ids)),
            "n_per_category": {ev.categories[c]: int((kept == c).sum()) for c in range(len(ev.categories))},
            "classifier_ceiling": ceiling, "results": rows, "grids": grids, "decoder_check": check,
            "code_stability": stability,
        })
        per_category[name] = cats

    results = {
        "settings": {"masks": list(ps), "temperature": temperature, "greedy": greedy, "seed": seed,
                     "candidates": candidates,
                     "latent": "encoder mean (mu) of the corrupted image", "batch_size": batch_size,
                     "device": str(dev), "ks": list(KS), "distance": "euclidean",
                     "ties": "stable: equal distances go to the lower gallery index",
                     "top10_published": "first 9 neighbours (off-by-one of the published scripts)",
                     "top50_published": "first 49 neighbours", "grid_count": grid_count},
        "data": {**ev.info, "categories": ev.categories},
        "classifier": None if clf is None else {
            "path": clf.meta.get("path", str(classifier)), "categories": clf.categories, "image_size": clf.image_size,
            "render_mode": clf.render_mode, "own_test_accuracy": clf.meta.get("test_accuracy"),
            "own_test_note": clf.meta.get("test_note")},
        "accuracy_note": accuracy_note,
        "models": models,
        "versions": versions(),
        "elapsed_s": round(time.time() - started, 1),
        "command": " ".join(sys.argv) if sys.argv else None,
        "files": {"results": "results.json", "table": "results.md", "per_category": "per_category.json",
                  "per_category_table": "per_category.md", "masks": MASK_FILE},
    }
    _write_json(out / "per_category.json", per_category)
    _write_text(out / "per_category.md", per_category_markdown(results, per_category))
    _write_text(out / "results.md", results_markdown(results))
    _write_json(out / "results.json", results)
    return results


# ----------------------------------------------------------------------------------------------------------------
# CLI


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="retrieval top-k and recognition accuracy of healing models at fixed masks",
        description="Evaluate one or more healing models side by side on the test split: retrieval (healed -> "
                    "originals and back; correct top-k and the published off-by-one top-10), recognition "
                    "accuracy with a Sketch-a-Net classifier, and the no-healing floor. See docs/evaluation.md.",
    )
    p.add_argument("--checkpoint", action="append", required=True, metavar="PATH",
                   help="release directory or training checkpoint; repeat for a side-by-side table")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="one .npz/.ndjson file per category")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--masks", default="0.1,0.3,0.5", help="erase probabilities (default 0.1,0.3,0.5)")
    p.add_argument("--temperature", type=float, default=0.01, help="sampling temperature (default 0.01)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--candidates", type=int, default=1, metavar="K",
                   help="heal K candidates per sketch and keep the one that agrees best with the ink of the "
                        "corrupted input (default 1 = the published protocol)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask table and the sampling (default 0)")
    p.add_argument("--classifier", default=None, help="output of `sketchheal train-classifier` (file or folder)")
    p.add_argument("--max-per-category", type=int, default=None, help="first N test sketches of each category")
    p.add_argument("--mask-table", default=None, help="masks.npy of an earlier evaluation: reuse its exact masks")
    p.add_argument("--batch-size", type=int, default=100, help="sketches per batch (default 100)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--workers", type=int, default=None, help="rendering workers (default: CPU count - 1, max 8)")
    p.add_argument("--grid-count", type=int, default=GRID_COUNT, help="sketches per category grid (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli_evaluate)


def _cli_evaluate(args: argparse.Namespace) -> int:
    evaluate(args.checkpoint, args.data, split=args.split, masks=parse_masks(args.masks),
             temperature=args.temperature, greedy=args.greedy, seed=args.seed, candidates=args.candidates,
             out_dir=args.out,
             classifier=args.classifier, max_per_category=args.max_per_category, batch_size=args.batch_size,
             device=args.device, mask_table=args.mask_table, num_workers=args.workers, grid_count=args.grid_count,
             progress=not args.no_progress)
    print((Path(args.out) / "results.md").read_text())
    print(f"written: {Path(args.out) / 'results.json'}, results.md, per_category.json/.md, masks.npy, grids/")
    return 0
