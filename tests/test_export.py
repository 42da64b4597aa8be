"""Importer of the published weights (against a functional re-implementation of the published forward pass) and
export of training checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sketchheal import __version__
from sketchheal.cli.main import main as cli_main
from sketchheal.config import preset
from sketchheal.training.export import export_checkpoint, import_reference, training_lineage
from sketchheal.model import LmserPix2Seq
from sketchheal.model.weights import CONFIG_NAME, WEIGHTS_NAME, load_release

D, FFN, TOKENS, PATCH, NZ, M = 128, 768, 64, 16, 128, 20


def published_state_dicts(hidden: int = 512, seed: int = 0):
    """State dicts with exactly the published names and shapes (docs/reference.md), random values."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    def norm(n):
        return {"weight": 1 + rnd(n), "bias": rnd(n)}

    enc = {"pos_emb": rnd(1, TOKENS, D), "patcher.weight": rnd(D, 1, PATCH, PATCH), "patcher.bias": rnd(D)}
    for name in [f"downsampling{k}" for k in range(1, 5)] + [f"upsampling{k}" for k in range(1, 5)]:
        block = {
            "norm.weight": norm(D)["weight"], "norm.bias": rnd(D),
            "channel_proj1.weight": rnd(FFN, D), "channel_proj1.bias": rnd(FFN),
            "channel_proj2.weight": rnd(D, FFN // 2), "channel_proj2.bias": rnd(D),
            "sgu.norm.weight": norm(FFN // 2)["weight"], "sgu.norm.bias": rnd(FFN // 2),
            "sgu.spatial_proj.weight": rnd(TOKENS, TOKENS, 1), "sgu.spatial_proj.bias": 1 + rnd(TOKENS),
        }
        enc.update({f"{name}.{k}": v for k, v in block.items()})
    enc.update({
        "reclinear.weight": rnd(PATCH * PATCH, D, scale=0.002), "reclinear.bias": rnd(PATCH * PATCH),
        "active.weight": norm(D)["weight"], "active.bias": rnd(D),
        "fc_mu.weight": rnd(NZ, D), "fc_mu.bias": rnd(NZ),
        "fc_sigma.weight": rnd(NZ, D), "fc_sigma.bias": rnd(NZ),
    })
    h = hidden
    dec = {
        "fc_hc.weight": rnd(2 * h, NZ), "fc_hc.bias": rnd(2 * h),
        "lstm.weight_ih_l0": rnd(4 * h, 5 + NZ), "lstm.weight_hh_l0": rnd(4 * h, h, scale=0.05),
        "lstm.bias_ih_l0": rnd(4 * h), "lstm.bias_hh_l0": rnd(4 * h),
        "fc_params.weight": rnd(6 * M + 3, h), "fc_params.bias": rnd(6 * M + 3),
    }
    return enc, dec


# ---- the published forward pass, written directly on the raw tensors ------------------------------------------------

def ref_gmlp(p, prefix, x):
    """Published block: proj2(SGU(gelu(proj1(x)))) + LayerNorm(x)."""
    shortcut = F.layer_norm(x, (D,), p[prefix + "norm.weight"], p[prefix + "norm.bias"])
    h = F.gelu(F.linear(x, p[prefix + "channel_proj1.weight"], p[prefix + "channel_proj1.bias"]))
    u, v = h[..., : FFN // 2], h[..., FFN // 2:]
    v = F.layer_norm(v, (FFN // 2,), p[prefix + "sgu.norm.weight"], p[prefix + "sgu.norm.bias"])
    v = F.conv1d(v, p[prefix + "sgu.spatial_proj.weight"], p[prefix + "sgu.spatial_proj.bias"])
    return F.linear(u * v, p[prefix + "channel_proj2.weight"], p[prefix + "channel_proj2.bias"]) + shortcut


def ref_encoder(p, image, loops=2):
    def embed(img):
        x = F.conv2d(img, p["patcher.weight"], p["patcher.bias"], stride=PATCH)  # (B, D, 8, 8)
        return x.flatten(2).transpose(1, 2) + p["pos_emb"]  # token = row * 8 + col

    def down(k, x):
        return ref_gmlp(p, f"downsampling{k}.", x)

    def up(k, x):
        return ref_gmlp(p, f"upsampling{k}.", x)

    def rec(y0):
        pix = F.linear(y0, p["reclinear.weight"], p["reclinear.bias"])  # (B, 64, 256)
        b = pix.shape[0]
        img = pix.reshape(b, 8, 8, PATCH, PATCH).permute(0, 1, 3, 2, 4).reshape(b, 1, 8 * PATCH, 8 * PATCH)
        return torch.tanh(img)

    def up_path(x1, x2, x3, x4):
        y3 = (up(4, x4) + x3) / 2
        y2 = (up(3, y3) + x2) / 2
        y1 = (up(2, y2) + x1) / 2
        return up(1, y1), y1, y2, y3

    x1 = down(1, embed(image))
    x2 = down(2, x1)
    x3 = down(3, x2)
    x4 = down(4, x3)
    y0, y1, y2, y3 = up_path(x1, x2, x3, x4)
    recon = rec(y0)
    for _ in range(loops):
        x1 = (down(1, embed(recon)) + y1) / 2
        x2 = (down(2, x1) + y2) / 2
        x3 = (down(3, x2) + y3) / 2
        x4 = down(4, x3) / 2
        y0, y1, y2, y3 = up_path(x1, x2, x3, x4)
        recon = rec(y0)
    h = F.layer_norm(x4, (D,), p["active.weight"], p["active.bias"]).mean(1)
    return F.linear(h, p["fc_mu.weight"], p["fc_mu.bias"]), F.linear(h, p["fc_sigma.weight"], p["fc_sigma.bias"]), recon


def ref_decoder(p, inputs, z):
    hidden = p["lstm.weight_hh_l0"].shape[1]
    h, c = torch.tanh(F.linear(z, p["fc_hc.weight"], p["fc_hc.bias"])).split(hidden, dim=1)
    outs = []
    for t in range(inputs.shape[1]):
        x = torch.cat([inputs[:, t], z], 1)
        gates = F.linear(x, p["lstm.weight_ih_l0"], p["lstm.bias_ih_l0"]) + F.linear(h, p["lstm.weight_hh_l0"],
                                                                                    p["lstm.bias_hh_l0"])
        i, f, g, o = gates.chunk(4, 1)  # PyTorch gate order
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(F.linear(h, p["fc_params.weight"], p["fc_params.bias"]))
    return torch.stack(outs, 1)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    d = tmp_path_factory.mktemp("published")
    enc, dec = published_state_dicts()
    torch.save(enc, d / "encoderRNN_epoch_150000.pth")
    torch.save(dec, d / "decoderRNN_epoch_150000.pth")
    return d, enc, dec


def test_import_reference_matches_published_forward(published, tmp_path):
    d, enc, dec = published
    out = tmp_path / "release"
    import_reference(d / "encoderRNN_epoch_150000.pth", d / "decoderRNN_epoch_150000.pth", out)
    model, meta = load_release(out)
    assert model.config.gmlp_residual == "reference" and model.config.dec_hidden == 512
    assert model.config.image_size == 128 and model.config.lmser_loops == 2 and model.config.num_mixtures == 20
    assert meta["scale"] == pytest.approx(44.18034) and len(meta["categories"]) == 17
    assert meta["sketchheal_version"] == __version__

    g = torch.Generator().manual_seed(1)
    image = (torch.rand(2, 1, 128, 128, generator=g) > 0.9).float() * 2 - 1
    strokes = torch.randn(2, 6, 5, generator=g)
    # compared in float64: the published residual form does not normalise its residual path, so after 24 blocks two
    # fp32 formulations of the same maths differ by ~3e-4 on the reconstruction (each that far from float64)
    model.double()
    enc, dec = ({k: v.double() for k, v in sd.items()} for sd in (enc, dec))
    image, strokes = image.double(), strokes.double()
    with torch.no_grad():
        mu_ref, logvar_ref, recon_ref = ref_encoder(enc, image)
        enc_out = model.encode(image)
        assert torch.allclose(enc_out.mu, mu_ref, atol=1e-5, rtol=1e-5)
        assert torch.allclose(enc_out.logvar, logvar_ref, atol=1e-5, rtol=1e-5)
        assert torch.allclose(enc_out.recons[-1], recon_ref, atol=1e-5)
        params_ref = ref_decoder(dec, strokes, mu_ref)
        params, _ = model.decoder(strokes, enc_out.mu)
        assert torch.allclose(params, params_ref, atol=1e-5, rtol=1e-5)


def test_import_reference_1024_via_cli(tmp_path, capsys):
    enc, dec = published_state_dicts(hidden=1024, seed=2)
    torch.save(enc, tmp_path / "enc.pth")
    torch.save(dec, tmp_path / "dec.pth")
    rc = cli_main(["import-reference", str(tmp_path / "enc.pth"), str(tmp_path / "dec.pth"), str(tmp_path / "r"),
                   "--scale", "40", "--categories", "cat,alarm clock"])
    assert rc == 0
    meta = json.loads((tmp_path / "r" / CONFIG_NAME).read_text())
    assert meta["model"]["dec_hidden"] == 1024 and meta["scale"] == 40 and meta["categories"] == ["cat", "alarm clock"]


def test_import_reference_names_bad_keys(published, tmp_path):
    d, enc, dec = published
    bad_enc = dict(enc)
    del bad_enc["upsampling3.sgu.norm.bias"]
    bad_enc["extra_thing.weight"] = torch.zeros(3)
    bad_enc["fc_sigma.weight"] = torch.zeros(64, 128)
    torch.save(bad_enc, tmp_path / "enc.pth")
    with pytest.raises(ValueError) as e:
        import_reference(tmp_path / "enc.pth", d / "decoderRNN_epoch_150000.pth", tmp_path / "out")
    msg = str(e.value)
    assert "encoder.up.2.sgu.norm.bias" in msg and "extra_thing.weight" in msg and "fc_sigma.weight" in msg
    assert not (tmp_path / "out" / WEIGHTS_NAME).exists()
    with pytest.raises(FileNotFoundError):
        import_reference(tmp_path / "missing.pth", d / "decoderRNN_epoch_150000.pth", tmp_path / "out")
    (tmp_path / "junk.pth").write_text("not a torch file")
    with pytest.raises(ValueError, match="junk.pth"):
        import_reference(tmp_path / "junk.pth", d / "decoderRNN_epoch_150000.pth", tmp_path / "out")


def test_export_checkpoint(tmp_path):
    cfg = preset("tiny")
    cfg.model = dataclasses.replace(cfg.model, encoder="cnn")
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg.model)
    ckpt = {"model": model.state_dict(), "optimizer": {}, "step": 20, "lr": 1e-3, "config": cfg.to_dict(),
            "scale": 33.0, "categories": ["cat"], "max_seq_len": 64, "version": __version__}
    torch.save(ckpt, tmp_path / "last.pt")
    rc = cli_main(["export", str(tmp_path / "last.pt"), str(tmp_path / "rel")])
    assert rc == 0
    loaded, meta = load_release(tmp_path / "rel")
    assert meta["extra"]["step"] == 20 and meta["scale"] == 33.0 and meta["max_seq_len"] == 64
    assert loaded.config == cfg.model
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)

    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a sketchheal training checkpoint"):
        export_checkpoint(tmp_path / "plain.pt", tmp_path / "rel2")
    assert cli_main(["export", str(tmp_path / "plain.pt"), str(tmp_path / "rel2")]) == 1
    with pytest.raises(FileNotFoundError):
        export_checkpoint(tmp_path / "nope.pt", tmp_path / "rel2")


def test_export_records_the_runs_behind_a_warm_start(tmp_path):
    """A checkpoint of a run started with --init-from: the release records each earlier run's steps and the total."""
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg.model)

    def save(name: str, step: int, init_from: str) -> Path:
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=init_from))
        torch.save({"model": model.state_dict(), "optimizer": {}, "step": step, "lr": 1e-3, "config": c.to_dict(),
                    "scale": 33.0, "categories": ["cat"], "max_seq_len": 64, "version": __version__}, tmp_path / name)
        return tmp_path / name

    first = save("first.pt", 700, "")
    export_checkpoint(first, tmp_path / "rel1")  # a release can be a source too
    second = save("second.pt", 2_500, str(tmp_path / "rel1"))
    third = save("third.pt", 140, str(second))
    export_checkpoint(third, tmp_path / "rel3")
    extra = load_release(tmp_path / "rel3")[1]["extra"]
    assert extra["step"] == 140 and extra["total_steps"] == 140 + 2_500 + 700
    assert extra["lineage"] == [{"source": str(second), "step": 2_500}, {"source": str(tmp_path / "rel1"), "step": 700}]
    assert load_release(tmp_path / "rel1")[1]["extra"]["total_steps"] == 700

    lost = save("lost.pt", 10, str(tmp_path / "gone.pt"))  # its source is no longer there
    export_checkpoint(lost, tmp_path / "rel4")
    extra = load_release(tmp_path / "rel4")[1]["extra"]
    assert extra["total_steps"] is None and extra["lineage"] == [{"source": str(tmp_path / "gone.pt"), "step": None}]


