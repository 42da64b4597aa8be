"""Training: one loop for a laptop CPU, one GPU, or many GPUs under ``torchrun`` (DDP).

- Resumable bit for bit: the checkpoint holds model, optimiser, step, learning-rate state and every RNG state; the
  data order and the masks are functions of (seed, epoch, index), so a resumed run sees the same batches.
- NaN-proof: a step whose loss or gradients are not finite is skipped and counted; after ``nan_patience`` bad steps
  in a row the run rolls back to the last good checkpoint with a lower learning rate. NaN weights are never saved,
  nor are weights that took no step.
- Logged: ``metrics.jsonl`` (strict JSON) always, TensorBoard when installed, a tqdm bar, PNG grids
  (corrupted | healed | original).
- Stoppable: SIGTERM finishes the current step, saves and ends the run; :func:`train` reports the signal, so
  ``sketchheal train`` exits with 128 + its number (143) and a scheduler can tell a stopped run from a finished one.
- Distributed: under ``torchrun`` each rank takes its slice of every global batch, every rank takes the same
  decisions (skip, stop), and only rank 0 writes.

The run itself (data, model, optimiser, resume state) is built by :func:`sketchheal.training.setup.build_run`; the
run folder's rules (lock, refusal, cleanup) are :mod:`sketchheal.training.rundir`'s. This module only loops.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from sketchheal.config import Config
from sketchheal.data.dataset import make_loader
from sketchheal.data.sampler import EpochBatchSampler, batches_per_epoch
from sketchheal.inference.sample import heal_images
from sketchheal.model.weights import read_checkpoint, weights_finite
from sketchheal.sketch.render import render_or_blank
from sketchheal.training.checkpoint import CHECKPOINT_VERSION, LAST, rng_state, save_checkpoint, step_name
from sketchheal.training.distributed import (
    all_mean, all_min, barrier, gather_objects, launched_rank, teardown_distributed,
)
from sketchheal.training.rundir import prepare_run_folder
from sketchheal.utils.fileio import json_dumps as dumps
from sketchheal.training.setup import Run, build_run, say
from sketchheal.utils.fileio import atomic_path, atomic_write, write_png
from sketchheal.utils.version import __version__


def learning_rate(cfg: Config, step: int, lr_scale: float) -> float:
    """Published schedule: lr * decay^step, floored at min_lr (then times the NaN roll-back factor); during the
    first ``warmup_steps`` steps also times ``(step + 1) / warmup_steps``."""
    t = cfg.train
    warm = min(1.0, (step + 1) / t.warmup_steps) if t.warmup_steps > 0 else 1.0
    return max(t.min_lr, t.lr * t.lr_decay ** step) * warm * lr_scale


class Trainer:
    """The training loop over a built :class:`~sketchheal.training.setup.Run`."""

    def __init__(self, run: Run, *, progress: bool = True, dump_rank_weights: bool = False):
        self.built = run
        self.cfg, self.out, self.ddp, self.device = run.cfg, run.out, run.ddp, run.device
        self.model, self.ddp_model, self.optimizer, self.state = run.model, run.ddp_model, run.optimizer, run.state
        self.train_data, self.valid_data = run.train_data, run.valid_data
        self.scale, self.max_len, self.categories, self.autocast = run.scale, run.max_len, run.categories, run.autocast
        self.progress, self.dump_rank_weights = progress, dump_rank_weights
        self.last_good: Path | None = run.resumed_from
        self.writer = None
        self._signal: int | None = None  # set by the SIGTERM handler
        self.stopped_by: int | None = None  # the signal every rank agreed to stop on

    @classmethod
    def from_config(cls, cfg: Config, out_dir: str | os.PathLike, *, resume: bool = False,
                    **kwargs: Any) -> "Trainer":
        """``Trainer(build_run(cfg, out_dir, resume=resume), **kwargs)``."""
        return cls(build_run(cfg, out_dir, resume=resume), **kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # one step

    def _loader(self, dataset, epoch: int, start: int, batch_size: int) -> torch.utils.data.DataLoader:
        dataset.set_epoch(epoch)
        sampler = EpochBatchSampler(len(dataset), batch_size=batch_size, seed=self.cfg.train.seed, epoch=epoch,
                                    start=start, rank=self.ddp.rank, world=self.ddp.world)
        workers = self.cfg.data.num_workers
        # The workers' base seed comes from this seed, not from the global RNG, so that creating a loader (at each
        # epoch, and once more on resume) leaves the training RNG stream untouched.
        return make_loader(dataset, batch_sampler=sampler, num_workers=workers, seed=self.cfg.train.seed * 100_003 + epoch,
                           pin_memory=self.device.type == "cuda", persistent_workers=False,
                           prefetch_factor=4 if workers else None)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _forward_losses(self, batch: dict[str, torch.Tensor], *, sample_z: bool, model=None) -> dict[str, torch.Tensor]:
        model = model or self.ddp_model
        ctx = (torch.autocast(self.device.type, dtype=self.autocast) if self.autocast is not None
               else contextlib.nullcontext())
        with ctx:
            out = model(batch["corrupted"], batch["strokes"], batch["length"], sample_z=sample_z)
        return self.model.compute_losses(out, batch, **self.cfg.train.loss_weights())

    def _clip(self) -> float:
        """Gradient-norm clip per module (encoder, decoder), as published. Returns the larger pre-clip norm."""
        c = self.cfg.train.grad_clip
        norms = [torch.nn.utils.clip_grad_norm_(m.parameters(), c if c > 0 else float("inf"))
                 for m in (self.model.encoder, self.model.decoder)]
        return float(max(n.item() for n in norms))

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float] | None:
        """One optimiser step. Returns the logged losses, or None when the step was skipped as non-finite.

        Every rank takes the same decisions: the step is skipped when any rank's loss or gradients are not finite,
        and the run stops (``stopped_by``) when any rank has received SIGTERM.
        """
        self.ddp_model.train()
        lr = learning_rate(self.cfg, self.state.step, self.state.lr_scale)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        losses = self._forward_losses(batch, sample_z=True)
        losses["loss"].backward()
        grad_norm = self._clip()
        finite = math.isfinite(losses["loss"].item()) and math.isfinite(grad_norm)
        flags = all_min(self.ddp, torch.tensor([int(finite), -(self._signal or 0)], dtype=torch.int32), self.device)
        if int(flags[1]) < 0:
            self.stopped_by = -int(flags[1])
        if not bool(flags[0]):
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
        return all_mean(self.ddp, {f"valid_{k}": v / max(count, 1) for k, v in sums.items()}, self.device)

    # ------------------------------------------------------------------------------------------------------------
    # checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        """The checkpoint dict (see :mod:`sketchheal.training.checkpoint`). Collective under DDP (RNG gather)."""
        return {
            "checkpoint_version": CHECKPOINT_VERSION,
            "version": __version__,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.state.step,
            "lr": learning_rate(self.cfg, self.state.step, self.state.lr_scale),
            "train_state": self.state.to_dict(),
            "rng": gather_objects(self.ddp, rng_state()),
            "config": self.cfg.to_dict(),
            "scale": self.scale,
            "max_seq_len": self.max_len,
            "categories": self.categories,
        }

    def save(self, *, keep: bool = False) -> bool:
        """Write ckpt_last.pt (and ckpt_step<N>.pt when keep). Collective under DDP.

        Refuses (returns False) before the first optimiser step (random weights are not a model) and when the
        weights are not finite."""
        if self.state.step == 0:  # the same on every rank
            return False
        state = self.checkpoint_state()  # all ranks take part (RNG gather)
        if not weights_finite(self.model):  # identical on every rank: DDP keeps the weights in step
            self.log({"event": "refused_to_save_nonfinite_weights", "step": self.state.step},
                     echo=f"step {self.state.step}: weights are not finite; checkpoint NOT written")
            return False
        if self.ddp.main:
            save_checkpoint(self.out / LAST, state)
            if keep:
                save_checkpoint(self.out / step_name(self.state.step), state)
        barrier(self.ddp)
        self.last_good = self.out / LAST
        return True

    def rollback(self) -> None:
        """After nan_patience bad steps in a row: reload the last good checkpoint, lower the learning rate."""
        factor = self.cfg.train.rollback_lr_factor
        if self.last_good is not None and self.last_good.is_file():
            ckpt = read_checkpoint(self.last_good, map_location=self.device)
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

    # ------------------------------------------------------------------------------------------------------------
    # records

    def log(self, record: dict[str, Any], echo: str | None = None) -> None:
        """Append ``record`` to metrics.jsonl (strict JSON: non-finite numbers as null) and TensorBoard."""
        if not self.ddp.main:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(dumps(record) + "\n")
        if self.writer is not None and "step" in record:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    self.writer.add_scalar(k, v, record["step"])
        if echo:
            say(echo)

    def sample_grid(self) -> None:
        """PNG grid of corrupted | healed | original for a few validation sketches."""
        if not self.ddp.main:
            return
        self.model.eval()
        self.valid_data.set_epoch(0)
        items = [self.valid_data[i] for i in range(min(8, len(self.valid_data)))]
        batch = torch.utils.data.default_collate(items)
        healed = heal_images(self.model, batch["corrupted"].to(self.device), max_len=self.max_len,
                             temperature=0.1, generator=torch.Generator().manual_seed(0))
        size, mode = self.cfg.data.image_size, self.cfg.data.render_mode
        rows = [np.concatenate([batch["corrupted"][i, 0].numpy(), render_or_blank(s3, size, mode),
                                batch["clean"][i, 0].numpy()], 1) for i, s3 in enumerate(healed)]  # (N, 3N) each
        grid = np.concatenate(rows, 0)  # (8N, 3N) in [-1, 1], ink +1
        write_png(self.out / "samples" / f"step{self.state.step:07d}.png",
                  ((1 - (grid + 1) / 2) * 255).astype(np.uint8))  # black ink on white

    # ------------------------------------------------------------------------------------------------------------
    # the loop

    def run(self) -> dict[str, Any]:
        """Train to ``train.steps`` (or until SIGTERM / Ctrl-C); save; return the summary (also summary.json)."""
        t = self.cfg.train
        per_epoch = batches_per_epoch(len(self.train_data), t.batch_size)

        def on_signal(signum, frame):  # finish the current step, checkpoint, stop
            self._signal = signum

        old = signal.signal(signal.SIGTERM, on_signal) if _main_thread() else None
        bar = None
        if self.ddp.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.writer = _tensorboard(self.out)
            for note in self.built.notes:
                say(note)
            if self.progress:
                bar = tqdm(total=t.steps, initial=self.state.step, desc="train", unit="step", dynamic_ncols=True)
        train_set, valid_set = self.built.train_set, self.built.valid_set
        self.log({"event": "start", "step": self.state.step, "world": self.ddp.world, "device": str(self.device),
                  "scale": self.scale, "train_sketches": len(train_set), "valid_sketches": len(valid_set),
                  "batch_size": t.batch_size, "dropped": train_set.dropped, "parameters": _count(self.model),
                  "init_from": t.init_from, "notes": self.built.notes})
        t0, seen, window_start = time.time(), 0, time.time()
        interrupted = False
        try:
            while self.state.step < t.steps and self.stopped_by is None:
                epoch, start = divmod(self.state.step, per_epoch)
                for batch in self._loader(self.train_data, epoch, start, t.batch_size):
                    logged = self.train_step(self._to_device(batch))
                    if logged is None:
                        if self.stopped_by is not None:
                            break
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
                    if step >= t.steps or self.stopped_by is not None:
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
        if self.stopped_by is not None and self.ddp.main:
            say(f"stopped by signal {self.stopped_by} at step {self.state.step}"
                + (f"; saved {self.out / LAST}" if saved else "; nothing saved"))
        summary = {"step": self.state.step, "bad_steps": self.state.bad_steps, "rollbacks": self.state.rollbacks,
                   "best_valid_loss": self.state.best_valid, "elapsed_s": round(time.time() - t0, 2),
                   "interrupted": interrupted or self.stopped_by is not None, "signal": self.stopped_by,
                   "checkpoint_saved": saved, "world": self.ddp.world}
        if not saved and self.state.step == 0 and self.ddp.main:
            say(f"{self.out}: no optimiser step was taken, so no checkpoint was written")
        if self.dump_rank_weights:
            with atomic_path(self.out / f"weights_rank{self.ddp.rank}.safetensors") as tmp:
                save_file({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}, str(tmp))
        self.log({"event": "end", **summary})
        if self.ddp.main:
            with atomic_write(self.out / "summary.json", "w") as f:
                f.write(dumps(summary, indent=2))
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if interrupted:
            raise KeyboardInterrupt
        return summary


def train(cfg: Config, out_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, dump_rank_weights: bool = False) -> dict[str, Any]:
    """Train (or resume) a model in the run folder ``out_dir``; returns the run summary.

    A new run refuses a folder that already holds files unless ``overwrite`` (the old run's files are deleted
    first); ``resume`` continues the run there. The folder is locked while the run writes (a second process stops
    with an error naming the PID). ``summary["signal"]`` is the signal that stopped the run early (SIGTERM: 15),
    else None. See ``sketchheal train --help``.
    """
    cfg.validate()
    lock = prepare_run_folder(out_dir, resume=resume, overwrite=overwrite) if launched_rank() == 0 else None
    try:
        run = build_run(cfg, out_dir, resume=resume)
        try:
            if run.ddp.main:
                with atomic_write(run.out / "config.json", "w") as f:
                    f.write(run.cfg.to_json())
            return Trainer(run, progress=progress, dump_rank_weights=dump_rank_weights).run()
        finally:
            teardown_distributed(run.ddp)
    finally:
        if lock is not None:
            lock.release()


# ----------------------------------------------------------------------------------------------------------------
# small helpers


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional dependency
    except Exception:  # tensorboard not installed
        return None
    return SummaryWriter(str(out / "tensorboard"))


__all__ = ["Trainer", "learning_rate", "train"]
