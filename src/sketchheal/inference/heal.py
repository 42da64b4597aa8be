"""Heal sketches: any input (image, stroke file, SVG, array) -> the model's input image -> healed vector sketches.

Python::

    import sketchheal
    results = sketchheal.heal(["cat.png", "sheep.npz"], mask=0.3, seed=7)   # the bundled model
    results[0].save("out", formats=("svg", "png"))

Command line::

    sketchheal heal cat.png sheep.npz -o out --mask 0.3 --seed 7

Inputs are turned into the image the model was trained on (``render(mode=...)`` geometry, see
:func:`image_to_input`); the encoder mean of that image is decoded into ``samples`` sketches by
:func:`sketchheal.inference.sample.sample`. Everything is validated and healed before anything is written, and every file is
written atomically, so a bad input never leaves partial output.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from sketchheal.sketch import render as _render
from sketchheal.utils.fileio import atomic_write
from sketchheal.utils.paths import BUNDLED_MODEL_DIR, EXAMPLES_DIR
from sketchheal.sketch.image import array_to_gray, image_to_input, load_image
from sketchheal.sketch.io import IMAGE_SUFFIXES, SKETCH_SUFFIXES
from sketchheal.sketch.strokes import denormalize, polylines_to_stroke3, simplify_polylines
from sketchheal.sketch.svg import strokes_to_svg, svg_to_polylines
from sketchheal.sketch.viz import PREVIEW_SIZE, draw_strokes, model_image_to_u8

__all__ = ["Healer", "HealResult", "load_model", "heal", "image_to_input", "load_image", "read_sketches",
           "draw_strokes", "FORMATS", "register"]

FORMATS = ("svg", "png", "npz", "side")


# ============================================================================================== the model


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


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` / ``"auto"`` -> CUDA when available, else CPU; anything else as torch reads it."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r} ({e}); use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


def load_model(path: str | os.PathLike | None = None, device: str | torch.device | None = None) -> Healer:
    """Load a model for healing.

    ``path``: ``None`` = the bundled release (``sketchheal.utils.paths.BUNDLED_MODEL_DIR``); a release directory
    (``config.json`` + ``model.safetensors``, as ``sketchheal export`` writes); a training checkpoint file
    (``sketchheal train``'s ``ckpt_*.pt``) or a training run directory holding ``ckpt_last.pt``.
    Raises ``FileNotFoundError`` / ``ValueError`` (naming the path) when nothing loadable is there.
    """
    dev = resolve_device(device)
    if path is None:
        if not (BUNDLED_MODEL_DIR / "config.json").is_file():
            raise FileNotFoundError(f"no bundled model at {BUNDLED_MODEL_DIR} (this installation ships without "
                                    "weights); pass a release directory or a training checkpoint "
                                    "(--checkpoint PATH)")
        path = BUNDLED_MODEL_DIR
    path = Path(path)
    # a run directory also holds a config.json (the run's), so the checkpoint decides first
    if path.is_file() or (path.is_dir() and (path / "ckpt_last.pt").is_file()):
        healer = _load_checkpoint(path)
    elif path.is_dir() and (path / "config.json").is_file():
        healer = _load_release(path)
    elif path.is_dir():
        raise FileNotFoundError(f"{path}: neither a release directory (config.json + model.safetensors) nor a "
                                "training run (ckpt_last.pt)")
    else:
        raise FileNotFoundError(f"{path}: no such model directory or checkpoint file")
    healer.model.to(dev).eval()
    healer.device = dev
    return healer


def _load_release(path: Path) -> Healer:
    from sketchheal.model.weights import load_release

    model, meta = load_release(path)
    extra = meta.get("extra") or {}
    data = extra.get("data") if isinstance(extra.get("data"), dict) else {}
    mode = extra.get("render_mode") or data.get("render_mode") or "reference"
    return Healer(model=model, scale=float(meta["scale"]), max_seq_len=int(meta["max_seq_len"]),
                  image_size=int(model.config.image_size), render_mode=str(mode), device=torch.device("cpu"),
                  categories=list(meta.get("categories", [])), source=str(path), meta=meta)


def _load_checkpoint(path: Path) -> Healer:
    from sketchheal.config import Config
    from sketchheal.model.pix2seq import LmserPix2Seq
    from sketchheal.model.weights import load_state_dict_checked, read_checkpoint

    ckpt = read_checkpoint(path)
    missing = [k for k in ("scale", "max_seq_len") if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: training checkpoint lacks {missing}; re-save it with `sketchheal train`")
    try:
        cfg = Config.from_dict(ckpt["config"])
        model = LmserPix2Seq(cfg.model)
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: bad config in checkpoint: {e}") from None
    state = dict(ckpt["model"])
    for prefix in ("module.", "_orig_mod."):  # DDP / torch.compile wrappers
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    load_state_dict_checked(model, state, source=str(path))
    meta = {k: ckpt[k] for k in ("scale", "max_seq_len", "categories", "step", "version") if k in ckpt}
    meta["config"] = cfg.to_dict()
    return Healer(model=model.eval(), scale=float(ckpt["scale"]), max_seq_len=int(ckpt["max_seq_len"]),
                  image_size=int(cfg.model.image_size), render_mode=cfg.data.render_mode,
                  device=torch.device("cpu"), categories=list(ckpt.get("categories", [])), source=str(path),
                  meta=meta)


# ============================================================================================== inputs


@dataclass
class _Input:
    """One sketch to heal: exactly one of ``gray`` (an image, white paper = 1) and ``strokes`` is set."""

    source: str
    name: str
    gray: np.ndarray | None = None  # (H, W) float32 in [0, 1]; ink dark unless the caller inverts
    strokes: np.ndarray | None = None  # (n, 3) float32 stroke-3, unnormalised


def _is_stroke3(a: np.ndarray) -> bool:
    """Arrays of shape ``(n, 3)`` are stroke-3 sketches (validated as such); other shapes are images."""
    return a.ndim == 2 and a.shape[1] == 3


def read_sketches(path: str | os.PathLike, *, split: str = "test", limit: int | None = None) -> list[np.ndarray]:
    """The stroke-3 sketches ``(n, 3) float32`` (unnormalised) of a vector file.

    ``.npz``: a single sketch under ``strokes`` or ``sketch`` (what ``HealResult.save`` writes), or a sketch-rnn
    file with ``train``/``valid``/``test`` arrays of sketches (``split`` picks one; default ``test``).
    ``.ndjson``: QuickDraw drawings, simplified (``[[x...], [y...]]``) or raw (``[[x...], [y...], [t...]]``, put
    through Google's simplification first). ``.svg``: every line of the drawing, scaled so the longer side is 255 and
    simplified like QuickDraw (1-px resampling, RDP 2.0). ``limit`` keeps the first sketches only.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        single = _read_single_npz(path)
        sketches = [single] if single is not None else _load_set(path, split, limit)
    elif suffix == ".ndjson":
        sketches = _load_set(path, split, limit)
    elif suffix == ".svg":
        lines = svg_to_polylines(path)
        if not lines:
            raise ValueError(f"{path}: the SVG has no lines (paths, polylines or lines) to heal")
        sketches = [polylines_to_stroke3(simplify_polylines(lines))]
    else:
        raise ValueError(f"{path}: unknown sketch file type {suffix!r}; use .npz, .ndjson or .svg")
    return sketches[:limit] if limit is not None else sketches


def _read_single_npz(path: Path) -> np.ndarray | None:
    """The sketch stored under ``strokes`` / ``sketch`` in an ``.npz``, None for a sketch-rnn split file."""
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if not hasattr(data, "keys"):
        raise ValueError(f"{path}: a single .npy array, not an .npz archive")
    with data:
        keys = list(data.keys())
        for key in ("strokes", "sketch"):
            if key in keys:
                try:
                    arr = data[key]
                except ValueError as e:
                    raise ValueError(f"{path}[{key}]: not a numeric stroke-3 array ({e})") from None
                return _check_strokes(arr, f"{path}[{key}]")
    if not any(k in keys for k in ("train", "valid", "test")):
        raise ValueError(f"{path}: no 'strokes'/'sketch' array and no sketch-rnn splits (train/valid/test); "
                         f"keys are {keys}")
    return None


def _load_set(path: Path, split: str, limit: int | None) -> list[np.ndarray]:
    """Every sketch of a sketch-rnn ``.npz`` split or a QuickDraw ``.ndjson`` file (``sketchheal.sketch.io``'s reader,
    with no length limit and no clipping: the length is checked against the model later)."""
    from sketchheal.sketch.io import load_file

    sketches = load_file(path, split, max_seq_len=None, clip=None)
    if len(sketches) == 0:
        raise ValueError(f"{path}: no usable sketches (dropped: {dict(sketches.dropped)})")
    n = len(sketches) if limit is None else min(limit, len(sketches))
    return [sketches[i] for i in range(n)]


def _check_strokes(s3: Any, name: str) -> np.ndarray:
    from sketchheal.sketch.strokes import validate

    try:
        a = np.asarray(s3)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: not a stroke-3 array ({e})") from None
    return validate(a, name).astype(np.float32)


def _expand(inputs: Any, *, split: str, limit: int | None) -> list[_Input]:
    """Files and arrays -> one :class:`_Input` per sketch (multi-sketch files give several)."""
    if isinstance(inputs, (str, os.PathLike, np.ndarray)) or torch.is_tensor(inputs):
        inputs = [inputs]
    items: list[_Input] = []
    for j, x in enumerate(inputs):
        if torch.is_tensor(x):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray):
            name = f"input_{j}"
            if _is_stroke3(x):
                items.append(_Input(source=f"array[{j}]", name=name, strokes=_check_strokes(x, f"array[{j}]")))
            else:
                items.append(_Input(source=f"array[{j}]", name=name, gray=array_to_gray(x, f"array[{j}]")))
            continue
        if not isinstance(x, (str, os.PathLike)):
            raise ValueError(f"input {j}: expected a file path or a numpy array, got {type(x).__name__}")
        path = Path(x)
        suffix = path.suffix.lower()
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if path.is_dir():
            raise ValueError(f"{path}: is a directory; pass the files in it")
        if suffix in SKETCH_SUFFIXES:
            sketches = read_sketches(path, split=split, limit=limit)
            for i, s3 in enumerate(sketches):
                multi = len(sketches) > 1
                items.append(_Input(source=f"{path}#{i}" if multi else str(path),
                                    name=f"{path.stem}_{i}" if multi else path.stem, strokes=s3))
        else:  # any other suffix: try it as an image, the error says what was expected
            try:
                gray = load_image(path)
            except ValueError as e:
                if suffix in IMAGE_SUFFIXES:
                    raise
                raise ValueError(f"{e}; heal reads images ({', '.join(IMAGE_SUFFIXES)}) and sketches "
                                 f"({', '.join(SKETCH_SUFFIXES)})") from None
            items.append(_Input(source=str(path), name=path.stem, gray=gray))
    names: dict[str, int] = {}
    for it in items:  # unique, file-system-safe output names
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in it.name) or "sketch"
        names[base] = names.get(base, 0) + 1
        it.name = base if names[base] == 1 else f"{base}_{names[base]}"
    return items


