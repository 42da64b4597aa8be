"""Batched autoregressive sampling from the stroke decoder (CPU and GPU).

All sketches of a batch step through the LSTM together, one stroke-5 row per step, from the start token
``SOS = (0, 0, 1, 0, 0)``; each step feeds ``[s_t ; z]`` and keeps the LSTM state. A sketch ends when its sampled
pen state is ``p_end`` (stroke-5, sketch-rnn convention: the end token is not a point) or after ``max_len`` points.
Finished sketches are masked (their later rows are discarded) and dropped from the batch once enough of them have
finished that the smaller matrix products pay for the re-indexing.

Temperature ``tau`` as published (sketch-rnn): mixture weights and pen probabilities become ``softmax(log p / tau)``
and every Gaussian's covariance is multiplied by ``tau``. ``greedy=True`` takes the most likely component and pen
state and that component's mean (deterministic).

Randomness is drawn per sketch, not per batch: sketch ``r`` of a call uses its own noise stream, keyed by
``seeds[r]`` (or, without ``seeds``, by ``(base, r)`` where ``base`` is one number drawn from ``generator``). A
sketch's result therefore depends only on its code ``z``, its key and the settings, never on which other sketches
share the batch, on ``batch_size`` or on when its neighbours finish (up to floating-point differences between
matrix-product kernels of different batch sizes, which can very rarely flip a near-tie).

For the package's own ``StrokeDecoder`` a fused step is used: the ``z`` part of the LSTM input projection and both
biases are computed once per sketch, and each step is one ``addmm`` over ``[s_t ; h_t]`` plus the LSTM's pointwise
gates and the output head, all into preallocated buffers. Any other decoder that follows the contract
``decoder(inputs (B, L, 5), z, state) -> (params, state)`` is stepped through its ``forward`` (slower, no
batch shrinking).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.mixture import draw
from sketchheal.sketch.strokes import SOS_TOKEN as SOS  # the stroke-5 start-of-sketch row (its one home)

__all__ = ["sample", "encode_images", "heal_images", "SOS"]

PEN_DOWN, PEN_UP, PEN_END = 0, 1, 2
# Drop finished sketches from the batch once at least this fraction of the rows still stepping has finished.
COMPACT_FRACTION = 0.125
PRECISIONS = ("fp32", "bf16")

SeedKey = int | Sequence[int]


# ----------------------------------------------------------------------------------------------------- helpers


def _decoder_of(model: nn.Module) -> nn.Module:
    return model.decoder if hasattr(model, "decoder") else model


def _device_of(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in eval mode (no dropout), restoring its training flag afterwards."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def _row_keys(n: int, generator: torch.Generator | None, seeds: Sequence[SeedKey] | None) -> list[tuple[int, ...]]:
    """One noise key (a tuple of non-negative ints) per sketch."""
    if seeds is not None:
        if len(seeds) != n:
            raise ValueError(f"seeds has {len(seeds)} entries for {n} sketches")
        keys = []
        for s in seeds:
            key = (int(s),) if np.isscalar(s) else tuple(int(v) for v in s)
            if any(v < 0 for v in key):
                raise ValueError(f"seed keys must be non-negative integers, got {s!r}")
            keys.append(key)
        return keys
    device = generator.device if generator is not None else "cpu"
    base = int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
    return [(base, r) for r in range(n)]


def _noise(keys: Sequence[tuple[int, ...]], steps: int, m: int) -> np.ndarray:
    """Per-sketch noise ``(B, steps, M + 5)`` float32: Gumbel noise for the M components and 3 pen states, then two
    standard normals, each sketch from its own ``numpy`` generator seeded with its key."""
    out = np.empty((len(keys), steps, m + 5), np.float32)
    for r, key in enumerate(keys):
        rng = np.random.default_rng(list(key))
        u = np.maximum(rng.random((steps, m + 3)), 1e-12)
        out[r, :, : m + 3] = -np.log(-np.log(u))
        out[r, :, m + 3:] = rng.standard_normal((steps, 2))
    return out


@dataclass
class _Settings:
    max_len: int
    temperature: float
    greedy: bool
    m: int  # mixture components
    check_every: int  # steps between looking for finished sketches (a device sync)


class _RowSampler:
    """Turns ``params (n, 6M+3)`` into the next stroke-5 rows with pre-drawn per-sketch noise
    (:func:`sketchheal.model.mixture.draw`, the one home of the draw)."""

    def __init__(self, cfg: _Settings, noise: torch.Tensor | None, device: torch.device):
        self.cfg = cfg
        self.noise = noise  # (n, steps, M + 5) or None when greedy

    def keep(self, rows: torch.Tensor) -> None:
        if self.noise is not None:
            self.noise = self.noise.index_select(0, rows)

    def __call__(self, params: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``params (n, 6M+3)`` at step ``t`` -> ``(d (n, 2) offsets, pen (n,) int64 in {0, 1, 2})``."""
        noise = None if self.cfg.greedy else self.noise[:, t]  # (n, M + 5)
        return draw(params, noise, temperature=self.cfg.temperature, greedy=self.cfg.greedy)


