"""The CPU fast paths of MPRNet's blocks (:mod:`mprnet.model`), each exact up to float32 rounding.

The golden outputs and the gradients of all parameters still match the official model
(``tests/test_model.py``); ``benchmarks/model_step.py --official`` times the result against it.

* :class:`SharedPReLU`: the PReLU every CAB shares (one slope), applied in place to the fresh conv
  output, with a backward that needs only the output (one activation less per CAB) and runs ~4x
  faster than torch's own on a CPU;
* :func:`scale_add`: channel attention and the CAB residual, ``x + res * w``, as one autograd
  function whose backward writes the gradient of ``res`` in one pass; in place without autograd;
* :func:`conv_prelu`: without autograd on a CPU, the CAB's first conv and its PReLU as one
  oneDNN kernel (the slope fused into the conv).

Elsewhere (CUDA, other dtypes, autograd where a path needs none) the plain PyTorch ops run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# oneDNN conv with an elementwise op fused in (torch's op for inductor's CPU fusions, no autograd);
# None where this torch lacks it: the CABs then take the plain path
_FUSED_CONV = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None) \
    if torch.backends.mkldnn.is_available() else None


def _flat(t: Tensor) -> Tensor | None:
    """``t`` as a 1-D view in memory order (contiguous or channels-last), else None."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)
    return None


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """sum(a * b) over all elements, accumulated in float32 (one pass where the layouts allow)."""
    fa, fb = _flat(a), _flat(b)
    if a.dtype == b.dtype == torch.float32 and fa is not None and fb is not None and a.stride() == b.stride():
        return torch.dot(fa, fb)
    return (a * b).sum(dtype=torch.float32)


class _SharedSlopeReLU(torch.autograd.Function):
    """PReLU with one slope ``a > 0``, applied in place to ``x`` (CPU). ``x > 0`` exactly where the
    output is, so the output alone serves the backward: dx = g where y > 0, else a g, and
    da = sum(g x) over x <= 0 = sum(g min(y, 0)) / a. The input is not kept (conv2 keeps the
    output anyway), which saves one activation per CAB, and the backward runs ~4x faster than
    torch's own PReLU backward on CPU, whose one-slope weight gradient is slow."""

    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, slope: float) -> Tensor:
        F.leaky_relu_(x, slope)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, a)
        ctx.slope = slope
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        y, a = ctx.saved_tensors
        gx = torch.ops.aten.leaky_relu_backward(g, y, ctx.slope, True) if ctx.needs_input_grad[0] else None
        ga = (_dot(g, y.clamp(max=0)) / ctx.slope).reshape(a.shape).to(a.dtype) if ctx.needs_input_grad[1] else None
        return gx, ga, None


class SharedPReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter, same values) that overwrites its input: only for inputs
    nothing else reads, as in the CABs, where it acts on a fresh conv output. On CPU with one
    positive slope it runs in place (no_grad: ``leaky_relu_``; with autograd:
    ``_SharedSlopeReLU``); otherwise it is ``F.prelu``."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or self.weight.numel() != 1:
            return F.prelu(x, self.weight)
        slope = self.weight.detach().item()  # a CPU scalar: no device sync
        if not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)):
            return F.leaky_relu_(x, slope)
        if slope <= 0:  # the sign of the output no longer tells the sign of the input
            return F.prelu(x, self.weight)
        return _SharedSlopeReLU.apply(x, self.weight, slope)


class _ScaleAdd(torch.autograd.Function):
    """``x + res * w`` with ``w = sigmoid(W2 relu(W1 mean_hw(res) + b1) + b2)`` (B x C), i.e. the
    channel attention and the CAB residual in one function, whose backward writes the gradient
    of ``res`` in one pass (the attention-weight part and the mean's part together) instead of
    three (autograd's product, mean expansion and their sum). ``w1`` (C/r x C) and ``w2`` (C x C/r)
    are the 1x1 conv weights flattened, ``b1``/``b2`` their biases or None. The MLP runs in float32
    whatever the autocast dtype of ``res``; the output has the dtype of ``res``."""

    @staticmethod
    def forward(ctx, res, x, w1, b1, w2, b2):
        with torch.autocast(res.device.type, enabled=False):  # the tiny MLP in float32 throughout
            m = res.mean((2, 3), dtype=torch.float32)
            z1 = F.linear(m, w1.float(), None if b1 is None else b1.float())
            h = F.relu(z1)
            w = torch.sigmoid(F.linear(h, w2.float(), None if b2 is None else b2.float()))
        ctx.save_for_backward(res, m, z1, h, w, w1, w2)
        ctx.has_bias = (b1 is not None, b2 is not None)
        ctx.x_dtype = x.dtype
        return torch.addcmul(x.to(res.dtype), res, w[:, :, None, None].to(res.dtype))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        res, m, z1, h, w, w1, w2 = ctx.saved_tensors
        gw = (g * res).sum((2, 3), dtype=torch.float32)
        dz2 = gw * w * (1 - w)
        dz1 = (dz2 @ w2.float()) * (z1 > 0)
        dm = (dz1 @ w1.float()) / (res.shape[2] * res.shape[3])
        gres = torch.addcmul(dm[:, :, None, None].to(res.dtype), g.to(res.dtype), w[:, :, None, None].to(res.dtype))
        b1, b2 = ctx.has_bias
        return (gres, g.to(ctx.x_dtype), (dz1.t() @ m).to(w1.dtype), dz1.sum(0) if b1 else None,
                (dz2.t() @ h).to(w2.dtype), dz2.sum(0) if b2 else None)


def scale_add(res: Tensor, x: Tensor, squeeze: nn.Conv2d, excite: nn.Conv2d, weights) -> Tensor:
    """``x + res * weights(res)`` of a channel-attention layer whose 1x1 convs are ``squeeze`` and
    ``excite`` (``weights(res)``: its B x C attention weights). ``res`` must be a fresh tensor nothing
    else reads: without autograd it is overwritten with the result; with autograd :class:`_ScaleAdd`
    computes it in one function."""
    if not (torch.is_grad_enabled() and (res.requires_grad or x.requires_grad)):
        return torch.addcmul(x, res, weights(res)[:, :, None, None], out=res)  # no graph: in place
    return _ScaleAdd.apply(res, x, squeeze.weight.flatten(1), squeeze.bias, excite.weight.flatten(1), excite.bias)


def conv_prelu(conv: nn.Conv2d, act: nn.Module, x: Tensor) -> Tensor | None:
    """``act(conv(x))`` as one oneDNN kernel (exactly max(y, 0) + a min(y, 0)), where that applies:
    a float32 CPU input, no autograd, ``act`` a :class:`SharedPReLU` with one slope and a torch with
    the fused op. None elsewhere: the caller runs the two modules."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and isinstance(act, SharedPReLU)
            and act.weight.numel() == 1 and _FUSED_CONV is not None
            and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))):
        return _FUSED_CONV(x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups,
                           "leaky_relu", [act.weight.item()], "")
    return None
