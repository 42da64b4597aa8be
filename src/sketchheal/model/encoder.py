"""Lmser encoders: image ``(B, 1, N, N)`` -> latent Gaussian ``(mu, logvar)`` and image reconstructions.

An Lmser block is a U-shaped autoencoder (4 down blocks, 4 up blocks, skip connections that average the two paths)
run ``T = cfg.lmser_loops`` more times with shared weights: each loop re-encodes the previous reconstruction, and
the down path also receives the previous up-path features (the feedback connections). With the down features
``x1..x4`` and the up features ``y0..y3`` (docs/reference.md, "Model"):

    first pass:  x1 = down1(E(img)),          x2 = down2(x1),            x3 = down3(x2),           x4 = down4(x3)
    each loop:   x1 = (down1(E(rec)) + y1)/2,  x2 = (down2(x1) + y2)/2,   x3 = (down3(x2) + y3)/2,  x4 = down4(x3)/2
    up path:     y3 = (up4(x4) + x3)/2,       y2 = (up3(y3) + x2)/2,     y1 = (up2(y2) + x1)/2,    y0 = up1(y1)
    rec = tanh(head(y0))

``E`` is the embedding (patch embedding + position embedding for gMLP; the CNN's first down block takes the image
directly). The latent comes from the last pass's ``x4``. ``recons`` holds one reconstruction per pass (T + 1);
``recons[-1]`` is the final one, the one the image loss uses (as published).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from sketchheal.config import ModelConfig
from sketchheal.model.gmlp import GMLPBlock
from sketchheal.model.matmul import linear

ENCODERS = ("gmlp", "cnn")


class EncoderOutput(NamedTuple):
    mu: torch.Tensor  # (B, Nz)
    logvar: torch.Tensor  # (B, Nz), log sigma^2
    recons: list[torch.Tensor]  # T + 1 images (B, 1, N, N) in [-1, 1]; recons[-1] is the final reconstruction


class _LmserLoops(nn.Module):
    """The down/up/feedback schedule shared by both encoders.

    Subclasses provide ``embed(image)``, ``down`` and ``up`` (``nn.ModuleList`` of 4; ``up[k]`` is the published
    ``upsampling{k+1}``, applied in the order up[3], up[2], up[1], up[0]), ``reconstruct(y0) -> image`` and
    ``pool(x4) -> (B, width)``; ``fc_mu`` and ``fc_logvar`` map the pooled features to the latent.
    """

    loops: int

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, y0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, x4: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def up_path(self, x1, x2, x3, x4):
        y3 = (self.up[3](x4) + x3) / 2
        y2 = (self.up[2](y3) + x2) / 2
        y1 = (self.up[1](y2) + x1) / 2
        y0 = self.up[0](y1)
        return y0, y1, y2, y3

    def forward(self, image: torch.Tensor) -> EncoderOutput:
        down = self.down
        x1 = down[0](self.embed(image))
        x2 = down[1](x1)
        x3 = down[2](x2)
        x4 = down[3](x3)
        y0, y1, y2, y3 = self.up_path(x1, x2, x3, x4)
        recons = [self.reconstruct(y0)]
        for _ in range(self.loops):
            # Feedback: the reconstruction is re-embedded, and each down block also receives the up features.
            x1 = (down[0](self.embed(recons[-1])) + y1) / 2
            x2 = (down[1](x1) + y2) / 2
            x3 = (down[2](x2) + y3) / 2
            x4 = down[3](x3) / 2  # as published: halved although no up feature is added
            y0, y1, y2, y3 = self.up_path(x1, x2, x3, x4)
            recons.append(self.reconstruct(y0))
        h = self.pool(x4)  # (B, width)
        return EncoderOutput(mu=self.fc_mu(h), logvar=self.fc_logvar(h), recons=recons)


def _check_common(cfg: ModelConfig) -> None:
    if cfg.lmser_loops < 0:
        raise ValueError(f"lmser_loops must be >= 0, got {cfg.lmser_loops}")


class LmserGMLPEncoder(_LmserLoops):
    """The paper's encoder: patch embedding, 4 + 4 gMLP blocks over the patch tokens, Lmser feedback loops.

    Published parameter names map onto these (``sketchheal.training.export`` does it): ``patcher`` = ``patch_embed``,
    ``downsampling{k}`` = ``down[k-1]``, ``upsampling{k}`` = ``up[k-1]``, ``reclinear`` = ``to_pixels``,
    ``active`` = ``norm_out``, ``fc_sigma`` = ``fc_logvar``; the rest (``pos_emb``, the blocks' insides, ``fc_mu``)
    keep their names.

    Inside, the tokens are laid out ``(n, B, d)`` (tokens first, see ``sketchheal.model.gmlp``); the patch embedding
    (a ``Conv2d`` with stride = kernel = p) is applied as the product it is, ``patches (n, B, p*p) @ W^T``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        _check_common(cfg)
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
        self.loops = cfg.lmser_loops
        self.patch_size = cfg.patch_size
        self.grid = cfg.image_size // cfg.patch_size
        seq_len = self.grid * self.grid
        d = cfg.d_model

        self.patch_embed = nn.Conv2d(1, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.pos_emb = nn.Parameter(torch.randn(1, seq_len, d) * 0.02)

        def block() -> GMLPBlock:
            return GMLPBlock(d_model=d, d_ffn=cfg.d_ffn, seq_len=seq_len, residual=cfg.gmlp_residual,
                             tokens_first=True)

        self.down = nn.ModuleList([block() for _ in range(4)])
        self.up = nn.ModuleList([block() for _ in range(4)])
        self.to_pixels = nn.Linear(d, cfg.patch_size * cfg.patch_size)
        self.norm_out = nn.LayerNorm(d)
        self.fc_mu = nn.Linear(d, cfg.z_size)
        self.fc_logvar = nn.Linear(d, cfg.z_size)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        patches = rearrange(image, "b 1 (h p1) (w p2) -> (h w) b (p1 p2)", p1=p, p2=p)  # (n, B, p*p), token = row*g+col
        w = self.patch_embed.weight.flatten(1)  # (d, 1, p, p) -> (d, p*p), the convolution's weight as a matrix
        x = linear(patches, w, self.patch_embed.bias)  # (n, B, d)
        return x + self.pos_emb.transpose(0, 1)  # pos_emb (1, n, d) -> (n, 1, d)

    def reconstruct(self, y0: torch.Tensor) -> torch.Tensor:
        pixels = linear(y0, self.to_pixels.weight, self.to_pixels.bias)  # (n, B, p*p): each patch's pixels, row-major
        image = rearrange(pixels, "(h w) b (p1 p2) -> b 1 (h p1) (w p2)", h=self.grid, p1=self.patch_size)
        return torch.tanh(image)  # (B, 1, N, N)

    def pool(self, x4: torch.Tensor) -> torch.Tensor:
        return self.norm_out(x4).mean(dim=0)  # (n, B, d) -> (B, d)


def _groups(channels: int) -> int:
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def _down_block(c_in: int, c_out: int) -> nn.Sequential:
    # Halves the side: (B, c_in, s, s) -> (B, c_out, s/2, s/2).
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
        nn.GroupNorm(_groups(c_out), c_out),
        nn.ReLU(),
    )


def _same_block(c_in: int, c_out: int) -> nn.Sequential:
    # Keeps the side: (B, c_in, s, s) -> (B, c_out, s, s).
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.GroupNorm(_groups(c_out), c_out),
        nn.ReLU(),
    )


