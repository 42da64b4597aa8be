"""Healing throughput: sketches per second for the ``paper`` model config on this machine.

    python benchmarks/bench_heal.py              # full run (~2-4 min on 2 cores), writes benchmarks/results/heal.json
    python benchmarks/bench_heal.py --quick      # fewer sketches per measurement

The weights are a random initialisation (``torch.manual_seed(0)``): speed does not depend on what the weights
are, but when a sketch stops does. A random decoder may stop at once or never, so every setting is measured twice:
``natural`` (the random model's own p_end, lengths reported) and ``full`` (p_end suppressed: every sketch runs to
``max_len`` = 200 points, the worst case and the figure to quote).

Measured per torch thread count (1 and 2: on a shared, busy machine two OpenMP threads can be many times slower
than one), batch size (1, 32, 100), decoding mode (greedy; tau = 0.01 as in the published evaluation) and, in the
full regime, precision (fp32; bf16 for batches > 1):
- ``sample``: decoding only (codes given), ``sketchheal.inference.sample.sample``;
- ``heal`` (full regime, tau = 0.01): encode 128-px images (Lmser gMLP, T = 2) + decode, what
  ``sketchheal.inference.heal`` does after reading the inputs;
- ``published_loop``: the published scheme for comparison, one sketch at a time, ``decoder.forward`` +
  ``mixture.sample_step`` per step.
Each figure is the best of ``--repeats`` runs (the load average before and after is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from sketchheal import __version__
from sketchheal.config import preset
from sketchheal.model import mixture
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.inference.sample import SOS, encode_images, sample

MAX_LEN = 200
RESULTS = Path(__file__).resolve().parent / "results" / "heal.json"


def build_model(force_full: bool) -> LmserPix2Seq:
    torch.manual_seed(0)
    model = LmserPix2Seq(preset("paper").model).eval()
    if force_full:
        with torch.no_grad():
            model.decoder.fc_params.bias[-1] = -1e4  # the p_end logit: never stop before max_len
    return model


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels for these shapes)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def published_loop(model: LmserPix2Seq, z: torch.Tensor, temperature: float, greedy: bool) -> None:
    """One sketch at a time through ``decoder.forward`` with ``mixture.sample_step``, as the reference does."""
    with torch.inference_mode():
        for i in range(z.shape[0]):
            x = torch.tensor([[SOS]])
            state = None
            for _ in range(MAX_LEN):
                params, state = model.decoder(x, z[i: i + 1], state)
                row = mixture.sample_step(params[:, 0], temperature=temperature, greedy=greedy)
                if row[0, 4] == 1:
                    break
                x = row[None]


def measure(threads: int, quick: bool, repeats: int) -> list[dict]:
    torch.set_num_threads(threads)
    counts = {1: 4 if quick else 10, 32: 32 if quick else 64, 100: 100 if quick else 200}
    rows = []
    for force_full in (True, False):
        model = build_model(force_full)
        regime = "full" if force_full else "natural"
        for batch, n in counts.items():
            gen = torch.Generator().manual_seed(batch)
            z = torch.randn(n, model.config.z_size, generator=gen)
            images = torch.rand(n, 1, 128, 128, generator=gen) * 2 - 1
            for greedy, tau in ((True, 0.0), (False, 0.01)):
                precisions = ("fp32", "bf16") if batch > 1 and force_full else ("fp32",)
                for precision in precisions:
                    kw = dict(max_len=MAX_LEN, temperature=tau if not greedy else 0.1, greedy=greedy,
                              seeds=range(n), batch_size=batch, precision=precision)
                    lengths: list[int] = []

                    def decode():
                        lengths[:] = [len(s) for s in sample(model, z, **kw)]

                    row = {"threads": threads, "regime": regime, "batch_size": batch,
                           "mode": "greedy" if greedy else f"tau={tau}", "precision": precision, "sketches": n}
                    row["sample_sketches_per_s"] = round(n / best_time(decode, repeats), 1)
                    row["mean_points"] = sum(lengths) / len(lengths)
                    if force_full and not greedy:  # encode + decode, the published evaluation setting
                        t = best_time(lambda: sample(model, encode_images(model, images, batch, precision), **kw),
                                      repeats)
                        row["heal_sketches_per_s"] = round(n / t, 1)
                    rows.append(row)
                    heal = f"  heal {row['heal_sketches_per_s']:6.1f}/s" if "heal_sketches_per_s" in row else ""
                    print(f"threads={threads} {regime:7s} B={batch:3d} {row['mode']:9s} {precision}  "
                          f"points {row['mean_points']:5.1f}  sample {row['sample_sketches_per_s']:6.1f}/s{heal}",
                          flush=True)
        n = 3 if quick else 5
        z = torch.randn(n, model.config.z_size, generator=torch.Generator().manual_seed(0))
        t = best_time(lambda: published_loop(model, z, 0.01, False), max(1, repeats - 1))
        rows.append({"threads": threads, "regime": regime, "batch_size": 1, "mode": "tau=0.01",
                     "precision": "fp32", "sketches": n, "published_loop_sketches_per_s": round(n / t, 1)})
        print(f"threads={threads} {regime:7s} published-style loop (B=1, forward + sample_step per step): "
              f"{n / t:.1f}/s", flush=True)
    return rows


def run(quick: bool, repeats: int, threads: list[int]) -> dict:
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = [r for t in threads for r in measure(t, quick, repeats)]
    return {
        "benchmark": "heal throughput, paper model config (random init), max_len 200",
        "sketchheal": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_average_1min": {"before": load_before,
                              "after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "device": "cpu",
        "rows": rows,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sketches per measurement")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (best is kept)")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = ap.parse_args()
    result = run(args.quick, args.repeats, [int(t) for t in args.threads.split(",")])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
