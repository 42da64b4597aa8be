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
from sketchheal.training.setup import build_config, build_run
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
    trainer = Trainer.from_config(cfg, tmp_path, progress=False)
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
    trainer = Trainer.from_config(cfg, tmp_path, progress=False)
    batch = next(iter(trainer._loader(trainer.train_data, 0, 0, cfg.train.batch_size)))
    assert trainer.train_step(trainer._to_device(batch)) is not None  # a step taken: only the NaN stops the save
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

    first = tmp_path / "first"
    assert main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(first), "--steps", "3",
                 "--device", "cpu", "--no-progress", "--set", "model.encoder=cnn"]) == 0
    trained = load_checkpoint(first)["model"]
    export_checkpoint(first / "ckpt_last.pt", tmp_path / "release")
    for source in (first, first / "ckpt_last.pt", tmp_path / "release"):
        cfg = build_config("tiny", [str(synthetic_npz)], ["train.lr_decay=0.9"], steps=2, device="cpu",
                           init_from=str(source))
        assert cfg.model.encoder == "cnn" and cfg.train.init_from == str(source)
        trainer = Trainer.from_config(cfg, tmp_path / "second", progress=False)
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
        Trainer.from_config(cfg, tmp_path / "third", progress=False)
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
        build_run(cfg, "unused")


def test_target_size_scale_is_computed_on_the_resized_split_and_saved(synthetic_npz, tmp_path):
    from sketchheal.cli.main import main
    from sketchheal.sketch.io import compute_scale, load_sketches

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

    first = tmp_path / "first"
    train(tiny_cfg(synthetic_npz, steps=2), first, progress=False)
    source = load_checkpoint(first)["model"]
    cfg = build_config("tiny", [str(synthetic_npz)], ["train.init_parts=encoder", "train.freeze_encoder=true",
                                                      "model.dec_hidden=24"], steps=3, device="cpu",
                       init_from=str(first))
    cfg.train.checkpoint_every = cfg.train.eval_every = 0
    trainer = Trainer.from_config(cfg, tmp_path / "second", progress=False)
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
        Trainer.from_config(build_config("tiny", [str(synthetic_npz)], ["model.dec_hidden=24"], init_from=str(first)),
                tmp_path / "third", progress=False)
    with pytest.raises(ValueError, match="encoder does not fit"):
        Trainer.from_config(build_config("tiny", [str(synthetic_npz)], ["model.d_model=24", "train.init_parts=encoder"],
                             init_from=str(first)), tmp_path / "fourth", progress=False)
    with pytest.raises(ValueError, match="init_parts"):
        Trainer.from_config(build_config("tiny", [str(synthetic_npz)], ["train.init_parts=head"]), tmp_path / "x",
                progress=False)


def test_init_from_decoder_only_and_frozen_decoder(synthetic_npz, tmp_path):
    """A new encoder of another kind on a trained decoder (the shared-decoder ablations): the decoder's weights are
    taken and, frozen, stay as they were, while the new encoder learns through it."""

    first = tmp_path / "first"
    train(tiny_cfg(synthetic_npz, steps=2), first, progress=False)
    source = load_checkpoint(first)["model"]
    dec = {k: v for k, v in source.items() if k.startswith("decoder.")}
    cfg = build_config("tiny", [str(synthetic_npz)], ["train.init_parts=decoder", "train.freeze_decoder=true",
                                                      "model.encoder=cnn"], steps=3, device="cpu",
                       init_from=str(first))
    cfg.train.checkpoint_every = cfg.train.eval_every = 0
    trainer = Trainer.from_config(cfg, tmp_path / "second", progress=False)
    assert state_dict_equal({k: v for k, v in trainer.model.state_dict().items() if k.startswith("decoder.")}, dec)
    assert cfg.model.encoder == "cnn"
    before = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    trainer.run()
    after = load_checkpoint(tmp_path / "second")["model"]
    assert state_dict_equal({k: v for k, v in after.items() if k.startswith("decoder.")}, dec)  # frozen
    assert not all(torch.equal(after[f"encoder.{k}"], v) for k, v in before.items())  # the encoder learned
    # a decoder of another size does not fit; freezing both parts leaves nothing to train
    with pytest.raises(ValueError, match="decoder does not fit"):
        Trainer.from_config(build_config("tiny", [str(synthetic_npz)], ["model.dec_hidden=24", "train.init_parts=decoder"],
                             init_from=str(first)), tmp_path / "third", progress=False)
    with pytest.raises(ValueError, match="nothing to train"):
        Trainer.from_config(build_config("tiny", [str(synthetic_npz)], ["train.freeze_encoder=true",
                                                            "train.freeze_decoder=true"]),
                tmp_path / "fourth", progress=False)


