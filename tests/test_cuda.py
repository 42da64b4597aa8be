"""The model on a CUDA GPU: forward, loss, gradients, sampling, training steps, save/load and DDP over NCCL agree
with the CPU to float tolerance. Marked ``cuda``; skipped where there is no CUDA device (run them with
``python -m pytest -m cuda tests/test_cuda.py``, or ``bash scripts/gpu_check.sh``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchheal.config import ModelConfig, preset
from sketchheal.inference.loading import load_model
from sketchheal.inference.sample import sample
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import load_release, save_release
from sketchheal.training.trainer import train

from conftest import make_sketch

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CONFIGS = {
    "tiny": preset("tiny").model,
    "paper-shaped": ModelConfig(d_model=32, d_ffn=64, z_size=16, dec_hidden=32, num_mixtures=5),
    "cnn": ModelConfig(encoder="cnn", image_size=64, cnn_channels=8, z_size=16, dec_hidden=32, num_mixtures=5),
}
WEIGHTS = dict(image_loss_weight=0.5, pen_loss_weight=1.0, kl_weight=0.0, kl_min=0.2)


@pytest.fixture(autouse=True)
def exact_fp32():
    """Plain fp32 on the GPU (no TF32), so that CUDA and CPU compute the same numbers to float rounding."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def synthetic_npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "toy.npz"

    def split(n):
        arr = np.empty(n, dtype=object)
        for i in range(n):
            n_strokes, points = int(rng.integers(1, 4)), int(rng.integers(3, 9))
            arr[i] = make_sketch(rng, n_strokes=n_strokes, points=points).astype(np.int16)
        return arr

    np.savez(path, train=split(48), valid=split(16), test=split(16))
    return path


