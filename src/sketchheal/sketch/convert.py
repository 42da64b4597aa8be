"""Split and convert sketch files: ``.ndjson`` <-> ``.npz`` (what ``sketchheal data convert`` does).

Every input is read and checked, and every output named, before the first file is written; outputs are written
atomically, and if a write fails the outputs this call wrote are removed again. So a bad input or a bad split
never leaves half a conversion behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sketchheal.sketch.io import (
    SET_SUFFIXES, SPLITS, PathLike, SketchSet, expand_paths, load_file, npz_splits, save_ndjson, save_npz,
)

__all__ = ["convert", "random_split", "parse_split_sizes", "SKETCHRNN_SPLIT", "KEEP_IN_MEMORY"]

# The sketch-rnn QuickDraw files hold 70000 / 2500 / 2500 sketches per category.
SKETCHRNN_SPLIT = (70000 / 75000, 2500 / 75000, 2500 / 75000)
# Conversions whose inputs pack into at most this many bytes are read once; larger ones are read a second time
# when written (the check before writing reads them all first either way).
KEEP_IN_MEMORY = 1 << 30


def parse_split_sizes(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` (fractions) or ``"70000,2500,2500"`` (counts) -> three numbers."""
    try:
        parts = [float(x) for x in text.split(",")] if isinstance(text, str) else [float(x) for x in text]
    except (TypeError, ValueError):
        parts = []
    if len(parts) != 3 or any(not x >= 0 for x in parts) or sum(parts) <= 0 or not np.isfinite(sum(parts)):
        raise ValueError(f"split sizes must be three non-negative numbers train,valid,test, got {text!r}")
    return parts[0], parts[1], parts[2]


