"""The decoder LSTM's recurrence with its backward written out: what ``nn.LSTM`` computes, faster for training on CPUs.

One layer, torch's gate order ``i, f, g, o`` (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.):

    a_t = pre_t + W_hh h_{t-1}                     pre_t = W_ih x_t + b_ih + b_hh, given for every step
    i, f, o = sigmoid(a_t[i, f, o]);  g = tanh(a_t[g])
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)

``pre`` is an input, so the caller computes the input projection as it likes: the decoder's input is
``[s_{t-1}; z]`` with ``z`` the same at every step, so ``W_ih x_t = W_s s_{t-1} + W_z z`` and ``W_z z`` is computed
once per sketch instead of once per step (``sketchheal.model.decoder``; the sampler does the same).

Backward through time (the same chain rule ``nn.LSTM`` applies; Graves 2012, ch. 4.6): with ``dh_t`` the gradient
reaching ``h_t`` (from the output and from step t+1) and ``dc_t`` the one reaching ``c_t``:

    dc_t += dh_t * o * (1 - tanh(c_t)^2)
    da[o] = dh_t * tanh(c_t) * o (1 - o)     da[i] = dc_t * g * i (1 - i)
    da[f] = dc_t * c_{t-1} * f (1 - f)       da[g] = dc_t * i * (1 - g^2)
    dc_{t-1} = dc_t * f;  dh_{t-1} = da_t W_hh   (the only product per step)
    dW_hh = sum_t da_t^T h_{t-1}                 (one product over all steps, after the loop)

The weight gradient as one large product, and no input-gradient product at all (the caller's projection has its
own, small, backward), is where this gains on ``nn.LSTM``'s fused CPU kernel. Pure tensor code: no I/O.
"""

from __future__ import annotations

import torch

_aten = torch.ops.aten


class LSTMRecurrence(torch.autograd.Function):
    """``pre (T, B, 4H), h0 (B, H), c0 (B, H), w_hh (4H, H)`` -> ``out (T, B, H)`` (every ``h_t``), ``h_T``, ``c_T``."""

    @staticmethod
    def forward(ctx, pre, h0, c0, w_hh):
        steps, batch, four_h = pre.shape
        hid = four_h // 4
        acts = torch.empty_like(pre)  # (T, B, 4H): the gates after their nonlinearities
        cells = pre.new_empty(steps, batch, hid)  # c_t
        tanh_c = torch.empty_like(cells)  # tanh(c_t)
        out = torch.empty_like(cells)  # h_t
        w_t = w_hh.t()  # (H, 4H)
        h, c = h0, c0
        for t in range(steps):
            a = acts[t]  # (B, 4H)
            torch.addmm(pre[t], h, w_t, out=a)
            ifo, g, o = a[:, :2 * hid], a[:, 2 * hid:3 * hid], a[:, 3 * hid:]
            torch.sigmoid(ifo, out=ifo)
            torch.tanh(g, out=g)
            torch.sigmoid(o, out=o)
            torch.mul(a[:, hid:2 * hid], c, out=cells[t])  # f * c_{t-1}
            cells[t].addcmul_(a[:, :hid], g)  # + i * g
            torch.tanh(cells[t], out=tanh_c[t])
            torch.mul(o, tanh_c[t], out=out[t])
            h, c = out[t], cells[t]
        ctx.save_for_backward(acts, cells, tanh_c, out, h0, c0, w_hh)
        return out, h.clone(), c.clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        acts, cells, tanh_c, out, h0, c0, w_hh = ctx.saved_tensors
        steps, batch, hid = cells.shape
        d_pre = torch.empty_like(acts)  # (T, B, 4H): the gradient of every step's gate pre-activations
        dh = d_hT.clone() if d_hT is not None else torch.zeros_like(h0)
        dc = d_cT.clone() if d_cT is not None else torch.zeros_like(c0)
        tmp = torch.empty_like(dh)
        for t in range(steps - 1, -1, -1):
            a, tc, da = acts[t], tanh_c[t], d_pre[t]
            i, f, g, o = a[:, :hid], a[:, hid:2 * hid], a[:, 2 * hid:3 * hid], a[:, 3 * hid:]
            if d_out is not None:
                dh.add_(d_out[t])
            torch.mul(dh, tc, out=tmp)
            _aten.sigmoid_backward.grad_input(tmp, o, grad_input=da[:, 3 * hid:])
            torch.mul(dh, o, out=tmp)
            dc.add_(_aten.tanh_backward(tmp, tc))
            torch.mul(dc, g, out=tmp)
            _aten.sigmoid_backward.grad_input(tmp, i, grad_input=da[:, :hid])
            torch.mul(dc, cells[t - 1] if t else c0, out=tmp)
            _aten.sigmoid_backward.grad_input(tmp, f, grad_input=da[:, hid:2 * hid])
            torch.mul(dc, i, out=tmp)
            _aten.tanh_backward.grad_input(tmp, g, grad_input=da[:, 2 * hid:3 * hid])
            dc.mul_(f)
            dh = torch.mm(da, w_hh)  # (B, 4H) @ (4H, H)
        d_w = None
        if ctx.needs_input_grad[3] and steps == 0:
            d_w = torch.zeros_like(w_hh)
        elif ctx.needs_input_grad[3]:
            # sum_t da_t^T h_{t-1}: (4H, (T-1) B) @ ((T-1) B, H) for t >= 1, plus step 0's with h0
            d_w = torch.mm(d_pre[0].t(), h0)
            if steps > 1:
                d_w.addmm_(d_pre[1:].reshape(-1, 4 * hid).t(), out[:-1].reshape(-1, hid))
        return d_pre, dh, dc, d_w


def lstm_recurrence(pre: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
                    w_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recurrence over ``pre (T, B, 4H)`` from ``h0, c0 (B, H)``: returns ``out (T, B, H)``, ``h_T``, ``c_T``.

    All tensors of one floating dtype on one device (the decoder calls it for fp32 on CPUs, outside autocast).
    """
    if pre.dim() != 3 or pre.shape[2] != 4 * w_hh.shape[1] or w_hh.shape[0] != pre.shape[2]:
        raise ValueError(f"pre must be (T, B, 4H) for w_hh (4H, H), got {tuple(pre.shape)} and {tuple(w_hh.shape)}")
    return LSTMRecurrence.apply(pre.contiguous(), h0.contiguous(), c0.contiguous(), w_hh)