def test_lineage_of_a_release_exported_over_its_own_source(tmp_path):
    """A model fine-tuned from its release folder and exported back into it: later exports read the lineage it
    recorded, and do not walk the folder's self-reference again and again."""
    cfg = preset("tiny")
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg.model)
    rel = tmp_path / "rel"

    def save(name: str, step: int, init_from: str) -> Path:
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=init_from))
        torch.save({"model": model.state_dict(), "optimizer": {}, "step": step, "lr": 1e-3, "config": c.to_dict(),
                    "scale": 33.0, "categories": ["cat"], "max_seq_len": 64, "version": __version__}, tmp_path / name)
        return tmp_path / name

    export_checkpoint(save("a.pt", 300, ""), rel)
    export_checkpoint(save("b.pt", 200, str(rel)), rel)  # fine-tuned from rel, exported into rel
    extra = load_release(rel)[1]["extra"]
    assert extra["lineage"] == [{"source": str(rel), "step": 300}] and extra["total_steps"] == 500
    export_checkpoint(save("c.pt", 100, str(rel)), tmp_path / "next")
    extra = load_release(tmp_path / "next")[1]["extra"]
    assert extra["lineage"] == [{"source": str(rel), "step": 200}, {"source": str(rel), "step": 300}]
    assert extra["total_steps"] == 600


def test_lineage_stops_at_a_cycle_of_checkpoints(tmp_path):
    """Checkpoints naming each other as sources end the chain with an unknown step instead of looping."""
    cfg = preset("tiny")
    model = LmserPix2Seq(cfg.model)
    for name, other in (("x.pt", "y.pt"), ("y.pt", "x.pt")):
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=str(tmp_path / other)))
        torch.save({"model": model.state_dict(), "optimizer": {}, "step": 5, "lr": 1e-3, "config": c.to_dict(),
                    "scale": 33.0, "categories": ["cat"], "max_seq_len": 64, "version": __version__}, tmp_path / name)
    chain = training_lineage(torch.load(tmp_path / "x.pt", weights_only=True))
    assert chain == [{"source": str(tmp_path / "y.pt"), "step": 5}, {"source": str(tmp_path / "x.pt"), "step": 5},
                     {"source": str(tmp_path / "y.pt"), "step": None}]
