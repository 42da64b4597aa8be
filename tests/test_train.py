"""Training: loss falls, resume is bit-exact, the NaN guard skips and rolls back, DDP ranks agree."""

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

from sketchheal.config import preset
from sketchheal.model.weights import read_checkpoint as load_checkpoint
from sketchheal.training.trainer import Trainer, train

from conftest import make_sketch


@pytest.fixture(scope="module")
def synthetic_npz(tmp_path_factory) -> Path:
    """A small sketch-rnn style npz (int16 stroke-3, object arrays) made here."""
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "toy.npz"

    def split(n):
        arr = np.empty(n, dtype=object)
        for i in range(n):
            arr[i] = make_sketch(rng, n_strokes=int(rng.integers(1, 4)), points=int(rng.integers(3, 9))).astype(np.int16)
        return arr

    np.savez(path, train=split(48), valid=split(16), test=split(16))
    return path


def tiny_cfg(data: Path, steps: int = 6):
    cfg = preset("tiny")
    cfg.data.paths = [str(data)]
    cfg.train.steps = steps
    cfg.train.checkpoint_every = 0
    cfg.train.eval_every = 0
    cfg.train.device = "cpu"
    return cfg


def state_dict_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_falls_and_config_saved(synthetic_npz, tmp_path):
    cfg = tiny_cfg(synthetic_npz, steps=60)
    cfg.train.lr = 3e-3
    cfg.train.eval_every = 30
    summary = train(cfg, tmp_path, progress=False)
    assert summary["step"] == 60 and summary["bad_steps"] == 0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r and "event" not in r]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert any("valid_loss" in r for r in records)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train"]["steps"] == 60 and saved["model"]["d_model"] == cfg.model.d_model
    ckpt = load_checkpoint(tmp_path / "ckpt_last.pt")
    assert ckpt["step"] == 60 and ckpt["scale"] > 0 and ckpt["config"] == cfg.to_dict()


