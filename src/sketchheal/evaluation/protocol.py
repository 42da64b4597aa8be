"""Evaluate sketch-healing models: healing by ink, retrieval top-k and recognition accuracy at fixed, reproducible
masks, for completion and redraw side by side with the floor.

Protocol (``docs/evaluation.md`` says it in full and compares it with each published variant):

1. Sketches: the ``split`` of the given category files, filtered to the longest ``max_seq_len`` among the models
   (and then, per model, to that model's ``max_seq_len``), optionally the first ``max_per_category`` of each
   category. Sketch ``i`` of this *evaluation set* is corrupted with row ``i`` of a ``MaskTable`` (seeded, saved as
   ``masks.npy``; or loaded from a file), so the masks are identical for every model and nested across ``p``
   (``sketchheal.evaluation.evalset``), for both erase kinds (``raster``: the published patch masks on the image;
   ``vector``: the same squares erased from the strokes; ``sketchheal.evaluation.inputs``).
2. Per model, erase kind and mask level ``p``, each mode of ``config.modes`` (``sketchheal.evaluation.modes``):
   *redraw* (the published healing): the corrupted image's mean code ``mu`` is decoded into the healed sketch
   (temperature ``temperature``, seeded); *complete* (``sketchheal heal``'s default): the input's strokes are kept
   and strokes added, as ``sketchheal.heal`` does it. The healed sketch is rendered again, uncorrupted, and encoded
   (mean) = the *healed code*.
3. Ink (``sketchheal.evaluation.healing``): erased-ink recall, added-ink precision, kept ink of the healed drawing
   against the original and the input, at 128 px in the original's frame.
4. Retrieval: gallery = mean codes of the uncorrupted sketches; query = healed codes ("healed -> originals"), and
   the reverse ("originals -> healed": query = original codes, gallery = healed codes). Top-k = own counterpart
   among the k nearest (Euclidean), plus the published off-by-one "top-10 over the first 9 neighbours".
5. Recognition (>= 2 categories and a classifier): fraction of healed sketches that the classifier assigns to the
   original's category; its accuracy on the uncorrupted sketches is the ceiling.
6. Floor: the same metrics with no healing (the corrupted input itself: query = its code, classifier on its image;
   ink recall 0, kept 1).

``results.json``: ``models[].results`` = the published protocol (raster masks, redraw; the keys of earlier
versions), ``models[].healing`` = one row per erase kind x mask level x mode and the floor. Metrics:
``sketchheal.evaluation.metrics``; decoder check and code stability: ``.diagnostics``; tables, grids and files:
``.report``.
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

from sketchheal.config import EvalConfig
from sketchheal.evaluation.diagnostics import code_stability, decoder_check
from sketchheal.evaluation.evalset import (
    KS, MASK_FILE, EvalSet, HealingRun, ModelRun, build_eval_set, encode, mask_label, model_names, model_render_mode,
    parse_masks, parse_names, sample_key,
)
from sketchheal.evaluation.healing import FRAME_SIZE, TOLERANCE
from sketchheal.evaluation.inputs import HealedImages, InputImages, combos, erased_lines, loader
from sketchheal.evaluation.inputs import progress as _progress
from sketchheal.evaluation.metrics import healing_metrics, model_metrics
from sketchheal.evaluation.modes import complete_batch, gapfill_for, ink_batch, place_redraw
from sketchheal.evaluation.report import (
    per_category_markdown, results_markdown, write_grids, write_text,
)
from sketchheal.inference.candidates import best_of
from sketchheal.inference.classify import Classifier, classify, load_classifier, map_labels
from sketchheal.inference.complete import CompletionParams
from sketchheal.inference.domain import load_domain
from sketchheal.inference.loading import load_model
from sketchheal.sketch.strokes import denormalize, polylines_to_stroke3, stroke3_to_polylines
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
    gapfill: Any = None  # completion's gap-filler (None: the model's own reconstruction)
    domain: Any = None  # the model's typicality calibration (domain.json), as sketchheal.heal uses it

    @property
    def clf_size(self) -> int | None:
        return self.clf.image_size if self.clf_separate else None

    @property
    def clf_mode(self) -> str | None:
        return self.clf.render_mode if self.clf_separate else None


def _heal_stage(st: _Setup, ev: EvalSet, ids: np.ndarray, ps: Sequence[float], *, progress: bool,
                desc: str) -> dict[str, Any]:
    """Stage 1 over sketches ``ids``: gallery codes and, per (erase kind, p): the corrupted input's codes, the
    healed sketches of each mode (unnormalised stroke-3), ink counts, erased fractions, the classifier's labels."""
    model, healer, cfg = st.healer.model, st.healer, st.config
    pairs = combos(cfg.erase, ps)
    modes = list(cfg.modes)
    runs = [(k, m) for k in pairs for m in modes]
    out: dict[str, Any] = {"gallery": [], "pred_clean": [], "pairs": pairs, "modes": modes,
                           "floor": {k: [] for k in pairs}, "pred_floor": {k: [] for k in pairs},
                           "erased": {k: [] for k in pairs}, "healed": {r: [] for r in runs},
                           "ink": {r: [] for r in runs + [(k, "floor") for k in pairs]},
                           "added": {r: [] for r in runs}, "typical": {r: [] for r in runs},
                           "seconds": {r: 0.0 for r in runs}}
    clean_key, corrupted_key = ("clf_clean", "clf_corrupted") if st.clf_separate else ("clean", "corrupted")
    data = InputImages(ev.sketches, ids, ev.masks, pairs, st.size, st.mode, st.clf_size, st.clf_mode)
    batches = loader(data, cfg.batch_size, cfg.num_workers)
    pos = 0
    for batch in _progress(batches, total=len(batches), desc=f"{desc}: heal", enabled=progress):
        batch_ids = ids[pos:pos + batch["clean"].shape[0]].tolist()
        pos += len(batch_ids)
        originals = [stroke3_to_polylines(ev.sketches[sid]) for sid in batch_ids]
        out["gallery"].append(encode(model, batch["clean"]).cpu())
        if st.clf is not None:
            out["pred_clean"].append(classify(st.clf, batch[clean_key])[0])
        for j, (kind, p) in enumerate(pairs):
            mu = encode(model, batch["corrupted"][:, j])  # (B, Nz)
            out["floor"][kind, p].append(mu.cpu())
            out["erased"][kind, p].append(batch["erased"][:, j].numpy())
            if st.clf is not None:
                out["pred_floor"][kind, p].append(classify(st.clf, batch[corrupted_key][:, j])[0])
            inputs = [erased_lines(o, ev.masks.uniforms(sid), p) for o, sid in zip(originals, batch_ids)]
            out["ink"][(kind, p), "floor"] += ink_batch(originals, inputs, inputs)
            if "redraw" in modes:
                key, t0 = ((kind, p), "redraw"), time.perf_counter()
                # candidates > 1: the best of several by agreement with the corrupted input (never the original)
                strokes, _ = best_of(model, mu, batch["corrupted"][:, j, 0].numpy(),
                                     [sample_key(cfg.seed, p, sid) for sid in batch_ids],
                                     candidates=cfg.candidates, scale=float(healer.scale), size=st.size,
                                     mode=st.mode, max_len=int(healer.max_seq_len), temperature=cfg.temperature,
                                     greedy=cfg.greedy)
                healed = [denormalize(s, float(healer.scale)) for s in strokes]
                out["seconds"][key] += time.perf_counter() - t0
                out["healed"][key] += healed
                placed = [place_redraw(stroke3_to_polylines(h) if len(h) else [], o)
                          for h, o in zip(healed, originals)]
                out["ink"][key] += ink_batch(originals, inputs, placed)
            if "complete" in modes:
                key, t0 = ((kind, p), "complete"), time.perf_counter()
                shown = batch["corrupted"][:, j, 0].numpy() if kind == "raster" else None
                added, typical = complete_batch(healer, inputs, originals, shown, gapfill=st.gapfill,
                                                domain=st.domain, batch_size=cfg.batch_size)
                out["seconds"][key] += time.perf_counter() - t0
                lines = [list(i) + a for i, a in zip(inputs, added)]
                out["healed"][key] += [polylines_to_stroke3(x) if x else np.zeros((0, 3), np.float32)
                                       for x in lines]
                out["added"][key] += [[len(a), int(sum(len(x) for x in a))] for a in added]
                out["typical"][key] += typical
                out["ink"][key] += ink_batch(originals, inputs, lines)
    return out


