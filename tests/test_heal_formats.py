"""The outputs of a healed drawing in the input's own frame (issue 17): ndjson round trip, SVG with two groups,
stroke-3 from the input's first point, the picture with the added strokes in colour, image inputs in pixels."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sketchheal.cli.main import main
from sketchheal.config import preset
from sketchheal.inference import heal as H
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import save_release
from sketchheal.sketch.erase import erase
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.strokes import polylines_to_stroke3, quickdraw_to_polylines, stroke3_to_polylines
from sketchheal.sketch.svg import svg_to_polylines
from sketchheal.sketch.writers import ADDED_BGR, healed_picture, healed_stroke3, healed_svg, ndjson_record

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    save_release(LmserPix2Seq(preset("tiny").model), d, scale=10.0, max_seq_len=64, categories=["house"],
                 extra={"data": {"render_mode": "fast"}})
    return d


@pytest.fixture(scope="module")
def healer(model_dir) -> H.Healer:
    return H.load_model(model_dir, device="cpu")


def _house() -> list[np.ndarray]:
    return [np.array([[300, 400], [500, 400], [500, 600], [300, 600], [300, 400]], np.float64),
            np.array([[290, 410], [400, 300], [510, 410]], np.float64),
            np.array([[380, 600], [380, 520], [420, 520], [420, 600]], np.float64)]


RECORDS = [  # QuickDraw lines as they come: ints, floats, raw strokes with times, an empty stroke, extra fields
    {"word": "house", "countrycode": "DE", "timestamp": "2017-03-01 20:27:31.69633 UTC", "recognized": True,
     "key_id": "5152802093400064", "drawing": [[[0, 100, 100, 0, 0], [0, 0, 90, 90, 0]], [[0, 50, 100], [0, -60, 0]]]},
    {"word": "mug", "key_id": 17, "recognized": False,
     "drawing": [[[10.5, 20.25, 30.125, 30.125], [1.1, 2.2, 3.3, 80.0]], [[], []], [[5, 6], [7, 8]]]},
    {"word": "maison \u00e9t\u00e9", "countrycode": "FR", "key_id": "raw-1",
     "drawing": [[[120.3, 200.7, 260.1], [80.9, 85.2, 190.6], [0, 16, 33]], [[130.0, 240.0], [150.0, 150.0], [40, 57]]]},
    {"drawing": [[[3, 3], [4, 4]]], "key_id": "dot", "extra": {"nested": [1, 2]}},
    {"word": "peas", "key_id": "all erased", "drawing": []},  # squares took every point: handed back as it is
]


def _write_ndjson(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _same(a, b) -> bool:
    """Equal JSON values with equal number types (an int stays an int, a float keeps its value)."""
    return json.dumps(a) == json.dumps(b)


# ------------------------------------------------------------------------------------------------- ndjson


def test_ndjson_round_trip_keeps_lines_fields_and_strokes(tmp_path, model_dir, capsys):
    src = _write_ndjson(tmp_path / "F.ndjson", RECORDS)
    out = tmp_path / "out"
    assert main(["heal", str(src), "-o", str(out), "--format", "ndjson", "--checkpoint", str(model_dir)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["F.ndjson"]
    lines = (out / "F.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(RECORDS)
    for given, line in zip(RECORDS, lines):
        got = json.loads(line)
        assert list(got) == list(given)  # every field, in its order
        assert all(_same(got[k], given[k]) for k in given if k != "drawing")
        n = len(given["drawing"])
        assert _same(got["drawing"][:n], given["drawing"])  # the input's strokes exactly as given
        for stroke in got["drawing"][n:]:  # then the added strokes: [[x...], [y...]], finite numbers
            assert len(stroke) == 2 and len(stroke[0]) == len(stroke[1]) >= 1
            assert np.isfinite(np.array(stroke, np.float64)).all()
    assert str(out / "F.ndjson") in capsys.readouterr().out


def test_ndjson_records_of_the_api_match_the_file(tmp_path, healer):
    src = _write_ndjson(tmp_path / "F.ndjson", RECORDS)
    results = H.heal(src, model=healer)
    assert [r.group for r in results] == ["F"] * len(RECORDS) and {r.coords for r in results} == {"ndjson"}
    for r, given in zip(results, RECORDS):
        assert r.mode == "complete" and r.record == given
        lines = [p for p in quickdraw_to_polylines(given["drawing"]) if len(p)]
        assert len(r.input_lines) == len(lines)
        assert all(np.array_equal(a, b) for a, b in zip(r.input_lines, lines))
        assert len(r.lines) == len(r.input_lines) + len(r.added_lines)
        rec = r.to_ndjson_record()
        assert rec["drawing"][: len(given["drawing"])] == given["drawing"]
    H.save_results(results, tmp_path / "out", formats=("ndjson",))
    back = [json.loads(x) for x in (tmp_path / "out" / "F.ndjson").read_text(encoding="utf-8").splitlines()]
    assert back == [r.to_ndjson_record() for r in results] and back[-1] == RECORDS[-1]
    with pytest.raises(ValueError, match=r"F.ndjson#4: the drawing is empty \(no points\): nothing to redraw"):
        H.heal(src, model=healer, mode="redraw")


def test_ndjson_of_other_inputs_is_one_line_per_sketch_in_their_frame(tmp_path, healer):
    s3 = polylines_to_stroke3(_house()) * np.array([0.5, 0.5, 1], np.float32)
    many = np.empty(3, dtype=object)
    many[:] = [s3, s3[:9].copy(), s3]
    np.savez(tmp_path / "set.npz", test=many, train=many[:1], valid=many[:1])
    results = H.heal([tmp_path / "set.npz", s3], model=healer)
    out = tmp_path / "out"
    H.save_results(results, out, formats=("ndjson", "svg"))
    assert sorted(p.name for p in out.glob("*.ndjson")) == ["input_1.ndjson", "set.ndjson"]
    recs = [json.loads(x) for x in (out / "set.ndjson").read_text().splitlines()]
    assert len(recs) == 3 and [r["key_id"] for r in recs] == ["set_0", "set_1", "set_2"]
    for rec, r, given in zip(recs, results, [s3, s3[:9], s3]):
        lines = stroke3_to_polylines(given)  # the stroke-3 frame: p_0 = (0, 0) is the first point
        assert rec["drawing"][0][0][0] == 0 and rec["drawing"][0][1][0] == 0
        for stroke, line in zip(rec["drawing"], lines):
            np.testing.assert_array_equal(np.array(stroke, np.float64).T, line)


# ---------------------------------------------------------------------------------------------------- SVG


def _groups(svg: str) -> dict[str, list[np.ndarray]]:
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(f"{SVG}g"):
        lines = []
        for path in g.iter(f"{SVG}path"):
            d = path.get("d").replace("M", " ").replace("L", " ").replace("l0 0", " ").split()
            lines.append(np.array([float(v) for v in d]).reshape(-1, 2))
        out[g.get("id")] = lines
    return out


def test_svg_has_the_input_and_the_added_strokes_in_the_input_coordinates(tmp_path, healer):
    house = _house()
    house[1] = house[1] + 0.123456789  # floats come back exactly
    r = H.heal(polylines_to_stroke3(house), model=healer)[0]
    svg = r.to_svg()
    groups = _groups(svg)
    assert set(groups) == {"input", "added"}
    assert len(groups["input"]) == len(r.input_lines)
    assert all(np.array_equal(a, b) for a, b in zip(groups["input"], r.input_lines))
    assert len(groups["added"]) == len(r.added_lines)
    box = [float(v) for v in ET.fromstring(svg).get("viewBox").split()]
    pts = np.concatenate(r.lines)
    assert (pts >= np.array(box[:2])).all() and (pts <= np.array(box[:2]) + box[2:]).all()
    # drawn by hand: two groups, the added one in colour; the file reads back as an input
    svg = healed_svg(house[:2], [house[2]])
    assert _groups(svg)["added"][0].tolist() == house[2].tolist() and 'stroke="#e4572e"' in svg
    path = tmp_path / "h.svg"
    path.write_text(svg)
    back = svg_to_polylines(path)
    assert len(back) == 3 and all(np.allclose(a, b) for a, b in zip(back, house))


# --------------------------------------------------------------------------------------------- stroke-3


def test_npz_stroke3_starts_at_the_input_first_point(tmp_path, healer):
    s3 = polylines_to_stroke3(_house()) + np.array([0.3, -0.7, 0], np.float32)  # float offsets
    s3[:, 2] = polylines_to_stroke3(_house())[:, 2]
    qd = _write_ndjson(tmp_path / "q.ndjson", RECORDS[:1])
    results = H.heal([s3, qd], model=healer)
    results[0].save(tmp_path, "a", formats=("npz",))
    results[1].save(tmp_path, "b", formats=("npz",))
    with np.load(tmp_path / "a.npz") as z:  # a stroke-3 input: its own rows, bit for bit, from p_0 = (0, 0)
        assert np.array_equal(z["start"], [0, 0]) and int(z["input_rows"]) == len(s3)
        assert np.array_equal(z["strokes"][: len(s3)], s3)
        np.testing.assert_array_equal(z["original"], s3)
    with np.load(tmp_path / "b.npz") as z:  # an ndjson input: from its first point, in its coordinates
        start, rows = z["start"], z["strokes"]
        assert np.array_equal(start, [0, 0]) and int(z["input_rows"]) == 7
        lines = stroke3_to_polylines(rows, start=start)
        given = quickdraw_to_polylines(RECORDS[0]["drawing"])
        assert all(np.array_equal(a, b) for a, b in zip(lines, given))
    rows, start, n = healed_stroke3([np.array([[5.0, 6.0], [7.0, 9.0]])], [np.array([[1.0, 1.0], [2.0, 2.0]])])
    assert np.array_equal(start, [5, 6]) and n == 1
    assert [p.tolist() for p in stroke3_to_polylines(rows, start=start)] == [[[5, 6], [7, 9]], [[1, 1], [2, 2]]]


# ---------------------------------------------------------------------------------------------------- PNG


def test_png_draws_the_added_strokes_in_colour(tmp_path, healer):
    house = _house()
    pic = healed_picture(house[:2], [house[2]], 256)
    assert pic.shape == (256, 256, 3)
    colour = np.all(np.abs(pic.astype(int) - ADDED_BGR) < 40, axis=2)
    black = np.all(pic < 60, axis=2)
    assert colour.sum() > 20 and black.sum() > 100
    assert not np.all(np.abs(healed_picture(house, [], 256).astype(int) - ADDED_BGR) < 40, axis=2).any()
    r = H.heal(polylines_to_stroke3(house), model=healer)[0]
    r.added_lines = [house[2] + 50.0]
    written = r.save(tmp_path, formats=("png", "side"))
    png = cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED)
    assert png.shape == (256, 256, 3) and np.all(np.abs(png.astype(int) - ADDED_BGR) < 40, axis=2).any()
    side = cv2.imread(str(written[1]), cv2.IMREAD_UNCHANGED)
    assert side.shape == (256, 2 * 256 + 4, 3)  # model input | healed (unmasked: no third panel)


# ------------------------------------------------------------------------------------------ other inputs


def test_masking_erases_vector_inputs_in_vector(healer):
    s3 = polylines_to_stroke3(_house())
    results = H.heal([s3, s3], model=healer, mask=0.5, seed=3)
    table = MaskTable(2, 3)
    for i, r in enumerate(results):
        want = erase(stroke3_to_polylines(s3), 0.5, uniforms=table.uniforms(i)).lines
        assert len(r.input_lines) == len(want) and all(np.array_equal(a, b) for a, b in zip(r.input_lines, want))
        assert r.masked and np.array_equal(r.original, s3)
        rec = r.to_ndjson_record()
        assert len(rec["drawing"]) == len(r.input_lines) + len(r.added_lines)


def test_image_inputs_heal_in_pixel_coordinates(tmp_path, healer):
    img = np.full((200, 300), 255, np.uint8)
    for line in _house():
        cv2.polylines(img, [np.rint((line - 280) * 0.5 + [60, 20]).astype(np.int32)], False, 0, 3, cv2.LINE_AA)
    cv2.imwrite(str(tmp_path / "house.png"), img)
    r = H.heal(tmp_path / "house.png", model=healer)[0]
    assert r.coords == "pixels" and r.input_lines
    ink = (img < 128).astype(np.uint8)
    dist = cv2.distanceTransform(1 - ink, cv2.DIST_L2, 5)
    pts = np.rint(np.concatenate(r.input_lines)).astype(int)
    assert (pts >= 0).all() and (pts[:, 0] < 300).all() and (pts[:, 1] < 200).all()
    assert dist[pts[:, 1], pts[:, 0]].max() <= 1.5  # the traced centre lines lie on the ink


def test_masked_images_lose_squares_of_their_traced_strokes(tmp_path, healer):
    img = np.full((200, 300), 255, np.uint8)
    for line in _house():
        cv2.polylines(img, [np.rint((line - 280) * 0.5 + [60, 20]).astype(np.int32)], False, 0, 3, cv2.LINE_AA)
    whole, masked = H.heal([img, img], model=healer, mask=0.6, seed=1)
    plain = H.heal(img, model=healer)[0]
    length = lambda lines: sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in lines)  # noqa: E731
    assert length(masked.input_lines) < length(plain.input_lines) and masked.masked and not plain.masked
    assert whole.coords == masked.coords == "pixels"


def test_redraw_mode_keeps_the_published_outputs(tmp_path, healer):
    s3 = polylines_to_stroke3(_house())
    r = H.heal(s3, model=healer, mode="redraw", samples=2, temperature=0.5)[0]
    assert r.mode == "redraw" and len(r.healed) == 2 and r.added_lines == []
    names = sorted(p.name for p in r.save(tmp_path, formats=H.OUTPUT_FORMATS))
    assert names == ["input_0.ndjson", "input_0.npz", "input_0_s0.png", "input_0_s0.svg", "input_0_s1.png",
                     "input_0_s1.svg", "input_0_side.png"]
    assert cv2.imread(str(tmp_path / "input_0_s0.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    rec = json.loads((tmp_path / "input_0.ndjson").read_text())
    assert len(rec["drawing"]) == len(r.redrawn_lines) == len(r.lines)
    if r.lines:  # placed on the input's bounding box
        box = np.concatenate(r.input_lines)
        got = np.concatenate(r.lines)
        np.testing.assert_allclose(got.min(0), box.min(0), atol=1e-6)


def test_writers_round_added_numbers_and_keep_joints_exact():
    a = [np.array([[0.1234567, 1.0], [200.0, 3.5]])]
    b = [np.array([[0.1234567, 1.0], [50.123456, 60.987654]])]
    rec = ndjson_record(a, b, fields={"key_id": "k"})
    assert rec["drawing"][0] == [[0.1234567, 200], [1, 3.5]]
    assert rec["drawing"][1] == [[0.1234567, 50.12], [1, 60.99]]  # a joint exact, the rest to 2 decimals at 200
    assert list(rec) == ["key_id", "drawing"]