# ----------------------------------------------------------------------------------------------------------------
# issue 18: run folders (case 3), tiny data sets (case 4), stopping and strict JSON (case 7)


def _strict_json(text: str):
    """json.loads that rejects NaN / Infinity, as strict readers (JavaScript, jq, ...) do."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _write_npz(path: Path, n_train: int, n_valid: int = 0, points: int = 6, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)

    def split(n):
        arr = np.empty(n, dtype=object)
        for i in range(n):
            arr[i] = make_sketch(rng, n_strokes=2, points=points).astype(np.int16)
        return arr

    np.savez(path, train=split(n_train), valid=split(n_valid), test=split(2))
    return path


def test_new_run_into_a_used_folder_is_refused_unless_resume_or_overwrite(synthetic_npz, tmp_path):
    from sketchheal.cli.main import main

    run = tmp_path / "run"
    cfg = tiny_cfg(synthetic_npz, steps=4)
    cfg.train.checkpoint_every = 2
    train(cfg, run, progress=False)
    assert (run / "ckpt_step0000002.pt").is_file()
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(FileExistsError, match=r"not empty .*--resume.*--overwrite"):
        train(tiny_cfg(synthetic_npz, steps=2), run, progress=False)
    assert (run / "metrics.jsonl").read_text() == before  # nothing was mixed into the old run
    base = ["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(run), "--device", "cpu",
            "--no-progress", "--steps", "2"]
    assert main(base) == 1
    assert main(base + ["--resume", "--overwrite"]) == 1  # contradictory
    (run / "notes.txt").write_text("mine")  # a file no run writes survives --overwrite
    assert main(base + ["--overwrite"]) == 0
    assert not (run / "ckpt_step0000002.pt").exists()  # the old run's checkpoints and metrics are gone
    assert load_checkpoint(run)["step"] == 2 and (run / "notes.txt").read_text() == "mine"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records if "event" in r] == ["start", "end"]
    assert main(["train", "--resume", "-o", str(run), "--steps", "3", "--no-progress"]) == 0


_HOLD_LOCK = """
import sys, time
from sketchheal.training.rundir import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_running_folder_is_locked_and_the_lock_dies_with_its_process(synthetic_npz, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OSError, match=rf"{run}: a training run \(PID {holder.pid}\) is writing"):
            train(tiny_cfg(synthetic_npz, steps=2), run, progress=False)
        with pytest.raises(OSError, match=f"PID {holder.pid}"):
            train(tiny_cfg(synthetic_npz, steps=2), run, resume=True, progress=False)
    finally:
        holder.kill()  # like a crash: no clean-up code runs, the kernel drops the lock
        holder.wait()
    assert train(tiny_cfg(synthetic_npz, steps=2), run, progress=False)["step"] == 2


