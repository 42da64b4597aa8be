"""The decoder LSTM's recurrence with its backward written out: what ``nn.LSTM`` computes, faster for training on CPUs.

One layer, torch's gate order ``i, f, g, o`` (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.),
with an input ``x_t`` and a per-sequence row ``r`` added to every step's gates:

    a_t = W_x x_t + W_hh h_{t-1} + r                 one product per step: [x_t ; h_{t-1}] @ [W_x | W_hh]^T
    i, f, o = sigmoid(a_t[i, f, o]);  g = tanh(a_t[g])
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)

``nn.LSTM`` with input ``[x_t ; z]`` is the case ``r = W_z z + b_ih + b_hh``: the decoder's ``z`` is the same at
every step, so its part of the input projection is computed once per sketch instead of once per step
(``sketchheal.model.decoder``; the sampler does the same).

Backward through time (the same chain rule ``nn.LSTM`` applies; Graves 2012, ch. 4.6): with ``dh_t`` the gradient
reaching ``h_t`` (from the output and from step t+1) and ``dc_t`` the one reaching ``c_t``:

    dc_t += dh_t * o * (1 - tanh(c_t)^2)
    da[o] = dh_t * tanh(c_t) * o (1 - o)     da[i] = dc_t * g * i (1 - i)
    da[f] = dc_t * c_{t-1} * f (1 - f)       da[g] = dc_t * i * (1 - g^2)
    dc_{t-1} = dc_t * f;  dh_{t-1} = da_t W_hh;  dr += da_t
    [dW_x | dW_hh] = sum_t da_t^T [x_t ; h_{t-1}]     one product over all steps, after the loop

The weight gradients as one large product, and no input-gradient product unless the input needs one, is where
this gains on ``nn.LSTM``'s fused CPU kernel. The products take the fp32 kernel the process chose
(``sketchheal.model.matmul``: torch's or oneDNN's). Pure tensor code: no I/O.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from sketchheal.model import matmul

_aten = torch.ops.aten


class LSTMRecurrence(torch.autograd.Function):
    """``x (T, B, K), rows (B, 4H), w_x (4H, K), h0, c0 (B, H), w_hh (4H, H)`` -> ``out (T, B, H)`` (every ``h_t``),
    ``h_T``, ``c_T``. ``low``: None (every product in the inputs' dtype) or ``torch.bfloat16`` (the products in
    bf16, summed in fp32 by the kernel; gates, states and outputs fp32)."""

    @staticmethod
    def forward(ctx, x, rows, w_x, h0, c0, w_hh, low):
        steps, batch, k = x.shape
        hid = w_hh.shape[1]
        dtype = torch.float32 if low is not None else x.dtype  # gates and states
        prod = low or dtype  # the products' operands
        ctx.dtypes = (x.dtype, rows.dtype, w_x.dtype, h0.dtype, c0.dtype, w_hh.dtype)
        ctx.low = low
        rows = rows.to(dtype)
        xh = x.new_empty(steps, batch, k + hid, dtype=prod)  # [x_t ; h_{t-1}], the product's input at every step
        xh[:, :, :k] = x
        if steps:
            xh[0, :, k:] = h0
        w_t = torch.cat([w_x, w_hh], dim=1).to(prod).t()  # (K + H, 4H)
        acts = x.new_empty(steps, batch, 4 * hid, dtype=dtype)  # the gates after their nonlinearities
        cells = x.new_empty(steps, batch, hid, dtype=dtype)  # c_t
        tanh_c = torch.empty_like(cells)  # tanh(c_t)
        out = torch.empty_like(cells)  # h_t
        c = c0.to(dtype)
        fused = low is None and not matmul.onednn_enabled()  # torch's addmm adds the rows in the product
        for t in range(steps):
            a = acts[t]  # (B, 4H)
            if fused:
                torch.addmm(rows, xh[t], w_t, out=a)
            else:
                torch.add(matmul.product(xh[t], w_t), rows, out=a)
            ifo, g, o = a[:, :2 * hid], a[:, 2 * hid:3 * hid], a[:, 3 * hid:]
            torch.sigmoid(ifo, out=ifo)
            torch.tanh(g, out=g)
            torch.sigmoid(o, out=o)
            torch.mul(a[:, hid:2 * hid], c, out=cells[t])  # f * c_{t-1}
            cells[t].addcmul_(a[:, :hid], g)  # + i * g
            torch.tanh(cells[t], out=tanh_c[t])
            torch.mul(o, tanh_c[t], out=out[t])
            if t + 1 < steps:
                xh[t + 1, :, k:] = out[t]
            c = cells[t]
        c0 = c0.to(dtype)
        ctx.save_for_backward(xh, acts, cells, tanh_c, c0, w_x, w_hh)
        h_last = out[-1] if steps else h0.to(dtype)
        return out, h_last.clone(), c.clone()

    @staticmethod
    @once_differentiable  # its backward is written with in-place ops: no second derivatives
    def backward(ctx, d_out, d_hT, d_cT):
        xh, acts, cells, tanh_c, c0, w_x, w_hh = ctx.saved_tensors
        steps, batch, hid = cells.shape
        k = xh.shape[2] - hid
        low = ctx.low
        d_acts = torch.empty_like(acts)  # (T, B, 4H): the gradient of every step's gate pre-activations
        dh = d_hT.to(acts.dtype, copy=True) if d_hT is not None else c0.new_zeros(batch, hid)
        dc = d_cT.to(acts.dtype, copy=True) if d_cT is not None else c0.new_zeros(batch, hid)
        d_rows = acts.new_zeros(batch, 4 * hid)
        tmp = torch.empty_like(dh)
        # (4H, H) with W_hh^T contiguous underneath: oneDNN reads the second operand's transpose as its weight and
        # reorders any other layout on every call
        w_back = w_hh.t().contiguous().t() if matmul.onednn_enabled() and low is None else w_hh.to(low or w_hh.dtype)
        for t in range(steps - 1, -1, -1):
            a, tc, da = acts[t], tanh_c[t], d_acts[t]
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
            d_rows.add_(da)
            if low is None:
                dh = matmul.product(da, w_back)  # (B, 4H) @ (4H, H)
            else:
                dh = torch.mm(da.to(low), w_back).float()
        d_x = d_w_x = d_w_hh = None
        flat = d_acts.view(-1, 4 * hid)  # (T B, 4H)
        if low is not None:
            flat = flat.to(low)
        if ctx.needs_input_grad[0]:
            d_x = matmul.product(flat, w_x.to(flat.dtype)).view(steps, batch, k)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[5]:
            d_w = matmul.product(flat.t(), xh.view(-1, k + hid))  # (4H, T B) @ (T B, K + H)
            d_w_x, d_w_hh = d_w[:, :k], d_w[:, k:]
        grads = [d_x, d_rows if ctx.needs_input_grad[1] else None, d_w_x, dh, dc, d_w_hh]
        return (*(None if g is None else g.to(dt) for g, dt in zip(grads, ctx.dtypes)), None)


def lstm_recurrence(x: torch.Tensor, rows: torch.Tensor, w_x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
                    w_hh: torch.Tensor, *, low: torch.dtype | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recurrence over ``x (T, B, K)`` with ``rows (B, 4H)`` added to every step's gates, from
    ``h0, c0 (B, H)``: returns ``out (T, B, H)``, ``h_T``, ``c_T`` (``(B, H)`` each).

    All tensors on one device (the decoder calls it on CPUs). ``low=None``: every product in the inputs' dtype
    (fp32 for the decoder); ``low=torch.bfloat16``: the products in bf16 with fp32 gates, states and outputs (the
    decoder under bf16 autocast on a CPU with native bf16). Runs outside autocast.
    """
    four_h, hid = w_hh.shape
    if (x.dim() != 3 or four_h != 4 * hid or tuple(w_x.shape) != (four_h, x.shape[2])
            or tuple(rows.shape) != (x.shape[1], four_h)):
        raise ValueError(f"expected x (T, B, K), rows (B, 4H), w_x (4H, K), w_hh (4H, H); got x {tuple(x.shape)}, "
                         f"rows {tuple(rows.shape)}, w_x {tuple(w_x.shape)}, w_hh {tuple(w_hh.shape)}")
    with torch.autocast(x.device.type, enabled=False):
        return LSTMRecurrence.apply(x, rows.contiguous(), w_x, h0.contiguous(), c0.contiguous(), w_hh, low)