def make_batch(cfg: ModelConfig, b: int = 6, steps: int = 25) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = cfg.image_size
    clean = (torch.rand(b, 1, n, n, generator=g) > 0.85).float() * 2 - 1
    corrupted = clean.clone()
    corrupted[..., : n // 3, : n // 3] = -1
    strokes = torch.zeros(b, steps, 5)
    lengths = torch.randint(3, steps, (b,), generator=g)
    for i, k in enumerate(lengths.tolist()):
        strokes[i, :k, :2] = torch.randn(k, 2, generator=g) * 0.5
        strokes[i, :k, 2] = 1
        strokes[i, k:, 4] = 1
    return {"corrupted": corrupted, "clean": clean, "strokes": strokes, "length": lengths}


def step(model, batch, device, *, bf16: bool = False):
    """Forward (z = mu), losses and gradients on ``device``."""
    device = torch.device(device)
    model = model.to(device)
    model.zero_grad(set_to_none=True)
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(batch["corrupted"], batch["strokes"], batch["length"], sample_z=False)
    losses = model.compute_losses(out, batch, **WEIGHTS)
    losses["loss"].backward()
    grads = {k: p.grad.detach().cpu() for k, p in model.named_parameters() if p.grad is not None}
    return out, losses, grads


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_loss_and_gradients_match_cpu(name):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg).train()
    batch = make_batch(cfg)
    out_c, loss_c, grad_c = step(model, batch, "cpu")
    out_g, loss_g, grad_g = step(model, batch, "cuda")
    torch.testing.assert_close(out_g["params"].cpu(), out_c["params"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out_g["mu"].cpu(), out_c["mu"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out_g["recons"][-1].cpu(), out_c["recons"][-1], rtol=1e-4, atol=1e-4)
    for k in loss_c:
        torch.testing.assert_close(loss_g[k].cpu(), loss_c[k], rtol=1e-4, atol=1e-5)
    assert grad_g.keys() == grad_c.keys()
    for k, g in grad_c.items():
        torch.testing.assert_close(grad_g[k], g, rtol=1e-3, atol=1e-3 * g.abs().max().item() + 1e-6,
                                   msg=lambda m: f"{k}: {m}")


def test_bf16_autocast_on_cuda_keeps_the_loss_in_fp32_and_close():
    cfg = CONFIGS["paper-shaped"]
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg).train()
    batch = make_batch(cfg)
    _, fp32, _ = step(model, batch, "cuda")
    out, bf16, grads = step(model, batch, "cuda", bf16=True)
    assert all(v.dtype == torch.float32 for v in bf16.values())
    assert all(torch.isfinite(g).all() for g in grads.values())
    for k in ("loss", "stroke"):
        torch.testing.assert_close(bf16[k], fp32[k], rtol=5e-2, atol=5e-2)


def test_sampling_on_cuda_matches_cpu():
    healer = load_model(device="cpu")  # the bundled model
    torch.manual_seed(0)
    z = torch.randn(4, healer.model.config.z_size)
    cpu = sample(healer.model, z, max_len=40, greedy=True)
    gpu_model = load_model(device="cuda").model
    gpu = sample(gpu_model, z, max_len=40, greedy=True)
    for a, b in zip(cpu, gpu):
        k = min(len(a), len(b), 10)  # the first points (a near-tie may later send greedy decoding another way)
        np.testing.assert_allclose(b[:k], a[:k], atol=1e-3)
    seeded = [sample(m, z, max_len=40, temperature=0.5, seeds=[1, 2, 3, 4]) for m in (healer.model, gpu_model)]
    assert [len(s) > 0 for s in seeded[0]] == [len(s) > 0 for s in seeded[1]]
    for s in sample(gpu_model, z, max_len=40, temperature=0.5, seeds=[1, 2, 3, 4], precision="bf16"):
        assert np.isfinite(s).all()


def test_a_few_training_steps_on_cuda_and_the_checkpoint_on_cpu(synthetic_npz, tmp_path):
    cfg = preset("tiny")
    cfg.data.paths = [str(synthetic_npz)]
    cfg.train.steps = 4
    cfg.train.eval_every = 2
    cfg.train.checkpoint_every = 2
    cfg.train.device = "cuda"
    cfg.data.num_workers = 2
    summary = train(cfg, tmp_path, progress=False)
    assert summary["step"] == 4 and summary["bad_steps"] == 0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)
    on_cpu, on_gpu = load_model(tmp_path, device="cpu"), load_model(tmp_path, device="cuda")
    image = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        a = on_cpu.model.encode(image).mu
        b = on_gpu.model.encode(image.cuda()).mu.cpu()
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_save_and_load_on_cuda(tmp_path):
    cfg = CONFIGS["paper-shaped"]
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg).cuda().eval()
    save_release(model, tmp_path / "release", scale=3.0, max_seq_len=24, categories=["x"])
    back_gpu, meta = load_release(tmp_path / "release", device="cuda")
    back_cpu, _ = load_release(tmp_path / "release", device="cpu")
    assert meta["scale"] == 3.0
    batch = make_batch(cfg)
    with torch.no_grad():
        ref = model(batch["corrupted"].cuda(), batch["strokes"].cuda(), sample_z=False)["params"]
        again = back_gpu(batch["corrupted"].cuda(), batch["strokes"].cuda(), sample_z=False)["params"]
        cpu = back_cpu(batch["corrupted"], batch["strokes"], sample_z=False)["params"]
    torch.testing.assert_close(again, ref, rtol=0, atol=0)
    torch.testing.assert_close(cpu, ref.cpu(), rtol=1e-4, atol=1e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_nccl_trains(synthetic_npz, tmp_path):
    """``torchrun`` over every GPU of the machine (NCCL): the run trains, and every rank ends with the same weights."""
    gpus = torch.cuda.device_count()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "sketchheal.cli.main", "train", "--preset", "tiny",
           "--data", str(synthetic_npz), "-o", str(tmp_path), "--steps", "4", "--device", "cuda", "--no-progress",
           "--dump-rank-weights", "--set", f"train.batch_size={8 * gpus}", "--set", "train.checkpoint_every=2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world"] == gpus and summary["step"] == 4
    from safetensors.torch import load_file

    weights = [load_file(str(tmp_path / f"weights_rank{r}.safetensors")) for r in range(gpus)]
    for w in weights[1:]:
        assert all(torch.equal(w[k], weights[0][k]) for k in w)
