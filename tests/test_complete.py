"""Completion (sketchheal.inference.complete): the input kept exactly, gaps bridged, strokes in the input's frame."""

from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from sketchheal.evaluation.healing import ink_counts, summarise
from sketchheal.inference.complete import (Completion, CompletionParams, added_strokes, complete, model_view,
                                           to_image, view_of_part)
from sketchheal.model.encoder import EncoderOutput
from sketchheal.sketch.erase import erase_squares
from sketchheal.sketch.trace import skeleton_polylines, thin, trace_strokes


class _Oracle(torch.nn.Module):
    """A stand-in model whose reconstruction is a given image per call (the complete drawing)."""

    def __init__(self, recon: np.ndarray):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.recon = torch.from_numpy(recon)

    def encode(self, x):
        b = x.shape[0]
        rec = self.recon.expand(b, 1, *self.recon.shape[-2:])
        return EncoderOutput(mu=torch.zeros(b, 4), logvar=torch.zeros(b, 4), recons=[rec])


def _drawing():
    # a house: square body plus a roof, in "QuickDraw" coordinates far from the origin
    body = np.array([[300, 400], [500, 400], [500, 600], [300, 600], [300, 400]], np.float64)
    roof = np.array([[290, 410], [400, 300], [510, 410]], np.float64)
    return [body, roof]


def _oracle_image(original, view, size=128):
    img = np.zeros((size, size), np.uint8)
    for line in original:
        q = np.rint(to_image(line, view) * 16).astype(np.int32)
        cv2.polylines(img, [q], False, 255, thickness=3, lineType=cv2.LINE_AA, shift=4)
    return (img.astype(np.float32) / 127.5 - 1.0)[None, None]


# The oracle's reconstruction is one fixed image, not one of the image it is shown: the averaging over mirrored
# and shifted views (inference.recon, tested in test_recon.py) would mirror it, so these tests go without it.
ORACLE = CompletionParams(views="")


def _healer(model):
    return SimpleNamespace(model=model, image_size=128, render_mode="reference")


def test_gaps_are_bridged_and_the_input_is_kept_bit_for_bit():
    original = _drawing()
    inputs = erase_squares(original, np.array([[500.0, 500.0], [300.0, 500.0]]), 40.0)
    view = model_view(inputs, 128, "reference")
    healer = _healer(_Oracle(_oracle_image(original, view)))
    (res,) = complete(healer, [inputs], params=ORACLE)
    assert isinstance(res, Completion)
    assert len(res.input_lines) == len(inputs)
    assert all(np.array_equal(a, b) for a, b in zip(res.input_lines, inputs))
    assert res.added_lines, "the two gaps should be bridged"
    ends = {tuple(p) for line in inputs for p in (line[0], line[-1])}
    joined = [tuple(line[0]) in ends or tuple(line[-1]) in ends for line in res.added_lines]
    assert all(joined), "added strokes start or end exactly at the input's loose ends"
    s = summarise([ink_counts(original, inputs, res.lines)])
    assert s["recall"] > 0.9 and s["precision"] > 0.9 and s["kept"] == 1.0


def test_nothing_to_add_when_the_reconstruction_is_the_input():
    original = _drawing()
    view = model_view(original, 128, "reference")
    healer = _healer(_Oracle(_oracle_image(original, view)))
    (res,) = complete(healer, [original], params=ORACLE)
    assert res.added_lines == []
    assert len(res.lines) == len(original)


def test_empty_and_degenerate_inputs():
    healer = _healer(_Oracle(np.full((1, 1, 128, 128), -1, np.float32)))
    res = complete(healer, [[], [np.array([[5.0, 5.0]])]])
    assert [r.added_lines for r in res] == [[], []]


def test_view_maps_input_points_to_the_model_image():
    lines = _drawing()
    view = model_view(lines, 128, "reference")
    ink = view.image > 0
    px = np.rint(view.px).astype(int)
    assert ink[px[:, 1], px[:, 0]].all()
    np.testing.assert_allclose(to_image(view.uv, view), view.px, atol=1e-6)
    part = view_of_part([lines[0]], view, view.image)
    np.testing.assert_allclose(part.px, view.px[: len(lines[0])], atol=1e-6)


def test_thin_and_trace_a_thick_line():
    mask = np.zeros((40, 60), bool)
    cv2.line(mask.view(np.uint8), (5, 20), (55, 20), 1, thickness=5)
    skel = thin(mask)
    assert skel.sum() < mask.sum() / 3
    lines = skeleton_polylines(skel)
    assert len(lines) == 1 and np.ptp(lines[0][:, 0]) > 40
    strokes = trace_strokes(mask)
    assert len(strokes) == 1 and len(strokes[0]) <= 4


def test_a_loop_is_traced_closed():
    mask = np.zeros((40, 40), np.uint8)
    cv2.circle(mask, (20, 20), 12, 1, thickness=1)
    lines = skeleton_polylines(mask.astype(bool))
    assert len(lines) == 1 and np.hypot(*(lines[0][0] - lines[0][-1])) <= 1.5


