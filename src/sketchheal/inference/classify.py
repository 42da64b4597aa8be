"""The classifier's inference side: load a ``sketchheal train-classifier`` checkpoint, classify images.

The recognition-accuracy metric of ``sketchheal evaluate`` uses it; the training loop is
``sketchheal.training.classifier``. Checkpoints are read with ``torch.load(weights_only=True)``
(``sketchheal.model.weights.read_torch_file``): loading one runs no code from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sketchheal.config import ClassifierConfig
from sketchheal.model.sketchanet import SketchANet, build_network
from sketchheal.model.weights import read_torch_file
from sketchheal.utils.devices import pick_device

__all__ = ["CHECKPOINT_NAME", "FORMAT", "Classifier", "classify", "load_classifier", "map_labels"]

CHECKPOINT_NAME = "classifier.pt"
FORMAT = "sketchheal-classifier"  # the "format" entry of every classifier checkpoint


@dataclass
class Classifier:
    """A loaded classifier: the network (eval mode, on ``device``) and how to draw its inputs."""

    net: SketchANet
    categories: list[str]
    image_size: int
    render_mode: str
    device: torch.device
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float | None:
        return self.meta.get("test_accuracy")


def _checkpoint_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no classifier checkpoint here; train one with `sketchheal train-classifier`")
    return p


def load_classifier(path: str | os.PathLike, device: str | torch.device | None = None) -> Classifier:
    """Load a checkpoint written by ``train_classifier`` (the file, or the folder holding ``classifier.pt``)."""
    file = _checkpoint_file(path)
    ckpt = read_torch_file(file)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{file}: not a sketchheal classifier checkpoint (written by `sketchheal train-classifier`)")
    cfg = ClassifierConfig.from_dict(ckpt["config"])
    net = build_network(cfg, len(ckpt["categories"]))
    net.load_state_dict(ckpt["model"])
    dev = pick_device(device)
    net.to(dev).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model",)}
    meta["path"] = str(file)
    return Classifier(net=net, categories=list(ckpt["categories"]), image_size=cfg.image_size,
                      render_mode=cfg.render_mode, device=dev, meta=meta)


@torch.no_grad()
def classify(clf: Classifier, images: np.ndarray | torch.Tensor, batch_size: int = 256
             ) -> tuple[np.ndarray, np.ndarray]:
    """Classify images (B, N, N) or (B, 1, N, N) in [-1, 1] (N = ``clf.image_size``).

    Returns ``(labels (B,) int64, probs (B, C) float32)``; label c means ``clf.categories[c]``.
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1:] != (1, clf.image_size, clf.image_size):
        raise ValueError(f"classifier expects images of side {clf.image_size} (B, [1,] N, N), "
                         f"got {tuple(x.shape)}; render them with size={clf.image_size}")
    clf.net.eval()
    probs = []
    for start in range(0, x.shape[0], batch_size):
        logits = clf.net(x[start:start + batch_size].to(clf.device))
        probs.append(logits.float().softmax(1).cpu())
    if not probs:
        return np.zeros(0, np.int64), np.zeros((0, len(clf.categories)), np.float32)
    p = torch.cat(probs).numpy()
    return p.argmax(1).astype(np.int64), p.astype(np.float32)


def map_labels(names: Sequence[str], labels: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Labels (N,) indexing ``names`` -> labels indexing ``categories`` (ValueError for an unknown category)."""
    index = {c: i for i, c in enumerate(categories)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"categories {missing} are not among the classifier's {list(categories)}")
    lut = np.array([index[n] for n in names], dtype=np.int64)
    return lut[np.asarray(labels, dtype=np.int64)]
