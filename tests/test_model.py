"""Model shapes, determinism, parameter counts, release-directory round trip and a short overfit."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from sketchheal.config import ModelConfig, preset
from sketchheal.model import (
    GMLPBlock, LmserCNNEncoder, LmserGMLPEncoder, LmserPix2Seq, SpatialGatingUnit, StrokeDecoder,
)
from sketchheal.model.pix2seq import GAP_RADIUS, gap_weights
from sketchheal.model.weights import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, load_release, save_release


def tiny(**changes) -> ModelConfig:
    return dataclasses.replace(preset("tiny").model, **changes)


def make_batch(cfg: ModelConfig, b: int = 4, max_len: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """Synthetic stroke-5 batch: points ``(dx, dy, 1, 0, 0)``/pen-up rows, then end tokens; images in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, max_len + 1, (b,), generator=g)
    strokes = torch.zeros(b, max_len + 1, 5)
    strokes[..., 4] = 1
    for i, n in enumerate(lengths.tolist()):
        strokes[i, :n, :2] = torch.randn(n, 2, generator=g) * 0.5
        strokes[i, :n, 4] = 0
        strokes[i, :n, 2] = 1
        strokes[i, n - 1, 2:4] = torch.tensor([0.0, 1.0])  # the last point lifts the pen
    n = cfg.image_size
    clean = (torch.rand(b, 1, n, n, generator=g) > 0.8).float() * 2 - 1
    corrupted = clean.clone()
    corrupted[..., : n // 4, : n // 4] = -1
    return {"corrupted": corrupted, "clean": clean, "strokes": strokes, "length": lengths}


@pytest.mark.parametrize("residual", ["paper", "reference"])
def test_gmlp_block_shapes_and_forms(residual):
    torch.manual_seed(0)
    block = GMLPBlock(d_model=8, d_ffn=16, seq_len=5, residual=residual)
    x = torch.randn(3, 5, 8)
    y = block(x)
    assert y.shape == x.shape
    names = set(block.state_dict())
    assert {"norm.weight", "channel_proj1.weight", "channel_proj2.weight", "sgu.norm.weight",
            "sgu.spatial_proj.weight", "sgu.spatial_proj.bias"} <= names
    assert block.sgu.spatial_proj.weight.shape == (5, 5, 1)
    if residual == "paper":
        # Paper init: the gate starts near 1 (bias 1, weights ~0) and the block is x + f(LN(x)).
        assert torch.all(block.sgu.spatial_proj.bias == 1)
        assert block.sgu.spatial_proj.weight.abs().max() < 1e-3
        assert torch.allclose(y, x + block.branch(block.norm(x)))
    else:
        assert torch.allclose(y, block.branch(x) + block.norm(x))
    with pytest.raises(ValueError):
        GMLPBlock(d_model=8, d_ffn=16, seq_len=5, residual="other")


def test_sgu_mixes_tokens():
    torch.manual_seed(0)
    sgu = SpatialGatingUnit(d_ffn=6, seq_len=4, paper_init=False)
    x = torch.randn(2, 4, 6)
    y = sgu(x)
    assert y.shape == (2, 4, 3)
    x2 = x.clone()
    x2[:, 0, 3:] = torch.randn(2, 3)  # change only token 0's gate half: other tokens' outputs change too
    assert not torch.allclose(sgu(x2)[:, 1], y[:, 1])


@pytest.mark.parametrize("changes", [
    {"encoder": "gmlp"},
    {"encoder": "gmlp", "gmlp_residual": "reference"},
    {"encoder": "gmlp", "lmser_loops": 0},
    {"encoder": "cnn"},
    {"encoder": "cnn", "lmser_loops": 0},
])
def test_forward_shapes(changes):
    cfg = tiny(**changes)
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg)
    batch = make_batch(cfg)
    out = model(batch["corrupted"], batch["strokes"], batch["length"])
    b, steps = batch["strokes"].shape[:2]
    assert out["params"].shape == (b, steps, 6 * cfg.num_mixtures + 3)
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (b, cfg.z_size)
    assert len(out["recons"]) == cfg.lmser_loops + 1
    for r in out["recons"]:
        assert r.shape == (b, 1, cfg.image_size, cfg.image_size)
        assert r.abs().max() <= 1
    losses = model.compute_losses(out, batch, **preset("tiny").train.loss_weights())
    assert set(losses) == {"loss", "stroke", "image", "kl"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_pen_loss_weight_changes_the_loss_not_the_logged_stroke_loss():
    cfg = tiny()
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg)
    batch = make_batch(cfg)
    out = model(batch["corrupted"], batch["strokes"], batch["length"])
    paper = preset("tiny").train
    weighted = dataclasses.replace(paper, pen_loss_weight=3.0)
    a, w = (model.compute_losses(out, batch, **paper.loss_weights()),
            model.compute_losses(out, batch, **weighted.loss_weights()))
    assert torch.equal(a["stroke"], w["stroke"])  # the logged L_R stays comparable across runs
    assert w["loss"] > a["loss"]
    assert torch.allclose(a["loss"], a["stroke"] + paper.image_loss_weight * a["image"])


