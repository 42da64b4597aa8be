"""``sketchheal train``: train (or resume) a healing model; the work is :func:`sketchheal.training.trainer.train`.

Exit status: 0 when the run ended (all steps taken), 128 + N when signal N stopped it after saving (SIGTERM: 143),
130 on Ctrl-C, 1 on an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import time

from sketchheal.config import PRESETS
from sketchheal.training.distributed import launched_rank
from sketchheal.utils.fileio import json_dumps as dumps
from sketchheal.training.setup import build_config, resume_config
from sketchheal.training.trainer import train


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a healing model (CPU, GPU, or many GPUs under torchrun)",
        description="Train Lmser-pix2seq (or an ablation). Under `torchrun --nproc_per_node=K` the same command "
                    "trains with DistributedDataParallel. A new run needs an empty (or new) --out folder; a folder "
                    "is written by one process at a time. Exit status 143 (128 + 15) when SIGTERM stopped the run "
                    "after saving its checkpoint.",
    )
    p.add_argument("--preset", default="cpu-small", choices=PRESETS, help="starting configuration (default cpu-small)")
    p.add_argument("--data", nargs="+", metavar="PATH", help="sketch-rnn .npz or QuickDraw .ndjson files")
    p.add_argument("-o", "--out", default=None, help="run directory (default runs/<preset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its ckpt_last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in a --out folder that holds an old one, deleting the old run's "
                        "checkpoints, metrics, samples and logs first")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from these weights (release dir, checkpoint or run dir; e.g. the bundled model "
                        "`sketchheal.utils.paths.BUNDLED_MODEL_DIR`): fine-tune on --data, or restart a schedule; "
                        "the model settings come from MODEL, the optimiser and step count start fresh")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (overrides train.steps)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (overrides data.num_workers)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set train.lr=3e-4 --set model.encoder=cnn")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--dump-rank-weights", action="store_true",
                   help="write each rank's final weights (to check that DDP ranks agree)")
    p.set_defaults(func=_cli_train)


def _cli_train(args: argparse.Namespace) -> int:
    out = args.out or f"runs/{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.resume:
        if args.out is None:
            raise ValueError("--resume needs --out RUN_DIR")
        if args.data or args.init_from:
            raise ValueError(f"--resume keeps the run's model, data and optimisation; drop "
                             f"{'--data' if args.data else '--init-from'}")
        cfg = resume_config(out, args.overrides, args.steps, args.device, args.workers)
    else:
        cfg = build_config(args.preset, args.data, args.overrides, args.steps, args.device, args.workers,
                           init_from=args.init_from)
    summary = train(cfg, out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                    dump_rank_weights=args.dump_rank_weights)
    if launched_rank() == 0:
        print(dumps({"run_dir": out, **summary}, indent=2))
    return 128 + summary["signal"] if summary.get("signal") else 0
