"""Mixture output: loss against direct and torch.distributions computations, stability, sampling."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from sketchheal.model.mixture import (
    kl_divergence, kl_loss, pen_cross_entropy, reconstruction_loss, reconstruction_terms, sample_step, split_params,
)

M = 4


def make_params(b: int, steps: int, *, seed: int = 0) -> torch.Tensor:
    """Moderate raw outputs: log sigma in about [-1.5, 0.5], so a direct density computation does not underflow."""
    g = torch.Generator().manual_seed(seed)
    params = torch.randn(b, steps, 6 * M + 3, generator=g)
    groups = params[..., : 6 * M].view(b, steps, M, 6)
    groups[..., 3:5] = groups[..., 3:5] * 0.5 - 0.5
    return params


def make_target(b: int, steps: int, lengths: torch.Tensor, *, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(b, steps, 5)
    target[..., 4] = 1  # end tokens
    for i, n in enumerate(lengths.tolist()):
        target[i, :n, :2] = torch.randn(n, 2, generator=g)
        pen = torch.randint(0, 2, (n,), generator=g)
        target[i, :n, 4] = 0
        target[i, torch.arange(n), 2 + pen] = 1
    return target


def direct_loss(params, target, lengths) -> torch.Tensor:
    """sketch-rnn's L_R written literally with densities (float64), the way the published code computed it."""
    params, target = params.double(), target.double()
    b, steps, _ = target.shape
    total = torch.zeros((), dtype=torch.float64)
    for i in range(b):
        for t in range(steps):
            row = params[i, t]
            pen_logits = row[6 * M:]
            q = torch.exp(pen_logits) / torch.exp(pen_logits).sum()
            total = total - (target[i, t, 2:] * torch.log(q)).sum()
            if t >= lengths[i]:
                continue
            g = row[: 6 * M].view(M, 6)
            pi = torch.exp(g[:, 0]) / torch.exp(g[:, 0]).sum()
            sx, sy, rho = torch.exp(g[:, 3]), torch.exp(g[:, 4]), torch.tanh(g[:, 5])
            zx = (target[i, t, 0] - g[:, 1]) / sx
            zy = (target[i, t, 1] - g[:, 2]) / sy
            z = zx ** 2 + zy ** 2 - 2 * rho * zx * zy
            dens = torch.exp(-z / (2 * (1 - rho ** 2))) / (2 * math.pi * sx * sy * torch.sqrt(1 - rho ** 2))
            total = total - torch.log((pi * dens).sum())
    return total / (steps * b)


def distributions_offset_loss(params, target, lengths) -> torch.Tensor:
    """The offset term L_s via MixtureSameFamily of MultivariateNormal (float64)."""
    params, target = params.double(), target.double()
    logits_pi, mu_x, mu_y, log_sx, log_sy, rho, _ = split_params(params)
    sx, sy = log_sx.exp(), log_sy.exp()
    cov = torch.stack([torch.stack([sx * sx, rho * sx * sy], -1), torch.stack([rho * sx * sy, sy * sy], -1)], -2)
    mix = MixtureSameFamily(Categorical(logits=logits_pi),
                            MultivariateNormal(torch.stack([mu_x, mu_y], -1), covariance_matrix=cov))
    log_p = mix.log_prob(target[..., :2])  # (B, L)
    b, steps = log_p.shape
    mask = torch.arange(steps)[None] < lengths[:, None]
    return -(log_p * mask).sum() / (steps * b)


def test_split_params_layout():
    # Component j's six numbers sit at 6j .. 6j+5, then the 3 pen logits.
    params = torch.arange(6 * M + 3, dtype=torch.float32)[None]
    logits_pi, mu_x, mu_y, log_sx, log_sy, rho, pen = split_params(params)
    assert logits_pi.tolist() == [[0.0, 6.0, 12.0, 18.0]]
    assert mu_x.tolist() == [[1.0, 7.0, 13.0, 19.0]]
    assert mu_y[0, 1] == 8 and log_sx[0, 2] == 15 and log_sy[0, 3] == 22
    assert torch.allclose(rho, torch.tanh(torch.tensor([[5.0, 11.0, 17.0, 23.0]])))
    assert pen.tolist() == [[24.0, 25.0, 26.0]]
    with pytest.raises(ValueError):
        split_params(torch.zeros(2, 10))


def test_loss_matches_direct_and_distributions():
    b, steps = 3, 7
    lengths = torch.tensor([7, 4, 1])
    params, target = make_params(b, steps), make_target(b, steps, lengths)
    loss = reconstruction_loss(params, target, lengths)
    assert loss.dtype == torch.float32
    assert torch.allclose(loss.double(), direct_loss(params, target, lengths), rtol=1e-5, atol=1e-6)
    offset, pen = reconstruction_terms(params, target, lengths)
    assert torch.allclose(offset.double(), distributions_offset_loss(params, target, lengths), rtol=1e-5, atol=1e-6)
    pen_ref = torch.nn.functional.cross_entropy(params[..., 6 * M:].reshape(-1, 3),
                                                target[..., 2:].argmax(-1).reshape(-1), reduction="sum") / (b * steps)
    assert torch.allclose(pen, pen_ref, atol=1e-6)


