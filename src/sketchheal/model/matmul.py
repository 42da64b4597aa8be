"""Matrix products for the model's layers: ``linear`` and ``mm``, with oneDNN's fp32 GEMM on CPUs where it is faster.

PyTorch computes an fp32 ``torch.mm`` / ``F.linear`` on x86 CPUs with MKL, whose fastest kernels are AVX2-only on AMD
processors; oneDNN (also inside every x86 PyTorch build, used for its convolutions and LSTMs) has AVX-512 kernels
that run 2-3 x faster there (measured on an AMD EPYC Zen 5, ``benchmarks/bench_matmul.py``). ``use_onednn(True)``
routes the products of the model's layers through oneDNN, forward and backward, in fp32 (same products, summed in
another order: equal to float tolerance). It only applies to fp32 CPU tensors outside autocast; everything else
(CUDA, bf16 autocast, a build without oneDNN) takes ``F.linear`` / ``torch.mm`` as before.

Off unless asked for: ``sketchheal.utils.devices.machine_defaults`` says whether this CPU gains from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_STATE = {"onednn": False}


def _onednn_op():
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return ops._linear_pointwise if ops is not None else None
    except (AttributeError, RuntimeError):
        return None


def onednn_available() -> bool:
    """Whether this PyTorch build has oneDNN's dense linear kernel (``torch.ops.mkldnn._linear_pointwise``)."""
    return torch.backends.mkldnn.is_available() and _onednn_op() is not None


def use_onednn(enabled: bool) -> bool:
    """Route fp32 CPU products through oneDNN (``True``) or torch's default (``False``); returns the setting now."""
    _STATE["onednn"] = bool(enabled) and onednn_available()
    return _STATE["onednn"]


def onednn_enabled() -> bool:
    return _STATE["onednn"]


def _take_onednn(*tensors: torch.Tensor) -> bool:
    if not _STATE["onednn"]:
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 and t.numel() > 0 for t in tensors)


def _dnn_mm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b (+ bias)`` for 2-D fp32 ``a (m, k)``, ``b (k, n)`` with oneDNN.

    The kernel copies a non-contiguous first operand and reads the second (``b^T``, as a linear layer's weight) with
    its strides, fast only when it is contiguous or a transposed contiguous matrix (any other strides, e.g. a
    column slice, take oneDNN's reference kernel, ~1000 x slower). So a transposed ``a`` is handled as
    ``(b^T a^T)^T`` when that reads no more, else the smaller operand is copied.
    """
    op = _onednn_op()
    if bias is None and not a.is_contiguous() and _plain(a):
        bt = b.t()  # (n, k)
        if bt.is_contiguous() or b.numel() < a.numel():  # C^T = b^T a^T, reading a as the weight
            return op(bt.contiguous(), a, None, "none", [], "").t()
    w = b.t()  # (n, k), read as the weight
    return op(a.contiguous(), w if _plain(w) else w.contiguous(), bias, "none", [], "")


def _plain(t: torch.Tensor) -> bool:
    """A contiguous 2-D tensor or the transpose of one."""
    return t.is_contiguous() or t.t().is_contiguous()


class _DnnLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):  # x (m, k), weight (n, k), bias (n,) or None -> (m, n)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _dnn_mm(x, weight.t(), bias)

    @staticmethod
    def backward(ctx, grad):  # grad (m, n)
        x, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _dnn_mm(grad, weight)  # (m, n) @ (n, k)
        if ctx.needs_input_grad[1]:
            gw = _dnn_mm(grad.t(), x)  # (n, m) @ (m, k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum(0)
        return gx, gw, gb


class _DnnMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):  # a (m, k), b (k, n) -> (m, n)
        ctx.save_for_backward(a, b)
        return _dnn_mm(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = _dnn_mm(grad, b.t()) if ctx.needs_input_grad[0] else None
        gb = _dnn_mm(a.t(), grad) if ctx.needs_input_grad[1] else None
        return ga, gb


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``: ``x (..., k)`` -> ``(..., n)`` with ``weight (n, k)``."""
    if not _take_onednn(x, weight):
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    out = _DnnLinear.apply(x.reshape(-1, x.shape[-1]), weight, bias)  # (m, k) -> (m, n), m = prod(lead)
    return out.view(*lead, weight.shape[0])


def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a (m, k) @ b (k, n)`` with this process's fp32 kernel, outside autograd: for hand-written backward passes
    (``sketchheal.model.lstm``)."""
    return _dnn_mm(a, b) if _take_onednn(a, b) else torch.mm(a, b)


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.mm`` of 2-D ``a (m, k)`` and ``b (k, n)``."""
    if not _take_onednn(a, b):
        return torch.mm(a, b)
    return _DnnMM.apply(a, b)
