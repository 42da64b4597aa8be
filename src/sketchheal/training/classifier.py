"""Training the Sketch-a-Net classifier of the recognition-accuracy metric (``sketchheal train-classifier``).

The sketch-healing papers (SketchHealer, SketchLattice, SP-gra2seq, Lmser-pix2seq) measure healing quality by
how often a sketch classifier "trained on the full training sketches" recognises the healed sketches. None of
them releases that classifier, its input size (225 px in SP-gra2seq, 256 px in Lmser-pix2seq) or its weights, so
we train our own and report its accuracy on the uncorrupted test sketches as the ceiling of that metric.

The network is :mod:`sketchheal.model.sketchanet` (Yu et al. 2015, adapted to other input sizes); loading and
classifying is :mod:`sketchheal.inference.classify`; the settings are :class:`sketchheal.config.ClassifierConfig`.
Training: AdamW with a 2 % linear warm-up and a cosine decay to 1 %, on uncorrupted renderings (``(B, 1, N, N)``,
ink +1, background -1, the published "reference" rendering by default) with a small random affine jitter.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sketchheal.config import ClassifierConfig
from sketchheal.data.dataset import RenderedSketches, make_loader
from sketchheal.inference.classify import CHECKPOINT_NAME, FORMAT, Classifier, classify, map_labels
from sketchheal.model.sketchanet import build_network
from sketchheal.sketch.io import load_sketches
from sketchheal.utils.devices import pick_device
from sketchheal.utils.fileio import atomic_path, atomic_write, json_dumps as dumps
from sketchheal.utils.version import __version__

REPORT_NAME = "classifier.json"


# ----------------------------------------------------------------------------------------------------------------
# data


def jitter(images: torch.Tensor, cfg: ClassifierConfig, generator: torch.Generator) -> torch.Tensor:
    """Random small affine transform of images (B, 1, N, N) in [-1, 1]; the background stays -1."""
    b = images.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    scale = uniform(1 - cfg.jitter_scale, 1 + cfg.jitter_scale)
    angle = uniform(-cfg.jitter_rotate, cfg.jitter_rotate) * math.pi / 180
    shift = uniform(-2 * cfg.jitter_shift, 2 * cfg.jitter_shift), uniform(-2 * cfg.jitter_shift, 2 * cfg.jitter_shift)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0) if cfg.jitter_flip else torch.ones(b)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[0]], 1),
                         torch.stack([sin * flip, cos, shift[1]], 1)], 1).to(images)  # (B, 2, 3) output -> input
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    ink = F.grid_sample((images + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return ink * 2 - 1


def _lr_at(cfg: ClassifierConfig, step: int) -> float:
    warm = max(1, int(0.02 * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _infinite_loader(dataset: torch.utils.data.Dataset, cfg: ClassifierConfig, num_workers: int
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of uniformly drawn training items, forever (a fresh seeded permutation per pass)."""
    epoch = 0
    while True:
        yield from make_loader(dataset, cfg.batch_size, shuffle=True, seed=cfg.seed * 1_000_003 + epoch,
                               drop_last=len(dataset) >= cfg.batch_size, num_workers=num_workers,
                               persistent_workers=False)
        epoch += 1


@torch.no_grad()
def evaluate_accuracy(clf: Classifier, sketches, labels: np.ndarray, *, batch_size: int = 256, num_workers: int = 0,
                      progress: bool = False) -> dict[str, Any]:
    """Accuracy of ``clf`` on uncorrupted renderings of ``sketches`` with ``labels`` (N,) in clf's label space.

    Returns ``accuracy`` (NaN without sketches), ``n`` and ``per_category`` (name -> accuracy; categories without
    sketches are left out)."""
    data = RenderedSketches(sketches, labels, image_size=clf.image_size, render_mode=clf.render_mode)
    loader = make_loader(data, batch_size, num_workers=num_workers, persistent_workers=False)
    preds = []
    for images, _ in (tqdm(loader, desc="classifier test", unit="batch", dynamic_ncols=True) if progress else loader):
        preds.append(classify(clf, images, batch_size)[0])
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    labels = np.asarray(labels, dtype=np.int64)

    def accuracy(mask: np.ndarray) -> float:
        return float(np.mean(pred[mask] == labels[mask])) if mask.any() else math.nan

    per_cat = {name: accuracy(labels == c) for c, name in enumerate(clf.categories) if (labels == c).any()}
    return {"accuracy": accuracy(np.ones(len(labels), bool)), "n": int(len(labels)), "per_category": per_cat}


