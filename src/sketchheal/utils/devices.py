"""Choosing the torch device: one rule for training, evaluation and the classifier."""

from __future__ import annotations

import functools

import torch


def pick_device(name: str | torch.device | None = "auto", *, local_rank: int = 0) -> torch.device:
    """``None``/``auto``: CUDA (``cuda:local_rank``), then Apple MPS, then CPU; otherwise the named device.

    Asking for CUDA where there is none is an error that says what to do instead.
    """
    if name is None or str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but CUDA is not available; use --device cpu or auto")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


@functools.cache
def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 natively (AVX-512 BF16 or AMX), as oneDNN's bf16 kernels require.

    Without it, bf16 matrix products are emulated (slower than fp32) and oneDNN's bf16 LSTM cannot be built at
    all ("could not create a primitive descriptor for the LSTM forward propagation primitive").
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False
