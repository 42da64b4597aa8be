"""The written-out LSTM recurrence computes what nn.LSTM computes, forward and backward, and the decoder uses it."""

import pytest
import torch
from torch import nn

from sketchheal.config import ModelConfig
from sketchheal.model import matmul
from sketchheal.model.decoder import StrokeDecoder
from sketchheal.model.lstm import lstm_recurrence
from sketchheal.utils.devices import cpu_bf16_supported


@pytest.fixture(params=["torch", "onednn"])
def kernel(request):
    """Both fp32 product kernels of sketchheal.model.matmul (oneDNN where this build has it)."""
    if request.param == "onednn" and not matmul.onednn_available():
        pytest.skip("this PyTorch build has no oneDNN linear kernel")
    was = matmul.onednn_enabled()
    matmul.use_onednn(request.param == "onednn")
    yield request.param
    matmul.use_onednn(was)


def _grads(tensors):
    return [t.grad.clone() for t in tensors]


def _close(a, b, rel=1e-5):
    scale = max(a.abs().max().item(), 1e-12)
    return (a - b).abs().max().item() <= rel * scale


@pytest.mark.parametrize("steps", [1, 2, 17])
def test_recurrence_matches_nn_lstm_forward_and_backward(steps, kernel):
    torch.manual_seed(steps)
    b, k, hid = 3, 6, 8
    lstm = nn.LSTM(k, hid, batch_first=False)
    with torch.no_grad():
        for p in lstm.parameters():
            p.mul_(3)  # saturate some gates too
    x = torch.randn(steps, b, k, requires_grad=True)
    h0 = torch.randn(b, hid, requires_grad=True)
    c0 = torch.randn(b, hid, requires_grad=True)
    w_out, w_h, w_c = torch.randn(steps, b, hid), torch.randn(b, hid), torch.randn(b, hid)
    leaves = [x, h0, c0, *lstm.parameters()]

    out, (h, c) = lstm(x, (h0[None], c0[None]))
    ((out * w_out).sum() + (h[0] * w_h).sum() + (c[0] * w_c).sum()).backward()
    ref = [out.detach(), h[0].detach(), c[0].detach()], _grads(leaves)
    for t in leaves:
        t.grad = None

    rows = (lstm.bias_ih_l0 + lstm.bias_hh_l0).expand(b, 4 * hid)  # (B, 4H): the same row for every sequence
    out2, h2, c2 = lstm_recurrence(x, rows, lstm.weight_ih_l0, h0, c0, lstm.weight_hh_l0)
    ((out2 * w_out).sum() + (h2 * w_h).sum() + (c2 * w_c).sum()).backward()
    mine = [out2.detach(), h2.detach(), c2.detach()], _grads(leaves)

    for a, m in zip(ref[0], mine[0]):
        assert _close(a, m)
    names = ["x", "h0", "c0"] + [n for n, _ in lstm.named_parameters()]
    for name, a, m in zip(names, ref[1], mine[1]):
        assert _close(a, m), name


def test_per_sequence_rows_are_a_constant_input():
    """rows = W_z z + b is nn.LSTM with z appended to every step's input (how the decoder uses it)."""
    torch.manual_seed(2)
    b, steps, k, nz, hid = 3, 9, 5, 4, 6
    lstm = nn.LSTM(k + nz, hid)
    x, z = torch.randn(steps, b, k), torch.randn(b, nz, requires_grad=True)
    h0 = c0 = torch.zeros(b, hid)
    out, _ = lstm(torch.cat([x, z.expand(steps, b, nz)], dim=-1), (h0[None], c0[None]))
    out.square().sum().backward()
    ref = [z.grad.clone(), *(p.grad.clone() for p in lstm.parameters())]
    for t in [z, *lstm.parameters()]:
        t.grad = None
    w_ih = lstm.weight_ih_l0
    rows = z @ w_ih[:, k:].t() + lstm.bias_ih_l0 + lstm.bias_hh_l0
    out2, _, _ = lstm_recurrence(x, rows, w_ih[:, :k], h0, c0, lstm.weight_hh_l0)
    assert _close(out.detach(), out2.detach())
    out2.square().sum().backward()
    for a, m in zip(ref, [z.grad, *(p.grad for p in lstm.parameters())]):
        assert _close(a, m)


