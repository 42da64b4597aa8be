"""Redraw from the code: the published healing.

The (masked) input image is encoded, and its code ``z`` = the encoder mean is decoded into new sketches; nothing of
the input's strokes is kept except through the code. Sample ``k`` of input ``i`` draws from noise key
``(seed, i, k)``, so a result depends neither on the batch size nor on the other inputs of the call. With
``candidates`` > 1 each sample is the best of that many draws by ink agreement with the input image
(:mod:`sketchheal.inference.candidates`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sketchheal.config import HealConfig
from sketchheal.inference.candidates import DEFAULT_CANDIDATES, best_of
from sketchheal.inference.loading import Healer
from sketchheal.inference.sample import encode_images
from sketchheal.sketch.strokes import denormalize

__all__ = ["candidates_of", "redraw"]


def candidates_of(cfg: HealConfig) -> int:
    """The number of candidates ``cfg`` asks for: its ``candidates``, or the default (8 sampling, 1 greedy)."""
    if cfg.candidates is not None:
        return int(cfg.candidates)
    return 1 if cfg.greedy else DEFAULT_CANDIDATES


def redraw(healer: Healer, images: np.ndarray, indices: Sequence[int], cfg: HealConfig) -> list[list[np.ndarray]]:
    """Heal ``images (B, N, N)`` (model inputs, ink +1) -> per image ``cfg.samples`` unnormalised stroke-3 sketches.

    ``indices[b]``: the position of image ``b`` among all inputs of the call (its noise keys are
    ``(cfg.seed, indices[b], k)``).
    """
    b = len(images)
    if len(indices) != b:
        raise ValueError(f"{b} images need {b} indices, got {len(indices)}")
    if b == 0:
        return []
    samples = int(cfg.samples)
    # z = the encoder mean (deterministic code; see sketchheal.inference.sample.heal_images), repeated per sample
    z = encode_images(healer.model, torch.from_numpy(np.asarray(images, np.float32))[:, None], cfg.batch_size,
                      cfg.precision)  # (B, Nz)
    z = z.repeat_interleave(samples, 0)  # (B * samples, Nz)
    keys = [(int(cfg.seed), int(i), k) for i in indices for k in range(samples)]
    flat, _ = best_of(healer.model, z, np.repeat(images, samples, 0), keys, candidates=candidates_of(cfg),
                      scale=healer.scale, size=healer.image_size, mode=healer.render_mode,
                      max_len=healer.max_seq_len, temperature=cfg.temperature, greedy=cfg.greedy,
                      batch_size=cfg.batch_size, precision=cfg.precision)
    healed = [denormalize(s, healer.scale) if len(s) else s for s in flat]
    return [healed[j * samples: (j + 1) * samples] for j in range(b)]
