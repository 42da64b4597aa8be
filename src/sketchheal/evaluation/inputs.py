"""What each model is shown in an evaluation: the corrupted inputs of every erase kind and mask level, and the
renderings of the healed sketches (DataLoader datasets, so rendering runs in worker processes).

Two erase kinds (``EvalConfig.erase``):

- ``"raster"`` (the published protocol): the patch squares of ``sketchheal.sketch.render.corrupt`` erased from the
  rendered image; the model sees that image. The vector input (what completion keeps and the ink measures call the
  input) is the original's strokes with the same squares cut out (``sketchheal.sketch.erase``: the same candidates,
  the same uniforms, a side of 1/5 of the longer side).
- ``"vector"``: the squares erased from the vector strokes (``sketchheal.sketch.erase``), as when healing an
  ndjson file; the model sees the rendering of what is left (its own bounding box), as ``sketchheal heal`` does.

Sketch ``i`` at level ``p`` uses row ``i`` of the evaluation's ``MaskTable`` for both kinds, so both erase the
same candidates.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from sketchheal.data.dataset import make_loader
from sketchheal.sketch.erase import erase
from sketchheal.sketch.render import blank, corrupt, render_or_blank
from sketchheal.sketch.strokes import polylines_to_stroke3, stroke3_to_polylines


def combos(erase_kinds: Sequence[str], ps: Sequence[float]) -> list[tuple[str, float]]:
    """The (erase kind, mask level) pairs of an evaluation, in this order: kind by kind, p ascending."""
    return [(e, float(p)) for e in erase_kinds for p in ps]


def erased_lines(original: Sequence[np.ndarray], uniforms: np.ndarray, p: float) -> list[np.ndarray]:
    """The input strokes at level ``p`` (both erase kinds): ``original`` (absolute polylines) less the squares
    of the candidates with ``uniforms[k] < p``."""
    return erase(original, p, uniforms=uniforms).lines


def lines_image(lines: Sequence[np.ndarray], size: int, mode: str) -> np.ndarray:
    """The model image of absolute strokes (their own bounding box), blank when nothing is drawable."""
    return render_or_blank(polylines_to_stroke3(lines) if lines else None, size, mode)


class InputImages(torch.utils.data.Dataset):
    """Item i = clean image (1,N,N) and corrupted images (C,1,N,N) of sketch ``ids[i]``, one per (erase, p) of
    ``pairs``; with a classifier of another size/mode also its clean (1,M,M) and corrupted (C,1,M,M) images; plus
    the erased fractions of the patch candidates (C,)."""

    def __init__(self, sketches, ids: np.ndarray, masks, pairs: Sequence[tuple[str, float]], size: int, mode: str,
                 clf_size: int | None, clf_mode: str | None):
        self.sketches, self.ids, self.masks, self.pairs = sketches, ids, masks, list(pairs)
        self.size, self.mode, self.clf_size, self.clf_mode = size, mode, clf_size, clf_mode

    def __len__(self) -> int:
        return len(self.ids)

    def _images(self, s3: np.ndarray, u: np.ndarray, size: int, mode: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clean, corrupted, erased = render_or_blank(s3, size, mode), [], []
        lines = stroke3_to_polylines(s3)
        for kind, p in self.pairs:
            if kind == "vector":
                e = erase(lines, p, uniforms=u)
                corrupted.append(lines_image(e.lines, size, mode))
                erased.append(float(e.erased.mean()) if e.erased.size else 0.0)
                continue
            try:
                c = corrupt(s3, u, p, size=size, mode=mode)
            except ValueError:  # a sketch the renderer cannot draw (no ink): blank
                corrupted.append(blank(size))
                erased.append(0.0)
                continue
            corrupted.append(c.corrupted)
            erased.append(float(c.erased.mean()) if c.erased.size else 0.0)
        return clean, np.stack(corrupted), np.asarray(erased, np.float32)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sid = int(self.ids[i])
        s3, u = self.sketches[sid], self.masks.uniforms(sid)
        clean, corrupted, erased = self._images(s3, u, self.size, self.mode)
        item = {"clean": torch.from_numpy(clean)[None], "corrupted": torch.from_numpy(corrupted)[:, None],
                "erased": torch.from_numpy(erased)}
        if self.clf_size is not None:
            c_clean, c_corrupted, _ = self._images(s3, u, self.clf_size, self.clf_mode)
            item["clf_clean"] = torch.from_numpy(c_clean)[None]
            item["clf_corrupted"] = torch.from_numpy(c_corrupted)[:, None]
        return item


class HealedImages(torch.utils.data.Dataset):
    """Item i = healed sketch i (unnormalised stroke-3) rendered uncorrupted at the model's (and the classifier's)
    size and mode, the published way (its own bounding box): ``image (1,N,N)`` [+ ``clf_image (1,M,M)``]."""

    def __init__(self, healed: list[np.ndarray], size: int, mode: str, clf_size: int | None,
                 clf_mode: str | None):
        self.healed, self.size, self.mode, self.clf_size, self.clf_mode = healed, size, mode, clf_size, clf_mode

    def __len__(self) -> int:
        return len(self.healed)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"image": torch.from_numpy(render_or_blank(self.healed[i], self.size, self.mode))[None]}
        if self.clf_size is not None:
            item["clf_image"] = torch.from_numpy(render_or_blank(self.healed[i], self.clf_size, self.clf_mode))[None]
        return item


def default_workers() -> int:
    """Rendering workers when none are set: one less than the CPU count, at most 8."""
    return min(8, max(0, (os.cpu_count() or 1) - 1))


def loader(dataset: torch.utils.data.Dataset, batch_size: int, num_workers: int | None
           ) -> torch.utils.data.DataLoader:
    workers = default_workers() if num_workers is None else num_workers
    return make_loader(dataset, batch_size, num_workers=workers, persistent_workers=False)


def progress(iterable, *, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False)
