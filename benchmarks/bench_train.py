"""Training-step time on this machine against its floor: the `paper` and `cpu-small` presets, joint and encoder-only.

For each preset and mode it builds the run exactly as `sketchheal train` does (``build_run``: machine defaults,
threads, DataLoader workers), times full optimiser steps with data loading (median), splits one step into its parts,
counts the step's FLOPs and measures the machine's fp32 matrix-product rate in the same run, before and after the
steps. It prints:

- the step time and its parts: with one thread (the default on a busy machine) this process's CPU time, which
  other processes on the machine hardly change, with more threads the wall time (``median_wall_s`` is always
  the wall time);
- the FLOPs (counted with ``torch.utils.flop_counter`` on the plain formulation, the LSTM by formula) and the floor
  ``FLOPs / rate``, for the rate of torch's own large fp32 product (MKL on x86, as the issue measured it) and for
  oneDNN's (AVX-512 where the CPU has it), measured on the same clock and threads as the step, before and after
  the steps: ``x floor`` is the step time over that floor; beside it the FLOPs this process executes, fewer
  where the decoder's recurrence projects ``z`` once per sketch instead of once per step;
- the ratio to the figures quoted in issue 19 (an AMD EPYC with 2 cores, AVX2, no AVX-512): the published code's
  8.76 s and sketchheal's 7.28 s a paper step, sketchheal's 2.41 s a cpu-small step (those were measured on another
  CPU; this one is printed beside every figure).

Writes benchmarks/results/train.json.

    python benchmarks/bench_train.py                          # paper + cpu-small, joint + encoder-only
    python benchmarks/bench_train.py --presets paper --modes joint --steps 8
    python benchmarks/bench_train.py --kernels torch          # fp32 products by torch's default kernel
    python benchmarks/bench_train.py --bf16                   # bf16 autocast (where the CPU has native bf16)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_matmul import fp32_rates  # noqa: E402

from sketchheal.config import preset  # noqa: E402
from sketchheal.model import matmul  # noqa: E402
from sketchheal.training.trainer import Trainer  # noqa: E402
from sketchheal.utils.devices import cpu_bf16_supported, cpu_name, machine_defaults, usable_cores  # noqa: E402
from sketchheal.utils.paths import shared_data_dir  # noqa: E402

# Issue 19's figures, measured on an AMD EPYC with 2 cores (AVX2 + FMA, no AVX-512, no native bf16), fp32, batch 100.
QUOTED = {"cpu": "AMD EPYC, 2 cores, AVX2 (issue 19)",
          "paper": {"published code": 8.76, "sketchheal before": 7.28}, "cpu-small": {"sketchheal before": 2.41}}
MODES = {"joint": {}, "encoder": {"freeze_decoder": True}, "decoder": {"freeze_encoder": True}}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lstm_flops(model, batch: dict, mode: str) -> int:
    """FLOPs of the decoder LSTM's products in one step (torch's flop counter does not see fused RNN kernels).

    Forward ``2 B L 4H (I + H)``; backward the same again for the gradients of the inputs and of h, and once more
    for the weight gradients when the decoder trains. Counted as ``nn.LSTM`` computes it (every step's whole input).
    """
    lstm = model.decoder.lstm
    b, steps = batch["strokes"].shape[:2]
    fwd = 2 * b * steps * 4 * lstm.hidden_size * (lstm.input_size + lstm.hidden_size)
    return fwd * (2 if mode == "encoder" else 3 if mode == "joint" else 2)


def _counted(trainer: Trainer, batch: dict, recurrence: bool) -> FlopCounterMode:
    was = matmul.onednn_enabled()
    matmul.use_onednn(False)  # torch's own products, which the flop counter sees
    decoder = trainer.model.decoder
    decoder.cpu_recurrence = recurrence  # False: nn.LSTM, which the counter does not see
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            losses = trainer._forward_losses(batch, sample_z=True)
            losses["loss"].backward()
        trainer.optimizer.zero_grad(set_to_none=True)
    finally:
        matmul.use_onednn(was)
        decoder.cpu_recurrence = True
    return counter


def count_flops(trainer: Trainer, batch: dict, mode: str) -> dict[str, int]:
    """FLOPs of one training step (forward + backward).

    ``total``: the plain formulation (``nn.LSTM`` on every step's whole input ``[s_{t-1}; z]``, counted by formula),
    the arithmetic the floor is taken on. ``executed``: what this process runs, where that is less (the decoder's
    recurrence projects ``z`` once per sketch, ``sketchheal.model.lstm``), counted by the flop counter.
    """
    counter = _counted(trainer, batch, recurrence=False)
    per_module = counter.get_flop_counts()
    enc = sum(per_module.get("LmserPix2Seq.encoder", {}).values())
    lstm = lstm_flops(trainer.model, batch, mode)
    total = counter.get_total_flops() + lstm
    executed = total
    bf16 = trainer.autocast == torch.bfloat16 and cpu_bf16_supported()
    if bf16 or (not trainer.autocast and not matmul.onednn_enabled()):  # the decoder's recurrence runs here
        executed = _counted(trainer, batch, recurrence=True).get_total_flops()
    return {"total": total, "executed": executed, "encoder_forward": enc, "lstm": lstm}


def time_parts(trainer: Trainer, batch: dict, clock=time.perf_counter) -> dict[str, float]:
    """One step split into its parts (synchronous CPU timings on ``clock``)."""
    m, w = trainer.model, trainer.cfg.train.loss_weights()
    m.train()
    ctx = torch.autocast("cpu", dtype=trainer.autocast) if trainer.autocast else torch.autocast("cpu", enabled=False)
    trainer.optimizer.zero_grad(set_to_none=True)
    t0 = clock()
    with ctx:
        enc = m.encode(batch["corrupted"])
        t1 = clock()
        z = m.sample_latent(enc.mu, enc.logvar)
        params, _ = m.decoder(m.decoder_inputs(batch["strokes"]), z)
    t2 = clock()
    out = {"params": params, "mu": enc.mu, "logvar": enc.logvar, "recons": enc.recons, "z": z}
    losses = m.compute_losses(out, batch, **w)
    t3 = clock()
    losses["loss"].backward()
    t4 = clock()
    trainer._clip()
    trainer.optimizer.step()
    t5 = clock()
    return {"encoder_forward_s": t1 - t0, "decoder_forward_s": t2 - t1, "loss_s": t3 - t2,
            "backward_s": t4 - t3, "clip_and_optimizer_s": t5 - t4}


def bench(preset_name: str, mode: str, data: Path, args, out_dir: Path) -> dict:
    cfg = preset(preset_name)
    cfg.data.paths = [str(data)]
    cfg.train.device = "cpu"
    cfg.train.bf16 = "on" if args.bf16 else "off"
    cfg.train.eval_every = cfg.train.sample_every = cfg.train.checkpoint_every = 0
    if args.threads is not None:
        cfg.train.threads = args.threads
    if args.workers is not None:
        cfg.data.num_workers = args.workers
    for k, v in MODES[mode].items():
        setattr(cfg.train, k, v)
    trainer = Trainer.from_config(cfg, out_dir / f"{preset_name}-{mode}", progress=False)
    if args.kernels == "torch":
        matmul.use_onednn(False)
    threads = torch.get_num_threads()
    # One thread: CPU time (this process's), which other processes on the machine hardly change; more threads:
    # wall time (CPU time would add the threads up). The matrix-product rate is taken on the same clock.
    clock, clock_name = (time.process_time, "cpu") if threads == 1 else (time.perf_counter, "wall")
    loader = iter(trainer._loader(trainer.train_data, 0, 0, trainer.cfg.train.batch_size))
    load = [os.getloadavg()[0]]
    rates = [fp32_rates(threads, budget_s=0.2, clock=clock)]
    times, walls, waits = [], [], []
    first = None
    for i in range(args.warmup + args.steps):
        c0, t0 = clock(), time.perf_counter()
        batch = trainer._to_device(next(loader))
        t1 = time.perf_counter()
        trainer.train_step(batch)
        c2, t2 = clock(), time.perf_counter()
        if i >= args.warmup:
            times.append(c2 - c0)
            walls.append(t2 - t0)
            waits.append(t1 - t0)
        if first is None:
            first = batch
    rates.append(fp32_rates(threads, budget_s=0.2, clock=clock))
    load.append(os.getloadavg()[0])
    # what one batch costs to prepare on one core (render, mask, stroke-5, collate) without workers
    t0 = time.perf_counter()
    torch.utils.data.default_collate([trainer.train_data[j] for j in range(trainer.cfg.train.batch_size)])
    data_one_core = time.perf_counter() - t0
    parts = [time_parts(trainer, first, clock) for _ in range(3)]
    flops = count_flops(trainer, first, mode)
    rate = {k: statistics.mean(r[k] for r in rates) for k in rates[0]}
    step = statistics.median(times)
    floor = {k: flops["total"] / (v * 1e9) for k, v in rate.items()}
    quoted = QUOTED.get(preset_name, {}) if mode == "joint" else {}
    return {
        "preset": preset_name, "mode": mode, "bf16": args.bf16, "kernels": ("bf16 autocast" if args.bf16
                                                                 else "onednn" if matmul.onednn_enabled() else "torch"),
        "batch_size": trainer.cfg.train.batch_size, "workers": trainer.cfg.data.num_workers, "threads": threads,
        "clock": clock_name, "median_step_s": round(step, 4), "min_step_s": round(min(times), 4),
        "median_wall_s": round(statistics.median(walls), 4),
        "steps_timed": len(times), "median_wait_for_data_s": round(statistics.median(waits), 4),
        "data_prep_one_core_per_batch_s": round(data_one_core, 4),
        "parts_median_s": {k: round(statistics.median(p[k] for p in parts), 4) for k in parts[0]},
        "gflop": round(flops["total"] / 1e9, 1), "gflop_lstm": round(flops["lstm"] / 1e9, 1),
        "gflop_executed": round(flops["executed"] / 1e9, 1),
        "fp32_gemm_gflops": {k: round(v, 1) for k, v in rate.items()},
        "floor_s": {k: round(v, 3) for k, v in floor.items()},
        "x_floor": {k: round(step / v, 2) for k, v in floor.items()},
        "speedup_vs_quoted": {k: round(v / step, 2) for k, v in quoted.items()},
        "load_average": [round(x, 2) for x in load],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "sketches_per_s": round(trainer.cfg.train.batch_size / step, 1),
    }


def describe(r: dict) -> str:
    floors = ", ".join(f"{r['x_floor'][k]:.2f} x the {k} floor ({r['floor_s'][k]:.2f} s at "
                       f"{r['fp32_gemm_gflops'][k]:.0f} GFLOP/s)" for k in r["floor_s"])
    lines = [f"{r['preset']:9s} {r['mode']:7s} batch {r['batch_size']}, {r['threads']} threads, "
             f"{r['workers']} workers, "
             f"{'bf16' if r['bf16'] else 'fp32'} ({r['kernels']} products): median step {r['median_step_s']:.3f} s "
             f"{r['clock']} time (min {r['min_step_s']:.3f}, wall {r['median_wall_s']:.3f}; {r['sketches_per_s']:.0f} "
             f"sketches/s), waiting for data "
             f"{r['median_wait_for_data_s']:.3f} s (a batch costs {r['data_prep_one_core_per_batch_s']:.3f} s of one "
             f"core to prepare), load {r['load_average'][0]:.1f}-{r['load_average'][1]:.1f}",
             f"    {r['gflop']:.0f} GFLOP a step (LSTM {r['gflop_lstm']:.0f}; {r['gflop_executed']:.0f} executed): {floors}",
             "    parts: " + ", ".join(f"{k} {v:.3f}" for k, v in r["parts_median_s"].items())]
    if r["speedup_vs_quoted"]:
        lines.append("    vs issue 19's figures (another CPU): " + ", ".join(
            f"{v:.2f} x faster than {k}" for k, v in r["speedup_vs_quoted"].items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="paper,cpu-small")
    ap.add_argument("--modes", default="joint,encoder", help=f"comma-separated, of {','.join(MODES)}")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="train.threads (default: the preset's / machine's)")
    ap.add_argument("--workers", type=int, default=None, help="data.num_workers (default: the preset's)")
    ap.add_argument("--kernels", choices=("auto", "torch"), default="auto",
                    help="auto: what training picks for this CPU; torch: torch's default fp32 products")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast instead of fp32")
    ap.add_argument("--data", default=None, help="sketch file (default: the shared aaron_sheep.npz)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    args = ap.parse_args()
    data = Path(args.data) if args.data else shared_data_dir() / "sketch-rnn" / "aaron_sheep.npz"
    defaults = machine_defaults("cpu")
    print(f"CPU {cpu_name()}, {usable_cores()} cores; torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.2f}\n{defaults.describe()}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            for mode in args.modes.split(","):
                r = bench(name, mode, data, args, Path(tmp))
                results.append(r)
                print(describe(r), flush=True)
    report = {"machine": {"cpu": cpu_name(), "cores": usable_cores(), "platform": platform.platform(),
                          "torch": torch.__version__, "defaults": defaults.describe()},
              "quoted": QUOTED, "data": str(data), "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
