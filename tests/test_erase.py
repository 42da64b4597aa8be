"""Vector erasure (sketchheal.sketch.erase): squares cut from strokes, the published candidate rule."""

from __future__ import annotations

import numpy as np
import pytest

from sketchheal.sketch import render as R
from sketchheal.sketch.erase import (candidate_points, erase, erase_points, erase_squares, erase_stroke3,
                                    square_side)
from sketchheal.sketch.strokes import absolute_points, stroke3_to_polylines
from tests.conftest import make_sketch


def _inside(points, centres, side):
    return (np.abs(points[:, None, :] - centres[None]) < side / 2).all(-1).any(-1)


def test_a_square_splits_a_line_at_its_border():
    line = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
    out = erase_squares([line], np.array([[15.0, 0.0]]), 4.0)
    assert len(out) == 2
    np.testing.assert_allclose(out[0], [[0, 0], [10, 0], [13, 0]])
    np.testing.assert_allclose(out[1], [[17, 0], [20, 0], [30, 0]])
    assert out[0][1] is not line[1] and np.array_equal(out[0][:2], line[:2])  # kept points unchanged


def test_a_segment_crossing_a_square_without_a_point_inside_is_cut():
    line = np.array([[0.0, 0.0], [30.0, 0.0]])
    out = erase_squares([line], np.array([[15.0, 1.0]]), 6.0)
    np.testing.assert_allclose(out[0], [[0, 0], [12, 0]])
    np.testing.assert_allclose(out[1], [[18, 0], [30, 0]])


def test_nothing_kept_inside_any_square(rng):
    for _ in range(20):
        s3 = make_sketch(rng, n_strokes=4, points=12)
        e = erase_stroke3(s3, 0.5, seed=int(rng.integers(1000)))
        for line in e.lines:
            # every kept point and every segment midpoint lies outside (or on the border of) every square
            mids = (line[1:] + line[:-1]) / 2 if len(line) > 1 else line
            for pts in (line, mids):
                if len(e.centres):
                    assert not _inside(pts, e.centres, e.side - 1e-9).any()


def test_erasing_nothing_returns_the_strokes(rng):
    s3 = make_sketch(rng)
    lines = stroke3_to_polylines(s3)
    e = erase(lines, 0.0)
    assert len(e.lines) == len(lines) and all(np.array_equal(a, b) for a, b in zip(e.lines, lines))
    assert not e.erased.any()


def test_candidates_follow_the_published_raster_rule(rng):
    for _ in range(10):
        s3 = make_sketch(rng, n_strokes=3, points=15)
        lay = R.layout(s3)
        rows = R._candidate_rows(lay, R.MAX_PATCHES)
        np.testing.assert_allclose(candidate_points(stroke3_to_polylines(s3)), absolute_points(s3)[rows])


def test_masks_are_nested_and_seeded(rng):
    s3 = make_sketch(rng, n_strokes=5, points=16)
    u = np.random.default_rng(3).random(20)
    e1, e3, e5 = (erase_stroke3(s3, p, uniforms=u) for p in (0.1, 0.3, 0.5))
    assert (e1.erased <= e3.erased).all() and (e3.erased <= e5.erased).all()
    a, b = erase_stroke3(s3, 0.3, seed=7), erase_stroke3(s3, 0.3, seed=7)
    assert np.array_equal(a.erased, b.erased)


def test_square_side_is_a_fifth_of_the_longer_side():
    assert square_side([np.array([[0.0, 0.0], [50.0, 200.0]])]) == pytest.approx(40.0)


def test_quickdraw_polylines_and_bad_p():
    lines = [np.array([[0, 0], [255, 0]], np.float64), np.array([[100, 100]], np.float64)]
    e = erase(lines, 1.0)
    assert e.erased.all() and all(len(line) for line in e.lines)
    with pytest.raises(ValueError):
        erase(lines, 1.5)


def test_a_stroke_entering_a_square_on_a_vertex_is_cut():
    # vertices every unit: one lands exactly on each side of the square, and the segments between lie wholly inside
    line = np.stack([np.full(201, 500.0), np.linspace(400, 600, 201)], 1)
    out = erase_squares([line], np.array([[500.0, 500.0]]), 40.0)
    assert len(out) == 2
    assert out[0][-1][1] <= 480 and out[1][0][1] >= 520


def test_erasing_points_removes_the_points_inside_and_splits_there():
    line = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0], [40.0, 0.0]])
    out = erase_points([line, np.array([[20.0, 1.0]])], np.array([[20.0, 0.0]]), 4.0)
    # no new points: the segments 10-20 and 20-30 go whole; the one-point stroke inside goes too
    assert [o.tolist() for o in out] == [[[0, 0], [10, 0]], [[30, 0], [40, 0]]]
    crossing = erase_points([np.array([[0.0, 0.0], [30.0, 0.0]])], np.array([[15.0, 0.0]]), 6.0)
    assert len(crossing) == 1 and np.array_equal(crossing[0], [[0, 0], [30, 0]])  # no point inside: it stays
    single = erase_points([line], np.array([[0.0, 0.0], [20.0, 0.0]]), 4.0)
    assert [len(o) for o in single] == [1, 2]  # a kept point between two removed ones is a one-point stroke


def test_erase_without_cutting_keeps_exactly_the_points_outside(rng):
    for _ in range(10):
        lines = stroke3_to_polylines(make_sketch(rng, 3, 12))
        seed = int(rng.integers(1000))
        e = erase(lines, 0.5, seed=seed, cut=False)
        kept = np.concatenate(e.lines) if e.lines else np.zeros((0, 2))
        pts = np.concatenate(lines)
        outside = pts[~_inside(pts, e.centres, e.side)] if len(e.centres) else pts
        np.testing.assert_array_equal(kept, outside)  # the same points, in order, bit for bit
        np.testing.assert_array_equal(e.centres, erase(lines, 0.5, seed=seed).centres)  # the same squares
