"""Training: one loop for a laptop CPU, one GPU, or many GPUs under ``torchrun`` (DDP).

- Resumable bit for bit: the checkpoint holds model, optimiser, step, learning-rate state and every RNG state; the
  data order and the masks are functions of (seed, epoch, index), so a resumed run sees the same batches.
- NaN-proof: a step whose loss or gradients are not finite is skipped and counted; after ``nan_patience`` bad steps
  in a row the run rolls back to the last good checkpoint with a lower learning rate. NaN weights are never saved.
- Logged: ``metrics.jsonl`` always, TensorBoard when installed, a tqdm bar, PNG grids (corrupted | healed | original).
- Distributed: under ``torchrun`` (``RANK`` set) the model is wrapped in DistributedDataParallel, each rank takes its
  slice of every global batch, and only rank 0 writes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from sketchheal.utils.version import __version__
from sketchheal.config import PRESETS, Config, apply_overrides, preset
from sketchheal.utils.devices import cpu_bf16_supported, pick_device
from sketchheal.utils.fileio import atomic_path, atomic_write

CHECKPOINT_VERSION = 1

# Fields a resumed run takes from the command line instead of the checkpoint: how long and where to run, how often
# to log; never anything that changes the model, the data or the optimisation.
RESUME_MAY_CHANGE = (
    ("train", "steps"), ("train", "device"), ("train", "threads"), ("data", "num_workers"),
    ("train", "checkpoint_every"), ("train", "eval_every"), ("train", "sample_every"), ("train", "log_every"),
)


# ----------------------------------------------------------------------------------------------------------------
# distributed setup


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup_distributed(device_type: str) -> Dist:
    """Initialise the process group when launched by torchrun (RANK/WORLD_SIZE set), else a single process."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))




# ----------------------------------------------------------------------------------------------------------------
# data order: a function of (seed, epoch) so that a resumed run sees the same batches


