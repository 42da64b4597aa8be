"""Bridges of completion (sketchheal.inference.bridges): candidates and their features, the learned scorer (JSON
numbers only, checked), the greedy choice, and fitting the scorer (sketchheal.training.bridges)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from sketchheal.inference.bridges import (FEATURES, SCORER_FILE, BridgeScorer, candidates, choose, load_scorer,
                                          loose_ends)
import sketchheal.inference.complete as C
from sketchheal.inference.complete import BUNDLED_GAPFILL_DIR, complete, model_view
from sketchheal.training.bridges import BridgeExamples, fit_bridge_scorer

F = len(FEATURES)


def _spec(weights: dict[str, float], threshold: float = 0.5, bias: float = 0.0) -> dict:
    """A one-unit scorer: logit = bias + sum of weight * (raw feature), no standardisation."""
    w1 = np.zeros((F, 1))
    for name, w in weights.items():
        w1[FEATURES.index(name), 0] = w
    return {"features": list(FEATURES), "mean": [0.0] * F, "scale": [1.0] * F, "w1": w1.tolist(), "b1": [0.0],
            "w2": [1.0], "b2": bias, "threshold": threshold}


def _cut_line():
    """A horizontal line cut in the middle (two strokes in drawing order) and a far-away short stroke."""
    return [np.array([[0.0, 50.0], [40.0, 50.0]]), np.array([[60.0, 50.0], [100.0, 50.0]]),
            np.array([[0.0, 0.0], [0.0, 10.0]])]


def _probe(lines):
    view = model_view(lines, 128, "reference")
    prob = np.zeros((128, 128), np.float32)
    d_input = np.full((128, 128), 50.0, np.float32)
    return view, prob, d_input


def test_loose_ends_have_outward_tangents_and_know_their_stroke():
    idx, tan, stroke, first = loose_ends(np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [5.0, 5.0]]),
                                         np.array([0, 3]))
    assert idx.tolist() == [0, 2, 3] and stroke.tolist() == [0, 0, 1] and first.tolist() == [True, False, True]
    np.testing.assert_allclose(tan[:2], [[-1.0, 0.0], [1.0, 0.0]])
    assert not tan[2].any()  # a one-point stroke has no direction


def test_the_two_ends_of_a_cut_face_each_other_and_follow_in_drawing_order():
    view, prob, d_input = _probe(_cut_line())
    c = candidates(view.px, view.starts, prob, d_input, max_gap=48.0, cover_radius=2.5)
    assert c.features.shape == (len(c.a), 3, F)
    pts = view.px[c.ends]
    k = [i for i in range(len(c.a)) if {tuple(np.round(pts[c.a[i]])), tuple(np.round(pts[c.b[i]]))}
         == {tuple(np.round(view.px[1])), tuple(np.round(view.px[2]))}]
    assert len(k) == 1
    f = dict(zip(FEATURES, c.features[k[0], 0]))
    assert f["cos_a"] > 0.99 and f["cos_b"] > 0.99 and f["tangents"] > 0.99 and f["consecutive"] == 1
    unordered = candidates(view.px, view.starts, prob, d_input, max_gap=48.0, cover_radius=2.5, ordered=False)
    assert unordered.features[..., FEATURES.index("consecutive")].max() == 0


def test_choose_takes_the_most_probable_first_and_each_end_once():
    c = SimpleNamespace(ends=np.arange(4), a=np.array([0, 0, 1]), b=np.array([1, 2, 3]))
    score = np.array([[0.9, -1, -1], [0.8, 0.95, -1], [0.7, -1, -1]])
    assert choose(c, score, 0.5) == [(1, 1), (2, 0)]
    assert choose(c, score, 0.96) == []


def test_scorer_is_checked_numbers_only(tmp_path):
    spec = _spec({"cos_a": 4.0})
    s = BridgeScorer(spec)
    p = s(np.stack([np.eye(F)[FEATURES.index("cos_a")], np.zeros(F)]))
    assert p[0] > 0.98 and abs(p[1] - 0.5) < 1e-9
    with pytest.raises(ValueError, match="features differ"):
        BridgeScorer({**spec, "features": list(FEATURES[:-1])})
    with pytest.raises(ValueError, match="wrong shapes"):
        BridgeScorer({**spec, "w2": [1.0, 2.0]})
    with pytest.raises(ValueError, match="not finite"):
        BridgeScorer({**spec, "b1": [float("nan")]})
    assert load_scorer(tmp_path) is None and load_scorer(tmp_path / "ckpt.pt") is None and load_scorer(None) is None
    (tmp_path / SCORER_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not a readable bridge scorer"):
        load_scorer(tmp_path)
    (tmp_path / SCORER_FILE).write_text(json.dumps(spec))
    assert isinstance(load_scorer(tmp_path), BridgeScorer)  # a folder
    assert isinstance(load_scorer(tmp_path / "ckpt_last.pt"), BridgeScorer)  # beside a checkpoint


def test_the_scorer_decides_which_ends_are_joined(monkeypatch):
    lines = _cut_line()
    view = model_view(lines, 128, "reference")
    healer = SimpleNamespace(model=None, image_size=128, render_mode="reference", source="")
    recon = np.where(view.image > 0, 1.0, -1.0).astype(np.float32)  # the input only: the rule bridges nothing
    monkeypatch.setattr(C, "reconstruct", lambda model, images, batch_size=64, views=(): (
        np.repeat(recon[None], len(images), 0), np.zeros((len(images), 4))))
    params = C.CompletionParams(residual=False, passes=1)
    (rule,) = complete(healer, [lines], params=params, scorer=None)
    yes = BridgeScorer(_spec({"consecutive": 10.0, "cos_a": 5.0, "cos_b": 5.0}, bias=-10.0))
    (learned,) = complete(healer, [lines], params=params, scorer=yes)
    assert rule.added_lines == []
    (bridge,) = learned.added_lines
    assert bridge[0].tolist() == [40.0, 50.0] and bridge[-1].tolist() == [60.0, 50.0]  # the input's own points


def test_fitting_learns_a_separable_rule_and_its_threshold():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, F)).astype(np.float32)
    y = (x[:, FEATURES.index("p_mean")] + 0.5 * x[:, FEATURES.index("cos_a")] > 0.3).astype(np.float32)
    d = np.arange(4000)
    spec = fit_bridge_scorer(BridgeExamples(x[:3000], y[:3000], d[:3000]), BridgeExamples(x[3000:], y[3000:], d[3000:]),
                             hidden=8, steps=400)
    assert spec["fit"]["valid_f1"] > 0.9
    p = BridgeScorer(json.loads(json.dumps(spec)))(x[3000:])
    assert ((p >= spec["threshold"]) == (y[3000:] > 0)).mean() > 0.9


def test_the_bundled_gap_filler_ships_its_scorer():
    if not (BUNDLED_GAPFILL_DIR / "config.json").is_file():
        pytest.skip("no bundled gap-filler")
    s = load_scorer(BUNDLED_GAPFILL_DIR)
    assert s is not None and 0.0 < s.threshold < 1.0
    assert s.spec["fit"]["valid_precision"] > 0.6
