"""Rendering and corruption: pixel parity with a literal transcription of the published protocol, masks, tables."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from conftest import make_sketch  # noqa: E402
from sketchheal.sketch import render as R  # noqa: E402
from sketchheal.sketch.masks import MaskTable  # noqa: E402
from sketchheal.sketch.render import corrupt, patch_candidates, render, render_batch  # noqa: E402


# --------------------------------------------------------------------------------------------------------------
# A literal, row-by-row transcription of docs/reference.md "Rasterisation and corruption": one cv2.line per drawn
# segment, the candidate counter, erasure on a canvas padded by 384 px with Python slicing (squares that do not
# slice to 128 x 128 are skipped), then the default cv2.resize and ToTensor + Normalize(0.5, 0.5).
# --------------------------------------------------------------------------------------------------------------


def _literal_box(rows: np.ndarray) -> tuple[int, int, int, int]:
    """xmin, ymin, w, h of the cumulative sums of rows[1:] (positions p_2..p_n measured from p_1)."""
    c = np.cumsum(rows[1:], axis=0)
    xmin, ymin = c[:, 0].min(), c[:, 1].min()
    return xmin, ymin, int(c[:, 0].max() - xmin), int(c[:, 1].max() - ymin)


def literal_corrupt(s3: np.ndarray, uniforms: np.ndarray, p: float, size: int = 128, by_row: bool = False):
    """by_row: index the uniforms by the candidate's row (the published evaluation's seed.npy), not by k."""
    s = np.asarray(s3, dtype=np.float32)
    _, _, w, h = _literal_box(s)
    longer = h if h >= w else w
    q = (s / np.array([[longer, longer, 1]], dtype=np.float64) * np.array([[640, 640, 1]], dtype=np.float64))
    q = q.astype(np.int16)
    xmin, ymin, w, h = _literal_box(q.astype(np.int64))
    side = max(w, h) + 2 * (16 + 1)
    canvas = np.zeros((side, side), dtype=np.uint8)
    pen = np.array([-xmin - q[0, 0] + 17, -ymin - q[0, 1] + 17], dtype=np.int64)
    candidates = []
    after_lift = False
    count = 0
    rows = []
    for r, row in enumerate(q):
        d = row[:2].astype(np.int64)
        if after_lift:  # the row after a pen-up is a move: not drawn
            pen = pen + d
            after_lift = False
            continue
        if count % 4 == 0 and len(candidates) < 20:
            candidates.append(pen.copy())
            rows.append(r)
        cv2.line(canvas, (int(pen[0]), int(pen[1])), (int(pen[0] + d[0]), int(pen[1] + d[1])), 255, thickness=16)
        count += 1
        if int(row[2]) != 0:
            after_lift = True
            count = 0
        pen = pen + d
    pad = 384
    padded = np.zeros((side + 2 * pad, side + 2 * pad), dtype=np.uint8)
    padded[pad:pad + side, pad:pad + side] = canvas
    erased = []
    for k, (x, y) in enumerate(candidates):
        u = uniforms[rows[k]] if by_row else uniforms[k]
        erased.append(u < p)
        if u < p:
            sq = padded[y + pad - 64:y + pad + 64, x + pad - 64:x + pad + 64]
            if sq.shape == (128, 128):
                sq[:] = 0

    def to_unit(c):
        return ((cv2.resize(c, (size, size)).astype(np.float32) / np.float32(255)) - np.float32(0.5)) / np.float32(0.5)

    return to_unit(padded[pad:pad + side, pad:pad + side]), to_unit(canvas), np.array(erased, bool), candidates


# ------------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sheep(sheep_npz) -> list[np.ndarray]:
    d = np.load(sheep_npz, encoding="latin1", allow_pickle=True)
    test = d["test"]
    idx = np.random.default_rng(1).choice(len(test), size=60, replace=False)
    return [test[i].astype(np.float32) for i in idx]


def synthetic_sketches() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [make_sketch(rng, n_strokes=int(rng.integers(1, 6)), points=int(rng.integers(3, 30))) for _ in range(30)]
    # Non-integer offsets, a big first row far outside the box, a wide sketch, a tall one.
    out.append(make_sketch(rng, 3, 9) * np.array([0.37, 1.91, 1], np.float32))
    big_first = make_sketch(rng, 2, 6)
    big_first[0, :2] = (900, -700)
    out.append(big_first)
    out.append(np.array([[0, 0, 0], [300, 5, 0], [2, -3, 1], [-250, 20, 0], [10, 1, 1]], np.float32))
    out.append(np.array([[1, 1, 0], [3, 200, 0], [-2, 10, 1], [30, -100, 0], [1, 60, 1]], np.float32))
    # The published code divides by zero on a box of zero extent; parity is defined for real boxes only.
    return [s for s in out if max(_literal_box(s)[2:]) > 0]


# ------------------------------------------------------------------------------------------------- pixel parity


def _assert_parity(s, size=128, p=0.4, seed=0):
    u = np.random.default_rng(seed).random(20)
    want_c, want_clean, want_erased, want_cands = literal_corrupt(s, u, p, size)
    got = corrupt(s, u, p, size=size)
    np.testing.assert_array_equal(got.clean, want_clean)
    np.testing.assert_array_equal(got.corrupted, want_c)
    np.testing.assert_array_equal(got.erased, want_erased)
    np.testing.assert_array_equal(patch_candidates(s), np.array(want_cands).reshape(-1, 2))
    np.testing.assert_array_equal(render(s, size), want_clean)


def test_reference_matches_literal_on_sheep(sheep):
    for i, s in enumerate(sheep):
        _assert_parity(s, p=0.3, seed=i)


def test_reference_matches_literal_on_synthetic():
    for i, s in enumerate(synthetic_sketches()):
        _assert_parity(s, p=0.5, seed=i)
        _assert_parity(s, size=64, p=0.2, seed=100 + i)


def test_reference_far_pen_positions_follow_published_slicing():
    # The first offset is huge, so p_0 (the first candidate) lies far outside the canvas: the published slicing
    # skips some of these squares and wraps negative indices for others; parity must hold for all of them.
    rng = np.random.default_rng(3)
    for k in range(40):
        s = make_sketch(rng, 2, 5)
        s[0, :2] = rng.integers(-200, 201, size=2)
        _assert_parity(s, p=1.0, seed=k)


def test_output_range_and_dtype(sheep):
    img = render(sheep[0])
    assert img.shape == (128, 128) and img.dtype == np.float32
    assert img.min() == -1.0 and img.max() == 1.0
    for mode in R.MODES:
        c = corrupt(sheep[1], np.zeros(20), 0.0, size=32, mode=mode)
        assert c.clean.shape == c.corrupted.shape == (32, 32)
        assert c.clean.dtype == np.float32 and -1 <= c.clean.min() and c.clean.max() <= 1


def test_box_corner_at_margin_not_centred():
    # A wide sketch: its box starts at the 17-px margin on the left and top; the lower part stays empty.
    s = np.array([[0, 0, 0], [0, 0, 0], [640, 0, 0], [0, 64, 1]], np.float32)
    lay = R.layout(s)
    assert lay.side == 640 + 34
    pts = lay.points[2:]  # the box covers p_2 .. p_n
    assert pts[:, 0].min() == 17 and pts[:, 1].min() == 17
    img = render(s, 128)
    assert (img[40:] == -1).all()  # rows below the drawing (64 px + margins of 674) are background
    assert (img[:10] > -1).any()


def test_first_row_is_drawn_and_ignored_by_the_box():
    s = np.array([[-50, 0, 0], [0, 0, 0], [100, 0, 0], [0, 100, 1]], np.float32)
    lay = R.layout(s)
    # The box over p_2 .. p_4 has w = h = 100 -> scale 6.4, canvas 640 + 34; p_0 lies 320 px right of p_1.
    assert lay.side == 674
    assert lay.points[0, 0] - lay.points[1, 0] == 320 and lay.points[0, 1] == lay.points[1, 1] == 17
    assert lay.drawn.all()


def test_candidate_uniforms_reproduce_per_point_tables(sheep):
    rng = np.random.default_rng(4)
    for s in sheep[:15]:
        point_row = rng.random(len(s) + 7)
        want_c, _, want_erased, _ = literal_corrupt(s, point_row, 0.3, by_row=True)
        got = corrupt(s, R.candidate_uniforms(s, point_row), 0.3)
        np.testing.assert_array_equal(got.corrupted, want_c)
        np.testing.assert_array_equal(got.erased, want_erased)
    with pytest.raises(ValueError, match="per point"):
        R.candidate_uniforms(sheep[0], np.zeros(3))


def test_consecutive_pen_lifts_follow_published_state_machine():
    # rows: stroke A (2 rows), a one-point stroke (lifted, right after a lift: a move), then stroke C.
    lifted = np.array([0, 1, 1, 0, 1], bool)
    np.testing.assert_array_equal(R._drawn_rows(lifted), [True, True, False, True, True])
    lifted = np.array([1, 1, 1, 1], bool)
    np.testing.assert_array_equal(R._drawn_rows(lifted), [True, False, True, False])
    s = np.array([[0, 0, 0], [10, 0, 1], [20, 20, 1], [5, 5, 0], [0, 30, 1]], np.float32)
    _assert_parity(s, p=1.0)


# --------------------------------------------------------------------------------------------------- candidates


def _stroke(n_points: int, step=(3, 0)) -> np.ndarray:
    rows = np.zeros((n_points, 3), np.float32)
    rows[:, :2] = step
    rows[-1, 2] = 1
    return rows


def test_candidates_every_fourth_point_restart_per_stroke():
    # First stroke: 10 drawn rows (row 0 included) -> candidates at rows 0, 4, 8.
    # Second stroke: a move row then 6 drawn rows -> candidates at its first drawn row and 4 rows later.
    a = _stroke(10)
    b = _stroke(7, step=(0, 2))
    b[0, :2] = (-5, 30)  # the move
    s = np.concatenate([a, b])
    lay = R.layout(s)
    rows = R._candidate_rows(lay, 20)
    np.testing.assert_array_equal(rows, [0, 4, 8, 11, 15])
    np.testing.assert_array_equal(patch_candidates(s), lay.points[rows])


def test_candidates_at_most_max_patches():
    s = np.concatenate([_stroke(9) for _ in range(12)])  # 3 candidates per stroke: 36 in all
    assert patch_candidates(s, max_patches=100).shape == (3 + 11 * 2, 2)  # later strokes start with a move
    assert patch_candidates(s).shape == (20, 2)
    assert patch_candidates(s, max_patches=5).shape == (5, 2)
    np.testing.assert_array_equal(patch_candidates(s, 5), patch_candidates(s)[:5])


def test_candidates_in_image_coordinates():
    s = make_sketch(np.random.default_rng(0))
    side = R.layout(s).side
    px = patch_candidates(s)
    np.testing.assert_allclose(patch_candidates(s, size=128), (px + 0.5) * 128 / side - 0.5)


# -------------------------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("mode", R.MODES)
def test_p0_keeps_everything_p1_erases_all(sheep, mode):
    s = sheep[2]
    u = np.random.default_rng(0).random(20)
    c0 = corrupt(s, u, 0.0, mode=mode)
    np.testing.assert_array_equal(c0.corrupted, c0.clean)
    assert not c0.erased.any()
    c1 = corrupt(s, u, 1.0, mode=mode)
    assert c1.erased.all() and c1.erased.shape == (len(patch_candidates(s)),)
    assert (c1.corrupted <= c1.clean).all() and c1.corrupted.sum() < c1.clean.sum()


@pytest.mark.parametrize("mode", R.MODES)
def test_masks_nested_across_p(sheep, mode):
    table = MaskTable(len(sheep), seed=5)
    for i, s in enumerate(sheep[:20]):
        u = table.uniforms(i)
        c10, c30, c50 = (corrupt(s, u, p, mode=mode) for p in (0.1, 0.3, 0.5))
        assert (c10.erased <= c30.erased).all() and (c30.erased <= c50.erased).all()
        np.testing.assert_array_equal(c10.erased, u[: len(c10.erased)] < 0.1)
        # Erasing more can only remove ink (erasure happens before the monotone bilinear resize).
        assert (c50.corrupted <= c30.corrupted).all() and (c30.corrupted <= c10.corrupted).all()
        assert (c10.corrupted <= c10.clean).all()


def test_erased_pixels_stay_erased_reference():
    # Draw everything, then erase: the full 128 x 128 square around an erased candidate is background on the
    # 640-scale canvas, even where a later stroke crosses it.
    s = np.concatenate([_stroke(9, (20, 0)), _stroke(9, (-20, 1))])
    lay = R.layout(s)
    centres = patch_candidates(s)
    canvas = R._draw_reference(lay)
    R._erase_reference(canvas, centres[:1])
    x, y = centres[0]
    assert (canvas[max(y - 64, 0):y + 64, max(x - 64, 0):x + 64] == 0).all()


def test_fast_mode_close_to_reference(sheep):
    errs = [np.abs(render(s, 128, "fast") - render(s, 128)).mean() for s in sheep[:20]]
    assert np.mean(errs) < 0.05
    # Same placement: the ink's centre of mass agrees within a pixel or two.
    for s in sheep[:5]:
        a, b = render(s, 128, "fast") > 0, render(s, 128) > 0
        ca = np.argwhere(a).mean(0)
        cb = np.argwhere(b).mean(0)
        assert np.abs(ca - cb).max() < 2.0


def test_fast_mode_small_sizes():
    s = make_sketch(np.random.default_rng(1))
    for size in (16, 32, 256):
        img = render(s, size, "fast")
        assert img.shape == (size, size) and (img > 0).any()
    assert R.fast_line_width(674, 128) == 2 and R.fast_line_width(674, 32) == 1


def test_render_batch(sheep):
    b = render_batch(sheep[:3], size=64, mode="fast")
    assert b.shape == (3, 64, 64) and b.dtype == np.float32
    np.testing.assert_array_equal(b[1], render(sheep[1], 64, "fast"))
    assert render_batch([], 32).shape == (0, 32, 32)


# -------------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("bad", [
    np.zeros((0, 3), np.float32),
    np.array([[1, 2, 0], [np.nan, 1, 1]], np.float32),
    np.array([[1, 2, 0], [np.inf, 1, 1]], np.float32),
    np.zeros((4, 2), np.float32),
    np.zeros(3, np.float32),
    "not a sketch",
])
def test_bad_sketch_raises(bad):
    with pytest.raises(ValueError):
        render(bad)
    with pytest.raises(ValueError):
        corrupt(bad, np.zeros(20), 0.1)


def test_bad_arguments_raise():
    s = make_sketch(np.random.default_rng(0))
    with pytest.raises(ValueError, match="mode"):
        render(s, mode="pretty")
    with pytest.raises(ValueError, match="size"):
        render(s, size=0)
    with pytest.raises(ValueError, match="uniforms"):
        corrupt(s, np.zeros(5), 0.1)
    with pytest.raises(ValueError, match="p must be"):
        corrupt(s, np.zeros(20), 1.5)


def test_degenerate_sketches_render():
    for s in (np.array([[3, 4, 1]], np.float32), np.array([[0, 0, 0], [0, 0, 1]], np.float32),
              np.array([[5, 5, 0], [0, 0, 0], [0, 0, 1]], np.float32)):
        for mode in R.MODES:
            img = render(s, 32, mode)
            assert img.shape == (32, 32) and np.isfinite(img).all()


def test_int16_input_is_accepted(sheep_npz):
    d = np.load(sheep_npz, encoding="latin1", allow_pickle=True)
    raw = d["valid"][0]
    assert raw.dtype == np.int16
    np.testing.assert_array_equal(render(raw), render(raw.astype(np.float32)))


# --------------------------------------------------------------------------------------------------- mask table


def test_mask_table_seeded_and_shaped():
    a, b, c = MaskTable(50, seed=3), MaskTable(50, seed=3), MaskTable(50, seed=4)
    assert a.table.shape == (50, 20) and len(a) == 50 and a.max_patches == 20
    np.testing.assert_array_equal(a.table, b.table)
    assert not np.array_equal(a.table, c.table)
    assert a.uniforms(7).shape == (20,)
    assert ((a.table >= 0) & (a.table < 1)).all()
    with pytest.raises(IndexError):
        a.uniforms(50)
    with pytest.raises(ValueError):
        a.table[0, 0] = 0.5  # read-only view


def test_mask_table_save_load_round_trip(tmp_path):
    t = MaskTable(30, seed=11, max_patches=8)
    path = t.save(tmp_path / "masks" / "seed.npy")
    back = MaskTable.load(path, n_sketches=30, max_patches=8)
    np.testing.assert_array_equal(back.table, t.table)
    assert [p.name for p in path.parent.iterdir()] == ["seed.npy"]  # no temporary left behind


def test_mask_table_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        MaskTable.load(tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"this is not numpy")
    with pytest.raises(ValueError, match="bad.npy"):
        MaskTable.load(bad)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="2-D"):
        MaskTable.load(wrong)
    np.save(wrong, np.full((3, 4), 2.0))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        MaskTable.load(wrong)
    np.save(wrong, np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match="floating"):
        MaskTable.load(wrong)
    ok = MaskTable(3, 0, max_patches=4).save(tmp_path / "ok.npy")
    with pytest.raises(ValueError, match="max_patches"):
        MaskTable.load(ok, max_patches=20)
    with pytest.raises(ValueError, match="rows"):
        MaskTable.load(ok, n_sketches=10)
    with pytest.raises(ValueError, match=".npy"):
        MaskTable(3, 0).save(tmp_path / "table.txt")


def test_point_erasure_leaves_out_the_segments_with_an_end_in_a_square():
    # a horizontal line of 9 points 80 canvas px apart; the second candidate (row 4) is erased
    s3 = np.array([[0, 0, 0]] + [[80, 0, 0]] * 7 + [[80, 0, 1]], np.float32)
    u = np.array([0.9, 0.0] + [0.9] * 18)
    lay = R.layout(s3)
    pix = corrupt(s3, u, 0.5, size=640 + 34, mode="fast")
    pts = corrupt(s3, u, 0.5, size=640 + 34, mode="fast", erasure="points")
    np.testing.assert_array_equal(pts.clean, pix.clean)
    np.testing.assert_array_equal(pts.erased, pix.erased)
    centre = lay.points[4]
    gone = pts.corrupted[centre[1], :] < 0  # along the line
    # the points inside the square: p_4 only; both of its segments (p_3 -> p_4 -> p_5) are left out whole
    assert gone[lay.points[3][0] + 20: lay.points[5][0] - 20].all()
    assert not gone[lay.points[2][0]: lay.points[3][0] - 10].any()
    assert (pts.corrupted <= pix.corrupted).all()  # it erases at least what the pixels lose here
    same = corrupt(s3, u, 0.0, size=64, mode="reference", erasure="points")
    np.testing.assert_array_equal(same.corrupted, same.clean)
    with pytest.raises(ValueError, match="erasure"):
        corrupt(s3, u, 0.5, erasure="eraser")