def test_resume_is_bit_exact(synthetic_npz, tmp_path):
    """2N steps in one run equal N steps, resume, N steps (the batches cross an epoch boundary)."""
    n = 5  # 48 sketches / batch 8 = 6 batches per epoch, so 10 steps cross into epoch 1
    full = tiny_cfg(synthetic_npz, steps=2 * n)
    train(full, tmp_path / "full", progress=False)
    half = tiny_cfg(synthetic_npz, steps=n)
    train(half, tmp_path / "split", progress=False)
    rest = tiny_cfg(synthetic_npz, steps=2 * n)
    train(rest, tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "full" / "ckpt_last.pt")
    b = load_checkpoint(tmp_path / "split" / "ckpt_last.pt")
    assert a["step"] == b["step"] == 2 * n
    assert state_dict_equal(a["model"], b["model"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_resume_with_workers_matches(synthetic_npz, tmp_path):
    """Masks depend on (seed, epoch, index) only, so DataLoader workers change nothing."""
    c0 = tiny_cfg(synthetic_npz, steps=4)
    train(c0, tmp_path / "w0", progress=False)
    c2 = tiny_cfg(synthetic_npz, steps=4)
    c2.data.num_workers = 2
    train(c2, tmp_path / "w2", progress=False)
    a = load_checkpoint(tmp_path / "w0")["model"]
    b = load_checkpoint(tmp_path / "w2")["model"]
    assert state_dict_equal(a, b)


def test_nan_guard_skips_and_rolls_back(synthetic_npz, tmp_path):
    cfg = tiny_cfg(synthetic_npz, steps=12)
    cfg.train.checkpoint_every = 3
    cfg.train.nan_patience = 3
    trainer = Trainer(cfg, tmp_path, progress=False)
    original = trainer._forward_losses
    calls = {"n": 0}

    def poisoned(batch, **kw):
        losses = original(batch, **kw)
        calls["n"] += 1
        if kw.get("sample_z") and 5 <= calls["n"] < 9:  # 4 bad steps in a row (patience 3 -> one rollback)
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    trainer._forward_losses = poisoned
    summary = trainer.run()
    assert summary["step"] == 12
    assert summary["bad_steps"] == 4 and summary["rollbacks"] == 1
    events = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "nan_rollback" for e in events)
    ckpt = load_checkpoint(tmp_path)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert ckpt["train_state"]["lr_scale"] == pytest.approx(cfg.train.rollback_lr_factor)


def test_nonfinite_weights_are_never_saved(synthetic_npz, tmp_path):
    cfg = tiny_cfg(synthetic_npz, steps=2)
    trainer = Trainer(cfg, tmp_path, progress=False)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    assert trainer.save() is False
    assert not (tmp_path / "ckpt_last.pt").exists()


def test_bad_pen_loss_weight_is_refused(synthetic_npz, tmp_path):
    cfg = tiny_cfg(synthetic_npz)
    cfg.train.pen_loss_weight = 0.0
    with pytest.raises(ValueError, match="pen_loss_weight"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_without_checkpoint_says_so(synthetic_npz, tmp_path):
    with pytest.raises(FileNotFoundError, match="without --resume"):
        train(tiny_cfg(synthetic_npz), tmp_path / "nothing", resume=True, progress=False)


def test_cli_train_and_overrides(synthetic_npz, tmp_path):
    from sketchheal.cli.main import main

    rc = main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(tmp_path), "--steps", "3",
               "--device", "cpu", "--no-progress", "--set", "model.encoder=cnn", "--set", "train.lr=0.002"])
    assert rc == 0
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model"]["encoder"] == "cnn" and saved["train"]["lr"] == 0.002
    assert main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(tmp_path / "b"),
                 "--set", "train.nosuchfield=1"]) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_agree(synthetic_npz, tmp_path):
    """torchrun with 2 CPU processes (gloo): both ranks end with identical weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "sketchheal.cli.main", "train", "--preset", "tiny",
           "--data", str(synthetic_npz), "-o", str(tmp_path), "--steps", "4", "--device", "cpu", "--no-progress",
           "--dump-rank-weights", "--set", "train.checkpoint_every=2", "--set", "train.eval_every=2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    w0 = load_file(str(tmp_path / "weights_rank0.safetensors"))
    w1 = load_file(str(tmp_path / "weights_rank1.safetensors"))
    assert state_dict_equal(w0, w1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world"] == 2 and summary["step"] == 4
    # rank 0 alone wrote; the checkpoint holds both ranks' RNG states
    assert len(load_checkpoint(tmp_path)["rng"]) == 2


def test_cli_resume_takes_runtime_fields_only(synthetic_npz, tmp_path):
    from sketchheal.cli.main import main

    base = ["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(tmp_path), "--device", "cpu",
            "--no-progress"]
    assert main(base + ["--steps", "2"]) == 0
    # run-time settings may change on resume (longer, other thread count) ...
    assert main(["train", "--resume", "-o", str(tmp_path), "--steps", "4", "--set", "train.threads=1",
                 "--no-progress"]) == 0
    assert load_checkpoint(tmp_path)["step"] == 4
    # ... the model, data and optimisation may not
    assert main(["train", "--resume", "-o", str(tmp_path), "--steps", "6", "--set", "train.lr=0.5"]) == 1
    assert main(["train", "--resume", "-o", str(tmp_path), "--data", str(synthetic_npz)]) == 1


def test_init_from_starts_at_the_given_weights(synthetic_npz, tmp_path):
    """--init-from takes the weights and the model settings of a checkpoint or release; the step count restarts."""
    from sketchheal.cli.main import main
    from sketchheal.training.export import export_checkpoint
    from sketchheal.training.trainer import build_config

    first = tmp_path / "first"
    assert main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(first), "--steps", "3",
                 "--device", "cpu", "--no-progress", "--set", "model.encoder=cnn"]) == 0
    trained = load_checkpoint(first)["model"]
    export_checkpoint(first / "ckpt_last.pt", tmp_path / "release")
    for source in (first, first / "ckpt_last.pt", tmp_path / "release"):
        cfg = build_config("tiny", [str(synthetic_npz)], ["train.lr_decay=0.9"], steps=2, device="cpu",
                           init_from=str(source))
        assert cfg.model.encoder == "cnn" and cfg.train.init_from == str(source)
        trainer = Trainer(cfg, tmp_path / "second", progress=False)
        assert trainer.state.step == 0 and state_dict_equal(trainer.model.state_dict(), trained)
    # a fine-tuning run trains on and records where it started
    assert main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(tmp_path / "ft"),
                 "--init-from", str(first), "--steps", "2", "--device", "cpu", "--no-progress"]) == 0
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert saved["train"]["init_from"] == str(first) and load_checkpoint(tmp_path / "ft")["step"] == 2
    # another architecture is refused with the differing field named; --resume does not take --init-from
    with pytest.raises(ValueError, match="d_model"):
        cfg = build_config("tiny", [str(synthetic_npz)], [], init_from=str(first))
        cfg.model.d_model = 24
        Trainer(cfg, tmp_path / "third", progress=False)
    assert main(["train", "--resume", "-o", str(tmp_path / "ft"), "--init-from", str(first)]) == 1


def test_warmup_ramps_the_learning_rate():
    from sketchheal.training.trainer import learning_rate

    cfg = preset("tiny")
    cfg.train.lr, cfg.train.lr_decay, cfg.train.min_lr = 1e-3, 0.5, 1e-5
    assert learning_rate(cfg, 0, 1.0) == 1e-3  # no warm-up: the published schedule
    cfg.train.warmup_steps = 4
    assert [learning_rate(cfg, s, 1.0) for s in range(5)] == pytest.approx(
        [1e-3 * 0.25, 1e-3 * 0.5 * 0.5, 1e-3 * 0.25 * 0.75, 1e-3 * 0.125, 1e-3 * 0.0625])
    cfg.train.warmup_steps = -1
    with pytest.raises(ValueError, match="warmup_steps"):
        Trainer(cfg, "unused", progress=False)


def test_target_size_scale_is_computed_on_the_resized_split_and_saved(synthetic_npz, tmp_path):
    from sketchheal.cli.main import main
    from sketchheal.sketch.io import compute_scale, load_sketches
    from sketchheal.training.trainer import build_config

    cfg = tiny_cfg(synthetic_npz, steps=2)
    cfg.model.target_size = 255.0
    train(cfg, tmp_path / "sized", progress=False)
    ckpt = load_checkpoint(tmp_path / "sized")
    want = compute_scale(load_sketches([str(synthetic_npz)], split="train", max_seq_len=64), size=255.0)
    assert ckpt["scale"] == pytest.approx(want) and ckpt["config"]["model"]["target_size"] == 255.0
    # a warm start may change the targets' size (no weight changes shape) and records it
    cfg = build_config("tiny", [str(synthetic_npz)], ["model.target_size=0"], steps=1, device="cpu",
                       init_from=str(tmp_path / "sized"))
    assert cfg.model.target_size == 0.0
    assert main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(tmp_path / "ft"),
                 "--init-from", str(tmp_path / "sized"), "--steps", "1", "--device", "cpu", "--no-progress",
                 "--set", "model.target_size=128"]) == 0
    assert load_checkpoint(tmp_path / "ft")["config"]["model"]["target_size"] == 128.0


def test_init_from_encoder_only_and_frozen_encoder(synthetic_npz, tmp_path):
    """A new (larger) decoder on a trained encoder: the encoder's weights are taken and, frozen, stay as they were."""
    from sketchheal.training.trainer import build_config

    first = tmp_path / "first"
    train(tiny_cfg(synthetic_npz, steps=2), first, progress=False)
    source = load_checkpoint(first)["model"]
    cfg = build_config("tiny", [str(synthetic_npz)], ["train.init_parts=encoder", "train.freeze_encoder=true",
                                                      "model.dec_hidden=24"], steps=3, device="cpu",
                       init_from=str(first))
    cfg.train.checkpoint_every = cfg.train.eval_every = 0
    trainer = Trainer(cfg, tmp_path / "second", progress=False)
    enc = {k: v for k, v in source.items() if k.startswith("encoder.")}
    assert state_dict_equal({k: v for k, v in trainer.model.state_dict().items() if k.startswith("encoder.")}, enc)
    assert trainer.model.decoder.lstm.hidden_size == 24
    before = {k: v.clone() for k, v in trainer.model.decoder.state_dict().items()}
    trainer.run()
    after = load_checkpoint(tmp_path / "second")["model"]
    assert state_dict_equal({k: v for k, v in after.items() if k.startswith("encoder.")}, enc)  # frozen
    assert not all(torch.equal(after[f"decoder.{k}"], v) for k, v in before.items())  # the decoder learned
    # the whole model of another architecture is refused, pointing at init_parts; a misfit encoder too
    with pytest.raises(ValueError, match="init_parts=encoder"):
        Trainer(build_config("tiny", [str(synthetic_npz)], ["model.dec_hidden=24"], init_from=str(first)),
                tmp_path / "third", progress=False)
    with pytest.raises(ValueError, match="encoder does not fit"):
        Trainer(build_config("tiny", [str(synthetic_npz)], ["model.d_model=24", "train.init_parts=encoder"],
                             init_from=str(first)), tmp_path / "fourth", progress=False)
    with pytest.raises(ValueError, match="init_parts"):
        Trainer(build_config("tiny", [str(synthetic_npz)], ["train.init_parts=head"]), tmp_path / "x",
                progress=False)


