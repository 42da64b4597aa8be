"""Training-step time and peak memory on this machine, for the `paper` and `cpu-small` presets.

Measures the median wall time of full optimiser steps (data loading with the preset's DataLoader workers included,
exactly as `sketchheal train` runs them), and splits one step into data / encoder / decoder / loss / backward /
optimiser parts. Prints a table and writes benchmarks/results/train.json.

    python benchmarks/bench_train.py                    # both presets, fp32
    python benchmarks/bench_train.py --bf16             # also with bf16 autocast on CPU
    SKETCHHEAL_DATA=/path/to/data python benchmarks/bench_train.py --steps 8
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from sketchheal.config import preset
from sketchheal.utils.paths import shared_data_dir
from sketchheal.training.trainer import Trainer


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_parts(trainer: Trainer, batch: dict) -> dict[str, float]:
    """One step split into its parts (synchronous CPU timings)."""
    m, cfg = trainer.model, trainer.cfg
    m.train()
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if trainer.autocast else torch.autocast("cpu", enabled=False)
    t0 = time.perf_counter()
    with ctx:
        enc = m.encode(batch["corrupted"])
    t1 = time.perf_counter()
    with ctx:
        out = m(batch["corrupted"], batch["strokes"], batch["length"])
    t2 = time.perf_counter()
    losses = m.compute_losses(out, batch, **cfg.train.loss_weights())
    t3 = time.perf_counter()
    trainer.optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    t4 = time.perf_counter()
    trainer.optimizer.step()
    t5 = time.perf_counter()
    del enc
    return {"encoder_forward_s": t1 - t0, "decoder_forward_s": (t2 - t1) - (t1 - t0), "loss_s": t3 - t2,
            "backward_s": t4 - t3, "optimizer_s": t5 - t4}


def bench(preset_name: str, data: Path, steps: int, warmup: int, bf16: bool, out_dir: Path) -> dict:
    cfg = preset(preset_name)
    cfg.data.paths = [str(data)]
    cfg.train.device = "cpu"
    cfg.train.bf16 = "on" if bf16 else "off"
    cfg.train.eval_every = cfg.train.sample_every = cfg.train.checkpoint_every = 0
    trainer = Trainer.from_config(cfg, out_dir / f"{preset_name}-{'bf16' if bf16 else 'fp32'}", progress=False)
    loader = iter(trainer._loader(trainer.train_data, 0, 0, cfg.train.batch_size))
    times = []
    t_data = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = trainer._to_device(next(loader))
        t1 = time.perf_counter()
        trainer.train_step(batch)
        t2 = time.perf_counter()
        if i >= warmup:
            times.append(t2 - t0)
            t_data.append(t1 - t0)
    # data preparation cost on one core, without workers: render + mask + stroke-5 of one batch
    t0 = time.perf_counter()
    items = [trainer.train_data[j] for j in range(cfg.train.batch_size)]
    batch = torch.utils.data.default_collate(items)
    data_1core = time.perf_counter() - t0
    parts = [time_parts(trainer, batch) for _ in range(3)]
    part_medians = {k: round(statistics.median(p[k] for p in parts), 4) for k in parts[0]}
    return {
        "preset": preset_name, "bf16": bf16, "batch_size": cfg.train.batch_size, "workers": cfg.data.num_workers,
        "threads": torch.get_num_threads(), "parameters": trainer.model.num_parameters(),
        "median_step_s": round(statistics.median(times), 4), "min_step_s": round(min(times), 4),
        "median_wait_for_data_s": round(statistics.median(t_data), 4),
        "data_prep_one_core_per_batch_s": round(data_1core, 4),
        "parts_median_s": part_medians, "peak_rss_mb": round(peak_rss_mb(), 1),
        "sketches_per_s": round(cfg.train.batch_size / statistics.median(times), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="paper,cpu-small")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="also measure with bf16 autocast")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    args = ap.parse_args()
    data = shared_data_dir() / "sketch-rnn" / "aaron_sheep.npz"
    import tempfile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            for bf16 in ([False, True] if args.bf16 else [False]):
                r = bench(name, data, args.steps, args.warmup, bf16, Path(tmp))
                results.append(r)
                print(f"{name:10s} bf16={str(bf16):5s} batch {r['batch_size']:4d}: median step {r['median_step_s']:.3f} s "
                      f"({r['sketches_per_s']:.0f} sketches/s), waiting for data {r['median_wait_for_data_s']:.3f} s, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB")
                print("    parts: " + ", ".join(f"{k} {v:.3f}" for k, v in r["parts_median_s"].items()))
    report = {"machine": {"cpu_count": torch.get_num_threads(), "platform": platform.platform(),
                          "torch": torch.__version__}, "data": str(data), "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
