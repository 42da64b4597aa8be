"""The encoder's Lmser reconstruction of many images, optionally averaged over mirrored and shifted views.

Completion (:mod:`sketchheal.inference.complete`) reads the gaps of a drawing from ``recons[-1]``, the final
reconstruction of the Lmser loops. Where the encoder has to invent (the erased parts) its guesses carry noise that
depends on where the drawing sits and which way it faces; averaging the reconstructions of a few transformed copies
of the image, each transformed back, keeps what they agree on (test-time augmentation). The views:

- ``mirror``: the image flipped left-right;
- ``flip``: the image flipped upside-down;
- ``turn``: the image turned by 180 degrees (both flips);
- ``shift``: the image moved by (+1, +1) and by (-1, -1) px (two views; paper comes in at the border);
- ``cross``: the same along the other diagonal, (+1, -1) and (-1, +1) px;
- ``transpose``: rows and columns swapped.

Completion's default (``CompletionParams.views``) is ``mirror,flip,turn,shift``: six reconstructions in all.
Measured with completion (``benchmarks/bench_complete.py --sets qd-tune``) each view added precision at equal
recall; ``cross`` and ``transpose`` added nothing beyond these. For drawings of the model's own kind
(``CompletionParams.typical_views``) it is ``mirror,shift,cross``, six views that keep the drawing upright
(``--sets sheep-tune``).

The identity view is always included; the codes (encoder means) are the identity view's.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["RECON_VIEWS", "parse_views", "reconstruct"]

PAPER = -1.0  # the value of blank paper in the model's images (ink +1)


def _shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``images (B, N, N)`` moved by ``(dy, dx)`` px, paper filling the border they leave."""
    out = np.full_like(images, PAPER)
    n = images.shape[-1]
    ys, yd = (slice(0, n - dy), slice(dy, n)) if dy >= 0 else (slice(-dy, n), slice(0, n + dy))
    xs, xd = (slice(0, n - dx), slice(dx, n)) if dx >= 0 else (slice(-dx, n), slice(0, n + dx))
    out[:, yd, xd] = images[:, ys, xs]
    return out


# name -> [(forward transform, inverse transform)] of (B, N, N) arrays
RECON_VIEWS: dict[str, list[tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]]] = {
    "mirror": [(lambda a: a[:, :, ::-1], lambda a: a[:, :, ::-1])],
    "flip": [(lambda a: a[:, ::-1, :], lambda a: a[:, ::-1, :])],
    "turn": [(lambda a: a[:, ::-1, ::-1], lambda a: a[:, ::-1, ::-1])],
    "shift": [(lambda a: _shift(a, 1, 1), lambda a: _shift(a, -1, -1)),
              (lambda a: _shift(a, -1, -1), lambda a: _shift(a, 1, 1))],
    "cross": [(lambda a: _shift(a, 1, -1), lambda a: _shift(a, -1, 1)),
              (lambda a: _shift(a, -1, 1), lambda a: _shift(a, 1, -1))],
    "transpose": [(lambda a: a.transpose(0, 2, 1), lambda a: a.transpose(0, 2, 1))],
}


def parse_views(views: str | Sequence[str]) -> tuple[str, ...]:
    """``"mirror,shift"`` (or a sequence of names) -> ``("mirror", "shift")``; "" / "none" -> ``()``; an unknown
    name is a ``ValueError`` that lists the known ones."""
    names = [v.strip() for v in (views.split(",") if isinstance(views, str) else views)]
    names = [v for v in names if v and v != "none"]
    bad = [v for v in names if v not in RECON_VIEWS]
    if bad:
        raise ValueError(f"unknown reconstruction view {bad[0]!r}; choose from {', '.join(RECON_VIEWS)} "
                         "(comma-separated) or 'none'")
    return tuple(dict.fromkeys(names))


def _one_pass(model: torch.nn.Module, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    device = next(model.parameters()).device
    out, codes = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(images), max(1, batch_size)):
                x = torch.from_numpy(np.ascontiguousarray(images[start: start + batch_size], np.float32))
                enc = model.encode(x[:, None].to(device))
                out.append(enc.recons[-1][:, 0].float().cpu().numpy())  # (b, 1, N, N) -> (b, N, N)
                codes.append(enc.mu.double().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0,) + tuple(images.shape[1:]), np.float32), np.zeros((0, 0))
    return np.concatenate(out, 0), np.concatenate(codes, 0)


def reconstruct(model: torch.nn.Module, images: np.ndarray, batch_size: int = 64,
                views: str | Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Final Lmser reconstructions ``(B, N, N) float32`` of ``images (B, N, N)`` in [-1, 1], averaged over the
    identity and the named ``views`` (module docstring), and the codes (encoder means) ``(B, Nz) float64`` of the
    identity pass."""
    images = np.asarray(images, np.float32)
    recons, codes = _one_pass(model, images, batch_size)
    pairs = [pair for name in parse_views(views) for pair in RECON_VIEWS[name]]
    if not pairs or not len(images):
        return recons, codes
    total = recons.astype(np.float64)
    for forward, back in pairs:
        r, _ = _one_pass(model, np.ascontiguousarray(forward(images)), batch_size)
        total += back(r)
    return (total / (1 + len(pairs))).astype(np.float32), codes
