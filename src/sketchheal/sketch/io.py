"""Sketch files in and out: reading, validation and filtering into a :class:`SketchSet`, and the writers.

Formats (docs/data.md has the details):

- sketch-rnn ``.npz``: keys ``train``/``valid``/``test``, each an object array of stroke-3 arrays ``(n, 3)``
  (int16 in Google's files, float also accepted). The object arrays are pickles; they are read by
  :mod:`sketchheal.utils.npfile`, which builds arrays of numbers and nothing else, so opening a file never runs
  code from it. One category per file: the file stem, spaces kept ("The Great Wall of China.npz").
- QuickDraw ``.ndjson``: one JSON object a line whose ``drawing`` is a list of strokes, ``[[x...], [y...]]``
  ("simplified", ints 0-255) or ``[[x...], [y...], [t...]]`` ("raw", float screen coordinates). No split: every
  split name returns all drawings. Raw drawings go through QuickDraw's own simplification by default
  (``raw="simplify"``), so that they look like the simplified and ``.npz`` data; ``raw="direct"`` keeps them.
  The category of a drawing is its ``word`` field (a file that mixes words gives several categories); drawings
  without one take the file stem.

Errors are ``ValueError`` / ``FileNotFoundError`` whose message starts with the file (and line or sketch); an
invalid sketch raises :class:`InvalidSketchError` unless ``skip_invalid`` counts and skips it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from sketchheal.sketch import strokes as S
from sketchheal.sketch.sketchset import (
    DROP_REASONS, SketchSet, compute_scale, longer_sides, pack, storage_dtype,
)
from sketchheal.utils.fileio import atomic_path, atomic_write
from sketchheal.utils.npfile import NpzArchive

__all__ = ["SketchSet", "load_sketches", "load_file", "read_file", "compute_scale", "longer_sides", "save_npz",
           "save_ndjson", "read_ndjson_records", "expand_paths", "pack", "npz_splits", "InvalidSketchError",
           "DROP_REASONS", "SPLITS", "SKETCH_SUFFIXES", "IMAGE_SUFFIXES", "SET_SUFFIXES", "RAW_MODES"]

SPLITS = ("train", "valid", "test")
# THE suffix lists: files sketchheal reads as sketches (vector) and as images (raster).
SKETCH_SUFFIXES = (".npz", ".ndjson", ".svg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Files holding many sketches (splits / drawings): what load_sketches reads and folders are searched for.
SET_SUFFIXES = (".npz", ".ndjson")
RAW_MODES = ("simplify", "direct")
# Where a file's categories come from (``read_file``'s second result).
FROM_FILE_NAME, FROM_WORD = "file name", "'word' field"

PathLike = str | os.PathLike


class InvalidSketchError(ValueError):
    """One sketch of a file is not a usable stroke-3 sketch (the message names the file and the sketch)."""


# ================================================================================================== checking
class _Problems:
    """Raises on the first bad sketch, or counts it when ``skip`` is set."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.count = 0

    def __call__(self, where: str, problem: str) -> None:
        if not self.skip:
            raise InvalidSketchError(f"{where}: {problem}")
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

    dropped = {k: 0 for k in DROP_REASONS}
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
    points = points.astype(storage_dtype(points), copy=False)
    kept = idx[keep]
    offsets = np.zeros(len(kept) + 1, np.int64)
    np.cumsum(lengths[kept], out=offsets[1:])
    return points, offsets, kept, dropped


# ================================================================================================== reading
def _open_npz(path: Path) -> NpzArchive:
    """A sketch-rnn ``.npz`` opened for safe reading (a lone pickle or .npy is refused before anything is read)."""
    expected = ("expected np.savez output with train/valid/test arrays of stroke-3 sketches, as the sketch-rnn "
                "files")
    with open(path, "rb") as f:
        magic = f.read(4)
    if not magic:
        raise ValueError(f"{path}: the file is empty (0 bytes)")
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not a sketch-rnn .npz file (not a zip archive); {expected}")
    return NpzArchive(path)


def npz_splits(path: PathLike) -> list[str]:
    """The array names (splits) stored in a sketch-rnn ``.npz`` file."""
    with _open_npz(_existing(path)) as z:
        return list(z.files)


