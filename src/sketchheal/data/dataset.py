"""Training / evaluation items (corrupted image, clean image, normalised stroke-5 target; or a plain rendering and
its label for the classifier) and :func:`make_loader`, the one DataLoader builder of the package.

Masks are a pure function of ``(seed, epoch, index)`` (training) or of a fixed :class:`~sketchheal.sketch.masks.MaskTable`
row (evaluation), never of the worker that renders the item or of the order of requests, so runs are reproducible
with any ``num_workers`` and under DDP. The epoch lives in shared memory: :meth:`HealingDataset.set_epoch` reaches
DataLoader workers that are already running (``persistent_workers``).

Workers do not copy heavy Python objects: a :class:`~sketchheal.sketch.io.SketchSet` is a few numpy arrays (shared
copy-on-write after ``fork``), and a plain list of arrays is packed into such arrays once, here.
"""

from __future__ import annotations

import signal
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from sketchheal.sketch.masks import MaskTable
from sketchheal.sketch.render import MAX_PATCHES, MODES, corrupt, render_or_blank
from sketchheal.sketch.strokes import deform as deform_sketch, normalize, to_stroke5


class _PackedSketches:
    """A list of stroke-3 arrays packed into ``points (total, 3) float32`` + ``offsets (n + 1,) int64``."""

    def __init__(self, sketches: Sequence[np.ndarray], labels: np.ndarray | None = None) -> None:
        arrays = [np.asarray(s, dtype=np.float32) for s in sketches]
        for k, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[1] != 3:
                raise ValueError(f"sketch {k}: expected a stroke-3 array of shape (n, 3), got {a.shape}")
        self.offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in arrays], out=self.offsets[1:])
        self.points = np.concatenate(arrays) if arrays else np.zeros((0, 3), np.float32)
        self.labels = np.zeros(len(arrays), np.int64) if labels is None else np.asarray(labels, np.int64)
        if self.labels.shape != (len(arrays),):
            raise ValueError(f"labels must have shape ({len(arrays)},), got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.points[self.offsets[i]:self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _as_sketch_source(sketches: Any) -> Any:
    """A SketchSet-like object (``len``, ``[i]``, ``.labels``) is used as is; a list/tuple of arrays is packed."""
    if isinstance(sketches, (list, tuple)):
        return _PackedSketches(sketches)
    if not (hasattr(sketches, "__len__") and hasattr(sketches, "__getitem__")):
        raise TypeError(f"sketches must be a SketchSet or a list of stroke-3 arrays, not {type(sketches).__name__}")
    return sketches


class HealingDataset(Dataset):
    """Item ``i`` of a sketch collection as tensors for training or evaluation.

    Args:
        sketches: a :class:`~sketchheal.sketch.io.SketchSet` (or anything with ``len``, ``[i] -> (n, 3)`` stroke-3 and
            optionally ``.labels``), or a list of stroke-3 arrays. Offsets are unnormalised.
        scale: the training split's std of ``dx, dy`` (``data.compute_scale``); the target is divided by it.
        target_size: > 0 resizes each target so that its longer side is this (``model.target_size``) before the
            division; ``scale`` must then come from ``compute_scale(train, size=target_size)``. 0 = size as drawn.
        mask_prob_max: > mask_prob: each item draws its erase probability from U(mask_prob, mask_prob_max).
        point_erase: the share of items whose squares erase the points inside them rather than the pixels
            (:func:`~sketchheal.sketch.render.corrupt`, ``erasure="points"``: a segment with an end inside a square
            goes whole), drawn per item from the same stream as ``mask_prob_max``. 0 = the published corruption.
        deform: ``(rotate, scale, jitter)`` for :func:`sketchheal.sketch.strokes.deform`: the images are drawn from a
            deformed copy, the target stays the sketch as drawn. ``None`` = no deformation.
            The draws of both come from ``(seed, epoch, index)`` (a stream apart from the masks' uniforms);
            neither goes with a ``mask_table``.
        max_len: ``Nmax``; targets are padded to ``max_len + 1`` rows. Longer sketches raise ValueError.
        image_size: side ``N`` of the images.
        render_mode: ``"reference"`` (published pixels) or ``"fast"``.
        mask_prob: probability that each patch candidate is erased.
        seed: with ``epoch`` and the index, seeds the per-item mask (ignored when ``mask_table`` is given).
        mask_table: fixed uniforms per sketch (evaluation); row ``i`` corrupts sketch ``i``.
        max_patches: candidates per sketch (the table's column count when ``mask_table`` is given).

    Item (a dict of tensors, ``default_collate`` stacks them):
        ``corrupted (1, N, N) float32``, ``clean (1, N, N) float32`` in [-1, 1] (ink +1);
        ``strokes (max_len + 1, 5) float32`` normalised stroke-5; ``length`` int64 (points in the sketch);
        ``label`` int64; ``index`` int64.
    """

    def __init__(
        self,
        sketches: Any,
        *,
        scale: float,
        max_len: int,
        image_size: int = 128,
        render_mode: str = "reference",
        mask_prob: float = 0.1,
        seed: int = 0,
        mask_table: MaskTable | None = None,
        max_patches: int = MAX_PATCHES,
        target_size: float = 0.0,
        mask_prob_max: float = 0.0,
        deform: tuple[float, float, float] | None = None,
        point_erase: float = 0.0,
    ) -> None:
        self.sketches = _as_sketch_source(sketches)
        n = len(self.sketches)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number (the training split's std), got {scale!r}")
        if int(max_len) != max_len or max_len < 1:
            raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
        if not (np.isfinite(target_size) and target_size >= 0):
            raise ValueError(f"target_size must be >= 0 (0 = size as drawn), got {target_size!r}")
        if render_mode not in MODES:
            raise ValueError(f"unknown render mode {render_mode!r}; choose one of {MODES}")
        if not 0.0 <= mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
        if int(image_size) != image_size or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        lengths = getattr(self.sketches, "lengths", None)
        if lengths is not None and len(lengths) and int(np.max(lengths)) > max_len:
            worst = int(np.argmax(lengths))
            raise ValueError(f"sketch {worst} has {int(lengths[worst])} points, more than max_len={max_len}; "
                             "load the data with max_seq_len <= max_len or raise max_len")
        if mask_prob_max and not mask_prob <= mask_prob_max <= 1.0:
            raise ValueError(f"mask_prob_max must be 0 (off) or in [mask_prob={mask_prob}, 1], got {mask_prob_max}")
        if not 0.0 <= point_erase <= 1.0:
            raise ValueError(f"point_erase must be in [0, 1], got {point_erase}")
        if deform is not None:
            deform = tuple(float(v) for v in deform)
            if len(deform) != 3:
                raise ValueError(f"deform must be (rotate, scale, jitter), got {deform!r}")
            _check_deform(deform)
            if not any(deform):
                deform = None
        if mask_table is not None and (mask_prob_max or deform is not None or point_erase):
            raise ValueError("mask_prob_max, point_erase and deform are for training; a mask_table fixes the masks "
                             "of an evaluation")
        if mask_table is not None:
            if len(mask_table) < n:
                raise ValueError(f"mask table has {len(mask_table)} rows for {n} sketches; "
                                 "build it with MaskTable(len(sketches), seed)")
            max_patches = mask_table.max_patches
        labels = getattr(self.sketches, "labels", None)
        self.labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels).astype(np.int64)
        self.scale = float(scale)
        self.target_size = float(target_size)
        self.mask_prob_max = float(mask_prob_max)
        self.point_erase = float(point_erase)
        self.deform = deform
        self.max_len = int(max_len)
        self.image_size = int(image_size)
        self.render_mode = render_mode
        self.mask_prob = float(mask_prob)
        self.seed = int(seed)
        self.mask_table = mask_table
        self.max_patches = int(max_patches)
        # Shared memory: set_epoch() in the main process is seen by running (persistent) workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.sketches)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Masks of epoch ``epoch`` from now on (call before iterating a DataLoader over this dataset)."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self._epoch.fill_(int(epoch))

    def uniforms(self, i: int, epoch: int | None = None) -> np.ndarray:
        """The ``(max_patches,)`` uniforms that corrupt item ``i``: the table row, else drawn from (seed, epoch, i)."""
        if self.mask_table is not None:
            return self.mask_table.uniforms(i)
        e = self.epoch if epoch is None else int(epoch)
        return np.random.default_rng([self.seed, e, int(i)]).random(self.max_patches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} sketches")
        i = int(i) % n
        s3 = np.asarray(self.sketches[i], dtype=np.float32)
        p, drawn, erasure = self.mask_prob, s3, "pixels"
        if self.mask_prob_max or self.deform is not None or self.point_erase:
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])  # apart from the masks' stream
            if self.mask_prob_max:
                p = float(rng.uniform(self.mask_prob, self.mask_prob_max))
            if self.point_erase and rng.random() < self.point_erase:
                erasure = "points"
            if self.deform is not None:
                rotate, scale, jitter = self.deform
                drawn = deform_sketch(s3, rng, rotate=rotate, scale=scale, jitter=jitter)
        try:
            # the clean image is the drawn (deformed) sketch too: the Lmser block reconstructs what it sees
            c = corrupt(drawn, self.uniforms(i), p, size=self.image_size, mode=self.render_mode,
                        max_patches=self.max_patches, erasure=erasure)
        except ValueError as e:
            raise ValueError(f"sketch {i}: {e}") from None
        strokes = to_stroke5(normalize(s3, self.scale, self.target_size), self.max_len)
        return {
            "corrupted": torch.from_numpy(c.corrupted)[None],
            "clean": torch.from_numpy(c.clean)[None],
            "strokes": torch.from_numpy(strokes),
            "length": torch.tensor(len(s3), dtype=torch.int64),
            "label": torch.tensor(int(self.labels[i]), dtype=torch.int64),
            "index": torch.tensor(i, dtype=torch.int64),
        }


