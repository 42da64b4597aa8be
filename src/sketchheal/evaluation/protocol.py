"""Evaluate sketch-healing models: retrieval top-k and recognition accuracy at fixed, reproducible masks.

Protocol (``docs/evaluation.md`` says it in full and compares it with each published variant):

1. Sketches: the ``split`` of the given category files, filtered to the longest ``max_seq_len`` among the models
   (and then, per model, to that model's ``max_seq_len``), optionally the first ``max_per_category`` of each
   category. Sketch ``i`` of this *evaluation set* is corrupted with row ``i`` of a ``MaskTable`` (seeded, saved as
   ``masks.npy``; or loaded from a file), so the masks are identical for every model and nested across ``p``
   (``sketchheal.evaluation.evalset``).
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

Metrics: ``sketchheal.evaluation.metrics``; decoder check and code stability: ``.diagnostics``; tables, grids and
files: ``.report``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from sketchheal.config import EvalConfig
from sketchheal.data.dataset import make_loader
from sketchheal.evaluation.diagnostics import code_stability, decoder_check
from sketchheal.evaluation.evalset import (
    KS, MASK_FILE, EvalSet, ModelRun, build_eval_set, encode, mask_label, model_names, model_render_mode,
    parse_masks, sample_key,
)
from sketchheal.evaluation.metrics import model_metrics
from sketchheal.evaluation.report import (
    per_category_markdown, results_markdown, write_grids, write_text,
)
from sketchheal.inference.candidates import best_of
from sketchheal.inference.classify import Classifier, classify, load_classifier, map_labels
from sketchheal.inference.loading import load_model
from sketchheal.sketch.render import blank, corrupt, render_or_blank
from sketchheal.sketch.strokes import denormalize
from sketchheal.utils.devices import pick_device
from sketchheal.utils.fileio import json_safe, write_json
from sketchheal.utils.paths import repo_root
from sketchheal.utils.version import __version__


# ----------------------------------------------------------------------------------------------------------------
# provenance


def _git_commit() -> str | None:
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
    """The software that produced a result (recorded in results.json)."""
    return {"sketchheal": __version__, "git_commit": _git_commit(), "torch": torch.__version__,
            "numpy": np.__version__, "opencv": cv2.__version__, "python": platform.python_version()}


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

    def _images(self, s3: np.ndarray, u: np.ndarray, size: int, mode: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        item = {"image": torch.from_numpy(render_or_blank(self.healed[i], self.size, self.mode))[None]}
        if self.clf_size is not None:
            item["clf_image"] = torch.from_numpy(render_or_blank(self.healed[i], self.clf_size, self.clf_mode))[None]
        return item


def default_workers() -> int:
    """Rendering workers when none are set: one less than the CPU count, at most 8."""
    return min(8, max(0, (os.cpu_count() or 1) - 1))


def _loader(dataset: torch.utils.data.Dataset, batch_size: int, num_workers: int | None
            ) -> torch.utils.data.DataLoader:
    workers = default_workers() if num_workers is None else num_workers
    return make_loader(dataset, batch_size, num_workers=workers, persistent_workers=False)


def _progress(iterable, *, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False)


# ----------------------------------------------------------------------------------------------------------------
# one model


@dataclass
class _Setup:
    """How one model (and the classifier) see the sketches, and how the healed sketches are drawn."""

    healer: Any
    size: int
    mode: str
    clf: Classifier | None
    clf_separate: bool  # the classifier needs its own renderings (other size or render mode)
    config: EvalConfig

    @property
    def clf_size(self) -> int | None:
        return self.clf.image_size if self.clf_separate else None

    @property
    def clf_mode(self) -> str | None:
        return self.clf.render_mode if self.clf_separate else None


def _heal_stage(st: _Setup, ev: EvalSet, ids: np.ndarray, ps: Sequence[float], *, progress: bool,
                desc: str) -> dict[str, Any]:
    """Stage 1 over sketches ``ids``: gallery codes, corrupted codes, healed sketches (unnormalised stroke-3),
    erased fractions and the classifier's labels for the clean and corrupted images."""
    model, healer, cfg = st.healer.model, st.healer, st.config
    out: dict[str, Any] = {"gallery": [], "corrupted": [[] for _ in ps], "healed": [[] for _ in ps],
                           "erased": [[] for _ in ps], "pred_clean": [], "pred_corrupted": [[] for _ in ps]}
    clean_key, corrupted_key = ("clf_clean", "clf_corrupted") if st.clf_separate else ("clean", "corrupted")
    data = _InputImages(ev.sketches, ids, ev.masks, ps, st.size, st.mode, st.clf_size, st.clf_mode)
    loader = _loader(data, cfg.batch_size, cfg.num_workers)
    pos = 0
    for batch in _progress(loader, total=len(loader), desc=f"{desc}: heal", enabled=progress):
        batch_ids = ids[pos:pos + batch["clean"].shape[0]].tolist()
        pos += len(batch_ids)
        out["gallery"].append(encode(model, batch["clean"]).cpu())
        if st.clf is not None:
            out["pred_clean"].append(classify(st.clf, batch[clean_key])[0])
        for j, p in enumerate(ps):
            mu = encode(model, batch["corrupted"][:, j])  # (B, Nz)
            out["corrupted"][j].append(mu.cpu())
            out["erased"][j].append(batch["erased"][:, j].numpy())
            # candidates > 1: the best of several by agreement with the corrupted input (never the original)
            strokes, _ = best_of(model, mu, batch["corrupted"][:, j, 0].numpy(),
                                 [sample_key(cfg.seed, p, sid) for sid in batch_ids], candidates=cfg.candidates,
                                 scale=float(healer.scale), size=st.size, mode=st.mode,
                                 max_len=int(healer.max_seq_len), temperature=cfg.temperature, greedy=cfg.greedy)
            out["healed"][j] += [denormalize(s, float(healer.scale)) for s in strokes]
            if st.clf is not None:
                out["pred_corrupted"][j].append(classify(st.clf, batch[corrupted_key][:, j])[0])
    return out