def _up_block(c_in: int, c_out: int) -> nn.Sequential:
    # Doubles the side: (B, c_in, s, s) -> (B, c_out, 2s, 2s).
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
        nn.GroupNorm(_groups(c_out), c_out),
        nn.ReLU(),
    )


class LmserCNNEncoder(_LmserLoops):
    """The CNN ablation: the same skip and loop structure with strided convolutions.

    Channels ``c, 2c, 4c, 8c`` (``c = cfg.cnn_channels``) at sides ``N/2 .. N/16``; GroupNorm (not BatchNorm, so that
    the shared weights see the same normalisation in every loop and in evaluation). The first down block takes the
    image (or the fed-back reconstruction) directly. The up path mirrors the down path; ``up[0]`` is a 3x3 block at side
    ``N/2`` and a transposed convolution + tanh returns to side ``N`` for the image. Latent: LayerNorm over the channels of
    each bottleneck position, mean over positions, then ``fc_mu`` / ``fc_logvar``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        _check_common(cfg)
        if cfg.image_size % 16:
            raise ValueError(f"the CNN encoder needs image_size divisible by 16, got {cfg.image_size}")
        self.loops = cfg.lmser_loops
        c = cfg.cnn_channels
        widths = [c, 2 * c, 4 * c, 8 * c]
        self.down = nn.ModuleList([_down_block(c_in, c_out) for c_in, c_out in zip([1, *widths[:-1]], widths)])
        # up[0] stays at side N/2 (a 3x3 block); the head's transposed convolution returns to side N. Working at
        # N/2 instead of N keeps the CNN's cost near the gMLP encoder's (a c -> c layer at full side costs 5x more).
        self.up = nn.ModuleList([_same_block(widths[0], widths[0])]
                                + [_up_block(c_in, c_out) for c_in, c_out in zip(widths[1:], widths[:-1])])
        self.to_pixels = nn.ConvTranspose2d(c, 1, kernel_size=4, stride=2, padding=1)
        self.norm_out = nn.LayerNorm(widths[-1])
        self.fc_mu = nn.Linear(widths[-1], cfg.z_size)
        self.fc_logvar = nn.Linear(widths[-1], cfg.z_size)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def reconstruct(self, y0: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_pixels(y0))  # (B, c, N/2, N/2) -> (B, 1, N, N)

    def pool(self, x4: torch.Tensor) -> torch.Tensor:
        tokens = rearrange(x4, "b c h w -> b (h w) c")  # (B, N/16 * N/16, 8c)
        return self.norm_out(tokens).mean(dim=1)  # (B, 8c)


def build_encoder(cfg: ModelConfig) -> nn.Module:
    if cfg.encoder == "gmlp":
        return LmserGMLPEncoder(cfg)
    if cfg.encoder == "cnn":
        return LmserCNNEncoder(cfg)
    raise ValueError(f"unknown encoder {cfg.encoder!r}; choose one of {ENCODERS}")