def test_gap_weights_mark_the_neighbourhood_of_the_erased_ink():
    clean = -torch.ones(1, 1, 128, 128)
    clean[0, 0, 64, 20:100] = 1.0  # a horizontal line ...
    corrupted = clean.clone()
    corrupted[0, 0, 64, 50:60] = -1.0  # ... with a gap the corruption made
    w = gap_weights(clean, corrupted, 8.0)
    assert w.shape == clean.shape
    assert w[0, 0, 64, 55] == 9.0 and w[0, 0, 64 + GAP_RADIUS, 50 - GAP_RADIUS] == 9.0  # the gap, 6 px around it
    assert w[0, 0, 64 + GAP_RADIUS + 1, 55] == 1.0 and w[0, 0, 64, 30] == 1.0  # beyond it, and the kept ink
    assert torch.equal(gap_weights(clean, clean, 8.0), torch.ones_like(clean))  # nothing erased: plain MSE


def test_gap_loss_weight_changes_the_loss_not_the_logged_image_loss():
    cfg = tiny()
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg)
    batch = make_batch(cfg)
    out = model(batch["corrupted"], batch["strokes"], batch["length"])
    paper = preset("tiny").train
    assert paper.gap_loss_weight == 0.0  # the published loss by default
    gapped = dataclasses.replace(paper, gap_loss_weight=8.0)
    a, g = (model.compute_losses(out, batch, **paper.loss_weights()),
            model.compute_losses(out, batch, **gapped.loss_weights()))
    assert torch.equal(a["image"], g["image"])  # the logged L_img stays the plain MSE
    err = (out["recons"][-1] - batch["clean"]) ** 2
    weighted = (gap_weights(batch["clean"], batch["corrupted"], 8.0) * err).mean()
    assert torch.allclose(g["loss"], g["stroke"] + paper.image_loss_weight * weighted)
    assert g["loss"] > a["loss"]  # the batch has erased ink
    with pytest.raises(ValueError, match="gap_loss_weight"):
        dataclasses.replace(paper, gap_loss_weight=-1.0).validate()


def test_bf16_autocast_keeps_losses_fp32():
    cfg = tiny()
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg)
    batch = make_batch(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["corrupted"], batch["strokes"], batch["length"])
        losses = model.compute_losses(out, batch, **preset("tiny").train.loss_weights())
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_bf16_autocast_on_a_cpu_without_bf16_runs_the_lstm_in_fp32(monkeypatch):
    """oneDNN builds no bf16 LSTM for CPUs without native bfloat16; the decoder then runs that layer in fp32."""
    import sketchheal.model.decoder as D

    monkeypatch.setattr(D, "cpu_bf16_supported", lambda: False)
    cfg = tiny()
    torch.manual_seed(0)
    dec = D.StrokeDecoder(cfg)
    z, rows = torch.randn(3, cfg.z_size), torch.randn(3, 7, 5)
    state = dec.initial_state(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        params, (h, c) = dec(rows, z, state)
    ref, (h_ref, c_ref) = dec(rows, z, state)
    assert h.dtype == c.dtype == torch.float32 and torch.allclose(h, h_ref) and torch.allclose(c, c_ref)
    assert torch.allclose(params.float(), ref, atol=0.05)  # only the output head ran in bf16


def test_encoder_classes_and_bad_configs():
    assert isinstance(LmserPix2Seq(tiny()).encoder, LmserGMLPEncoder)
    assert isinstance(LmserPix2Seq(tiny(encoder="cnn")).encoder, LmserCNNEncoder)
    for bad in ({"encoder": "rnn"}, {"gmlp_residual": "x"}, {"patch_size": 5}, {"lmser_loops": -1}):
        with pytest.raises(ValueError):
            LmserPix2Seq(tiny(**bad))


def test_loops_feed_back():
    # With T loops the latent depends on the up path; the recons of successive passes differ.
    torch.manual_seed(0)
    enc = LmserGMLPEncoder(tiny(lmser_loops=2))
    out = enc(make_batch(tiny())["corrupted"])
    assert not torch.allclose(out.recons[0], out.recons[-1])


def test_decoder_stepwise_equals_full_sequence():
    cfg = tiny()
    torch.manual_seed(0)
    dec = StrokeDecoder(cfg)
    z = torch.randn(3, cfg.z_size)
    inputs = torch.randn(3, 6, 5)
    full, _ = dec(inputs, z)
    state, rows = None, []
    for t in range(6):
        p, state = dec(inputs[:, t:t + 1], z, state)
        rows.append(p)
    assert torch.allclose(torch.cat(rows, 1), full, atol=1e-6)
    h, c = dec.initial_state(z)
    assert h.shape == c.shape == (1, 3, cfg.dec_hidden)


def test_determinism():
    cfg = tiny()
    batch = make_batch(cfg)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = LmserPix2Seq(cfg)
        g = torch.Generator().manual_seed(7)
        outs.append(model(batch["corrupted"], batch["strokes"], batch["length"], generator=g))
    assert torch.equal(outs[0]["params"], outs[1]["params"])
    assert torch.equal(outs[0]["z"], outs[1]["z"])


def test_parameter_counts_match_the_paper():
    # docs/reference.md ("Model"): encoder 1.34 M, decoder 1.52 M (H = 512).
    counts = LmserPix2Seq(ModelConfig()).num_parameters()
    assert counts["encoder"] == pytest.approx(1.34e6, rel=0.02)
    assert counts["decoder"] == pytest.approx(1.52e6, rel=0.02)
    assert counts["total"] == counts["encoder"] + counts["decoder"]
    assert counts["encoder"] == 1_335_680 and counts["decoder"] == 1_520_251
    cnn = LmserPix2Seq(ModelConfig(encoder="cnn")).num_parameters()["encoder"]
    assert 0.8 < cnn / counts["encoder"] < 1.25


def test_save_load_round_trip(tmp_path):
    cfg = tiny()
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg).eval()
    batch = make_batch(cfg)
    out_dir = save_release(model, tmp_path / "rel", scale=12.5, max_seq_len=64, categories=["cat", "dog"],
                           extra={"step": 10})
    assert (out_dir / WEIGHTS_NAME).is_file() and (out_dir / CONFIG_NAME).is_file()
    loaded, meta = load_release(out_dir)
    assert not loaded.training
    assert meta["format_version"] == FORMAT_VERSION and meta["scale"] == 12.5 and meta["max_seq_len"] == 64
    assert meta["categories"] == ["cat", "dog"] and meta["extra"] == {"step": 10}
    assert loaded.config == cfg
    a = model(batch["corrupted"], batch["strokes"], batch["length"], sample_z=False)
    b = loaded(batch["corrupted"], batch["strokes"], batch["length"], sample_z=False)
    assert torch.equal(a["params"], b["params"]) and torch.equal(a["recons"][-1], b["recons"][-1])
    assert not list(out_dir.glob("*.tmp*"))