class _FusedLSTMStepper:
    """One LSTM step + output head of ``StrokeDecoder`` with the z projection hoisted out of the loop.

    gates_t = W_ih [s_t ; z] + b_ih + W_hh h + b_hh = [s_t ; h] @ [W_s ; W_hh]^T + (z W_z^T + b_ih + b_hh)
    """

    def __init__(self, decoder: nn.Module, z: torch.Tensor, precision: str):
        lstm: nn.LSTM = decoder.lstm
        hidden = lstm.hidden_size
        w_ih, w_hh = lstm.weight_ih_l0, lstm.weight_hh_l0  # (4H, 5 + Nz), (4H, H)
        self.hidden = hidden
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.w = torch.cat([w_ih[:, :5], w_hh], 1).t().contiguous().to(self.dtype)  # (5 + H, 4H)
        self.zc = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, z, w_ih[:, 5:].t())  # (n, 4H) fp32
        h0, c0 = decoder.initial_state(z)  # (1, n, H) each
        n = z.shape[0]
        self.xh = torch.empty(n, 5 + hidden, device=z.device, dtype=torch.float32)  # [s_t ; h_t]
        self.xh[:, :5] = torch.tensor(SOS, device=z.device)
        self.xh[:, 5:] = h0[0]
        self.c = c0[0].float().contiguous()
        self.eye3 = torch.eye(3, device=z.device)
        self.head_w = decoder.fc_params.weight.t().contiguous()  # (H, 6M + 3)
        self.head_b = decoder.fc_params.bias

    def keep(self, rows: torch.Tensor) -> None:
        self.zc = self.zc.index_select(0, rows)
        self.xh = self.xh.index_select(0, rows)
        self.c = self.c.index_select(0, rows)

    def step(self, d: torch.Tensor | None, pen: torch.Tensor | None) -> torch.Tensor:
        """Feed the rows sampled last (offsets ``d (n, 2)``, pen states ``pen (n,)``; ``None`` = the SOS already in
        place) -> ``params (n, 6M+3)``."""
        hsz = self.hidden
        if d is not None:
            self.xh[:, :2] = d
            self.xh[:, 2:5] = self.eye3[pen]
        if self.dtype == torch.float32:
            gates = torch.addmm(self.zc, self.xh, self.w)  # (n, 4H): i, f, g, o
        else:
            gates = torch.mm(self.xh.to(self.dtype), self.w).float().add_(self.zc)
        sig = gates.sigmoid()
        i, f, o = sig[:, :hsz], sig[:, hsz: 2 * hsz], sig[:, 3 * hsz:]
        self.c = torch.addcmul(f * self.c, i, gates[:, 2 * hsz: 3 * hsz].tanh())
        h = self.xh[:, 5:]
        torch.mul(o, self.c.tanh(), out=h)
        return torch.addmm(self.head_b, h, self.head_w)


class _GenericStepper:
    """Steps any contract-following decoder through ``forward`` one row at a time (no batch shrinking)."""

    def __init__(self, decoder: nn.Module, z: torch.Tensor):
        self.decoder = decoder
        self.z = z
        self.state = decoder.initial_state(z)
        self.x = torch.tensor(SOS, device=z.device).expand(z.shape[0], 1, 5).contiguous()

    def keep(self, rows: torch.Tensor) -> None:  # pragma: no cover - never called (can_compact is False)
        raise NotImplementedError

    def step(self, d: torch.Tensor | None, pen: torch.Tensor | None) -> torch.Tensor:
        if d is not None:
            self.x = torch.cat([d, torch.nn.functional.one_hot(pen, 3).to(d.dtype)], 1)[:, None, :]
        params, self.state = self.decoder(self.x, self.z, self.state)
        return params[:, 0].float()


