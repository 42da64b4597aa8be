"""Sketch files in, packed sketches out: loading, validation, filtering, writing, and the ``data`` command.

Formats (docs/data.md has the details):

- sketch-rnn ``.npz``: keys ``train``/``valid``/``test``, each an object array of stroke-3 arrays ``(n, 3)``
  (int16 in Google's files, float also accepted), one category per file.
- QuickDraw ``.ndjson``: one JSON object a line whose ``drawing`` is a list of strokes, ``[[x...], [y...]]``
  ("simplified", ints 0-255) or ``[[x...], [y...], [t...]]`` ("raw", float screen coordinates). No split: every
  split name returns all drawings. Raw drawings go through QuickDraw's own simplification by default
  (``raw="simplify"``), so that they look like the simplified and ``.npz`` data; ``raw="direct"`` keeps them.

The category of a sketch is its file's stem, spaces kept ("The Great Wall of China.npz").
A :class:`SketchSet` keeps every sketch of a split in one points array plus offsets, so that millions of sketches
are a handful of numpy arrays: cheap to pickle into DataLoader workers and free of per-sketch Python objects.
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from sketchheal.sketch import strokes as S
from sketchheal.utils.fileio import atomic_path, atomic_write

SPLITS = ("train", "valid", "test")
# THE suffix lists: files sketchheal reads as sketches (vector) and as images (raster).
SKETCH_SUFFIXES = (".npz", ".ndjson", ".svg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Files holding many sketches (splits / drawings), what folders are searched for.
SET_SUFFIXES = (".npz", ".ndjson")
RAW_MODES = ("simplify", "direct")
# Reasons a loaded sketch can be dropped; every SketchSet.dropped has these keys.
DROP_REASONS = ("too_long", "one_point", "unrecognized", "invalid")
# The sketch-rnn QuickDraw files hold 70000 / 2500 / 2500 sketches per category.
SKETCHRNN_SPLIT = (70000 / 75000, 2500 / 75000, 2500 / 75000)
_INT16 = np.iinfo(np.int16)

PathLike = str | os.PathLike


def _zero_drops() -> dict[str, int]:
    return {k: 0 for k in DROP_REASONS}


# ================================================================================================ SketchSet
@dataclass
class SketchSet:
    """Packed sketches: sketch ``i`` is ``points[offsets[i]:offsets[i + 1]]``.

    Attributes:
        points: ``(total, 3)`` int16 when that is lossless, else float32; rows ``dx, dy, pen_lifted``.
        offsets: ``(n + 1,) int64``, ``offsets[0] = 0``, ``offsets[-1] = total``.
        labels: ``(n,) int16`` indices into ``categories``.
        categories: category names (file stems).
        dropped: sketches left out while loading, by reason (``DROP_REASONS``).
        recognized: ``(n,) bool``, QuickDraw's ``recognized`` flag (True where the file has none, e.g. ``.npz``).
    """

    points: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    categories: list[str]
    dropped: dict[str, int] = field(default_factory=_zero_drops)
    recognized: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, np.int64)
        self.labels = np.asarray(self.labels, np.int16)
        self.categories = list(self.categories)
        n = len(self.offsets) - 1
        if self.recognized is None:
            self.recognized = np.ones(n, bool)
        self.recognized = np.asarray(self.recognized, bool)
        if self.points.ndim != 2 or self.points.shape[1] != 3:
            raise ValueError(f"points must have shape (total, 3), got {self.points.shape}")
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.points):
            raise ValueError("offsets must start at 0 and end at len(points)")
        if self.labels.shape != (n,) or self.recognized.shape != (n,):
            raise ValueError(f"labels and recognized must have shape ({n},)")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.categories)):
            raise ValueError("labels must index categories")
        self.dropped = {**_zero_drops(), **self.dropped}

    # ------------------------------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        """Sketch ``i`` as a new stroke-3 ``(n_i, 3) float32`` array (use :meth:`subset` for many)."""
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"SketchSet indices must be integers, not {type(i).__name__}; use .subset(...)")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sketch index {i} out of range for {n} sketches")
        i = int(i) % n
        return self.points[self.offsets[i]:self.offsets[i + 1]].astype(np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (f"SketchSet({len(self)} sketches, {len(self.points)} points {self.points.dtype}, "
                f"{len(self.categories)} categories, dropped={self.dropped})")

    @property
    def lengths(self) -> np.ndarray:
        """Points per sketch, ``(n,) int64``."""
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return int(self.points.nbytes + self.offsets.nbytes + self.labels.nbytes + self.recognized.nbytes)

    def category(self, i: int) -> str:
        """Category name of sketch ``i``."""
        return self.categories[int(self.labels[i])]

    def counts(self) -> dict[str, int]:
        """Sketches per category (every category listed, in order)."""
        c = np.bincount(self.labels.astype(np.int64), minlength=len(self.categories))
        return {name: int(k) for name, k in zip(self.categories, c)}

    def to_list(self) -> list[np.ndarray]:
        """Every sketch as a float32 stroke-3 array."""
        return list(self)

    # ----------------------------------------------------------------------------------------- building
    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> "SketchSet":
        """The sketches at ``idx`` (int indices, a boolean mask or a slice), in that order, as a new set."""
        n = len(self)
        if isinstance(idx, slice):
            idx = np.arange(n)[idx]
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise ValueError(f"boolean mask must have shape ({n},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"subset index out of range for {n} sketches")
        idx = idx % max(n, 1)
        rows, offsets = _gather_rows(self.offsets, idx)
        return SketchSet(self.points[rows], offsets, self.labels[idx], self.categories, dict(self.dropped),
                         self.recognized[idx])

    @classmethod
    def from_sketches(cls, sketches: Iterable[np.ndarray], labels: Sequence[int] | np.ndarray | None = None,
                      categories: Sequence[str] = ("sketch",), dropped: Mapping[str, int] | None = None,
                      recognized: Sequence[bool] | np.ndarray | None = None) -> "SketchSet":
        """Pack stroke-3 arrays (no validation; see :func:`load_sketches` for that). Labels default to 0."""
        arrays = [np.asarray(s).reshape(-1, 3) for s in sketches]
        points, offsets = pack(arrays)
        labels = np.zeros(len(arrays), np.int16) if labels is None else np.asarray(labels, np.int16)
        return cls(points, offsets, labels, list(categories), dict(dropped or {}), recognized)

    @classmethod
    def concat(cls, sets: Sequence["SketchSet"]) -> "SketchSet":
        """One set holding ``sets`` in order; categories are merged by name (first appearance first)."""
        categories: list[str] = []
        for s in sets:
            categories += [c for c in s.categories if c not in categories]
        if len(categories) > _INT16.max:
            raise ValueError(f"too many categories ({len(categories)}) for int16 labels")
        index = {c: i for i, c in enumerate(categories)}
        if not sets:
            return cls(np.zeros((0, 3), np.int16), np.zeros(1, np.int64), np.zeros(0, np.int16), [])
        dtype = np.int16 if all(s.points.dtype == np.int16 for s in sets) else np.float32
        points = np.concatenate([s.points.astype(dtype, copy=False) for s in sets], 0)
        starts = np.cumsum([0] + [len(s.points) for s in sets[:-1]])
        offsets = np.concatenate([[0]] + [s.offsets[1:] + a for s, a in zip(sets, starts)])
        labels = np.concatenate([np.array([index[c] for c in s.categories], np.int16)[s.labels.astype(np.int64)]
                                 if len(s) else np.zeros(0, np.int16) for s in sets])
        dropped = {k: sum(s.dropped.get(k, 0) for s in sets) for k in DROP_REASONS}
        recognized = np.concatenate([s.recognized for s in sets])
        return cls(points, offsets, labels, categories, dropped, recognized)


def _gather_rows(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(total,)`` of the sketches ``idx`` (in order) and the new offsets ``(len(idx) + 1,)``."""
    starts = offsets[idx]
    lens = offsets[idx + 1] - starts
    new_offsets = np.zeros(len(idx) + 1, np.int64)
    np.cumsum(lens, out=new_offsets[1:])
    rows = np.arange(new_offsets[-1], dtype=np.int64) + np.repeat(starts - new_offsets[:-1], lens)
    return rows, new_offsets


