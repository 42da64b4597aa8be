"""gMLP blocks (Liu et al., "Pay Attention to MLPs", 2021) as used by the Lmser encoder.

Two residual forms:

- ``"paper"``: the gMLP paper's block, ``x + proj2(SGU(gelu(proj1(LN(x)))))``, with the paper's initialisation of
  the spatial gating unit (token-mixing weights near zero, bias 1, so that the unit starts as the identity gate).
- ``"reference"``: the published Lmser-pix2seq code, ``proj2(SGU(gelu(proj1(x)))) + LN(x)`` (the LayerNorm sits on the
  shortcut), with PyTorch's default initialisation. Only needed to run the published weights.

Parameter names follow the published checkpoints (``norm``, ``channel_proj1``, ``channel_proj2``, ``sgu.norm``,
``sgu.spatial_proj``) so that a published block's state dict loads as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_FORMS = ("paper", "reference")


class SpatialGatingUnit(nn.Module):
    """Split the channels into halves ``u, v``; return ``u * spatial_proj(LN(v))``.

    ``spatial_proj`` is a ``Conv1d(seq_len, seq_len, 1)``: with the tokens as its channels it is a learned linear map
    across tokens (the same for every feature). Input ``(B, seq_len, d_ffn)``, output ``(B, seq_len, d_ffn // 2)``.
    """

    def __init__(self, *, d_ffn: int, seq_len: int, paper_init: bool = True):
        super().__init__()
        if d_ffn % 2:
            raise ValueError(f"d_ffn must be even (the gating unit splits it in halves), got {d_ffn}")
        self.norm = nn.LayerNorm(d_ffn // 2)
        self.spatial_proj = nn.Conv1d(seq_len, seq_len, kernel_size=1)
        if paper_init:
            # gMLP paper, section 2.1: W near zero and b = 1, so that at initialisation s(Z) ~ Z (an identity gate).
            init_eps = 1e-3 / seq_len
            nn.init.uniform_(self.spatial_proj.weight, -init_eps, init_eps)
            nn.init.ones_(self.spatial_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = x.chunk(2, dim=-1)  # (B, n, d_ffn) -> 2 x (B, n, d_ffn/2)
        v = self.norm(v)
        v = self.spatial_proj(v)  # mixes the n tokens (Conv1d channels) for each of the d_ffn/2 features
        return u * v


class GMLPBlock(nn.Module):
    """One gMLP block over ``(B, seq_len, d_model)`` tokens; see the module docstring for the two residual forms."""

    def __init__(self, *, d_model: int, d_ffn: int, seq_len: int, residual: str = "paper"):
        super().__init__()
        if residual not in RESIDUAL_FORMS:
            raise ValueError(f"residual must be one of {RESIDUAL_FORMS}, got {residual!r}")
        self.residual = residual
        self.norm = nn.LayerNorm(d_model)
        self.channel_proj1 = nn.Linear(d_model, d_ffn)
        self.sgu = SpatialGatingUnit(d_ffn=d_ffn, seq_len=seq_len, paper_init=residual == "paper")
        self.channel_proj2 = nn.Linear(d_ffn // 2, d_model)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """``proj2(SGU(gelu(proj1(x))))``: ``(B, n, d_model) -> (B, n, d_model)``."""
        x = self.channel_proj1(x)
        x = F.gelu(x)
        x = self.sgu(x)
        return self.channel_proj2(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual == "paper":
            return x + self.branch(self.norm(x))
        return self.branch(x) + self.norm(x)