def _reencode_stage(st: _Setup, healed: list[np.ndarray], *, progress: bool, desc: str
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Stage 2: render the healed sketches uncorrupted (the model's size and mode) and encode them -> codes (n, Nz);
    with a classifier also its labels (n,) for them."""
    data = _HealedImages(healed, st.size, st.mode, st.clf_size, st.clf_mode)
    loader = _loader(data, st.config.batch_size, st.config.num_workers)
    codes, preds = [], []
    for batch in _progress(loader, total=len(loader), desc=desc, enabled=progress):
        codes.append(encode(st.healer.model, batch["image"]).cpu())
        if st.clf is not None:
            preds.append(classify(st.clf, batch["clf_image" if st.clf_separate else "image"])[0])
    return torch.cat(codes).numpy(), (np.concatenate(preds) if st.clf is not None else None)


def run_model(healer, ev: EvalSet, ps: Sequence[float], config: EvalConfig, *, clf: Classifier | None = None,
              progress: bool = False, desc: str = "model") -> ModelRun:
    """Encode, heal (decode from the corrupted input's mean code), re-render and re-encode every sketch of the
    evaluation set that fits the model's max_seq_len."""
    healer.model.eval()
    size, mode = int(healer.image_size), model_render_mode(healer)
    st = _Setup(healer=healer, size=size, mode=mode, clf=clf, config=config,
                clf_separate=clf is not None and (clf.image_size != size or clf.render_mode != mode))
    ids = np.nonzero(ev.lengths <= int(healer.max_seq_len))[0]
    s1 = _heal_stage(st, ev, ids, ps, progress=progress, desc=desc)
    healed_codes, pred_healed = [], []
    for j, p in enumerate(ps):
        codes, preds = _reencode_stage(st, s1["healed"][j], progress=progress,
                                       desc=f"{desc}: re-encode {mask_label(p)}")
        healed_codes.append(codes)
        pred_healed.append(preds)
    with_clf = clf is not None
    grid = {int(c): np.nonzero(ev.labels[ids] == c)[0][:config.grid_count].tolist()
            for c in np.unique(ev.labels[ids])}
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


def _model_entry(name: str, path, healer, run: ModelRun, ev: EvalSet) -> dict[str, Any]:
    """What results.json says about one model besides its metrics."""
    config = getattr(healer.model, "config", None)
    kept = ev.labels[run.ids]
    return {
        "name": name, "path": str(path), "max_seq_len": int(healer.max_seq_len), "image_size": int(healer.image_size),
        "render_mode": model_render_mode(healer), "scale": float(healer.scale),
        "model_config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None,
        "training_step": (getattr(healer, "meta", None) or {}).get("step"),
        "categories": list(getattr(healer, "categories", []) or []),
        "n_evaluated": int(len(run.ids)), "n_excluded_too_long": int(len(ev.labels) - len(run.ids)),
        "n_per_category": {ev.categories[c]: int((kept == c).sum()) for c in range(len(ev.categories))},
    }


# ----------------------------------------------------------------------------------------------------------------
# the entry point


def eval_config(config: EvalConfig | None = None, **overrides: Any) -> EvalConfig:
    """``config`` (default ``EvalConfig()``) with ``overrides`` (EvalConfig field names) applied and validated.

    Accepts what Python callers naturally pass: paths for ``classifier`` / ``mask_table`` (None = none), a
    ``torch.device``, a tuple or a comma-separated string of masks.
    """
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"evaluate() got unexpected keyword argument(s) {unknown}; EvalConfig fields: {sorted(names)}")
    for key in ("classifier", "mask_table"):
        if key in overrides:
            overrides[key] = "" if overrides[key] is None else os.fspath(overrides[key])
    if isinstance(overrides.get("device"), torch.device):
        overrides["device"] = str(overrides["device"])
    if overrides.get("device") is None and "device" in overrides:
        overrides["device"] = "auto"
    if "masks" in overrides:
        overrides["masks"] = list(parse_masks(overrides["masks"]))
    cfg = dataclasses.replace(config or EvalConfig(), **overrides)
    cfg.validate()
    return cfg


def evaluate(model_paths: Sequence[str | os.PathLike], data_paths: Sequence[str | os.PathLike],
             config: EvalConfig | None = None, *, out_dir: str | os.PathLike,
             classifier: str | os.PathLike | Classifier | None = None, progress: bool = True,
             **overrides: Any) -> dict[str, Any]:
    """Evaluate one or more healing models side by side (see the module docstring for the protocol).

    model_paths: release directories or training checkpoints (anything ``load_model`` reads). data_paths: one
    category per file (.npz with splits, or .ndjson). config: the settings (``EvalConfig``; default the published
    protocol); ``overrides`` set single fields of it, e.g. ``masks=(0.3,), max_per_category=10, device="cpu"``.
    classifier: a ``train-classifier`` output (file or folder; also ``config.classifier``) or a loaded
    ``Classifier``. progress: progress bars.
    Writes into ``out_dir``: masks.npy, results.json (strict JSON: a missing number is null), results.md,
    per_category.json, per_category.md and grids/<model>/<p>/<category>.png. Returns the content of results.json.
    """
    started = time.time()
    loaded_clf = classifier if isinstance(classifier, Classifier) else None
    if classifier is not None and loaded_clf is None:
        overrides["classifier"] = classifier
    cfg = eval_config(config, **overrides)
    if not model_paths:
        raise ValueError("give at least one model (--checkpoint PATH)")
    if not data_paths:
        raise ValueError("give at least one data file (--data PATH ...)")
    for what, given in (("mask table", cfg.mask_table), ("classifier", cfg.classifier)):
        if given and not Path(given).exists():
            raise FileNotFoundError(f"{given}: no such {what}")
    ps = parse_masks(cfg.masks)
    dev = pick_device(cfg.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    healers = [load_model(str(p), device=dev) for p in model_paths]
    names = model_names(model_paths)
    ev = build_eval_set(data_paths, split=cfg.split, max_seq_len=max(int(h.max_seq_len) for h in healers),
                        max_per_category=cfg.max_per_category, seed=cfg.seed, mask_table=cfg.mask_table, out_dir=out)

    clf, clf_labels, accuracy_note = None, None, None
    wants_clf = loaded_clf is not None or bool(cfg.classifier)
    if wants_clf and len(ev.categories) < 2:
        accuracy_note = "recognition accuracy needs at least 2 categories; the data has 1"
    elif wants_clf:
        clf = loaded_clf or load_classifier(cfg.classifier, device=dev)
        clf_labels = map_labels(ev.categories, ev.labels, clf.categories)
    else:
        accuracy_note = "no classifier given (--classifier)"

    # float64 distances: CUDA or CPU (MPS has no float64)
    metric_device = dev if dev.type == "cuda" else torch.device("cpu")
    models, per_category = [], {}
    for name, path, healer in zip(names, model_paths, healers):
        run = run_model(healer, ev, ps, cfg, clf=clf, progress=progress, desc=name)
        rows, cats, ceiling = model_metrics(run, ev, ps, clf_labels, metric_device)
        size = int(healer.image_size)
        models.append({
            **_model_entry(name, path, healer, run, ev),
            "classifier_ceiling": ceiling, "results": rows,
            "grids": write_grids(out, name, run, ev, ps, model_render_mode(healer), size=max(128, size)),
            "decoder_check": decoder_check(healer, ev.sketches, run.ids, run.gallery, batch_size=cfg.batch_size),
            "code_stability": code_stability(healer, ev.sketches, run.ids, run.gallery, seed=cfg.seed,
                                             batch_size=cfg.batch_size, device=metric_device),
        })
        per_category[name] = cats

    results = {
        "settings": {"masks": list(ps), "temperature": cfg.temperature, "greedy": cfg.greedy, "seed": cfg.seed,
                     "candidates": cfg.candidates,
                     "latent": "encoder mean (mu) of the corrupted image", "batch_size": cfg.batch_size,
                     "device": str(dev), "ks": list(KS), "distance": "euclidean",
                     "ties": "stable: equal distances go to the lower gallery index",
                     "top10_published": "first 9 neighbours (off-by-one of the published scripts)",
                     "top50_published": "first 49 neighbours", "grid_count": cfg.grid_count},
        "data": {**ev.info, "categories": ev.categories},
        "classifier": None if clf is None else {
            "path": clf.meta.get("path", cfg.classifier), "categories": clf.categories, "image_size": clf.image_size,
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
    write_json(out / "per_category.json", per_category)
    write_text(out / "per_category.md", per_category_markdown(results, per_category))
    write_text(out / "results.md", results_markdown(results))
    write_json(out / "results.json", results)
    return json_safe(results)
