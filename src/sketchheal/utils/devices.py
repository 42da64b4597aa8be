"""Choosing the torch device: one rule for training, evaluation and the classifier."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import time
from dataclasses import dataclass

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


# ---------------------------------------------------------------------------------------------- machine defaults


@dataclass(frozen=True)
class MachineDefaults:
    """How training should use the machine it runs on (``machine_defaults``); ``describe()`` is the one line that
    training prints when it starts."""

    device: str  # "cuda", "mps" or "cpu"
    cpu: str  # the CPU's model name and the widest vector instructions torch uses on it
    cores: int  # CPU cores this process may run on
    threads: int  # intra-op threads of the training process
    workers: int  # DataLoader workers
    bf16: bool  # whether bf16 is native here (a CUDA GPU of compute capability >= 8.0, a CPU with AVX-512 BF16 / AMX)
    onednn_matmul: bool  # fp32 CPU products through oneDNN (measured faster than torch's default kernel here)

    def describe(self) -> str:
        bf16 = "native" if self.bf16 else "emulated (slower than fp32)" if self.device == "cpu" else "no"
        line = (f"machine: {self.device}; CPU {self.cpu}, {self.cores} cores; defaults: {self.threads} threads, "
                f"{self.workers} DataLoader workers, bf16 {bf16}")
        if self.device == "cpu":
            line += f", fp32 products by {'oneDNN' if self.onednn_matmul else 'torch default (MKL)'}"
        return line


def cuda_bf16_native(device: torch.device | None = None) -> bool:
    """Whether this CUDA GPU computes in bfloat16 natively (compute capability 8.0 or newer: A100, H100, RTX 30xx
    on); older GPUs emulate it (``torch.cuda.is_bf16_supported()`` also counts emulation)."""
    if not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(device) >= (8, 0)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux) and the vector ISA torch dispatches to, e.g. ``AVX512``."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    isa = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
    return f"{name} ({isa})"


def cpu_vendor() -> str:
    """The CPU's vendor string from ``/proc/cpuinfo`` (``GenuineIntel``, ``AuthenticAMD``, ...; "" if unknown)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def onednn_matmul_faster() -> bool:
    """Whether oneDNN's fp32 GEMM beats torch's default (MKL) by 15 % or more on this CPU, timed on a product of the
    model's shape (~50 ms, once per process). True on AVX-512 AMD CPUs, where MKL keeps to its AVX2 kernels. Never on
    Intel CPUs, where MKL runs its best kernels and the two measure alike (an AVX-512 / AMX Xeon: 185-224 GFLOP/s
    each): there a timing that says otherwise is a busy machine, and the choice would change from run to run."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available() or cpu_vendor() == "GenuineIntel":
        return False
    x, w = torch.randn(2048, 128), torch.randn(768, 128)
    try:
        dnn = _best_time(lambda: op(x, w, None, "none", [], ""))
    except RuntimeError:
        return False
    return _best_time(lambda: torch.mm(x, w.t())) > 1.15 * dnn


def _best_time(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_defaults(device: str | torch.device | None = None) -> MachineDefaults:
    """Threads, DataLoader workers, bf16 and the fp32 product kernel for training on ``device`` (default: the one
    ``pick_device`` picks) on this machine.

    - CPU training: the cores that are free compute (``threads = cores`` less the load other processes put on the
      machine, at least 1: two threads on a 2-core machine whose other core is busy run several times slower than
      one, as each parallel region waits for the descheduled thread), and one worker prepares batches ahead (a
      paper batch costs ~0.05 s of one core to prepare, ~1 % of a step);
    - GPU training: the GPU computes and the CPU only feeds it, so every core but one is a DataLoader worker
      (``workers = cores - 1``) and the main process keeps 1 thread;
    - ``bf16``: whether it is native (a CUDA GPU of compute capability 8.0 or newer, or a CPU with AVX-512 BF16 /
      AMX); elsewhere bf16 is emulated and slower than fp32, and only an explicit ``train.bf16=on`` uses it;
    - ``onednn_matmul``: fp32 CPU products through oneDNN where they measure faster than torch's (MKL's) here;
      the environment variable ``SKETCHHEAL_MATMUL=onednn`` or ``torch`` fixes the choice (the two kernels sum in
      different orders, so a resumed run is bit-exact only with the same kernel).
    """
    dev = pick_device(device if device is not None else "auto")
    cores = usable_cores()
    if dev.type == "cpu":
        busy = int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
        threads, workers = max(1, min(cores, cores - busy)), 1 if cores > 1 else 0
        bf16 = cpu_bf16_supported()
        choice = os.environ.get("SKETCHHEAL_MATMUL", "auto")  # "onednn" / "torch" fix the kernel (bit-exact reruns)
        onednn = choice == "onednn" or (choice not in ("onednn", "torch") and onednn_matmul_faster())
    else:
        threads, workers = 1, max(1, cores - 1)
        bf16 = cuda_bf16_native(dev) if dev.type == "cuda" else False
        onednn = False
    return MachineDefaults(device=dev.type, cpu=cpu_name(), cores=cores, threads=threads, workers=workers,
                           bf16=bf16, onednn_matmul=onednn)


def reuse_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse (no trimming, no per-allocation ``mmap``).

    A training step allocates and frees the same few hundred large tensors every step; by default glibc returns
    them to the OS and the next step page-faults them back in (~0.7 s of kernel time per paper step on one core,
    ~13 %). The process then keeps its peak memory. Returns whether the setting took (Linux with glibc only).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameters (malloc.h)
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False
