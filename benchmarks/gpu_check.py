"""The GPU check in one command (``bash scripts/gpu_check.sh``): on a machine with CUDA,

1. runs the tests marked ``cuda`` (tests/test_cuda.py: model, loss, gradients, sampling, training steps, save/load
   and torchrun/NCCL agree with the CPU);
2. benchmarks the paper training step, fp32 and bf16 autocast, batch 100, with as many DataLoader workers as the
   machine has cores (less one), data loading included, and the bare model step (one batch, no loader);
3. trains the paper configuration on aaron_sheep for ``--minutes`` (``sketchheal train``, stopped by SIGTERM, which
   saves the checkpoint), and evaluates that checkpoint (``sketchheal.evaluate``, the published protocol on the
   first ``--eval-per-category`` test sheep);
4. writes everything into one JSON (``--out``).

Without CUDA it says so and runs the same stages as a dry run on the CPU (the tiny model, two steps each, a
synthetic data file if the real one is missing), writes the JSON and exits 0; tests/test_gpu_check.py runs that.

    python benchmarks/gpu_check.py --minutes 20 --out gpu_check.json
    python benchmarks/gpu_check.py --dry-run          # the CPU dry run, also where CUDA is present
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sketchheal.config import preset
from sketchheal.evaluation.protocol import evaluate
from sketchheal.training.trainer import Trainer
from sketchheal.utils.devices import cpu_name, machine_defaults, usable_cores
from sketchheal.utils.paths import shared_data_dir

REPO = Path(__file__).resolve().parent.parent
PAPER_STEPS = 160_000  # the paper's training length; the goal is >= 20 steps/s (160k steps in < 2.5 hours)


def say(msg: str) -> None:
    print(f"[gpu_check] {msg}", flush=True)


def environment(device: str) -> dict:
    env = {"device": device, "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu_name(),
           "cores": usable_cores(), "defaults": machine_defaults(device).describe()}
    if device == "cuda":
        env.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(),
                   capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return env


def run_cuda_tests(timeout_s: int) -> dict:
    """``pytest -m cuda tests/test_cuda.py`` in a subprocess; the counts from its summary line."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"command": " ".join(cmd), "returncode": None, "error": f"timed out after {timeout_s} s"}
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail)}
    out = {"command": " ".join(cmd), "returncode": proc.returncode, "summary": tail, **counts,
           "seconds": round(time.perf_counter() - t0, 1)}
    if proc.returncode not in (0, 5):  # 5: nothing collected
        out["output_tail"] = (proc.stdout + proc.stderr)[-4000:]
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_step(preset_name: str, data: Path, device: str, *, bf16: bool, steps: int, warmup: int, workers: int,
               out_dir: Path) -> dict:
    """Median time of full optimiser steps with the DataLoader (as training runs them), and of the bare model step
    on one batch (no loader): the second is what the GPU alone can do, the first what the data path lets it."""
    cfg = preset(preset_name)
    cfg.data.paths = [str(data)]
    cfg.data.num_workers = workers
    cfg.train.device = device
    cfg.train.bf16 = "on" if bf16 else "off"
    cfg.train.eval_every = cfg.train.sample_every = cfg.train.checkpoint_every = 0
    trainer = Trainer.from_config(cfg, out_dir / f"bench-{preset_name}-{'bf16' if bf16 else 'fp32'}", progress=False)
    dev = trainer.device
    loader = iter(trainer._loader(trainer.train_data, 0, 0, trainer.cfg.train.batch_size))
    full, first = [], None
    for i in range(warmup + steps):
        _sync(dev)
        t0 = time.perf_counter()
        batch = trainer._to_device(next(loader))
        trainer.train_step(batch)
        _sync(dev)
        if i >= warmup:
            full.append(time.perf_counter() - t0)
        first = first or batch
    bare = []
    for i in range(warmup + steps):
        _sync(dev)
        t0 = time.perf_counter()
        trainer.train_step(first)
        _sync(dev)
        if i >= warmup:
            bare.append(time.perf_counter() - t0)
    step, model_step = statistics.median(full), statistics.median(bare)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    return {"preset": preset_name, "bf16": bf16, "batch_size": trainer.cfg.train.batch_size, "workers": workers,
            "device": str(dev), "median_step_s": round(step, 4), "steps_per_s": round(1 / step, 2),
            "model_only_step_s": round(model_step, 4), "model_only_steps_per_s": round(1 / model_step, 2),
            "hours_for_160k_steps": round(PAPER_STEPS * step / 3600, 2),
            "peak_gpu_memory_gib": None if peak is None else round(peak, 2), "steps_timed": steps}


