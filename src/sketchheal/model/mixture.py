"""The decoder's output distribution: a mixture of M bivariate Gaussians over (dx, dy) and 3 pen states.

Output layout (as published): ``params[..., :6M]`` are M groups of 6, one per component,
``(pi_logit, mu_x, mu_y, log_sigma_x, log_sigma_y, rho_raw)``; ``params[..., 6M:]`` are the 3 pen-state logits
(p_down, p_up, p_end). ``sigma = exp(log_sigma)``, ``rho = tanh(rho_raw)``.

The reconstruction loss is sketch-rnn's (Ha & Eck, ICLR 2018, eq. 9-10) evaluated in log space. The published code
computed the density directly and added 1e-3 inside the logs, which underflows and turns NaN; here every term is a
log density combined with ``logsumexp``, and the loss always runs in fp32, also under autocast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

# |rho| is kept below this in the loss so that 1 - rho^2 >= ~2e-5 (tanh saturates to exactly 1 in fp32).
RHO_MAX = 1.0 - 1e-5
# Lower bound on log sigma in the loss (sigma >= 9e-4, ~25x below the quantisation step of normalised QuickDraw
# offsets): with integer offsets a component can otherwise collapse onto a repeated value (dx = 0) and drive the
# likelihood to infinity; the floor keeps the loss and its gradients finite.
LOG_SIGMA_MIN = -7.0
LOG_2PI = math.log(2 * math.pi)


def num_mixtures(params: torch.Tensor) -> int:
    width = params.shape[-1]
    if width < 9 or (width - 3) % 6:
        raise ValueError(f"mixture params must have 6M + 3 numbers in the last axis, got {width}")
    return (width - 3) // 6


def split_params(params: torch.Tensor):
    """``params (..., 6M+3)`` -> ``(logits_pi, mu_x, mu_y, log_sx, log_sy, rho, pen_logits)``.

    The first six are ``(..., M)`` (``rho`` already through tanh); ``pen_logits`` is ``(..., 3)``.
    """
    m = num_mixtures(params)
    groups = rearrange(params[..., : 6 * m], "... (m k) -> k ... m", k=6)  # (6, ..., M)
    logits_pi, mu_x, mu_y, log_sx, log_sy, rho_raw = groups.unbind(0)
    return logits_pi, mu_x, mu_y, log_sx, log_sy, torch.tanh(rho_raw), params[..., 6 * m:]


def bivariate_normal_log_prob(x, y, mu_x, mu_y, log_sx, log_sy, rho):
    """log N(x, y | mu, sigma, rho), elementwise (broadcasting), for a bivariate normal with correlation rho.

    log N = -log(2 pi) - log sx - log sy - 1/2 log(1 - rho^2) - Z / (2 (1 - rho^2)),
    Z = zx^2 + zy^2 - 2 rho zx zy,  zx = (x - mu_x) / sx,  zy = (y - mu_y) / sy     (Graves 2013, eq. 24-25)
    """
    log_sx = log_sx.clamp(min=LOG_SIGMA_MIN)
    log_sy = log_sy.clamp(min=LOG_SIGMA_MIN)
    rho = rho.clamp(-RHO_MAX, RHO_MAX)
    zx = (x - mu_x) * torch.exp(-log_sx)
    zy = (y - mu_y) * torch.exp(-log_sy)
    one_minus_rho2 = (1 - rho) * (1 + rho)  # exact where rho ~ +-1, unlike 1 - rho * rho
    quad = zx * zx + zy * zy - 2 * rho * zx * zy
    return -LOG_2PI - log_sx - log_sy - 0.5 * torch.log(one_minus_rho2) - quad / (2 * one_minus_rho2)


def reconstruction_terms(params: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
                         pen_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The two parts of sketch-rnn's L_R: ``(L_s offsets, L_p pen)``, scalars in fp32.

    ``params (B, L, 6M+3)``, ``target (B, L, 5)`` stroke-5 rows, ``lengths (B,)`` = real points per sketch
    (rows ``0 .. length-1`` of the target are points, the rest end tokens). With ``L = Nmax + 1`` (sketch-rnn eq. 9):

        L_s = -1 / (L B) * sum_b sum_{i < length_b} log sum_j pi_j N(dx_i, dy_i | mu_j, sigma_j, rho_j)
        L_p = -1 / (L B) * sum_b sum_{i < L} sum_k p_k log q_k

    where ``log pi = log_softmax(pi logits)``, ``log q = log_softmax(pen logits)``; the mixture sum is a logsumexp.
    ``pen_weight`` w (not in sketch-rnn) weights the lift and end classes: ``p_k log q_k`` becomes
    ``w_k p_k log q_k`` with ``w = (1, w, w)``; 1 gives eq. 9 exactly.
    """
    device_type = params.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        params = params.float()
        target = target.float()
        b, steps, _ = target.shape
        if params.shape[:2] != (b, steps):
            raise ValueError(f"params {tuple(params.shape)} and target {tuple(target.shape)} disagree on (B, L)")
        logits_pi, mu_x, mu_y, log_sx, log_sy, rho, pen_logits = split_params(params)
        dx = target[..., 0:1]  # (B, L, 1), broadcast over the M components
        dy = target[..., 1:2]
        log_n = bivariate_normal_log_prob(dx, dy, mu_x, mu_y, log_sx, log_sy, rho)  # (B, L, M)
        log_mix = torch.logsumexp(F.log_softmax(logits_pi, dim=-1) + log_n, dim=-1)  # (B, L)
        points = torch.arange(steps, device=params.device)[None, :] < lengths.to(params.device)[:, None]  # (B, L)
        offset = -torch.where(points, log_mix, torch.zeros_like(log_mix)).sum() / (steps * b)
        pen = pen_cross_entropy(pen_logits, target, pen_weight)
    return offset, pen


