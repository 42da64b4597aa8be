"""Healing end to end: SVG in/out, image normalisation, inputs, outputs, errors, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sketchheal.inference import heal as H
from sketchheal.inference import inputs as heal_inputs
from sketchheal.inference import loading
from sketchheal.cli.main import main
from sketchheal.config import preset
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import save_release
from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import corrupt, render
from sketchheal.sketch.strokes import stroke3_to_polylines
from sketchheal.sketch.svg import parse_path, parse_transform, strokes_to_svg, svg_to_polylines

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def _sketch() -> np.ndarray:
    """A house-like stroke-3 sketch: square body, roof, a door (row 0 a small offset, as in sketch-rnn files)."""
    lines = [np.array([[0, 100], [0, 40], [60, 40], [60, 100], [0, 100]], float),
             np.array([[-5, 42], [30, 0], [65, 42]], float),
             np.array([[22, 100], [22, 70], [38, 70], [38, 100]], float)]
    from sketchheal.sketch.strokes import polylines_to_stroke3

    return polylines_to_stroke3(lines) * np.array([3, 3, 1], np.float32)


def _draw(s3: np.ndarray, size: tuple[int, int], width: int, margin: int = 20, ink: int = 0,
          paper: int = 255) -> np.ndarray:
    """Draw a stroke-3 sketch into an ``(h, w) uint8`` image, fitted with ``margin``."""
    h, w = size
    lines = stroke3_to_polylines(s3)
    pts = np.concatenate(lines)
    lo = pts.min(0)
    sc = min(w - 2 * margin, h - 2 * margin) / (pts.max(0) - lo).max()
    img = np.full((h, w), paper, np.uint8)
    for p in lines:
        cv2.polylines(img, [np.rint((p - lo) * sc + margin).astype(np.int32)], False, ink, width, cv2.LINE_AA)
    return img


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


# ------------------------------------------------------------------------------------------------------- SVG


def test_svg_round_trip_keeps_the_strokes():
    s3 = _sketch()
    text = strokes_to_svg(s3, size=200)
    assert text.count("<path") == 3 and 'viewBox="0 0 200 200"' in text
    back = svg_to_polylines(text)
    orig = stroke3_to_polylines(s3)
    assert [len(p) for p in back] == [len(p) for p in orig]

    def unit(lines):
        pts = np.concatenate(lines)
        lo = pts.min(0)
        return [(p - lo) / (pts.max(0) - lo).max() for p in lines]

    for a, b in zip(unit(back), unit(orig)):
        assert np.allclose(a, b, atol=1e-3)
    pts = np.concatenate(back)
    assert pts.min() >= 0 and pts.max() <= 200  # fitted into the viewBox with its margin


def test_svg_path_commands():
    (a, b) = parse_path("M10 10 l5 0 h5 v5 z m1 1 2 2")
    assert np.allclose(a, [[10, 10], [15, 10], [20, 10], [20, 15], [10, 10]])
    assert np.allclose(b, [[11, 11], [13, 13]])  # relative move from the closed subpath's start, implicit l
    (c,) = parse_path("M0 0 C0 10 10 10 10 0 S20 -10 20 0", curve_segments=8)
    assert len(c) == 17 and np.allclose(c[8], [10, 0]) and np.allclose(c[-1], [20, 0])
    assert np.allclose(c[4], [5, 7.5])  # cubic midpoint
    (q,) = parse_path("M0 0 Q5 10 10 0 T20 0", curve_segments=2)
    assert np.allclose(q, [[0, 0], [5, 5], [10, 0], [15, -5], [20, 0]])
    (arc,) = parse_path("M0 0 a5 5 0 01 10 0", curve_segments=4)  # glued flags
    assert np.allclose(arc[-1], [10, 0]) and np.allclose(arc[2], [5, -5])
    (hv,) = parse_path("M1 1 H4 V6 h-2 v-1")
    assert np.allclose(hv, [[1, 1], [4, 1], [4, 6], [2, 6], [2, 5]])
    with pytest.raises(ValueError, match="path"):
        parse_path("M0 0 L1")
    with pytest.raises(ValueError, match="unexpected character"):
        parse_path("M0 0 L1 # 2")


def test_svg_elements_and_transforms(tmp_path):
    text = f"""<svg {SVG_NS} viewBox="0 0 100 100">
      <defs><path d="M0 0 L99 99"/></defs>
      <g transform="translate(10, 20) scale(2)">
        <line x1="0" y1="0" x2="1" y2="1"/>
        <g transform="matrix(1 0 0 1 5 5)"><polyline points="0,0 1,0 1,1"/></g>
        <polygon points="0 0 2 0 2 2"/>
      </g>
      <path transform="rotate(90)" d="M1 0 L2 0"/>
    </svg>"""
    p = tmp_path / "d.svg"
    p.write_text(text)
    lines = svg_to_polylines(p)
    assert len(lines) == 4
    assert np.allclose(lines[0], [[10, 20], [12, 22]])
    assert np.allclose(lines[1], [[20, 30], [22, 30], [22, 32]])  # inner matrix applied before the outer scale
    assert np.allclose(lines[2], [[10, 20], [14, 20], [14, 24], [10, 20]])  # polygon closes
    assert np.allclose(lines[3], [[0, 1], [0, 2]], atol=1e-9)
    assert np.allclose(parse_transform("skewX(45)") @ [1, 1, 1], [2, 1, 1])
    with pytest.raises(ValueError, match="not a readable SVG"):
        svg_to_polylines("<svg><path></svg")
    with pytest.raises(ValueError, match="not <svg>"):
        svg_to_polylines("<html></html>")


# ------------------------------------------------------------------------------------------------------ images


def test_image_normalisation_matches_the_reference_rendering():
    s3 = _sketch()
    ref = render(s3, 128, "reference") > 0
    for size, width in (((300, 420), 3), ((900, 700), 14), ((120, 100), 1)):
        img = _draw(s3, size, width)
        out = H.image_to_input(img, size=128, mode="reference")
        assert out.shape == (128, 128) and out.dtype == np.float32 and out.min() >= -1 and out.max() <= 1
        ink = out > 0
        iou = (ink & ref).sum() / (ink | ref).sum()
        assert iou > 0.6, (size, width, iou)
        # the reference geometry: ink box from ~(17 - 8) / 674 of the side, longer side ~656 / 674 of it
        ys, xs = np.nonzero(out > -0.5)
        assert abs(xs.min() - 9 / 674 * 128) <= 1.5 and abs(ys.min() - 9 / 674 * 128) <= 1.5
        assert abs((ys.max() - ys.min() + 1) - 656 / 674 * 128) <= 2.5
        # a line becomes ~16/674 of the side wide whatever the pen width was
        assert 0.7 < ink.sum() / ref.sum() < 1.3


def test_image_inputs_from_files_invert_and_modes(tmp_path):
    s3 = _sketch()
    dark = _draw(s3, (240, 260), 4)
    light = _draw(s3, (240, 260), 4, ink=255, paper=0)
    cv2.imwrite(str(tmp_path / "a.png"), dark)
    cv2.imwrite(str(tmp_path / "b.jpg"), cv2.cvtColor(light, cv2.COLOR_GRAY2BGR))
    rgba = np.zeros((240, 260, 4), np.uint8)  # transparent paper, opaque black ink
    rgba[..., 3] = 255 - dark
    cv2.imwrite(str(tmp_path / "c.png"), rgba)
    a = H.image_to_input(H.load_image(tmp_path / "a.png"), size=64)
    b = H.image_to_input(H.load_image(tmp_path / "b.jpg"), size=64, invert=True)
    c = H.image_to_input(H.load_image(tmp_path / "c.png"), size=64)
    for x in (b, c):
        assert ((x > 0) & (a > 0)).sum() / ((x > 0) | (a > 0)).sum() > 0.8
    fast = H.image_to_input(dark, size=32, mode="fast")
    assert set(np.unique(fast)) <= {-1.0, 1.0} and (fast > 0).any()
    with pytest.raises(ValueError, match="invert"):
        H.image_to_input(light, size=64)  # light ink on dark paper without invert


def test_image_masking_erases_patches():
    img = _draw(_sketch(), (300, 300), 3)
    clean = H.image_to_input(img, size=128)
    u = MaskTable(1, 7).uniforms(0)
    assert np.array_equal(H.image_to_input(img, size=128, mask=0.0, uniforms=u), clean)
    some = H.image_to_input(img, size=128, mask=0.5, uniforms=u)
    allp = H.image_to_input(img, size=128, mask=1.0, uniforms=u)
    assert (clean > 0).sum() > (some > 0).sum() > (allp > 0).sum()
    assert not ((some > 0) & (clean <= 0)).any()  # masking only removes ink


# ------------------------------------------------------------------------------------------------------ healing


def _inputs(tmp_path: Path) -> list:
    s3 = _sketch()
    cv2.imwrite(str(tmp_path / "house.png"), _draw(s3, (200, 180), 3))
    np.savez(tmp_path / "one.npz", strokes=s3)
    splits = np.empty(2, dtype=object)
    splits[0], splits[1] = s3.astype(np.int16), (s3[:8] * np.array([2, 2, 1])).astype(np.int16)
    np.savez(tmp_path / "rnn.npz", train=splits[:1], valid=splits[:1], test=splits)
    simplified = {"word": "house", "drawing": [[[0, 50, 50], [0, 0, 50]], [[10, 40], [60, 60]]]}
    raw = {"word": "house", "drawing": [[[0.0, 25.5, 51.0, 51.0], [0.0, 0.0, 0.0, 51.0], [0, 10, 20, 30]]]}
    (tmp_path / "qd.ndjson").write_text(json.dumps(simplified) + "\n" + json.dumps(raw) + "\n")
    (tmp_path / "d.svg").write_text(strokes_to_svg(s3))
    return [tmp_path / "house.png", tmp_path / "one.npz", tmp_path / "rnn.npz", tmp_path / "qd.ndjson",
            tmp_path / "d.svg", s3, _draw(s3, (100, 100), 2)]


def test_heal_every_input_kind_and_save_every_format(tmp_path, healer):
    results = H.heal(_inputs(tmp_path), model=healer, samples=2, seed=3, temperature=0.5, mode="redraw")
    assert [r.source.rsplit("/", 1)[-1] for r in results] == [
        "house.png", "one.npz", "rnn.npz#0", "rnn.npz#1", "qd.ndjson#0", "qd.ndjson#1", "d.svg", "array[5]",
        "array[6]"]
    assert len({r.name for r in results}) == len(results)
    for r in results:
        assert r.input_image.shape == (32, 32) and len(r.healed) == 2
        assert all(h.ndim == 2 and h.shape[1] == 3 and len(h) <= 64 for h in r.healed)
        assert (r.original is None) == (r.source.endswith(".png") or r.source == "array[6]")
    # vector inputs are rendered exactly as in training
    assert np.array_equal(results[1].input_image, render(_sketch(), 32, "fast"))
    out = tmp_path / "out"
    written = results[1].save(out, formats=H.FORMATS)
    names = sorted(p.name for p in written)
    assert names == ["one.npz", "one_s0.png", "one_s0.svg", "one_s1.png", "one_s1.svg", "one_side.png"]
    with np.load(out / "one.npz") as z:
        assert z["samples"] == 2 and np.allclose(z["strokes"], results[1].healed[0])
        assert np.allclose(z["strokes_1"], results[1].healed[1]) and np.allclose(z["original"], _sketch())
    side = cv2.imread(str(out / "one_side.png"), cv2.IMREAD_GRAYSCALE)
    assert side.shape == (256, 4 * 256 + 3 * 4)  # input | 2 samples | original
    assert cv2.imread(str(out / "one_s0.png"), cv2.IMREAD_GRAYSCALE).shape == (256, 256)
    svg = (out / "one_s0.svg").read_text()
    healed = results[1].healed[0]
    assert svg.count("<path") == (len(stroke3_to_polylines(healed)) if len(healed) else 0)
    assert svg.count("<path") == int(healed[:, 2].sum())  # the last row always lifts the pen
    assert not list(out.glob(".*"))  # no temporary files left


def test_heal_is_seeded_and_batch_independent(tmp_path, healer):
    inputs = _inputs(tmp_path)
    a = H.heal(inputs, model=healer, seed=1, temperature=0.8, samples=2, mode="redraw")
    b = H.heal(inputs, model=healer, seed=1, temperature=0.8, samples=2, batch_size=3, mode="redraw")
    c = H.heal(inputs, model=healer, seed=2, temperature=0.8, samples=2, mode="redraw")
    flat = lambda rs: [h for r in rs for h in r.healed]  # noqa: E731
    assert all(x.shape == y.shape and np.allclose(x, y, atol=1e-3) for x, y in zip(flat(a), flat(b)))
    assert any(x.shape != y.shape or not np.allclose(x, y) for x, y in zip(flat(a), flat(c)))
    g = H.heal(inputs[1], model=healer, greedy=True, samples=2, mode="redraw")[0]
    assert np.array_equal(g.healed[0], g.healed[1])
    fast = H.heal(inputs[1], model=healer, greedy=True, precision="bf16", mode="redraw")[0]
    assert fast.healed[0].ndim == 2 and np.isfinite(fast.healed[0]).all()


def test_heal_masks_vector_inputs_with_the_published_protocol(healer):
    s3 = _sketch()
    r = H.heal([s3, s3], model=healer, mask=0.5, seed=7, mode="redraw")
    table = MaskTable(2, 7)
    for i in range(2):
        assert np.array_equal(r[i].input_image, corrupt(s3, table.uniforms(i), 0.5, 32, "fast").corrupted)
    assert np.array_equal(H.heal(s3, model=healer, mask=0.0, mode="redraw")[0].input_image, render(s3, 32, "fast"))


# ------------------------------------------------------------------------------------------------------ errors


def test_bad_inputs_give_clear_errors(tmp_path, healer):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((50, 50), 255, np.uint8))
    with pytest.raises(ValueError, match="blank.png: no ink"):
        H.heal(blank, model=healer)
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(ValueError, match="fake.png: not a readable image"):
        H.heal(fake, model=healer)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ValueError, match="heal reads images"):
        H.heal(other, model=healer)
    long = np.tile(np.array([[1, 0, 0], [0, 1, 1]], np.float32), (40, 1))  # 80 points > 64
    with pytest.raises(ValueError, match="80 points, more than the model's max_seq_len=64"):
        H.heal([long], model=healer, mode="redraw")  # the decoder's limit; completion has none
    np.savez(tmp_path / "keys.npz", other=np.zeros(3))
    with pytest.raises(ValueError, match="no 'strokes'"):
        H.heal(tmp_path / "keys.npz", model=healer)
    (tmp_path / "bad.ndjson").write_text('{"drawing": 5}\n')
    with pytest.raises(ValueError, match="bad.ndjson:1"):
        H.heal(tmp_path / "bad.ndjson", model=healer)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        H.heal(tmp_path / "missing.png", model=healer)
    with pytest.raises(ValueError, match="pen_lifted"):
        H.heal([np.array([[1, 2, 0.5], [3, 4, 7]])], model=healer)
    with pytest.raises(ValueError, match="temperature"):
        H.heal(_sketch(), model=healer, temperature=0)
    with pytest.raises(ValueError, match="mask"):
        H.heal(_sketch(), model=healer, mask=1.5)


def test_model_loading(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(loading, "BUNDLED_MODEL_DIR", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no bundled model"):
        H.load_model()
    garbage = tmp_path / "ckpt.pt"
    garbage.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="ckpt.pt"):
        H.load_model(garbage)
    with pytest.raises(FileNotFoundError):
        H.load_model(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="neither a release"):
        H.load_model(empty)
    # a training checkpoint (what `sketchheal train` writes), with DDP's "module." prefix
    cfg = preset("tiny")
    model = LmserPix2Seq(cfg.model)
    ckpt = {"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "config": cfg.to_dict(),
            "scale": 12.5, "categories": ["a"], "max_seq_len": 50, "step": 3, "version": "0.1.0"}
    torch.save(ckpt, tmp_path / "ckpt_last.pt")
    for path in (tmp_path / "ckpt_last.pt", tmp_path):
        h = H.load_model(path)
        assert (h.scale, h.max_seq_len, h.image_size, h.render_mode) == (12.5, 50, 32, "fast")
    ckpt["model"] = {"decoder.fc_hc.weight": torch.zeros(3)}
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt"):
        H.load_model(tmp_path / "bad.pt")
    monkeypatch.setattr(loading, "BUNDLED_MODEL_DIR", model_dir)
    assert H.load_model().scale == 10.0


# ------------------------------------------------------------------------------------------------------ CLI


def test_cli_heal_writes_the_requested_formats(tmp_path, model_dir, capsys):
    inputs = [str(p) for p in _inputs(tmp_path)[:2]]
    out = tmp_path / "out"
    rc = main(["heal", *inputs, "-o", str(out), "--checkpoint", str(model_dir), "--format", "svg,npz",
               "--mask", "0.3", "--seed", "7", "--temperature", "0.2", "--device", "cpu", "--precision", "bf16"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["house.npz", "house.svg", "one.npz", "one.svg"]
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["house.npz", "house.svg", "one.npz", "one.svg"]


def test_cli_errors_leave_no_output(tmp_path, model_dir, capsys):
    good = str(_inputs(tmp_path)[1])
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((20, 20), np.uint8) + 255)
    out = tmp_path / "out"
    cases = [
        ([good, str(blank)], "no ink"),
        ([good, str(tmp_path / "missing.npz")], "no such file"),
        ([good, "--checkpoint", str(tmp_path / "qd.ndjson")], "qd.ndjson"),
        ([], "no INPUT"),
    ]
    for args, message in cases:
        if "--checkpoint" not in args:
            args = [*args, "--checkpoint", str(model_dir)]
        rc = main(["heal", *args, "-o", str(out)])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and message in err and len(err.splitlines()) == 1, (args, err)
        assert not out.exists()


def test_cli_example(tmp_path, model_dir, monkeypatch, capsys):
    examples = tmp_path / "examples"
    examples.mkdir()
    cv2.imwrite(str(examples / "house.png"), _draw(_sketch(), (150, 150), 3))
    np.savez(examples / "house_strokes.npz", strokes=_sketch())
    monkeypatch.setattr(heal_inputs, "EXAMPLES_DIR", examples)
    out = tmp_path / "out"
    assert main(["heal", "--example", "-o", str(out), "--checkpoint", str(model_dir), "--format", "png"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["house.png", "house_strokes.png"]
    assert "house.png" in capsys.readouterr().out
    monkeypatch.setattr(heal_inputs, "EXAMPLES_DIR", tmp_path / "none")
    assert main(["heal", "--example", "-o", str(out), "--checkpoint", str(model_dir)]) == 1


def test_package_level_heal_is_a_plain_function_with_a_signature(healer):
    import inspect

    import sketchheal

    assert inspect.isfunction(sketchheal.heal)
    params = inspect.signature(sketchheal.heal).parameters
    assert {"inputs", "model", "mask", "seed", "temperature", "samples", "candidates"} <= set(params)
    assert {"heal", "load_model", "load_sketches", "render", "train", "evaluate"} <= set(dir(sketchheal))
    r = sketchheal.heal(_sketch(), model=healer, greedy=True)
    assert len(r) == 1 and isinstance(r[0], H.HealResult)


# ------------------------------------------------------------------------------------------------ HealConfig


def test_heal_signature_matches_heal_config():
    """Every HealConfig field is a keyword of heal() with the same default (the signature stays the real one)."""
    import dataclasses
    import inspect

    from sketchheal.config import HealConfig

    params = inspect.signature(H.heal).parameters
    for f in dataclasses.fields(HealConfig):
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY, f.name
        assert params[f.name].default == getattr(HealConfig(), f.name), f.name
    assert list(params)[:2] == ["inputs", "config"]


def test_heal_config_checks_every_field_before_the_model_is_loaded(tmp_path):
    from sketchheal.config import HealConfig

    HealConfig().validate()
    HealConfig(greedy=True, temperature=0.0, candidates=1, mask=0.5, limit=3, seed=np.int64(2)).validate()
    bad = {"mask": 1.5, "seed": -1, "temperature": 0.0, "samples": 0, "greedy": "yes", "invert": 1,
           "batch_size": 0, "split": "", "limit": 0, "precision": "fp16", "candidates": 0, "skip_long": None,
           "mode": "paint", "parts": 1}
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name):
            HealConfig(**{name: value}).validate()
    with pytest.raises(ValueError, match="candidates"):
        HealConfig(greedy=True, candidates=2).validate()
    # a bad setting is reported although the model (and the input) do not exist: nothing is loaded first
    with pytest.raises(ValueError, match="temperature"):
        H.heal(tmp_path / "missing.png", model=tmp_path / "no-model", temperature=-1.0)
    with pytest.raises(TypeError, match="bogus"):
        H.heal_config(bogus=1)


def test_heal_takes_a_config_and_keywords_override_it(healer):
    from sketchheal.config import HealConfig

    cfg = HealConfig(seed=4, temperature=0.5, samples=2, candidates=2, mode="redraw")
    a = H.heal(_sketch(), cfg, model=healer)
    b = H.heal(_sketch(), model=healer, seed=4, temperature=0.5, samples=2, candidates=2, mode="redraw")
    assert len(a[0].healed) == 2 and all(np.array_equal(x, y) for x, y in zip(a[0].healed, b[0].healed))
    c = H.heal(_sketch(), cfg, model=healer, samples=1)  # a keyword wins over the config, also a default value
    assert len(c[0].healed) == 1  # sample 0 as before, up to the last bits of a matrix product of another size
    np.testing.assert_allclose(c[0].healed[0], a[0].healed[0], atol=1e-4)
    assert cfg.samples == 2  # the caller's config is not changed
    assert H.heal_config(cfg, seed=0).seed == 0 and H.heal_config(cfg).seed == 4
    with pytest.raises(TypeError, match="HealConfig"):
        H.heal(_sketch(), {"seed": 1}, model=healer)


def test_skip_long_leaves_out_long_sketches_and_counts_them(healer, tmp_path):
    long = np.tile(np.array([[1, 0, 0], [0, 1, 1]], np.float32), (40, 1))  # 80 points > max_seq_len 64
    short = np.tile(np.array([[2, 0, 0], [0, 2, 1]], np.float32), (5, 1))
    with pytest.raises(ValueError, match=r"array\[1\]: the sketch has 80 points, more than the model's "
                                         r"max_seq_len=64: simplify it \(sketchheal.sketch.strokes.rdp\) or pass "
                                         r"--skip-long"):
        H.heal([_sketch(), long, _sketch()], model=healer, mode="redraw")
    kw = dict(model=healer, seed=5, mask=0.3, temperature=0.5, candidates=2, mode="redraw")
    got = H.heal([_sketch(), long, _sketch()], skip_long=True, **kw)
    assert [r.source for r in got] == ["array[0]", "array[2]"] and got.skipped == ["array[1]"]
    # the kept sketches keep their index (masks, noise): the results of a short sketch in the long one's place
    # (up to the last bits of matrix products of another batch size)
    ref = H.heal([_sketch(), short, _sketch()], **kw)
    for r, e in zip(got, [ref[0], ref[2]]):
        assert np.array_equal(r.input_image, e.input_image) and r.healed[0].shape == e.healed[0].shape
        np.testing.assert_allclose(r.healed[0], e.healed[0], atol=1e-4)
    assert H.heal([_sketch()], model=healer, mode="redraw").skipped == []
    with pytest.raises(ValueError, match="nothing to heal: all 1 sketch"):
        H.heal([long], model=healer, skip_long=True, mode="redraw")


def test_cli_skip_long_says_how_many_were_skipped(tmp_path, model_dir, capsys):
    long = np.tile(np.array([[1, 0, 0], [0, 1, 1]], np.float32), (40, 1))
    sketches = np.empty(3, dtype=object)
    sketches[:] = [_sketch().astype(np.int16), long.astype(np.int16), _sketch().astype(np.int16)]
    np.savez(tmp_path / "many.npz", test=sketches, train=sketches[:1], valid=sketches[:1])
    out = tmp_path / "out"
    args = ["heal", str(tmp_path / "many.npz"), "-o", str(out), "--checkpoint", str(model_dir), "--format", "svg",
            "--mode", "redraw"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "many.npz#1: the sketch has 80 points" in err and "--skip-long" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main([*args, "--skip-long"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert sorted(p.name for p in out.iterdir()) == ["many_0.svg", "many_2.svg"]
    assert [line for line in err if line.startswith("skipped")] == [
        "skipped 1 sketch(es) with more points than the model's max_seq_len=64 (--skip-long): "
        f"{tmp_path / 'many.npz'}#1"]
