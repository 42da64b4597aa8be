"""One training step of the model as optimised (tokens-first gMLP, products as written in ``sketchheal.model``,
oneDNN's kernels where enabled) against the same step written plainly here: the published block order with a
``Conv1d`` token mixing and a ``Conv2d`` patch embedding, an LSTM as a Python loop, sketch-rnn's loss. The losses,
every parameter's gradient and the parameters after one Adam step must agree to float tolerance."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sketchheal.config import ModelConfig, preset
from sketchheal.model import matmul
from sketchheal.model.pix2seq import LmserPix2Seq

IMAGE_W, PEN_W = 0.5, 1.0  # the paper's loss weights


# ---- the step, written plainly on the model's parameters (a dict name -> tensor) -----------------------------------

def ref_block(p, pre, x, cfg: ModelConfig):
    """gMLP block over (B, n, d): proj1, gelu, split, LN(v), token mixing as the published Conv1d, proj2."""
    def ln(t, name, dim):
        return F.layer_norm(t, (dim,), p[name + ".weight"], p[name + ".bias"])

    inp = ln(x, pre + "norm", cfg.d_model) if cfg.gmlp_residual == "paper" else x
    h = F.gelu(F.linear(inp, p[pre + "channel_proj1.weight"], p[pre + "channel_proj1.bias"]))
    u, v = h.chunk(2, dim=-1)
    v = ln(v, pre + "sgu.norm", cfg.d_ffn // 2)
    v = F.conv1d(v, p[pre + "sgu.spatial_proj.weight"], p[pre + "sgu.spatial_proj.bias"])
    y = F.linear(u * v, p[pre + "channel_proj2.weight"], p[pre + "channel_proj2.bias"])
    return x + y if cfg.gmlp_residual == "paper" else y + ln(x, pre + "norm", cfg.d_model)


def ref_encoder(p, image, cfg: ModelConfig):
    ps, g = cfg.patch_size, cfg.image_size // cfg.patch_size

    def embed(img):
        x = F.conv2d(img, p["encoder.patch_embed.weight"], p["encoder.patch_embed.bias"], stride=ps)
        return x.flatten(2).transpose(1, 2) + p["encoder.pos_emb"]  # (B, n, d), token = row * g + col

    def down(k, x):
        return ref_block(p, f"encoder.down.{k}.", x, cfg)

    def up(k, x):
        return ref_block(p, f"encoder.up.{k}.", x, cfg)

    def rec(y0):
        pix = F.linear(y0, p["encoder.to_pixels.weight"], p["encoder.to_pixels.bias"])  # (B, n, p*p)
        b = pix.shape[0]
        img = pix.reshape(b, g, g, ps, ps).permute(0, 1, 3, 2, 4).reshape(b, 1, g * ps, g * ps)
        return torch.tanh(img)

    def up_path(x1, x2, x3, x4):
        y3 = (up(3, x4) + x3) / 2
        y2 = (up(2, y3) + x2) / 2
        y1 = (up(1, y2) + x1) / 2
        return up(0, y1), y1, y2, y3

    x1 = down(0, embed(image))
    x2 = down(1, x1)
    x3 = down(2, x2)
    x4 = down(3, x3)
    y0, y1, y2, y3 = up_path(x1, x2, x3, x4)
    recons = [rec(y0)]
    for _ in range(cfg.lmser_loops):
        x1 = (down(0, embed(recons[-1])) + y1) / 2
        x2 = (down(1, x1) + y2) / 2
        x3 = (down(2, x2) + y3) / 2
        x4 = down(3, x3) / 2
        y0, y1, y2, y3 = up_path(x1, x2, x3, x4)
        recons.append(rec(y0))
    h = F.layer_norm(x4, (cfg.d_model,), p["encoder.norm_out.weight"], p["encoder.norm_out.bias"]).mean(1)
    mu = F.linear(h, p["encoder.fc_mu.weight"], p["encoder.fc_mu.bias"])
    return mu, F.linear(h, p["encoder.fc_logvar.weight"], p["encoder.fc_logvar.bias"]), recons[-1]


def ref_decoder(p, inputs, z):
    """LSTM (gate order i, f, g, o, as torch) as a loop over the steps, then the mixture head."""
    h, c = torch.tanh(F.linear(z, p["decoder.fc_hc.weight"], p["decoder.fc_hc.bias"])).chunk(2, dim=-1)
    outs = []
    for t in range(inputs.shape[1]):
        x = torch.cat([inputs[:, t], z], dim=-1)
        gates = (F.linear(x, p["decoder.lstm.weight_ih_l0"], p["decoder.lstm.bias_ih_l0"])
                 + F.linear(h, p["decoder.lstm.weight_hh_l0"], p["decoder.lstm.bias_hh_l0"]))
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return F.linear(torch.stack(outs, 1), p["decoder.fc_params.weight"], p["decoder.fc_params.bias"])


def ref_losses(params, strokes, lengths, recon, clean, m: int):
    """sketch-rnn's L_R (mixture NLL over the real points + pen cross-entropy over all steps, / (L B)) + 0.5 MSE."""
    b, steps = strokes.shape[:2]
    comp = params[..., : 6 * m].reshape(b, steps, m, 6)
    log_pi = F.log_softmax(comp[..., 0], -1)
    mx, my = comp[..., 1], comp[..., 2]
    lsx, lsy = comp[..., 3].clamp(min=-7.0), comp[..., 4].clamp(min=-7.0)
    rho = torch.tanh(comp[..., 5]).clamp(-1 + 1e-5, 1 - 1e-5)
    dx, dy = strokes[..., 0:1], strokes[..., 1:2]
    zx, zy = (dx - mx) / lsx.exp(), (dy - my) / lsy.exp()
    one = (1 - rho) * (1 + rho)
    log_n = (-math.log(2 * math.pi) - lsx - lsy - 0.5 * one.log()
             - (zx * zx + zy * zy - 2 * rho * zx * zy) / (2 * one))
    log_mix = torch.logsumexp(log_pi + log_n, -1)  # (B, L)
    points = torch.arange(steps)[None] < lengths[:, None]
    offset = -(log_mix * points).sum() / (steps * b)
    pen = -(strokes[..., 2:5] * F.log_softmax(params[..., 6 * m:], -1)).sum() / (steps * b)
    image = ((recon - clean) ** 2).mean()
    return {"loss": offset + pen + IMAGE_W * image, "stroke": offset + pen, "image": image}


