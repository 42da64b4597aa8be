"""How typical a drawing is for a model (sketchheal.inference.domain)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sketchheal.inference.domain import (DOMAIN_FILE, UNLIKE_PERCENTILE, Domain, build_domain, density_thin,
                                         describe, drawing_nll, load_domain)
from sketchheal.sketch.strokes import stroke3_to_polylines, thin_polylines
from sketchheal.model.encoder import EncoderOutput
from sketchheal.utils.paths import BUNDLED_MODEL_DIR
from tests.conftest import make_sketch


class _InkStats(torch.nn.Module):
    """A stand-in encoder whose code is (ink share, mean ink row, mean ink column) of the image."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        ink = (x[:, 0] > 0).float()  # (B, N, N)
        n = ink.sum((1, 2)).clamp(min=1)
        r = torch.arange(x.shape[-1], dtype=torch.float32)
        mu = torch.stack([n / x.shape[-1] ** 2, (ink.sum(2) * r).sum(1) / n, (ink.sum(1) * r).sum(1) / n], 1)
        return EncoderOutput(mu=mu, logvar=torch.zeros_like(mu), recons=[x])


@pytest.fixture(scope="module")
def domain():
    rng = np.random.default_rng(0)
    healer = SimpleNamespace(model=_InkStats(), image_size=64, render_mode="fast", categories=["squiggle"])
    train = [make_sketch(rng, 3, 8) for _ in range(60)]
    valid = [make_sketch(rng, 3, 8) for _ in range(40)]
    return build_domain(healer, train, valid, seed=0)


def test_percentiles_are_calibrated_on_the_validation_drawings(domain):
    assert np.all(np.diff(domain.quantiles) >= 0)
    assert domain.percentile(domain.quantiles[0] - 1) == 0.0
    assert domain.percentile(domain.quantiles[-1] + 1) == 100.0
    assert domain.percentile(domain.quantiles[100]) == pytest.approx(50.0)


def test_far_codes_are_unlike(domain):
    near = domain.mean[None]
    far = domain.mean[None] + 1000.0
    a, b = domain.assess(np.concatenate([near, far]))
    assert a["typical"] and a["percentile"] < 50
    assert not b["typical"] and b["percentile"] == 100.0
    assert "learned squiggle" in b["message"] and "unlike 99.9 % of them" in b["message"]


def test_round_trip_and_size(domain, tmp_path):
    path = domain.save(tmp_path)
    assert path.name == DOMAIN_FILE
    back = load_domain(tmp_path)
    np.testing.assert_allclose(back.mean, domain.mean, rtol=1e-5)
    np.testing.assert_allclose(back.quantiles, domain.quantiles, rtol=1e-5)
    assert back.categories == ["squiggle"]
    assert load_domain(tmp_path / "missing") is None
    (tmp_path / "bad" ).mkdir()
    (tmp_path / "bad" / DOMAIN_FILE).write_text("{")
    with pytest.raises(ValueError):
        load_domain(tmp_path / "bad")
    with pytest.raises(ValueError):
        Domain.from_dict({"mean": [0, 1], "precision": [[1]], "quantiles": []})


def test_describe():
    assert describe(99.4, ["aaron_sheep"]) == "this model learned sheep; your drawing is unlike 99.4 % of them"
    assert describe(100.0, ["aaron_sheep"]).endswith("unlike 99.9 % of them")
    assert "within their range" in describe(40.0, ["cat", "dog"]) and "cat and dog" in describe(40.0, ["cat", "dog"])
    assert UNLIKE_PERCENTILE == 99.0


def test_bundled_model_ships_a_small_calibration():
    path = BUNDLED_MODEL_DIR / DOMAIN_FILE
    if not (BUNDLED_MODEL_DIR / "config.json").is_file():
        pytest.skip("no bundled model")
    assert path.is_file() and path.stat().st_size < 100_000
    dom = load_domain(BUNDLED_MODEL_DIR)
    assert dom.categories == ["aaron_sheep"] and dom.mean.shape == (64,)
    assert json.loads(path.read_text())["info"]["n_train"] >= 1000


