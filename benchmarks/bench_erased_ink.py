"""Where the erased ink of the test sheep lies, and how much of it bridging could ever bring back.

The squares of the vector erasure (``sketchheal.sketch.erase``, the published masks, seed 0) cut each stroke into
kept pieces. The erased ink then falls in two kinds:

- **interior gaps**: the part of a stroke between two of its kept pieces; both sides of the gap are in the input,
  so a bridge between the two loose ends can bring it back;
- **lost ends**: a stroke's start or end inside a square, or a stroke erased whole; nothing in the input leads
  into it, so it comes back only if the healer invents it.

For each p it prints (and writes as JSON) the share of the erased ink in interior gaps; what would be recalled
with hindsight (the exact erased interiors; the exact lost ends; for the right pairs of ends, the straight line,
the smooth curve and the best of completion's three bridge curves, ``sketchheal.inference.bridges.bridge_curves``,
chosen by the original); and completion as shipped (``sketchheal heal``: the bundled model, its gap-filler, the
bridge scorer, the domain rule) with its recall split by kind. All figures in the original's frame at 128 px,
1-px lines, 2-px tolerance (``sketchheal.evaluation.healing``)::

    python benchmarks/bench_erased_ink.py [--p 0.1 0.3 0.5] [--limit N] [--out benchmarks/results/erased_ink.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sketchheal.evaluation.healing import TOLERANCE, distance_map, frame_of, ink, ink_counts, summarise
from sketchheal.evaluation.modes import complete_batch
from sketchheal.inference.bridges import bridge_curves, loose_ends
from sketchheal.inference.complete import CompletionParams
from sketchheal.inference.domain import load_domain
from sketchheal.inference.loading import load_model
from sketchheal.sketch.erase import erase, erase_points, erase_squares
from sketchheal.sketch.masks import MaskTable
from sketchheal.utils.paths import ASSETS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_complete as bc  # noqa: E402  (the same erased test sheep as its sheep-vector set)


def _arclength(line: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(line, axis=0).T))])


def _locate(line: np.ndarray, s: np.ndarray, pt: np.ndarray) -> float:
    """Arc position on ``line`` (arc lengths ``s``) of the point of it nearest ``pt``."""
    a, b = line[:-1], line[1:]
    d = b - a
    ll = (d * d).sum(1)
    t = np.clip(((pt - a) * d).sum(1) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
    k = int(np.argmin(((a + t[:, None] * d - pt) ** 2).sum(1)))
    return float(s[k] + t[k] * np.sqrt(ll[k]))


def _between(line: np.ndarray, s: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """The part of ``line`` between arc positions ``s0 < s1``."""
    at = lambda v: [np.interp(v, s, line[:, 0]), np.interp(v, s, line[:, 1])]  # noqa: E731
    inner = [line[k] for k in range(len(line)) if s0 < s[k] < s1]
    return np.array([at(s0), *inner, at(s1)], np.float64)


def split_erased(original, centres: np.ndarray, side: float, cut: bool = True):
    """The erased ink of absolute strokes ``original`` under squares ``centres`` / ``side`` (``cut``: strokes cut
    on the squares' borders, else only the points inside removed): interior gaps (polylines), lost ends
    (polylines) and the pairs of kept pieces on either side of each interior gap."""
    interior, ends, pairs = [], [], []
    for line in original:
        line = np.asarray(line, np.float64).reshape(-1, 2)
        if len(line) < 2:
            continue
        s = _arclength(line)
        erase_one = erase_squares if cut else erase_points
        pieces = [q for q in (erase_one([line], centres, side) if len(centres) else [line]) if len(q)]
        if not pieces:
            ends.append(line)
            continue
        at = [(_locate(line, s, q[0]), _locate(line, s, q[-1])) for q in pieces]
        if at[0][0] > 1e-9:
            ends.append(_between(line, s, 0.0, at[0][0]))
        if at[-1][1] < s[-1] - 1e-9:
            ends.append(_between(line, s, at[-1][1], s[-1]))
        for (_, a1), (b0, _), qa, qb in zip(at[:-1], at[1:], pieces[:-1], pieces[1:]):
            if b0 > a1:
                interior.append(_between(line, s, a1, b0))
                pairs.append((qa, qb))
    return interior, ends, pairs


def pair_curves(pairs, frame, size: int, interior_ink: np.ndarray, n: int = 24):
    """For the right pairs of ends: the straight line, the smooth curve (the straight line where an end has no
    direction) and, of completion's three bridge curves, the one that runs most on the erased interior ink."""
    straight, smooth, best = [], [], []
    d_int = distance_map(interior_ink)
    for qa, qb in pairs:
        px = frame.apply(np.concatenate([qa, qb], 0))
        idx, tan, _, _ = loose_ends(px, np.array([0, len(qa)]))
        # ends: qa's last point (its second end), qb's first point (its first end)
        ea, eb = int(np.flatnonzero(idx == len(qa) - 1)[-1]), int(np.flatnonzero(idx == len(qa))[0])
        curves, valid = bridge_curves(px[idx[[ea]]], tan[[ea]], px[idx[[eb]]], tan[[eb]], n)  # (1, 3, n, 2)
        on = [float((d_int[np.clip(np.rint(c[:, 1]).astype(int), 0, size - 1),
                           np.clip(np.rint(c[:, 0]).astype(int), 0, size - 1)] <= TOLERANCE).mean())
              if v else -1.0 for c, v in zip(curves[0], valid[0])]
        back = [frame.invert(c) for c in curves[0]]
        straight.append(back[0])
        smooth.append(back[1] if valid[0, 1] else back[0])
        best.append(back[int(np.argmax(on))])
    return straight, smooth, best


def measure(healer, gapfill, domain, p: float, limit: int | None, size: int = 128, cut: bool = True,
            which: str = "sheep-vector") -> dict:
    if which == "sheep-vector":
        cases = bc.sheep_cases([p], 0, limit, raster=False, cut=cut)
        table = MaskTable(len(bc.load_sketches(bc.DATA / "sketch-rnn" / "aaron_sheep.npz", split="test")), 0)
    else:
        cases = bc.qd_cases([p], 0, 10, bc.GAPDATA / "qd_holdout", cut=cut)[:limit]
        table = MaskTable(len(bc.qd_cases([p], 0, 10, bc.GAPDATA / "qd_holdout")), 0)
    t0 = time.perf_counter()
    added, _ = complete_batch(healer, [c.inputs for c in cases], [c.original for c in cases], None,
                              gapfill=gapfill, domain=domain, batch_size=64, params=CompletionParams(), scorer="auto",
                              ordered=[True] * len(cases))
    seconds = time.perf_counter() - t0
    oracle = {k: [] for k in ("interior_exact", "ends_exact", "straight", "smooth", "best_of_three")}
    split = dict(interior=0, interior_hit=0, ends=0, ends_hit=0)
    for i, (c, add) in enumerate(zip(cases, added)):
        e = erase(c.original, p, uniforms=table.uniforms(i), cut=cut)
        interior, ends, pairs = split_erased(c.original, e.centres, e.side, cut)
        frame = frame_of(c.original, size)
        o, k, h, it = (ink(x, frame, size) for x in (c.original, c.inputs, list(c.inputs) + add, interior))
        straight, smooth, best = pair_curves(pairs, frame, size, it)
        for name, extra in (("interior_exact", interior), ("ends_exact", ends), ("straight", straight),
                            ("smooth", smooth), ("best_of_three", best)):
            oracle[name].append(ink_counts(c.original, c.inputs, list(c.inputs) + extra, frame=frame, size=size))
        erased = o & (distance_map(k) > TOLERANCE)
        is_int = erased & (distance_map(it) <= 1.0)
        hit = distance_map(h) <= TOLERANCE
        split["interior"] += int(is_int.sum())
        split["interior_hit"] += int((is_int & hit).sum())
        split["ends"] += int((erased & ~is_int).sum())
        split["ends_hit"] += int((erased & ~is_int & hit).sum())
    comp = summarise(ink_counts(c.original, c.inputs, list(c.inputs) + a) for c, a in zip(cases, added))
    total = split["interior"] + split["ends"]
    return {
        "n": len(cases), "interior_share": split["interior"] / total if total else None,
        "oracle": {k: {m: summarise(v)[m] for m in ("recall", "precision")} for k, v in oracle.items()},
        "completion": {"recall": comp["recall"], "precision": comp["precision"],
                       "recall_interior": split["interior_hit"] / max(1, split["interior"]),
                       "recall_ends": split["ends_hit"] / max(1, split["ends"]),
                       "seconds_per_drawing": seconds / max(1, len(cases))},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    ap.add_argument("--limit", type=int, default=None, help="the first N test sheep (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", default="sheep-vector", choices=("sheep-vector", "qd-holdout"),
                    help="the test sheep, or the held-out QuickDraw drawings (10 a category, $SKETCHHEAL_GAPDATA)")
    ap.add_argument("--erasure", choices=("squares", "points"), default="squares",
                    help="strokes cut on the squares' borders (default), or only the points inside removed")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    healer = load_model(None, device="cpu")
    gapfill = load_model(ASSETS_DIR / "gapfill", device="cpu")
    domain = load_domain(healer.source)
    cut = args.erasure == "squares"
    result = {"set": args.set, "erasure": args.erasure, "cpu": bc._cpu(),
              "by_p": {str(p): measure(healer, gapfill, domain, p, args.limit, cut=cut, which=args.set)
                       for p in args.p}}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
