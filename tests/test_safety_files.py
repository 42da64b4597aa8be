"""Issue 18 (safety) for files people hand to sketchheal: sketch files, images, SVG, and `data convert`.

Every crafted file is made here, in tmp_path. A file that would run code touches a MARKER file in tmp_path; no test
may ever see it appear.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_sketch
from sketchheal.cli.main import main
from sketchheal.sketch import convert as CV
from sketchheal.sketch import io as D
from sketchheal.sketch.image import MAX_IMAGE_PIXELS, image_to_input, load_image
from sketchheal.sketch.svg import read_svg, svg_to_polylines
from sketchheal.utils.npfile import load_npz


class _Exploit:
    """Pickles as a call of os.system (what a crafted .npz carries)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _evil_npz(tmp_path: Path, key: str = "train") -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    obj = np.empty(3, dtype=object)
    obj[0] = np.zeros((4, 3), np.int16)
    obj[1] = _Exploit(f"touch '{marker}'")
    obj[2] = np.ones((2, 3), np.int16)
    path = tmp_path / "evil.npz"
    np.savez(path, **{key: obj, "valid": obj, "test": obj})
    return path, marker


def _sketches(rng, n=10):
    return [make_sketch(rng, n_strokes=int(rng.integers(1, 4)), points=int(rng.integers(2, 7))) for _ in range(n)]


# ============================================================================== 1. a .npz never runs code
def test_pickled_code_in_npz_is_refused_by_load_sketches(tmp_path):
    path, marker = _evil_npz(tmp_path)
    with pytest.raises(ValueError, match=r"evil.npz .*pickled object of type \w+\.system that sketchheal does not "
                                         r"load; only arrays of numbers are read"):
        D.load_sketches(path)
    assert not marker.exists()