def train_for(minutes: float, preset_name: str, data: Path, run_dir: Path, device: str, *, bf16: bool, workers: int,
              max_steps: int, extra: list[str]) -> dict:
    """``sketchheal train`` for at most ``minutes`` (then SIGTERM: it saves ckpt_last.pt and exits 143)."""
    cmd = [sys.executable, "-m", "sketchheal.cli.main", "train", "--preset", preset_name, "--data", str(data),
           "-o", str(run_dir), "--steps", str(max_steps), "--device", device, "--workers", str(workers),
           "--no-progress", "--set", f"train.bf16={'on' if bf16 else 'off'}", *extra]
    say("training: " + " ".join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=minutes * 60)
        stopped = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=600)
        stopped = True
    seconds = time.perf_counter() - t0
    records = []
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    steps = [r for r in records if "loss" in r and "step" in r]
    valid = [r for r in records if "valid_loss" in r]
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    done = int(summary.get("step", steps[-1]["step"] if steps else 0))
    return {"command": " ".join(cmd), "returncode": proc.returncode, "stopped_by_sigterm": stopped,
            "minutes": round(seconds / 60, 2), "steps": done,
            "steps_per_s": round(done / seconds, 2) if seconds else None,
            "last_train": steps[-1] if steps else None, "last_valid": valid[-1] if valid else None,
            "checkpoint": str(run_dir / "ckpt_last.pt") if (run_dir / "ckpt_last.pt").is_file() else None,
            "output_tail": out[-3000:] if proc.returncode not in (0, 143) else None}


def evaluate_checkpoint(checkpoint: str, data: Path, out_dir: Path, device: str, per_category: int) -> dict:
    results = evaluate([checkpoint], [str(data)], out_dir=out_dir, max_per_category=per_category, device=device,
                       progress=False)
    model = results["models"][0]
    return {"out_dir": str(out_dir), "settings": results["settings"], "results": model["results"],
            "decoder_check": model.get("decoder_check"), "code_stability": model.get("code_stability"),
            "elapsed_s": results.get("elapsed_s")}