class EpochBatchSampler(torch.utils.data.Sampler):
    """Yields this rank's share of each global batch of one epoch.

    The epoch's order is a permutation drawn from ``(seed, epoch)``; global batch b is ``perm[b*B:(b+1)*B]`` and
    rank r takes its r-th slice of B/world items (a distributed sampler: disjoint shards, correct global batch).
    ``start`` skips the first batches (resume in the middle of an epoch) without rendering them.
    """

    def __init__(self, n: int, *, batch_size: int, seed: int, epoch: int, start: int = 0, ddp: Dist = Dist()):
        if batch_size % ddp.world:
            raise ValueError(f"global batch {batch_size} is not divisible by the {ddp.world} processes")
        if n < batch_size:
            raise ValueError(f"the training split has {n} sketches, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed, self.epoch, self.start, self.ddp = n, batch_size, seed, epoch, start, ddp

    def __len__(self) -> int:
        return self.n // self.batch_size - self.start

    def __iter__(self) -> Iterator[list[int]]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        per_rank = self.batch_size // self.ddp.world
        for b in range(self.start, self.n // self.batch_size):
            batch = perm[b * self.batch_size:(b + 1) * self.batch_size]
            yield batch[self.ddp.rank * per_rank:(self.ddp.rank + 1) * per_rank].tolist()


def batches_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size


# ----------------------------------------------------------------------------------------------------------------
# RNG state, checkpoints


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weights_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all().item() for p in model.state_dict().values() if p.is_floating_point())


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint (a plain dict) with a clear error when the file is not one of ours."""
    path = Path(path)
    if path.is_dir():
        path = path / "ckpt_last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # pickle errors, truncated files, ...
        raise ValueError(f"{path}: not a readable sketchheal training checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a sketchheal training checkpoint (expected a dict with 'model' and 'config')")
    if ckpt.get("checkpoint_version", CHECKPOINT_VERSION) > CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint format {ckpt['checkpoint_version']} is newer than this sketchheal "
                         f"({__version__}) reads ({CHECKPOINT_VERSION}); upgrade sketchheal")
    return ckpt


# ----------------------------------------------------------------------------------------------------------------
# the training loop


@dataclass
class TrainState:
    step: int = 0
    lr_scale: float = 1.0      # lowered by NaN roll-backs
    bad_steps: int = 0         # non-finite steps skipped in total
    bad_in_a_row: int = 0
    rollbacks: int = 0
    best_valid: float = math.inf


INIT_PARTS = ("all", "encoder", "decoder")


def init_weights(source: str | os.PathLike, model_cfg, parts: str = "all") -> dict[str, torch.Tensor]:
    """The weights of ``source`` (release dir, checkpoint or run dir) for a model built from ``model_cfg``.

    ``parts="all"``: the whole state dict; raises ValueError naming the differing fields when ``source`` holds
    another architecture. ``parts="encoder"`` / ``"decoder"``: only the ``encoder.*`` / ``decoder.*`` entries;
    raises ValueError naming the tensors that do not fit the part that ``model_cfg`` builds.
    """
    from sketchheal.inference.heal import load_model
    from sketchheal.model.pix2seq import LmserPix2Seq

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


def init_model_config(source: str | os.PathLike):
    """The ModelConfig of the model stored at ``source`` (for building a run that starts from it)."""
    from sketchheal.inference.heal import load_model

    return dataclasses.replace(load_model(source, device="cpu").model.config)


def learning_rate(cfg: Config, step: int, lr_scale: float) -> float:
    """Published schedule: lr * decay^step, floored at min_lr (then times the NaN roll-back factor); during the
    first ``warmup_steps`` steps also times ``(step + 1) / warmup_steps``."""
    t = cfg.train
    warm = min(1.0, (step + 1) / t.warmup_steps) if t.warmup_steps > 0 else 1.0
    return max(t.min_lr, t.lr * t.lr_decay ** step) * warm * lr_scale


class Trainer:
    def __init__(self, cfg: Config, out_dir: str | os.PathLike, *, resume: bool = False, progress: bool = True,
                 dump_rank_weights: bool = False):
        from sketchheal.sketch.io import compute_scale, load_sketches
        from sketchheal.data.dataset import HealingDataset
        from sketchheal.model.pix2seq import LmserPix2Seq

        self.cfg = cfg
        self.out = Path(out_dir)
        self.progress = progress
        self.dump_rank_weights = dump_rank_weights
        device_type = "cuda" if cfg.train.device in ("cuda", "auto") and torch.cuda.is_available() else "cpu"
        self.ddp = setup_distributed(device_type)
        self.device = pick_device(cfg.train.device, local_rank=self.ddp.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.init_parts not in INIT_PARTS:
            raise ValueError(f"train.init_parts must be one of {INIT_PARTS}, got {cfg.train.init_parts!r}")
        if cfg.train.warmup_steps < 0:
            raise ValueError(f"train.warmup_steps must be >= 0 (0 = no warm-up), got {cfg.train.warmup_steps}")
        if not cfg.data.paths:
            raise ValueError("no training data: pass --data PATH (sketch-rnn .npz or QuickDraw .ndjson)")
        if not (cfg.train.pen_loss_weight > 0 and math.isfinite(cfg.train.pen_loss_weight)):
            raise ValueError(f"train.pen_loss_weight must be a positive number (1 = the paper), "
                             f"got {cfg.train.pen_loss_weight}")

        ckpt = None
        if resume:
            last = self.out / "ckpt_last.pt"
            if not last.is_file():
                raise FileNotFoundError(f"--resume: {last} does not exist; start without --resume")
            ckpt = load_checkpoint(last)
            saved = Config.from_dict(ckpt["config"])
            for section, name in RESUME_MAY_CHANGE:  # run-time settings only; the maths stays as saved
                setattr(getattr(saved, section), name, getattr(getattr(cfg, section), name))
            self.cfg = cfg = saved

        d = cfg.data
        self.train_set = load_sketches(d.paths, split="train", max_seq_len=d.max_seq_len, clip=d.clip)
        self.valid_set = load_sketches(d.paths, split="valid", max_seq_len=d.max_seq_len, clip=d.clip)
        if len(self.valid_set) == 0:
            self.valid_set = self.train_set
        self.scale = (float(ckpt["scale"]) if ckpt
                      else float(compute_scale(self.train_set, size=cfg.model.target_size)))
        self.max_len = d.max_seq_len  # Nmax: every target is padded to Nmax + 1 rows
        self.categories = list(self.train_set.categories)
        common = dict(scale=self.scale, max_len=self.max_len, image_size=d.image_size, render_mode=d.render_mode,
                      seed=cfg.train.seed, target_size=cfg.model.target_size)
        deform = (d.deform_rotate, d.deform_scale, d.deform_jitter)
        self.train_data = HealingDataset(self.train_set, mask_prob=d.mask_prob, mask_prob_max=d.mask_prob_max,
                                         deform=deform if any(deform) else None, **common)
        self.valid_data = HealingDataset(self.valid_set, mask_prob=d.mask_prob, **common)

        torch.manual_seed(cfg.train.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        self.model = LmserPix2Seq(cfg.model).to(self.device)
        if cfg.train.freeze_encoder and cfg.train.freeze_decoder:
            raise ValueError("train.freeze_encoder and train.freeze_decoder together leave nothing to train; "
                             "set at most one of them")
        trained = (self.model.decoder if cfg.train.freeze_encoder
                   else self.model.encoder if cfg.train.freeze_decoder else self.model)
        self.optimizer = torch.optim.Adam(trained.parameters(), lr=cfg.train.lr)
        self.state = TrainState()
        if ckpt:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.state = TrainState(**ckpt["train_state"])
        elif cfg.train.init_from:
            weights = init_weights(cfg.train.init_from, cfg.model, cfg.train.init_parts)
            self.model.load_state_dict(weights, strict=cfg.train.init_parts == "all")
        if cfg.train.freeze_encoder:
            # no gradients flow into the encoder, so autograd keeps none of its activations
            self.model.encoder.requires_grad_(False)
        if cfg.train.freeze_decoder:
            # gradients still flow through the decoder into z (and so into the encoder); its weights stay put
            self.model.decoder.requires_grad_(False)
        self.ddp_model = self.model
        if self.ddp.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        # Per-rank RNG for z sampling noise and dropout; a resume restores it exactly.
        torch.manual_seed(cfg.train.seed * 1000 + self.ddp.rank + 1)
        random.seed(cfg.train.seed + self.ddp.rank)
        np.random.seed(cfg.train.seed + self.ddp.rank)
        if ckpt:
            rngs = ckpt["rng"]
            set_rng_state(rngs[self.ddp.rank] if isinstance(rngs, list) else rngs)
        self.last_good = self.out / "ckpt_last.pt" if ckpt else None
        self.autocast = self._autocast_dtype()
        self.writer = None
        if self.ddp.main:
            self.out.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.out / "config.json", "w") as f:
                f.write(self.cfg.to_json())
            self.writer = _tensorboard(self.out)

    # ------------------------------------------------------------------------------------------------------------

    def _autocast_dtype(self) -> torch.dtype | None:
        mode = self.cfg.train.bf16
        if mode == "off":
            return None
        if mode == "on" or (mode == "auto" and self.device.type == "cuda"):
            if self.device.type == "cpu" and not cpu_bf16_supported() and self.ddp.main:
                _write_out("train.bf16=on: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so bf16 is "
                           "emulated and slower than fp32, and the LSTM runs in fp32; train.bf16=off is faster here")
            return torch.bfloat16
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"train.bf16 must be auto, on or off, not {mode!r}")
        return None

    def _loader(self, dataset, epoch: int, start: int, batch_size: int):
        dataset.set_epoch(epoch)
        sampler = EpochBatchSampler(len(dataset), batch_size=batch_size, seed=self.cfg.train.seed, epoch=epoch,
                                    start=start, ddp=self.ddp)
        workers = self.cfg.data.num_workers
        # The loader draws its workers' base seed from this generator, not from the global RNG, so that creating
        # a loader (at each epoch, and once more on resume) leaves the training RNG stream untouched.
        gen = torch.Generator().manual_seed(self.cfg.train.seed * 100_003 + epoch)
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, num_workers=workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None, generator=gen,
        )

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _forward_losses(self, batch: dict[str, torch.Tensor], *, sample_z: bool, model=None) -> dict[str, torch.Tensor]:
        model = model or self.ddp_model
        ctx = (torch.autocast(self.device.type, dtype=self.autocast) if self.autocast is not None
               else contextlib.nullcontext())
        with ctx:
            out = model(batch["corrupted"], batch["strokes"], batch["length"], sample_z=sample_z)
        return self.model.compute_losses(out, batch, self.cfg.train)

    def _clip(self) -> float:
        """Gradient-norm clip per module (encoder, decoder), as published. Returns the larger pre-clip norm."""
        c = self.cfg.train.grad_clip
        norms = [torch.nn.utils.clip_grad_norm_(m.parameters(), c if c > 0 else float("inf"))
                 for m in (self.model.encoder, self.model.decoder)]
        return float(max(n.item() for n in norms))

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float] | None:
        """One optimiser step. Returns the logged losses, or None when the step was skipped as non-finite."""
        self.ddp_model.train()
        lr = learning_rate(self.cfg, self.state.step, self.state.lr_scale)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        losses = self._forward_losses(batch, sample_z=True)
        losses["loss"].backward()
        grad_norm = self._clip()
        finite = torch.tensor([math.isfinite(losses["loss"].item()) and math.isfinite(grad_norm)], dtype=torch.int32)
        if self.ddp.enabled:  # every rank must take the same decision
            finite = finite.to(self.device)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not bool(finite.item()):
            self.optimizer.zero_grad(set_to_none=True)
            self.state.bad_steps += 1
            self.state.bad_in_a_row += 1
            return None
        self.optimizer.step()
        self.state.bad_in_a_row = 0
        self.state.step += 1
        logged = {k: float(v.detach().item()) for k, v in losses.items()}
        logged.update(lr=lr, grad_norm=grad_norm)
        return logged

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation loss with z = mu and fixed masks (epoch 0), averaged over eval_batches batches."""
        self.model.eval()
        per_rank = max(1, self.cfg.train.batch_size // self.ddp.world)
        n_batches = self.cfg.train.eval_batches or math.inf
        sums: dict[str, float] = {}
        count = 0
        self.valid_data.set_epoch(0)
        order = np.arange(len(self.valid_data))[self.ddp.rank::self.ddp.world]
        for i in range(0, len(order), per_rank):
            if count >= n_batches:
                break
            items = [self.valid_data[int(j)] for j in order[i:i + per_rank]]
            batch = self._to_device(torch.utils.data.default_collate(items))
            losses = self._forward_losses(batch, sample_z=False, model=self.model)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.item())
            count += 1
        out = {f"valid_{k}": v / max(count, 1) for k, v in sums.items()}
        if self.ddp.enabled:
            t = torch.tensor([out[k] for k in sorted(out)], device=self.device)
            dist.all_reduce(t)
            out = {k: float(v) / self.ddp.world for k, v in zip(sorted(out), t.tolist())}
        return out

    def checkpoint_state(self) -> dict[str, Any]:
        rngs: Any = rng_state()
        if self.ddp.enabled:
            gathered: list[Any] = [None] * self.ddp.world
            dist.all_gather_object(gathered, rngs)
            rngs = gathered
        return {
            "checkpoint_version": CHECKPOINT_VERSION,
            "version": __version__,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.state.step,
            "lr": learning_rate(self.cfg, self.state.step, self.state.lr_scale),
            "train_state": vars(self.state).copy(),
            "rng": rngs,
            "config": self.cfg.to_dict(),
            "scale": self.scale,
            "max_seq_len": self.max_len,
            "categories": self.categories,
        }

    def save(self, *, keep: bool = False) -> bool:
        """Write ckpt_last.pt (and ckpt_step<N>.pt when keep). Refuses NaN weights. Collective under DDP."""
        state = self.checkpoint_state()  # all ranks take part (RNG gather)
        if not weights_finite(self.model):  # identical on every rank: DDP keeps the weights in step
            self.log({"event": "refused_to_save_nonfinite_weights", "step": self.state.step},
                     echo=f"step {self.state.step}: weights are not finite; checkpoint NOT written")
            return False
        if self.ddp.main:
            save_checkpoint(self.out / "ckpt_last.pt", state)
            if keep:
                save_checkpoint(self.out / f"ckpt_step{self.state.step:07d}.pt", state)
        if self.ddp.enabled:
            dist.barrier()
        self.last_good = self.out / "ckpt_last.pt"
        return True

    def rollback(self) -> None:
        """After nan_patience bad steps in a row: reload the last good checkpoint, lower the learning rate."""
        factor = self.cfg.train.rollback_lr_factor
        if self.last_good is not None and self.last_good.is_file():
            ckpt = load_checkpoint(self.last_good, map_location=self.device)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            source = str(self.last_good)
        else:
            source = "no checkpoint yet: weights kept"
        self.state.lr_scale *= factor
        self.state.rollbacks += 1
        self.state.bad_in_a_row = 0
        self.log({"event": "nan_rollback", "step": self.state.step, "from": source, "lr_scale": self.state.lr_scale},
                 echo=f"{self.cfg.train.nan_patience} non-finite steps in a row: rolled back ({source}), "
                      f"learning rate x{factor} (now x{self.state.lr_scale:g})")

    def log(self, record: dict[str, Any], echo: str | None = None) -> None:
        if not self.ddp.main:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None and "step" in record:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    self.writer.add_scalar(k, v, record["step"])
        if echo:
            _write_out(echo)

    def sample_grid(self) -> None:
        """PNG grid of corrupted | healed | original for a few validation sketches."""
        from sketchheal.sketch.render import render
        from sketchheal.inference.sample import heal_images

        if not self.ddp.main:
            return
        self.model.eval()
        self.valid_data.set_epoch(0)
        items = [self.valid_data[i] for i in range(min(8, len(self.valid_data)))]
        batch = torch.utils.data.default_collate(items)
        healed = heal_images(self.model, batch["corrupted"].to(self.device), max_len=self.max_len,
                             temperature=0.1, generator=torch.Generator().manual_seed(0))
        size = self.cfg.data.image_size
        rows = []
        for i, s3 in enumerate(healed):
            try:
                h = render(s3, size=size, mode=self.cfg.data.render_mode)
            except ValueError:  # an empty healed sketch
                h = -np.ones((size, size), np.float32)
            rows.append(np.concatenate([batch["corrupted"][i, 0].numpy(), h, batch["clean"][i, 0].numpy()], 1))
        grid = np.concatenate(rows, 0)
        img = ((1 - (grid + 1) / 2) * 255).astype(np.uint8)  # black ink on white
        _write_png(self.out / "samples" / f"step{self.state.step:07d}.png", img)

    # ------------------------------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t = self.cfg.train
        per_epoch = batches_per_epoch(len(self.train_data), t.batch_size)
        stop = {"flag": False}

        def on_signal(signum, frame):  # finish the current step, checkpoint, exit
            stop["flag"] = True

        old = signal.signal(signal.SIGTERM, on_signal) if self.ddp.main and _main_thread() else None
        bar = None
        if self.ddp.main and self.progress:
            from tqdm import tqdm
            bar = tqdm(total=t.steps, initial=self.state.step, desc="train", unit="step", dynamic_ncols=True)
        self.log({"event": "start", "step": self.state.step, "world": self.ddp.world, "device": str(self.device),
                  "scale": self.scale, "train_sketches": len(self.train_set), "valid_sketches": len(self.valid_set),
                  "dropped": self.train_set.dropped, "parameters": _count(self.model),
                  "init_from": self.cfg.train.init_from})
        t0, seen, window_start = time.time(), 0, time.time()
        interrupted = False
        try:
            while self.state.step < t.steps and not stop["flag"]:
                epoch, start = divmod(self.state.step, per_epoch)
                for batch in self._loader(self.train_data, epoch, start, t.batch_size):
                    logged = self.train_step(self._to_device(batch))
                    if logged is None:
                        if self.state.bad_in_a_row >= t.nan_patience:
                            self.rollback()
                            break  # restart the epoch loop at the restored step
                        continue
                    seen += t.batch_size
                    step = self.state.step
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{logged['loss']:.3f}", sk_s=f"{seen / (time.time() - t0):.0f}")
                    if step % t.log_every == 0 or step == t.steps:
                        now = time.time()
                        self.log({"step": step, **logged, "bad_steps": self.state.bad_steps,
                                  "sketches_per_s": round(t.log_every * t.batch_size / max(now - window_start, 1e-9), 2),
                                  "elapsed_s": round(now - t0, 2)})
                        window_start = now
                    if t.eval_every and step % t.eval_every == 0:
                        v = self.validate()
                        self.state.best_valid = min(self.state.best_valid, v["valid_loss"])
                        self.log({"step": step, **v})
                        if bar is not None:
                            bar.set_postfix(loss=f"{logged['loss']:.3f}", valid=f"{v['valid_loss']:.3f}")
                    if t.sample_every and step % t.sample_every == 0:
                        self.sample_grid()
                    if t.checkpoint_every and step % t.checkpoint_every == 0:
                        self.save(keep=True)
                    if step >= t.steps or stop["flag"]:
                        break
        except KeyboardInterrupt:
            interrupted = True
        except Exception:
            # e.g. a DataLoader worker killed from outside: the weights are still those of a finished step, so
            # keep them before reporting the error (a resume then loses nothing).
            self.save(keep=False)
            raise
        finally:
            if bar is not None:
                bar.close()
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        saved = self.save(keep=False)
        summary = {"step": self.state.step, "bad_steps": self.state.bad_steps, "rollbacks": self.state.rollbacks,
                   "best_valid_loss": self.state.best_valid, "elapsed_s": round(time.time() - t0, 2),
                   "interrupted": interrupted or stop["flag"], "checkpoint_saved": saved, "world": self.ddp.world}
        if self.dump_rank_weights:
            from safetensors.torch import save_file
            with atomic_path(self.out / f"weights_rank{self.ddp.rank}.safetensors") as tmp:
                save_file({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}, str(tmp))
        self.log({"event": "end", **summary})
        if self.ddp.main:
            with atomic_write(self.out / "summary.json", "w") as f:
                f.write(json.dumps(summary, indent=2))
        if self.writer is not None:
            self.writer.close()
        if interrupted:
            raise KeyboardInterrupt
        return summary


def train(cfg: Config, out_dir: str | os.PathLike, *, resume: bool = False, progress: bool = True,
          dump_rank_weights: bool = False) -> dict[str, Any]:
    """Train (or resume) a model; returns the run summary. See ``sketchheal train --help``."""
    trainer = Trainer(cfg, out_dir, resume=resume, progress=progress, dump_rank_weights=dump_rank_weights)
    try:
        return trainer.run()
    finally:
        if trainer.ddp.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------------
# small helpers


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _write_png(path: Path, img: np.ndarray) -> None:
    import cv2
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"could not encode {path}")
    with atomic_write(path, "wb") as f:
        f.write(buf.tobytes())