# ============================================================================================== images


def _input_image(item: _Input, i: int, healer: Healer, *, mask: float | None, table, invert: bool) -> np.ndarray:
    size, mode = healer.image_size, healer.render_mode
    u = table.uniforms(i) if table is not None else None
    if item.strokes is not None:
        n = len(item.strokes)
        if n > healer.max_seq_len:
            raise ValueError(f"{item.source}: the sketch has {n} points, more than the model's max_seq_len="
                             f"{healer.max_seq_len}; simplify it first (e.g. sketchheal.sketch.strokes.rdp)")
        if u is not None:
            return _render.corrupt(item.strokes, u, mask, size, mode).corrupted
        return _render.render(item.strokes, size, mode)
    return image_to_input(item.gray, size=size, mode=mode, invert=invert, mask=mask, uniforms=u, name=item.source)


# ============================================================================================== results


@dataclass
class HealResult:
    """The healing of one input.

    source: the file (``path`` or ``path#i`` for the i-th sketch of a file) or ``array[j]``.
    name: a file-system-safe stem, unique within one :func:`heal` call (used by the CLI).
    input_image: ``(N, N) float32`` what the model saw (after normalisation and masking), ink +1.
    healed: one unnormalised stroke-3 ``(n, 3) float32`` per sample.
    original: the input sketch (unnormalised stroke-3) for vector inputs, else None.
    """

    source: str
    name: str
    input_image: np.ndarray
    healed: list[np.ndarray]
    original: np.ndarray | None = None

    def to_svg(self, k: int = 0, *, size: int = PREVIEW_SIZE, stroke_width: float | None = None) -> str:
        """Sample ``k`` as an SVG document (one ``<path>`` per stroke)."""
        return strokes_to_svg(self.healed[k], size=size, stroke_width=stroke_width)

    def to_png(self, k: int = 0, size: int = PREVIEW_SIZE) -> np.ndarray:
        """Sample ``k`` drawn black on white: ``(size, size) uint8``."""
        return draw_strokes(self.healed[k], size)

    def side_by_side(self, size: int = PREVIEW_SIZE) -> np.ndarray:
        """``(size, W) uint8``: input image | healed sample 0 | sample 1 ... | original (vector inputs)."""
        panels = [model_image_to_u8(self.input_image, size)] + [draw_strokes(s, size) for s in self.healed]
        if self.original is not None:
            panels.append(draw_strokes(self.original, size))
        gap = np.full((size, 4), 160, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [gap, p]
        return np.concatenate(row, 1)

    def files(self, stem: str | None = None, formats: Sequence[str] = FORMATS) -> dict[str, bytes]:
        """The output files as ``{file name: bytes}`` (nothing written). With several samples, per-sample files get
        ``_s0``, ``_s1``, ... suffixes; the npz holds all samples, the side-by-side shows all."""
        stem = stem or self.name
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown output format(s) {bad}; choose from {list(FORMATS)}")
        many = len(self.healed) > 1
        out: dict[str, bytes] = {}
        for k in range(len(self.healed)):
            sub = f"{stem}_s{k}" if many else stem
            if "svg" in formats:
                out[f"{sub}.svg"] = self.to_svg(k).encode("utf-8")
            if "png" in formats:
                out[f"{sub}.png"] = _png(self.to_png(k))
        if "npz" in formats:
            arrays = {"strokes": self.healed[0], "input_image": self.input_image,
                      "samples": np.int64(len(self.healed))}
            for k in range(1, len(self.healed)):
                arrays[f"strokes_{k}"] = self.healed[k]
            if self.original is not None:
                arrays["original"] = self.original
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            out[f"{stem}.npz"] = buf.getvalue()
        if "side" in formats:
            out[f"{stem}_side.png"] = _png(self.side_by_side())
        return out

    def save(self, out_dir: str | os.PathLike, stem: str | None = None,
             formats: Sequence[str] = FORMATS) -> list[Path]:
        """Write the outputs (see :meth:`files`) into ``out_dir``, each atomically; returns the paths written.

        All files are encoded before the first is written; if a write fails, the files already written by this
        call are removed again.
        """
        return write_files(Path(out_dir), self.files(stem, formats))


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 images
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_files(out_dir: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``{name: bytes}`` into ``out_dir`` atomically; on any error remove what this call wrote, re-raise."""
    written: list[Path] = []
    try:
        for fname, data in files.items():
            path = out_dir / fname
            with atomic_write(path, "wb") as f:
                f.write(data)
            written.append(path)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return written


# ============================================================================================== healing


def _as_healer(model: Healer | str | os.PathLike | None) -> Healer:
    if isinstance(model, Healer):
        return model
    return load_model(model)


def heal(inputs: Any, *, model: Healer | str | os.PathLike | None = None, mask: float | None = None,
         seed: int = 0, temperature: float = 0.1, samples: int = 1, greedy: bool = False, invert: bool = False,
         batch_size: int = 64, split: str = "test", limit: int | None = None,
         precision: str = "fp32", candidates: int | None = None) -> list[HealResult]:
    """Heal sketches.

    Args:
        inputs: a path or numpy array, or a list of them. Files: images (PNG, JPG, ... any size), ``.npz``
            (``strokes``/``sketch`` key or sketch-rnn splits: ``split``, ``limit``), QuickDraw ``.ndjson``,
            ``.svg``. Arrays: any ``(n, 3)`` array is a stroke-3 sketch; other shapes are images ``(H, W)`` /
            ``(H, W, 1|3|4)`` (uint8 0..255 or floats in [0, 1]).
        model: a :class:`Healer`, a path for :func:`load_model`, or None for the bundled model.
        mask: erase probability ``p`` for the published patch protocol (None / 0 = heal the input as it is).
            Input ``i`` uses row ``i`` of ``MaskTable(len(inputs), seed)``; images use stand-in candidates (see
            :func:`image_to_input`).
        seed: seeds the masks and the sampling; sample ``k`` of input ``i`` draws from noise key ``(seed, i, k)``,
            so results do not depend on ``batch_size``.
        temperature: sampling temperature tau (> 0; the published evaluation uses 0.01).
        samples: healed sketches per input (each from the same code, different noise).
        greedy: deterministic decoding (most likely component and pen, component mean).
        invert: image inputs are light ink on a dark background.
        batch_size: sketches encoded / decoded together.
        precision: ``"fp32"`` (default) or ``"bf16"``: encoder under bfloat16 autocast and the decoder's matrix
            products in bfloat16 (faster on CPUs with AVX-512 BF16 and on GPUs; see ``sketchheal.inference.sample``).
        candidates: draw this many sketches for every sample and keep the one whose drawing agrees best with the
            ink the input shows (:mod:`sketchheal.inference.candidates`); 1 = plain sampling (the published protocol). None
            (default) = ``DEFAULT_CANDIDATES`` (8) when sampling, 1 with ``greedy`` (which draws one sketch). Pays
            off at temperatures of about 0.1 and above, where candidates differ.

    Returns one :class:`HealResult` per sketch (a multi-sketch file gives several), in input order.
    Raises ``ValueError`` / ``FileNotFoundError`` naming the input, before any healing, for bad inputs.
    """
    from sketchheal.inference.candidates import DEFAULT_CANDIDATES, best_of
    from sketchheal.sketch.render import MaskTable
    from sketchheal.inference.sample import encode_images

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not greedy and not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be > 0 (or use greedy), got {temperature}")
    if mask is not None and not 0.0 <= float(mask) <= 1.0:
        raise ValueError(f"mask must be a probability in [0, 1], got {mask}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if candidates is None:
        candidates = 1 if greedy else DEFAULT_CANDIDATES
    if candidates < 1 or (greedy and candidates > 1):
        raise ValueError(f"candidates must be >= 1 (and 1 with greedy decoding, which draws one sketch), "
                         f"got {candidates}")
    healer = _as_healer(model)
    items = _expand(inputs, split=split, limit=limit)
    if not items:
        raise ValueError("nothing to heal: no inputs")
    table = MaskTable(len(items), seed) if mask else None
    images = np.stack([_input_image(it, i, healer, mask=mask, table=table, invert=invert)
                       for i, it in enumerate(items)])  # (B, N, N)
    # z = the encoder mean (deterministic code; see sketchheal.inference.sample.heal_images), repeated per sample
    z = encode_images(healer.model, torch.from_numpy(images)[:, None], batch_size, precision)
    z = z.repeat_interleave(samples, 0)
    flat, _ = best_of(healer.model, z, np.repeat(images, samples, 0),
                      [(int(seed), i, k) for i in range(len(items)) for k in range(samples)], candidates=candidates,
                      scale=healer.scale, size=healer.image_size, mode=healer.render_mode,
                      max_len=healer.max_seq_len, temperature=temperature, greedy=greedy, batch_size=batch_size,
                      precision=precision)
    results = []
    for i, it in enumerate(items):
        healed = [denormalize(s, healer.scale) if len(s) else s for s in flat[i * samples: (i + 1) * samples]]
        results.append(HealResult(source=it.source, name=it.name, input_image=images[i], healed=healed,
                                  original=it.strokes))
    return results


def example_inputs() -> list[Path]:
    """The bundled example inputs (``sketchheal.utils.paths.EXAMPLES_DIR``), sorted by name."""
    if not EXAMPLES_DIR.is_dir():
        raise FileNotFoundError(f"no bundled examples at {EXAMPLES_DIR}")
    files = sorted(p for p in EXAMPLES_DIR.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + SKETCH_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no example inputs in {EXAMPLES_DIR}")
    return files


# ============================================================================================== CLI


def _formats(text: str) -> tuple[str, ...]:
    items = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown format(s) {bad or text!r}; choose from {','.join(FORMATS)}")
    return items


def register(subparsers) -> None:
    """Add ``sketchheal heal``."""
    p = subparsers.add_parser(
        "heal", help="heal sketches (images, .npz, .ndjson, .svg) into vector sketches",
        description="Heal sketches with a trained model and write SVG / PNG / npz / side-by-side files. "
                    "Images: dark ink on light paper (--invert for light on dark), any size.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image, .npz, .ndjson or .svg files")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="folder for the outputs")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="release directory or training checkpoint (default: the bundled model)")
    p.add_argument("--example", action="store_true", help="heal the bundled example inputs")
    p.add_argument("--mask", type=float, default=None, metavar="P",
                   help="erase each patch candidate with probability P first (published protocol)")
    p.add_argument("--seed", type=int, default=0, help="seed of the masks and the sampling (default 0)")
    p.add_argument("--temperature", type=float, default=0.1, metavar="T", help="sampling temperature (default 0.1)")
    p.add_argument("--samples", type=int, default=1, metavar="K", help="healed sketches per input (default 1)")
    p.add_argument("--greedy", action="store_true", help="deterministic decoding")
    p.add_argument("--candidates", type=int, default=None, metavar="K",
                   help="draw K sketches per sample and keep the one that agrees best with the ink the input "
                        "shows (default 8, or 1 with --greedy; 1 = plain sampling, the published protocol)")
    p.add_argument("--invert", action="store_true", help="images are light ink on a dark background")
    p.add_argument("--format", type=_formats, default=FORMATS, metavar="LIST",
                   help=f"comma-separated outputs from {','.join(FORMATS)} (default: all)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--batch-size", type=int, default=64, help="sketches per batch (default 64)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: faster on CPUs with AVX-512 BF16 and on GPUs, slightly different numbers")
    p.add_argument("--split", default="test", help="split of sketch-rnn .npz files (default test)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N sketches of each multi-sketch file")
    p.set_defaults(func=_cmd_heal)


def _cmd_heal(args: argparse.Namespace) -> int:
    inputs: list[Any] = list(args.inputs)
    if args.example:
        inputs = [*example_inputs(), *inputs]
    if not inputs:
        raise ValueError("no INPUT given; pass image / .npz / .ndjson / .svg files, or --example")
    healer = load_model(args.checkpoint, device=args.device)
    results = heal(inputs, model=healer, mask=args.mask, seed=args.seed, temperature=args.temperature,
                   samples=args.samples, greedy=args.greedy, invert=args.invert, batch_size=args.batch_size,
                   split=args.split, limit=args.limit, precision=args.precision, candidates=args.candidates)
    files: dict[str, bytes] = {}
    for r in results:
        files.update(r.files(r.name, args.format))
    written = write_files(Path(args.out), files)
    for path in written:
        print(path)
    print(f"healed {len(results)} sketch(es) with {healer.source} -> {len(written)} file(s) in {args.out}",
          file=sys.stderr)
    return 0