def test_bridges_can_be_switched_off():
    original = _drawing()
    inputs = erase_squares(original, np.array([[500.0, 500.0]]), 40.0)
    view = model_view(inputs, 128, "reference")
    recon = _oracle_image(original, view)[0, 0]
    none = added_strokes(view, recon, CompletionParams(bridge=False, residual=False))
    assert none == []
    some = added_strokes(view, recon, CompletionParams(residual=False))
    assert some


@pytest.mark.slow
def test_bundled_model_completes_an_erased_sheep(sheep_npz):
    from sketchheal.inference.loading import load_model
    from sketchheal.sketch.erase import erase
    from sketchheal.sketch.io import load_sketches
    from sketchheal.sketch.strokes import stroke3_to_polylines

    healer = load_model(None, device="cpu")
    sk = load_sketches(sheep_npz, split="test")
    originals = [stroke3_to_polylines(sk[i]) for i in range(6)]
    inputs = [erase(o, 0.3, seed=i).lines for i, o in enumerate(originals)]
    res = complete(healer, inputs)
    counts = [ink_counts(o, x, r.lines) for o, x, r in zip(originals, inputs, res)]
    s = summarise(counts)
    assert s["kept"] == 1.0 and s["recall"] > 0.1 and s["precision"] > 0.3


def test_bundled_gapfill_matches_the_bundled_model():
    from sketchheal.inference.complete import BUNDLED_GAPFILL_DIR, load_gapfill
    from sketchheal.inference.loading import load_model

    if not (BUNDLED_GAPFILL_DIR / "config.json").is_file():
        pytest.skip("no bundled gap-filler")
    gap, main = load_gapfill(device="cpu"), load_model(None, device="cpu")
    assert gap.image_size == main.image_size and gap.render_mode == main.render_mode
    lic = json.loads((BUNDLED_GAPFILL_DIR / "config.json").read_text()).get("extra", {}).get("license", "")
    assert "CC BY-NC 4.0" in lic


def test_drawings_of_the_models_own_kind_get_the_upright_views(monkeypatch):
    """The domain check's typical drawings (below typical_below) are reconstructed with typical_views, the others
    with views; without a domain check every drawing gets views."""
    import sketchheal.inference.complete as C

    calls = []
    real = C.reconstruct

    def spy(model, images, batch_size=64, views=()):
        calls.append((len(images), views))
        return real(model, images, batch_size, views)

    monkeypatch.setattr(C, "reconstruct", spy)
    original = _drawing()
    inputs = erase_squares(original, np.array([[500.0, 500.0]]), 40.0)
    healer = _healer(_Oracle(_oracle_image(original, model_view(inputs, 128, "reference"))))
    domain = SimpleNamespace(nll=lambda *a, **k: None,
                             assess=lambda codes, nll: [{"percentile": 10.0, "typical": True},
                                                        {"percentile": 95.0, "typical": True}])
    params = CompletionParams(views="flip", typical_views="mirror", typical_below=90.0, passes=1)
    res = complete(healer, [inputs, inputs], params=params, domain=domain)
    assert sorted(calls[1:]) == [(1, "flip"), (1, "mirror")]  # calls[0]: the identity pass for the codes
    assert [r.typicality["percentile"] for r in res] == [10.0, 95.0]
    calls.clear()
    complete(healer, [inputs, inputs], params=params)
    assert calls == [(2, "flip")]
    with pytest.raises(ValueError, match="typical_below"):
        CompletionParams(typical_below=120.0)
    with pytest.raises(ValueError, match="unknown"):
        CompletionParams(typical_views="sideways")


def test_dense_drawings_are_thinned_for_the_working_copy_only():
    from sketchheal.inference.complete import working_copy
    # a raw-QuickDraw-like drawing: the house's edges sampled every pixel
    dense = [np.concatenate([np.linspace(a, b, 200, endpoint=False) for a, b in zip(line[:-1], line[1:])]
                            + [line[-1:]]) for line in _drawing()]
    work = working_copy(dense)
    assert sum(map(len, work)) < 0.2 * sum(map(len, dense))
    assert all(np.array_equal(w[0], d[0]) and np.array_equal(w[-1], d[-1]) for w, d in zip(work, dense))
    simplified = _drawing()  # corners only: nothing to take away
    assert all(np.array_equal(w, s) for w, s in zip(working_copy(simplified), simplified))
    assert sum(map(len, working_copy(dense, thin=0))) == sum(map(len, dense))
    # completion reads the thinned copy but hands the user's strokes back exactly as given
    original = dense
    inputs = erase_squares(original, np.array([[500.0, 500.0], [300.0, 500.0]]), 40.0)
    view = model_view(inputs, 128, "reference")
    assert len(view.uv) < 0.2 * sum(map(len, inputs))
    healer = _healer(_Oracle(_oracle_image(original, view)))
    (res,) = complete(healer, [inputs], params=ORACLE)
    assert len(res.input_lines) == len(inputs)
    assert all(np.array_equal(a, b) for a, b in zip(res.input_lines, inputs))
    assert res.added_lines
