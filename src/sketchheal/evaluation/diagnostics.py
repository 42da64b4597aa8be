"""Diagnostics reported beside the healing metrics: does the decoder read the code, and how stable are the codes?

``decoder_check``: teacher forcing on the uncorrupted sketches with each sketch's own code and with another's; a
decoder that ignores z predicts both equally well. ``code_stability``: small deformations of the uncorrupted
sketches (rotation, one axis shrunk, a wobble), re-rendered and encoded, retrieving their own originals.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from sketchheal.evaluation.evalset import KS, encode, model_render_mode
from sketchheal.evaluation.metrics import rank_summary, target_ranks, topk_from_ranks
from sketchheal.model.mixture import reconstruction_terms, split_params
from sketchheal.sketch.render import render_or_blank
from sketchheal.sketch.strokes import normalize, rotate, stretch, to_stroke5, wobble


@torch.no_grad()
def decoder_check(healer, sketches, ids: np.ndarray, codes: np.ndarray, *, batch_size: int = 100
                  ) -> dict[str, Any] | None:
    """Does the decoder read the code?  Teacher-forced on the uncorrupted sketches ``ids`` with their own codes
    ``codes (n, Nz)`` (encoder means of the clean images) and again with each sketch given the code of the sketch
    before it (a fixed derangement).

    A decoder that ignores z predicts both equally well (``code_gain`` ~ 0); one that reconstructs its input is
    much worse with another sketch's code. Also the pen states the near-greedy sampler will pick (argmax): the
    share of true pen lifts and of true sketch ends (the first end token) predicted as such with the own code.
    The likelihoods are ``sketchheal.model.mixture.reconstruction_terms`` (sketch-rnn's L_s and L_p), turned from
    means over ``(L+1) B`` steps into nats per point (offsets) and per step (pen).
    Returns None for models without the package's teacher-forcing interface, or with fewer than 2 sketches.
    """
    model = healer.model
    decoder = getattr(model, "decoder", None)
    if decoder is None or not hasattr(model, "decoder_inputs") or len(ids) < 2:
        return None
    dev = next(model.parameters()).device
    n, max_len = len(ids), int(healer.max_seq_len)
    size = float(getattr(getattr(model, "config", None), "target_size", 0.0))  # the targets as trained
    other = np.roll(np.arange(n), 1)  # sketch i reads the code of sketch i - 1
    nll = {"own": 0.0, "other": 0.0}
    pen_nll = {"own": 0.0, "other": 0.0}
    points = steps = lifts = lifts_hit = ends_hit = 0
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(n, start + batch_size))
        s3s = [np.asarray(sketches[int(ids[r])], np.float32) for r in rows]
        strokes = torch.from_numpy(np.stack([to_stroke5(normalize(s, healer.scale, size), max_len)
                                             for s in s3s])).to(dev)  # (B, L+1, 5)
        lengths = torch.tensor([len(s) for s in s3s], device=dev)  # (B,)
        inputs = model.decoder_inputs(strokes)  # (B, L+1, 5)
        real = torch.arange(strokes.shape[1], device=dev)[None] < lengths[:, None]  # (B, L+1) rows that are points
        target_pen = strokes[..., 2:].argmax(-1)  # (B, L+1): 0 down, 1 lifted, 2 end
        n_steps = strokes.shape[0] * strokes.shape[1]
        for which, code_rows in (("own", rows), ("other", other[rows])):
            z = torch.from_numpy(np.ascontiguousarray(codes[code_rows], dtype=np.float32)).to(dev)
            params, _ = decoder(inputs, z)  # (B, L+1, 6M+3)
            offset, pen = reconstruction_terms(params, strokes, lengths)  # means over the (L+1) B steps
            nll[which] += float(offset) * n_steps
            pen_nll[which] += float(pen) * n_steps
            if which == "own":
                picked = split_params(params.float())[-1].argmax(-1)  # (B, L+1) most likely pen state
                lifted = (target_pen == 1) & real
                lifts += int(lifted.sum())
                lifts_hit += int(((picked == 1) & lifted).sum())
                ends_hit += int((picked[torch.arange(len(rows), device=dev), lengths] == 2).sum())
        points += int(lengths.sum())
        steps += n_steps
    own, oth = nll["own"] / points, nll["other"] / points
    return {
        "n": n,
        "offset_nll_own": own, "offset_nll_other": oth, "code_gain": oth - own,
        "pen_nll_own": pen_nll["own"] / steps, "pen_nll_other": pen_nll["other"] / steps,
        "lift_recall": lifts_hit / max(1, lifts), "end_recall": ends_hit / n,
        "note": "teacher forcing on the uncorrupted sketches; nll in nats per point (offsets) and per step (pen); "
                "other = each sketch given the code of another; recalls: argmax pen state with the own code",
    }


def _sign(rng: np.random.Generator) -> float:
    return float(rng.choice([-1.0, 1.0]))


# Small deformations a person would not call another drawing: (name, fn(s3, rng) -> deformed s3). Each sketch draws
# its own sign / axis / noise from its rng.
StabilityTest = tuple[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]
STABILITY_TESTS: tuple[StabilityTest, ...] = (
    ("rotated 5 deg", lambda s, rng: rotate(s, 5.0 * _sign(rng))),
    ("rotated 10 deg", lambda s, rng: rotate(s, 10.0 * _sign(rng))),
    ("one axis x 0.9", lambda s, rng: stretch(s, int(rng.integers(2)), 0.9)),
    ("one axis x 0.8", lambda s, rng: stretch(s, int(rng.integers(2)), 0.8)),
    ("wobble 1 %", lambda s, rng: wobble(s, rng, 0.01)),
    ("wobble 2 %", lambda s, rng: wobble(s, rng, 0.02)),
)


@torch.no_grad()
def code_stability(healer, sketches, ids: np.ndarray, gallery: np.ndarray, *, seed: int = 0,
                   tests: Sequence[StabilityTest] = STABILITY_TESTS, batch_size: int = 100,
                   device: torch.device | None = None) -> list[dict[str, Any]]:
    """How far do small deformations move a sketch's code?  For each test: every uncorrupted sketch ``ids`` is
    deformed (rotated by +-5 or +-10 degrees, one axis shrunk to 0.9 or 0.8, or every offset wobbled by Gaussian
    noise of 1 or 2 % of its longer side), rendered as the model sees its inputs and encoded; the deformed code
    then retrieves its own original among the ``gallery`` codes (the encoder means of the uncorrupted sketches).

    A healed sketch is never exact, so this is the yardstick behind healed retrieval: a representation that a
    small rotation already moves past other sketches cannot retrieve the original from a good but imperfect
    healing either. Each sketch's deformation comes from ``(seed, test, sketch index)``. Returns one dict per test:
    ``name``, ``top1``, ``top10``, ``top50``, ``mean_rank``.
    """
    size, mode = int(healer.image_size), model_render_mode(healer)
    metric_device = device or torch.device("cpu")
    out = []
    for t, (name, fn) in enumerate(tests):
        images = np.stack([render_or_blank(fn(np.asarray(sketches[int(i)], np.float32),
                                              np.random.default_rng([int(seed), t, int(i)])), size, mode)
                           for i in ids])  # (n, N, N)
        codes = np.concatenate([encode(healer.model, torch.from_numpy(images[a:a + batch_size])[:, None]).cpu()
                                .numpy() for a in range(0, len(images), batch_size)])  # (n, Nz)
        ranks, _ = target_ranks(codes, gallery, np.arange(len(codes)), device=metric_device)
        top = topk_from_ranks(ranks, KS)
        out.append({"name": name, **{f"top{k}": top[f"top{k}"] for k in KS},
                    "mean_rank": float(rank_summary(ranks)["mean_rank"])})
    return out
