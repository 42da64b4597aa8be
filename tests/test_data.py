"""Tests for sketchheal.sketch.io / sketchset / convert / summary / viz and ``sketchheal data``: packed storage,
loading real and broken files, writers, conversion, drawing and the CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_sketch
from sketchheal.sketch import convert as CV
from sketchheal.sketch import io as D
from sketchheal.sketch import viz as V
from sketchheal.cli.main import main


def _sketches(rng, n=10):
    return [make_sketch(rng, n_strokes=int(rng.integers(1, 4)), points=int(rng.integers(2, 7))) for _ in range(n)]


def _write_npz(path: Path, **splits) -> Path:
    arrays = {}
    for name, sketches in splits.items():
        obj = np.empty(len(sketches), dtype=object)
        for i, s in enumerate(sketches):
            obj[i] = s
        arrays[name] = obj
    np.savez(path, **arrays)
    return path


def _line(drawing, recognized=True, word="x") -> str:
    return json.dumps({"word": word, "recognized": recognized, "drawing": drawing})


# ================================================================================================ SketchSet
def test_sketchset_packing_and_access(rng):
    sk = _sketches(rng)
    s = D.SketchSet.from_sketches(sk, labels=[0, 1] * 5, categories=["a", "b"])
    assert len(s) == 10 and s.points.dtype == np.int16 and s.offsets.dtype == np.int64
    assert s.labels.dtype == np.int16 and s.recognized.all()
    np.testing.assert_array_equal(s.lengths, [len(x) for x in sk])
    for i in (0, 3, -1):
        assert s[i].dtype == np.float32
        np.testing.assert_array_equal(s[i], sk[i])
    s[0][0, 0] = 999  # items are copies
    assert s.points[0, 0] != 999
    assert s.category(1) == "b" and s.counts() == {"a": 5, "b": 5}
    with pytest.raises(IndexError):
        s[10]
    with pytest.raises(TypeError, match="subset"):
        s[1:3]
    assert len(list(s)) == 10 and "10 sketches" in repr(s)


def test_sketchset_float_when_not_lossless(rng):
    sk = _sketches(rng, 3)
    sk[1] = sk[1] + np.array([0.5, 0, 0], np.float32)
    assert D.SketchSet.from_sketches(sk).points.dtype == np.float32
    big = [np.array([[40000, 0, 1], [1, 1, 1]], np.float64)]
    assert D.SketchSet.from_sketches(big).points.dtype == np.float32


def test_subset_and_concat(rng):
    sk = _sketches(rng)
    s = D.SketchSet.from_sketches(sk, labels=np.arange(10) % 3, categories=["a", "b", "c"])
    sub = s.subset([7, 2, 2])
    np.testing.assert_array_equal(sub[0], sk[7])
    np.testing.assert_array_equal(sub[2], sk[2])
    assert sub.labels.tolist() == [1, 2, 2]
    assert len(s.subset(s.lengths > 8)) == int((s.lengths > 8).sum())
    assert len(s.subset(slice(2, 5))) == 3 and len(s.subset([])) == 0
    t = D.SketchSet.from_sketches(sk[:2], labels=[0, 1], categories=["c", "z"],
                                  dropped={"too_long": 4}, recognized=[False, True])
    u = D.SketchSet.concat([s, t])
    assert u.categories == ["a", "b", "c", "z"] and len(u) == 12
    assert u.labels[-2:].tolist() == [2, 3] and u.dropped["too_long"] == 4
    assert u.recognized.tolist()[-2:] == [False, True]
    np.testing.assert_array_equal(u[11], sk[1])
    assert len(D.SketchSet.concat([])) == 0


def test_pickle_is_cheap(rng):
    s = D.SketchSet.from_sketches(_sketches(rng, 2000))
    blob = pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < s.nbytes + 2000
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back[1999], s[1999])


# ================================================================================================ real data
def test_load_sheep_counts_and_filtering(sheep_npz):
    counts = {sp: len(D.load_sketches(sheep_npz, split=sp, max_seq_len=None)) for sp in D.SPLITS}
    assert counts == {"train": 7400, "valid": 300, "test": 300}
    train = D.load_sketches(sheep_npz)  # paper filtering: <= 200 points, clip 1000
    assert len(train) + train.dropped["too_long"] == 7400 and train.dropped["too_long"] > 0
    assert train.lengths.max() <= 200 and train.points.dtype == np.int16
    assert train.categories == ["aaron_sheep"]
    raw = np.load(sheep_npz, encoding="latin1", allow_pickle=True)["train"]
    kept = [s for s in raw if len(s) <= 200]
    np.testing.assert_array_equal(train[5], kept[5])
    xy = np.concatenate(kept)[:, :2].astype(np.float64)
    assert D.compute_scale(train) == pytest.approx(xy.std(), rel=1e-9)


def test_longer_sides_and_scale_of_resized_sketches(rng):
    from sketchheal.sketch.strokes import longer_side, resize

    sketches = [make_sketch(rng, n_strokes=int(rng.integers(1, 4)), points=int(rng.integers(2, 9))) for _ in range(30)]
    sketches.append(np.array([[0, 0, 0], [0, 0, 1]], np.float32))  # never moves: side 0, left as it is
    ss = D.SketchSet.from_sketches(sketches)
    np.testing.assert_allclose(D.longer_sides(ss), [longer_side(s) for s in sketches])
    resized = np.concatenate([resize(s, 255.0) for s in sketches])[:, :2].astype(np.float64)
    assert D.compute_scale(ss, size=255.0) == pytest.approx(resized.std(), rel=1e-6)
    assert D.compute_scale(ss) == pytest.approx(np.concatenate(sketches)[:, :2].std(), rel=1e-9)


def test_load_quickdraw_ndjson(data_dir):
    simp = data_dir / "quickdraw" / "simplified"
    if not simp.is_dir():
        pytest.skip("no QuickDraw samples")
    paths = [simp / "The Great Wall of China.ndjson", simp / "cat.ndjson"]
    s = D.load_sketches(paths, max_seq_len=None)
    assert s.categories == ["The Great Wall of China", "cat"] and s.counts() == {"The Great Wall of China": 25,
                                                                                "cat": 25}
    assert s.points.dtype == np.int16
    # every split name returns all drawings
    assert len(D.load_sketches(paths, split="test", max_seq_len=None)) == 50
    first = json.loads((simp / "cat.ndjson").read_text().splitlines()[0])["drawing"]
    lines = [np.array(st, float).T for st in first]
    np.testing.assert_array_equal(s[25], D.S.polylines_to_stroke3(lines))
    unrec = int((~s.recognized).sum())
    only = D.load_sketches(paths, max_seq_len=None, recognized_only=True)
    assert len(only) == 50 - unrec and only.dropped["unrecognized"] == unrec


def test_load_raw_ndjson_simplify_and_direct(data_dir):
    raw = data_dir / "quickdraw" / "raw" / "star.ndjson"
    if not raw.is_file():
        pytest.skip("no QuickDraw raw samples")
    simp = D.load_sketches(raw, max_seq_len=None)
    direct = D.load_sketches(raw, max_seq_len=None, raw="direct")
    assert len(simp) == len(direct) > 25
    assert simp.lengths.mean() < direct.lengths.mean()
    google = D.load_sketches(data_dir / "quickdraw" / "simplified" / "star.ndjson", max_seq_len=None)
    same = sum(np.array_equal(simp[i], google[i]) for i in range(len(google)))
    assert same >= 0.8 * len(google)
    with pytest.raises(ValueError, match="raw must be"):
        D.load_sketches(raw, raw="bogus")


# =============================================================================================== bad inputs
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        D.load_sketches(tmp_path / "nope.npz")


def test_not_an_npz(tmp_path):
    p = tmp_path / "fake.npz"
    p.write_text("hello")
    with pytest.raises(ValueError, match="fake.npz: not a sketch-rnn .npz file"):
        D.load_sketches(p)


def test_unsupported_suffix_and_empty_folder(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("x")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        D.load_sketches(p)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .npz or .ndjson"):
        D.load_sketches(tmp_path / "empty")


def test_npz_without_split(tmp_path, rng):
    p = _write_npz(tmp_path / "s.npz", train=_sketches(rng, 3))
    with pytest.raises(ValueError, match=r"s.npz: has no 'valid' split \(it has: train\)"):
        D.load_sketches(p, split="valid")


def test_npz_empty_sketch_nan_and_pen(tmp_path, rng):
    sk = _sketches(rng, 4)
    bad = list(sk)
    bad[2] = np.zeros((0, 3), np.int16)
    p = _write_npz(tmp_path / "e.npz", train=bad)
    with pytest.raises(ValueError, match=r"e.npz: split 'train', sketch 2: the sketch is empty"):
        D.load_sketches(p)
    s = D.load_sketches(p, skip_invalid=True)
    assert len(s) == 3 and s.dropped["invalid"] == 1

    nan = [x.astype(np.float32) for x in sk]
    nan[1][0, 1] = np.nan
    nan[3][2, 0] = np.inf
    p = _write_npz(tmp_path / "n.npz", train=nan)
    with pytest.raises(ValueError, match=r"n.npz: split 'train', sketch 1: contains NaN or inf"):
        D.load_sketches(p)
    assert D.load_sketches(p, skip_invalid=True).dropped["invalid"] == 2

    pen = list(sk)
    pen[0] = pen[0].copy()
    pen[0][0, 2] = 3
    with pytest.raises(ValueError, match="sketch 0: pen_lifted values must be 0 or 1"):
        D.load_sketches(_write_npz(tmp_path / "p.npz", train=pen))

    shape = list(sk)
    shape[3] = np.ones((4, 2))
    with pytest.raises(ValueError, match=r"sketch 3: expected a stroke-3 array"):
        D.load_sketches(_write_npz(tmp_path / "sh.npz", train=shape))


def test_one_point_and_clip(tmp_path, rng):
    sk = _sketches(rng, 3)
    sk.append(np.array([[0, 0, 1]], np.int16))
    sk[0] = sk[0].copy()
    sk[0][0, 0] = 5000
    s = D.load_sketches(_write_npz(tmp_path / "o.npz", train=sk))
    assert len(s) == 3 and s.dropped["one_point"] == 1
    assert s[0][0, 0] == 1000 and s.points.dtype == np.int16
    assert D.load_sketches(tmp_path / "o.npz", clip=None, max_seq_len=None)[0][0, 0] == 5000


def test_malformed_ndjson(tmp_path):
    good = _line([[[0, 10, 20], [0, 5, 0]], [[3, 3], [9, 12]]])
    cases = {
        "json": "{not json",
        "field": json.dumps({"word": "x"}),
        "stroke": json.dumps({"drawing": [[[0, 1, 2], [0, 1]]]}),
        "empty": json.dumps({"drawing": []}),
        "nan": '{"drawing": [[[0, NaN], [0, 1]]]}',
    }
    messages = {"json": "malformed JSON", "field": "'drawing' field", "stroke": "stroke 0: x and y",
                "empty": "empty", "nan": "NaN or inf"}
    for name, bad in cases.items():
        p = tmp_path / f"{name}.ndjson"
        p.write_text("\n".join([good, good, bad, good]) + "\n")
        with pytest.raises(ValueError, match=rf"{name}.ndjson:3: .*{messages[name]}"):
            D.load_sketches(p)
        s = D.load_sketches(p, skip_invalid=True)
        assert len(s) == 3 and s.dropped["invalid"] == 1


# ================================================================================================== writers
def test_save_npz_round_trip(tmp_path, rng):
    sk = _sketches(rng, 6)
    p = D.save_npz(tmp_path / "out.npz", {"train": sk[:4], "valid": D.SketchSet.from_sketches(sk[4:]),
                                          "test": []})
    assert [x.name for x in tmp_path.iterdir()] == ["out.npz"]  # nothing temporary left
    z = np.load(p, encoding="latin1", allow_pickle=True)
    assert z["train"].dtype == object and z["train"][0].dtype == np.int16 and len(z["test"]) == 0
    back = D.load_sketches(p, split="valid")
    np.testing.assert_array_equal(back[1], sk[5])
    floats = [sk[0] + np.array([0.25, -0.5, 0], np.float32)]
    D.save_npz(tmp_path / "f.npz", {"train": floats})
    np.testing.assert_allclose(D.load_sketches(tmp_path / "f.npz")[0], floats[0])
    with pytest.raises(ValueError, match="must end in .npz"):
        D.save_npz(tmp_path / "x.zip", {"train": sk})


def test_save_ndjson_round_trip(tmp_path, rng):
    sk = _sketches(rng, 5)
    s = D.SketchSet.from_sketches(sk, recognized=[True, False, True, True, True], categories=["thing"])
    p = D.save_ndjson(tmp_path / "thing.ndjson", s)
    recs = [json.loads(x) for x in p.read_text().splitlines()]
    assert recs[1]["recognized"] is False and recs[0]["word"] == "thing"
    xs = np.concatenate([st[0] for st in recs[0]["drawing"]])
    assert xs.min() == 0 and isinstance(recs[0]["drawing"][0][0][0], int)
    back = D.load_sketches(p, max_seq_len=None)
    for i in range(5):
        np.testing.assert_array_equal(back[i], sk[i])
    assert back.recognized.tolist() == [True, False, True, True, True]


def test_random_split(rng):
    s = D.SketchSet.from_sketches(_sketches(rng, 100))
    a = CV.random_split(s, (0.8, 0.1, 0.1), seed=3)
    b = CV.random_split(s, "0.8,0.1,0.1", seed=3)
    assert [len(a[k]) for k in D.SPLITS] == [80, 10, 10]
    np.testing.assert_array_equal(a["valid"].points, b["valid"].points)
    c = CV.random_split(s, (50, 5, 5))
    assert [len(c[k]) for k in D.SPLITS] == [50, 5, 5]
    assert len(CV.random_split(s, (0.5, 0.1, 0.1))["train"]) == 50
    with pytest.raises(ValueError, match="need 120"):
        CV.random_split(s, (100, 10, 10))
    with pytest.raises(ValueError, match="three"):
        CV.parse_split_sizes("0.5,0.5")


def test_convert_both_ways(tmp_path, rng):
    sk = _sketches(rng, 40)
    src = D.save_ndjson(tmp_path / "in" / "bee hive.ndjson", sk)
    D.save_ndjson(tmp_path / "in" / "ant.ndjson", sk[:30])
    out = CV.convert(tmp_path / "in", tmp_path / "npz", split_sizes=(0.5, 0.25, 0.25), seed=1)
    assert sorted(p.name for p in out) == ["ant.npz", "bee hive.npz"]
    parts = {sp: D.load_sketches(tmp_path / "npz" / "bee hive.npz", split=sp, max_seq_len=None) for sp in D.SPLITS}
    assert [len(parts[k]) for k in D.SPLITS] == [20, 10, 10]
    again = CV.convert(tmp_path / "npz" / "bee hive.npz", tmp_path / "back.ndjson")
    back = D.load_sketches(again[0], max_seq_len=None)
    got = sorted(back[i].tobytes() for i in range(len(back)))
    assert got == sorted(np.asarray(x, np.float32).tobytes() for x in sk)
    with pytest.raises(ValueError, match="give a folder"):
        CV.convert(tmp_path / "in", tmp_path / "one.npz")
    with pytest.raises(ValueError, match="overwrite its input"):
        CV.convert(src, src)


# ================================================================================================== drawing
def test_draw_grid(rng):
    img = V.draw_grid(_sketches(rng, 5), captions=["a very long category name indeed"] * 5, cols=3, cell=100)
    assert img.dtype == np.uint8 and img.shape[1] == 301 and img.shape[0] > 200
    assert (img == 255).mean() > 0.6 and (img < 60).any()  # white paper, black ink
    with pytest.raises(ValueError, match="nothing to draw"):
        V.draw_grid([])


def test_one_drawer_for_pictures_and_grids(rng):
    """draw_strokes is draw_sketch into the 5 % margin box of a white picture (same pixels)."""
    s3 = _sketches(rng, 1)[0]
    size, lw = 128, 3
    pic = V.draw_strokes(s3, size, line_width=lw)
    m = 0.05 * size + lw / 2
    canvas = np.full((size, size), 255, np.uint8)
    V.draw_sketch(canvas, s3, (m, m, size - 2 * m, size - 2 * m), lw, 0)
    assert (pic != canvas).mean() < 0.002  # the two fits differ only in the last bit of a coordinate
    assert (V.draw_strokes(np.zeros((0, 3)), 32) == 255).all()


# ====================================================================================================== CLI
def test_cli_info(sheep_npz, capsys):
    assert main(["data", "info", str(sheep_npz)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "6661" in out and "739" in out and "scale" in out
    assert main(["data", "info", str(sheep_npz), "--json", "--max-seq-len", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["kept"] == 7400 and report["splits"]["test"]["kept"] == 300
    assert report["splits"]["train"]["lengths"]["max"] == 250 and report["scale"] > 10


def test_cli_show(sheep_npz, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", str(sheep_npz), "--split", "test", "-n", "12", "-o", str(out), "--cell", "96"]) == 0
    img = cv2.imread(str(out))
    assert img.shape[1] == 4 * 96 + 1 and 3 * 96 < img.shape[0] < 3 * 130  # 4 x 3 cells plus captions
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    assert main(["data", "show", str(sheep_npz), "-n", "4", "-o", str(tmp_path / "g.bogus")]) == 1
    assert "use .png" in capsys.readouterr().err


def test_cli_convert_and_errors(tmp_path, rng, capsys):
    D.save_ndjson(tmp_path / "dog.ndjson", _sketches(rng, 30))
    assert main(["data", "convert", str(tmp_path / "dog.ndjson"), "-o", str(tmp_path / "dog.npz"),
                 "--split-sizes", "20,5,5", "--seed", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(D.load_sketches(tmp_path / "dog.npz", split="test")) == 5
    assert main(["data", "info", str(tmp_path / "missing.npz")]) == 1
    err = capsys.readouterr().err
    assert "missing.npz" in err and "no such file" in err
    assert main(["data"]) == 2
