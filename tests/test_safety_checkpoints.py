"""Checkpoints are read without running code: a .pt whose pickle calls os.system is refused by every reader.

Each crafted file would create MARKER when unpickled with ``weights_only=False``; the tests check that every entry
point (heal, train --init-from / --resume, evaluate, export, the classifier, the Python API) says so in one line
naming the file and that MARKER never appears.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from sketchheal.cli.main import main
from sketchheal.config import preset
from sketchheal.inference.heal import load_model
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import read_checkpoint, read_torch_file, save_release
from sketchheal.inference.classify import load_classifier
from sketchheal.training.export import training_lineage
from sketchheal.training.checkpoint import rng_state, set_rng_state
from sketchheal.training.trainer import train

from conftest import make_sketch

REFUSAL = "is not a sketchheal checkpoint or contains code"


class _Payload:
    """Unpickling this runs ``os.system(command)``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "MARKER"


@pytest.fixture
def crafted(tmp_path, marker):
    """A zip-format .pt that looks like a training checkpoint and would touch MARKER when loaded."""
    path = tmp_path / "evil.pt"
    cfg = preset("tiny")
    torch.save({"model": {"x": torch.zeros(1)}, "config": cfg.to_dict(), "scale": 1.0, "max_seq_len": 10,
                "categories": ["a"], "step": 1, "version": "0", "format": "sketchheal-classifier",
                "payload": _Payload(f"touch {marker}")}, path)
    return path


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name in ("cat", "dog"):
        def split(n):
            arr = np.empty(n, dtype=object)
            for i in range(n):
                arr[i] = make_sketch(rng, n_strokes=2, points=5).astype(np.int16)
            return arr
        p = tmp_path / f"{name}.npz"
        np.savez(p, train=split(16), valid=split(4), test=split(4))
        paths.append(p)
    return paths


def _refused(capsys, path, rc):
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert REFUSAL in err and str(path) in err, err
    assert len(err.splitlines()) == 1, err


def test_the_reader_refuses_code_zip_and_legacy_formats(tmp_path, crafted, marker):
    with pytest.raises(ValueError, match=REFUSAL) as info:
        read_torch_file(crafted)
    assert str(crafted) in str(info.value) and "\n" not in str(info.value)
    legacy = tmp_path / "legacy.pt"  # the old (non-zip) torch format, a bare pickle
    with open(legacy, "wb") as f:
        pickle.dump({"model": _Payload(f"touch {marker}"), "config": {}}, f, protocol=2)
    with pytest.raises(ValueError, match=REFUSAL):
        read_checkpoint(legacy)
    with pytest.raises(FileNotFoundError, match="ckpt_last.pt"):
        read_checkpoint(tmp_path)  # a run directory means its ckpt_last.pt
    (tmp_path / "ckpt_last.pt").write_bytes(crafted.read_bytes())
    with pytest.raises(ValueError, match=REFUSAL):
        read_checkpoint(tmp_path)
    assert not marker.exists()


def test_api_entry_points_refuse(tmp_path, crafted, marker):
    with pytest.raises(ValueError, match=REFUSAL):
        load_model(crafted)
    with pytest.raises(ValueError, match=REFUSAL):
        load_classifier(crafted)
    # the lineage of an export follows init_from links; an unreadable one ends the chain without running it
    cfg = preset("tiny").to_dict()
    cfg["train"]["init_from"] = str(crafted)
    assert training_lineage({"config": cfg}) == [{"source": str(crafted), "step": None}]
    assert not marker.exists()


def test_cli_heal_train_export_refuse(tmp_path, crafted, marker, data, capsys):
    sketch = tmp_path / "one.npz"
    np.savez(sketch, strokes=make_sketch(np.random.default_rng(1)))
    _refused(capsys, crafted, main(["heal", str(sketch), "--checkpoint", str(crafted), "-o", str(tmp_path / "o")]))
    _refused(capsys, crafted, main(["train", "--init-from", str(crafted), "--data", str(data[0]),
                                    "-o", str(tmp_path / "run"), "--steps", "1", "--no-progress"]))
    run = tmp_path / "resumed"
    run.mkdir()
    (run / "ckpt_last.pt").write_bytes(crafted.read_bytes())
    _refused(capsys, run / "ckpt_last.pt", main(["train", "--resume", "-o", str(run), "--no-progress"]))
    _refused(capsys, crafted, main(["export", str(crafted), str(tmp_path / "rel")]))
    assert not marker.exists()


def test_cli_evaluate_refuses_a_crafted_model_and_classifier(tmp_path, crafted, marker, data, capsys):
    out = tmp_path / "ev"
    _refused(capsys, crafted, main(["evaluate", "--checkpoint", str(crafted), "--data", *map(str, data),
                                    "-o", str(out), "--no-progress"]))
    release = save_release(LmserPix2Seq(preset("tiny").model), tmp_path / "rel", scale=10.0, max_seq_len=64,
                           categories=["cat", "dog"])
    _refused(capsys, crafted, main(["evaluate", "--checkpoint", str(release), "--data", *map(str, data),
                                    "--classifier", str(crafted), "-o", str(out), "--no-progress",
                                    "--workers", "0"]))
    assert not marker.exists()


def test_our_checkpoints_need_no_allow_list(tmp_path, data):
    """What `sketchheal train` saves is plain tensors, numbers, strings, lists and dicts (RNG state included)."""
    cfg = preset("tiny")
    cfg.data.paths = [str(data[0])]
    cfg.train.steps, cfg.train.checkpoint_every, cfg.train.eval_every, cfg.train.device = 1, 0, 0, "cpu"
    cfg.train.batch_size = 8
    train(cfg, tmp_path / "run", progress=False)
    path = tmp_path / "run" / "ckpt_last.pt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    torch.load(path, weights_only=True)  # no allow-list at all
    assert read_checkpoint(tmp_path / "run")["step"] == 1


def test_rng_state_round_trips_and_old_checkpoints_still_load(tmp_path):
    np.random.seed(3)
    state = rng_state()
    want = np.random.rand(5), torch.rand(3)
    set_rng_state(state)
    assert np.array_equal(np.random.rand(5), want[0]) and torch.equal(torch.rand(3), want[1])
    # a checkpoint from before the plain form holds numpy's state tuple (a pickled array): still readable
    np.random.seed(4)
    old = {"model": {}, "config": {}, "rng": {"python": rng_state()["python"], "numpy": np.random.get_state(),
                                             "torch": torch.get_rng_state()}}
    want = np.random.rand(4)
    torch.save(old, tmp_path / "old.pt")
    ckpt = read_checkpoint(tmp_path / "old.pt")
    set_rng_state(ckpt["rng"])
    assert np.array_equal(np.random.rand(4), want)
