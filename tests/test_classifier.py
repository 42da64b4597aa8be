"""Sketch-a-Net classifier: geometry, shapes, jitter, training on a tiny synthetic multi-category set, checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchheal.config import ClassifierConfig
from sketchheal.inference.classify import CHECKPOINT_NAME, classify, load_classifier, map_labels
from sketchheal.model.sketchanet import SketchANet, sketchanet_geometry
from sketchheal.training.classifier import REPORT_NAME, jitter, train_classifier

KINDS = ("circle", "zigzag", "cross", "square")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest single-threaded, especially on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shape_sketch(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A noisy stroke-3 drawing of a simple shape (int16 offsets, sketch-rnn style)."""
    t = np.linspace(0, 1, 16)
    if kind == "circle":
        pts = np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], 1) * 50
    elif kind == "zigzag":
        pts = np.stack([t * 100 - 50, np.where(np.arange(16) % 2, 30.0, -30.0)], 1)
    elif kind == "cross":
        pts = np.array([[-50, -50], [50, 50], [0, 0], [-50, 50], [50, -50]], float)
    else:
        pts = np.array([[-40, -40], [40, -40], [40, 40], [-40, 40], [-40, -40]], float)
    pts = pts * rng.uniform(0.7, 1.3) + rng.normal(0, 3, pts.shape)
    d = np.diff(np.concatenate([[[0.0, 0.0]], pts]), axis=0)
    s = np.zeros((len(d), 3), np.int16)
    s[:, :2] = np.round(d)
    s[-1, 2] = 1
    if kind == "cross":  # two strokes: the pen lifts after the first diagonal and moves to the centre
        s[1, 2] = 1
    return s


def write_shape_npz(folder: Path, counts=(60, 10, 20), seed: int = 0) -> list[Path]:
    """One sketch-rnn .npz per shape kind with train/valid/test splits."""
    rng = np.random.default_rng(seed)
    paths = []
    for kind in KINDS:
        splits = {}
        for split, n in zip(("train", "valid", "test"), counts):
            arr = np.empty(n, dtype=object)
            arr[:] = [shape_sketch(kind, rng) for _ in range(n)]
            splits[split] = arr
        path = folder / f"{kind}.npz"
        np.savez(path, **splits)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("clf")
    paths = write_shape_npz(root)
    cfg = ClassifierConfig(steps=40, batch_size=16, image_size=32, lr=3e-3, seed=0, render_mode="fast", width=0.25)
    ckpt = train_classifier(paths, root / "out", cfg, device="cpu", num_workers=0, progress=False)
    return ckpt, paths


def test_geometry_is_the_papers_at_225_and_scales_down():
    g = sketchanet_geometry(225)
    assert (g["l1_kernel"], g["l1_stride"], g["after_l1"], g["after_pool1"]) == (15, 3, 71, 35)
    assert (g["after_l2"], g["after_pool2"], g["l6_kernel"]) == (31, 15, 7)
    g = sketchanet_geometry(128)
    assert (g["l1_kernel"], g["l1_stride"], g["l6_kernel"]) == (9, 2, 5)
    with pytest.raises(ValueError):
        sketchanet_geometry(16)


def test_paper_network_has_the_papers_parameter_count():
    net = SketchANet(250, image_size=225, batch_norm=False)  # TU-Berlin: 250 classes, 8.5 M parameters
    assert abs(sum(p.numel() for p in net.parameters()) / 1e6 - 8.5) < 0.05


@pytest.mark.parametrize("size", [28, 32, 64, 128])
def test_forward_shapes(size):
    net = SketchANet(5, image_size=size, width=0.25).eval()
    out = net(torch.zeros(3, 1, size, size))
    assert out.shape == (3, 5)
    with pytest.raises(ValueError):
        net(torch.zeros(3, 1, size + 1, size + 1))


def test_jitter_keeps_shape_range_and_background():
    gen = torch.Generator().manual_seed(0)
    blank = -torch.ones(4, 1, 32, 32)
    out = jitter(blank, ClassifierConfig(), gen)
    assert out.shape == blank.shape and torch.allclose(out, blank)
    img = -torch.ones(4, 1, 32, 32)
    img[:, :, 10:22, 15:17] = 1.0
    out = jitter(img, ClassifierConfig(), gen)
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6 and (out > 0).any()