def test_release_errors(tmp_path):
    cfg = tiny()
    model = LmserPix2Seq(cfg)
    d = save_release(model, tmp_path / "rel", scale=1.0, max_seq_len=64, categories=["cat"])
    config_path = d / CONFIG_NAME
    good = json.loads(config_path.read_text())

    def write(meta):
        config_path.write_text(json.dumps(meta))

    write({**good, "format_version": FORMAT_VERSION + 1})
    with pytest.raises(ValueError, match="newer sketchheal"):
        load_release(d)
    write({**good, "model": {**good["model"], "wings": 2}})
    with pytest.raises(ValueError, match="wings"):
        load_release(d)
    write({k: v for k, v in good.items() if k != "format_version"})
    with pytest.raises(ValueError, match="format_version"):
        load_release(d)
    write({**good, "model": {**good["model"], "dec_hidden": 32}})
    with pytest.raises(ValueError, match=r"decoder\.lstm\.weight_hh_l0"):
        load_release(d)
    write(good)
    (d / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_NAME):
        load_release(d)
    with pytest.raises(FileNotFoundError):
        load_release(tmp_path / "nowhere")

    with torch.no_grad():
        model.decoder.fc_params.bias[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        save_release(model, tmp_path / "bad", scale=1.0, max_seq_len=64, categories=["cat"])
    assert not (tmp_path / "bad" / WEIGHTS_NAME).exists()


@pytest.mark.parametrize("encoder", ["gmlp", "cnn"])
def test_loss_decreases_on_a_fixed_batch(encoder):
    cfg = tiny(encoder=encoder)
    train_cfg = preset("tiny").train
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg)
    batch = make_batch(cfg, b=8, max_len=16, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest and robust to a busy machine
    try:
        for _ in range(40):
            out = model(batch["corrupted"], batch["strokes"], batch["length"])
            loss = model.compute_losses(out, batch, **train_cfg.loss_weights())["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.7 * losses[0], losses


def test_input_dropout_only_in_training():
    from sketchheal.config import preset
    from sketchheal.model.pix2seq import LmserPix2Seq

    cfg = preset("tiny").model
    cfg.input_dropout = 0.5
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg)
    image = torch.rand(2, 1, cfg.image_size, cfg.image_size) * 2 - 1
    strokes = torch.zeros(2, 7, 5)
    strokes[:, :, 0:2] = torch.randn(2, 7, 2)
    strokes[:, :, 2] = 1
    model.eval()
    a = model(image, strokes, sample_z=False)["params"]
    b = model(image, strokes, sample_z=False)["params"]
    assert torch.equal(a, b)  # no dropout at inference
    model.train()
    torch.manual_seed(1)
    c = model(image, strokes, sample_z=False)["params"]
    assert not torch.allclose(a, c)
