"""utils.devices.machine_defaults: threads, workers, bf16 and the fp32 product kernel from the machine present;
training says them once when it starts."""

from __future__ import annotations

import torch

from sketchheal.utils import devices as D


def test_cpu_defaults_follow_the_machine(monkeypatch):
    monkeypatch.setattr(D.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine: every core computes
    d = D.machine_defaults("cpu")
    assert d.device == "cpu" and d.cores == D.usable_cores() >= 1
    assert d.threads == d.cores
    assert d.workers == (1 if d.cores > 1 else 0)
    assert d.bf16 == D.cpu_bf16_supported()  # bf16 only where the CPU has it natively
    line = d.describe()
    assert f"{d.cores} cores" in line and f"{d.threads} threads" in line
    assert ("native" in line) == d.bf16


def test_busy_cores_are_left_alone(monkeypatch):
    monkeypatch.setattr(D.os, "getloadavg", lambda: (1000.0, 0.0, 0.0))
    assert D.machine_defaults("cpu").threads == 1


def test_intel_cpus_keep_torchs_products(monkeypatch):
    """MKL runs its best kernels on Intel CPUs: the timing is not trusted there (it flips on a busy machine)."""
    D.onednn_matmul_faster.cache_clear()
    monkeypatch.setattr(D, "cpu_vendor", lambda: "GenuineIntel")
    try:
        assert D.onednn_matmul_faster() is False
    finally:
        D.onednn_matmul_faster.cache_clear()


def test_the_product_kernel_can_be_fixed(monkeypatch):
    monkeypatch.setenv("SKETCHHEAL_MATMUL", "torch")
    assert D.machine_defaults("cpu").onednn_matmul is False
    monkeypatch.setenv("SKETCHHEAL_MATMUL", "onednn")
    assert D.machine_defaults("cpu").onednn_matmul is True


def test_gpu_defaults_feed_the_gpu(monkeypatch):
    monkeypatch.setattr(D, "pick_device", lambda name="auto", local_rank=0: torch.device("cuda", 0))
    monkeypatch.setattr(D, "cuda_bf16_native", lambda device=None: True)
    d = D.machine_defaults("cuda")
    assert d.device == "cuda" and d.threads == 1 and d.workers == max(1, d.cores - 1) and d.bf16
    assert "fp32 products" not in d.describe()


def test_reuse_freed_memory_is_harmless():
    assert isinstance(D.reuse_freed_memory(), bool)
    x = torch.randn(1000, 1000)
    assert torch.isfinite(x @ x).all()


def test_training_says_the_defaults_once(tmp_path):
    import numpy as np

    from conftest import make_sketch
    from sketchheal.config import preset
    from sketchheal.training.setup import build_run

    rng = np.random.default_rng(0)
    arr = np.empty(12, dtype=object)
    for i in range(12):
        arr[i] = make_sketch(rng).astype(np.int16)
    np.savez(tmp_path / "toy.npz", train=arr, valid=arr[:4], test=arr[:4])
    cfg = preset("tiny")
    cfg.data.paths = [str(tmp_path / "toy.npz")]
    cfg.train.device = "cpu"
    run = build_run(cfg, tmp_path / "run")
    machine = [n for n in run.notes if n.startswith("machine:")]
    assert len(machine) == 1 and "threads" in machine[0] and "workers" in machine[0]
    try:  # CPU training flushes denormals to zero (x86: a denormal input reads as 0)
        if "denormals flushed to zero" in machine[0]:
            assert (torch.tensor([1e-39]) * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(False)
