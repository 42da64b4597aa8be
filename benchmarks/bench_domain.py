"""How often the bundled model's domain check calls a drawing unlike what the model learned (issue 17, item 4).

Each drawing gets squares erased from its strokes (``sketchheal.sketch.erase`` at ``--p``, seed 0) and is read as
``sketchheal heal`` reads it (the model's view, its code and the decoder NLL of its strokes, see
``sketchheal.inference.domain``). Sets: the test sheep (the model's own kind: few should be flagged); the 10
QuickDraw categories of ``quickdraw/raw`` in their **raw** form (dense mouse strokes) and in their **simplified**
form (the same drawings, same ``key_id``), which should be flagged alike; and the simplified drawings of every
8th of the 344 QuickDraw categories (10 each). Prints and writes JSON::

    python benchmarks/bench_domain.py [--p 0.3] [--out benchmarks/results/domain.json]

Reads ``../shared/data`` (``$SKETCHHEAL_DATA`` overrides).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from sketchheal.inference.complete import model_view
from sketchheal.inference.domain import load_domain
from sketchheal.inference.loading import load_model
from sketchheal.inference.recon import reconstruct
from sketchheal.sketch.erase import erase
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.strokes import quickdraw_to_polylines, stroke3_to_polylines
from sketchheal.utils.paths import shared_data_dir


def ndjson_drawings(path: Path, n: int) -> list[list[np.ndarray]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if len(out) >= n:
                break
            out.append(quickdraw_to_polylines(json.loads(line)["drawing"]))
    return out


def flagged(healer, domain, drawings, p: float, seed: int = 0) -> dict:
    """The share of ``drawings`` (absolute strokes, erased at ``p``) the check calls unlike, and their count."""
    rng = np.random.default_rng(seed)
    kept = []
    for d in drawings:
        k = erase(d, p, seed=int(rng.integers(1 << 31))).lines if p > 0 else d
        kept.append(k if k else d)
    views = [model_view(d, healer.image_size, healer.render_mode) for d in kept]
    ok = [i for i, v in enumerate(views) if v is not None]
    _, codes = reconstruct(healer.model, np.stack([views[i].image for i in ok]), 64)
    verdicts = domain.assess(codes, domain.nll(healer, [kept[i] for i in ok], codes))
    by_code = domain.assess(codes)
    return {"n": len(verdicts), "flagged": float(np.mean([not v["typical"] for v in verdicts])),
            "flagged_by_code_alone": float(np.mean([not v["typical"] for v in by_code]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=float, default=0.3, help="erase probability (0: as drawn)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = shared_data_dir()
    qd = data / "quickdraw"
    if not (qd / "raw").is_dir() or not (data / "sketch-rnn" / "aaron_sheep.npz").is_file():
        raise SystemExit(f"{data}: no quickdraw/raw or sketch-rnn/aaron_sheep.npz there; set SKETCHHEAL_DATA")
    healer = load_model(None, device="cpu")
    domain = load_domain(healer.source)
    if domain is None:
        raise SystemExit("the bundled model has no domain.json: run scripts/calibrate_domain.py")
    raw_cats = sorted(f.stem for f in (qd / "raw").glob("*.ndjson"))
    all_cats = sorted(f.stem for f in (qd / "simplified").glob("*.ndjson"))
    sheep = load_sketches(data / "sketch-rnn" / "aaron_sheep.npz", split="test", max_seq_len=10**6)
    sets = {
        "test_sheep": [stroke3_to_polylines(s) for s in sheep],
        "quickdraw_raw_10": [d for c in raw_cats for d in ndjson_drawings(qd / "raw" / f"{c}.ndjson", 25)],
        "quickdraw_simplified_10": [d for c in raw_cats
                                    for d in ndjson_drawings(qd / "simplified" / f"{c}.ndjson", 25)],
        "quickdraw_simplified_every_8th": [d for c in all_cats[::8]
                                           for d in ndjson_drawings(qd / "simplified" / f"{c}.ndjson", 10)],
    }
    result = {"p": args.p, "nll_thin": domain.nll_thin,
              "sets": {name: flagged(healer, domain, ds, args.p) for name, ds in sets.items()}}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