def _read_npz(path: Path, split: str) -> list:
    with _open_npz(path) as z:
        if split not in z.files:
            have = ", ".join(z.files) or "nothing"
            raise ValueError(f"{path}: has no {split!r} split (it has: {have}); choose one of those")
        arr = z[split]
        if len(arr) == 0 and all(z.shape(k)[:1] == (0,) for k in z.files):
            raise ValueError(f"{path}: the file is empty (its splits {', '.join(z.files)} hold no sketches)")
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


def _read_ndjson(path: Path, raw: str, problems: _Problems) -> tuple[list, list[int], np.ndarray, list]:
    """Every drawing of a QuickDraw ``.ndjson`` file: stroke-3 arrays, their line numbers, ``recognized``, and
    their ``word`` (None where there is none)."""
    arrays, lines, recognized, words = [], [], [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text .ndjson file ({e})") from None
    records = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not records:
        raise ValueError(f"{path}: the file is empty (no drawings)")
    for lineno, line in records:
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "drawing" not in rec:
                raise ValueError("expected a JSON object with a 'drawing' field")
            s3 = _drawing_to_stroke3(rec["drawing"], raw)
        except json.JSONDecodeError as e:
            problems(f"{path}:{lineno}", f"malformed JSON ({e.msg} at column {e.colno})")
            continue
        except (ValueError, TypeError, RecursionError) as e:
            problems(f"{path}:{lineno}", str(e) if isinstance(e, ValueError) else f"not a drawing ({e})")
            continue
        word = rec.get("word")
        arrays.append(s3)
        lines.append(lineno)
        recognized.append(bool(rec.get("recognized", True)))
        words.append(word.strip() if isinstance(word, str) and word.strip() else None)
    return arrays, lines, np.array(recognized, bool), words


def read_ndjson_records(path: PathLike) -> list[tuple[int, dict, list[np.ndarray]]]:
    """Every drawing of a QuickDraw ``.ndjson`` file as given, in file order (blank lines skipped): ``(line
    number, the JSON object as parsed, its strokes as absolute (k, 2) float64 polylines)``. The object keeps every
    field (``word``, ``key_id``, ``countrycode``, ``recognized``, ``timestamp``, ``drawing``, ...) untouched, so
    a writer can give the drawing back exactly; raw strokes' timestamps stay in it and are left out of the
    polylines. Unlike :func:`load_file` nothing is simplified, dropped or filtered: a drawing with no points
    (``"drawing": []``, e.g. everything erased) is returned with no or empty polylines. Raises
    :class:`InvalidSketchError` naming ``path:line`` for the first line that is not a drawing, ``ValueError`` for
    a file with none."""
    path = _existing(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is no part of the first drawing
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text .ndjson file ({e})") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("drawing"), list):
                raise ValueError("expected a JSON object whose 'drawing' is a list of strokes")
            lines = S.quickdraw_to_polylines(rec["drawing"])
        except json.JSONDecodeError as e:
            raise InvalidSketchError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
        except (ValueError, TypeError, OverflowError, RecursionError) as e:
            why = str(e) if isinstance(e, ValueError) else f"not a drawing ({e})"
            raise InvalidSketchError(f"{path}:{lineno}: {why}") from None
        out.append((lineno, rec, lines))
    if not out:
        raise ValueError(f"{path}: the file is empty (no drawings)")
    return out


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


def _labels(words: list, stem: str) -> tuple[np.ndarray, list[str], str]:
    """Per-drawing labels, the categories (first appearance first) and where they came from."""
    if all(w is None for w in words):
        return np.zeros(len(words), np.int16), [stem], FROM_FILE_NAME
    names = [stem if w is None else w for w in words]
    categories = list(dict.fromkeys(names))
    index = {c: i for i, c in enumerate(categories)}
    return np.array([index[c] for c in names], np.int16), categories, FROM_WORD


def read_file(path: PathLike, split: str = "train", max_seq_len: int | None = 200, clip: float | None = 1000.0,
              recognized_only: bool = False, skip_invalid: bool = False,
              raw: str = "simplify") -> tuple[SketchSet, str]:
    """:func:`load_file`, and where the categories came from (``"file name"`` or ``"'word' field"``)."""
    path = _existing(path)
    if raw not in RAW_MODES:
        raise ValueError(f"raw must be one of {RAW_MODES}, got {raw!r}")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; pass the files in it (load_sketches reads folders)")
    if path.suffix not in SET_SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; expected .npz or .ndjson")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes)")
    problems = _Problems(skip_invalid)
    recognized, labels, categories, source = None, None, [path.stem], FROM_FILE_NAME
    if path.suffix == ".npz":
        arrays = _read_npz(path, split)
        where = lambda i: f"{path}: split {split!r}, sketch {i}"  # noqa: E731
    else:
        arrays, linenos, recognized, words = _read_ndjson(path, raw, problems)
        labels, categories, source = _labels(words, path.stem)
        where = lambda i: f"{path}:{linenos[i]}"  # noqa: E731
    points, offsets, kept, dropped = _filter(arrays, where, max_seq_len=max_seq_len, clip=clip, problems=problems,
                                             recognized=recognized, recognized_only=recognized_only)
    rec = recognized[kept] if recognized is not None else None
    lab = labels[kept] if labels is not None else np.zeros(len(kept), np.int16)
    return SketchSet(points, offsets, lab, categories, dropped, rec), source


def load_file(path: PathLike, split: str = "train", max_seq_len: int | None = 200, clip: float | None = 1000.0,
              recognized_only: bool = False, skip_invalid: bool = False, raw: str = "simplify") -> SketchSet:
    """One file's sketches as a :class:`SketchSet` (one category, or one per ``word`` of an ``.ndjson``). See
    :func:`load_sketches`."""
    return read_file(path, split, max_seq_len, clip, recognized_only, skip_invalid, raw)[0]


def load_sketches(paths: PathLike | Iterable[PathLike], split: str = "train", max_seq_len: int | None = 200,
                  clip: float | None = 1000.0, recognized_only: bool = False, skip_invalid: bool = False,
                  raw: str = "simplify") -> SketchSet:
    """Load sketch-rnn ``.npz`` and QuickDraw ``.ndjson`` files into one :class:`SketchSet`.

    Args:
        paths: files or folders (a folder = its .npz and .ndjson files). Categories: an ``.npz`` file is one
            category (its stem); an ``.ndjson`` drawing's category is its ``word`` (else the file stem).
        split: the ``.npz`` array to read (``train``, ``valid``, ``test``); ``.ndjson`` files return everything.
        max_seq_len: keep sketches with at most this many points (``None``: no limit). Paper: 200.
        clip: clip ``dx, dy`` to ``[-clip, clip]`` (``None``: no clipping). Paper: 1000.
        recognized_only: drop drawings that QuickDraw's classifier did not recognise (``.ndjson`` only).
        skip_invalid: count and skip invalid sketches instead of raising :class:`InvalidSketchError`.
        raw: raw ``.ndjson`` drawings: ``"simplify"`` (QuickDraw's pipeline, default) or ``"direct"``.

    Returns a SketchSet whose ``dropped`` counts the sketches left out (too long, one point, unrecognised,
    invalid). Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file (and line or
    sketch) for anything unreadable, including an empty file (0 bytes, no drawings, or only empty splits).
    """
    return SketchSet.concat([load_file(p, split, max_seq_len, clip, recognized_only, skip_invalid, raw)
                             for p in expand_paths(paths)])


# ================================================================================================== writing
def _as_set(sketches: SketchSet | Sequence[np.ndarray]) -> SketchSet:
    return sketches if isinstance(sketches, SketchSet) else SketchSet.from_sketches(sketches)


def _split_arrays(splits: Mapping[str, SketchSet | Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """Each split as an object array of stroke-3 arrays (the stored rows, int16 when lossless)."""
    arrays = {}
    for name, sketches in splits.items():
        s = _as_set(sketches)
        obj = np.empty(len(s), dtype=object)
        for i in range(len(s)):
            obj[i] = s.points[s.offsets[i]:s.offsets[i + 1]].copy()
        arrays[name] = obj
    return arrays


def save_npz(path: PathLike, splits: Mapping[str, SketchSet | Sequence[np.ndarray]], compress: bool = True) -> Path:
    """Write a sketch-rnn ``.npz`` atomically: each split an object array of stroke-3 arrays.

    Values are stored as int16 when that is lossless (as Google's files), else float32. Returns the path.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a sketch-rnn file must end in .npz")
    arrays = _split_arrays(splits)
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
    file back gives the same stroke-3 rows. ``word`` is the category (the file stem for a plain list of arrays),
    ``key_id`` the index in ``sketches``.
    """
    s = sketches if isinstance(sketches, SketchSet) else SketchSet.from_sketches(sketches, categories=[Path(path).stem])
    with atomic_write(path, "w") as f:
        for i in range(len(s)):
            rec = _ndjson_record(s[i], s.category(i), s.recognized[i], str(i))
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return Path(path)
