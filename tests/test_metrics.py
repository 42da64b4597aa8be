"""Retrieval / accuracy math on hand-made codes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchheal.evaluation.metrics import accuracy, per_group_mean, rank_summary, retrieval_topk, target_ranks, topk_from_ranks


def line_gallery(n: int) -> np.ndarray:
    """Gallery codes on a line: code j = (j, 0). Distance from (x, 0) to j is |x - j|."""
    g = np.zeros((n, 2), np.float32)
    g[:, 0] = np.arange(n)
    return g


def test_exact_match_is_rank_zero():
    g = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    res = retrieval_topk(g, g, np.arange(30), ks=(1, 10, 50))
    assert res["top1"] == res["top10"] == res["top50"] == 1.0
    assert res["top10_published"] == 1.0 and res["top50_published"] == 1.0
    assert res["mean_rank"] == 1.0 and res["mrr"] == 1.0 and res["n_queries"] == 30 and res["n_gallery"] == 30


def test_known_ranks_on_a_line():
    g = line_gallery(20)
    # Query at x = 0 with target j: gallery codes 0..j-1 are strictly closer, so rank = j.
    targets = np.arange(20)
    q = np.zeros((20, 2), np.float32)
    q[:, 1] = 0.0
    # Put every query on the far side so no ties: x = -0.5 -> distance to j is j + 0.5, strictly increasing.
    q[:, 0] = -0.5
    ranks, ties = target_ranks(q, g, targets)
    np.testing.assert_array_equal(ranks, targets)
    np.testing.assert_array_equal(ties, 0)
    res = retrieval_topk(q, g, targets, ks=(1, 10))
    assert res["top1"] == pytest.approx(1 / 20)
    assert res["top10"] == pytest.approx(10 / 20)
    # The published variant looks at the first 9 neighbours only.
    assert res["top10_published"] == pytest.approx(9 / 20)
    assert "top1_published" not in res


def test_off_by_one_difference_exactly_at_rank_k_minus_1():
    g = line_gallery(60)
    q = np.full((2, 2), -0.5, np.float32)
    q[:, 1] = 0.0
    targets = np.array([9, 49])  # rank 9 (10th neighbour) and rank 49 (50th neighbour)
    res = retrieval_topk(q, g, targets, ks=(1, 10, 50))
    assert res["top10"] == 0.5 and res["top10_published"] == 0.0
    assert res["top50"] == 1.0 and res["top50_published"] == 0.5
    assert res["top1"] == 0.0


def test_ties_go_to_the_lower_gallery_index():
    # Gallery: three identical codes (indices 0, 1, 2) and one far away.
    g = np.array([[1, 1], [1, 1], [1, 1], [9, 9]], np.float32)
    q = np.array([[1, 1], [1, 1], [1, 1], [1.1, 1]], np.float32)
    ranks, ties = target_ranks(q, g, [0, 1, 2, 2])
    np.testing.assert_array_equal(ranks, [0, 1, 2, 2])
    np.testing.assert_array_equal(ties, [2, 2, 2, 2])
    res = retrieval_topk(q, g, [0, 1, 2, 2], ks=(1,))
    assert res["top1"] == 0.25 and res["n_tied"] == 4


def test_degenerate_encoder_gives_chance_not_zero_or_one():
    g = np.ones((50, 4), np.float32)
    res = retrieval_topk(g, g, np.arange(50), ks=(1, 10))
    assert res["top1"] == pytest.approx(1 / 50)
    assert res["top10"] == pytest.approx(10 / 50)


def test_ties_survive_rounding_of_large_codes():
    rng = np.random.default_rng(1)
    base = rng.normal(scale=100.0, size=(1, 64)).astype(np.float32)
    g = np.concatenate([base] * 5 + [rng.normal(scale=100.0, size=(7, 64)).astype(np.float32)])
    q = base + rng.normal(scale=1.0, size=(3, 64)).astype(np.float32)
    ranks, ties = target_ranks(q, g, [0, 3, 4])
    np.testing.assert_array_equal(ranks, [0, 3, 4])
    np.testing.assert_array_equal(ties, 4)


def test_chunking_matches_brute_force():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(97, 5)).astype(np.float32)
    q = g[rng.permutation(97)[:41]] + rng.normal(scale=0.8, size=(41, 5)).astype(np.float32)
    targets = rng.integers(0, 97, size=41)
    d = ((q[:, None, :].astype(np.float64) - g[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")
    expected = np.array([int(np.nonzero(order[i] == targets[i])[0][0]) for i in range(41)])
    for chunk_bytes in (1, 8 * 97 * 3, 10**9):
        ranks, _ = target_ranks(q, g, targets, chunk_bytes=chunk_bytes)
        np.testing.assert_array_equal(ranks, expected)
    ranks_t, _ = target_ranks(torch.from_numpy(q), torch.from_numpy(g), torch.from_numpy(targets))
    np.testing.assert_array_equal(ranks_t, expected)


def test_rank_summary_and_topk_from_ranks():
    ranks = np.array([0, 1, 3, 9])
    s = rank_summary(ranks)
    assert s["mean_rank"] == pytest.approx(4.25) and s["median_rank"] == pytest.approx(3.0)
    assert s["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 10) / 4)
    t = topk_from_ranks(ranks, ks=(1, 2, 10))
    assert t == {"top1": 0.25, "top2": 0.5, "top10": 1.0, "top2_published": 0.25, "top10_published": 0.75}
    assert np.isnan(topk_from_ranks(np.zeros(0), ks=(1,))["top1"])
    with pytest.raises(ValueError):
        topk_from_ranks(ranks, ks=(0,))


def test_bad_shapes_raise():
    g = np.zeros((4, 3))
    with pytest.raises(ValueError):
        target_ranks(np.zeros((2, 2)), g, [0, 1])
    with pytest.raises(ValueError):
        target_ranks(np.zeros((2, 3)), g, [0])
    with pytest.raises(ValueError):
        target_ranks(np.zeros((2, 3)), g, [0, 4])


def test_accuracy_and_group_means():
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
    assert np.isnan(accuracy(np.zeros(0), np.zeros(0)))
    m = per_group_mean(np.array([1.0, 0.0, 1.0, 1.0]), np.array([0, 0, 2, 2]), 3)
    assert m[0] == 0.5 and np.isnan(m[1]) and m[2] == 1.0
