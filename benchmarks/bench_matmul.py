"""The machine's matrix-product rates: the yardstick of benchmarks/bench_train.py's floor.

fp32 (and bf16) GEMM rates in GFLOP/s (one thread: on this process's CPU time, which other processes on a shared
machine hardly change; more threads: on wall time), with torch's default kernel (``torch.mm``: MKL on x86) and with
oneDNN's (``torch.ops.mkldnn._linear_pointwise``, the kernel ``sketchheal.model.matmul`` uses when it is faster),
for a large square product and for the shapes of the paper model's training step, at 1 thread and at every core.

    python benchmarks/bench_matmul.py            # prints a table, writes benchmarks/results/matmul.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

# (m, k, n): a large square product, then the paper step's: gMLP proj1 half / proj2 over B * 64 tokens, the token
# mixing, the LSTM's recurrent product per step and its weight gradient over all steps, the mixture head.
SHAPES = {
    "square 2048": (2048, 2048, 2048),
    "gMLP proj1 half (6400x128 @ 128x384)": (6400, 128, 384),
    "gMLP proj2 (6400x384 @ 384x128)": (6400, 384, 128),
    "token mixing (64x64 @ 64x38400)": (64, 64, 38400),
    "LSTM step (100x512 @ 512x2048)": (100, 512, 2048),
    "mixture head (20100x512 @ 512x123)": (20100, 512, 123),
}


def _best(fn, budget_s: float = 0.3, min_repeats: int = 3, clock=time.perf_counter) -> float:
    """Best time of ``fn`` over at least ``min_repeats`` calls and about ``budget_s`` seconds (after a warm-up), on
    ``clock`` (wall time by default; ``time.process_time`` counts only this process's CPU time)."""
    fn()
    best, spent, n = float("inf"), 0.0, 0
    while n < min_repeats or spent < budget_s:
        t0 = clock()
        fn()
        dt = clock() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def gemm_rate(m: int, k: int, n: int, *, kernel: str = "torch", dtype: torch.dtype = torch.float32,
              threads: int | None = None, budget_s: float = 0.3, clock=time.perf_counter) -> float:
    """GFLOP/s of an ``(m, k) @ (k, n)`` product (best of a few), with ``kernel`` "torch" or "onednn"."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a = torch.randn(m, k).to(dtype)
        w = torch.randn(n, k).to(dtype)  # (n, k): the product is a @ w^T, as a linear layer computes it
        if kernel == "torch":
            fn = lambda: torch.mm(a, w.t())  # noqa: E731
        elif kernel == "onednn":
            op = torch.ops.mkldnn._linear_pointwise
            fn = lambda: op(a, w, None, "none", [], "")  # noqa: E731
        else:
            raise ValueError(f"kernel must be torch or onednn, not {kernel!r}")
        return 2 * m * k * n / _best(fn, budget_s, clock=clock) / 1e9
    finally:
        torch.set_num_threads(old)


def fp32_rates(threads: int, budget_s: float = 0.3, clock=time.perf_counter) -> dict[str, float]:
    """The large square fp32 product's rate with each kernel at ``threads`` threads: the floor's yardstick."""
    m, k, n = SHAPES["square 2048"]
    out = {"torch": round(gemm_rate(m, k, n, kernel="torch", threads=threads, budget_s=budget_s, clock=clock), 1)}
    try:
        out["onednn"] = round(gemm_rate(m, k, n, kernel="onednn", threads=threads, budget_s=budget_s, clock=clock), 1)
    except (AttributeError, RuntimeError):
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "matmul.json"))
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per measurement")
    args = ap.parse_args()
    from sketchheal.utils.devices import cpu_name, usable_cores

    cores = usable_cores()
    rows = []
    print(f"CPU {cpu_name()}, {cores} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{'product':42s} {'threads':>7s} {'torch fp32':>10s} {'oneDNN fp32':>11s} {'torch bf16':>10s}")
    for threads in sorted({1, cores}):
        for name, (m, k, n) in SHAPES.items():
            row = {"shape": name, "m": m, "k": k, "n": n, "threads": threads}
            for key, kernel, dtype in (("torch_fp32", "torch", torch.float32), ("onednn_fp32", "onednn", torch.float32),
                                       ("torch_bf16", "torch", torch.bfloat16)):
                # one thread: this process's CPU time (robust on a shared machine); more threads: wall time
                clock = time.process_time if threads == 1 else time.perf_counter
                try:
                    row[key] = round(gemm_rate(m, k, n, kernel=kernel, dtype=dtype, threads=threads,
                                               budget_s=args.budget, clock=clock), 1)
                except (AttributeError, RuntimeError):
                    row[key] = None
            rows.append(row)
            print(f"{name:42s} {threads:7d} " + " ".join(f"{row[k] if row[k] is not None else '-':>10}"
                                                          for k in ("torch_fp32", "onednn_fp32", "torch_bf16")))
    report = {"cpu": cpu_name(), "cores": cores, "torch": torch.__version__, "load_average": os.getloadavg()[0],
              "gflops": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