class RenderedSketches(Dataset):
    """Uncorrupted renderings of a SketchSet (or a list of stroke-3 arrays) for the classifier.

    Item ``i``: ``(image (1, N, N) float32 in [-1, 1], label int)``; an empty or undrawable sketch is a blank image.
    """

    def __init__(self, sketches: Any, labels: Sequence[int] | np.ndarray, *, image_size: int, render_mode: str):
        if render_mode not in MODES:
            raise ValueError(f"unknown render mode {render_mode!r}; choose one of {MODES}")
        self.sketches, self.labels = sketches, np.asarray(labels, dtype=np.int64)
        if len(self.labels) != len(sketches):
            raise ValueError(f"{len(self.labels)} labels for {len(sketches)} sketches")
        self.image_size, self.render_mode = int(image_size), render_mode

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = render_or_blank(self.sketches[i], self.image_size, self.render_mode)  # (N, N)
        return torch.from_numpy(img)[None], int(self.labels[i])


def _check_deform(amounts: tuple[float, ...]) -> None:
    rotate, scale, jitter = amounts
    if rotate < 0 or jitter < 0 or not 0 <= scale < 1 or not all(np.isfinite(amounts)):
        raise ValueError(f"deform needs rotate >= 0, 0 <= scale < 1 and jitter >= 0, got {amounts}")


