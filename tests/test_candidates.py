"""Best of K healed candidates: the ink-agreement score, the choice it makes, and heal(candidates=K)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchheal.inference import heal as H
from sketchheal.inference.candidates import DEFAULT_CANDIDATES, best_of, ink_agreement
from sketchheal.config import preset
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import save_release
from sketchheal.inference.sample import sample


def _line(rows: slice, cols: slice, n: int = 32) -> np.ndarray:
    img = -np.ones((n, n), np.float32)
    img[rows, cols] = 1.0
    return img


def test_ink_agreement_is_an_f1_with_a_tolerance():
    a = _line(slice(10, 11), slice(4, 28))
    shifted = _line(slice(11, 12), slice(4, 28))  # one pixel lower
    far = _line(slice(25, 26), slice(4, 28))
    half = _line(slice(10, 11), slice(4, 16))
    blank = -np.ones((32, 32), np.float32)
    got = ink_agreement(np.stack([a, a, a, a, a]), np.stack([a, shifted, far, half, blank]))
    assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(1.0)  # within 2 px counts as the same ink
    assert got[2] == 0.0 and got[4] == 0.0
    recall = 14 / 24  # columns 4..17 of the full line lie within 2 px of the half line (4..15)
    assert got[3] == pytest.approx(2 * recall / (1 + recall))  # precision 1
    strict = ink_agreement(a[None], shifted[None], tolerance=0)
    assert strict[0] == 0.0
    with pytest.raises(ValueError, match="B, N, N"):
        ink_agreement(a, a)


@pytest.fixture(scope="module")
def model() -> LmserPix2Seq:
    torch.manual_seed(0)
    m = LmserPix2Seq(preset("tiny").model).eval()
    with torch.no_grad():
        m.decoder.fc_params.bias[-1] = -4.0  # the p_end logit: candidates with strokes to compare
    return m


def test_best_of_one_is_plain_sampling_and_best_of_k_takes_the_best(model):
    torch.manual_seed(1)
    z = torch.randn(3, model.config.z_size)
    images = np.stack([_line(slice(10, 12), slice(4, 28)), _line(slice(4, 28), slice(15, 17)),
                       _line(slice(20, 22), slice(2, 30))])
    keys = [(0, 0, i) for i in range(3)]
    kw = dict(scale=10.0, size=32, mode="fast", max_len=40, temperature=0.8)
    one, scores1 = best_of(model, z, images, keys, candidates=1, **kw)
    plain = sample(model, z, max_len=40, temperature=0.8, seeds=keys)
    assert all(np.array_equal(a, b) for a, b in zip(one, plain)) and scores1.shape == (3, 1)
    chosen, scores = best_of(model, z, images, keys, candidates=4, **kw)
    assert scores.shape == (3, 4) and ((0 <= scores) & (scores <= 1)).all()
    # candidate 0 keeps the plain key: its sketch is the plain sample, and the choice is the argmax
    zz = z.repeat_interleave(4, 0)
    every = sample(model, zz, max_len=40, temperature=0.8,
                   seeds=[k if c == 0 else (*k, c) for k in keys for c in range(4)])
    for b in range(3):
        # the same noise; a batch of another size may differ in the last float bit (matmul kernels)
        assert every[4 * b].shape == plain[b].shape and np.array_equal(every[4 * b][:, 2], plain[b][:, 2])
        assert np.allclose(every[4 * b], plain[b], rtol=0, atol=1e-5)
        assert np.array_equal(chosen[b], every[4 * b + int(scores[b].argmax())])
    with pytest.raises(ValueError, match="candidates"):
        best_of(model, z, images, keys, candidates=0, **kw)


def test_heal_with_candidates(tmp_path, model):
    save_release(model, tmp_path / "m", scale=10.0, max_seq_len=40, categories=["x"],
                          extra={"data": {"render_mode": "fast"}})
    healer = H.load_model(tmp_path / "m", device="cpu")
    s3 = np.array([[0, 0, 0], [30, 0, 0], [0, 30, 1], [-10, -10, 0], [20, 0, 1]], np.float32)
    big = s3 * np.array([2, 2, 1], np.float32)
    a = H.heal([s3, big], model=healer, temperature=0.8, candidates=3, seed=4)
    b = H.heal([s3, big], model=healer, temperature=0.8, candidates=3, seed=4, batch_size=1)
    assert all(np.allclose(x.healed[0], y.healed[0], atol=1e-3) for x, y in zip(a, b))  # seeded, batch-free
    # the default is best of DEFAULT_CANDIDATES (8), and 1 with greedy decoding
    default = H.heal([s3], model=healer, temperature=0.8, seed=4)
    eight = H.heal([s3], model=healer, temperature=0.8, seed=4, candidates=DEFAULT_CANDIDATES)
    assert DEFAULT_CANDIDATES == 8 and np.array_equal(default[0].healed[0], eight[0].healed[0])
    greedy = H.heal([s3], model=healer, greedy=True)
    assert np.array_equal(greedy[0].healed[0], H.heal([s3], model=healer, greedy=True, candidates=1)[0].healed[0])
    with pytest.raises(ValueError, match="candidates"):
        H.heal([s3], model=healer, greedy=True, candidates=2)
