"""The evaluation's masks: a fixed table of uniforms, one row per sketch, for :func:`sketchheal.sketch.render.corrupt`.

Candidate ``k`` of sketch ``i`` is erased iff ``table[i, k] < p``, so the masks of one table are nested across ``p``
and a saved table (``masks.npy``) reproduces an evaluation exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sketchheal.sketch.render import MAX_PATCHES
from sketchheal.utils.fileio import atomic_write
from sketchheal.utils.npfile import load_npy

__all__ = ["MaskTable"]


class MaskTable:
    """A fixed table of U[0, 1) numbers, one row of ``max_patches`` per sketch, for reproducible evaluation masks.

    ``MaskTable(n_sketches, seed)`` draws ``(n_sketches, max_patches) float64`` from ``numpy.random.default_rng(seed)``.
    Row ``i`` feeds :func:`corrupt` for sketch ``i``; since candidate ``k`` is erased iff ``u[i, k] < p``, the masks of
    one table are nested across ``p`` (10 % subset of 30 % subset of 50 %).
    """

    def __init__(self, n_sketches: int, seed: int, max_patches: int = MAX_PATCHES) -> None:
        if int(n_sketches) != n_sketches or n_sketches < 0:
            raise ValueError(f"n_sketches must be a non-negative integer, got {n_sketches!r}")
        if int(max_patches) != max_patches or max_patches < 1:
            raise ValueError(f"max_patches must be a positive integer, got {max_patches!r}")
        rng = np.random.default_rng(seed)
        self._table = rng.random((int(n_sketches), int(max_patches)))
        self.seed: int | None = seed

    @classmethod
    def from_array(cls, table: np.ndarray, seed: int | None = None) -> "MaskTable":
        """Wrap an existing ``(n_sketches, max_patches)`` array of numbers in [0, 1)."""
        t = np.asarray(table)
        problem = _table_problem(t)
        if problem:
            raise ValueError(f"not a mask table: {problem}")
        obj = cls.__new__(cls)
        obj._table = np.ascontiguousarray(t, dtype=np.float64)
        obj.seed = seed
        return obj

    @property
    def table(self) -> np.ndarray:
        """The ``(n_sketches, max_patches) float64`` uniforms (read-only view)."""
        v = self._table.view()
        v.flags.writeable = False
        return v

    @property
    def n_sketches(self) -> int:
        return int(self._table.shape[0])

    @property
    def max_patches(self) -> int:
        return int(self._table.shape[1])

    def __len__(self) -> int:
        return self.n_sketches

    def uniforms(self, i: int) -> np.ndarray:
        """Row ``i``: ``(max_patches,) float64``."""
        if not -self.n_sketches <= i < self.n_sketches:
            raise IndexError(f"mask table has {self.n_sketches} rows; index {i} is out of range "
                             "(build the table with one row per evaluated sketch)")
        return self._table[i]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as a ``.npy`` file (atomically); returns the path."""
        path = Path(path)
        if path.suffix != ".npy":
            raise ValueError(f"{path}: a mask table is saved as .npy; use a file name ending in .npy")
        with atomic_write(path, "wb") as f:
            np.save(f, self._table, allow_pickle=False)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, n_sketches: int | None = None,
             max_patches: int | None = None) -> "MaskTable":
        """Read a table written by :meth:`save` (or the published ``seed.npy`` layout ``(n, m)`` of uniforms).

        ``n_sketches`` / ``max_patches``, when given, must match the stored shape (rows may exceed n_sketches).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: mask table not found; create one with MaskTable(n, seed).save(path)")
        t = load_npy(path)
        problem = _table_problem(t)
        if problem:
            raise ValueError(f"{path}: not a mask table: {problem}")
        if max_patches is not None and t.shape[1] != max_patches:
            raise ValueError(f"{path}: table has {t.shape[1]} columns but max_patches={max_patches}; "
                             "regenerate it with the same max_patches")
        if n_sketches is not None and t.shape[0] < n_sketches:
            raise ValueError(f"{path}: table has {t.shape[0]} rows, fewer than the {n_sketches} sketches; "
                             "regenerate it with at least one row per sketch")
        return cls.from_array(t)


def _table_problem(t: np.ndarray) -> str:
    """Why ``t`` is not a valid table (empty string when it is)."""
    if t.ndim != 2:
        return f"expected a 2-D array (n_sketches, max_patches), got shape {t.shape}"
    if t.shape[1] < 1:
        return f"expected at least one column, got shape {t.shape}"
    if not np.issubdtype(t.dtype, np.floating):
        return f"expected floating-point uniforms, got dtype {t.dtype}"
    if t.size and not ((t >= 0) & (t < 1)).all():
        return "values must lie in [0, 1)"
    return ""
