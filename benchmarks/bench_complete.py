"""Measure healing by ink (issue 17): completion vs redraw vs the floor (the input itself).

Data sets (``--sets``):

- ``sheep-raster``: the test sheep (aaron_sheep.npz, test split), the published raster masks (MaskTable(n, seed)
  rows, candidate k erased iff u[k] < p) -- the model sees the published corrupted image; completion keeps the
  original's strokes outside the erased squares (the same squares cut from the vector strokes, sketch.erase).
- ``sheep-vector``: the same sketches and squares, erased from the vector strokes (sketch.erase); the model sees
  the rendering of what is left, as when healing an ndjson file.
- ``sheep-image``: the published raster corruption handed over as a picture: its ink traced into centre lines
  (sketch.trace.trace_strokes), which completion keeps and completes (measures the image path; kept ink < 1).
- ``qd-holdout``: QuickDraw drawings of the held-out categories (never trained on), vector erasure.
- ``qd-tune``: the test splits of the gap-filler's training categories (never trained on either), vector erasure:
  completion's settings are chosen on it, so that the held-out categories measure transfer untouched.
- ``sheep-tune``: the validation sheep (aaron_sheep.npz, valid split), vector erasure: the settings for drawings
  typical for the model are chosen on it, so that the test sheep stay unseen (the bridge scorer was fitted on other
  erasures of these drawings).

Vector erasure cuts the strokes on the squares' borders; ``--erasure points`` instead removes only the points
inside the squares (``sketchheal.sketch.erase.erase_points``: a segment with an end inside goes whole), as an
eraser of points would.

For each: erased-ink recall, added-ink precision, kept ink (sketchheal.evaluation.healing, 128 px, the original's
frame, 2 px) for completion, redraw (best of 8 at temperature 0.1, placed on the original's bounding box) and the
floor; plus seconds per sketch. Writes JSON (``--out``) and prints a table.

    python benchmarks/bench_complete.py --sets sheep-raster sheep-vector qd-holdout --out benchmarks/results/completion.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sketchheal.evaluation.healing import frame_of, ink_counts, summarise
from sketchheal.inference.bridges import load_scorer
from sketchheal.inference.loading import load_model
from sketchheal.evaluation.modes import complete_batch
from sketchheal.inference.complete import CompletionParams, model_view
from sketchheal.inference.domain import load_domain
from sketchheal.sketch.erase import erase
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import corrupt
from sketchheal.sketch.strokes import denormalize, polylines_to_stroke3, quickdraw_to_polylines, stroke3_to_polylines

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1, 2)  # ink line thickness: 1-px lines (the headline), 2 = the published line (~3 px at 128 px)
DATA = Path(os.environ.get("SKETCHHEAL_DATA", ROOT.parent / "shared" / "data"))
# the folder scripts/make_gapfill_data.py wrote (its qd_holdout/ and qd_train_npz/ are the QuickDraw sets)
GAPDATA = Path(os.environ.get("SKETCHHEAL_GAPDATA", "/work/gapdata"))


@dataclass
class Case:
    name: str
    p: float
    original: list
    inputs: list
    raster: np.ndarray | None = None  # the published corrupted image (sheep-raster)
    given: list | None = None  # what the healer is given when it is not ``inputs`` (sheep-image: traced lines)

    @property
    def strokes(self) -> list:
        return self.inputs if self.given is None else self.given


def sheep_cases(ps, seed: int, limit: int | None, raster: bool, split: str = "test", cut: bool = True) -> list[Case]:
    sk = load_sketches(DATA / "sketch-rnn" / "aaron_sheep.npz", split=split)
    n = len(sk) if limit is None else min(limit, len(sk))
    table = MaskTable(len(sk), seed)
    cases = []
    for i in range(n):
        orig = stroke3_to_polylines(sk[i])
        s3 = polylines_to_stroke3(orig)
        for p in ps:
            u = table.uniforms(i)
            e = erase(orig, p, uniforms=u, cut=cut or raster)
            img = corrupt(s3, u, p).corrupted if raster else None
            cases.append(Case(f"sheep{i}" if split == "test" else f"{split}-sheep{i}", p, orig, e.lines, img))
    return cases


def sheep_image_cases(ps, seed: int, limit: int | None) -> list[Case]:
    """The published raster corruption given as a picture (128 px): its ink traced into centre lines
    (sketch.trace), in the picture's pixel coordinates; the original is the sketch as the picture draws it
    (its render layout's pen positions, in the same pixels)."""
    from sketchheal.sketch.trace import trace_strokes

    sk = load_sketches(DATA / "sketch-rnn" / "aaron_sheep.npz", split="test")
    n = len(sk) if limit is None else min(limit, len(sk))
    table = MaskTable(len(sk), seed)
    cases = []
    for i in range(n):
        orig = stroke3_to_polylines(sk[i])
        s3 = polylines_to_stroke3(orig)
        v = model_view(orig, 128, "reference")
        orig_px = np.split(v.px, v.starts[1:])
        for p in ps:
            u = table.uniforms(i)
            img = corrupt(s3, u, p).corrupted
            cases.append(Case(f"sheep{i}", p, orig_px, erase(orig_px, p, uniforms=u).lines,
                              given=trace_strokes(img > 0)))
    return cases


def qd_cases(ps, seed: int, per_category: int, folder: Path, cut: bool = True) -> list[Case]:
    drawings = []
    for f in sorted(folder.glob("*.ndjson")):
        with open(f, encoding="utf-8") as fh:
            for k, line in enumerate(fh):
                if k >= per_category:
                    break
                rec = json.loads(line)
                drawings.append((f"{rec['word']}/{rec['key_id']}", quickdraw_to_polylines(rec["drawing"])))
    table = MaskTable(len(drawings), seed)
    cases = []
    for i, (name, orig) in enumerate(drawings):
        for p in ps:
            cases.append(Case(name, p, orig, erase(orig, p, uniforms=table.uniforms(i), cut=cut).lines))
    return cases


def qd_tune_cases(ps, seed: int, folder: Path, cut: bool = True) -> list[Case]:
    """The test splits of the gap-filler's QuickDraw training categories (drawings it never trained on; used to
    choose completion's settings, so that the held-out categories stay unseen), vector erasure."""
    sk = load_sketches(sorted(folder.glob("*.npz")), split="test")
    table = MaskTable(len(sk), seed)
    cases = []
    for i in range(len(sk)):
        orig = stroke3_to_polylines(sk[i])
        for p in ps:
            cases.append(Case(f"tune{i}", p, orig, erase(orig, p, uniforms=table.uniforms(i), cut=cut).lines))
    return cases


def run_completion(healer, cases, *, gapfill, params, scorer="auto", unordered=False, domain=None, batch_size=64):
    """Completion as ``sketchheal heal`` runs it (evaluation.modes.complete_batch: with ``domain``, drawings unlike
    what the model learned get their gaps filled only)."""
    t0 = time.perf_counter()
    rasters = [c.raster for c in cases]
    images = np.stack(rasters) if all(r is not None for r in rasters) else None
    added, typical = complete_batch(healer, [c.strokes for c in cases], [c.original for c in cases], images,
                                    gapfill=gapfill, domain=domain, batch_size=batch_size, params=params,
                                    scorer=scorer, ordered=[c.given is None and not unordered for c in cases])
    dt = time.perf_counter() - t0
    counts = _counts(cases, [list(c.strokes) + a for c, a in zip(cases, added)])
    return counts, dt / max(1, len(cases)), typical


def _box_fit(lines, onto):
    """``lines`` placed on the bounding box of ``onto`` (the published rendering's placement of each)."""
    fa, fb = frame_of(lines), frame_of(onto)
    return [fb.invert(fa.apply(line)) for line in lines]


def run_redraw(healer, cases, *, candidates=8, temperature=0.1, seed=0, batch_size=64):
    from sketchheal.inference.candidates import best_of
    from sketchheal.inference.sample import encode_images

    size, mode = healer.image_size, healer.render_mode
    t0 = time.perf_counter()
    images = []
    for c in cases:
        v = model_view(c.strokes, size, mode)
        images.append(c.raster if c.raster is not None else (v.image if v is not None else
                                                               np.full((size, size), -1, np.float32)))
    images = np.stack(images)
    z = encode_images(healer.model, torch.from_numpy(images)[:, None], batch_size)
    flat, _ = best_of(healer.model, z, images, [(seed, i) for i in range(len(cases))], candidates=candidates,
                      scale=healer.scale, size=size, mode=mode, max_len=healer.max_seq_len,
                      temperature=temperature, batch_size=batch_size)
    dt = time.perf_counter() - t0
    healed = []
    for c, s in zip(cases, flat):
        lines = stroke3_to_polylines(denormalize(s, healer.scale)) if len(s) else []
        healed.append(_box_fit(lines, c.original) if lines else [])
    return _counts(cases, healed), dt / max(1, len(cases))


def _counts(cases, healed):
    """Ink counts per width: ``{1: [...], 2: [...]}`` (1-px lines; the published ~3-px line at 128 px)."""
    return {w: [ink_counts(c.original, c.inputs, h, width=w) for c, h in zip(cases, healed)] for w in WIDTHS}


def _by_p(cases, counts):
    out = {}
    for w, cw in counts.items():
        for p in sorted({c.p for c in cases}):
            out.setdefault(f"w{w}", {})[str(p)] = summarise([k for c, k in zip(cases, cw) if c.p == p])
    return out


def _fmt(x):
    return "  -  " if x is None else f"{x:.3f}"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(results: dict) -> str:
    """docs/results.md's tables: one per set, a row per p and line width."""
    out = []
    for name, entry in results["sets"].items():
        out += [f"### {name}", "", "| p | width | completion: recall / precision / kept | redraw: recall / precision / "
                "kept | floor: recall / precision / kept |", "|---|---|---|---|---|"]
        comp = entry["completion"]["by_p"]
        ps = list(comp["w1"])
        for p in ps:
            for w in comp:
                cells = []
                for method in ("completion", "redraw", "floor"):
                    s = entry.get(method, {}).get("by_p", {}).get(w, {}).get(p)
                    cells.append("–" if s is None else " / ".join(
                        "—" if s[k] is None else f"{s[k]:.3f}" for k in ("recall", "precision", "kept")))
                out.append(f"| {p} | {w} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="release folder or checkpoint (default: the bundled model)")
    ap.add_argument("--gapfill", default=None, help="a second model whose reconstruction fills the gaps")
    ap.add_argument("--sets", nargs="+", default=["sheep-raster", "sheep-vector", "qd-holdout"])
    ap.add_argument("--ps", nargs="+", type=float, default=[0.1, 0.3, 0.5])
    ap.add_argument("--qd-ps", nargs="+", type=float, default=None, help="p for qd-holdout (default: --ps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N test sheep")
    ap.add_argument("--per-category", type=int, default=10)
    ap.add_argument("--qd-dir", default=str(GAPDATA / "qd_holdout"),
                    help="the held-out QuickDraw drawings (default: $SKETCHHEAL_GAPDATA/qd_holdout)")
    ap.add_argument("--bridges", default="auto",
                    help="bridge scorer: a bridges.json or a folder holding one, 'none' (the hand-set rule), or "
                         "'auto' (beside --gapfill, else beside --model)")
    ap.add_argument("--unordered", action="store_true", help="treat every input's stroke order as unknown")
    ap.add_argument("--no-domain", action="store_true",
                    help="complete every drawing in full (by default, as `sketchheal heal`: drawings unlike what the "
                         "model learned get their gaps filled only)")
    ap.add_argument("--no-redraw", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--erasure", choices=("squares", "points"), default="squares",
                    help="vector sets: strokes cut on the squares' borders (default), or only the points inside "
                         "the squares removed (sketch.erase.erase_points)")
    ap.add_argument("--set", nargs="*", default=[], help="CompletionParams overrides, e.g. threshold=-0.3")
    ap.add_argument("--keep-redraw", default=None,
                    help="an earlier results JSON whose redraw figures to keep for sets with the same cases (redraw "
                         "does not depend on the gap-filler or completion's settings); use with --no-redraw")
    ap.add_argument("--markdown", action="store_true", help="also print docs/results.md's tables")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    healer = load_model(args.model, device="cpu")
    gapfill = load_model(args.gapfill, device="cpu") if args.gapfill else None
    over = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        kind = type(getattr(CompletionParams(), k))
        over[k] = v if kind is str else kind(v.lower() in ("1", "true", "yes")) if kind is bool else kind(float(v))
    params = CompletionParams(**over)
    where = None if args.bridges == "none" else (args.gapfill or healer.source) if args.bridges == "auto" \
        else args.bridges
    scorer = load_scorer(where) if where else None
    if args.bridges not in ("none", "auto") and scorer is None:
        raise SystemExit(f"no bridge scorer at {args.bridges}")
    domain = None if args.no_domain else load_domain(healer.source)
    results = {"model": args.model or "bundled", "domain_rule": domain is not None, "gapfill": args.gapfill, "params": asdict(params),
               "cpu": _cpu(), "cores": os.cpu_count(), "threads": args.threads,
               "bridges": None if scorer is None else scorer.spec.get("fit"),
               "load_average_at_start": os.getloadavg()[0], "sets": {}}
    kept = json.loads(Path(args.keep_redraw).read_text())["sets"] if args.keep_redraw else {}
    cut = args.erasure == "squares"
    results["erasure"] = args.erasure
    for name in args.sets:
        if name == "sheep-raster":
            cases = sheep_cases(args.ps, args.seed, args.limit, raster=True)
        elif name == "sheep-vector":
            cases = sheep_cases(args.ps, args.seed, args.limit, raster=False, cut=cut)
        elif name == "sheep-tune":
            cases = sheep_cases(args.ps, args.seed, args.limit, raster=False, split="valid", cut=cut)
        elif name == "sheep-image":
            cases = sheep_image_cases(args.ps, args.seed, args.limit)
        elif name == "qd-tune":
            cases = qd_tune_cases(args.ps, args.seed, Path(args.qd_dir).parent / "qd_train_npz", cut=cut)
        elif name == "qd-holdout":
            cases = qd_cases(args.qd_ps or args.ps, args.seed, args.per_category, Path(args.qd_dir), cut=cut)
        else:
            raise SystemExit(f"unknown set {name}")
        entry = {"n_cases": len(cases)}
        counts, spc, typical = run_completion(healer, cases, gapfill=gapfill, params=params, scorer=scorer,
                                              unordered=args.unordered, domain=domain)
        entry["completion"] = {"by_p": _by_p(cases, counts), "s_per_sketch": spc,
                               "unlike": sum(t is False for t in typical)}
        entry["floor"] = {"by_p": _by_p(cases, _counts(cases, [c.strokes for c in cases]))}
        if not args.no_redraw:
            counts, spr = run_redraw(healer, cases, seed=args.seed)
            entry["redraw"] = {"by_p": _by_p(cases, counts), "s_per_sketch": spr}
        elif kept.get(name, {}).get("n_cases") == len(cases) and "redraw" in kept[name]:
            entry["redraw"] = dict(kept[name]["redraw"], kept_from=args.keep_redraw)
        results["sets"][name] = entry
        print(f"\n{name} ({len(cases)} cases)   recall / precision / kept")
        for method in ("completion", "redraw", "floor"):
            if method not in entry:
                continue
            for w, by_p in entry[method]["by_p"].items():
                row = "  ".join(f"p={p}: {_fmt(s['recall'])} {_fmt(s['precision'])} {_fmt(s['kept'])}"
                                for p, s in by_p.items())
                t = entry[method].get("s_per_sketch")
                print(f"  {method:10s} {w} {row}" + (f"   {1000 * t:.1f} ms/sketch" if t and w == "w1" else ""))
    if args.markdown:
        print(markdown(results))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