def random_split(sketches: SketchSet, sizes: Sequence[float] | str = SKETCHRNN_SPLIT,
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
        train = min(n - valid - test, round(n * sum(sizes)) - valid - test)
        counts = [max(train, 0), valid, test]
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return {name: sketches.subset(np.sort(perm[a:b])) for name, a, b in zip(SPLITS, bounds[:-1], bounds[1:])}


def _format_of(path: Path) -> str:
    return path.suffix.lstrip(".")


def _safe_name(name: str) -> str:
    """A category as a file name: path separators and control characters become ``_``."""
    return "".join("_" if c in '/\\:' or ord(c) < 32 else c for c in name).strip() or "sketch"


def _by_category(s: SketchSet) -> dict[str, SketchSet]:
    """The sketches of each category of ``s`` that has any, in category order."""
    labels = s.labels.astype(np.int64)
    return {c: s.subset(labels == i) for i, c in enumerate(s.categories) if (labels == i).any()}


class _Plan:
    """What one conversion writes: for every input, its outputs ``[(path, {split: SketchSet})]``."""

    def __init__(self, to: str, out: Path, single: bool, opts: dict, sizes, seed: int, splits: Sequence[str]):
        self.to, self.out, self.single, self.opts = to, out, single, opts
        self.sizes, self.seed, self.splits = sizes, seed, list(splits)

    def outputs(self, src: Path) -> list[tuple[Path, dict[str, SketchSet]]]:
        if src.suffix == ".npz":
            have = [s for s in self.splits if s in npz_splits(src)]
            if not have:
                raise ValueError(f"{src}: has none of the splits {self.splits}")
            parts = {s: load_file(src, s, **self.opts) for s in have}
            if self.to == "ndjson":
                return [(self._target(src.stem), {"all": SketchSet.concat(list(parts.values()))})]
            return [(self._target(src.stem), parts)]
        every = load_file(src, "train", **self.opts)
        if self.to == "ndjson":
            return [(self._target(src.stem), {"all": every})]
        groups = _by_category(every) or {src.stem: every}
        if self.single and len(groups) > 1:
            raise ValueError(f"{src}: holds {len(groups)} categories ('word' fields: {', '.join(groups)}) and an "
                             ".npz file holds one; give a folder as output (one .npz per category)")
        out = []
        for category, group in groups.items():
            try:
                parts = random_split(group, self.sizes, self.seed)
            except ValueError as e:
                raise ValueError(f"{src}: category {category!r}: {e}") from None
            out.append((self._target(category), parts))
        return out

    def _target(self, name: str) -> Path:
        return self.out if self.single else self.out / f"{_safe_name(name)}.{self.to}"


def _output_format(files: list[Path], out: Path, to: str | None) -> tuple[str, bool]:
    """The output format and whether ``out`` is one file (else a folder)."""
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
    if out.suffix in SET_SUFFIXES and not out.is_dir():
        if out.suffix != f".{to}":
            raise ValueError(f"{out}: output suffix does not match the output format {to!r}")
        if len(files) != 1:
            raise ValueError(f"{len(files)} input files but one output file {out}: give a folder as output")
        return to, True
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.suffix and not out.exists():
        raise ValueError(f"{out}: the output must be a .npz or .ndjson file, or a folder; {out.suffix!r} is "
                         "neither (create the folder first if it is one)")
    return to, False


def convert(inputs: PathLike | Iterable[PathLike], out: PathLike, *, to: str | None = None,
            split_sizes: Sequence[float] | str = SKETCHRNN_SPLIT, seed: int = 0,
            splits: Sequence[str] = SPLITS, max_seq_len: int | None = None, clip: float | None = None,
            recognized_only: bool = False, skip_invalid: bool = False, raw: str = "simplify") -> list[Path]:
    """Convert between ``.ndjson`` and ``.npz`` (either way, or to the same format to filter/simplify).

    ``out`` is a file (``.npz``/``.ndjson``, one input) or a folder. The output format is ``to``, else ``out``'s
    suffix, else the other format of the inputs. To a folder: ``.ndjson`` outputs are one ``<stem>.ndjson`` per
    input (each drawing keeps its ``word``); ``.npz`` outputs are one ``<category>.npz`` per category (an
    ``.ndjson`` drawing's category is its ``word``, so a file that mixes words gives several). ndjson -> npz splits
    each category's drawings with :func:`random_split` (``split_sizes``, ``seed``); npz -> ndjson writes the
    ``splits`` one after the other; npz -> npz keeps the splits. Nothing is filtered unless ``max_seq_len``, ``clip``
    or ``recognized_only`` say so (one-point sketches are always left out).

    Every input is read and checked before anything is written (see the module doc). Returns the written paths.
    """
    files = expand_paths(inputs)
    out = Path(out)
    to, single = _output_format(files, out, to)
    sizes = parse_split_sizes(split_sizes)
    opts = dict(max_seq_len=max_seq_len, clip=clip, recognized_only=recognized_only, skip_invalid=skip_invalid,
                raw=raw)
    plan = _Plan(to, out, single, opts, sizes, seed, splits)
    inputs_resolved = {f.resolve(): f for f in files}
    kept: dict[Path, list] = {}
    owner: dict[Path, Path] = {}
    held = 0
    for src in files:  # 1. read and check everything, name every output
        outputs = plan.outputs(src)
        for dst, _ in outputs:
            if dst.resolve() in inputs_resolved:
                raise ValueError(f"{dst}: output would overwrite its input")
            if dst.resolve() in owner:
                raise ValueError(f"{dst}: both {owner[dst.resolve()]} and {src} would write it; convert them "
                                 "separately")
            owner[dst.resolve()] = src
        held += sum(s.nbytes for _, parts in outputs for s in parts.values())
        if held <= KEEP_IN_MEMORY:
            kept[src] = outputs
    written: list[Path] = []
    try:  # 2. write
        for src in files:
            for dst, parts in kept.pop(src, None) or plan.outputs(src):
                if to == "npz":
                    save_npz(dst, parts)
                else:
                    save_ndjson(dst, SketchSet.concat(list(parts.values())))
                written.append(dst)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return written
