"""The packed sketch container: every sketch of a split in one points array plus offsets and labels.

Millions of sketches are a handful of numpy arrays: cheap to pickle into DataLoader workers and free of per-sketch
Python objects. :func:`pack` is the one packer (int16 storage when lossless); :func:`compute_scale` is the
training split's normalisation scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

__all__ = ["SketchSet", "pack", "storage_dtype", "longer_sides", "compute_scale", "DROP_REASONS"]

# Reasons a loaded sketch can be dropped; every SketchSet.dropped has these keys.
DROP_REASONS = ("too_long", "one_point", "unrecognized", "invalid")
_INT16 = np.iinfo(np.int16)


def _zero_drops() -> dict[str, int]:
    return {k: 0 for k in DROP_REASONS}


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
        """Pack stroke-3 arrays (no validation: :func:`sketchheal.sketch.io.load_sketches` validates). Labels
        default to 0."""
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


def storage_dtype(values: np.ndarray) -> type:
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
    return points.astype(storage_dtype(points), copy=False), offsets


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