def _reencode_stage(st: _Setup, healed: list[np.ndarray], *, progress: bool, desc: str
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Stage 2: render the healed sketches uncorrupted (the model's size and mode) and encode them -> codes (n, Nz);
    with a classifier also its labels (n,) for them."""
    data = HealedImages(healed, st.size, st.mode, st.clf_size, st.clf_mode)
    batches = loader(data, st.config.batch_size, st.config.num_workers)
    codes, preds = [], []
    for batch in _progress(batches, total=len(batches), desc=desc, enabled=progress):
        codes.append(encode(st.healer.model, batch["image"]).cpu())
        if st.clf is not None:
            preds.append(classify(st.clf, batch["clf_image" if st.clf_separate else "image"])[0])
    if not codes:
        return np.zeros((0, 0), np.float32), (np.zeros(0, np.int64) if st.clf is not None else None)
    return torch.cat(codes).numpy(), (np.concatenate(preds) if st.clf is not None else None)


def _stats(mode: str, healed: list[np.ndarray], added: list, typical: list) -> dict[str, Any]:
    """What the healed drawings of one run look like (counts, means)."""
    if mode == "floor":
        return {}
    points = np.array([len(s) for s in healed], np.int64)
    out: dict[str, Any] = {"empty": int((points == 0).sum()), "mean_points": float(points.mean()) if len(points)
                           else None}
    if mode == "complete":
        a = np.asarray(added, np.int64).reshape(-1, 2)
        known = [t for t in typical if t is not None]
        out.update({"with_added": int((a[:, 0] > 0).sum()), "mean_added_strokes": float(a[:, 0].mean()) if len(a)
                    else None, "mean_added_points": float(a[:, 1].mean()) if len(a) else None,
                    "typical": int(sum(known)) if known else None, "unlike": int(len(known) - sum(known))
                    if known else None})
    return out


def run_model(healer, ev: EvalSet, ps: Sequence[float], config: EvalConfig, *, clf: Classifier | None = None,
              progress: bool = False, desc: str = "model", gapfill: Any = None, domain: Any = None) -> ModelRun:
    """Encode and heal every sketch of the evaluation set that fits the model's max_seq_len, for every erase kind,
    mask level and mode of ``config``; re-render and re-encode the healed sketches. ``gapfill``: completion's
    gap-filler (None: the model itself); ``domain``: the model's typicality calibration (None: none)."""
    healer.model.eval()
    size, mode = int(healer.image_size), model_render_mode(healer)
    st = _Setup(healer=healer, size=size, mode=mode, clf=clf, config=config, gapfill=gapfill, domain=domain,
                clf_separate=clf is not None and (clf.image_size != size or clf.render_mode != mode))
    ids = np.nonzero(ev.lengths <= int(healer.max_seq_len))[0]
    s1 = _heal_stage(st, ev, ids, ps, progress=progress, desc=desc)
    with_clf = clf is not None
    healing: list[HealingRun] = []
    for kind, p in s1["pairs"]:
        erased = float(np.concatenate(s1["erased"][kind, p]).mean())
        for m in s1["modes"] + ["floor"]:
            key = ((kind, p), m)
            if m == "floor":
                codes = torch.cat(s1["floor"][kind, p]).numpy()
                preds = np.concatenate(s1["pred_floor"][kind, p]) if with_clf else None
                healed, added, typical, seconds = [], [], [], 0.0
            else:
                healed, added, typical, seconds = (s1["healed"][key], s1["added"][key], s1["typical"][key],
                                                   s1["seconds"][key])
                codes, preds = _reencode_stage(st, healed, progress=progress,
                                               desc=f"{desc}: re-encode {kind} {m} {mask_label(p)}")
            healing.append(HealingRun(erase=kind, mask=p, mode=m, codes=codes, pred=preds, ink=s1["ink"][key],
                                      erased_fraction=erased, stats=_stats(m, healed, added, typical),
                                      seconds=seconds))
    # The published protocol (raster masks, redraw): the record the committed results and the docs read.
    pub = {(h.mask, h.mode): h for h in healing if h.erase == "raster"}
    floor = [pub[p, "floor"] for p in ps] if "raster" in config.erase else []
    redrawn = [pub[p, "redraw"] for p in ps] if floor and "redraw" in config.modes else []
    raster_healed = [s1["healed"][((("raster", p)), "redraw")] for p in ps] if redrawn else []
    grid = {int(c): np.nonzero(ev.labels[ids] == c)[0][:config.grid_count].tolist()
            for c in np.unique(ev.labels[ids])}
    return ModelRun(
        ids=ids,
        gallery=torch.cat(s1["gallery"]).numpy(),
        corrupted=[h.codes for h in floor],
        healed=[h.codes for h in redrawn],
        erased_fraction=[h.erased_fraction for h in floor],
        healed_points=[np.array([len(s) for s in h], np.int64) for h in raster_healed],
        pred_clean=np.concatenate(s1["pred_clean"]) if with_clf else None,
        pred_corrupted=[h.pred for h in floor] if with_clf else None,
        pred_healed=[h.pred for h in redrawn] if with_clf else None,
        max_len=int(healer.max_seq_len),
        grid=grid,
        healed_grid=[{c: [h[k] for k in pos] for c, pos in grid.items()} for h in raster_healed],
        healing=healing,
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
    for key in ("modes", "erase"):
        if isinstance(overrides.get(key), str):
            overrides[key] = parse_names(overrides[key])
    if "gapfill" in overrides:
        overrides["gapfill"] = "none" if overrides["gapfill"] in (None, False) else os.fspath(overrides["gapfill"])
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
        gapfill, gapfill_name = gapfill_for(cfg.gapfill, healer) if "complete" in cfg.modes else (None, None)
        domain = load_domain(healer.source) if healer.source else None
        run = run_model(healer, ev, ps, cfg, clf=clf, progress=progress, desc=name, gapfill=gapfill, domain=domain)
        rows, cats, ceiling = model_metrics(run, ev, ps, clf_labels, metric_device)
        size = int(healer.image_size)
        models.append({
            **_model_entry(name, path, healer, run, ev),
            "gapfill": gapfill_name, "domain_calibration": domain is not None,
            "classifier_ceiling": ceiling, "results": rows,
            "healing": healing_metrics(run, ev, clf_labels, metric_device),
            "grids": write_grids(out, name, run, ev, ps, model_render_mode(healer), size=max(128, size)),
            "decoder_check": decoder_check(healer, ev.sketches, run.ids, run.gallery, batch_size=cfg.batch_size),
            "code_stability": code_stability(healer, ev.sketches, run.ids, run.gallery, seed=cfg.seed,
                                             batch_size=cfg.batch_size, device=metric_device),
        })
        per_category[name] = cats

    results = {
        "settings": {"masks": list(ps), "temperature": cfg.temperature, "greedy": cfg.greedy, "seed": cfg.seed,
                     "candidates": cfg.candidates, "modes": list(cfg.modes), "erase": list(cfg.erase),
                     "gapfill": cfg.gapfill, "completion": dataclasses.asdict(CompletionParams()),
                     "ink": {"size": FRAME_SIZE, "tolerance_px": TOLERANCE, "line_px": 1,
                             "frame": "the original's bounding box, placed as the published rendering"},
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