def test_stale_temporary_files_of_a_killed_save_are_removed(synthetic_npz, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(synthetic_npz, steps=2), run, progress=False)
    stale = [run / ".ckpt_last.k2j4h1.tmp.pt", run / ".ckpt_last.pt.abc123.tmp", run / ".summary.json.x8y9.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    train(tiny_cfg(synthetic_npz, steps=3), run, resume=True, progress=False)
    assert not any(p.exists() for p in stale)
    assert load_checkpoint(run)["step"] == 3


def test_a_split_smaller_than_one_batch_trains_and_resumes(tmp_path, capsys):
    data = _write_npz(tmp_path / "few.npz", n_train=5)  # batch 8 (tiny preset): fewer sketches than one batch
    cfg = tiny_cfg(data, steps=3)
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["step"] == 3 and summary["checkpoint_saved"]
    assert "5 sketches, fewer than train.batch_size=8" in capsys.readouterr().err
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 3 and ckpt["config"]["train"]["batch_size"] == 5
    assert train(tiny_cfg(data, steps=5), tmp_path / "run", resume=True, progress=False)["step"] == 5


def test_no_checkpoint_is_written_before_the_first_step(synthetic_npz, tmp_path):
    trainer = Trainer.from_config(tiny_cfg(synthetic_npz, steps=3), tmp_path, progress=False)

    def broken(batch):
        raise RuntimeError("the data loader died")

    trainer.train_step = broken
    with pytest.raises(RuntimeError, match="data loader died"):
        trainer.run()
    assert not (tmp_path / "ckpt_last.pt").exists()  # no random weights that look like a trained model
    summary = train(tiny_cfg(synthetic_npz, steps=0), tmp_path / "zero", progress=False)
    assert summary["checkpoint_saved"] is False and not (tmp_path / "zero" / "ckpt_last.pt").exists()


def test_an_empty_training_set_names_the_files_and_why(tmp_path):
    data = _write_npz(tmp_path / "long.npz", n_train=4, points=40)  # 80 points each, max_seq_len 64
    with pytest.raises(ValueError, match=r"no training sketches in .*long\.npz.*too long: 4.*max_seq_len=64"):
        train(tiny_cfg(data), tmp_path / "run", progress=False)
    empty = _write_npz(tmp_path / "empty.npz", n_train=0)
    with pytest.raises(ValueError, match=r"empty\.npz.*hold none"):
        train(tiny_cfg(empty), tmp_path / "run2", progress=False)


def test_sigterm_saves_then_exits_128_plus_the_signal(synthetic_npz, tmp_path, monkeypatch, capsys):
    import signal

    from sketchheal.cli.main import main

    original = Trainer.train_step

    def step_then_term(self, batch):
        if self.state.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would; the handler only sets a flag
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", step_then_term)
    rc = main(["train", "--preset", "tiny", "--data", str(synthetic_npz), "-o", str(tmp_path), "--steps", "50",
               "--device", "cpu", "--no-progress"])
    assert rc == 128 + signal.SIGTERM
    assert load_checkpoint(tmp_path)["step"] == 3  # the step in flight is finished and saved
    summary = _strict_json((tmp_path / "summary.json").read_text())
    assert summary["signal"] == signal.SIGTERM and summary["interrupted"] and summary["checkpoint_saved"]
    assert _strict_json(capsys.readouterr().out)["signal"] == signal.SIGTERM


def test_summary_and_metrics_are_strict_json(synthetic_npz, tmp_path):
    cfg = tiny_cfg(synthetic_npz, steps=2)  # eval_every=0: the best validation loss stays infinite
    trainer = Trainer.from_config(cfg, tmp_path, progress=False)
    original = trainer._forward_losses

    def nan_image_loss(batch, **kw):
        losses = original(batch, **kw)
        losses["image"] = losses["image"] * float("nan")  # logged, not trained on
        return losses

    trainer._forward_losses = nan_image_loss
    trainer.run()
    summary = _strict_json((tmp_path / "summary.json").read_text())
    assert summary["best_valid_loss"] is None
    records = [_strict_json(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("image", 0) is None for r in records if "loss" in r)
    assert records[-1]["event"] == "end" and records[-1]["best_valid_loss"] is None


def test_config_is_validated_before_anything_is_built(synthetic_npz, tmp_path):
    for override, field in (("log_every", 0), ("bf16", "maybe"), ("nan_patience", 0), ("batch_size", 0)):
        cfg = tiny_cfg(synthetic_npz)
        setattr(cfg.train, override, field)
        with pytest.raises(ValueError, match=f"train.{override}"):
            train(cfg, tmp_path / "run", progress=False)
    cfg = tiny_cfg(synthetic_npz)
    cfg.model.image_size = 64
    with pytest.raises(ValueError, match="data.image_size"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_sigterm_to_the_whole_process_group_still_saves(sheep_npz, tmp_path):
    """A scheduler (or `kill -- -PGID`) signals the trainer and its DataLoader workers together: the workers
    ignore it, so the step in flight is finished and saved instead of the loader crashing."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "sketchheal.cli.main", "train", "--preset", "tiny", "--data",
                             str(sheep_npz), "-o", str(out), "--steps", "100000", "--device", "cpu",
                             "--workers", "1", "--no-progress"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = out / "metrics.jsonl"
        if metrics.is_file() and sum('"loss"' in line for line in metrics.read_text().splitlines()) >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    summary = _strict_json((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["checkpoint_saved"] and summary["signal"] == signal.SIGTERM
