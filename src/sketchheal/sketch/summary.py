"""What is in sketch files: counts per split and category, lengths, dropped sketches, the scale (``data info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from sketchheal.sketch.io import SPLITS, PathLike, SketchSet, compute_scale, expand_paths, npz_splits, read_file

__all__ = ["info", "format_info", "length_stats"]


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
    ``category_source`` says, per file, where its categories come from: its ``"file name"`` (``.npz``, and
    ``.ndjson`` drawings without a ``word``) or the ``"'word' field"`` of its drawings. An empty file raises
    ``ValueError`` naming it.
    """
    files = expand_paths(paths)
    npz = [f for f in files if f.suffix == ".npz"]
    splits_of = {f: npz_splits(f) for f in npz}
    names = [s for s in SPLITS if any(s in splits_of[f] for f in npz)] if npz else ["all"]
    opts = dict(clip=clip, recognized_only=recognized_only, skip_invalid=skip_invalid, raw=raw)
    report: dict = {"files": [str(f) for f in files], "max_seq_len": max_seq_len, "clip": clip, "splits": {},
                    "scale": None, "category_source": {}}
    for name in names:
        sets = []
        for f in files:
            if f.suffix == ".npz" and name not in splits_of[f]:
                continue
            s, source = read_file(f, "train" if name == "all" else name, max_seq_len=None, **opts)
            report["category_source"][str(f)] = source
            sets.append(s)
        every = SketchSet.concat(sets)
        kept = every.subset(every.lengths <= max_seq_len) if max_seq_len is not None else every
        dropped = dict(every.dropped, too_long=len(every) - len(kept))
        report["splits"][name] = {"kept": len(kept), "dropped": dropped, "lengths": length_stats(every.lengths),
                                  "per_category": kept.counts()}
        if name in ("train", "all") and len(kept):
            report["scale"] = compute_scale(kept)
    return report


def _sources_line(sources: dict[str, str]) -> str:
    by: dict[str, list[str]] = {}
    for f, src in sources.items():
        by.setdefault(src, []).append(Path(f).name)
    return "categories from " + "; from ".join(f"the {src} of {', '.join(fs)}" for src, fs in by.items())


def format_info(report: dict) -> str:
    """The ``data info`` report as text."""
    lines = [f"{len(report['files'])} file(s): " + ", ".join(Path(f).name for f in report["files"])]
    if report.get("category_source"):
        lines.append(_sources_line(report["category_source"]))
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
