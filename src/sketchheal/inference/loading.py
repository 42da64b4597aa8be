"""Load a healing model: a release folder, a training checkpoint or run folder, or the bundled model -> a Healer.

Release folders and checkpoints are read by ``sketchheal.model.weights`` (safetensors + JSON, and ``torch.load``
with ``weights_only=True``): loading a model never runs code from its files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sketchheal.config import Config
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import (
    CHECKPOINT_NAME, CONFIG_NAME, load_release, load_state_dict_checked, read_checkpoint, strip_wrapper_prefixes,
)
from sketchheal.utils.devices import pick_device
from sketchheal.utils.paths import BUNDLED_MODEL_DIR

__all__ = ["Healer", "as_healer", "load_model"]


@dataclass
class Healer:
    """A loaded model plus what healing needs to know about it.

    model: ``LmserPix2Seq`` in eval mode on ``device``. scale: offset normalisation (healed ``dx, dy`` are
    multiplied by it). max_seq_len: the longest sketch the model was trained on (sampling stops there).
    image_size / render_mode: the input images it was trained on. source: where it was loaded from.
    """

    model: torch.nn.Module
    scale: float
    max_seq_len: int
    image_size: int
    render_mode: str
    device: torch.device
    categories: list[str] = field(default_factory=list)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def load_model(path: str | os.PathLike | None = None, device: str | torch.device | None = None) -> Healer:
    """Load a model for healing.

    ``path``: ``None`` = the bundled release (``sketchheal.utils.paths.BUNDLED_MODEL_DIR``); a release directory
    (``config.json`` + ``model.safetensors``, as ``sketchheal export`` writes); a training checkpoint file
    (``sketchheal train``'s ``ckpt_*.pt``) or a training run directory holding ``ckpt_last.pt``.
    ``device``: ``None`` / ``"auto"`` (CUDA, then Apple MPS, then CPU), or ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    Raises ``FileNotFoundError`` / ``ValueError`` (naming the path) when nothing loadable is there.
    """
    try:
        dev = pick_device(device)
    except RuntimeError as e:  # torch's own error for a device name it does not know
        raise ValueError(f"unknown device {device!r} ({e}); use cpu, cuda, cuda:N, mps or auto") from None
    if path is None:
        if not (BUNDLED_MODEL_DIR / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"no bundled model at {BUNDLED_MODEL_DIR} (this installation ships without "
                                    "weights); pass a release directory or a training checkpoint "
                                    "(--checkpoint PATH)")
        path = BUNDLED_MODEL_DIR
    path = Path(path)
    # a run directory also holds a config.json (the run's), so the checkpoint decides first
    if path.is_file() or (path.is_dir() and (path / CHECKPOINT_NAME).is_file()):
        healer = _load_checkpoint(path)
    elif path.is_dir() and (path / CONFIG_NAME).is_file():
        healer = _load_release(path)
    elif path.is_dir():
        raise FileNotFoundError(f"{path}: neither a release directory (config.json + model.safetensors) nor a "
                                "training run (ckpt_last.pt)")
    else:
        raise FileNotFoundError(f"{path}: no such model directory or checkpoint file")
    healer.model.to(dev).eval()
    healer.device = dev
    return healer


def as_healer(model: Healer | str | os.PathLike | None) -> Healer:
    """``model`` itself when it is a :class:`Healer`, else :func:`load_model` of it (None: the bundled model)."""
    return model if isinstance(model, Healer) else load_model(model)


def _load_release(path: Path) -> Healer:
    model, meta = load_release(path)
    extra = meta.get("extra") or {}
    data = extra.get("data") if isinstance(extra.get("data"), dict) else {}
    mode = extra.get("render_mode") or data.get("render_mode") or "reference"
    return Healer(model=model, scale=float(meta["scale"]), max_seq_len=int(meta["max_seq_len"]),
                  image_size=int(model.config.image_size), render_mode=str(mode), device=torch.device("cpu"),
                  categories=list(meta.get("categories", [])), source=str(path), meta=meta)


def _load_checkpoint(path: Path) -> Healer:
    ckpt = read_checkpoint(path)
    missing = [k for k in ("scale", "max_seq_len") if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: training checkpoint lacks {missing}; re-save it with `sketchheal train`")
    try:
        cfg = Config.from_dict(ckpt["config"])
        model = LmserPix2Seq(cfg.model)
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: bad config in checkpoint: {e}") from None
    state = strip_wrapper_prefixes(dict(ckpt["model"]))  # DDP / torch.compile wrappers
    load_state_dict_checked(model, state, source=str(path))
    meta = {k: ckpt[k] for k in ("scale", "max_seq_len", "categories", "step", "version") if k in ckpt}
    meta["config"] = cfg.to_dict()
    return Healer(model=model.eval(), scale=float(ckpt["scale"]), max_seq_len=int(ckpt["max_seq_len"]),
                  image_size=int(cfg.model.image_size), render_mode=cfg.data.render_mode,
                  device=torch.device("cpu"), categories=list(ckpt.get("categories", [])), source=str(path),
                  meta=meta)