def test_recurrence_without_weight_gradient_and_with_input_gradient():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 5)
    for p in lstm.parameters():
        p.requires_grad_(False)
    x = torch.randn(6, 2, 4, requires_grad=True)
    rows = (lstm.bias_ih_l0 + lstm.bias_hh_l0).expand(2, 20)
    out, _, _ = lstm_recurrence(x, rows, lstm.weight_ih_l0, torch.zeros(2, 5), torch.zeros(2, 5), lstm.weight_hh_l0)
    out.sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    ref, _ = lstm(x2, (torch.zeros(1, 2, 5), torch.zeros(1, 2, 5)))
    ref.sum().backward()
    assert _close(x2.grad, x.grad)
    assert lstm.weight_hh_l0.grad is None


def test_recurrence_of_no_steps_is_the_initial_state():
    w = torch.randn(20, 5, requires_grad=True)
    h0, c0 = torch.randn(2, 5, requires_grad=True), torch.randn(2, 5, requires_grad=True)
    out, h, c = lstm_recurrence(torch.zeros(0, 2, 3), torch.zeros(2, 20), torch.zeros(20, 3), h0, c0, w)
    assert out.shape == (0, 2, 5) and torch.equal(h, h0) and torch.equal(c, c0)
    (h.sum() + c.sum()).backward()
    assert torch.equal(h0.grad, torch.ones(2, 5)) and torch.equal(w.grad, torch.zeros(20, 5))


def test_recurrence_checks_shapes():
    with pytest.raises(ValueError, match=r"expected x \(T, B, K\)"):
        lstm_recurrence(torch.zeros(3, 2, 4), torch.zeros(2, 20), torch.zeros(20, 3), torch.zeros(2, 5),
                        torch.zeros(2, 5), torch.zeros(20, 5))


def test_decoder_training_path_equals_nn_lstm_path():
    """The decoder's fp32 CPU training path (z projected once per sketch) gives nn.LSTM's params and gradients."""
    torch.manual_seed(1)
    cfg = ModelConfig(z_size=7, dec_hidden=16, num_mixtures=3)
    dec = StrokeDecoder(cfg)
    inputs = torch.randn(4, 11, 5)
    z = torch.randn(4, 7, requires_grad=True)
    leaves = [z, *dec.parameters()]
    results = []
    for fused in (False, True):
        dec.cpu_recurrence = fused
        for t in leaves:
            t.grad = None
        assert dec._recurrence_here(inputs, z) is fused
        params, (h, c) = dec(inputs, z)
        assert params.shape == (4, 11, 6 * 3 + 3) and h.shape == c.shape == (1, 4, 16)
        (params.square().sum() + h.sum()).backward()
        results.append((params.detach(), _grads(leaves)))
    assert _close(results[0][0], results[1][0])
    for a, m in zip(results[0][1], results[1][1]):
        assert _close(a, m, rel=1e-5)


def test_decoder_keeps_nn_lstm_without_gradients():
    dec = StrokeDecoder(ModelConfig(z_size=7, dec_hidden=16, num_mixtures=3))
    inputs, z = torch.randn(2, 3, 5), torch.randn(2, 7)
    with torch.no_grad():
        assert not dec._recurrence_here(inputs, z)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the recurrence only where bf16 is native
        assert dec._recurrence_here(inputs, z) is cpu_bf16_supported()


def test_decoder_keeps_nn_lstm_with_onednn_products(kernel):
    dec = StrokeDecoder(ModelConfig(z_size=7, dec_hidden=16, num_mixtures=3))
    assert dec._recurrence_here(torch.randn(2, 3, 5), torch.randn(2, 7, requires_grad=True)) is (kernel == "torch")


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bfloat16")
def test_decoder_under_bf16_autocast_runs_the_recurrence_with_bf16_products():
    """With native bf16 the recurrence's products run in bf16 (states fp32): within bf16 rounding of fp32 nn.LSTM."""
    torch.manual_seed(3)
    dec = StrokeDecoder(ModelConfig(z_size=16, dec_hidden=32, num_mixtures=3))
    inputs, z = torch.randn(4, 13, 5), torch.randn(4, 16, requires_grad=True)
    dec.cpu_recurrence = False
    ref, _ = dec(inputs, z)
    ref.square().sum().backward()
    ref_grads = [z.grad.clone(), *(p.grad.clone() for p in dec.parameters())]
    dec.cpu_recurrence = True
    z.grad = None
    dec.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dec._recurrence_here(inputs, z)
        params, _ = dec(inputs, z)
    assert params.dtype == torch.bfloat16
    params.float().square().sum().backward()
    assert _close(ref.detach(), params.float().detach(), rel=3e-2)
    for a, m in zip(ref_grads, [z.grad, *(p.grad for p in dec.parameters())]):
        assert m.dtype == torch.float32 and _close(a, m, rel=6e-2)
