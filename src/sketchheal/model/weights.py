"""Weights on disk: the one home of reading and writing model files.

Two kinds of file, both read without running code:

- Release folders (``sketchheal export``, ``import-reference``, the bundled model): ``model.safetensors`` (tensors
  only, by construction) + ``config.json`` (plain JSON, checked field by field). :func:`save_release` writes one,
  :func:`load_release` reads one back into an :class:`~sketchheal.model.pix2seq.LmserPix2Seq`.
- Torch ``.pt`` files (training checkpoints, the classifier, the published state dicts): :func:`read_torch_file` is
  the one ``torch.load`` of the package, always with ``weights_only=True``: the unpickler builds tensors, numbers,
  strings, lists, tuples and dicts only, so a file whose pickle would call a function (``os.system``, ...) is refused
  with one line naming the file. :func:`read_checkpoint` adds the checks of a training checkpoint.

Checkpoints written before the RNG state was stored as plain numbers hold numpy's RNG state as a pickled numpy
array, and classifiers written before hold torch's version as a ``TorchVersion`` (a ``str``); for those, and only
inside :func:`read_torch_file`, numpy's array rebuilder, ``ndarray``, the ``dtype`` classes and ``TorchVersion`` are
allowed as well (they build an array from bytes or a string; they call nothing else).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.torch_version import TorchVersion

from sketchheal.config import model_config_from_dict
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.utils.fileio import atomic_path, atomic_write
from sketchheal.utils.version import __version__

__all__ = [
    "CHECKPOINT_VERSION", "CONFIG_NAME", "FORMAT_VERSION", "WEIGHTS_NAME", "load_release",
    "load_state_dict_checked", "read_checkpoint", "read_release_config", "read_torch_file", "save_release",
    "weights_finite",
]

# Release directory layout. Bump FORMAT_VERSION when a change would make older readers misread a release.
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# Training checkpoint layout (the dict ``sketchheal train`` saves). Bump when older readers would misread one.
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "ckpt_last.pt"


# ============================================================================================== release folders


def save_release(model: LmserPix2Seq, directory: str | os.PathLike, *, scale: float, max_seq_len: int,
                 categories: list[str], extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (each atomically); return the folder.

    ``config.json``: ``format_version``, ``sketchheal_version``, ``model`` (ModelConfig fields), ``scale`` (the
    offset normalisation), ``max_seq_len``, ``categories`` and ``extra`` (free-form JSON: training step, data,
    licence). Refuses (``ValueError``) to write non-finite weights or an ``extra`` that is not JSON.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"refusing to save a model with NaN/inf weights in {bad[:5]}"
                         + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
    meta = {
        "format_version": FORMAT_VERSION,
        "sketchheal_version": __version__,
        "model": dataclasses.asdict(model.config),
        "scale": float(scale),
        "max_seq_len": int(max_seq_len),
        "categories": [str(c) for c in categories],
        "extra": dict(extra or {}),
    }
    try:
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"  # before writing anything
    except (TypeError, ValueError) as e:
        raise ValueError(f"save_release: extra must be JSON-serialisable ({e})") from e
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "sketchheal_format_version": str(FORMAT_VERSION)})
    with atomic_write(directory / CONFIG_NAME, "w") as f:
        f.write(text)
    return directory


def load_release(directory: str | os.PathLike,
                 device: str | torch.device | None = None) -> tuple[LmserPix2Seq, dict[str, Any]]:
    """Load a release directory -> ``(model in eval mode, meta)``; ``meta`` is the parsed ``config.json``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such model directory (expected {CONFIG_NAME} + {WEIGHTS_NAME})")
    meta = read_release_config(directory / CONFIG_NAME)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing; a release directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    model = LmserPix2Seq(meta.pop("model_config"))
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{weights}: not a readable safetensors file ({e})") from e
    load_state_dict_checked(model, state, source=str(weights))
    if device is not None:
        model.to(device)
    return model.eval(), meta