def worker_init(worker_id: int) -> None:
    """DataLoader worker setup: one OpenCV thread per worker (torch already uses one), no oversubscription; and
    SIGTERM / SIGINT ignored: the main process decides when to stop (a scheduler, ``kill -- -PGID`` or Ctrl-C
    signal the whole process group, and a worker killed under the step being finished and saved would crash it).
    Workers still end with the main process (the DataLoader's watchdog) and when the loader shuts them down."""
    cv2.setNumThreads(1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def fork_safe_opencv() -> None:
    """Make OpenCV single-threaded in this process before DataLoader workers are forked from it.

    OpenCV's thread pool does not survive ``fork``: a worker forked while the parent's pool threads wait on a
    condition variable inherits that variable with waiters that no longer exist, and the first OpenCV call that
    tears the pool down (``cv2.setNumThreads``) or waits on it then blocks forever (seen here as a test that hung
    at random under load, the workers asleep in ``pthread_cond_destroy``). With one thread OpenCV joins its pool
    threads, so a fork inherits nothing held. It costs nothing that matters: the images here are 128 px, and torch
    already uses the cores. Called by :func:`make_loader` whenever it uses workers.
    """
    cv2.setNumThreads(1)


def make_loader(
    dataset: Dataset,
    batch_size: int = 1,
    *,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    sampler: Sampler | None = None,
    batch_sampler: Sampler | None = None,
    pin_memory: bool = False,
    persistent_workers: bool = True,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A DataLoader whose order and worker seeds are reproducible from ``seed``: the one loader builder.

    Shuffling draws from a ``torch.Generator`` seeded with ``seed`` (each pass over the loader continues that
    generator, so epoch ``e`` of a fresh run always sees the same order), and so do the workers' base seeds, so that
    building a loader never touches the global RNG. With a ``sampler`` (e.g. ``DistributedSampler``; call its
    ``set_epoch`` as usual) ``shuffle`` is left to it; with a ``batch_sampler`` (e.g.
    :class:`~sketchheal.data.sampler.EpochBatchSampler`) the batches are its own and ``batch_size``, ``shuffle`` and
    ``drop_last`` are ignored. Workers use one OpenCV thread each and, unless ``persistent_workers=False``, stay
    alive across passes; with workers, OpenCV in this process becomes single-threaded too
    (:func:`fork_safe_opencv`). Call ``dataset.set_epoch(e)`` (a :class:`HealingDataset`) before each pass.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers > 0:
        fork_safe_opencv()
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    if batch_sampler is not None:
        batching: dict[str, Any] = {"batch_sampler": batch_sampler}
    else:
        batching = {"batch_size": batch_size, "shuffle": shuffle if sampler is None else False, "sampler": sampler,
                    "drop_last": drop_last}
    return DataLoader(
        dataset,
        **batching,
        num_workers=num_workers,
        persistent_workers=persistent_workers and num_workers > 0,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        generator=generator,
        worker_init_fn=worker_init if num_workers > 0 else None,
        pin_memory=pin_memory,
    )


__all__ = ["HealingDataset", "RenderedSketches", "fork_safe_opencv", "make_loader", "worker_init"]
