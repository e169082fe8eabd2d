"""MPRNet training losses (Zamir et al., CVPR 2021, Eq. 2-3).

* Charbonnier: mean of sqrt((x - y)^2 + eps^2), eps = 1e-3.
* Edge loss: Charbonnier between Laplacian residuals ``I - G(up(down(G(I))))``, where G is a
  5x5 Gaussian (outer product of [0.05, 0.25, 0.4, 0.25, 0.05]) applied depthwise after a
  replicate pad of 2, and down/up keeps the even rows/columns, scaled by 4, zeros elsewhere.
* Stage loss: the sum over every stage output of Charbonnier + edge_weight * edge loss
  (deblurring/deraining: 0.05); the denoising recipe uses Charbonnier on outputs clamped to [0, 1].

Values match the official ``losses.py`` (``tests/fixtures/golden_losses.npz``, rel. err <= 1e-6).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GAUSS_1D = (0.05, 0.25, 0.4, 0.25, 0.05)


class CharbonnierLoss(nn.Module):
    """Mean of sqrt((x - y)^2 + eps^2): a differentiable L1."""

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.sqrt((x - y) ** 2 + self.eps * self.eps).mean()


class EdgeLoss(nn.Module):
    """Charbonnier loss between the Laplacian residuals of x and y.

    The kernel is a buffer (follows ``.to(device)``) and is also cast to the input's device and
    dtype at call time, so the loss works wherever its inputs live. Works for any channel count
    (the official kernel is built for 3) and for odd sizes.
    """

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        k = torch.tensor(GAUSS_1D)
        self.register_buffer("kernel", torch.outer(k, k)[None, None], persistent=False)
        self.charbonnier = CharbonnierLoss(eps)

    def conv_gauss(self, img: Tensor) -> Tensor:
        c = img.shape[1]
        kernel = self.kernel.to(img.device, img.dtype).expand(c, 1, 5, 5)
        return F.conv2d(F.pad(img, (2, 2, 2, 2), mode="replicate"), kernel, groups=c)

    def laplacian(self, img: Tensor) -> Tensor:
        filtered = self.conv_gauss(img)
        upsampled = torch.zeros_like(filtered)
        upsampled[..., ::2, ::2] = filtered[..., ::2, ::2] * 4  # decimate, zero-insert upsample
        return img - self.conv_gauss(upsampled)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.charbonnier(self.laplacian(x), self.laplacian(y))


class StageLoss(nn.Module):
    """Sum over stage outputs of Charbonnier(out, target) + edge_weight * Edge(out, target).

    ``StageLoss()`` is the deblurring/deraining recipe (edge weight 0.05, no clamping);
    ``StageLoss(edge_weight=0.0, clamp_outputs=True)`` is the denoising recipe (outputs clamped
    to [0, 1] before the Charbonnier term, no edge loss).
    """

    def __init__(self, edge_weight: float = 0.05, clamp_outputs: bool = False, eps: float = 1e-3):
        super().__init__()
        self.edge_weight = edge_weight
        self.clamp_outputs = clamp_outputs
        self.charbonnier = CharbonnierLoss(eps)
        self.edge = EdgeLoss(eps)

    def forward(self, outputs: Sequence[Tensor], target: Tensor) -> Tensor:
        if isinstance(outputs, Tensor):
            outputs = [outputs]
        if len(outputs) == 0:
            raise ValueError("StageLoss needs at least one stage output")
        if self.clamp_outputs:
            outputs = [out.clamp(0, 1) for out in outputs]
        loss = sum(self.charbonnier(out, target) for out in outputs)
        if self.edge_weight:
            loss = loss + self.edge_weight * sum(self.edge(out, target) for out in outputs)
        return loss
