"""sketch-rnn stroke decoder: an LSTM conditioned on the latent ``z`` that outputs mixture-density parameters.

    (h0, c0) = split(tanh(fc_hc(z)))                 initial state, each (B, H)
    x_t      = [s_{t-1} ; z]                          stroke-5 input row and z, 5 + Nz features
    o_t, (h_t, c_t) = LSTM(x_t, (h_{t-1}, c_{t-1}))
    y_t      = fc_params(dropout(o_t))                6M + 3 numbers, layout in ``sketchheal.model.mixture``

Training on a CPU, in fp32 with torch's products or under bf16 autocast where bf16 is native, runs the recurrence of
``sketchheal.model.lstm`` (nn.LSTM's numbers, its backward written out) with ``W_ih x_t = W_s s_{t-1} + W_z z``:
the ``z`` part once per sketch, not once per step. Elsewhere (CUDA, no gradient, oneDNN's fp32 products, emulated
bf16) ``nn.LSTM`` runs.

Parameter names (``fc_hc``, ``lstm``, ``fc_params``) are those of the published checkpoints.
"""

from __future__ import annotations

import torch
from einops import repeat
from torch import nn

from sketchheal.config import ModelConfig
from sketchheal.model import matmul
from sketchheal.model.lstm import lstm_recurrence
from sketchheal.model.matmul import linear
from sketchheal.utils.devices import cpu_bf16_supported

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, B, H) as nn.LSTM wants


class StrokeDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.hidden_size = cfg.dec_hidden
        self.z_size = cfg.z_size
        self.num_mixtures = cfg.num_mixtures
        self.fc_hc = nn.Linear(cfg.z_size, 2 * cfg.dec_hidden)
        self.lstm = nn.LSTM(5 + cfg.z_size, cfg.dec_hidden, batch_first=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc_params = nn.Linear(cfg.dec_hidden, 6 * cfg.num_mixtures + 3)
        # False: always nn.LSTM (the plain formulation, e.g. to count its FLOPs); True: the written-out
        # recurrence where it is faster (fp32 training on a CPU). The same numbers either way.
        self.cpu_recurrence = True

    def initial_state(self, z: torch.Tensor) -> LSTMState:
        """``z (B, Nz)`` -> ``(h0, c0)``, each ``(1, B, H)``."""
        h, c = torch.tanh(self.fc_hc(z)).chunk(2, dim=-1)  # (B, 2H) -> 2 x (B, H), h first as published
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def forward(self, inputs: torch.Tensor, z: torch.Tensor,
                state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """``inputs (B, L, 5)`` stroke-5 rows, ``z (B, Nz)`` -> ``params (B, L, 6M+3)`` and the final LSTM state.

        ``state=None`` starts from ``initial_state(z)``; pass the returned state back in to continue step by step
        (sampling feeds one row at a time, ``L = 1``).
        """
        if state is None:
            state = self.initial_state(z)
        if self._recurrence_here(inputs, z):
            return self._forward_recurrence(inputs, z, state)
        z_rows = repeat(z, "b d -> b l d", l=inputs.shape[1])  # (B, L, Nz)
        x = torch.cat([inputs, z_rows.to(inputs.dtype)], dim=-1)  # (B, L, 5 + Nz), stroke-5 first as published
        if x.device.type == "cpu" and _cpu_bf16_autocast() and not cpu_bf16_supported():
            # oneDNN has no bf16 LSTM for CPUs without native bfloat16: run this one layer in fp32
            with torch.autocast("cpu", enabled=False):
                out, state = self.lstm(x.float(), tuple(s.float() for s in state))  # (B, L, H)
        else:
            out, state = self.lstm(x, state)  # (B, L, H)
        params = linear(self.dropout(out), self.fc_params.weight, self.fc_params.bias)  # (B, L, 6M + 3)
        return params, state

    def _recurrence_here(self, inputs: torch.Tensor, z: torch.Tensor) -> bool:
        """Training on a CPU where the written-out recurrence is faster than ``nn.LSTM``'s kernel: in fp32 with
        torch's own products (with oneDNN's, chosen on CPUs where MKL is slow, it is not: there nn.LSTM's own
        oneDNN kernel runs), and under bf16 autocast on a CPU with native bf16 (products in bf16, states fp32)."""
        if not (self.cpu_recurrence and torch.is_grad_enabled() and inputs.device.type == "cpu"
                and (z.requires_grad or self.lstm.weight_hh_l0.requires_grad)):
            return False
        if torch.is_autocast_enabled("cpu"):
            return _cpu_bf16_autocast() and cpu_bf16_supported()
        return (inputs.dtype == z.dtype == self.lstm.weight_hh_l0.dtype == torch.float32
                and not matmul.onednn_enabled())

    def _forward_recurrence(self, inputs: torch.Tensor, z: torch.Tensor,
                            state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        lstm, k = self.lstm, inputs.shape[-1]
        w_ih = lstm.weight_ih_l0  # (4H, 5 + Nz): stroke-5 columns first, then z
        rows = linear(z, w_ih[:, k:], lstm.bias_ih_l0 + lstm.bias_hh_l0)  # (B, 4H): W_z z + b, every step's
        x = inputs.transpose(0, 1)  # (L, B, 5), time first
        low = torch.bfloat16 if torch.is_autocast_enabled("cpu") else None  # bf16 products under bf16 autocast
        out, h, c = lstm_recurrence(x, rows, w_ih[:, :k], state[0][0], state[1][0], lstm.weight_hh_l0,
                                    low=low)  # (L, B, H)
        params = linear(self.dropout(out), self.fc_params.weight, self.fc_params.bias)  # (L, B, 6M + 3)
        return params.transpose(0, 1).contiguous(), (h.unsqueeze(0), c.unsqueeze(0))  # (B, L, 6M + 3)


def _cpu_bf16_autocast() -> bool:
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