def _write_out(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# CLI


def build_config(preset_name: str, data: list[str] | None, overrides: list[str], steps: int | None = None,
                 device: str | None = None, workers: int | None = None, init_from: str | None = None) -> Config:
    cfg = preset(preset_name)
    if data:
        cfg.data.paths = [str(p) for p in data]
    if init_from:  # the architecture comes from the weights we start from
        cfg.model = init_model_config(init_from)
        cfg.data.image_size = cfg.model.image_size
        cfg.train.init_from = str(init_from)
    cfg = apply_overrides(cfg, overrides)
    if steps is not None:
        cfg.train.steps = steps
    if device is not None:
        cfg.train.device = device
    if workers is not None:
        cfg.data.num_workers = workers
    return cfg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a healing model (CPU, GPU, or many GPUs under torchrun)",
        description="Train Lmser-pix2seq (or an ablation). Under `torchrun --nproc_per_node=K` the same command "
                    "trains with DistributedDataParallel.",
    )
    p.add_argument("--preset", default="cpu-small", choices=PRESETS, help="starting configuration (default cpu-small)")
    p.add_argument("--data", nargs="+", metavar="PATH", help="sketch-rnn .npz or QuickDraw .ndjson files")
    p.add_argument("-o", "--out", default=None, help="run directory (default runs/<preset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its ckpt_last.pt")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from these weights (release dir, checkpoint or run dir; e.g. the bundled model "
                        "`sketchheal.utils.paths.BUNDLED_MODEL_DIR`): fine-tune on --data, or restart a schedule; "
                        "the model settings come from MODEL, the optimiser and step count start fresh")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (overrides train.steps)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (overrides data.num_workers)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set train.lr=3e-4 --set model.encoder=cnn")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--dump-rank-weights", action="store_true",
                   help="write each rank's final weights (to check that DDP ranks agree)")
    p.set_defaults(func=_cli_train)