def _storage_dtype(values: np.ndarray) -> type:
    """int16 when ``values`` are integers within int16 (lossless), else float32."""
    if values.size == 0:
        return np.int16
    if np.issubdtype(values.dtype, np.integer):
        ok = values.min() >= _INT16.min and values.max() <= _INT16.max
    else:
        ok = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values))
                  and values.min() >= _INT16.min and values.max() <= _INT16.max)
    return np.int16 if ok else np.float32


def pack(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate stroke-3 arrays: ``points (total, 3)`` (int16 if lossless, else float32), ``offsets (n+1,)``."""
    offsets = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    if not arrays:
        return np.zeros((0, 3), np.int16), offsets
    points = np.concatenate(arrays, 0)
    return points.astype(_storage_dtype(points), copy=False), offsets


# ================================================================================================== loading
class _Problems:
    """Raises on the first bad sketch, or counts it when ``skip`` is set."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.count = 0

    def __call__(self, where: str, problem: str) -> None:
        if not self.skip:
            raise ValueError(f"{where}: {problem}; fix the file, or skip such sketches with skip_invalid=True "
                             "(--skip-invalid)")
        self.count += 1


def _filter(arrays: Sequence, where: Callable[[int], str], *, max_seq_len: int | None, clip: float | None,
            problems: _Problems, recognized: np.ndarray | None = None,
            recognized_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Validate, filter and pack one file's sketches (vectorised over the whole file).

    Returns ``points``, ``offsets``, ``kept`` (indices into ``arrays``) and the drop counts.
    Invalid sketches (wrong shape, empty, NaN/inf, pen not 0/1) raise via ``problems`` or are counted.
    """
    n = len(arrays)
    ok = np.ones(n, bool)
    lengths = np.zeros(n, np.int64)
    for i, a in enumerate(arrays):
        if not (isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] == 3 and a.dtype.kind in "iuf"):
            shape = getattr(a, "shape", type(a).__name__)
            problems(where(i), f"expected a stroke-3 array of numbers with shape (n, 3), got {shape}")
            ok[i] = False
        else:
            lengths[i] = len(a)
    for i in np.flatnonzero(ok & (lengths == 0)):
        problems(where(i), "the sketch is empty (0 points)")
        ok[i] = False
    idx = np.flatnonzero(ok)
    big = np.concatenate([arrays[i] for i in idx], 0) if len(idx) else np.zeros((0, 3), np.int16)
    starts = np.concatenate([[0], np.cumsum(lengths[idx])[:-1]]).astype(np.int64)
    row_ok = np.ones(len(big), bool)
    if big.dtype.kind == "f":
        row_ok = np.isfinite(big).all(1)
    bad = ~np.logical_and.reduceat(row_ok, starts) if len(idx) else np.zeros(0, bool)
    for j in np.flatnonzero(bad):
        problems(where(idx[j]), "contains NaN or inf")
    pen_ok = (big[:, 2] == 0) | (big[:, 2] == 1)
    bad_pen = ~np.logical_and.reduceat(pen_ok, starts) & ~bad if len(idx) else np.zeros(0, bool)
    for j in np.flatnonzero(bad_pen):
        problems(where(idx[j]), "pen_lifted values must be 0 or 1")
    valid = ~(bad | bad_pen)  # over idx

    dropped = _zero_drops()
    dropped["invalid"] = problems.count
    keep = valid.copy()
    if recognized_only and recognized is not None:
        unrec = keep & ~recognized[idx]
        dropped["unrecognized"] = int(unrec.sum())
        keep &= ~unrec
    moves = np.any(big[:, :2] != 0, axis=1)
    one_point = keep & ~np.logical_or.reduceat(moves, starts) if len(idx) else np.zeros(0, bool)
    dropped["one_point"] = int(one_point.sum())
    keep &= ~one_point
    if max_seq_len is not None:
        too_long = keep & (lengths[idx] > max_seq_len)
        dropped["too_long"] = int(too_long.sum())
        keep &= ~too_long

    points = big[np.repeat(keep, lengths[idx])]
    if clip is not None and len(points):
        integral = points.dtype.kind in "iu" and float(clip) == int(clip)
        points = points.astype(np.int64 if integral else np.float64)
        bound = int(clip) if integral else float(clip)
        np.clip(points[:, :2], -bound, bound, out=points[:, :2])
    points = points.astype(_storage_dtype(points), copy=False)
    kept = idx[keep]
    offsets = np.zeros(len(kept) + 1, np.int64)
    np.cumsum(lengths[kept], out=offsets[1:])
    return points, offsets, kept, dropped


def _open_npz(path: Path):
    """``np.load`` of a zip (.npz) file only: a lone pickle or .npy is refused before anything is unpickled.

    The sketch arrays inside a sketch-rnn .npz are pickled object arrays, so load only files you trust.
    """
    expected = ("expected np.savez output with train/valid/test arrays of stroke-3 sketches, as the sketch-rnn "
                "files")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not a sketch-rnn .npz file (not a zip archive); {expected}")
    try:
        return np.load(path, encoding="latin1", allow_pickle=True)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable sketch-rnn .npz file ({e}); {expected}") from None


def npz_splits(path: PathLike) -> list[str]:
    """The array names (splits) stored in a sketch-rnn ``.npz`` file."""
    path = _existing(path)
    with _open_npz(path) as z:
        return list(z.files)


def _read_npz(path: Path, split: str) -> list:
    with _open_npz(path) as z:
        if split not in z.files:
            have = ", ".join(z.files) or "nothing"
            raise ValueError(f"{path}: has no {split!r} split (it has: {have}); choose one of those")
        try:
            arr = z[split]
        except Exception as e:  # a damaged member: zlib, pickle or format errors

            raise ValueError(f"{path}: split {split!r} cannot be read ({e})") from None
    if arr.dtype == object:
        return list(arr.reshape(-1))
    if arr.ndim == 3:  # equal-length sketches saved as one 3-D array
        return list(arr)
    raise ValueError(f"{path}: split {split!r} is an array of shape {arr.shape}, not a list of stroke-3 sketches")


def _drawing_to_stroke3(drawing, raw: str) -> np.ndarray:
    """A QuickDraw ``drawing`` -> stroke-3 ``(n, 3)``; raw strokes (with timestamps) per ``raw``."""
    if not isinstance(drawing, list):
        raise ValueError(f"'drawing' must be a list of strokes, got {type(drawing).__name__}")
    lines = S.quickdraw_to_polylines(drawing)
    if not any(len(line) for line in lines):
        raise ValueError("the drawing is empty (no points)")
    is_raw = any(len(stroke) == 3 for stroke in drawing)
    if is_raw and raw == "simplify":
        lines = S.simplify_polylines(lines)
    return S.polylines_to_stroke3(lines)


def _read_ndjson(path: Path, raw: str, problems: _Problems) -> tuple[list, list[int], np.ndarray]:
    """Every drawing of a QuickDraw ``.ndjson`` file: stroke-3 arrays, their line numbers, ``recognized``."""
    arrays, lines, recognized = [], [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text .ndjson file ({e})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "drawing" not in rec:
                raise ValueError("expected a JSON object with a 'drawing' field")
            s3 = _drawing_to_stroke3(rec["drawing"], raw)
        except json.JSONDecodeError as e:
            problems(f"{path}:{lineno}", f"malformed JSON ({e.msg} at column {e.colno})")
            continue
        except ValueError as e:
            problems(f"{path}:{lineno}", str(e))
            continue
        arrays.append(s3)
        lines.append(lineno)
        recognized.append(bool(rec.get("recognized", True)))
    return arrays, lines, np.array(recognized, bool)


def _existing(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file (sketch files are .npz or .ndjson; `sketchheal download` "
                                "fetches the QuickDraw .npz files)")
    return p


def expand_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files named by ``paths``: a folder stands for its ``.npz`` and ``.ndjson`` files (sorted).

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for an unsupported file or empty folder.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(_existing, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix in SET_SUFFIXES and f.is_file())
            if not found:
                raise ValueError(f"{p}: folder has no .npz or .ndjson files")
            out += found
        elif p.suffix in SET_SUFFIXES:
            out.append(p)
        else:
            raise ValueError(f"{p}: unsupported file type {p.suffix!r}; expected a sketch-rnn .npz or a QuickDraw "
                             ".ndjson file")
    if not out:
        raise ValueError("no sketch files given")
    return out


def load_file(path: PathLike, split: str = "train", max_seq_len: int | None = 200, clip: float | None = 1000.0,
              recognized_only: bool = False, skip_invalid: bool = False, raw: str = "simplify") -> SketchSet:
    """One file's sketches as a :class:`SketchSet` with a single category (the file stem). See load_sketches."""
    path = _existing(path)
    if raw not in RAW_MODES:
        raise ValueError(f"raw must be one of {RAW_MODES}, got {raw!r}")
    problems = _Problems(skip_invalid)
    recognized = None
    if path.suffix == ".npz":
        arrays = _read_npz(path, split)
        where = lambda i: f"{path}: split {split!r}, sketch {i}"  # noqa: E731
    elif path.suffix == ".ndjson":
        arrays, linenos, recognized = _read_ndjson(path, raw, problems)
        where = lambda i: f"{path}:{linenos[i]}"  # noqa: E731
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; expected .npz or .ndjson")
    points, offsets, kept, dropped = _filter(arrays, where, max_seq_len=max_seq_len, clip=clip, problems=problems,
                                             recognized=recognized, recognized_only=recognized_only)
    rec = recognized[kept] if recognized is not None else None
    return SketchSet(points, offsets, np.zeros(len(kept), np.int16), [path.stem], dropped, rec)


def load_sketches(paths: PathLike | Iterable[PathLike], split: str = "train", max_seq_len: int | None = 200,
                  clip: float | None = 1000.0, recognized_only: bool = False, skip_invalid: bool = False,
                  raw: str = "simplify") -> SketchSet:
    """Load sketch-rnn ``.npz`` and QuickDraw ``.ndjson`` files into one :class:`SketchSet`.

    Args:
        paths: files or folders (a folder = its .npz and .ndjson files); each file is one category (its stem).
        split: the ``.npz`` array to read (``train``, ``valid``, ``test``); ``.ndjson`` files return everything.
        max_seq_len: keep sketches with at most this many points (``None``: no limit). Paper: 200.
        clip: clip ``dx, dy`` to ``[-clip, clip]`` (``None``: no clipping). Paper: 1000.
        recognized_only: drop drawings that QuickDraw's classifier did not recognise (``.ndjson`` only).
        skip_invalid: count and skip invalid sketches instead of raising.
        raw: raw ``.ndjson`` drawings: ``"simplify"`` (QuickDraw's pipeline, default) or ``"direct"``.

    Returns a SketchSet whose ``dropped`` counts the sketches left out (too long, one point, unrecognised,
    invalid). Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file (and line or
    sketch) for anything unreadable.
    """
    return SketchSet.concat([load_file(p, split, max_seq_len, clip, recognized_only, skip_invalid, raw)
                             for p in expand_paths(paths)])


def longer_sides(sketches: SketchSet) -> np.ndarray:
    """``(n,) float64``: the longer side of each sketch's bounding box over its pen positions ``p_0 .. p_n``
    (``strokes.longer_side`` for every sketch at once)."""
    n = len(sketches)
    sides = np.zeros(n, np.float64)
    lengths = np.diff(sketches.offsets)
    full = np.flatnonzero(lengths > 0)
    if not len(full):
        return sides
    pos = np.cumsum(sketches.points[:, :2], axis=0, dtype=np.float64)  # p_1.. of all sketches, run together
    starts = sketches.offsets[full]
    base = np.where(starts[:, None] > 0, pos[np.maximum(starts - 1, 0)], 0.0)  # (k, 2) the running sum before each
    # each sketch's positions relative to its p_0, reduced per sketch; p_0 = 0 itself joins through the 0 clamp
    hi = np.maximum(np.maximum.reduceat(pos, starts, axis=0) - base, 0.0)
    lo = np.minimum(np.minimum.reduceat(pos, starts, axis=0) - base, 0.0)
    sides[full] = (hi - lo).max(1)
    return sides


def compute_scale(train_set: SketchSet, size: float = 0.0) -> float:
    """Normalisation scale: the standard deviation of all ``dx, dy`` of the training split (sketch-rnn's).

    ``size > 0``: of the training split with every sketch resized so that its longer side is ``size`` (the targets
    of a model with ``model.target_size = size``). Compute it once on the training split and store it with the
    model (see docs/ARCHITECTURE.md).
    """
    points = train_set.points
    if len(points) == 0:
        raise ValueError("cannot compute the scale of an empty training set")
    if size:
        if not size > 0:
            raise ValueError(f"size must be positive, got {size}")
        sides = longer_sides(train_set)
        factor = np.where(sides > 0, size / np.where(sides > 0, sides, 1.0), 1.0)  # (n,) per sketch
        per_point = np.repeat(factor, np.diff(train_set.offsets))  # (total,)
    chunks = range(0, len(points), 1 << 20)  # float64 copies one chunk at a time (two passes, exact enough)

    def xy(a: int) -> np.ndarray:
        d = points[a:a + (1 << 20), :2].astype(np.float64)
        return d * per_point[a:a + (1 << 20), None] if size else d

    total = sum(float(xy(a).sum()) for a in chunks)
    mean = total / (2 * len(points))
    sq = 0.0
    for a in chunks:
        d = xy(a) - mean
        sq += float(np.einsum("ij,ij->", d, d))
    return float(np.sqrt(sq / (2 * len(points))))


# ================================================================================================== writing
def _as_set(sketches: SketchSet | Sequence[np.ndarray]) -> SketchSet:
    return sketches if isinstance(sketches, SketchSet) else SketchSet.from_sketches(sketches)


def save_npz(path: PathLike, splits: Mapping[str, SketchSet | Sequence[np.ndarray]], compress: bool = True) -> Path:
    """Write a sketch-rnn ``.npz`` atomically: each split an object array of stroke-3 arrays.

    Values are stored as int16 when that is lossless (as Google's files), else float32. Returns the path.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a sketch-rnn file must end in .npz")
    arrays = {}
    for name, sketches in splits.items():
        s = _as_set(sketches)
        obj = np.empty(len(s), dtype=object)
        for i in range(len(s)):
            obj[i] = s.points[s.offsets[i]:s.offsets[i + 1]].copy()
        arrays[name] = obj
    with atomic_path(path) as tmp:
        (np.savez_compressed if compress else np.savez)(tmp, **arrays)
    return path


def _ndjson_record(s3: np.ndarray, word: str, recognized: bool, key: str) -> dict:
    lines = S.stroke3_to_polylines(s3)
    lo = np.concatenate(lines).min(0)
    drawing = S.polylines_to_quickdraw([line - lo for line in lines])
    return {"word": word, "key_id": key, "recognized": bool(recognized), "drawing": drawing}


def save_ndjson(path: PathLike, sketches: SketchSet | Sequence[np.ndarray]) -> Path:
    """Write sketches as QuickDraw "simplified"-style ``.ndjson`` atomically, one drawing a line.

    Each drawing is translated so that its top-left is (0, 0) and keeps its size (no rescaling), so reading the
    file back gives the same stroke-3 rows. ``word`` is the category, ``key_id`` the index in ``sketches``.
    """
    s = _as_set(sketches)
    with atomic_write(path, "w") as f:
        for i in range(len(s)):
            rec = _ndjson_record(s[i], s.category(i), s.recognized[i], str(i))
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return Path(path)


def parse_split_sizes(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` (fractions) or ``"70000,2500,2500"`` (counts) -> three numbers."""
    parts = [float(x) for x in text.split(",")] if isinstance(text, str) else [float(x) for x in text]
    if len(parts) != 3 or any(x < 0 for x in parts) or sum(parts) <= 0:
        raise ValueError(f"split sizes must be three non-negative numbers train,valid,test, got {text!r}")
    return parts[0], parts[1], parts[2]


def random_split(sketches: SketchSet, sizes: Sequence[float] = SKETCHRNN_SPLIT,
                 seed: int = 0) -> dict[str, SketchSet]:
    """Deterministic train/valid/test split of ``sketches`` (a seeded permutation).

    ``sizes`` are fractions (summing to at most 1; the rest of the drawings are left out) or, if any is above 1,
    counts; train gets what the rounding leaves. Returns ``{"train", "valid", "test"}`` subsets.
    """
    n = len(sketches)
    sizes = parse_split_sizes(sizes)
    if max(sizes) > 1:
        counts = [int(x) for x in sizes]
        if sum(counts) > n:
            raise ValueError(f"split sizes {counts} need {sum(counts)} drawings, only {n} available")
    else:
        if sum(sizes) > 1 + 1e-9:
            raise ValueError(f"split fractions {sizes} add up to more than 1")
        valid, test = round(n * sizes[1]), round(n * sizes[2])
        train = min(n - valid - test, round(n * sum(sizes))  - valid - test)
        counts = [max(train, 0), valid, test]
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return {name: sketches.subset(np.sort(perm[a:b])) for name, a, b in zip(SPLITS, bounds[:-1], bounds[1:])}


def _format_of(path: Path) -> str:
    return path.suffix.lstrip(".")


def convert(inputs: PathLike | Iterable[PathLike], out: PathLike, *, to: str | None = None,
            split_sizes: Sequence[float] | str = SKETCHRNN_SPLIT, seed: int = 0,
            splits: Sequence[str] = SPLITS, max_seq_len: int | None = None, clip: float | None = None,
            recognized_only: bool = False, skip_invalid: bool = False, raw: str = "simplify") -> list[Path]:
    """Convert between ``.ndjson`` and ``.npz`` (either way, or to the same format to filter/simplify).

    ``out`` is a file (``.npz``/``.ndjson``, one input) or a folder (one ``<category>.<to>`` per input). The
    output format is ``to``, else ``out``'s suffix, else the other format of the inputs. ndjson -> npz splits
    the drawings with :func:`random_split` (``split_sizes``, ``seed``); npz -> ndjson writes the ``splits``
    one after the other; npz -> npz keeps the splits. Nothing is filtered unless ``max_seq_len``, ``clip`` or
    ``recognized_only`` say so (one-point sketches are always left out). Returns the written paths.
    """
    files = expand_paths(inputs)
    out = Path(out)
    formats = {_format_of(f) for f in files}
    if to is None:
        if out.suffix in SET_SUFFIXES:
            to = _format_of(out)
        elif len(formats) == 1:
            to = "npz" if formats == {"ndjson"} else "ndjson"
        else:
            raise ValueError("inputs mix .npz and .ndjson: say the output format with --to npz|ndjson")
    if to not in ("npz", "ndjson"):
        raise ValueError(f"output format must be npz or ndjson, got {to!r}")
    if out.suffix in SET_SUFFIXES:
        if out.suffix != f".{to}":
            raise ValueError(f"{out}: output suffix does not match the output format {to!r}")
        if len(files) != 1:
            raise ValueError(f"{len(files)} input files but one output file {out}: give a folder as output")
        targets = [out]
    else:
        if out.exists() and not out.is_dir():
            raise ValueError(f"{out}: exists and is not a folder")
        targets = [out / f"{f.stem}.{to}" for f in files]
    opts = dict(max_seq_len=max_seq_len, clip=clip, recognized_only=recognized_only, skip_invalid=skip_invalid,
                raw=raw)
    written = []
    for src, dst in zip(files, targets):
        if src.resolve() == dst.resolve():
            raise ValueError(f"{dst}: output would overwrite its input")
        if src.suffix == ".npz":
            have = [s for s in splits if s in npz_splits(src)]
            if not have:
                raise ValueError(f"{src}: has none of the splits {list(splits)}")
            parts = {s: load_file(src, s, **opts) for s in have}
        else:
            every = load_file(src, "train", **opts)
            parts = random_split(every, split_sizes, seed) if to == "npz" else {"all": every}
        if to == "npz":
            save_npz(dst, parts)
        else:
            save_ndjson(dst, SketchSet.concat(list(parts.values())))
        written.append(dst)
    return written


# =============================================================================================== inspection
def length_stats(lengths: np.ndarray) -> dict[str, float]:
    """min, mean, p50, p90, p99, max of sketch lengths (zeros for none)."""
    if len(lengths) == 0:
        return {k: 0 for k in ("min", "mean", "p50", "p90", "p99", "max")}
    q = np.percentile(lengths, [50, 90, 99])
    return {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 1), "p50": float(q[0]),
            "p90": float(q[1]), "p99": float(q[2]), "max": int(lengths.max())}


def info(paths: PathLike | Iterable[PathLike], max_seq_len: int | None = 200, clip: float | None = 1000.0,
         recognized_only: bool = False, skip_invalid: bool = False, raw: str = "simplify") -> dict:
    """Counts per split and category, length percentiles, dropped sketches and the training scale.

    Lengths describe every valid sketch (before the ``max_seq_len`` filter); ``kept`` and ``dropped`` apply it.
    ``.ndjson`` files have no split: they are reported as split ``all`` (and count in every split of a mix).
    The scale is the std of ``dx, dy`` of the kept training sketches (None without a train split).
    """
    files = expand_paths(paths)
    npz = [f for f in files if f.suffix == ".npz"]
    names = [s for s in SPLITS if any(s in npz_splits(f) for f in npz)] if npz else ["all"]
    opts = dict(clip=clip, recognized_only=recognized_only, skip_invalid=skip_invalid, raw=raw)
    report: dict = {"files": [str(f) for f in files], "max_seq_len": max_seq_len, "clip": clip, "splits": {},
                    "scale": None}
    for name in names:
        sets = []
        for f in files:
            if f.suffix == ".npz" and name not in npz_splits(f):
                continue
            sets.append(load_file(f, "train" if name == "all" else name, max_seq_len=None, **opts))
        every = SketchSet.concat(sets)
        kept = every.subset(every.lengths <= max_seq_len) if max_seq_len is not None else every
        dropped = dict(every.dropped, too_long=len(every) - len(kept))
        report["splits"][name] = {"kept": len(kept), "dropped": dropped, "lengths": length_stats(every.lengths),
                                  "per_category": kept.counts()}
        if name in ("train", "all") and len(kept):
            report["scale"] = compute_scale(kept)
    return report


def format_info(report: dict) -> str:
    """The ``data info`` report as text."""
    lines = [f"{len(report['files'])} file(s): " + ", ".join(Path(f).name for f in report["files"])]
    head = f"{'split':<7}{'kept':>9}  {'too long':>8} {'1-point':>8} {'unrecog.':>8} {'invalid':>8}" \
           f"  {'len min':>7} {'p50':>6} {'p90':>6} {'p99':>6} {'max':>6} {'mean':>7}"
    lines += ["", head, "-" * len(head)]
    for name, sp in report["splits"].items():
        d, ls = sp["dropped"], sp["lengths"]
        lines.append(f"{name:<7}{sp['kept']:>9}  {d['too_long']:>8} {d['one_point']:>8} {d['unrecognized']:>8} "
                     f"{d['invalid']:>8}  {ls['min']:>7} {ls['p50']:>6.0f} {ls['p90']:>6.0f} {ls['p99']:>6.0f} "
                     f"{ls['max']:>6} {ls['mean']:>7.1f}")
    cats = list(next(iter(report["splits"].values()))["per_category"]) if report["splits"] else []
    for sp in report["splits"].values():
        cats += [c for c in sp["per_category"] if c not in cats]
    if cats:
        width = max(12, max(len(c) for c in cats) + 2)
        names = list(report["splits"])
        lines += ["", f"{'category':<{width}}" + "".join(f"{n:>9}" for n in names)]
        for c in cats:
            lines.append(f"{c:<{width}}" + "".join(f"{report['splits'][n]['per_category'].get(c, 0):>9}"
                                                   for n in names))
    limit = report["max_seq_len"]
    lines.append("")
    lines.append(f"kept = valid sketches with <= {limit} points" if limit is not None else "kept = valid sketches")
    if report["scale"] is not None:
        lines.append(f"scale (std of dx, dy of the kept training sketches): {report['scale']:.4f}")
    return "\n".join(lines)


# ================================================================================================= drawing
def _pick(sketches: SketchSet, n: int, seed: int | None, start: int) -> np.ndarray:
    """``n`` indices: random with ``seed``, else from ``start`` on, taking categories in turn."""
    if seed is not None:
        return np.sort(np.random.default_rng(seed).permutation(len(sketches))[:n])
    labels = sketches.labels.astype(np.int64)
    rank = np.zeros(len(sketches), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    order = np.lexsort((labels, rank))
    return order[rank[order] >= start][:n] if start else order[:n]


def draw_sketch(canvas: np.ndarray, s3: np.ndarray, box: tuple[int, int, int, int], thickness: int = 2,
                color: tuple[int, int, int] = (0, 0, 0)) -> None:
    """Draw stroke-3 ``s3`` onto ``canvas (H, W, 3) uint8`` fitted and centred in ``box = (x, y, w, h)``."""
    import cv2

    x0, y0, w, h = box
    lines = S.stroke3_to_polylines(np.asarray(s3, np.float64))
    pts = np.concatenate(lines)
    lo, hi = pts.min(0), pts.max(0)
    size = max(float((hi - lo).max()), 1e-6)
    scale = min(w, h) / size
    centre = np.array([x0 + w / 2, y0 + h / 2]) - (lo + hi) / 2 * scale
    shift = 4  # sub-pixel precision of cv2's fixed-point coordinates
    for line in lines:
        p = np.round((line * scale + centre) * (1 << shift)).astype(np.int32)
        if len(p) == 1 or np.all(p == p[0]):
            cv2.circle(canvas, tuple(int(v) for v in p[0]), max(thickness, 1) << shift >> 1, color, -1,
                       cv2.LINE_AA, shift)
        else:
            cv2.polylines(canvas, [p.reshape(-1, 1, 2)], False, color, thickness, cv2.LINE_AA, shift)


def _fit_text(text: str, width: int, font: int, font_scale: float) -> str:
    """``text`` shortened with ".." until it is at most ``width`` pixels wide."""
    import cv2

    if cv2.getTextSize(text, font, font_scale, 1)[0][0] <= width:
        return text
    while len(text) > 1 and cv2.getTextSize(text + "..", font, font_scale, 1)[0][0] > width:
        text = text[:-1]
    return text.rstrip() + ".."


def draw_grid(sketches: Sequence[np.ndarray], captions: Sequence[str] | None = None, cols: int | None = None,
              cell: int = 160, thickness: int = 2, margin: int | None = None) -> np.ndarray:
    """A grid picture ``(H, W, 3) uint8`` (BGR): black ink on white, one sketch per ``cell`` x ``cell`` square.

    Every sketch is scaled to fit its cell (aspect kept) and centred; ``captions`` go under the sketches.
    """
    import cv2

    n = len(sketches)
    if n == 0:
        raise ValueError("nothing to draw: no sketches")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    margin = margin if margin is not None else max(4, cell // 12)
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, cell / 400)
    text_h = cv2.getTextSize("Ag", font, font_scale, 1)[0][1] + 6 if captions else 0
    cell_h = cell + text_h
    img = np.full((rows * cell_h + 1, cols * cell + 1, 3), 255, np.uint8)
    for k, s3 in enumerate(sketches):
        r, c = divmod(k, cols)
        x, y = c * cell, r * cell_h
        cv2.rectangle(img, (x, y), (x + cell, y + cell_h), (225, 225, 225), 1)
        draw_sketch(img, s3, (x + margin, y + margin, cell - 2 * margin, cell - 2 * margin), thickness)
        if captions:
            text = _fit_text(str(captions[k]), cell - 6, font, font_scale)
            tw = cv2.getTextSize(text, font, font_scale, 1)[0][0]
            cv2.putText(img, text, (x + (cell - tw) // 2, y + cell + text_h - 6), font, font_scale, (90, 90, 90), 1,
                        cv2.LINE_AA)
    return img


def show(paths: PathLike | Iterable[PathLike], out: PathLike, split: str = "test", n: int = 64,
         cols: int | None = None, cell: int = 160, captions: bool = True, seed: int | None = None, start: int = 0,
         thickness: int = 2, max_seq_len: int | None = None, raw: str = "simplify") -> Path:
    """Draw ``n`` sketches of ``split`` into a grid picture at ``out`` (PNG/JPEG by suffix), written atomically.

    Sketches are taken in file order from ``start`` (several categories: in turn), or at random with ``seed``.
    Captions give the category and the index within the loaded split.
    """
    import cv2

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    sketches = load_sketches(paths, split=split, max_seq_len=max_seq_len, clip=None, skip_invalid=True, raw=raw)
    if len(sketches) == 0:
        raise ValueError(f"no sketches to show in split {split!r} of {[str(p) for p in expand_paths(paths)]}")
    idx = _pick(sketches, n, seed, start)
    if len(idx) == 0:
        raise ValueError(f"start={start} is past the last sketch")
    texts = [f"{sketches.category(i)} #{i}" for i in idx] if captions else None
    img = draw_grid([sketches[i] for i in idx], texts, cols=cols, cell=cell, thickness=thickness)
    out = Path(out)
    with atomic_path(out) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), img)
        except cv2.error as e:
            raise ValueError(f"{out}: cannot write this image type ({e.msg.strip()}); use .png or .jpg") from None
        if not ok:
            raise ValueError(f"{out}: cannot write this image type; use .png or .jpg")
    return out


# ====================================================================================================== CLI
def _limit(text: str) -> int | None:
    v = int(text)
    return None if v <= 0 else v


def _add_load_options(p: argparse.ArgumentParser, max_default: int | None, clip_default: float | None) -> None:
    p.add_argument("--max-seq-len", type=_limit, default=max_default, metavar="N",
                   help=f"keep sketches with at most N points; 0 = no limit (default: {max_default or 'no limit'})")
    p.add_argument("--clip", type=float, default=clip_default,
                   help=f"clip dx, dy to +-CLIP (default: {clip_default or 'none'})")
    p.add_argument("--recognized-only", action="store_true", help="drop drawings QuickDraw did not recognise")
    p.add_argument("--skip-invalid", action="store_true", help="count and skip invalid sketches instead of failing")
    p.add_argument("--raw", choices=RAW_MODES, default="simplify",
                   help="raw QuickDraw drawings: QuickDraw's simplification (default) or as drawn")


def _cmd_info(args: argparse.Namespace) -> int:
    report = info(args.paths, max_seq_len=args.max_seq_len, clip=args.clip, recognized_only=args.recognized_only,
                  skip_invalid=args.skip_invalid, raw=args.raw)
    print(json.dumps(report, indent=2) if args.json else format_info(report))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    out = show(args.paths, args.output, split=args.split, n=args.n, cols=args.cols, cell=args.cell,
               captions=not args.no_captions, seed=args.seed, start=args.start, thickness=args.thickness,
               max_seq_len=args.max_seq_len, raw=args.raw)
    print(f"wrote {out}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    written = convert(args.inputs, args.output, to=args.to, split_sizes=args.split_sizes, seed=args.seed,
                      splits=[s for s in args.splits.split(",") if s], max_seq_len=args.max_seq_len, clip=args.clip,
                      recognized_only=args.recognized_only, skip_invalid=args.skip_invalid, raw=args.raw)
    for path in written:
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data info``, ``data show`` and ``data convert``."""
    p = subparsers.add_parser("data", help="inspect, draw and convert sketch files (.npz, .ndjson)",
                              description="Inspect, draw and convert sketch files (sketch-rnn .npz, QuickDraw "
                                          ".ndjson).")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = sub.add_parser("info", help="counts, lengths, dropped sketches and the scale of sketch files")
    q.add_argument("paths", nargs="+", metavar="PATH", help=".npz / .ndjson files or folders")
    _add_load_options(q, 200, 1000.0)
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=_cmd_info)

    q = sub.add_parser("show", help="draw sketches into a grid picture")
    q.add_argument("paths", nargs="+", metavar="PATH", help=".npz / .ndjson files or folders")
    q.add_argument("--split", default="test", help="which .npz split (default: test)")
    q.add_argument("-n", type=int, default=64, help="how many sketches (default: 64)")
    q.add_argument("-o", "--output", required=True, help="picture to write (.png, .jpg)")
    q.add_argument("--cols", type=int, default=None, help="sketches per row (default: a square grid)")
    q.add_argument("--cell", type=int, default=160, help="cell side in pixels (default: 160)")
    q.add_argument("--thickness", type=int, default=2, help="line width in pixels (default: 2)")
    q.add_argument("--no-captions", action="store_true", help="no category captions")
    q.add_argument("--seed", type=int, default=None, help="pick sketches at random with this seed")
    q.add_argument("--start", type=int, default=0, help="skip the first START sketches (of each category)")
    q.add_argument("--max-seq-len", type=_limit, default=None, metavar="N", help="only sketches with <= N points")
    q.add_argument("--raw", choices=RAW_MODES, default="simplify", help="raw QuickDraw drawings: simplify or not")
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("convert", help="convert .ndjson <-> .npz (or filter / simplify within a format)")
    q.add_argument("inputs", nargs="+", metavar="IN", help=".npz / .ndjson files or folders")
    q.add_argument("-o", "--output", required=True,
                   help="output file (.npz / .ndjson, one input) or folder (one file per input)")
    q.add_argument("--to", choices=("npz", "ndjson"), default=None,
                   help="output format (default: from -o, else the other format)")
    q.add_argument("--split-sizes", default=",".join(f"{x:.6g}" for x in SKETCHRNN_SPLIT),
                   help="ndjson -> npz: train,valid,test as fractions or counts (default: the sketch-rnn "
                        "proportions 70000:2500:2500)")
    q.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    q.add_argument("--splits", default=",".join(SPLITS), help="npz -> ndjson: splits to write (default: all)")
    _add_load_options(q, None, None)
    q.set_defaults(func=_cmd_convert)


__all__ = ["SketchSet", "load_sketches", "load_file", "compute_scale", "longer_sides", "save_npz", "save_ndjson", "convert",
           "random_split", "info", "format_info", "show", "draw_grid", "draw_sketch", "expand_paths", "pack",
           "npz_splits", "register", "DROP_REASONS", "SPLITS"]
