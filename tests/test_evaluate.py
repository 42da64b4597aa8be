"""Evaluation end to end with tiny models: real sheep test split, the paper's 17 QuickDraw categories with a tiny
classifier, reproducible masks, side-by-side tables, CLI; plus the small pure helpers."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchheal.cli.evaluate import config_from_args, register
from sketchheal.config import PAPER_CATEGORIES, EvalConfig, preset
from sketchheal.evaluation.diagnostics import STABILITY_TESTS, code_stability, decoder_check
from sketchheal.evaluation.evalset import (
    MASK_FILE, first_per_category, mask_label, model_names, parse_masks, sample_key,
)
from sketchheal.evaluation.protocol import evaluate
from sketchheal.evaluation.report import Column, grid_image, results_markdown, table
from sketchheal.utils.fileio import json_safe, write_json
from sketchheal.model.pix2seq import LmserPix2Seq
from sketchheal.model.weights import save_release
from sketchheal.sketch.strokes import rotate, stretch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest single-threaded, especially on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def save_tiny_model(directory: Path, *, encoder: str = "gmlp", max_seq_len: int = 64, seed: int = 0) -> Path:
    """An untrained tiny model whose decoder rarely ends early (so healed sketches have points to draw)."""
    cfg = preset("tiny")
    cfg.model.encoder = encoder
    torch.manual_seed(seed)
    model = LmserPix2Seq(cfg.model)
    with torch.no_grad():
        model.decoder.fc_params.bias[-1] = -4.0  # the p_end logit
    return save_release(model, directory, scale=12.0, max_seq_len=max_seq_len, categories=["any"],
                                 extra={"render_mode": cfg.data.render_mode})


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return save_tiny_model(root / "gmlp"), save_tiny_model(root / "cnn", encoder="cnn", max_seq_len=40, seed=1)


def fractions(results: dict) -> list[float]:
    """Every top-k / accuracy number of a results dict."""
    out = []
    for m in results["models"]:
        for r in m["results"]:
            for group in (r["healed"], r["no_healing"]):
                for key, value in group.items():
                    if key == "accuracy":
                        if value is not None:
                            out.append(value)
                    else:
                        out += [v for k, v in value.items() if k.startswith("top")]
    return out


def _no_constant(name: str):
    raise AssertionError(f"non-standard JSON constant {name}")


def strict_json(path: Path):
    """The content of a JSON file that must be strict JSON (no NaN / Infinity)."""
    return json.loads(path.read_text(), parse_constant=_no_constant)


def assert_outputs(out: Path, results: dict, n_models: int, masks: tuple[float, ...]) -> None:
    for name in ("results.json", "results.md", "per_category.json", "per_category.md", MASK_FILE):
        assert (out / name).is_file(), name
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temp files left behind
    on_disk = strict_json(out / "results.json")
    strict_json(out / "per_category.json")
    assert on_disk == results  # what evaluate() returns is what it wrote
    assert on_disk["settings"]["temperature"] == 0.01 and on_disk["settings"]["seed"] == 0
    assert on_disk["versions"]["sketchheal"] and on_disk["versions"]["torch"]
    assert len(results["models"]) == n_models
    values = fractions(results)
    assert values and all(0.0 <= v <= 1.0 for v in values)
    table = (out / "results.md").read_text()
    for m in results["models"]:
        assert [r["mask"] for r in m["results"]] == list(masks)
        assert m["name"] in table
        for rel in m["grids"]:
            assert (out / rel).is_file() and rel.endswith(".png")
        for r in m["results"]:
            h = r["healed"]["healed_to_original"]
            assert h["n_queries"] == m["n_evaluated"] and h["top10_published"] <= h["top10"]
    assert table.count("\n| 0.") >= 2 * n_models * len(masks)  # one row per model x mask in both tables


def test_sheep_two_models_side_by_side_and_reproducible_masks(models, sheep_npz, tmp_path):
    gmlp, cnn = models
    masks = (0.1, 0.3, 0.5)
    kw = dict(max_per_category=10, batch_size=4, device="cpu", num_workers=0, progress=False)
    out1 = tmp_path / "run1"
    res = evaluate([gmlp, cnn], [sheep_npz], out_dir=out1, masks=masks, **kw)
    assert_outputs(out1, res, n_models=2, masks=masks)
    data = res["data"]
    assert data["n_sketches"] == 10 and data["n_per_category"] == {"aaron_sheep": 10}
    assert data["max_seq_len_filter"] == 64 and data["mask_table"]["seed"] == 0
    # The CNN model's max_seq_len (40) leaves some of the 10 sketches (<= 64 points) out; it says how many.
    m_gmlp, m_cnn = res["models"]
    assert m_gmlp["n_evaluated"] == 10 and m_gmlp["n_excluded_too_long"] == 0
    assert m_cnn["n_evaluated"] + m_cnn["n_excluded_too_long"] == 10
    assert m_cnn["n_evaluated"] < 10
    # Nested masks: more is erased at higher p.
    erased = [r["erased_fraction"] for r in m_gmlp["results"]]
    assert erased == sorted(erased) and erased[-1] > 0
    # One category: no recognition accuracy, and the results say why.
    assert res["classifier"] is None and all(r["healed"]["accuracy"] is None for r in m_gmlp["results"])
    assert "classifier" in res["accuracy_note"]
    assert "top-10 (pub.)" in (out1 / "results.md").read_text()

    # A second run from the saved mask table reproduces the masks and, with the same seed, every number.
    out2 = tmp_path / "run2"
    res2 = evaluate([gmlp], [sheep_npz], out_dir=out2, masks=masks, mask_table=out1 / MASK_FILE, seed=7,
                    **{**kw, "batch_size": 3})
    np.testing.assert_array_equal(np.load(out1 / MASK_FILE), np.load(out2 / MASK_FILE))
    assert res2["data"]["mask_table"]["loaded_from"] == str(out1 / MASK_FILE)
    assert res2["data"]["mask_table"]["sha256"] == res["data"]["mask_table"]["sha256"]
    for r1, r2 in zip(m_gmlp["results"], res2["models"][0]["results"]):
        assert r1["erased_fraction"] == r2["erased_fraction"]  # same masks
        assert r1["no_healing"] == r2["no_healing"]  # the floor depends on the masks only
    out3 = tmp_path / "run3"
    res3 = evaluate([gmlp], [sheep_npz], out_dir=out3, masks=masks, mask_table=out1 / MASK_FILE,
                    **{**kw, "batch_size": 3})
    for r1, r3 in zip(m_gmlp["results"], res3["models"][0]["results"]):
        assert r1["healed"] == r3["healed"]  # same seed: the same healed sketches, whatever the batch size
    # The decoder check is reported per model, and does not depend on the batch size either.
    c1, c3 = m_gmlp["decoder_check"], res3["models"][0]["decoder_check"]
    assert c1["n"] == 10 and "code gain" in (out1 / "results.md").read_text()
    for key in ("offset_nll_own", "offset_nll_other", "code_gain", "pen_nll_own", "lift_recall", "end_recall"):
        assert math.isfinite(c1[key]) and c1[key] == pytest.approx(c3[key], abs=1e-5), key
    # So is the code-stability table: one row per deformation, the same numbers in every run with the seed.
    s1, s2 = m_gmlp["code_stability"], res2["models"][0]["code_stability"]
    assert [t["name"] for t in s1] == [name for name, _ in STABILITY_TESTS] and "How stable" in (
        out1 / "results.md").read_text()
    assert all(0.0 <= t["top1"] <= t["top10"] <= t["top50"] <= 1.0 for t in s1)
    assert res3["models"][0]["code_stability"] == s1 and len(s2) == len(s1)


def test_paper_categories_with_a_tiny_classifier(models, data_dir, tmp_path):
    from sketchheal.config import ClassifierConfig
    from sketchheal.training.classifier import train_classifier

    paths = [data_dir / "quickdraw" / "simplified" / f"{c}.ndjson" for c in PAPER_CATEGORIES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"missing QuickDraw samples {missing[:3]}")
    clf = train_classifier(paths, tmp_path / "clf", ClassifierConfig(steps=4, batch_size=16, image_size=32, seed=0,
                                                                     render_mode="fast", width=0.25),
                           device="cpu", num_workers=0, progress=False)
    gmlp, _ = models
    out = tmp_path / "eval"
    res = evaluate([gmlp], paths, out_dir=out, masks=(0.3,), classifier=clf, max_per_category=2, batch_size=16,
                   device="cpu", num_workers=0, progress=False)
    assert_outputs(out, res, n_models=1, masks=(0.3,))
    assert res["data"]["categories"] == list(PAPER_CATEGORIES)
    m = res["models"][0]
    assert m["n_evaluated"] == res["data"]["n_sketches"] <= 2 * 17
    r = m["results"][0]
    assert 0.0 <= r["healed"]["accuracy"] <= 1.0 and 0.0 <= r["no_healing"]["accuracy"] <= 1.0
    assert 0.0 <= m["classifier_ceiling"]["accuracy"] <= 1.0
    assert res["classifier"]["categories"] == list(PAPER_CATEGORIES)
    per_cat = json.loads((out / "per_category.json").read_text())[m["name"]]
    assert set(per_cat) == set(res["data"]["n_per_category"]) - {c for c, n in
                                                                 res["data"]["n_per_category"].items() if n == 0}
    for entry in per_cat.values():
        e = entry[mask_label(0.3)]
        assert 0.0 <= e["healed"]["top1"] <= 1.0 and 0.0 <= e["healed"]["accuracy"] <= 1.0
    assert len(m["grids"]) == len(per_cat)
    assert "The Great Wall of China" in (out / "per_category.md").read_text()


def test_mask_table_too_small_is_refused(models, sheep_npz, tmp_path):
    from sketchheal.sketch.masks import MaskTable

    MaskTable(3, seed=0).save(tmp_path / "small.npy")
    with pytest.raises(ValueError, match="rows"):
        evaluate([models[0]], [sheep_npz], out_dir=tmp_path / "o", mask_table=tmp_path / "small.npy",
                 max_per_category=5, device="cpu", num_workers=0, progress=False)


def test_cli_evaluate(models, sheep_npz, tmp_path, capsys):
    from sketchheal.cli.main import main

    out = tmp_path / "cli"
    rc = main(["evaluate", "--checkpoint", str(models[0]), "--data", str(sheep_npz), "--masks", "0.5",
               "--max-per-category", "4", "--batch-size", "4", "--device", "cpu", "--workers", "0",
               "--no-progress", "-o", str(out)])
    assert rc == 0
    assert "Healed -> originals" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["settings"]["masks"] == [0.5]
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "nope"), "--data", str(sheep_npz), "-o", str(out)])
    assert rc == 1


def test_small_helpers():
    assert parse_masks("0.5,0.1,0.3,0.1") == (0.1, 0.3, 0.5)
    assert parse_masks([0.3]) == (0.3,)
    for bad in ("", "1.5", "a,b"):
        with pytest.raises(ValueError):
            parse_masks(bad)
    np.testing.assert_array_equal(first_per_category(np.array([0, 1, 0, 0, 1, 2]), 2), [0, 1, 2, 4, 5])
    np.testing.assert_array_equal(first_per_category(np.array([1, 0]), None), [0, 1])
    assert model_names(["runs/a", "runs/b/a", "x/ckpt_last.pt"]) == ["runs/a", "b/a", "x/ckpt_last"]
    assert model_names(["r/cnn/ckpt_step0000500.pt", "r/mlp/ckpt_step0000500.pt"]) == [
        "cnn/ckpt_step0000500", "mlp/ckpt_step0000500"]
    assert model_names(["a/m", "a/m", "b"]) == ["a/m#1", "a/m#2", "b"]
    assert mask_label(0.3) == "p0.3"
    assert sample_key(0, 0.3, 5) == (0, 3000, 5)
    img = grid_image([np.ones((8, 8))] * 3, [-np.ones((8, 8))] * 3, [np.zeros((8, 8))] * 3)
    assert img.shape == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2) and img.dtype == np.uint8
    assert img[2, 2] == 0 and img[2 + 8 + 2, 2] == 255 and not math.isnan(float(img.mean()))


def test_decoder_check_sees_whether_the_code_is_read():
    """A decoder whose z pathway is cut predicts every sketch equally well with any code (gain 0); the same decoder
    with its z pathway intact does not."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    cfg = preset("tiny")
    model = LmserPix2Seq(cfg.model).eval()
    rng = np.random.default_rng(0)
    sketches = []
    for n in (12, 20, 30, 9):
        s3 = np.zeros((n, 3), np.float32)
        s3[:, :2] = rng.normal(0, 10, (n, 2))
        s3[n // 2, 2] = s3[-1, 2] = 1
        sketches.append(s3)
    codes = rng.normal(0, 1, (4, cfg.model.z_size)).astype(np.float32)
    healer = SimpleNamespace(model=model, scale=12.0, max_seq_len=32)
    ids = np.arange(4)
    with_z = decoder_check(healer, sketches, ids, codes, batch_size=3)
    assert with_z["n"] == 4 and abs(with_z["code_gain"]) > 1e-4
    assert 0.0 <= with_z["lift_recall"] <= 1.0 and 0.0 <= with_z["end_recall"] <= 1.0
    with torch.no_grad():  # cut z out of the decoder: initial state and per-step input
        model.decoder.fc_hc.weight.zero_()
        model.decoder.lstm.weight_ih_l0[:, 5:].zero_()
    cut = decoder_check(healer, sketches, ids, codes, batch_size=3)
    assert cut["code_gain"] == pytest.approx(0.0, abs=1e-6)
    assert cut["offset_nll_own"] == pytest.approx(cut["offset_nll_other"], abs=1e-6)
    assert decoder_check(healer, sketches, ids[:1], codes[:1]) is None  # no other sketch to swap codes with


def test_code_stability_measures_what_a_deformation_does_to_the_codes():
    """No deformation retrieves every original; a deformation the encoder cannot see past retrieves fewer."""
    from types import SimpleNamespace

    from sketchheal.sketch.render import render
    from sketchheal.inference.sample import encode_images

    torch.manual_seed(0)
    cfg = preset("tiny")
    model = LmserPix2Seq(cfg.model).eval()
    rng = np.random.default_rng(0)
    sketches = []
    for n in (12, 20, 30, 9, 15, 25):
        s3 = np.zeros((n, 3), np.float32)
        s3[:, :2] = rng.normal(0, 10, (n, 2))
        s3[n // 2, 2] = s3[-1, 2] = 1
        sketches.append(s3)
    healer = SimpleNamespace(model=model, scale=12.0, max_seq_len=32, image_size=32, render_mode="fast")
    ids = np.arange(len(sketches))
    gallery = encode_images(model, np.stack([render(s, size=32, mode="fast") for s in sketches])[:, None]).numpy()
    by_length = {len(s): k for k, s in enumerate(sketches)}  # the lengths differ: they name the sketches
    tests = (("same", lambda s, r: s),
             ("another sketch", lambda s, r: sketches[(by_length[len(s)] + 1) % len(sketches)]))
    same, other = code_stability(healer, sketches, ids, gallery, tests=tests, batch_size=4)
    assert same["name"] == "same" and same["top1"] == 1.0 and same["mean_rank"] == 1.0
    assert other["top1"] == 0.0  # every sketch drawn as its neighbour retrieves the neighbour, never itself


def test_best_of_candidates_is_recorded_and_one_candidate_is_the_protocol(models, sheep_npz, tmp_path):
    gmlp, _ = models
    kw = dict(masks=(0.3,), max_per_category=6, batch_size=4, num_workers=0, progress=False, temperature=0.5)
    plain = evaluate([gmlp], [sheep_npz], out_dir=tmp_path / "a", **kw)
    one = evaluate([gmlp], [sheep_npz], out_dir=tmp_path / "b", candidates=1, **kw)
    four = evaluate([gmlp], [sheep_npz], out_dir=tmp_path / "c", candidates=4, **kw)
    assert plain["models"][0]["results"] == one["models"][0]["results"]
    assert four["settings"]["candidates"] == 4 and "best of 4" in (tmp_path / "c" / "results.md").read_text()
    assert four["models"][0]["results"][0]["no_healing"] == plain["models"][0]["results"][0]["no_healing"]
    with pytest.raises(ValueError, match="candidates"):
        evaluate([gmlp], [sheep_npz], out_dir=tmp_path / "d", candidates=2, greedy=True, **kw)


def test_results_json_is_strict_json(tmp_path):
    """NaN / Infinity (e.g. a metric over no sketches) are written as null, never as non-standard JSON."""
    obj = {"a": float("nan"), "b": [float("inf"), -float("inf"), 0.5], "c": np.float32("nan"), "d": np.int64(3),
           "e": (np.float64(0.25), True), "f": {"g": None, "h": "text"}}
    write_json(tmp_path / "r.json", obj)
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    expected = {"a": None, "b": [None, None, 0.5], "c": None, "d": 3, "e": [0.25, True], "f": {"g": None, "h": "text"}}
    assert strict_json(tmp_path / "r.json") == expected == json_safe(obj)


def test_eval_config_checks_every_field_before_anything_is_loaded(models, sheep_npz, tmp_path):
    EvalConfig().validate()
    bad = {"split": "", "masks": [], "temperature": 0.0, "seed": -1, "candidates": 0, "classifier": None,
           "max_per_category": 0, "mask_table": 3, "batch_size": 0, "device": "gpu", "num_workers": -1,
           "grid_count": -1, "greedy": "yes"}
    for name, value in bad.items():
        with pytest.raises(ValueError, match=f"eval.{name}"):
            EvalConfig(**{name: value}).validate()
    with pytest.raises(ValueError, match="eval.masks"):
        EvalConfig(masks=[0.1, 1.5]).validate()
    with pytest.raises(ValueError, match="eval.candidates"):
        EvalConfig(greedy=True, candidates=2).validate()
    EvalConfig(greedy=True, temperature=0.0, device="cuda:1", max_per_category=3, num_workers=0).validate()
    # Checked before any model is loaded: a bad setting is reported even for a model that does not exist.
    with pytest.raises(ValueError, match="eval.temperature"):
        evaluate([tmp_path / "missing"], [sheep_npz], out_dir=tmp_path / "o", temperature=-1.0)
    with pytest.raises(FileNotFoundError, match="mask table"):
        evaluate([tmp_path / "missing"], [sheep_npz], out_dir=tmp_path / "o", mask_table=tmp_path / "none.npy")
    with pytest.raises(TypeError, match="bogus"):
        evaluate([models[0]], [sheep_npz], out_dir=tmp_path / "o", bogus=1)
    assert not (tmp_path / "o").exists()
    # A config and keyword overrides; grid_count 0 writes no pictures.
    cfg = EvalConfig(masks=[0.5], max_per_category=3, batch_size=3, device="cpu", num_workers=0, grid_count=5)
    res = evaluate([models[0]], [sheep_npz], cfg, out_dir=tmp_path / "g", grid_count=0, progress=False)
    assert res["settings"]["grid_count"] == 0 and res["models"][0]["grids"] == []
    assert not (tmp_path / "g" / "grids").exists() and cfg.grid_count == 5  # the caller's config is not changed


def test_cli_flags_build_the_eval_config():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    defaults = config_from_args(parser.parse_args(["evaluate", "--checkpoint", "m", "--data", "d.npz", "-o", "o"]))
    assert defaults == EvalConfig()
    args = parser.parse_args([
        "evaluate", "--checkpoint", "a", "--checkpoint", "b", "--data", "x.npz", "y.npz", "-o", "out",
        "--split", "valid", "--masks", "0.5,0.1", "--temperature", "0.2", "--greedy", "--candidates", "1",
        "--seed", "3", "--classifier", "clf", "--max-per-category", "7", "--mask-table", "m.npy",
        "--batch-size", "9", "--device", "cpu", "--workers", "2", "--grid-count", "4", "--no-progress"])
    assert args.checkpoint == ["a", "b"] and args.data == ["x.npz", "y.npz"] and args.no_progress
    assert config_from_args(args) == EvalConfig(
        split="valid", masks=[0.1, 0.5], temperature=0.2, greedy=True, candidates=1, seed=3, classifier="clf",
        max_per_category=7, mask_table="m.npy", batch_size=9, device="cpu", num_workers=2, grid_count=4)
    with pytest.raises(ValueError, match="eval.batch_size"):
        config_from_args(parser.parse_args(["evaluate", "--checkpoint", "m", "--data", "d", "-o", "o",
                                            "--batch-size", "0"]))


def test_report_tables_are_column_lists():
    """A column is one line; a value missing from a row (an older results.json) is written as a dash."""
    columns = [Column("name", "name", str), Column("recall", "healing.recall"), Column("n", ("a.b",), str)]
    assert table(columns, [{"name": "x", "healing": {"recall": 0.5}, "a.b": 3}, {"name": "y"}]) == [
        "| name | recall | n |", "|---|---|---|", "| x | 50.00 | 3 |", "| y | – | – |"]
    row = {"mask": 0.3, "erased_fraction": 0.3, "healed": {"healed_to_original": {"top1": 0.5}, "accuracy": None},
           "no_healing": {}, "healed_sketches": {"empty": 0, "mean_points": 12.0}}
    results = {"settings": {"masks": [0.3], "temperature": 0.01, "greedy": False, "seed": 0},
               "data": {"split": "test", "n_per_category": {"a": 2}, "n_sketches": 2, "max_seq_len_filter": 9,
                        "max_per_category": None, "mask_table": {"file": "masks.npy"}},
               "classifier": None, "accuracy_note": "none",
               "models": [{"name": "m", "n_evaluated": 2, "n_excluded_too_long": 0, "max_seq_len": 9,
                           "image_size": 32, "render_mode": "fast", "results": [row]}]}
    md = results_markdown(results)
    assert "| 0.3 | m | 50.00 | – | – | – | – | – |" in md and "| 0.3 | m | 30.00 | 0 | 12.0 |" in md


def test_stability_deformations():
    s = np.array([[1, 0, 0], [0, 2, 1]], np.float32)
    np.testing.assert_allclose(rotate(s, 90)[:, :2], [[0, 1], [-2, 0]], atol=1e-6)
    np.testing.assert_array_equal(rotate(s, 90)[:, 2], s[:, 2])
    np.testing.assert_array_equal(stretch(s, 1, 0.5), [[1, 0, 0], [0, 1, 1]])
    with pytest.raises(ValueError):
        stretch(s, 2, 0.5)
    names = [name for name, _ in STABILITY_TESTS]
    assert names == ["rotated 5 deg", "rotated 10 deg", "one axis x 0.9", "one axis x 0.8", "wobble 1 %",
                     "wobble 2 %"]
    for _, fn in STABILITY_TESTS:  # deterministic given the rng, pen column untouched
        a, b = fn(s, np.random.default_rng(1)), fn(s, np.random.default_rng(1))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a[:, 2], s[:, 2])


# ---------------------------------------------------------------------------------------------------- issue 17


def healing_rows(result: dict, model: int = 0) -> dict[tuple[str, float, str], dict]:
    return {(h["erase"], h["mask"], h["mode"]): h for h in result["models"][model]["healing"]}


def test_completion_and_redraw_side_by_side_with_the_floor_for_both_erase_kinds(models, sheep_npz, tmp_path):
    gmlp, cnn = models
    out = tmp_path / "both"
    masks = (0.3, 1.0)
    res = evaluate([gmlp], [sheep_npz], out_dir=out, masks=masks, erase="raster,vector", gapfill=cnn,
                   max_per_category=5, batch_size=3, device="cpu", num_workers=0, grid_count=2, progress=False)
    on_disk = strict_json(out / "results.json")
    assert on_disk == res
    s = res["settings"]
    assert s["modes"] == ["complete", "redraw"] and s["erase"] == ["raster", "vector"] and s["gapfill"] == str(cnn)
    assert s["ink"]["size"] == 128 and s["ink"]["tolerance_px"] == 2.0 and s["completion"]["passes"] >= 1
    m = res["models"][0]
    assert m["gapfill"] == str(cnn)
    rows = healing_rows(res)
    assert set(rows) == {(e, p, mode) for e in ("raster", "vector") for p in masks
                         for mode in ("complete", "redraw", "floor")}
    n = m["n_evaluated"]
    for (erase, p, mode), h in rows.items():
        ink = h["ink"]
        assert ink["n"] == n and h["healed_to_original"]["n_queries"] == n and h["original_to_healed"]["n_queries"] == n
        for key in ("recall", "precision", "kept"):
            assert ink[key] is None or 0.0 <= ink[key] <= 1.0, (erase, p, mode, key)
        assert h["accuracy"] is None  # one category: no classifier
        if mode == "floor":  # the corrupted input itself: nothing of the erased ink, all of the input, nothing added
            assert ink["recall"] == 0.0 and ink["kept"] == 1.0 and ink["precision"] is None
            assert ink["px_erased"] > 0 and ink["px_added"] == 0 and h["seconds_per_sketch"] is None
        else:
            assert h["seconds_per_sketch"] >= 0.0
        if mode == "complete":  # completion keeps every input stroke
            assert ink["kept"] == 1.0 or ink["px_input"] == 0
            assert 0 <= h["healed_sketches"]["with_added"] <= n
    # The published columns are the raster redraw and the raster floor, number for number.
    for r in m["results"]:
        assert rows["raster", r["mask"], "redraw"]["healed_to_original"] == r["healed"]["healed_to_original"]
        assert rows["raster", r["mask"], "redraw"]["original_to_healed"] == r["healed"]["original_to_healed"]
        assert rows["raster", r["mask"], "floor"]["healed_to_original"] == r["no_healing"]["corrupted_to_original"]
        assert rows["raster", r["mask"], "floor"]["erased_fraction"] == r["erased_fraction"]
    # Both erase kinds erase the same candidates (one mask table).
    for p in masks:
        assert rows["raster", p, "floor"]["erased_fraction"] == rows["vector", p, "floor"]["erased_fraction"]
    md = (out / "results.md").read_text()
    for text in ("erased-ink recall", "added-ink precision", "kept ink", "none (floor)", "| vector | 0.3 |",
                 "The published protocol", "Healed -> originals"):
        assert text in md, text
    assert md.count("| none (floor) |") == 2 * len(masks)


def test_a_perfect_healer_scores_one_on_every_ink_measure(models, sheep_npz, tmp_path, monkeypatch):
    """A completion that adds back exactly the original's strokes restores all the erased ink, adds only ink of
    the original and keeps the input: recall = precision = kept = 1."""
    import sketchheal.evaluation.protocol as protocol

    def perfect(healer, inputs, originals, images, **kw):
        return [[line.copy() for line in o] for o in originals], [None] * len(originals)

    monkeypatch.setattr(protocol, "complete_batch", perfect)
    res = evaluate([models[0]], [sheep_npz], out_dir=tmp_path / "p", masks=(0.5,), modes="complete",
                   erase="vector,raster", max_per_category=4, batch_size=4, device="cpu", num_workers=0,
                   grid_count=0, progress=False)
    rows = healing_rows(res)
    assert set(rows) == {(e, 0.5, m) for e in ("vector", "raster") for m in ("complete", "floor")}
    for erase in ("vector", "raster"):
        ink = rows[erase, 0.5, "complete"]["ink"]
        assert ink["px_erased"] > 0 and ink["px_added"] > 0
        assert ink["recall"] == 1.0 and ink["precision"] == 1.0 and ink["kept"] == 1.0, (erase, ink)
        assert ink["recall_mean"] == 1.0 and ink["f1"] == 1.0


def test_one_mode_one_erase_kind(models, sheep_npz, tmp_path):
    """Only completion on vector erasure: no published rows (they are raster redraw), no grids, the floor still
    beside it; the markdown has the healing table only."""
    res = evaluate([models[0]], [sheep_npz], out_dir=tmp_path / "c", masks=(0.3,), modes=["complete"],
                   erase=["vector"], gapfill=None, max_per_category=3, batch_size=3, device="cpu", num_workers=0,
                   progress=False)
    m = res["models"][0]
    assert res["settings"]["gapfill"] == "none" and m["gapfill"] is None
    assert m["results"] == [] and m["grids"] == []
    assert set(healing_rows(res)) == {("vector", 0.3, "complete"), ("vector", 0.3, "floor")}
    md = (tmp_path / "c" / "results.md").read_text()
    assert "| vector | 0.3 |" in md and "The published protocol" not in md
    strict_json(tmp_path / "c" / "results.json")
    # Redraw alone on raster masks: the published rows as before, plus its healing rows.
    red = evaluate([models[0]], [sheep_npz], out_dir=tmp_path / "r", masks=(0.3,), modes="redraw",
                   max_per_category=3, batch_size=3, device="cpu", num_workers=0, grid_count=0, progress=False)
    row = red["models"][0]["results"][0]
    assert set(row) == {"mask", "erased_fraction", "healed", "no_healing", "healed_sketches"}
    assert set(healing_rows(red)) == {("raster", 0.3, "redraw"), ("raster", 0.3, "floor")}


def test_modes_erase_and_gapfill_settings_are_checked():
    for name, value in (("modes", []), ("modes", ["paint"]), ("modes", ["redraw", "redraw"]), ("erase", ["pixels"]),
                        ("erase", "raster"), ("gapfill", ""), ("gapfill", None)):
        with pytest.raises(ValueError, match=f"eval.{name}"):
            EvalConfig(**{name: value}).validate()
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    cfg = config_from_args(parser.parse_args(["evaluate", "--checkpoint", "m", "--data", "d", "-o", "o",
                                              "--modes", "redraw", "--erase", "vector, raster", "--gapfill", "none"]))
    assert cfg.modes == ["redraw"] and cfg.erase == ["vector", "raster"] and cfg.gapfill == "none"
    with pytest.raises(ValueError, match="eval.erase"):
        config_from_args(parser.parse_args(["evaluate", "--checkpoint", "m", "--data", "d", "-o", "o",
                                            "--erase", "pencil"]))