def _cli_train(args: argparse.Namespace) -> int:
    out = args.out or f"runs/{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.resume:
        if args.out is None:
            raise ValueError("--resume needs --out RUN_DIR")
        # Start from the run's own config; only run-time fields (RESUME_MAY_CHANGE) may be overridden.
        cfg = Config.from_dict(load_checkpoint(Path(out) / "ckpt_last.pt")["config"])
        allowed = {f"{s}.{n}" for s, n in RESUME_MAY_CHANGE}
        bad = [o for o in args.overrides if o.split("=", 1)[0] not in allowed]
        if bad or args.data or args.init_from:
            raise ValueError(f"--resume keeps the run's model, data and optimisation; only "
                             f"{', '.join(sorted(allowed))} may change (got {bad or (['--data'] if args.data else ['--init-from'])})")
        cfg = apply_overrides(cfg, args.overrides)
        if args.steps is not None:
            cfg.train.steps = args.steps
        if args.device is not None:
            cfg.train.device = args.device
        if args.workers is not None:
            cfg.data.num_workers = args.workers
    else:
        cfg = build_config(args.preset, args.data, args.overrides, args.steps, args.device, args.workers,
                           init_from=args.init_from)
    summary = train(cfg, out, resume=args.resume, progress=not args.no_progress,
                    dump_rank_weights=args.dump_rank_weights)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"run_dir": out, **summary}, indent=2))
    return 0
