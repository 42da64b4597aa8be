"""The ink measures of healing (sketchheal.evaluation.healing) on synthetic cases."""

from __future__ import annotations

import numpy as np
import pytest

from sketchheal.evaluation.healing import counts_from_masks, frame_of, ink, ink_counts, summarise


def _square_drawing():
    box = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]], np.float64)
    diag = np.array([[10, 10], [90, 90]], np.float64)
    return [box, diag]


def _without_top(lines):
    box, diag = lines
    return [box[1:], diag]  # the top edge (0,0)->(100,0) erased


def test_identity_healing_recovers_nothing_and_keeps_everything():
    orig = _square_drawing()
    inp = _without_top(orig)
    c = ink_counts(orig, inp, inp)
    assert c["erased"] > 50 and c["erased_hit"] == 0
    assert c["added"] == 0
    assert c["input_kept"] == c["input"] > 0
    s = summarise([c])
    assert s["recall"] == 0.0 and s["precision"] is None and s["kept"] == 1.0


def test_perfect_healing_scores_one():
    orig = _square_drawing()
    inp = _without_top(orig)
    s = summarise([ink_counts(orig, inp, orig)])
    assert s["recall"] == 1.0 and s["precision"] == 1.0 and s["kept"] == 1.0 and s["f1"] == 1.0


def test_garbage_adds_have_low_precision():
    orig = _square_drawing()
    inp = _without_top(orig)
    rng = np.random.default_rng(0)
    garbage = [rng.uniform(20, 80, size=(2, 2)) for _ in range(30)]
    s = summarise([ink_counts(orig, inp, inp + garbage)])
    assert s["precision"] < 0.3
    assert s["kept"] == 1.0


def test_frame_is_the_originals_and_a_shifted_healing_is_penalised():
    orig = _square_drawing()
    inp = _without_top(orig)
    top = np.array([[0, 0], [100, 0]], np.float64)
    good = summarise([ink_counts(orig, inp, inp + [top])])
    shifted = summarise([ink_counts(orig, inp, inp + [top + [0, 15]])])
    assert good["recall"] > 0.9 and good["precision"] > 0.9
    assert shifted["recall"] < 0.2 and shifted["precision"] < 0.2


def test_frame_places_the_box_like_the_published_rendering():
    f = frame_of([np.array([[10.0, 20.0], [110.0, 70.0]])], 128)
    lo, hi = f.apply(np.array([[10.0, 20.0], [110.0, 70.0]]))
    assert hi[0] - lo[0] == pytest.approx(128 * 640 / 674)
    assert lo[0] == pytest.approx(128 * 17 / 674) and lo[1] == pytest.approx(128 * 17 / 674)


def test_ink_draws_dots_and_widths():
    f = frame_of([np.array([[0.0, 0.0], [10.0, 10.0]])], 128)
    dot = ink([np.array([[5.0, 5.0]])], f)
    assert dot.sum() == 1
    thin, thick = ink([np.array([[0.0, 0.0], [10.0, 0.0]])], f), ink([np.array([[0.0, 0.0], [10.0, 0.0]])], f, width=2)
    assert thick.sum() > 2 * thin.sum()


def test_pooled_and_mean_summaries():
    a = {"erased": 10, "erased_hit": 10, "added": 0, "added_hit": 0, "input": 5, "input_kept": 5}
    b = {"erased": 30, "erased_hit": 0, "added": 10, "added_hit": 5, "input": 5, "input_kept": 4}
    s = summarise([a, b])
    assert s["recall"] == pytest.approx(0.25) and s["recall_mean"] == pytest.approx(0.5)
    assert s["precision"] == pytest.approx(0.5) and s["precision_mean"] == pytest.approx(0.5)
    assert s["kept"] == pytest.approx(0.9) and s["n"] == 2


def test_counts_from_masks_tolerance():
    o = np.zeros((20, 20), bool)
    o[10, 2:18] = True
    i = np.zeros_like(o)
    h = np.zeros_like(o)
    h[12, 2:18] = True  # 2 px away: within tolerance
    c = counts_from_masks(o, i, h)
    assert c["erased_hit"] == c["erased"] == 16 and c["added_hit"] == c["added"] == 16
    h2 = np.zeros_like(o)
    h2[13, 2:18] = True  # 3 px away: not
    c2 = counts_from_masks(o, i, h2)
    assert c2["erased_hit"] == 0 and c2["added_hit"] == 0