def test_the_bundled_calibration_flags_drawings_of_other_kinds_by_the_decoder_too():
    from sketchheal.inference.complete import model_view
    from sketchheal.inference.loading import load_model

    healer = load_model(None, device="cpu")
    dom = load_domain(BUNDLED_MODEL_DIR)
    assert dom.nll_quantiles is not None and dom.extent > 0
    table = [np.array([[0.0, 80.0], [300.0, 80.0]]), *[np.array([[x, 80.0], [x, 200.0]]) for x in (20.0, 280.0)],
             np.array([[120.0, 40.0], [125.0, 80.0], [155.0, 80.0], [160.0, 40.0], [120.0, 40.0]])]
    view = model_view(table, healer.image_size, healer.render_mode)
    (t,) = dom.typicality(healer, view.image[None], [table])
    assert not t["typical"] and t["nll"] is not None
    codes = dom.mean[None]
    (no_nll,) = dom.assess(codes)  # without a drawing: the code distance alone
    assert no_nll["nll"] is None and no_nll["typical"]
    back = Domain.from_dict(json.loads(json.dumps(dom.to_dict())))
    np.testing.assert_allclose(back.nll_quantiles, dom.nll_quantiles, rtol=1e-5)
    with pytest.raises(ValueError, match="decoder quantiles"):
        Domain.from_dict({**dom.to_dict(), "nll_quantiles": [1.0, 2.0]})


def _densified(lines, k=6):
    """Every segment cut into ``k`` (collinear points in between): a drawing as a tablet would sample it."""
    out = []
    for line in lines:
        if len(line) < 2:
            out.append(line.copy())
            continue
        t = np.linspace(0.0, 1.0, k, endpoint=False)[:, None, None]
        seg = line[:-1][None] + t * (line[1:] - line[:-1])[None]  # (k, n-1, 2)
        out.append(np.concatenate([seg.transpose(1, 0, 2).reshape(-1, 2), line[-1:]], 0))
    return out


def test_density_thin_is_the_tolerance_the_training_drawings_keep():
    rng = np.random.default_rng(3)
    simplified = [thin_polylines(stroke3_to_polylines(make_sketch(rng, 3, 12)), 2.0 / 255) for _ in range(30)]
    assert density_thin(simplified) >= 2.0 / 255  # RDP at their own tolerance removes nothing
    assert density_thin([_densified(d) for d in simplified]) == 0.0  # nothing leaves dense drawings as they are


def test_dense_strokes_are_read_at_the_models_density():
    from sketchheal.inference.loading import load_model

    if not (BUNDLED_MODEL_DIR / "config.json").is_file():
        pytest.skip("no bundled model")
    healer = load_model(None, device="cpu")
    dom = load_domain(BUNDLED_MODEL_DIR)
    assert dom.nll_thin == pytest.approx(1.0 / 255, rel=1e-4)  # the sheep are simplified at about 1 / 255
    rng = np.random.default_rng(0)
    sheep = [thin_polylines(stroke3_to_polylines(make_sketch(rng, 3, 10)), dom.nll_thin) for _ in range(3)]
    dense = [_densified(d) for d in sheep]
    codes = np.tile(dom.mean, (3, 1))
    as_given = dom.nll(healer, sheep, codes)
    # the collinear points are thinned away: the same NLL as the drawing itself, not the tiny offsets' own
    np.testing.assert_allclose(dom.nll(healer, dense, codes), as_given, rtol=1e-4)
    raw = drawing_nll(healer, dense, codes, dom.extent, thin=0.0)
    assert np.all(raw < as_given - 0.5)
    back = Domain.from_dict(json.loads(json.dumps(dom.to_dict())))
    assert back.nll_thin == pytest.approx(dom.nll_thin)
    old = {k: v for k, v in dom.to_dict().items() if k != "nll_thin"}  # a calibration from before: as given
    assert Domain.from_dict(old).nll_thin == 0.0
