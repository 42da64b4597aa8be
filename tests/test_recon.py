"""The reconstruction averaged over views (sketchheal.inference.recon): exact for a model that commutes with the
views, a fixed guess diluted, the codes of the identity pass, and one clear line for a wrong view name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchheal.inference.complete import CompletionParams
from sketchheal.inference.recon import RECON_VIEWS, parse_views, reconstruct
from sketchheal.model.encoder import EncoderOutput


class _Copy(torch.nn.Module):
    """Reconstructs what it sees (commutes with mirroring and shifting), plus ``blob`` at a fixed place."""

    def __init__(self, blob: bool = False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.blob = blob

    def encode(self, x):
        rec = x.clone()
        if self.blob:
            rec[..., 10:14, 10:14] = 1.0
        mu = x.flatten(1)[:, :4].clone()  # the top-left pixels: tells which view was encoded
        return EncoderOutput(mu=mu, logvar=torch.zeros_like(mu), recons=[rec])


def _images(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((n, size, size), -1.0, np.float32)
    img[:, 4:-4, 4:-4] = np.where(rng.random((n, size - 8, size - 8)) > 0.8, 1.0, -1.0)  # ink off the border
    img[:, 0, :4] = [1, -1, -1, -1]  # a marker the mirrored views move away
    return img


def test_views_of_a_model_that_commutes_with_them_change_nothing():
    img = _images()
    img[:, 0, :4] = -1  # no ink at the border, which the shifted views would lose
    plain, codes = reconstruct(_Copy(), img)
    for views in ("mirror", "flip", "turn", "shift", "cross", "transpose", "mirror,flip,turn,shift,cross,transpose"):
        avg, codes2 = reconstruct(_Copy(), img, views=views)
        np.testing.assert_allclose(avg, plain, atol=1e-6)
        np.testing.assert_array_equal(codes2, codes)


def test_a_fixed_guess_is_diluted_by_the_views_and_the_codes_are_the_identity_pass():
    img = _images()
    plain, codes = reconstruct(_Copy(blob=True), img)
    avg, codes2 = reconstruct(_Copy(blob=True), img, views="mirror")  # the identity and the mirror image
    np.testing.assert_array_equal(codes2, codes)
    np.testing.assert_array_equal(codes[:, 0], img[:, 0, 0])
    # the blob sits there in the identity view only (the mirror view puts it at columns 18-21)
    blank = img[:, 10:14, 10:14] < 0
    assert np.allclose(plain[:, 10:14, 10:14][blank], 1.0)
    np.testing.assert_allclose(avg[:, 10:14, 10:14][blank], 0.0, atol=1e-6)  # (1 + -1) / 2 on paper
    np.testing.assert_allclose(avg[:, 10:14, 18:22][img[:, 10:14, 18:22] < 0], 0.0, atol=1e-6)
    assert sorted(RECON_VIEWS) == ["cross", "flip", "mirror", "shift", "transpose", "turn"]


def test_view_names_are_checked():
    assert parse_views("") == () == parse_views("none")
    assert parse_views(" mirror, shift,mirror") == ("mirror", "shift")
    with pytest.raises(ValueError, match="unknown reconstruction view 'rotate'; choose from mirror, flip, turn, shift, cross, transpose"):
        parse_views("mirror,rotate")
    with pytest.raises(ValueError, match="unknown reconstruction view"):
        CompletionParams(views="sideways")
    assert CompletionParams().views == "mirror,flip,turn,shift"
