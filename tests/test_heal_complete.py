"""Completion through heal() and `sketchheal heal` with the bundled model, on real drawings (issue 17): squares
erased from vector drawings, healed from ndjson to ndjson, scored by ink; the domain note for a drawing that is
no sheep; the speed of a 25-drawing file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sketchheal.cli.main import main
from sketchheal.evaluation.healing import ink_counts, summarise
from sketchheal.inference import heal as H
from sketchheal.sketch.erase import erase
from sketchheal.sketch.io import load_sketches
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.strokes import polylines_to_stroke3, quickdraw_to_polylines, stroke3_to_polylines


@pytest.fixture(scope="module")
def bundled() -> H.Healer:
    return H.load_model(device="cpu")


def _erased_file(src: Path, dst: Path, p: float, n: int) -> tuple[list[dict], list[list[np.ndarray]]]:
    """The first ``n`` drawings of ``src`` with squares erased (row i of MaskTable(n, 0)), written to ``dst`` as
    QuickDraw lines (float border points); returns the erased records and the original strokes."""
    records = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()[:n]]
    table = MaskTable(len(records), 0)
    erased, originals = [], []
    for i, rec in enumerate(records):
        lines = quickdraw_to_polylines(rec["drawing"])
        kept = erase(lines, p, uniforms=table.uniforms(i)).lines
        erased.append({**rec, "drawing": [[line[:, 0].tolist(), line[:, 1].tolist()] for line in kept]})
        originals.append(lines)
    dst.write_text("".join(json.dumps(r) + "\n" for r in erased), encoding="utf-8")
    return erased, originals


def test_erased_quickdraw_drawings_heal_ndjson_to_ndjson(tmp_path, data_dir, capsys):
    counts, files = [], []
    for name in ("house", "cat"):
        src = data_dir / "quickdraw" / "simplified" / f"{name}.ndjson"
        files.append((tmp_path / f"{name} erased.ndjson", *_erased_file(src, tmp_path / f"{name} erased.ndjson",
                                                                        0.3, 12)))
    out = tmp_path / "out"
    assert main(["heal", *[str(f[0]) for f in files], "-o", str(out), "--format", "ndjson"]) == 0
    capsys.readouterr()
    added = 0
    for path, erased, originals in files:
        lines = (out / path.name).read_text(encoding="utf-8").splitlines()  # OUT/F.ndjson, spaces kept
        assert len(lines) == len(erased)
        for given, line, original in zip(erased, lines, originals):
            got = json.loads(line)
            assert {k: v for k, v in got.items() if k != "drawing"} == {k: v for k, v in given.items()
                                                                          if k != "drawing"}
            n = len(given["drawing"])
            assert got["drawing"][:n] == given["drawing"]
            added += len(got["drawing"]) > n
            healed = quickdraw_to_polylines(got["drawing"])
            counts.append(ink_counts(original, quickdraw_to_polylines(given["drawing"]), healed))
    s = summarise(counts)
    assert added >= len(counts) // 2, "most erased drawings get strokes added"
    assert s["kept"] == 1.0 and s["recall"] > 0.1 and s["precision"] > 0.3, s


def test_erased_sheep_keep_their_strokes_and_get_gaps_filled(bundled, sheep_npz):
    sheep = load_sketches(sheep_npz, split="test")
    originals = [stroke3_to_polylines(sheep[i]) for i in range(16)]
    results = H.heal([polylines_to_stroke3(o) for o in originals], model=bundled, mask=0.3, seed=0)
    table = MaskTable(len(originals), 0)
    counts = []
    for i, (r, o) in enumerate(zip(results, originals)):
        want = erase(o, 0.3, uniforms=table.uniforms(i)).lines
        assert len(r.input_lines) == len(want) and all(np.array_equal(a, b) for a, b in zip(r.input_lines, want))
        counts.append(ink_counts(o, r.input_lines, r.lines))
        assert r.typicality is not None
    s = summarise(counts)
    assert s["kept"] >= 0.95 and s["recall"] > 0.2 and s["precision"] > 0.4, s
    assert sum(r.domain_note is None for r in results) >= 14  # sheep are what the model learned


def _table() -> list[np.ndarray]:
    """A table with a cup on it, drawn by code: not a sheep."""
    legs = [np.array([[x0, 80.0], [x1, 200.0]]) for x0, x1 in ((20, 20), (280, 280), (45, 60), (255, 240))]
    cup = np.array([[120.0, 40.0], [125.0, 80.0], [155.0, 80.0], [160.0, 40.0], [120.0, 40.0]])
    return [np.array([[0.0, 80.0], [300.0, 80.0]]), *legs, cup]


def test_a_drawing_that_is_no_sheep_is_said_to_be_unlike_and_gets_no_parts_from_the_sheep_model(tmp_path, bundled, capsys):
    table = polylines_to_stroke3(_table())
    r = H.heal(table, model=bundled)[0]
    assert r.typicality is not None and not r.typicality["typical"]
    assert r.domain_note.startswith("this model learned sheep; your drawing is unlike")
    assert r.gapfilled  # the bundled gap-filler, which learned many kinds of drawing, completes it in full
    own = H.heal(table, model=bundled, gapfill=False)[0]  # the sheep model's own reconstruction: gaps only
    gaps = H.heal(table, model=bundled, gapfill=False, parts=False)[0]
    assert not own.gapfilled and [a.tolist() for a in own.added_lines] == [a.tolist() for a in gaps.added_lines]
    np.savez(tmp_path / "table.npz", strokes=table)
    for k, (extra, action) in enumerate((([], "completed by the gap-filler, which learned many kinds of drawing"),
                                         (["--gapfill", "none"], "gaps filled only, no parts invented"))):
        assert main(["heal", str(tmp_path / "table.npz"), "-o", str(tmp_path / f"out{k}"), "--format", "svg",
                     *extra]) == 0
        err = capsys.readouterr().err.splitlines()
        notes = [line for line in err if "unlike" in line]
        assert notes == [f"{tmp_path / 'table.npz'}: {r.domain_note}; {action}"]


def test_a_25_drawing_file_heals_in_one_call(tmp_path, bundled, data_dir):
    src = data_dir / "quickdraw" / "simplified" / "bicycle.ndjson"
    _erased_file(src, tmp_path / "b.ndjson", 0.3, 25)
    results = H.heal(tmp_path / "b.ndjson", model=bundled)
    H.save_results(results, tmp_path / "out", formats=("ndjson",))
    assert len(results) == 25  # speed: benchmarks/bench_complete.py
    lines = (tmp_path / "out" / "b.ndjson").read_text().splitlines()
    assert len(lines) == 25 and all(json.loads(x)["word"] == "bicycle" for x in lines)
