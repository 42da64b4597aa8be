"""gMLP blocks (Liu et al., "Pay Attention to MLPs", 2021) as used by the Lmser encoder.

Two residual forms:

- ``"paper"``: the gMLP paper's block, ``x + proj2(SGU(gelu(proj1(LN(x)))))``, with the paper's initialisation of
  the spatial gating unit (token-mixing weights near zero, bias 1, so that the unit starts as the identity gate).
- ``"reference"``: the published Lmser-pix2seq code, ``proj2(SGU(gelu(proj1(x)))) + LN(x)`` (the LayerNorm sits on the
  shortcut), with PyTorch's default initialisation. Only needed to run the published weights.

Parameter names follow the published checkpoints (``norm``, ``channel_proj1``, ``channel_proj2``, ``sgu.norm``,
``sgu.spatial_proj``) so that a published block's state dict loads as is.

Layout: ``(B, n, d)`` (batch first), or ``(n, B, d)`` with ``tokens_first=True``, the encoder's layout for speed:
there the token mixing of every feature of every sketch is one ``(n, n) @ (n, B * d_ffn/2)`` product and every
tensor stays contiguous. Both compute the same numbers (to float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sketchheal.model.matmul import linear, mm

RESIDUAL_FORMS = ("paper", "reference")


class SpatialGatingUnit(nn.Module):
    """Split the channels into halves ``u, v``; return ``u * spatial_proj(LN(v))``.

    ``spatial_proj`` is a ``Conv1d(seq_len, seq_len, 1)`` (the published parameter): with the tokens as its channels
    it is a learned linear map across tokens (the same for every feature), ``s[i] = sum_j W[i, j] v[j] + b[i]``; it
    is applied as that product. Input ``(B, seq_len, d_ffn)``, output ``(B, seq_len, d_ffn // 2)``.
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
        return self.gate(u, v)

    def gate(self, u: torch.Tensor, v: torch.Tensor, *, tokens_first: bool = False) -> torch.Tensor:
        """``u * (W LN(v) + b)`` for the halves ``u, v``: ``(B, n, h)`` each, or ``(n, B, h)`` if ``tokens_first``."""
        v = self.norm(v)
        w = self.spatial_proj.weight[:, :, 0]  # (n, n): mixes the n tokens, the same for each feature
        b = self.spatial_proj.bias  # (n,)
        if tokens_first:
            n = v.shape[0]
            s = mm(w, v.view(n, -1)).view(v.shape) + b[:, None, None]  # (n, n) @ (n, B*h) -> (n, B, h)
        else:
            s = torch.matmul(w, v) + b[:, None]  # (n, n) @ (B, n, h) -> (B, n, h)
        return u * s


class GMLPBlock(nn.Module):
    """One gMLP block over ``(B, seq_len, d_model)`` tokens (``(seq_len, B, d_model)`` with ``tokens_first``); see
    the module docstring for the two residual forms."""

    def __init__(self, *, d_model: int, d_ffn: int, seq_len: int, residual: str = "paper",
                 tokens_first: bool = False):
        super().__init__()
        if residual not in RESIDUAL_FORMS:
            raise ValueError(f"residual must be one of {RESIDUAL_FORMS}, got {residual!r}")
        self.residual = residual
        self.tokens_first = tokens_first
        self.norm = nn.LayerNorm(d_model)
        self.channel_proj1 = nn.Linear(d_model, d_ffn)
        self.sgu = SpatialGatingUnit(d_ffn=d_ffn, seq_len=seq_len, paper_init=residual == "paper")
        self.channel_proj2 = nn.Linear(d_ffn // 2, d_model)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """``proj2(SGU(gelu(proj1(x))))``: ``(B, n, d_model) -> (B, n, d_model)`` (or tokens first)."""
        # proj1's two output halves are computed as two products, so that u and v come out contiguous
        # (the same numbers as gelu(proj1(x)).chunk(2)).
        half = self.channel_proj1.out_features // 2
        w, b = self.channel_proj1.weight, self.channel_proj1.bias
        u = F.gelu(linear(x, w[:half], b[:half]))  # (..., d_ffn/2)
        v = F.gelu(linear(x, w[half:], b[half:]))
        gated = self.sgu.gate(u, v, tokens_first=self.tokens_first)
        return linear(gated, self.channel_proj2.weight, self.channel_proj2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual == "paper":
            return x + self.branch(self.norm(x))
        return self.branch(x) + self.norm(x)