def test_pickled_code_in_npz_is_refused_by_data_info(tmp_path, capsys):
    path, marker = _evil_npz(tmp_path)
    assert main(["data", "info", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evil.npz" in err and "pickled object" in err
    assert not marker.exists()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from sketchheal.config import preset
    from sketchheal.model.pix2seq import LmserPix2Seq
    from sketchheal.model.weights import save_release

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    save_release(LmserPix2Seq(preset("tiny").model), d, scale=10.0, max_seq_len=64, categories=["x"])
    return d


def test_pickled_code_in_npz_is_refused_by_heal(tmp_path, model_dir, capsys):
    (tmp_path / "split").mkdir()
    (tmp_path / "single").mkdir()
    splits, marker = _evil_npz(tmp_path / "split", key="test")
    single, marker2 = _evil_npz(tmp_path / "single", key="strokes")  # the one-sketch layout heal also reads
    for path in (splits, single):
        assert main(["heal", str(path), "-o", str(tmp_path / "out"), "--checkpoint", str(model_dir)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pickled object" in err
    assert not marker.exists() and not marker2.exists() and not (tmp_path / "out").exists()


def test_real_sketch_rnn_files_load_exactly_as_numpy_loads_them(data_dir):
    for name in ("aaron_sheep.npz", "omniglot.npz"):
        path = data_dir / "sketch-rnn" / name
        if not path.is_file():
            pytest.skip(f"{path} not found")
        ours = load_npz(path)
        theirs = np.load(path, encoding="latin1", allow_pickle=True)  # trusted test data, for comparison only
        assert sorted(ours) == sorted(theirs.files)
        for key in theirs.files:
            a, b = ours[key], theirs[key]
            assert a.dtype == b.dtype == object and a.shape == b.shape
            assert all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def test_files_written_by_numpy_still_load(tmp_path, rng):
    sk = _sketches(rng, 5)
    D.save_npz(tmp_path / "a.npz", {"train": sk, "valid": sk[:2], "test": sk[2:]})
    back = D.load_sketches(tmp_path / "a.npz", split="test")
    np.testing.assert_array_equal(back[1], sk[3])
    np.savez(tmp_path / "plain.npz", strokes=sk[0], names=np.array(["a", "b"]))  # plain arrays: numpy's own reader
    z = load_npz(tmp_path / "plain.npz")
    np.testing.assert_array_equal(z["strokes"], sk[0])
    assert z["names"].tolist() == ["a", "b"]


def test_object_arrays_of_anything_but_numbers_are_refused(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = np.zeros((2, 3)), "a string"
    np.savez(tmp_path / "s.npz", train=obj)
    with pytest.raises(ValueError, match="pickled object of type str"):
        D.load_sketches(tmp_path / "s.npz")


# ===================================================================== 5. one clear line for broken inputs
def test_truncated_npz_is_one_clear_error(tmp_path, rng, capsys):
    D.save_npz(tmp_path / "t.npz", {"train": _sketches(rng, 50)})
    data = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"t.npz: .*truncated"):
        D.load_sketches(tmp_path / "t.npz")
    from sketchheal.inference.inputs import read_sketches

    with pytest.raises(ValueError, match=r"t.npz"):
        read_sketches(tmp_path / "t.npz")
    assert main(["data", "info", str(tmp_path / "t.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "t.npz" in err


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` pixels (the pixel data is a few bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_huge_images_are_refused_before_decoding(tmp_path):
    assert MAX_IMAGE_PIXELS == 40_000_000
    with pytest.raises(ValueError, match=r"bomb.png: .*more (pixels )?than the 40,000,000 sketchheal reads"):
        load_image(_png_header_only(tmp_path / "bomb.png", 16000, 16000))  # beyond Pillow's own bomb limit
    with pytest.raises(ValueError, match=r"big.png: the image is 7000 x 7000 = 49,000,000 pixels"):
        load_image(_png_header_only(tmp_path / "big.png", 7000, 7000))  # within Pillow's, beyond ours
    with pytest.raises(ValueError, match="more than the 40,000,000"):
        image_to_input(np.ones((7000, 7000), np.uint8))


def test_deeply_nested_svg_is_read_without_recursion(tmp_path):
    p = tmp_path / "deep.svg"
    p.write_text('<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 100_000 + '<path d="M0 0 L10 10 L20 0"/>'
                 + "</g>" * 100_000 + "</svg>")
    lines = svg_to_polylines(p)
    assert len(lines) == 1 and lines[0].shape == (3, 2)


@pytest.mark.parametrize("body", ['<path d="M-1e308 0 L1e308 1e308"/>', '<path d="M0 0 L1e999 5"/>',
                                  '<g transform="scale(1e305)"><path d="M0 0 L10000 10"/></g>'])
def test_svg_coordinates_out_of_range_name_the_file(tmp_path, body):
    p = tmp_path / "huge.svg"
    p.write_text(f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>')
    with pytest.raises(ValueError, match=r"huge.svg: a <path> has coordinates out of range"):
        svg_to_polylines(p)


def test_specks_and_noise_are_no_drawing(tmp_path):
    from PIL import Image

    one = np.full((100, 100), 255, np.uint8)
    one[40, 60] = 0
    with pytest.raises(ValueError, match="no drawing found in one: only specks"):
        image_to_input(one, name="one")
    dot = np.full((400, 400), 255, np.uint8)
    dot[200:204, 100:104] = 0
    with pytest.raises(ValueError, match="no drawing found in dot: the ink is one dot of 4 x 4 pixels"):
        image_to_input(dot, name="dot")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(20, 256, (256, 256)).astype(np.uint8)).save(tmp_path / "noise.jpg", quality=75)
    with pytest.raises(ValueError, match=r"no drawing found in .*noise.jpg: .*noise, not a line drawing"):
        image_to_input(load_image(tmp_path / "noise.jpg"), name=str(tmp_path / "noise.jpg"))
    salt = np.where(rng.random((256, 256)) < 0.05, 0, 255).astype(np.uint8)
    with pytest.raises(ValueError, match="no drawing found in salt: the ink is mostly specks"):
        image_to_input(salt, name="salt")
    sparse = np.where(rng.random((256, 256)) < 0.2, 0, 255).astype(np.uint8)
    with pytest.raises(ValueError, match="no drawing found in sparse: the ink is scattered"):
        image_to_input(sparse, name="sparse")
    # a drawing with a few specks beside it is still a drawing (the specks are dropped)
    drawing = np.full((200, 200), 255, np.uint8)
    drawing[50:150, 100] = 0
    drawing[100, 50:150] = 0
    drawing[10, 10] = drawing[190, 20] = 0
    assert image_to_input(drawing, size=64).max() == 1.0


def test_svg_shapes_are_strokes_and_other_elements_are_reported(tmp_path):
    p = tmp_path / "shapes.svg"
    p.write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" fill="white"/>'
                 '<g stroke="black" fill="none"><circle cx="50" cy="50" r="10"/>'
                 '<rect x="10" y="20" width="30" height="5" transform="translate(5 0)"/>'
                 '<ellipse cx="0" cy="0" rx="4" ry="2" transform="rotate(90)"/>'
                 '<line x1="0" y1="0" x2="9" y2="9"/><polyline points="0,0 5,5 10,0"/>'
                 '<polygon points="0,0 5,5 10,0"/></g><text x="1" y="1">label</text>'
                 '<image href="photo.png" width="5" height="5"/></svg>')
    d = read_svg(p)
    assert [len(x) for x in d.lines] == [65, 5, 65, 2, 3, 4]
    np.testing.assert_allclose(d.lines[0][:-1] - [50, 50], 10 * np.stack([np.cos(np.linspace(0, 2 * np.pi, 65)),
                                                                          np.sin(np.linspace(0, 2 * np.pi, 65))],
                                                                         1)[:-1], atol=1e-9)
    np.testing.assert_allclose(d.lines[1], [[15, 20], [45, 20], [45, 25], [15, 25], [15, 20]])
    np.testing.assert_allclose(np.abs(d.lines[2]).max(0), [2, 4], atol=1e-9)  # rotated: x and y swap
    assert d.skipped == {"text": 1, "image": 1}
    with pytest.warns(UserWarning, match=r"shapes.svg: skipped 1 <text>, 1 <image>"):
        svg_to_polylines(p)


# ================================================================================ 6. no half-done output
def test_convert_checks_every_input_before_writing(tmp_path, rng):
    D.save_ndjson(tmp_path / "in" / "a.ndjson", _sketches(rng, 30))
    bad = tmp_path / "in" / "b.ndjson"
    D.save_ndjson(bad, _sketches(rng, 30))
    bad.write_text(bad.read_text() + "{not json\n")
    with pytest.raises(D.InvalidSketchError, match="b.ndjson:31"):
        CV.convert(tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    D.save_ndjson(tmp_path / "in2" / "a.ndjson", _sketches(rng, 30))
    D.save_ndjson(tmp_path / "in2" / "b.ndjson", _sketches(rng, 20))
    with pytest.raises(ValueError, match=r"b.ndjson: category 'b': split sizes \[23, 1, 1\] need 25"):
        CV.convert(tmp_path / "in2", tmp_path / "out", split_sizes="23,1,1")
    assert not (tmp_path / "out").exists()


def test_convert_output_must_be_a_sketch_file_or_a_folder(tmp_path, rng, capsys):
    src = D.save_ndjson(tmp_path / "a.ndjson", _sketches(rng, 30))
    assert main(["data", "convert", str(src), "-o", str(tmp_path / "out.txt")]) == 1
    err = capsys.readouterr().err
    assert "out.txt: the output must be a .npz or .ndjson file, or a folder" in err
    assert not (tmp_path / "out.txt").exists()
    few = D.save_ndjson(tmp_path / "few.ndjson", _sketches(rng, 20))
    assert main(["data", "convert", str(few), "-o", str(tmp_path / "x.npz"), "--split-sizes", "23,1,1"]) == 1
    assert "need 25 drawings, only 20 available" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


# ============================================================================= 8. hints, words, empty files
def test_skip_invalid_is_suggested_only_where_the_flag_exists(tmp_path, model_dir, capsys):
    p = tmp_path / "bad.ndjson"
    p.write_text(json.dumps({"word": "x", "drawing": [[[0, 5], [0, 5]]]}) + "\n{oops\n")
    with pytest.raises(D.InvalidSketchError) as e:
        D.load_sketches(p)
    message = str(e.value).split("bad.ndjson")[1]  # (the tmp_path itself is named after this test)
    assert "skip" not in message
    assert main(["data", "info", str(p)]) == 1
    assert "bad.ndjson:2" in (err := capsys.readouterr().err) and "--skip-invalid" in err.split("bad.ndjson")[1]
    assert main(["data", "info", str(p), "--skip-invalid"]) == 0
    capsys.readouterr()
    assert main(["heal", str(p), "-o", str(tmp_path / "out"), "--checkpoint", str(model_dir)]) == 1
    err = capsys.readouterr().err
    assert "bad.ndjson:2" in err and "skip" not in err.split("bad.ndjson")[1]


def _ndjson(path: Path, words: list[str]) -> Path:
    path.write_text("".join(json.dumps({"word": w, "drawing": [[[0, 5 + i, 9], [0, 3, 9 - i]]]}) + "\n"
                            for i, w in enumerate(words)))
    return path


def test_quickdraw_word_is_the_category(tmp_path, capsys):
    p = _ndjson(tmp_path / "dogs.ndjson", ["dog"] * 30)
    assert main(["data", "info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "categories from the 'word' field of dogs.ndjson" in out and "dog " in out and "dogs " not in out
    mixed = _ndjson(tmp_path / "mixed.ndjson", ["cat"] * 30 + ["dog"] * 30)
    assert D.load_sketches(mixed).counts() == {"cat": 30, "dog": 30}
    written = CV.convert(mixed, tmp_path / "npz", split_sizes="20,5,5")
    assert sorted(x.name for x in written) == ["cat.npz", "dog.npz"]
    with pytest.raises(ValueError, match="holds 2 categories"):
        CV.convert(mixed, tmp_path / "one.npz")
    back = CV.convert(p, tmp_path / "back.ndjson")
    assert {json.loads(x)["word"] for x in back[0].read_text().splitlines()} == {"dog"}


@pytest.mark.parametrize("kind", ["zero.npz", "zero.ndjson", "blank.ndjson", "splits.npz"])
def test_empty_files_are_one_line(tmp_path, kind, capsys):
    p = tmp_path / kind
    if kind == "blank.ndjson":
        p.write_text("\n\n  \n")
    elif kind == "splits.npz":
        D.save_npz(p, {"train": [], "valid": [], "test": []})
    else:
        p.write_bytes(b"")
    assert main(["data", "info", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{kind}: the file is empty" in err