def test_training_beats_chance_and_checkpoint_round_trips(trained):
    ckpt, paths = trained
    assert ckpt.name == CHECKPOINT_NAME and ckpt.is_file()
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    report = json.loads((ckpt.parent / REPORT_NAME).read_text())
    assert report["categories"] == list(KINDS)
    assert report["config"]["image_size"] == 32 and report["config"]["render_mode"] == "fast"
    assert report["n_test"] == 4 * 20
    assert report["test_accuracy"] > 0.5  # chance is 0.25
    clf = load_classifier(ckpt.parent)  # the folder works as well as the file
    assert clf.categories == list(KINDS) and clf.image_size == 32
    assert clf.test_accuracy == report["test_accuracy"]


def test_classify_outputs(trained):
    from sketchheal.sketch.io import load_sketches
    from sketchheal.sketch.render import render

    ckpt, paths = trained
    clf = load_classifier(ckpt)
    test = load_sketches(paths, split="test")
    images = np.stack([render(test[i], 32, "fast") for i in range(len(test))])
    labels, probs = classify(clf, images, batch_size=7)
    assert labels.shape == (len(test),) and labels.dtype == np.int64
    assert probs.shape == (len(test), 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (labels == np.asarray(test.labels)).mean() > 0.5
    labels4, _ = classify(clf, torch.from_numpy(images)[:, None])
    np.testing.assert_array_equal(labels, labels4)
    empty_labels, empty_probs = classify(clf, np.zeros((0, 32, 32), np.float32))
    assert empty_labels.shape == (0,) and empty_probs.shape == (0, 4)
    with pytest.raises(ValueError, match="side 32"):
        classify(clf, np.zeros((2, 64, 64), np.float32))


def test_map_labels():
    np.testing.assert_array_equal(map_labels(["b", "a"], np.array([0, 1, 1]), ["a", "b", "c"]), [1, 0, 0])
    with pytest.raises(ValueError, match="not among"):
        map_labels(["z"], np.array([0]), ["a", "b"])


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path)
    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a sketchheal classifier"):
        load_classifier(tmp_path / "x.pt")


def test_cli_train_classifier(tmp_path, capsys):
    from sketchheal.cli.main import main

    paths = write_shape_npz(tmp_path, counts=(20, 2, 4))
    rc = main(["train-classifier", *map(str, paths), "-o", str(tmp_path / "c"), "--steps", "2", "--batch-size",
               "8", "--image-size", "32", "--device", "cpu", "--workers", "0", "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["categories"] == 4 and out["n_test"] == 16 and 0.0 <= out["test_accuracy"] <= 1.0
    assert (tmp_path / "c" / CHECKPOINT_NAME).is_file()


def test_config_is_validated_and_the_report_is_strict_json(trained, tmp_path):
    ckpt, paths = trained
    with pytest.raises(ValueError, match="classifier.steps"):
        train_classifier(paths, tmp_path / "x", ClassifierConfig(steps=0), device="cpu", num_workers=0,
                         progress=False)
    with pytest.raises(ValueError, match="render_mode"):
        train_classifier(paths, tmp_path / "x", ClassifierConfig(render_mode="ink"), device="cpu", num_workers=0,
                         progress=False)
    assert not (tmp_path / "x").exists()

    def refuse(name):
        raise ValueError(name)

    json.loads((ckpt.parent / REPORT_NAME).read_text(), parse_constant=refuse)
    # no test sketches: the accuracy is unknown, written as null rather than NaN
    (tmp_path / "few").mkdir()
    few = write_shape_npz(tmp_path / "few", counts=(8, 2, 0))
    out = train_classifier(few, tmp_path / "no-test", ClassifierConfig(steps=1, batch_size=8, image_size=32,
                                                                        render_mode="fast", width=0.25),
                           device="cpu", num_workers=0, progress=False)
    report = json.loads((out.parent / REPORT_NAME).read_text(), parse_constant=refuse)
    assert report["n_test"] == 0 and report["test_accuracy"] is None