def pen_cross_entropy(pen_logits: torch.Tensor, target: torch.Tensor, pen_weight: float = 1.0) -> torch.Tensor:
    """``L_p`` of sketch-rnn eq. 9 from ``pen_logits (B, L, 3)`` and stroke-5 ``target (B, L, 5)``: the pen
    cross-entropy over all L steps divided by ``L * B``; lift and end classes weighted by ``pen_weight`` (fp32)."""
    b, steps = target.shape[:2]
    pen_target = target[..., 2:5].float()  # (B, L, 3) one-hot
    if pen_weight != 1.0:
        pen_target = pen_target * pen_target.new_tensor([1.0, pen_weight, pen_weight])
    return -(pen_target * F.log_softmax(pen_logits.float(), dim=-1)).sum() / (steps * b)


def reconstruction_loss(params: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """sketch-rnn's ``L_R = L_s + L_p`` (see ``reconstruction_terms``), an fp32 scalar."""
    offset, pen = reconstruction_terms(params, target, lengths)
    return offset + pen


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) averaged over batch and latent size (sketch-rnn eq. 10):

        L_KL = -1 / (2 Nz) * sum (1 + log sigma^2 - mu^2 - sigma^2),  then the mean over the batch.
    """
    mu = mu.float()
    logvar = logvar.float()
    return -0.5 * torch.mean(1 + logvar - mu * mu - torch.exp(logvar))


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor, kl_min: float) -> torch.Tensor:
    """sketch-rnn's KL term with its floor (free bits): ``max(L_KL, kl_min)``."""
    return torch.clamp(kl_divergence(mu, logvar), min=kl_min)


def draw(params: torch.Tensor, noise: torch.Tensor | None, *, temperature: float,
         greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """THE mixture sampler step: ``params (n, 6M+3)`` and pre-drawn ``noise (n, M+5)`` -> ``(d (n, 2), pen (n,))``.

    ``noise`` per row: M + 3 standard Gumbel draws (the components, then the pen states) and 2 standard normals;
    where it comes from is the caller's choice (one stream per sketch in ``sketchheal.inference.sample``, a torch
    generator in :func:`sample_step`). Temperature tau as published (sketch-rnn): weights and pen probabilities
    ``softmax(log p / tau)`` (Gumbel-max of ``logits / tau``), each Gaussian's covariance times tau (sigma times
    sqrt(tau)). ``greedy`` (``noise`` may be None): the most likely component and pen state, the component's mean.
    ``pen``: int64 in {0 down, 1 up, 2 end}.
    """
    n = params.shape[0]
    m = num_mixtures(params)
    mix = params[:, : 6 * m].reshape(n, m, 6)  # per component: pi_logit, mu_x, mu_y, log_sx, log_sy, rho_raw
    pen_logits = params[:, 6 * m:]  # (n, 3)
    if greedy:
        k = mix[:, :, 0].argmax(1)
        pen = pen_logits.argmax(1)
    else:
        inv_tau = 1.0 / temperature
        k = torch.add(noise[:, :m], mix[:, :, 0], alpha=inv_tau).argmax(1)  # Gumbel-max of softmax(l / tau)
        pen = torch.add(noise[:, m: m + 3], pen_logits, alpha=inv_tau).argmax(1)
    sel = mix.gather(1, k.view(n, 1, 1).expand(n, 1, 6)).squeeze(1)  # (n, 6): the chosen component
    mean = sel[:, 1:3]
    if greedy:
        return mean, pen
    sigma = sel[:, 3:5].exp().mul_(math.sqrt(temperature))  # covariance * tau  <=>  sigma * sqrt(tau)
    rho_raw = sel[:, 5]
    e0, e1 = noise[:, m + 3], noise[:, m + 4]
    # Cholesky factor of [[1, rho], [rho, 1]]: (e0, rho e0 + sqrt(1 - rho^2) e1), rho = tanh(rho_raw), and
    # sqrt(1 - tanh^2 x) = 1 / cosh x (exact, and 0 where cosh overflows)
    ey = torch.addcdiv(rho_raw.tanh().mul_(e0), e1, rho_raw.cosh())
    return torch.addcmul(mean, sigma, torch.stack([e0, ey], 1)), pen


def sample_step(params: torch.Tensor, *, temperature: float, generator: torch.Generator | None = None,
                greedy: bool = False) -> torch.Tensor:
    """Draw one stroke-5 row per sketch from ``params (B, 6M+3)`` -> ``(B, 5)`` = ``(dx, dy, one-hot pen)``.

    :func:`draw` with its noise from ``generator`` (torch's global generator by default). ``greedy=True`` (or
    ``temperature=0``) takes the most likely component and pen state and returns that component's mean.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    params = params.float()
    greedy = greedy or temperature == 0
    noise = None
    if not greedy:
        b, m = params.shape[0], num_mixtures(params)
        u = torch.rand((b, m + 3), generator=generator, device=params.device, dtype=params.dtype)
        gumbel = -torch.log(-torch.log(u.clamp(min=torch.finfo(u.dtype).tiny)))
        normal = torch.randn((b, 2), generator=generator, device=params.device, dtype=params.dtype)
        noise = torch.cat([gumbel, normal], 1)  # (B, M + 5)
    d, pen = draw(params, noise, temperature=temperature, greedy=greedy)
    return torch.cat([d, F.one_hot(pen, 3).to(params.dtype)], dim=-1)
