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


def _gumbel_argmax(log_p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw from softmax(log_p) along the last axis (Gumbel-max: exact, and stable for huge log_p)."""
    u = torch.rand(log_p.shape, generator=generator, device=log_p.device, dtype=log_p.dtype)
    gumbel = -torch.log(-torch.log(u.clamp(min=torch.finfo(u.dtype).tiny)))
    return torch.argmax(log_p + gumbel, dim=-1)


def sample_step(params: torch.Tensor, *, temperature: float, generator: torch.Generator | None = None,
                greedy: bool = False) -> torch.Tensor:
    """Draw one stroke-5 row per sketch from ``params (B, 6M+3)`` -> ``(B, 5)`` = ``(dx, dy, one-hot pen)``.

    Temperature tau as published (sketch-rnn): mixture weights and pen probabilities ``softmax(log p / tau)``, each
    Gaussian's covariance multiplied by tau (sigma by sqrt(tau)). ``greedy=True`` (or ``temperature=0``) takes the
    most likely component and pen state and returns that component's mean.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    params = params.float()
    logits_pi, mu_x, mu_y, log_sx, log_sy, rho, pen_logits = split_params(params)
    if greedy or temperature == 0:
        k = logits_pi.argmax(dim=-1)  # (B,)
        pen = pen_logits.argmax(dim=-1)
    else:
        k = _gumbel_argmax(F.log_softmax(logits_pi, dim=-1) / temperature, generator)
        pen = _gumbel_argmax(F.log_softmax(pen_logits, dim=-1) / temperature, generator)

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, k[:, None]).squeeze(-1)  # (B, M) -> (B,)

    dx, dy = pick(mu_x), pick(mu_y)
    if not (greedy or temperature == 0):
        scale = math.sqrt(temperature)
        sx = torch.exp(pick(log_sx)) * scale
        sy = torch.exp(pick(log_sy)) * scale
        r = pick(rho)
        e = torch.randn((2, params.shape[0]), generator=generator, device=params.device, dtype=params.dtype)
        dx = dx + sx * e[0]
        dy = dy + sy * (r * e[0] + torch.sqrt((1 - r) * (1 + r)) * e[1])  # correlated via a Cholesky factor
    return torch.cat([dx[:, None], dy[:, None], F.one_hot(pen, 3).to(params.dtype)], dim=-1)
