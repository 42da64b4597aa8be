"""The release shipped inside the package: it loads with no argument and heals the shipped examples."""

from __future__ import annotations

import json

import numpy as np

import sketchheal
from sketchheal.cli.main import main
from sketchheal.inference.heal import load_model
from sketchheal.model.weights import FORMAT_VERSION
from sketchheal.utils.paths import BUNDLED_MODEL_DIR, EXAMPLES_DIR


def test_bundled_release_is_complete():
    meta = json.loads((BUNDLED_MODEL_DIR / "config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["scale"] > 0 and meta["max_seq_len"] == 200
    assert "CC BY-NC" in meta["extra"]["license"]
    healer = load_model()  # no argument: the bundled model
    assert healer.image_size == 128 and healer.scale == meta["scale"]


def test_heal_examples_from_the_command_line(tmp_path, capsys):
    """The examples are incomplete sheep (no legs, half rubbed out, with gaps) and a drawing that is no sheep,
    one per input format; completion adds strokes and says which drawing is unlike what the model learned."""
    names = sorted(p.stem for p in EXAMPLES_DIR.iterdir())
    assert names == ["not_a_sheep", "sheep_gaps", "sheep_half_erased", "sheep_no_legs"]
    assert sorted(p.suffix for p in EXAMPLES_DIR.iterdir()) == [".ndjson", ".npz", ".png", ".svg"]
    assert all(p.stat().st_size < 20_000 for p in EXAMPLES_DIR.iterdir())
    assert main(["heal", "--example", "-o", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    written = captured.out.split()
    for stem in names:
        for suffix in (".svg", ".png", ".npz", "_side.png"):
            assert (tmp_path / f"{stem}{suffix}").is_file()
    assert len(written) == 4 * len(names)
    svg = (tmp_path / f"{names[0]}.svg").read_text()
    assert '<g id="input"' in svg and '<g id="added"' in svg
    notes = [line for line in captured.err.splitlines() if "unlike" in line]
    assert len(notes) == 1 and "not_a_sheep.svg" in notes[0] and "this model learned sheep" in notes[0]
    with np.load(tmp_path / "sheep_gaps.npz") as z:  # the gaps are filled: strokes follow the input's
        assert len(z["strokes"]) > int(z["input_rows"])


def test_heal_from_python_with_no_model():
    sketch = np.load(EXAMPLES_DIR / "sheep_no_legs.npz")["strokes"].astype(np.float32)
    results = sketchheal.heal([sketch], mask=0.3, seed=1, samples=2, mode="redraw")
    assert len(results) == 1 and len(results[0].healed) == 2
    healed = results[0].healed[0]
    assert healed.ndim == 2 and healed.shape[1] == 3 and np.isfinite(healed).all()
    (done,) = sketchheal.heal([sketch], mask=0.3, seed=1)  # completion: the erased sketch, then the new strokes
    assert done.mode == "complete" and done.masked and done.typicality["typical"] and done.domain_note is None
    assert len(done.lines) == len(done.input_lines) + len(done.added_lines)
