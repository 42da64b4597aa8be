"""The evaluation set and its masks, and the record of one model's run that metrics, diagnostics and reports read.

The evaluation set (``build_eval_set``) is the ``split`` of the category files, filtered to the longest
``max_seq_len`` among the models, optionally the first ``max_per_category`` of each category. Sketch ``i`` of it is
corrupted with row ``i`` of a ``MaskTable`` (seeded, saved as ``masks.npy``, or loaded from a file), so the masks
are the same for every model and nested across the erase probabilities ``p``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sketchheal.inference.sample import encode_images
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.masks import MaskTable
from sketchheal.utils.npfile import load_npy

# The k of the top-k retrieval accuracies.
KS = (1, 10, 50)
# The mask table's file name inside the output folder.
MASK_FILE = "masks.npy"


# ----------------------------------------------------------------------------------------------------------------
# names


def parse_masks(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"0.1,0.3,0.5"`` (or a sequence) -> sorted unique mask probabilities, each in [0, 1]."""
    items = [t for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    try:
        values = sorted({float(v) for v in items})
    except (TypeError, ValueError):
        raise ValueError(f"masks {text!r}: give comma-separated probabilities, e.g. 0.1,0.3,0.5") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"masks {text!r}: each mask probability must lie in [0, 1]")
    return tuple(values)


def parse_names(text: str | Sequence[str]) -> list[str]:
    """``"complete,redraw"`` (or a sequence) -> ``["complete", "redraw"]``: stripped, empty items and repeats
    left out, in the given order (the values are checked by ``EvalConfig.validate``)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name and name not in out:
            out.append(name)
    return out


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


def safe_name(name: str) -> str:
    """A file-name-safe version of a model or category name (spaces kept)."""
    return "".join(c if c.isalnum() or c in " ._-" else "_" for c in name).strip() or "_"


def sample_key(seed: int, p: float, sketch_id: int) -> tuple[int, int, int]:
    """Noise key of one healed sketch: (seed, p in 1/10000, evaluation-set index). A sketch's healed result does not
    depend on the batch size, on the other mask levels or on the other models."""
    return (int(seed), int(round(p * 10_000)), int(sketch_id))


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
    masks: MaskTable
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_eval_set(data_paths: Sequence[str | os.PathLike], *, split: str, max_seq_len: int,
                   max_per_category: int | None, seed: int, mask_table: str | os.PathLike | None,
                   out_dir: Path) -> EvalSet:
    """Load the split, keep sketches with <= max_seq_len points and the first max_per_category per category,
    then make (seed) or load (mask_table) the MaskTable and write it to ``out_dir/masks.npy``."""
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
    if mask_table:
        src = Path(mask_table)
        masks = MaskTable.load(src, n_sketches=n)
        if masks.n_sketches > n:  # keep the rows of this evaluation set
            masks = MaskTable.from_array(np.asarray(masks.table)[:n])
        source = {"loaded_from": str(src), "rows_in_file": int(load_npy(src, mmap_mode="r").shape[0])}
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
# one model's run


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
    healing: list["HealingRun"] = field(default_factory=list)  # per erase kind x mask level x mode (and floor)


@dataclass
class HealingRun:
    """One erase kind x mask level x healing mode of one model (``mode``: "complete", "redraw" or "floor" = the
    corrupted input itself), over the sketches ``ModelRun.ids``."""

    erase: str                           # "raster" (the published patch masks) or "vector"
    mask: float
    mode: str
    codes: np.ndarray                    # (n, Nz) re-encoded healed sketches (floor: codes of the corrupted input)
    pred: np.ndarray | None              # (n,) classifier labels of the same images (None: no classifier)
    ink: list[dict[str, int]]            # per sketch: sketchheal.evaluation.healing.ink_counts
    erased_fraction: float               # mean fraction of patch candidates erased
    stats: dict[str, Any]                # counts of the healed drawings (added strokes, points, typical inputs)
    seconds: float = 0.0                 # healing time (completion or decoding), rendering excluded


def model_render_mode(healer) -> str:
    """The render mode the model was trained with (``Healer.render_mode``; "reference" when unknown)."""
    return str(getattr(healer, "render_mode", None) or "reference")


def encode(model, images: torch.Tensor) -> torch.Tensor:
    """Mean codes ``mu (B, Nz)`` (float32, on the model's device) of images (B, 1, N, N), in one batch."""
    return encode_images(model, images, batch_size=max(1, images.shape[0]))
