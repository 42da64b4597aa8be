"""The demo's handlers (canvas in -> healed SVG / PNG out), examples, page construction and CLI; no browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sketchheal.cli import demo as demo_cli
from sketchheal.cli import main as cli
from sketchheal.demo import app as demo
from sketchheal.demo import logic
from sketchheal.demo.logic import (ADDED_COLOUR, DemoResult, OutputFolders, canvas_to_image, canvas_unchanged,
                                   completion_html, domain_warning, erasure_preview, example_canvas, has_ink,
                                   heal_sketch, list_examples, model_name, results_html)

CANVAS = logic.CANVAS_SIZE


def make_tiny_model(out_dir: Path, max_seq_len: int = 64) -> Path:
    """An untrained ``tiny`` release directory whose decoder never ends a sketch early, so every sample draws
    ``max_seq_len`` points (and the SVGs always have paths)."""
    from sketchheal.config import preset
    from sketchheal.model.pix2seq import LmserPix2Seq
    from sketchheal.model.weights import save_release

    torch.manual_seed(0)
    model = LmserPix2Seq(preset("tiny").model)
    with torch.no_grad():
        model.decoder.fc_params.bias[-1] = -30.0  # the p_end logit
    save_release(model, out_dir, scale=10.0, max_seq_len=max_seq_len, categories=["sheep"])
    return out_dir


def unlike_everything(model_dir: Path) -> Path:
    """Give a tiny release a calibration (``domain.json``) under which every drawing is unlike what it learned."""
    from sketchheal.config import preset
    from sketchheal.inference.domain import Domain

    nz = preset("tiny").model.z_size
    Domain(categories=["sheep"], mean=np.zeros(nz), precision=np.eye(nz),
           quantiles=np.linspace(0.0, 1e-9, 201)).save(model_dir)
    return model_dir


def drawing(size: int = CANVAS, rgba: bool = True) -> np.ndarray:
    """A sketch as gr.Sketchpad hands it over: black ink on opaque white, ``(size, size, 4) uint8``."""
    img = np.full((size, size, 3), 255, np.uint8)
    cv2.ellipse(img, (size // 2, size // 2), (size // 4, size // 6), 0, 0, 360, (0, 0, 0), 8)
    cv2.circle(img, (size // 4, size // 3), size // 10, (0, 0, 0), 8)
    for x in (size // 3, 2 * size // 3):
        cv2.line(img, (x, size // 2 + size // 6), (x, size // 2 + size // 3), (0, 0, 0), 8)
    if not rgba:
        return img
    return np.dstack([img, np.full((size, size), 255, np.uint8)])


def sheep_strokes(n: int = 40) -> np.ndarray:
    """A small closed-loop stroke-3 sketch of ``n`` points in two strokes."""
    t = np.linspace(0, 2 * np.pi, n // 2 + 1)
    ring = np.stack([60 * np.cos(t), 40 * np.sin(t)], 1)
    rows = [np.diff(ring, axis=0)]
    legs = np.array([[0, 30]] * (n - n // 2 - 1), np.float64)
    rows.append(np.concatenate([[[-20, 40]], legs], 0))
    s3 = np.concatenate([np.concatenate([r, np.zeros((len(r), 1))], 1) for r in rows], 0).astype(np.float32)
    s3[n // 2 - 1, 2] = 1
    s3[-1, 2] = 1
    return s3


@pytest.fixture(scope="module")
def healer(tmp_path_factory):
    from sketchheal.inference.loading import load_model

    return load_model(make_tiny_model(tmp_path_factory.mktemp("model") / "tiny"), device="cpu")


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "examples"
    folder.mkdir()
    np.savez(folder / "b_sheep.npz", strokes=sheep_strokes())
    cv2.imwrite(str(folder / "a_drawing.png"), drawing(300, rgba=False))
    (folder / "notes.txt").write_text("not an example")
    (folder / ".hidden.png").write_bytes(b"")
    return folder


# ------------------------------------------------------------------------------------------- canvas values


def test_canvas_to_image_reads_the_sketchpad_composite():
    img = drawing()
    gray = canvas_to_image({"background": None, "layers": [], "composite": img})
    assert gray.shape == (CANVAS, CANVAS) and gray.dtype == np.uint8
    assert gray[0, 0] == 255 and gray.min() == 0
    np.testing.assert_array_equal(canvas_to_image(img), gray)  # a bare array works too
    np.testing.assert_array_equal(canvas_to_image(img[..., :3]), gray)  # RGB
    np.testing.assert_array_equal(canvas_to_image(img[..., :3].astype(np.float32) / 255), gray)  # float in [0, 1]


def test_transparent_pixels_are_paper_whatever_their_colour():
    img = np.zeros((64, 64, 4), np.uint8)  # black but fully transparent (Gradio zeroes erased pixels)
    img[10:20, 10:50] = (0, 0, 0, 255)
    gray = canvas_to_image({"composite": img})
    assert gray[0, 0] == 255 and gray[15, 30] == 0


def test_canvas_without_composite_flattens_layers_over_background():
    bg = np.full((32, 32, 4), 255, np.uint8)
    layer = np.zeros((32, 32, 4), np.uint8)
    layer[5:8, :] = (0, 0, 0, 255)
    gray = canvas_to_image({"background": bg, "layers": [layer], "composite": None})
    assert gray[6, 10] == 0 and gray[20, 10] == 255
    assert canvas_to_image(None) is None
    assert canvas_to_image({"background": None, "layers": [], "composite": None}) is None


def test_canvas_with_a_bad_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        canvas_to_image(np.zeros((4, 4, 2), np.uint8))


# ------------------------------------------------------------------------------------------- examples


def test_list_examples_handles_a_missing_or_empty_folder(tmp_path: Path):
    assert list_examples(tmp_path / "absent") == []
    assert list_examples(tmp_path) == []


def test_list_examples_keeps_images_and_vector_files_sorted(examples: Path):
    assert [p.name for p in list_examples(examples)] == ["a_drawing.png", "b_sheep.npz"]


def test_bundled_examples_load_into_the_canvas():
    for path in list_examples():  # none yet is fine too
        assert path.parent == logic.EXAMPLES_DIR
        pic = example_canvas(path)
        assert pic.shape == (CANVAS, CANVAS, 4) and has_ink(pic[..., 0]), path


def test_example_canvas_draws_vector_and_image_examples(examples: Path):
    for path in list_examples(examples):
        pic = example_canvas(path)
        assert pic.shape == (CANVAS, CANVAS, 4) and pic.dtype == np.uint8
        assert (pic[..., 3] == 255).all() and pic[..., 0].min() == 0 and pic[0, 0, 0] == 255
        np.testing.assert_array_equal(pic[..., 0], pic[..., 1])


def test_unchanged_vector_example_is_recognised(examples: Path):
    path = examples / "b_sheep.npz"
    gray = example_canvas(path)[..., 0].copy()
    assert canvas_unchanged(gray, path)
    gray[200:260, 100:400] = 0  # a stroke drawn over it
    assert not canvas_unchanged(gray, path)
    assert not canvas_unchanged(example_canvas(examples / "a_drawing.png")[..., 0], examples / "a_drawing.png")


# ------------------------------------------------------------------------------------------- healing


def kept_shares(lines: list[np.ndarray], ink: np.ndarray, pen: float) -> tuple[float, float]:
    """``(ink covered, lines on ink)``: the share of ink pixels within ``pen`` of ``lines`` (pixel coordinates of
    ``ink``) and the share of the lines' pixels on ink (within 1.5 px)."""
    drawn = np.zeros(ink.shape, np.uint8)
    for line in lines:
        cv2.polylines(drawn, [np.rint(line).astype(np.int32).reshape(-1, 1, 2)], False, 255, 1)
    to_lines = cv2.distanceTransform(255 - drawn, cv2.DIST_L2, 3)
    to_ink = cv2.distanceTransform(np.where(ink, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)
    return float((to_lines[ink] <= pen).mean()), float((to_ink[drawn > 0] <= 1.5).mean())


def test_completion_keeps_the_drawing_and_shows_two_groups(healer, tmp_path: Path):
    res = heal_sketch({"composite": drawing()}, healer=healer, out_dir=tmp_path, seed=3)
    assert isinstance(res, DemoResult) and res.mode == "complete" and res.source == "canvas"
    assert res.result.mode == "complete" and res.warning is None  # the tiny model has no calibration
    svg = res.svgs[0]
    assert len(res.svgs) == 1 and '<g id="input" stroke="black"' in svg
    assert f'<g id="added" stroke="{ADDED_COLOUR}"' in svg
    assert svg in res.html and 'class="sh-sample sh-complete"' in res.html
    assert f'data-kept="{len(res.result.input_lines)}"' in res.html
    assert [p.name for p in res.svg_paths] == ["healed.svg"] and [p.name for p in res.png_paths] == ["healed.png"]
    assert res.svg_paths[0].read_text() == svg and res.files == res.svg_paths + res.png_paths
    png = cv2.imread(str(res.png_paths[0]), cv2.IMREAD_UNCHANGED)
    assert png is not None and png.ndim == 3 and png.min() == 0
    assert res.input_image.shape == (logic.RESULT_SIZE, logic.RESULT_SIZE) and res.input_image.dtype == np.uint8
    # the input's strokes are the drawing: its centre lines, in the canvas's pixels
    ink = canvas_to_image(drawing()) < 128
    covered, on_ink = kept_shares(res.result.input_lines, ink, pen=6.0)  # the 8-px pen's half width + 2
    assert covered > 0.98 and on_ink > 0.99, (covered, on_ink)


@pytest.fixture(scope="module")
def bundled():
    from sketchheal.inference.loading import load_model
    from sketchheal.utils.paths import BUNDLED_MODEL_DIR

    if not (BUNDLED_MODEL_DIR / "config.json").is_file():
        pytest.skip("this installation ships without the bundled model")
    return load_model(device="cpu")


def test_bundled_model_adds_strokes_in_colour_and_keeps_the_example(bundled, tmp_path: Path):
    from sketchheal.inference.inputs import expand_inputs

    path = logic.EXAMPLES_DIR / "sheep_gaps.ndjson"
    if not path.is_file():
        pytest.skip(f"{path.name} is not among the bundled examples")
    res = heal_sketch({"composite": example_canvas(path)}, healer=bundled, out_dir=tmp_path, example=path)
    assert res.source == str(path) and res.result.added_lines, "no stroke was added to a sheep with gaps"
    given = expand_inputs([path], limit=1)[0].lines
    assert len(res.result.input_lines) == len(given)
    for a, b in zip(res.result.input_lines, given):
        np.testing.assert_array_equal(a, b)  # the example's own strokes, bit for bit
    assert res.svgs[0].split('<g id="added"')[1].count("<path") == len(res.result.added_lines)
    png = cv2.imread(str(res.png_paths[0]), cv2.IMREAD_COLOR)
    r, g, b = (int(ADDED_COLOUR[i:i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(png.astype(int) - (b, g, r)).sum(2) < 60).sum() > 20  # the added strokes, in colour
    assert "added stroke" in res.html and ADDED_COLOUR in res.html


def test_redraw_gives_one_svg_and_png_per_sample(healer, tmp_path: Path):
    res = heal_sketch({"composite": drawing()}, healer=healer, out_dir=tmp_path, mode="redraw", samples=3,
                      temperature=0.5)
    assert res.mode == "redraw" and len(res.svgs) == 3 and res.html.count("<svg") == 3
    assert sorted(p.name for p in res.files) == sorted(
        [f"healed_s{k}.{ext}" for k in range(3) for ext in ("svg", "png")])
    assert len(set(res.svgs)) == 3  # different noise per sample
    assert all("<path" in svg for svg in res.svgs) and res.svg_paths[0].read_text() == res.result.to_svg(0)
    png = cv2.imread(str(res.png_paths[0]), cv2.IMREAD_UNCHANGED)
    assert png.ndim == 2 and png.min() == 0


def test_best_of_candidates_redraws_and_is_seeded(healer, tmp_path: Path):
    kw = dict(healer=healer, seed=2, temperature=0.5, mode="redraw")
    a = heal_sketch(drawing(), out_dir=tmp_path / "a", candidates=4, **kw)
    b = heal_sketch(drawing(), out_dir=tmp_path / "b", candidates=4, **kw)
    default = heal_sketch(drawing(), out_dir=tmp_path / "c", **kw)
    eight = heal_sketch(drawing(), out_dir=tmp_path / "d", candidates=8, **kw)
    assert a.svgs == b.svgs and default.svgs == eight.svgs and len(a.svgs) == 1  # the default is best of 8


@pytest.mark.parametrize("mode", ["complete", "redraw"])
def test_same_settings_give_the_same_healing(healer, tmp_path: Path, mode):
    a = heal_sketch(drawing(), healer=healer, out_dir=tmp_path / "a", seed=5, mask=0.5, mode=mode)
    b = heal_sketch(drawing(), healer=healer, out_dir=tmp_path / "b", seed=5, mask=0.5, mode=mode)
    assert a.svgs == b.svgs
    np.testing.assert_array_equal(a.input_image, b.input_image)


@pytest.mark.parametrize("mode", ["complete", "redraw"])
def test_erasing_takes_ink_from_the_model_input(healer, tmp_path: Path, mode):
    plain = heal_sketch(drawing(), healer=healer, out_dir=tmp_path / "p0", mode=mode)
    masked = heal_sketch(drawing(), healer=healer, out_dir=tmp_path / "p1", mask=1.0, mode=mode)
    ink = lambda r: int((r.input_image < 128).sum())  # noqa: E731
    assert 0 <= ink(masked) < ink(plain) and masked.result.masked


def test_erasure_preview_shows_what_heal_erases(healer, tmp_path: Path):
    from sketchheal.sketch.viz import draw_lines

    value = {"composite": drawing()}
    assert erasure_preview(value, healer=healer, mask=0.0) is None  # nothing erased: no preview
    assert erasure_preview({"composite": np.full((64, 64, 4), 255, np.uint8)}, healer=healer, mask=0.5) is None
    preview = erasure_preview(value, healer=healer, mask=0.6, seed=1)
    assert preview.shape == (logic.RESULT_SIZE, logic.RESULT_SIZE, 3) and preview.dtype == np.uint8
    whole = heal_sketch(value, healer=healer, out_dir=tmp_path / "a").result.input_lines
    kept = heal_sketch(value, healer=healer, out_dir=tmp_path / "b", mask=0.6, seed=1).result.input_lines
    assert 0 < sum(map(len, kept)) < sum(map(len, whole)) + 2 * len(kept)
    # the preview is the whole drawing in grey with what Heal keeps in black, in the canvas's frame
    expected = np.full_like(preview, 255)
    scale, lw = logic.RESULT_SIZE / CANVAS, max(2, logic.RESULT_SIZE // 64)
    draw_lines(expected, whole, scale, np.zeros(2), lw, logic.ERASED_GREY)
    draw_lines(expected, kept, scale, np.zeros(2), lw, (0, 0, 0))
    np.testing.assert_array_equal(preview, expected)
    assert (preview == logic.ERASED_GREY).all(2).sum() > 100


def test_erasure_preview_in_redraw_mode_is_the_published_masking(healer, tmp_path: Path):
    value = {"composite": drawing()}
    preview = erasure_preview(value, healer=healer, mask=1.0, seed=1, mode="redraw")
    res = heal_sketch(value, healer=healer, out_dir=tmp_path, mask=1.0, seed=1, mode="redraw")
    black = (preview == 0).all(2)
    assert (preview == logic.ERASED_GREY).all(2).any()
    assert float(np.mean(black != (res.input_image < 128))) < 0.01  # what the model saw


def test_unchanged_vector_example_is_healed_from_its_strokes(healer, examples: Path, tmp_path: Path):
    path = examples / "b_sheep.npz"
    value = {"composite": example_canvas(path)}
    for mode in ("complete", "redraw"):
        res = heal_sketch(value, healer=healer, out_dir=tmp_path / mode, example=path, mode=mode)
        assert res.source == str(path) and res.mode == mode
    np.testing.assert_array_equal(np.concatenate(res.result.input_lines)[0], [0.0, 0.0])  # the stroke-3 frame
    edited = example_canvas(path)
    edited[50:60, 50:300, :3] = 0
    assert heal_sketch({"composite": edited}, healer=healer, out_dir=tmp_path / "b", example=path).source == "canvas"


def test_example_longer_than_the_model_allows_is_redrawn_as_a_picture(healer, tmp_path: Path):
    path = tmp_path / "long.npz"
    np.savez(path, strokes=sheep_strokes(healer.max_seq_len + 10))
    value = {"composite": example_canvas(path)}
    res = heal_sketch(value, healer=healer, out_dir=tmp_path / "o", example=path, mode="redraw")
    assert res.source == "canvas" and "<path" in res.svgs[0]
    # completion has no length limit: it keeps the example's strokes
    assert heal_sketch(value, healer=healer, out_dir=tmp_path / "c", example=path).source == str(path)


@pytest.mark.parametrize("value", [None, {"composite": np.full((64, 64, 4), 255, np.uint8)}])
def test_empty_canvas_is_a_clear_error(healer, tmp_path: Path, value):
    with pytest.raises(ValueError, match="canvas is empty"):
        heal_sketch(value, healer=healer, out_dir=tmp_path)


@pytest.mark.parametrize("kwargs, message", [({"samples": 0}, "samples"), ({"samples": 99}, "samples"),
                                             ({"mask": 1.5}, "erase"), ({"mode": "repaint"}, "mode"),
                                             ({"temperature": 0.0, "mode": "redraw"}, "temperature"),
                                             ({"candidates": 0}, "candidates"), ({"candidates": 99}, "candidates")])
def test_bad_settings_are_refused(healer, tmp_path: Path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        heal_sketch(drawing(), healer=healer, out_dir=tmp_path, **kwargs)


def test_domain_warning_says_what_the_model_learned(tmp_path: Path):
    from sketchheal.inference.loading import load_model

    odd = load_model(unlike_everything(make_tiny_model(tmp_path / "tiny")), device="cpu")
    res = heal_sketch(drawing(), healer=odd, out_dir=tmp_path / "c")
    assert res.warning.startswith("This model learned sheep; your drawing is unlike 99")
    assert res.warning.endswith("% of them: only its gaps are filled, no parts are added.")
    assert res.warning == domain_warning(res.result)
    redrawn = heal_sketch(drawing(), healer=odd, out_dir=tmp_path / "r", mode="redraw")
    assert redrawn.warning.endswith(": the redrawn sketch may not follow it.")


def test_model_is_named_by_what_it_learned(healer):
    from dataclasses import replace

    from sketchheal.utils.paths import BUNDLED_MODEL_DIR

    assert model_name(healer) == "Sheep (loaded model)" and "/" not in model_name(healer)
    assert model_name(replace(healer, categories=["aaron_sheep"], source=str(BUNDLED_MODEL_DIR))) == \
        "Sheep (bundled model)"
    assert model_name(replace(healer, categories=["cat", "dog", "aaron_sheep"])) == "Cat, dog and sheep (loaded model)"
    assert model_name(replace(healer, categories=list("abcde"))).startswith("5 kinds of drawings (a, b, c, ...)")
    assert model_name(replace(healer, categories=[], source="")) == "Drawings of an unnamed kind (loaded model)"


def test_results_html_captions_each_sample():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 L1 1"/></svg>'
    out = results_html([svg, "<svg></svg>"], [12, 0])
    assert out.count("<figure") == 2 and "sample 1: 1 stroke, 12 points" in out and "sample 2: empty" in out


def test_completion_html_says_which_strokes_are_which():
    out = completion_html("<svg></svg>", 5, 2, erased=True)
    assert "your drawing after erasing (5 strokes), kept as drawn" in out and "2 added strokes" in out
    assert ADDED_COLOUR in out and 'data-added="2"' in out
    assert "nothing added" in completion_html("<svg></svg>", 1, 0)


def test_output_folders_are_fresh_and_pruned(tmp_path: Path):
    folders = OutputFolders(tmp_path / "out", keep=3)
    made = [folders.new() for _ in range(5)]
    assert len(set(made)) == 5 and folders.count == 5
    assert sorted(p for p in (tmp_path / "out").iterdir()) == made[-3:]


# ------------------------------------------------------------------------------------------- page and CLI


def test_importing_demo_does_not_import_gradio():
    code = ("import sys, sketchheal.demo.app, sketchheal.demo.logic, sketchheal.cli.demo, sketchheal.cli.main; "
            "sketchheal.cli.main.build_parser(); print('gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_configure_offline_switches_off_analytics(monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "True")
    demo.configure_offline()
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and os.environ["HF_HUB_OFFLINE"] == "1"


def test_demo_command_without_gradio_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(demo_cli, "gradio_available", lambda: False)
    assert cli.main(["demo"]) == 1
    assert "pip install 'sketchheal[demo]'" in capsys.readouterr().err


def test_launch_without_gradio_raises_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    with pytest.raises(ModuleNotFoundError, match=r"sketchheal\[demo\]"):
        demo.launch_demo(block=False)


def test_demo_command_options():
    args = cli.build_parser().parse_args(["demo", "--checkpoint", "m", "--host", "0.0.0.0", "--port", "9000"])
    assert (args.checkpoint, args.host, args.port, args.share) == ("m", "0.0.0.0", 9000, False)
    args = cli.build_parser().parse_args(["demo"])
    assert (args.checkpoint, args.host, args.port) == (None, "127.0.0.1", 7860)


def test_page_is_built_offline_with_the_brush_ready(healer, examples: Path, tmp_path: Path):
    gr = pytest.importorskip("gradio")
    app = demo.build_app(healer, outputs=OutputFolders(tmp_path / "o"), examples_dir=examples)
    assert isinstance(app, gr.Blocks) and app.analytics_enabled is False
    pads = [b for b in app.blocks.values() if isinstance(b, gr.Sketchpad)]
    assert len(pads) == 1 and pads[0].elem_id == demo.CANVAS_ID
    assert pads[0].brush.default_color == "#000000" and pads[0].brush.default_size == logic.BRUSH_RADIUS
    drop = next(b for b in app.blocks.values() if isinstance(b, gr.Dropdown))
    assert [c[0] for c in drop.choices] == ["a_drawing.png", "b_sheep.npz"] and drop.visible
    assert demo.CANVAS_ID in demo.SELECT_BRUSH_JS
    theme = demo.theme()
    assert theme._stylesheets == [] and "googleapis" not in theme._get_theme_css()


def test_page_has_a_mode_switch_plain_controls_and_advanced_settings(healer, tmp_path: Path):
    gr = pytest.importorskip("gradio")
    app = demo.build_app(healer, outputs=OutputFolders(tmp_path / "o"), examples_dir=tmp_path / "none")
    by_id = {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}
    mode = by_id["sketchheal-mode"]
    assert isinstance(mode, gr.Radio) and mode.value == "complete"
    assert [tuple(c) for c in mode.choices] == [("Complete the drawing", "complete"),
                                                ("Redraw from the code (published)", "redraw")]
    assert by_id["sketchheal-mask"].label == "Erase parts before healing" and by_id["sketchheal-parts"].value is True
    assert isinstance(by_id["sketchheal-heal"], gr.Button) and by_id["sketchheal-heal"].value == "Heal"
    advanced = by_id["sketchheal-advanced"]
    assert isinstance(advanced, gr.Accordion) and advanced.label == "Advanced" and advanced.open is False
    inside, todo = set(), list(advanced.children)
    while todo:  # every component inside the accordion
        block = todo.pop()
        todo.extend(getattr(block, "children", []))
        inside.add(block.elem_id)
    inside.discard(None)
    assert inside == {"sketchheal-seed", "sketchheal-temperature", "sketchheal-candidates", "sketchheal-samples"}
    assert by_id["sketchheal-erased"].visible is False and by_id["sketchheal-domain"].visible is False
    header = by_id["sketchheal-header"].value
    assert "Model: **Sheep (loaded model)**" in header and str(healer.source) not in header



def test_page_without_examples_hides_the_picker(healer, tmp_path: Path):
    gr = pytest.importorskip("gradio")
    app = demo.build_app(healer, outputs=OutputFolders(tmp_path / "o"), examples_dir=tmp_path / "none")
    drop = next(b for b in app.blocks.values() if isinstance(b, gr.Dropdown))
    assert drop.visible is False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_command_serves_the_page(tmp_path: Path):
    pytest.importorskip("gradio")
    model = make_tiny_model(tmp_path / "tiny")
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "True"}  # the command must switch it off itself
    proc = subprocess.Popen([sys.executable, "-m", "sketchheal.cli.main", "demo", "--checkpoint", str(model),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        page = _wait_for_page(f"http://127.0.0.1:{port}/", proc, timeout=90)
        assert "sketchheal demo" in page
        assert "fonts.googleapis.com" not in page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_demo_command_with_a_missing_checkpoint_fails_cleanly(tmp_path: Path, capsys):
    pytest.importorskip("gradio")
    assert cli.main(["demo", "--checkpoint", str(tmp_path / "nope"), "--port", str(_free_port())]) == 1
    assert "no such model directory" in capsys.readouterr().err


def _wait_for_page(url: str, proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the demo did not answer on {url} within {timeout} s")


# ------------------------------------------------------------------------------------------- limits and clean-up


def test_a_canvas_picture_over_the_pixel_limit_is_refused(healer, tmp_path: Path):
    side = int(logic.MAX_CANVAS_PIXELS ** 0.5)
    big = np.zeros((side + 1, side), np.uint8)
    with pytest.raises(ValueError, match="too large"):
        canvas_to_image(big)
    with pytest.raises(ValueError, match="too large"):
        heal_sketch({"composite": big}, healer=healer, out_dir=tmp_path)
    with pytest.raises(ValueError, match="too large"):
        canvas_to_image({"background": big, "layers": [], "composite": None})


def _upload(base_url: str, nbytes: int) -> int:
    """POST one file of ``nbytes`` to the page's upload route; the HTTP status."""
    boundary = "sketchheal-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"\0" * nbytes + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(base_url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_uploads_over_the_limit_are_refused(healer, tmp_path: Path):
    pytest.importorskip("gradio")
    app = demo.build_app(healer, outputs=OutputFolders(tmp_path / "o"), examples_dir=tmp_path / "none")
    port = _free_port()
    demo.serve(app, "127.0.0.1", port, block=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert _upload(url, 1000) == 200
        assert _upload(url, logic.MAX_UPLOAD_MB * 1024 * 1024 + 1) == 413
    finally:
        app.close()


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_demo_port_out_of_range_is_a_one_line_error(port, capsys):
    assert cli.main(["demo", "--port", port]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "port must be between 1 and 65535" in err and "Traceback" not in err


def test_launch_demo_checks_the_port_before_anything_else():
    with pytest.raises(ValueError, match="between 1 and 65535"):
        demo.launch_demo(port=99999, block=False)
    with pytest.raises(ValueError, match="between 1 and 65535"):
        demo.check_port("http")


def test_sigterm_stops_the_demo_and_removes_its_folders(tmp_path: Path):
    pytest.importorskip("gradio")
    model = make_tiny_model(tmp_path / "tiny")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(TMPDIR=str(tmp))  # where the demo's temporary folders go
    proc = subprocess.Popen([sys.executable, "-m", "sketchheal.cli.main", "demo", "--checkpoint", str(model),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_page(url, proc, timeout=90)
        assert _upload(url, 1000) == 200  # a file in Gradio's upload cache
        sessions = list(tmp.glob("sketchheal-demo-*"))
        assert len(sessions) == 1 and any(p.is_file() for p in sessions[0].rglob("*")), list(tmp.rglob("*"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(tmp.glob("sketchheal-demo-*")), proc.stdout.read()
