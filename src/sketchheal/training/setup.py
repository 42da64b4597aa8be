"""Building a training run from a config: everything :class:`~sketchheal.training.trainer.Trainer` loops over.

:func:`build_run` validates the config once, joins the DDP group, loads the data, builds the model and the
optimiser, applies ``init_from`` / freezing, restores a resumed run's state and seeds the RNGs, in that order (the
order of the RNG draws is part of what makes a resume bit-exact). It writes nothing to disk: the run folder is
:mod:`sketchheal.training.rundir`'s, the loop's files the trainer's.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sketchheal.config import INIT_PARTS, Config, ModelConfig, apply_overrides, preset
from sketchheal.data.dataset import HealingDataset
from sketchheal.inference.loading import load_model
from sketchheal.model.matmul import use_onednn
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import read_checkpoint
from sketchheal.sketch.io import SketchSet, compute_scale, load_sketches
from sketchheal.training.checkpoint import LAST, TrainState, set_rng_state
from sketchheal.training.distributed import Dist, setup_distributed
from sketchheal.utils.devices import (
    cpu_bf16_supported, cuda_bf16_native, machine_defaults, pick_device, reuse_freed_memory,
)

# Fields a resumed run takes from the command line instead of the checkpoint: how long and where to run, how often
# to log; never anything that changes the model, the data or the optimisation.
RESUME_MAY_CHANGE = (
    ("train", "steps"), ("train", "device"), ("train", "threads"), ("data", "num_workers"),
    ("train", "checkpoint_every"), ("train", "eval_every"), ("train", "sample_every"), ("train", "log_every"),
)


@dataclass
class Run:
    """A training run, built and ready to loop (``build_run``)."""

    cfg: Config                       # the run's config (a resumed run's own, with RESUME_MAY_CHANGE applied)
    out: Path                         # the run folder
    ddp: Dist
    device: torch.device
    train_set: SketchSet
    valid_set: SketchSet              # the training split when the files have no (non-empty) valid split
    train_data: HealingDataset
    valid_data: HealingDataset
    scale: float                      # offset normalisation (std of the training split's dx, dy)
    categories: list[str]
    model: LmserPix2Seq               # the bare model (saved, validated, sampled)
    ddp_model: nn.Module              # what the training step calls: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    state: TrainState
    autocast: torch.dtype | None      # bf16 autocast, or None for fp32
    resumed_from: Path | None = None  # the checkpoint a resumed run continues
    notes: list[str] = field(default_factory=list)  # what the run should tell its user when it starts

    @property
    def max_len(self) -> int:
        """Nmax: every target is padded to Nmax + 1 rows."""
        return self.cfg.data.max_seq_len


def resumed_config(saved: dict[str, Any], cfg: Config) -> Config:
    """A checkpoint's config with the run-time fields (``RESUME_MAY_CHANGE``) taken from ``cfg``."""
    out = Config.from_dict(saved)
    for section, name in RESUME_MAY_CHANGE:  # run-time settings only; the maths stays as saved
        setattr(getattr(out, section), name, getattr(getattr(cfg, section), name))
    return out


