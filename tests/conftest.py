"""Shared fixtures: the real data folder (../shared/data, or $SKETCHHEAL_DATA) and small synthetic sketches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sketchheal.utils.paths import shared_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"real data folder {d} not found (set SKETCHHEAL_DATA)")
    return d


@pytest.fixture(scope="session")
def sheep_npz(data_dir: Path) -> Path:
    p = data_dir / "sketch-rnn" / "aaron_sheep.npz"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


def make_sketch(rng: np.random.Generator, n_strokes: int = 3, points: int = 8) -> np.ndarray:
    """A random stroke-3 sketch (int-valued float32 offsets) for synthetic fixtures."""
    rows = []
    for _ in range(n_strokes):
        d = rng.integers(-20, 21, size=(points, 2)).astype(np.float32)
        pen = np.zeros((points, 1), np.float32)
        pen[-1] = 1
        rows.append(np.concatenate([d, pen], 1))
    return np.concatenate(rows, 0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
