"""Sketch-a-Net (Yu et al., "Sketch-a-Net that beats humans", BMVC 2015): the classifier of the recognition-accuracy
metric of sketch healing. A pure ``nn.Module`` (training: ``sketchheal.training.classifier``; loading and
classifying: ``sketchheal.inference.classify``).

Single network, single channel:

    L1 conv 15x15/3, 64 -> maxpool 3/2 -> L2 conv 5x5/1, 128 -> maxpool 3/2
    -> L3, L4, L5 conv 3x3/1 pad 1, 256 -> maxpool 3/2
    -> L6 conv 7x7 (= fully connected), 512, dropout 0.5 -> L7 conv 1x1, 512, dropout 0.5 -> L8 conv 1x1, classes
    (ReLU after every layer but L8)

Adaptation to other input sizes (``SketchANet(image_size=N)``): L1's kernel and stride shrink with N
(kernel = 15 N / 225 rounded to an odd number >= 3, stride = 3 N / 225 rounded, >= 1), and L6's kernel is whatever
spatial size is left, so L6 stays a fully connected layer. N = 225 gives the paper's network exactly; at our
default N = 128 L1 is 9x9/2 and L6 is 5x5. Other differences from the paper: batch normalisation after each
convolution (``batch_norm=True``, for stable training from scratch with Adam; the 2015 network has none), no
multi-scale / stroke-order ensemble (the paper's final model is an ensemble of such networks), and an optional
channel-width multiplier ``width`` (1.0 = the paper's channel counts) used by the tests.

Inputs follow the package convention: ``(B, 1, N, N)`` float32, ink +1, background -1, drawn by
``sketchheal.sketch.render.render(s3, size=N, mode=...)``.
"""

from __future__ import annotations

import torch
from torch import nn

from sketchheal.config import ClassifierConfig

__all__ = ["MIN_IMAGE_SIZE", "SketchANet", "build_network", "sketchanet_geometry"]

MIN_IMAGE_SIZE = 28


def _conv_out(n: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    return (n + 2 * pad - kernel) // stride + 1


def sketchanet_geometry(image_size: int) -> dict[str, int]:
    """L1 kernel/stride, the spatial size after every stage and L6's kernel for an input of side ``image_size``."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"Sketch-a-Net needs image_size >= {MIN_IMAGE_SIZE}, got {image_size}")
    k1 = max(3, int(round(15 * image_size / 225)))
    k1 += 1 - k1 % 2  # odd
    s1 = max(1, int(round(3 * image_size / 225)))
    n1 = _conv_out(image_size, k1, s1)
    p1 = _conv_out(n1, 3, 2)
    n2 = _conv_out(p1, 5)
    p2 = _conv_out(n2, 3, 2)
    p5 = _conv_out(p2, 3, 2)  # L3-L5 keep the size (pad 1)
    if min(n1, p1, n2, p2, p5) < 1:
        raise ValueError(f"image_size {image_size} is too small for Sketch-a-Net")
    return {"l1_kernel": k1, "l1_stride": s1, "after_l1": n1, "after_pool1": p1, "after_l2": n2,
            "after_pool2": p2, "after_pool5": p5, "l6_kernel": p5}


class SketchANet(nn.Module):
    """Sketch-a-Net (Yu et al. 2015) for ``(B, 1, N, N)`` images -> ``(B, n_classes)`` logits."""

    def __init__(self, n_classes: int, *, image_size: int = 128, width: float = 1.0, dropout: float = 0.5,
                 batch_norm: bool = True):
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        geo = sketchanet_geometry(image_size)
        self.image_size, self.geometry = image_size, geo
        c = [max(4, int(round(ch * width))) for ch in (64, 128, 256, 256, 256, 512, 512)]

        def block(cin: int, cout: int, k: int, s: int = 1, p: int = 0) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, p, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(1, c[0], geo["l1_kernel"], geo["l1_stride"]), nn.MaxPool2d(3, 2),
            *block(c[0], c[1], 5), nn.MaxPool2d(3, 2),
            *block(c[1], c[2], 3, 1, 1), *block(c[2], c[3], 3, 1, 1), *block(c[3], c[4], 3, 1, 1),
            nn.MaxPool2d(3, 2),
        )
        self.head = nn.Sequential(
            *block(c[4], c[5], geo["l6_kernel"]), nn.Dropout(dropout),
            *block(c[5], c[6], 1), nn.Dropout(dropout),
            nn.Conv2d(c[6], n_classes, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 1, N, N) in [-1, 1] -> logits (B, n_classes)."""
        if images.ndim != 4 or images.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(f"expected images (B, 1, {self.image_size}, {self.image_size}), "
                             f"got {tuple(images.shape)}")
        return self.head(self.features(images)).flatten(1)


def build_network(cfg: ClassifierConfig, n_classes: int) -> SketchANet:
    """The network that ``cfg`` describes, for ``n_classes`` categories."""
    return SketchANet(n_classes, image_size=cfg.image_size, width=cfg.width, dropout=cfg.dropout,
                      batch_norm=cfg.batch_norm)