def test_loss_is_fp32_under_autocast():
    b, steps = 2, 5
    lengths = torch.tensor([5, 3])
    params, target = make_params(b, steps), make_target(b, steps, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = reconstruction_loss(params.bfloat16(), target, lengths)
    assert loss.dtype == torch.float32
    assert torch.allclose(loss, reconstruction_loss(params.bfloat16().float(), target, lengths))


@pytest.mark.parametrize("case", ["huge_logits", "tiny_sigma", "rho_plus_one", "rho_minus_one", "huge_all"])
def test_loss_finite_with_extreme_inputs(case):
    b, steps = 2, 6
    lengths = torch.tensor([6, 2])
    target = make_target(b, steps, lengths)
    params = make_params(b, steps)
    g = params[..., : 6 * M].view(b, steps, M, 6)
    if case == "huge_logits":
        g[..., 0] = torch.tensor([1e4, -1e4, 3e4, 0.0])
        params[..., 6 * M:] = torch.tensor([5e4, -5e4, 0.0])
    elif case == "tiny_sigma":
        g[..., 3:5] = -80.0
        g[..., 1] = target[..., None, 0]  # one point exactly on the mean, the others far away in sigma units
    elif case == "rho_plus_one":
        g[..., 5] = 60.0
    elif case == "rho_minus_one":
        g[..., 5] = -60.0
        g[..., 3:5] = -20.0
    else:
        params = params.sign() * 1e5
    params.requires_grad_(True)
    loss = reconstruction_loss(params, target, lengths)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(params.grad).all()


def test_kl():
    mu, logvar = torch.zeros(4, 8), torch.zeros(4, 8)
    assert kl_divergence(mu, logvar) == 0
    assert kl_loss(mu, logvar, 0.2) == pytest.approx(0.2)
    mu = torch.ones(4, 8)
    assert kl_divergence(mu, logvar).item() == pytest.approx(0.5)


def sharp_params(b: int) -> torch.Tensor:
    """``(b, 6M+3)`` rows for one decoding step."""
    return make_params(b, 1, seed=3)[:, 0]


def test_greedy_is_the_most_likely_component_mean():
    params = sharp_params(5)
    rows = sample_step(params, temperature=0.5, greedy=True)
    logits_pi, mu_x, mu_y, *_, pen = split_params(params)
    k = logits_pi.argmax(-1)
    assert torch.equal(rows[:, 0], mu_x[torch.arange(5), k])
    assert torch.equal(rows[:, 1], mu_y[torch.arange(5), k])
    assert torch.equal(rows[:, 2:].argmax(-1), pen.argmax(-1))
    assert torch.equal(rows[:, 2:].sum(-1), torch.ones(5))


def test_low_temperature_concentrates_at_the_means():
    params = sharp_params(64)
    g = torch.Generator().manual_seed(0)
    rows = sample_step(params, temperature=1e-6, generator=g)
    greedy = sample_step(params, temperature=0.0)
    assert torch.allclose(rows, greedy, atol=5e-3)


def test_sampling_is_reproducible_and_temperature_scales_the_covariance():
    # One sketch repeated: the sample statistics must match the mixture re-weighted by tau.
    params = sharp_params(1).repeat(20000, 1)
    logits_pi, mu_x, mu_y, log_sx, log_sy, rho, pen_logits = split_params(params[:1])
    a = sample_step(params[:10], temperature=0.3, generator=torch.Generator().manual_seed(1))
    b = sample_step(params[:10], temperature=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)

    # Single component (others get -inf weight): dx, dy ~ N(mu, tau * Sigma).
    one = params.clone()
    groups = one[:, : 6 * M].view(-1, M, 6)
    groups[:, 1:, 0] = -1e9
    tau = 0.25
    rows = sample_step(one, temperature=tau, generator=torch.Generator().manual_seed(2))
    sx, sy, r = log_sx[0, 0].exp(), log_sy[0, 0].exp(), rho[0, 0]
    xy = rows[:, :2]
    assert torch.allclose(xy.mean(0), torch.stack([mu_x[0, 0], mu_y[0, 0]]), atol=0.02)
    cov = torch.cov(xy.T)
    expect = tau * torch.tensor([[sx * sx, r * sx * sy], [r * sx * sy, sy * sy]])
    assert torch.allclose(cov, expect, rtol=0.08, atol=0.01)

    # Pen frequencies follow softmax(log p / tau).
    pen_freq = rows[:, 2:].mean(0)
    expect_pen = torch.softmax(torch.log_softmax(pen_logits[0], -1) / tau, -1)
    assert torch.allclose(pen_freq, expect_pen, atol=0.02)

    with pytest.raises(ValueError):
        sample_step(params[:1], temperature=-1.0)


def test_pen_weight_scales_only_the_lift_and_end_terms():
    b, steps = 3, 7
    lengths = torch.tensor([7, 4, 1])
    params, target = make_params(b, steps), make_target(b, steps, lengths)
    _, pen = reconstruction_terms(params, target, lengths)
    pen_logits = split_params(params)[-1]
    assert torch.allclose(pen_cross_entropy(pen_logits, target), pen)
    _, pen_w = reconstruction_terms(params, target, lengths, pen_weight=3.0)
    assert torch.allclose(pen_cross_entropy(pen_logits, target, 3.0), pen_w)
    # Split the unweighted sum by class: weighting multiplies the lift and end parts by w and keeps pen-down.
    log_q = torch.log_softmax(pen_logits, -1)
    parts = [-(target[..., 2 + k] * log_q[..., k]).sum() / (b * steps) for k in range(3)]
    assert torch.allclose(pen_w, parts[0] + 3.0 * (parts[1] + parts[2]), rtol=1e-6)
    assert pen_w > pen