def read_release_config(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a release ``config.json``; adds ``model_config`` (a ModelConfig) to the returned dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a release directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: no integer 'format_version'; is this a sketchheal release directory?")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version} was written by a newer sketchheal "
                         f"({meta.get('sketchheal_version', '?')}); this version reads up to {FORMAT_VERSION}. "
                         "Upgrade sketchheal.")
    if version < 1:
        raise ValueError(f"{path}: unknown format_version {version}")
    missing = [k for k in ("model", "scale", "max_seq_len", "categories") if k not in meta]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    if not isinstance(meta["model"], dict):
        raise ValueError(f"{path}: 'model' must be an object of ModelConfig fields")
    try:
        cfg = model_config_from_dict(meta["model"])
        cfg.validate()
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: bad model config: {e}") from e
    meta["model_config"] = cfg
    meta.setdefault("extra", {})
    return meta


# ============================================================================================== state dicts


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """``model.load_state_dict(state)`` with one error that lists every missing, unexpected and mis-shaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if shapes:
            parts.append(f"shape mismatches [{'; '.join(shapes)}]")
        raise ValueError(f"{source}: weights do not fit the model config: " + ", ".join(parts))
    model.load_state_dict(state, strict=True)


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (DDP ``module.``, torch.compile ``_orig_mod.``) shared by every key."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def weights_finite(model: nn.Module) -> bool:
    """True when every floating-point tensor of the state dict is finite (no NaN, no inf)."""
    return all(torch.isfinite(p).all().item() for p in model.state_dict().values() if p.is_floating_point())


# ============================================================================================== torch files


def _legacy_numpy_globals() -> list[Any]:
    """What a pickled ``numpy.random.get_state()`` array needs (checkpoints written before plain RNG state)."""
    rebuild = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array rebuilder, under either module name
    allowed: list[Any] = [(rebuild, f"numpy.{m}.multiarray._reconstruct") for m in ("_core", "core")]
    allowed += [np.ndarray, np.dtype, TorchVersion]  # TorchVersion: a str, in classifiers saved before plain str
    allowed += [type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64)]  # the dtype classes, e.g. UInt32DType
    return allowed


def read_torch_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """The one ``torch.load`` of sketchheal: ``weights_only=True``, errors as one ``ValueError`` naming ``path``.

    Only tensors, numbers, strings, lists, tuples and dicts are built (plus numpy's array rebuilder for the RNG
    state of older checkpoints); a pickle that would call anything else is refused before it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals(_legacy_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        reason = _unpickler_reason(e)
        raise ValueError(f"{path}: is not a sketchheal checkpoint or contains code; sketchheal loads only weights "
                         f"(tensors, numbers, strings, lists, dicts) from .pt files and runs nothing in them"
                         f"{f' ({reason})' if reason else ''}") from None
    except Exception as e:  # truncated zip, not a torch file, ...: torch raises several types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a readable torch file ({first})") from None


def _unpickler_reason(e: Exception) -> str:
    """The useful line of torch's weights-only error (what was refused), without its advice paragraphs."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].split(" Please use", 1)[0].strip()[:200]
    advice = ("Weights only load failed", "Check the documentation", "Please file an issue", "In PyTorch", "(1)",
              "(2)")
    return next((line[:200] for line in lines if not line.startswith(advice)), "")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A ``sketchheal train`` checkpoint (a dict with ``model`` and ``config``); a run directory means its
    ``ckpt_last.pt``. ``FileNotFoundError`` / ``ValueError`` (one line naming the file) otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    ckpt = read_torch_file(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a sketchheal training checkpoint (expected a dict with 'model' and 'config')")
    version = ckpt.get("checkpoint_version", CHECKPOINT_VERSION)
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint format {version} is newer than this sketchheal ({__version__}) "
                         f"reads ({CHECKPOINT_VERSION}); upgrade sketchheal")
    return ckpt