def synthetic_data(path: Path) -> Path:
    """A small sketch-rnn style npz of random stroke-3 sketches (the dry run's data where the real file is missing)."""
    rng = np.random.default_rng(0)

    def sketch():
        rows = []
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(3, 9))
            d = rng.integers(-20, 21, size=(n, 2))
            pen = np.zeros((n, 1), dtype=np.int64)
            pen[-1] = 1
            rows.append(np.concatenate([d, pen], 1))
        return np.concatenate(rows).astype(np.int16)

    def split(n):
        arr = np.empty(n, dtype=object)
        for i in range(n):
            arr[i] = sketch()
        return arr

    np.savez(path, train=split(48), valid=split(16), test=split(16))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="training time on the GPU (default 20)")
    ap.add_argument("--data", default=None, help="aaron_sheep.npz (default: the shared data folder's)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_check.json"))
    ap.add_argument("--work", default=None, help="folder for the run, the evaluation and the benchmarks' runs "
                                                 "(default: a temporary folder, kept when given)")
    ap.add_argument("--bench-steps", type=int, default=30)
    ap.add_argument("--eval-per-category", type=int, default=500, help="test sheep evaluated (default 500)")
    ap.add_argument("--skip-tests", action="store_true", help="skip the CUDA tests")
    ap.add_argument("--dry-run", action="store_true", help="the two-step CPU dry run, also where CUDA is present")
    args = ap.parse_args(argv)

    cuda = torch.cuda.is_available() and not args.dry_run
    device = "cuda" if cuda else "cpu"
    if not cuda:
        why = "no CUDA device" if not torch.cuda.is_available() else "--dry-run"
        say(f"{why}: a two-step CPU dry run of every stage (tiny model)")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = Path(args.data) if args.data else shared_data_dir() / "sketch-rnn" / "aaron_sheep.npz"
        if not data.is_file():
            if cuda:
                raise SystemExit(f"{data}: no such file (pass --data PATH/aaron_sheep.npz)")
            data = synthetic_data(work / "synthetic.npz")
        defaults = machine_defaults(device)
        report: dict = {"cuda": cuda, "environment": environment(device), "data": str(data)}
        if cuda:
            name, steps, warmup, workers = "paper", args.bench_steps, 5, defaults.workers
        else:
            name, steps, warmup, workers = "tiny", 2, 0, 0
        if cuda and not args.skip_tests:
            say("CUDA tests ...")
            report["cuda_tests"] = run_cuda_tests(timeout_s=600)
            say(f"CUDA tests: {report['cuda_tests'].get('summary')}")
        else:
            report["cuda_tests"] = {"skipped": "no CUDA device" if not cuda else "--skip-tests"}
        report["benchmarks"] = []
        for bf16 in ([False, True] if cuda else [False]):
            say(f"benchmark: {name} step, {'bf16' if bf16 else 'fp32'}, {workers} workers ...")
            r = bench_step(name, data, device, bf16=bf16, steps=steps, warmup=warmup, workers=workers, out_dir=work)
            report["benchmarks"].append(r)
            say(f"  {r['median_step_s']:.4f} s a step ({r['steps_per_s']} steps/s; model alone "
                f"{r['model_only_steps_per_s']} steps/s); 160k steps in {r['hours_for_160k_steps']} h")
        bf16_train = cuda and defaults.bf16
        train_extra = ["--set", "train.eval_every=2000", "--set", "train.sample_every=0",
                       "--set", "train.checkpoint_every=5000", "--set", "train.log_every=100"]
        if not cuda:
            train_extra = ["--set", "train.eval_every=0", "--set", "train.sample_every=0",
                           "--set", "train.checkpoint_every=0", "--set", "train.log_every=1"]
        report["training"] = train_for(args.minutes if cuda else 10.0, name, data, work / "run", device,
                                       bf16=bf16_train, workers=workers, max_steps=PAPER_STEPS if cuda else 2,
                                       extra=train_extra)
        say(f"trained {report['training']['steps']} steps in {report['training']['minutes']} min")
        if report["training"]["checkpoint"]:
            say("evaluating the trained checkpoint ...")
            report["evaluation"] = evaluate_checkpoint(report["training"]["checkpoint"], data, work / "eval", device,
                                                       args.eval_per_category if cuda else 4)
        else:
            report["evaluation"] = {"skipped": "the training run left no checkpoint"}
        report["seconds"] = round(time.perf_counter() - t_start, 1)
        if cuda:
            fp32 = report["benchmarks"][0]
            report["goal"] = {"steps_per_s": 20, "met_fp32": fp32["steps_per_s"] >= 20,
                              "met_best": max(b["steps_per_s"] for b in report["benchmarks"]) >= 20}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"wrote {out} ({report['seconds']} s)")
    ok = report["training"]["returncode"] in (0, 143) and "results" in report["evaluation"]
    if cuda:
        ok = ok and report["cuda_tests"].get("returncode", 0) in (0, None) and not report["cuda_tests"].get("failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
