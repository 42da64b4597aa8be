"""Completion measured the way a user runs it: erased QuickDraw drawings written to an ``.ndjson`` file, healed by
``sketchheal heal F.ndjson -o OUT --format ndjson`` (a subprocess), the output read back.

Checks that every output line keeps its input strokes exactly (they come first in ``drawing``) and prints the
erased-ink recall, added-ink precision and kept ink (sketchheal.evaluation.healing, 1-px lines) of the added
strokes, which should equal ``bench_complete.py --sets qd-holdout``'s figure at the same p::

    python benchmarks/bench_ndjson_heal.py --p 0.3 [--qd-dir GAPDATA/qd_holdout] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sketchheal.evaluation.healing import ink_counts, summarise
from sketchheal.sketch.strokes import quickdraw_to_polylines

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_complete as bc  # noqa: E402  (the same erased drawings as its qd-holdout set)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=float, default=0.3)
    ap.add_argument("--per-category", type=int, default=10)
    ap.add_argument("--qd-dir", default=str(bc.GAPDATA / "qd_holdout"),
                    help="the held-out QuickDraw drawings (default: $SKETCHHEAL_GAPDATA/qd_holdout)")
    ap.add_argument("--erasure", choices=("squares", "points"), default="squares",
                    help="strokes cut on the squares' borders, or only the points inside removed")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cases = bc.qd_cases([args.p], 0, args.per_category, Path(args.qd_dir), cut=args.erasure == "squares")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "erased.ndjson"
        with open(src, "w", encoding="utf-8") as f:
            for c in cases:
                word, key = c.name.split("/", 1)
                f.write(json.dumps({"word": word, "key_id": key, "drawing": [[line[:, 0].tolist(),
                                                                              line[:, 1].tolist()]
                                                                             for line in c.inputs]}) + "\n")
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "sketchheal.cli.main", "heal", str(src), "-o",
                              str(Path(tmp) / "out"), "--format", "ndjson"], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"sketchheal heal failed: {run.stderr.strip()}")
        seconds = time.perf_counter() - t0
        out = [json.loads(line) for line in open(Path(tmp) / "out" / "erased.ndjson", encoding="utf-8")]
    if len(out) != len(cases):
        raise SystemExit(f"{len(out)} output lines for {len(cases)} drawings")
    counts, changed = [], 0
    for c, rec in zip(cases, out):
        healed = quickdraw_to_polylines(rec["drawing"])
        kept = healed[: len(c.inputs)]
        changed += not all(np.array_equal(a, b) for a, b in zip(kept, c.inputs))
        counts.append(ink_counts(c.original, c.inputs, healed))
    s = summarise(counts)
    result = {"p": args.p, "erasure": args.erasure, "drawings": len(cases), "inputs_changed": changed,
              "recall": s["recall"], "precision": s["precision"], "kept": s["kept"], "seconds": round(seconds, 1), "cpu": bc._cpu()}
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
