"""Batched sampling: agreement with one-at-a-time decoding, seeding, limits, temperature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sketchheal.config import preset
from sketchheal.model import mixture
from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.inference import sample as S
from sketchheal.inference.sample import encode_images, heal_images, sample


@pytest.fixture(scope="module")
def model() -> LmserPix2Seq:
    torch.manual_seed(0)
    return LmserPix2Seq(preset("tiny").model).eval()


@pytest.fixture(scope="module")
def codes() -> torch.Tensor:
    # large codes spread the lengths of a random model's sketches (some end at once, some run to max_len)
    return torch.randn(12, 8, generator=torch.Generator().manual_seed(1)) * 3


def _reference_greedy(model, z: torch.Tensor, max_len: int) -> np.ndarray:
    """One sketch, decoded through ``decoder.forward`` and ``mixture.sample_step`` step by step."""
    rows = []
    x = torch.tensor([[S.SOS]])
    state = None
    with torch.no_grad():
        for _ in range(max_len):
            params, state = model.decoder(x, z[None], state)
            r = mixture.sample_step(params[:, 0], temperature=1.0, greedy=True)
            if r[0, 4] == 1:
                break
            rows.append([r[0, 0].item(), r[0, 1].item(), r[0, 3].item()])
            x = r[None]
    out = np.asarray(rows, np.float32).reshape(-1, 3)
    if len(out):
        out[-1, 2] = 1
    return out


def _same(a: list[np.ndarray], b: list[np.ndarray], atol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y, atol=atol) for x, y in zip(a, b))


def test_batched_greedy_equals_one_at_a_time(model, codes, monkeypatch):
    kept = []
    original_keep = S._FusedLSTMStepper.keep
    monkeypatch.setattr(S._FusedLSTMStepper, "keep", lambda self, rows: (kept.append(len(rows)),
                                                                          original_keep(self, rows))[1])
    batched = sample(model, codes, max_len=40, greedy=True)
    assert kept, "finished sketches were never dropped from the batch"
    lengths = [len(s) for s in batched]
    assert min(lengths) < 40 and max(lengths) == 40  # the fixture exercises both early ends and the cap
    single = [sample(model, codes[i: i + 1], max_len=40, greedy=True)[0] for i in range(len(codes))]
    assert _same(batched, single)
    reference = [_reference_greedy(model, codes[i], 40) for i in range(len(codes))]
    assert _same(batched, reference)


def test_generic_decoder_path_agrees_with_fused(model, codes):
    class Wrapped(StrokeDecoder):  # not exactly StrokeDecoder: sampled through forward()
        pass

    dec = Wrapped(model.config)
    dec.load_state_dict(model.decoder.state_dict())
    assert not S._fused_ok(dec) and S._fused_ok(model.decoder)
    assert _same(sample(dec, codes, max_len=30, greedy=True), sample(model, codes, max_len=30, greedy=True))
    a = sample(dec, codes, max_len=30, temperature=0.5, seeds=range(len(codes)))
    b = sample(model, codes, max_len=30, temperature=0.5, seeds=range(len(codes)))
    assert _same(a, b)


def test_seeded_sampling_is_reproducible_and_independent_of_batching(model, codes):
    a = sample(model, codes, max_len=40, temperature=0.7, generator=torch.Generator().manual_seed(5))
    b = sample(model, codes, max_len=40, temperature=0.7, generator=torch.Generator().manual_seed(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = sample(model, codes, max_len=40, temperature=0.7, generator=torch.Generator().manual_seed(6))
    assert not _same(a, c)
    keys = [(3, i) for i in range(len(codes))]
    full = sample(model, codes, max_len=40, temperature=0.7, seeds=keys)
    chunked = sample(model, codes, max_len=40, temperature=0.7, seeds=keys, batch_size=5)
    alone = [sample(model, codes[i: i + 1], max_len=40, temperature=0.7, seeds=[keys[i]])[0]
             for i in range(len(codes))]
    assert _same(full, chunked) and _same(full, alone)
    # the same generator seed gives the base of the keys (base, row)
    assert _same(a, sample(model, codes, max_len=40, temperature=0.7, batch_size=4,
                           generator=torch.Generator().manual_seed(5)))


def test_max_len_is_respected_and_cut_sketches_end_with_pen_up(model, codes):
    never_end = LmserPix2Seq(model.config).eval()
    never_end.load_state_dict(model.state_dict())
    with torch.no_grad():
        never_end.decoder.fc_params.bias[-1] = -1e4  # p_end logit
    for greedy in (True, False):
        out = sample(never_end, codes[:4], max_len=17, greedy=greedy, temperature=0.3, seeds=range(4))
        assert [len(s) for s in out] == [17] * 4
        assert all(s[-1, 2] == 1 and s.dtype == np.float32 for s in out)


def test_finished_sketches_stop(model, codes):
    always_end = LmserPix2Seq(model.config).eval()
    always_end.load_state_dict(model.state_dict())
    with torch.no_grad():
        always_end.decoder.fc_params.bias[-1] = 1e4
    out = sample(always_end, codes, max_len=50, temperature=0.5, seeds=range(len(codes)))
    assert all(s.shape == (0, 3) for s in out)


def test_tiny_temperature_approaches_greedy(model, codes):
    greedy = sample(model, codes, max_len=25, greedy=True)
    cold = sample(model, codes, max_len=25, temperature=1e-8, seeds=range(len(codes)))
    assert _same(greedy, cold, atol=1e-2)


def test_temperature_scales_the_covariance_and_sharpens_the_weights():
    m, n, tau = 2, 20000, 0.25
    params = torch.zeros(n, 6 * m + 3)
    # component 0: mu (1, -2), sigma (2, 0.5), rho 0.6; component 1 far away with a lower weight
    params[:, 0:6] = torch.tensor([0.0, 1.0, -2.0, math.log(2.0), math.log(0.5), math.atanh(0.6)])
    params[:, 6:12] = torch.tensor([-math.log(3.0), 50.0, 50.0, 0.0, 0.0, 0.0])
    settings = S._Settings(max_len=1, temperature=tau, greedy=False, m=m, check_every=1)
    noise = torch.from_numpy(S._noise([(0, i) for i in range(n)], 1, m))
    d, pen = S._RowSampler(settings, noise, torch.device("cpu"))(params, 0)
    far = d[:, 0] > 25
    # weights 3:1 -> softmax(log p / tau) = 3^4 : 1 -> P(component 1) = 1/82
    assert abs(far.float().mean().item() - 1 / 82) < 0.005
    near = d[~far].double().numpy()
    cov = np.cov(near.T)
    expected = tau * np.array([[4.0, 0.6 * 2 * 0.5], [0.6 * 2 * 0.5, 0.25]])
    assert np.allclose(near.mean(0), [1, -2], atol=0.03)
    assert np.allclose(cov, expected, rtol=0.06, atol=0.005)
    # pen logits all equal -> each state about a third
    assert abs((pen == 2).float().mean().item() - 1 / 3) < 0.02


def test_bf16_precision_runs_and_stays_close(model, codes):
    a = sample(model, codes, max_len=10, greedy=True)
    b = sample(model, codes, max_len=10, greedy=True, precision="bf16")
    assert len(b) == len(a) and all(s.ndim == 2 and s.shape[1] == 3 and np.isfinite(s).all() for s in b)
    firsts = [(x[0, :2], y[0, :2]) for x, y in zip(a, b) if len(x) and len(y)]
    assert firsts and all(np.allclose(x, y, atol=0.1) for x, y in firsts)


def test_encode_and_heal_images(model):
    images = torch.rand(5, 1, 32, 32) * 2 - 1
    mu = encode_images(model, images, batch_size=2)
    assert mu.shape == (5, 8)
    with torch.no_grad():
        assert torch.allclose(mu, model.encode(images).mu, atol=1e-5)
    mu16 = encode_images(model, images, batch_size=2, precision="bf16")
    assert mu16.dtype == torch.float32 and torch.allclose(mu16, mu, atol=0.1)
    out = heal_images(model, images, max_len=12, temperature=0.2, seeds=range(5), batch_size=2)
    assert len(out) == 5 and all(len(s) <= 12 for s in out)
    assert model.training is False


def test_bad_arguments(model, codes):
    with pytest.raises(ValueError, match="max_len"):
        sample(model, codes, max_len=0)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, codes, max_len=5, temperature=-1)
    with pytest.raises(ValueError, match="precision"):
        sample(model, codes, max_len=5, precision="fp8")
    with pytest.raises(ValueError, match="seeds"):
        sample(model, codes, max_len=5, seeds=[1, 2])
    with pytest.raises(ValueError, match="shape"):
        sample(model, codes[0], max_len=5)
    with pytest.raises(ValueError, match="shape"):
        encode_images(model, torch.zeros(2, 3, 32, 32))


def test_the_draw_has_one_home_in_model_mixture(model, codes, monkeypatch):
    """sample() draws every row through model.mixture.draw (the same function as mixture.sample_step)."""
    m, n = 3, 16
    params = torch.randn(n, 6 * m + 3, generator=torch.Generator().manual_seed(4))
    noise = torch.from_numpy(S._noise([(1, i) for i in range(n)], 2, m))
    settings = S._Settings(max_len=2, temperature=0.3, greedy=False, m=m, check_every=1)
    d, pen = S._RowSampler(settings, noise, torch.device("cpu"))(params, 1)
    d2, pen2 = mixture.draw(params, noise[:, 1], temperature=0.3)
    assert torch.equal(d, d2) and torch.equal(pen, pen2)
    greedy = mixture.draw(params, None, temperature=0.3, greedy=True)
    row = mixture.sample_step(params, temperature=0.3, greedy=True)
    assert torch.equal(row[:, :2], greedy[0]) and torch.equal(row[:, 2:].argmax(1), greedy[1])
    calls = []
    monkeypatch.setattr(S, "draw", lambda *a, **k: (calls.append(1), mixture.draw(*a, **k))[1])
    sample(model, codes[:2], max_len=5, temperature=0.5, seeds=[0, 1])
    assert calls
