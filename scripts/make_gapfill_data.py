"""The training data of the bundled gap-filler (src/sketchheal/assets/gapfill), made from ../shared/data.

    python scripts/make_gapfill_data.py OUT_DIR        # then the `sketchheal train` command of docs/training.md

Writes into OUT_DIR (outside the repository: third-party data is never committed):
- holdout.txt: the 43 QuickDraw categories held out of training (every 8th of the 344, sorted by name, from the
  4th on), to measure transfer to kinds of drawing the gap-filler never saw (also in training-runs/gapfill/);
- qd_train/<category>.ndjson -> qd_train_npz/<category>.npz: the other 301 categories, each split 92 / 4 / 4 %
  (seed 0) by `sketchheal data convert`, sketches of at most 200 points;
- qd_holdout/<category>.ndjson: the held-out categories as links, for evaluation;
- omniglot_subset.npz: 8,000 / 300 / 300 Omniglot symbols drawn at random (seed 0) from omniglot.npz's splits,
  so that symbols do not outnumber the drawings (the sheep's train split and the QuickDraw drawings).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from sketchheal.utils.npfile import load_npz
from sketchheal.utils.paths import shared_data_dir

OMNIGLOT_SIZES = {"train": 8000, "valid": 300, "test": 300}


def main(out: Path) -> int:
    data = shared_data_dir()
    simplified = data / "quickdraw" / "simplified"
    cats = sorted(p.name[: -len(".ndjson")] for p in simplified.glob("*.ndjson"))
    hold = cats[3::8]
    out.mkdir(parents=True, exist_ok=True)
    (out / "holdout.txt").write_text("\n".join(hold) + "\n")
    for sub in ("qd_train", "qd_holdout"):
        (out / sub).mkdir(exist_ok=True)
    for c in cats:
        link = out / ("qd_holdout" if c in hold else "qd_train") / f"{c}.ndjson"
        if not link.exists():
            os.symlink(simplified / f"{c}.ndjson", link)
    subprocess.run([sys.executable, "-m", "sketchheal.cli.main", "data", "convert", str(out / "qd_train"),
                    "-o", str(out / "qd_train_npz"), "--split-sizes", "0.92,0.04,0.04", "--max-seq-len", "200",
                    "--skip-invalid"], check=True)
    omniglot = load_npz(data / "sketch-rnn" / "omniglot.npz")
    rng = np.random.default_rng(0)
    subset = {}
    for split, n in OMNIGLOT_SIZES.items():
        a = omniglot[split]
        picked = np.empty(n, dtype=object)
        for j, i in enumerate(rng.choice(len(a), n, replace=False)):
            picked[j] = np.asarray(a[i], dtype=np.int16)
        subset[split] = picked
    np.savez_compressed(out / "omniglot_subset.npz", **subset)
    print(f"wrote {out}: {len(cats) - len(hold)} training and {len(hold)} held-out QuickDraw categories, "
          f"Omniglot {OMNIGLOT_SIZES}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
