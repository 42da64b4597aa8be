"""Make docs/img/heal_grid.png: erased input | completion | redraw (published) | original.

Six sheep from the test split of ``aaron_sheep.npz`` and two drawings of QuickDraw categories held out of the
gap-filler's training (``training-runs/gapfill/holdout.txt``), each with squares erased from its vector strokes
(:func:`sketchheal.sketch.erase.erase_stroke3`, p = 0.3, fixed seeds). Both modes heal the same erased drawing
(``mask`` is not set: the erasure is done here, once). Every panel is drawn by the library's own
:func:`sketchheal.sketch.writers.healed_picture` (input black, added strokes in colour)::

    python scripts/make_readme_figure.py [--data ../shared/data] [--out docs/img/heal_grid.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from sketchheal.inference.heal import heal
from sketchheal.sketch.erase import erase_stroke3
from sketchheal.sketch.io import load_file, read_ndjson_records
from sketchheal.sketch.strokes import polylines_to_stroke3, stroke3_to_polylines
from sketchheal.sketch.writers import healed_picture

SHEEP = (0, 5, 11, 23, 42, 77)  # indices into the test split
HOLDOUT = (("apple", 1), ("birthday cake", 2))  # (category, drawing index) of held-out categories
P, SEED, SIZE = 0.3, 3, 192
ROWS = ("erased input", "completion", "redraw (published)", "original")


def _qd(data: Path, gapdata: Path, category: str, index: int) -> np.ndarray:
    path = gapdata / f"{category}.ndjson"
    if not path.exists():
        path = data / "quickdraw" / "simplified" / f"{category}.ndjson"
    _, _, lines = read_ndjson_records(path)[index]
    return polylines_to_stroke3([np.asarray(line, np.float64) for line in lines])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--gapdata", type=Path, default=Path("/work/gapdata/qd_holdout"))
    ap.add_argument("--out", type=Path, default=Path("docs/img/heal_grid.png"))
    args = ap.parse_args()

    sheep = load_file(args.data / "sketch-rnn" / "aaron_sheep.npz", split="test")
    originals = [np.asarray(sheep[i], np.float32) for i in SHEEP]
    originals += [_qd(args.data, args.gapdata, c, i) for c, i in HOLDOUT]
    erased = [erase_stroke3(s3, P, seed=SEED + j) for j, s3 in enumerate(originals)]
    inputs = [polylines_to_stroke3(e.lines).astype(np.float32) for e in erased]
    done = heal(inputs, mode="complete", seed=SEED)
    redrawn = heal(inputs, mode="redraw", seed=SEED)

    cols = []
    for s3, c, r in zip(originals, done, redrawn):
        panels = [healed_picture(c.input_lines, [], SIZE), c.to_png(size=SIZE),
                  healed_picture(r.redrawn_lines, [], SIZE), healed_picture(stroke3_to_polylines(s3), [], SIZE)]
        cols.append(np.concatenate([np.pad(p, ((2, 2), (2, 2), (0, 0)), constant_values=200) for p in panels]))
    grid = np.concatenate(cols, axis=1)
    label_w = 150
    labels = np.full((grid.shape[0], label_w, 3), 255, np.uint8)
    for k, text in enumerate(ROWS):
        y = k * (SIZE + 4) + SIZE // 2
        for n, part in enumerate(text.split(" (")):
            part = part if n == 0 else "(" + part
            cv2.putText(labels, part, (6, y + 18 * n), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    grid = np.concatenate([labels, grid], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid)
    notes = [(c.source, c.domain_note) for c in done if c.domain_note]
    print(json.dumps({"out": str(args.out), "domain_notes": notes}))


if __name__ == "__main__":
    main()