def _fused_ok(decoder: nn.Module) -> bool:
    """Whether ``decoder`` is the package's ``StrokeDecoder`` with the single-layer LSTM the fused step assumes."""
    lstm = getattr(decoder, "lstm", None)
    return (type(decoder) is StrokeDecoder and isinstance(lstm, nn.LSTM) and lstm.num_layers == 1
            and not lstm.bidirectional and lstm.bias and lstm.proj_size == 0 and lstm.batch_first
            and isinstance(getattr(decoder, "fc_params", None), nn.Linear))


# ----------------------------------------------------------------------------------------------------- sampling


def sample(model: nn.Module, z: torch.Tensor, *, max_len: int, temperature: float = 0.1, greedy: bool = False,
           generator: torch.Generator | None = None, seeds: Sequence[SeedKey] | None = None,
           batch_size: int | None = None, precision: str = "fp32") -> list[np.ndarray]:
    """Sample one sketch per latent code.

    Args:
        model: an ``LmserPix2Seq`` (its ``decoder`` is used) or a decoder itself.
        z: ``(B, Nz)`` latent codes (moved to the model's device).
        max_len: the most points a sketch may have; a sketch that has not ended by then is cut there.
        temperature: tau > 0 (published evaluation: 0.01; sketch-rnn demos: 0.1 - 1). 0 means greedy.
        greedy: most likely component and pen state, component mean; deterministic, ignores the seeds.
        generator: draws the base of the per-sketch noise keys (default: torch's global generator).
        seeds: explicit per-sketch keys (ints or tuples of ints), overriding ``generator``.
        batch_size: sketches stepped together (default: all ``B``); results do not depend on it.
        precision: ``"fp32"`` (default) or ``"bf16"`` (the LSTM's matrix products in bfloat16, state and head in
            fp32; faster on CPUs with AVX-512 BF16 and on GPUs, results differ slightly from fp32).

    Returns:
        ``B`` normalised stroke-3 arrays ``(n_b, 3)`` float32 (``dx, dy, pen_lifted``; ``n_b <= max_len``, possibly
        0). The last row of a non-empty sketch always has ``pen_lifted = 1``, also when the sketch was cut at
        ``max_len``. Multiply ``dx, dy`` by the model's ``scale`` to denormalise.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    greedy = greedy or temperature == 0
    decoder = _decoder_of(model)
    device = _device_of(decoder)
    z = torch.as_tensor(z)
    if z.ndim != 2:
        raise ValueError(f"z must have shape (B, Nz), got {tuple(z.shape)}")
    z = z.to(device=device, dtype=torch.float32)
    n = z.shape[0]
    keys = None if greedy else _row_keys(n, generator, seeds)
    chunk = max(1, batch_size or n)
    out: list[np.ndarray] = []
    with torch.inference_mode(), _eval_mode(decoder):
        for start in range(0, n, chunk):
            zc = z[start: start + chunk]
            out.extend(_sample_chunk(decoder, zc, None if keys is None else keys[start: start + chunk],
                                     max_len=max_len, temperature=temperature, greedy=greedy, precision=precision))
    return out


def _sample_chunk(decoder: nn.Module, z: torch.Tensor, keys: list[tuple[int, ...]] | None, *, max_len: int,
                  temperature: float, greedy: bool, precision: str) -> list[np.ndarray]:
    """Sample ``z (n, Nz)`` -> ``n`` stroke-3 arrays (see :func:`sample`)."""
    device = z.device
    n = z.shape[0]
    fused = _fused_ok(decoder)
    stepper = _FusedLSTMStepper(decoder, z, precision) if fused else _GenericStepper(decoder, z)
    d = pen = None  # the SOS is already in the stepper's input
    params = stepper.step(d, pen)  # the first step, also tells M when the decoder is generic
    m = (params.shape[1] - 3) // 6
    cfg = _Settings(max_len=max_len, temperature=temperature, greedy=greedy, m=m,
                    check_every=1 if device.type == "cpu" else 8)
    noise = None if keys is None else torch.from_numpy(_noise(keys, max_len, m)).to(device)
    sampler = _RowSampler(cfg, noise, device)
    rows = torch.arange(n, device=device)  # original index of each row still stepping
    done = torch.zeros(n, dtype=torch.bool, device=device)
    segments: list[tuple[torch.Tensor, int, list[torch.Tensor], list[torch.Tensor]]] = [(rows, 0, [], [])]
    for t in range(max_len):
        if t > 0:
            params = stepper.step(d, pen)
        d, pen = sampler(params, t)
        segments[-1][2].append(d)
        segments[-1][3].append(pen)
        if t == max_len - 1:
            break
        ended = pen == PEN_END
        if cfg.check_every == 1 and not bool(ended.any()):  # CPU: nothing new ended, nothing to do
            continue
        done |= ended
        if (t + 1) % cfg.check_every == 0:
            finished = int(done.sum())
            if finished == done.shape[0]:
                break
            if fused and finished >= max(1, COMPACT_FRACTION * done.shape[0]):
                keep = (~done).nonzero().squeeze(1)
                stepper.keep(keep)
                sampler.keep(keep)
                rows, done = rows[keep], done[keep]
                d, pen = d[keep], pen[keep]
                segments.append((rows, t + 1, [], []))
    return _assemble(segments, n, max_len)


def _assemble(segments, n: int, max_len: int) -> list[np.ndarray]:
    """Gather the per-step rows of every segment into ``(n, max_len)`` buffers and cut each sketch at its end."""
    device = segments[0][0].device
    offsets = torch.zeros(n, max_len, 2, device=device)
    pens = torch.full((n, max_len), PEN_END, dtype=torch.int64, device=device)
    for rows, t0, ds, ps in segments:
        if not ds:
            continue
        t1 = t0 + len(ds)
        offsets[rows, t0:t1] = torch.stack(ds, 1).float()
        pens[rows, t0:t1] = torch.stack(ps, 1)
    offsets_np = offsets.cpu().numpy()
    pens_np = pens.cpu().numpy()
    ended = pens_np == PEN_END
    lengths = np.where(ended.any(1), ended.argmax(1), max_len)
    out = []
    for r in range(n):
        k = int(lengths[r])
        s3 = np.empty((k, 3), np.float32)
        s3[:, :2] = offsets_np[r, :k]
        s3[:, 2] = pens_np[r, :k] == PEN_UP
        if k:
            s3[-1, 2] = 1.0
        out.append(s3)
    return out


# ----------------------------------------------------------------------------------------------------- encoding


def encode_images(model: nn.Module, images: torch.Tensor | np.ndarray, batch_size: int = 64,
                  precision: str = "fp32") -> torch.Tensor:
    """Encoder means ``mu (B, Nz)`` float32 (on the model's device) of ``images (B, 1, N, N)`` in [-1, 1], in batches.

    ``precision="bf16"`` runs the encoder under bfloat16 autocast (about 3x faster on CPUs with AVX-512 BF16;
    codes differ from fp32 by ~1-2 % of their magnitude).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (B, 1, N, N), got {tuple(images.shape)}")
    device = _device_of(model)
    mus = []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.inference_mode(), _eval_mode(model), autocast:
        for start in range(0, images.shape[0], max(1, batch_size)):
            batch = images[start: start + batch_size].to(device=device, dtype=torch.float32)
            mus.append(model.encode(batch).mu.float())
    if not mus:
        return torch.zeros(0, getattr(getattr(model, "config", None), "z_size", 0), device=device)
    return torch.cat(mus, 0)


def heal_images(model: nn.Module, images: torch.Tensor | np.ndarray, *, max_len: int, temperature: float = 0.1,
                greedy: bool = False, generator: torch.Generator | None = None,
                seeds: Sequence[SeedKey] | None = None, batch_size: int = 64,
                precision: str = "fp32") -> list[np.ndarray]:
    """Heal ``images (B, 1, N, N)`` (ink +1, background -1): encode, then sample one sketch per image.

    The code is the encoder mean ``z = mu`` (not a draw from N(mu, sigma^2)): the paper trains without a KL term, so
    sigma carries no calibrated meaning, and the mean makes healing deterministic up to the decoder's own sampling
    (it is also the code the published retrieval evaluation uses). Returns ``B`` normalised stroke-3 arrays.
    """
    z = encode_images(model, images, batch_size, precision)
    return sample(model, z, max_len=max_len, temperature=temperature, greedy=greedy, generator=generator,
                  seeds=seeds, batch_size=batch_size, precision=precision)
