"""The two healings an evaluation compares, as the product runs them, and the ink measures of one batch.

- **complete** (``sketchheal heal``'s default): :func:`complete_batch` calls
  :func:`sketchheal.inference.complete.complete` exactly as ``sketchheal.heal`` does (``inference/heal.py``,
  ``_complete``): the default ``CompletionParams``, the model's ``domain.json`` for typicality, drawings unlike
  what the model learned completed again with gaps filled only (``residual=False``) when no gap-filler
  reconstructs, added strokes with
  non-finite points dropped; with the gap-filler :func:`gapfill_for` picks (the same rule as ``heal``'s
  ``gapfill=None``). The healed drawing is the input's strokes plus the added ones, in the original's coordinates.
- **redraw** (the published healing): the decoded sketch; for the ink measures it is placed on the original's
  bounding box (:func:`place_redraw`: the frame in which the published rendering draws each sketch fitted to its
  own box), since a redrawn sketch has no coordinates of its own.

The ink measures are :mod:`sketchheal.evaluation.healing` (erased-ink recall, added-ink precision, kept ink at
128 px in the original's frame, 1-px lines, 2 px tolerance).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sketchheal.evaluation.healing import frame_of, ink_counts
from sketchheal.inference.complete import CompletionParams, complete, load_gapfill, model_view, view_of_part
from sketchheal.inference.loading import load_model
from sketchheal.utils.paths import BUNDLED_MODEL_DIR


def gapfill_for(setting: str, healer: Any) -> tuple[Any, str | None]:
    """The gap-filler completion uses with ``healer`` and its description: ``setting`` "auto" = the bundled
    gap-filler with the bundled model when one ships (else none, the model reconstructs itself), "none", or a
    path (release folder or checkpoint)."""
    if setting == "none":
        return None, None
    if setting in ("", "auto"):
        source = getattr(healer, "source", "") or ""
        if source and Path(source).resolve() == BUNDLED_MODEL_DIR.resolve():
            g = load_gapfill(device=str(healer.device))
            return g, (None if g is None else "bundled")
        return None, None
    return load_model(setting, device=str(healer.device)), setting


def complete_batch(healer: Any, inputs: Sequence[Sequence[np.ndarray]], originals: Sequence[Sequence[np.ndarray]],
                   images: np.ndarray | None, *, gapfill: Any, domain: Any, batch_size: int,
                   params: CompletionParams | None = None, scorer: Any = "auto",
                   ordered: bool | Sequence[bool] = True) -> tuple[list[list[np.ndarray]], list[bool | None]]:
    """Complete one batch as ``sketchheal.heal`` does; returns the added strokes of each drawing and whether it
    was typical (None: the model has no calibration).

    inputs: the input strokes (absolute, the original's coordinates); originals: the complete sketches.
    images ``(B, N, N)``: the raster corruption the model sees instead of the rendering of ``inputs`` (None:
    the rendering, as for a vector input); its frame is the original's, so every input point is placed where the
    original's rendering has it (:func:`sketchheal.inference.complete.view_of_part`). params, scorer, ordered:
    as :func:`~sketchheal.inference.complete.complete` (defaults: heal's).
    """
    size, mode = int(healer.image_size), str(healer.render_mode)
    if images is None:
        views = [model_view(d, size, mode) for d in inputs]
    else:
        views = []
        for d, o, img in zip(inputs, originals, images):
            whole = model_view(o, size, mode)
            views.append(None if whole is None else view_of_part(d, whole, img))
    params = params or CompletionParams()
    order = [bool(ordered)] * len(inputs) if isinstance(ordered, (bool, np.bool_)) else list(ordered)
    comps = complete(healer, inputs, gapfill=gapfill, params=params, views=views, images=images,
                     batch_size=batch_size, domain=domain, scorer=scorer, ordered=order)
    unlike = [i for i, c in enumerate(comps) if c.typicality is not None and not c.typicality["typical"]]
    if params.residual and unlike and gapfill is None:  # as heal: gaps only when the model reconstructs itself
        again = complete(healer, [inputs[i] for i in unlike], gapfill=gapfill, views=[views[i] for i in unlike],
                         images=None if images is None else np.asarray(images)[unlike],
                         params=dataclasses.replace(params, residual=False), batch_size=batch_size,
                         scorer=scorer, ordered=[order[i] for i in unlike])
        for i, c in zip(unlike, again):
            comps[i].added_lines = c.added_lines
    added = [[a for a in c.added_lines if len(a) and np.isfinite(a).all()] for c in comps]
    typical = [None if c.typicality is None else bool(c.typicality["typical"]) for c in comps]
    return added, typical


def place_redraw(lines: Sequence[np.ndarray], original: Sequence[np.ndarray]) -> list[np.ndarray]:
    """A redrawn sketch's strokes placed on the bounding box of ``original`` (each fitted to the 128-px frame the
    published rendering gives it; nothing when the redraw is empty)."""
    lines = [np.asarray(x, np.float64).reshape(-1, 2) for x in lines if len(x)]
    if not lines or not any(len(x) for x in original):
        return []
    fa, fb = frame_of(lines), frame_of(original)
    return [fb.invert(fa.apply(x)) for x in lines]


def ink_batch(originals: Sequence[Sequence[np.ndarray]], inputs: Sequence[Sequence[np.ndarray]],
              healed: Sequence[Sequence[np.ndarray]]) -> list[dict[str, int]]:
    """:func:`sketchheal.evaluation.healing.ink_counts` of each case (the original's frame, 128 px)."""
    out = []
    for o, i, h in zip(originals, inputs, healed):
        try:
            out.append(ink_counts(o, i, h))
        except ValueError:  # an original with no points: nothing to measure
            out.append({"erased": 0, "erased_hit": 0, "added": 0, "added_hit": 0, "input": 0, "input_kept": 0})
    return out