def test_init_from_decoder_only_and_frozen_decoder(synthetic_npz, tmp_path):
    """A new encoder of another kind on a trained decoder (the shared-decoder ablations): the decoder's weights are
    taken and, frozen, stay as they were, while the new encoder learns through it."""
    from sketchheal.training.trainer import build_config

    first = tmp_path / "first"
    train(tiny_cfg(synthetic_npz, steps=2), first, progress=False)
    source = load_checkpoint(first)["model"]
    dec = {k: v for k, v in source.items() if k.startswith("decoder.")}
    cfg = build_config("tiny", [str(synthetic_npz)], ["train.init_parts=decoder", "train.freeze_decoder=true",
                                                      "model.encoder=cnn"], steps=3, device="cpu",
                       init_from=str(first))
    cfg.train.checkpoint_every = cfg.train.eval_every = 0
    trainer = Trainer(cfg, tmp_path / "second", progress=False)
    assert state_dict_equal({k: v for k, v in trainer.model.state_dict().items() if k.startswith("decoder.")}, dec)
    assert cfg.model.encoder == "cnn"
    before = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    trainer.run()
    after = load_checkpoint(tmp_path / "second")["model"]
    assert state_dict_equal({k: v for k, v in after.items() if k.startswith("decoder.")}, dec)  # frozen
    assert not all(torch.equal(after[f"encoder.{k}"], v) for k, v in before.items())  # the encoder learned
    # a decoder of another size does not fit; freezing both parts leaves nothing to train
    with pytest.raises(ValueError, match="decoder does not fit"):
        Trainer(build_config("tiny", [str(synthetic_npz)], ["model.dec_hidden=24", "train.init_parts=decoder"],
                             init_from=str(first)), tmp_path / "third", progress=False)
    with pytest.raises(ValueError, match="nothing to train"):
        Trainer(build_config("tiny", [str(synthetic_npz)], ["train.freeze_encoder=true",
                                                            "train.freeze_decoder=true"]),
                tmp_path / "fourth", progress=False)