def build_run(cfg: Config, out_dir: str | os.PathLike, *, resume: bool = False) -> Run:
    """Validate ``cfg`` and build the run it describes (see the module docstring); ``resume`` continues the
    checkpoint ``out_dir/ckpt_last.pt``. Raises ``ValueError`` / ``FileNotFoundError`` with one line naming the
    field or the file before anything heavy is built."""
    out = Path(out_dir)
    cfg = copy.deepcopy(cfg)
    ckpt = None
    if resume:
        last = out / LAST
        if not last.is_file():
            raise FileNotFoundError(f"--resume: {last} does not exist; start without --resume")
        ckpt = read_checkpoint(last)
        cfg = resumed_config(ckpt["config"], cfg)
    cfg.validate()
    if not cfg.data.paths:
        raise ValueError("no training data: pass --data PATH (sketch-rnn .npz or QuickDraw .ndjson)")

    device_type = "cuda" if cfg.train.device in ("cuda", "auto") and torch.cuda.is_available() else "cpu"
    ddp = setup_distributed(device_type)
    device = pick_device(cfg.train.device, local_rank=ddp.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    notes: list[str] = [use_machine_defaults(cfg, device)]

    train_set, valid_set = load_splits(cfg)
    fit_batch_to_data(cfg, len(train_set), ddp.world, notes)
    scale = float(ckpt["scale"]) if ckpt else float(compute_scale(train_set, size=cfg.model.target_size))
    d = cfg.data
    common = dict(scale=scale, max_len=d.max_seq_len, image_size=d.image_size, render_mode=d.render_mode,
                  seed=cfg.train.seed, target_size=cfg.model.target_size, max_patches=d.max_patches)
    deform = (d.deform_rotate, d.deform_scale, d.deform_jitter)
    train_data = HealingDataset(train_set, mask_prob=d.mask_prob, mask_prob_max=d.mask_prob_max,
                                deform=deform if any(deform) else None, point_erase=d.point_erase, **common)
    valid_data = HealingDataset(valid_set, mask_prob=d.mask_prob, **common)

    torch.manual_seed(cfg.train.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = LmserPix2Seq(cfg.model).to(device)
    t = cfg.train
    trained = model.decoder if t.freeze_encoder else model.encoder if t.freeze_decoder else model
    optimizer = torch.optim.Adam(trained.parameters(), lr=t.lr)
    state = TrainState()
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = TrainState(**ckpt["train_state"])
    elif t.init_from:
        model.load_state_dict(init_weights(t.init_from, cfg.model, t.init_parts), strict=t.init_parts == "all")
    if t.freeze_encoder:
        # no gradients flow into the encoder, so autograd keeps none of its activations
        model.encoder.requires_grad_(False)
    if t.freeze_decoder:
        # gradients still flow through the decoder into z (and so into the encoder); its weights stay put
        model.decoder.requires_grad_(False)
    ddp_model: nn.Module = model
    if ddp.enabled:
        ids = [device.index] if device.type == "cuda" else None
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    # Per-rank RNG for z sampling noise and dropout; a resume restores it exactly.
    torch.manual_seed(t.seed * 1000 + ddp.rank + 1)
    random.seed(t.seed + ddp.rank)
    np.random.seed(t.seed + ddp.rank)
    if ckpt:
        rngs = ckpt["rng"]
        set_rng_state(rngs[ddp.rank] if isinstance(rngs, list) else rngs)
    return Run(cfg=cfg, out=out, ddp=ddp, device=device, train_set=train_set, valid_set=valid_set,
               train_data=train_data, valid_data=valid_data, scale=scale, categories=list(train_set.categories),
               model=model, ddp_model=ddp_model, optimizer=optimizer, state=state,
               autocast=autocast_dtype(cfg.train.bf16, device, notes), resumed_from=out / LAST if ckpt else None,
               notes=notes)


def load_splits(cfg: Config) -> tuple[SketchSet, SketchSet]:
    """The training and validation splits of ``cfg.data.paths``; ``ValueError`` naming the files and why when no
    training sketch is left."""
    d = cfg.data
    train_set = load_sketches(d.paths, split="train", max_seq_len=d.max_seq_len, clip=d.clip)
    if len(train_set) == 0:
        dropped = {k: v for k, v in train_set.dropped.items() if v}
        why = (f"all {sum(dropped.values())} were left out ("
               + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in dropped.items())
               + (f"; too long = more than data.max_seq_len={d.max_seq_len} points" if "too_long" in dropped else "")
               + ")") if dropped else "the files hold none"
        raise ValueError(f"no training sketches in {', '.join(d.paths)} (split 'train'): {why}")
    valid_set = load_sketches(d.paths, split="valid", max_seq_len=d.max_seq_len, clip=d.clip)
    return train_set, valid_set if len(valid_set) else train_set


def fit_batch_to_data(cfg: Config, n: int, world: int, notes: list[str]) -> None:
    """A training split smaller than one batch (fine-tuning on a few drawings) trains with batches of the whole
    split (a multiple of the DDP world size): ``cfg.train.batch_size`` is lowered, and the run says so."""
    b = cfg.train.batch_size
    if b % world:
        raise ValueError(f"train.batch_size {b} is not divisible by the {world} processes")
    if n >= b:
        return
    fitted = n // world * world
    if fitted == 0:
        raise ValueError(f"the training split has {n} sketches, fewer than the {world} processes")
    cfg.train.batch_size = fitted
    notes.append(f"the training split has {n} sketches, fewer than train.batch_size={b}: training with batches "
                 f"of {fitted} (train.batch_size={fitted})")


def use_machine_defaults(cfg: Config, device: torch.device) -> str:
    """Apply this machine's defaults (``sketchheal.utils.devices.machine_defaults``) to the process: intra-op threads
    (``train.threads``, or the machine's when 0 and OMP_NUM_THREADS is not set), and on a CPU the faster fp32
    product kernel, an allocator that keeps freed memory and denormals flushed to zero. Returns the line saying
    what was chosen (training prints it once when it starts)."""
    defaults = machine_defaults(device)
    if cfg.train.threads > 0 or "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cfg.train.threads or defaults.threads)
    flushed = ""
    if device.type == "cpu":
        use_onednn(defaults.onednn_matmul)
        reuse_freed_memory()
        # Denormal floats (below 1.2e-38, e.g. in saturated gates' gradients) cost tens of cycles an operation on
        # x86; oneDNN's kernels already treat them as zero, torch's elementwise kernels only with this set.
        flushed = ", denormals flushed to zero" if torch.set_flush_denormal(True) else ""
    return (f"{defaults.describe()}; this run: {torch.get_num_threads()} threads, {cfg.data.num_workers} DataLoader "
            f"workers, train.bf16={cfg.train.bf16}{flushed}")


def autocast_dtype(mode: str, device: torch.device, notes: list[str]) -> torch.dtype | None:
    """bf16 autocast for ``train.bf16`` on ``device``, else None. ``auto``: on a CUDA GPU with native bf16
    (compute capability 8.0 on), fp32 elsewhere (on a CPU even where bf16 is native: ``on`` asks for it)."""
    if mode == "on" or (mode == "auto" and device.type == "cuda" and cuda_bf16_native(device)):
        if device.type == "cpu" and not cpu_bf16_supported():
            notes.append("train.bf16=on: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so bf16 is emulated "
                         "and slower than fp32, and the LSTM runs in fp32; train.bf16=off is faster here")
        return torch.bfloat16
    return None


# ------------------------------------------------------------------------------------------------------ warm starts


def init_weights(source: str | os.PathLike, model_cfg: ModelConfig, parts: str = "all") -> dict[str, torch.Tensor]:
    """The weights of ``source`` (release dir, checkpoint or run dir) for a model built from ``model_cfg``.

    ``parts="all"``: the whole state dict; raises ValueError naming the differing fields when ``source`` holds
    another architecture. ``parts="encoder"`` / ``"decoder"``: only the ``encoder.*`` / ``decoder.*`` entries;
    raises ValueError naming the tensors that do not fit the part that ``model_cfg`` builds.
    """
    if parts not in INIT_PARTS:
        raise ValueError(f"train.init_parts must be one of {INIT_PARTS}, got {parts!r}")
    src = load_model(source, device="cpu").model
    if parts != "all":
        prefix = f"{parts}."
        theirs = {k: v for k, v in src.state_dict().items() if k.startswith(prefix)}
        ours = {k: v for k, v in LmserPix2Seq(model_cfg).state_dict().items() if k.startswith(prefix)}
        bad = sorted(set(ours) ^ set(theirs)) + sorted(
            f"{k} {tuple(theirs[k].shape)} there, {tuple(ours[k].shape)} here"
            for k in set(ours) & set(theirs) if theirs[k].shape != ours[k].shape)
        if bad:
            keep = ("encoder, d_model, d_ffn, z_size, ..." if parts == "encoder"
                    else "z_size, dec_hidden, num_mixtures")
            raise ValueError(f"--init-from {source} ({parts} only): its {parts} does not fit this run's: "
                             + "; ".join(bad[:6]) + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
                             + f"; keep the {parts}'s model.* settings ({keep})")
        return theirs
    theirs, ours = dataclasses.asdict(src.config), dataclasses.asdict(model_cfg)
    # fields that change no parameter shape may differ (e.g. dropout, or the targets' size, for fine-tuning)
    free = {"dropout", "input_dropout", "target_size"}
    diff = {k: (theirs.get(k), v) for k, v in ours.items() if k not in free and theirs.get(k) != v}
    if diff:
        raise ValueError(f"--init-from {source}: its model differs from this run's in "
                         + ", ".join(f"{k} ({a!r} there, {b!r} here)" for k, (a, b) in sorted(diff.items()))
                         + "; drop the model.* overrides or --preset that change them, or take only its "
                         "encoder or decoder (train.init_parts=encoder or decoder)")
    return src.state_dict()


def init_model_config(source: str | os.PathLike) -> ModelConfig:
    """The ModelConfig of the model stored at ``source`` (for building a run that starts from it)."""
    return dataclasses.replace(load_model(source, device="cpu").model.config)


# ------------------------------------------------------------------------------------------------ configs of runs


def build_config(preset_name: str, data: list[str] | None, overrides: list[str], steps: int | None = None,
                 device: str | None = None, workers: int | None = None, init_from: str | None = None) -> Config:
    """The config of a new run: a preset, its data files, ``--set`` overrides and the flags that shortcut them.
    With ``init_from`` the model section comes from those weights (then the overrides apply)."""
    cfg = preset(preset_name)
    if data:
        cfg.data.paths = [str(p) for p in data]
    if init_from:  # the architecture comes from the weights we start from
        cfg.model = init_model_config(init_from)
        cfg.data.image_size = cfg.model.image_size
        cfg.train.init_from = str(init_from)
    cfg = apply_overrides(cfg, overrides)
    _runtime_flags(cfg, steps, device, workers)
    return cfg


def resume_config(out_dir: str | os.PathLike, overrides: list[str], steps: int | None = None,
                  device: str | None = None, workers: int | None = None) -> Config:
    """The config of a resumed run: the run's own (from ``out_dir/ckpt_last.pt``) with only run-time fields
    (``RESUME_MAY_CHANGE``) overridden; ``ValueError`` naming any other override."""
    last = Path(out_dir) / LAST
    if not last.is_file():
        raise FileNotFoundError(f"--resume: {last} does not exist; start without --resume")
    cfg = Config.from_dict(read_checkpoint(last)["config"])
    allowed = {f"{s}.{n}" for s, n in RESUME_MAY_CHANGE}
    bad = [o for o in overrides if o.split("=", 1)[0] not in allowed]
    if bad:
        raise ValueError(f"--resume keeps the run's model, data and optimisation; only {', '.join(sorted(allowed))} "
                         f"may change (got {bad})")
    cfg = apply_overrides(cfg, overrides)
    _runtime_flags(cfg, steps, device, workers)
    return cfg


def _runtime_flags(cfg: Config, steps: int | None, device: str | None, workers: int | None) -> None:
    if steps is not None:
        cfg.train.steps = steps
    if device is not None:
        cfg.train.device = device
    if workers is not None:
        cfg.data.num_workers = workers


def say(message: str) -> None:
    """A line for the person running the training (stderr, so stdout stays the JSON summary)."""
    print(message, file=sys.stderr, flush=True)


__all__ = ["RESUME_MAY_CHANGE", "Run", "build_config", "build_run", "init_model_config", "init_weights",
           "load_splits", "resume_config", "resumed_config"]