# ---- the comparison -------------------------------------------------------------------------------------------------

CONFIGS = {
    "tiny": preset("tiny").model,
    # the paper's shape (128-px image, 16-px patches -> 64 tokens, T = 2 loops) at a small width
    "paper-shaped": ModelConfig(d_model=32, d_ffn=64, z_size=16, dec_hidden=32, num_mixtures=5),
    "paper-shaped, published residual": ModelConfig(d_model=32, d_ffn=64, z_size=16, dec_hidden=32, num_mixtures=5,
                                                    gmlp_residual="reference"),
}


def make_batch(cfg: ModelConfig, b: int = 4, steps: int = 21):
    g = torch.Generator().manual_seed(3)
    n = cfg.image_size
    clean = (torch.rand(b, 1, n, n, generator=g) > 0.85).float() * 2 - 1
    corrupted = clean.clone()
    corrupted[..., : n // 3, : n // 3] = -1
    strokes = torch.zeros(b, steps, 5)
    lengths = torch.tensor([steps - 1, 12, 7, 15][:b])
    for i, k in enumerate(lengths.tolist()):
        strokes[i, :k, :2] = torch.randn(k, 2, generator=g) * 0.5
        strokes[i, :k, 2] = 1
        strokes[i, k - 1, 2:4] = torch.tensor([0.0, 1.0])
        strokes[i, k:, 4] = 1
    return corrupted, clean, strokes, lengths


@pytest.fixture(params=["torch", "onednn"])
def kernels(request):
    if request.param == "onednn" and not matmul.onednn_available():
        pytest.skip("this torch build has no oneDNN linear kernel")
    before = matmul.onednn_enabled()
    matmul.use_onednn(request.param == "onednn")
    yield request.param
    matmul.use_onednn(before)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_step_matches_the_plain_formulation(name, kernels):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg).train()
    corrupted, clean, strokes, lengths = make_batch(cfg)
    batch = {"corrupted": corrupted, "clean": clean, "strokes": strokes, "length": lengths}

    out = model(corrupted, strokes, lengths, generator=torch.Generator().manual_seed(5))
    losses = model.compute_losses(out, batch, image_loss_weight=IMAGE_W, pen_loss_weight=PEN_W, kl_weight=0.0,
                                  kl_min=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()
    losses["loss"].backward()

    ref = {k: v.detach().clone().requires_grad_(True) for k, v in model.named_parameters()}
    mu, logvar, recon = ref_encoder(ref, corrupted, cfg)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
    inputs = torch.cat([torch.tensor([[[0.0, 0.0, 1.0, 0.0, 0.0]]]).expand(len(z), 1, 5), strokes[:, :-1]], 1)
    params = ref_decoder(ref, inputs, z)
    expect = ref_losses(params, strokes, lengths, recon, clean, cfg.num_mixtures)
    expect["loss"].backward()

    torch.testing.assert_close(out["params"], params, rtol=1e-5, atol=1e-5)
    for k in ("loss", "stroke", "image"):
        torch.testing.assert_close(losses[k], expect[k], rtol=1e-5, atol=1e-6)
    names = dict(model.named_parameters())
    assert set(names) == set(ref)
    for k, p in names.items():
        scale = ref[k].grad.abs().max().item()
        torch.testing.assert_close(p.grad, ref[k].grad, rtol=1e-4, atol=1e-4 * scale + 1e-7, msg=lambda m: f"{k}: {m}")

    # one Adam step on each side: the same update wherever the gradient is clearly non-zero (Adam's first step is
    # lr * sign(g) for |g| >> eps, so last-bit noise on a zero gradient may flip it)
    ref_opt = torch.optim.Adam(list(ref.values()), lr=1e-3)
    opt.step()
    ref_opt.step()
    for k, p in names.items():
        g = ref[k].grad
        clear = g.abs() > 1e-3 * g.abs().max()
        torch.testing.assert_close(p.detach()[clear], ref[k].detach()[clear], rtol=0, atol=1e-6,
                                   msg=lambda m: f"{k} after the step: {m}")


def test_encoder_only_step_matches(kernels):
    """Encoder-only training (decoder frozen): gradients still flow through the decoder into the encoder."""
    cfg = CONFIGS["paper-shaped"]
    torch.manual_seed(0)
    model = LmserPix2Seq(cfg).train()
    model.decoder.requires_grad_(False)
    corrupted, clean, strokes, lengths = make_batch(cfg)
    batch = {"corrupted": corrupted, "clean": clean, "strokes": strokes, "length": lengths}
    out = model(corrupted, strokes, lengths, sample_z=False)
    model.compute_losses(out, batch, image_loss_weight=IMAGE_W, pen_loss_weight=PEN_W, kl_weight=0.0,
                         kl_min=0.2)["loss"].backward()
    ref = {k: v.detach().clone().requires_grad_(k.startswith("encoder.")) for k, v in model.named_parameters()}
    mu, _, recon = ref_encoder(ref, corrupted, cfg)
    inputs = torch.cat([torch.tensor([[[0.0, 0.0, 1.0, 0.0, 0.0]]]).expand(len(mu), 1, 5), strokes[:, :-1]], 1)
    ref_losses(ref_decoder(ref, inputs, mu), strokes, lengths, recon, clean, cfg.num_mixtures)["loss"].backward()
    for k, p in model.named_parameters():
        if k.startswith("decoder.") or ref[k].grad is None:  # frozen, or unused with z = mu (fc_logvar)
            assert p.grad is None
        else:
            scale = ref[k].grad.abs().max().item()
            torch.testing.assert_close(p.grad, ref[k].grad, rtol=1e-4, atol=1e-4 * scale + 1e-7)


def test_tokens_first_block_is_the_batch_first_block():
    """``GMLPBlock(tokens_first=True)`` on (n, B, d) computes what the batch-first block computes on (B, n, d)."""
    from sketchheal.model.gmlp import GMLPBlock

    torch.manual_seed(0)
    a = GMLPBlock(d_model=8, d_ffn=16, seq_len=5)
    b = GMLPBlock(d_model=8, d_ffn=16, seq_len=5, tokens_first=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(b(x.transpose(0, 1).contiguous()).transpose(0, 1), a(x), rtol=1e-6, atol=1e-6)
