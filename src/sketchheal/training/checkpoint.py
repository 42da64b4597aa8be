"""Training checkpoints: what one holds, the RNG states that make a resume bit-exact, and the atomic save.

A checkpoint (``ckpt_last.pt``, ``ckpt_step<N>.pt``) is a plain dict of tensors, numbers, strings, lists and dicts,
so :func:`sketchheal.model.weights.read_checkpoint` reads it with ``weights_only=True``:

    checkpoint_version, version   the layout (``CHECKPOINT_VERSION``) and the sketchheal that wrote it
    model, optimizer              state dicts (the bare model's, never a DDP wrapper's)
    step, lr, train_state         optimiser steps taken, the learning rate of the next, ``TrainState`` fields
    rng                           :func:`rng_state` (a list, one per rank, under DDP)
    config                        the run's full ``Config.to_dict()``
    scale, max_seq_len, categories  what healing needs (``sketchheal heal --checkpoint``, ``export``)

A checkpoint is written only after at least one optimiser step (never random weights that look like a model) and
only with finite weights.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sketchheal.model.weights import CHECKPOINT_VERSION
from sketchheal.utils.fileio import atomic_path

LAST = "ckpt_last.pt"


def step_name(step: int) -> str:
    """The file name of the checkpoint kept at ``step``."""
    return f"ckpt_step{step:07d}.pt"


@dataclass
class TrainState:
    """The loop's counters, saved in every checkpoint (``train_state``)."""

    step: int = 0
    lr_scale: float = 1.0      # lowered by NaN roll-backs
    bad_steps: int = 0         # non-finite steps skipped in total
    bad_in_a_row: int = 0
    rollbacks: int = 0
    best_valid: float = math.inf

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rng_state() -> dict[str, Any]:
    """Every RNG state, as plain numbers and tensors (a checkpoint then loads with ``weights_only=True``)."""
    _, key, pos, has_gauss, gauss = np.random.get_state()  # ("MT19937", key (624,) uint32, pos, has_gauss, gauss)
    numpy_state = {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                   "gauss": float(gauss)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (or the numpy-tuple form of checkpoints written before it)."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = ("MT19937", numpy_state["key"].numpy().astype(np.uint32), numpy_state["pos"],
                       numpy_state["has_gauss"], numpy_state["gauss"])
    np.random.set_state(numpy_state)  # a tuple in checkpoints written before the plain form
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary name beside ``path``, then rename: a killed save leaves ``path`` as it was
    (and a ``.ckpt_*.tmp*`` file that the next run in the folder removes)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


__all__ = ["CHECKPOINT_VERSION", "LAST", "TrainState", "rng_state", "save_checkpoint", "set_rng_state", "step_name"]