# ----------------------------------------------------------------------------------------------------------------
# training


def train_classifier(data_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                     cfg: ClassifierConfig | None = None, *, device: str | torch.device | None = None,
                     num_workers: int = 2, test_split: str = "test", progress: bool = True) -> Path:
    """Train Sketch-a-Net (``cfg``: a :class:`~sketchheal.config.ClassifierConfig`, default the defaults) on the
    uncorrupted training sketches of ``data_paths`` (one category per file).

    Saves ``out_dir/classifier.pt`` (weights, config, category list, test accuracy) and ``out_dir/classifier.json``
    (the same without weights; strict JSON), both atomically, and returns the checkpoint path. The test accuracy is
    measured on the uncorrupted ``test_split`` sketches (QuickDraw .ndjson files have no split: there it is on the
    same drawings as training, and the report says so).
    """
    cfg = (cfg or ClassifierConfig()).validate()
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    paths = [str(p) for p in data_paths]
    train_set = load_sketches(paths, split="train", max_seq_len=cfg.max_seq_len)
    categories = list(train_set.categories)
    if len(train_set) == 0:
        raise ValueError(f"no training sketches with <= {cfg.max_seq_len} points in {paths}")
    torch.manual_seed(cfg.seed)
    dev = pick_device(device)
    net = build_network(cfg, len(categories)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = RenderedSketches(train_set, train_set.labels, image_size=cfg.image_size, render_mode=cfg.render_mode)
    batches = _infinite_loader(data, cfg, num_workers)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    bar = tqdm(total=cfg.steps, desc="train-classifier", unit="step", dynamic_ncols=True) if progress else None
    history = []
    net.train()
    for step in range(cfg.steps):
        images, labels = next(batches)
        images = jitter(images, cfg, gen).to(dev)
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step)
        logits = net(images)
        loss = F.cross_entropy(logits, labels.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == cfg.steps - 1 or bar is not None:
            value = loss.item()
            acc = float((logits.detach().argmax(1).cpu() == labels).float().mean())
            if step % 50 == 0 or step == cfg.steps - 1:
                history.append({"step": step, "loss": value, "train_batch_accuracy": acc})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", acc=f"{acc:.2f}")
    if bar is not None:
        bar.close()

    net.eval()
    clf = Classifier(net=net, categories=categories, image_size=cfg.image_size, render_mode=cfg.render_mode,
                     device=dev)
    test_set = load_sketches(paths, split=test_split, max_seq_len=cfg.max_seq_len)
    test_labels = map_labels(test_set.categories, test_set.labels, categories)
    test = evaluate_accuracy(clf, test_set, test_labels, num_workers=num_workers, progress=progress)
    same_drawings = all(str(p).endswith(".ndjson") for p in paths)
    meta = {
        "format": FORMAT,
        "version": __version__,
        "torch": str(torch.__version__),  # a plain str: TorchVersion would need an allow-list to load
        "config": dataclasses.asdict(cfg),
        "categories": categories,
        "data_paths": paths,
        "n_train": len(train_set),
        "test_split": test_split,
        "n_test": test["n"],
        "test_accuracy": test["accuracy"],
        "per_category_test_accuracy": test["per_category"],
        "test_note": ("ndjson files have no train/test split: the test accuracy is on the training drawings"
                      if same_drawings else "uncorrupted sketches of the test split"),
        "architecture": "Sketch-a-Net (Yu et al. 2015), single network, adapted to image_size "
                        f"{cfg.image_size}: {net.geometry}",
        "history": history,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    with atomic_path(ckpt_path) as tmp:
        torch.save({**meta, "model": state}, tmp)
    with atomic_write(out / REPORT_NAME, "w") as f:
        f.write(dumps(meta, indent=2))
    return ckpt_path


