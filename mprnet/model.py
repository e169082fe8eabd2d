"""MPRNet: Multi-Stage Progressive Image Restoration.

Zamir, Arora, Khan, Hayat, Khan, Yang, Shao, "Multi-Stage Progressive Image Restoration",
CVPR 2021 (arXiv 2102.02808). Module names, registration order and bias placement follow the
authors' release (github.com/swz30/MPRNet @ 43feb2a), so its checkpoints load with
``load_state_dict(strict=True)``; ``tests/fixtures/state_dict_*.json`` pins every key and shape
and ``tests/fixtures/golden_*.npz`` pins the outputs (max abs error <= 1e-5).

Patches of an image are carried as one batch (``_split``/``_merge``): the four stage-1 patches
and the two stage-2 halves each go through their sub-network in a single call instead of one
call per patch, which gives the same numbers with fewer, larger kernels. The input is
made channels-last (NHWC), as are the conv weights, which spares oneDNN a layout reorder before
and after every conv (~12% less CPU time at the deraining widths, measured on CPU); the input
follows the weights' layout, so ``model.to(memory_format=torch.contiguous_format)`` runs NCHW.
Values and state-dict keys/shapes are unaffected.

The ORSNet's cross-stage 1x1 projections run before the upsampling (``ORSNet``), which is the
same arithmetic on fewer pixels. The CPU fast paths of the blocks (the shared PReLU in place,
channel attention and the residual as one autograd function, the first conv of a CAB fused with
its PReLU) are :mod:`mprnet.model_cpu`'s, each exact up to float32 rounding (golden outputs and
gradients still match); ``benchmarks/model_step.py --official`` times the result against the
official model in one process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model_cpu import SharedPReLU, conv_prelu, scale_add
from .presets import PRESETS, network_kwargs  # the paper's widths, kept free of torch for the workflow

PAD_MULTIPLE = 8  # two x0.5 downsamplings of a half-height, half-width stage-1 patch


def conv(in_c: int, out_c: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_c, out_c, kernel_size, padding=kernel_size // 2, bias=bias)


class CALayer(nn.Module):
    """Channel attention: global average pool, 1x1 squeeze (c -> c/r), ReLU, 1x1 excite, sigmoid."""

    def __init__(self, c: int, reduction: int, bias: bool):
        super().__init__()
        self.conv_du = nn.Sequential(
            conv(c, c // reduction, 1, bias), nn.ReLU(inplace=True),
            conv(c // reduction, c, 1, bias), nn.Sigmoid(),
        )

    def weights(self, x: Tensor) -> Tensor:
        """The B x C attention weights of ``x``. The 1x1 convs act on a 1x1 map: as matrix
        products they skip the convolution machinery."""
        squeeze, excite = self.conv_du[0], self.conv_du[2]
        w = F.relu(F.linear(x.mean((2, 3)), squeeze.weight.flatten(1), squeeze.bias))
        return torch.sigmoid(F.linear(w, excite.weight.flatten(1), excite.bias))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weights(x)[:, :, None, None]

    def scale_add(self, res: Tensor, x: Tensor) -> Tensor:
        """``x + self(res)``; ``res`` must be a fresh tensor nothing else reads (it may be
        overwritten; :func:`mprnet.model_cpu.scale_add`)."""
        return scale_add(res, x, self.conv_du[0], self.conv_du[2], self.weights)


class CAB(nn.Module):
    """Channel attention block: conv, act, conv, channel attention, residual."""

    def __init__(self, c: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module):
        super().__init__()
        self.CA = CALayer(c, reduction, bias)  # registered first: the official key order
        self.body = nn.Sequential(conv(c, c, kernel_size, bias), act, conv(c, c, kernel_size, bias))

    def forward(self, x: Tensor) -> Tensor:
        conv1, act, conv2 = self.body
        h = conv_prelu(conv1, act, x)  # the CPU's fused kernel where it applies (model_cpu.py)
        return self.CA.scale_add(self.body(x) if h is None else conv2(h), x)


def cabs(n: int, c: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> list[CAB]:
    return [CAB(c, kernel_size, reduction, bias, act) for _ in range(n)]


class DownSample(nn.Module):
    """x0.5 then 1x1 conv c -> c+s (never a bias). Within the model every size is even, where
    bilinear x0.5 (align_corners=False) equals 2x2 average pooling exactly, so we pool."""

    def __init__(self, c: int, s: int):
        super().__init__()
        self.down = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c, c + s, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.down(x)


class UpSample(nn.Module):
    """Bilinear x2 and 1x1 conv c+s -> c (never a bias). Both are linear and act on different
    axes, so they commute: the conv runs first, at a quarter of the pixels and on fewer channels."""

    def __init__(self, c: int, s: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c + s, c, 1, bias=False),
        )

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.up[0](self.up[1](x))
        return x if skip is None else x.add_(skip)


SkipUpSample = UpSample  # the official SkipUpSample is UpSample plus a skip addition


class Encoder(nn.Module):
    """Three levels of two CABs (widths n, n+s, n+2s). With ``csff`` each level adds 1x1-conv
    projections of the previous stage's encoder and decoder features of that level
    (cross-stage feature fusion) before it is downsampled."""

    def __init__(self, n, kernel_size, reduction, act, bias, s, csff: bool):
        super().__init__()
        widths = [n, n + s, n + 2 * s]
        for i, c in enumerate(widths, 1):
            setattr(self, f"encoder_level{i}", nn.Sequential(*cabs(2, c, kernel_size, reduction, bias, act)))
        self.down12 = DownSample(n, s)
        self.down23 = DownSample(n + s, s)
        self.csff = csff
        if csff:
            for kind in ("enc", "dec"):
                for i, c in enumerate(widths, 1):
                    setattr(self, f"csff_{kind}{i}", conv(c, c, 1, bias))

    def forward(self, x: Tensor, prev_enc=None, prev_dec=None) -> list[Tensor]:
        outs = []
        for i, down in enumerate((self.down12, self.down23, None), 1):
            x = getattr(self, f"encoder_level{i}")(x)
            if self.csff:
                # in place: x is this level's fresh output, which nothing has saved yet
                x = x.add_(getattr(self, f"csff_enc{i}")(prev_enc[i - 1])).add_(
                    getattr(self, f"csff_dec{i}")(prev_dec[i - 1]))
            outs.append(x)
            if down is not None:
                x = down(x)
        return outs


class Decoder(nn.Module):
    """Mirror of the encoder; each skip connection passes through a CAB before it is added."""

    def __init__(self, n, kernel_size, reduction, act, bias, s):
        super().__init__()
        for i, c in enumerate([n, n + s, n + 2 * s], 1):
            setattr(self, f"decoder_level{i}", nn.Sequential(*cabs(2, c, kernel_size, reduction, bias, act)))
        self.skip_attn1 = CAB(n, kernel_size, reduction, bias, act)
        self.skip_attn2 = CAB(n + s, kernel_size, reduction, bias, act)
        self.up21 = SkipUpSample(n, s)
        self.up32 = SkipUpSample(n + s, s)

    def forward(self, enc: list[Tensor]) -> list[Tensor]:
        dec3 = self.decoder_level3(enc[2])
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc[1])))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc[0])))
        return [dec1, dec2, dec3]


class SAM(nn.Module):
    """Supervised attention module. ``img = conv2(x) + x_img`` is the stage's restored image; with
    ``attention`` the features leaving the stage are ``conv1(x) * sigmoid(conv3(img)) + x``,
    without it they leave unchanged and only the image head (conv2) exists."""

    def __init__(self, n: int, out_c: int, bias: bool, attention: bool = True):
        super().__init__()
        if attention:
            self.conv1 = conv(n, n, 1, bias)
        self.conv2 = conv(n, out_c, 1, bias)
        if attention:
            self.conv3 = conv(out_c, n, 1, bias)
        self.attention = attention

    def forward(self, x: Tensor, x_img: Tensor) -> tuple[Tensor, Tensor]:
        img = self.conv2(x) + x_img
        if not self.attention:
            return x, img
        gate = torch.sigmoid_(self.conv3(img))  # in place: the conv output is fresh; sigmoid's backward needs only its result
        feats = self.conv1(x)
        if torch.is_grad_enabled() and (feats.requires_grad or gate.requires_grad):
            return torch.addcmul(x, feats, gate), img
        return torch.addcmul(x, feats, gate, out=feats), img


class ORB(nn.Module):
    """Original-resolution block: num_cab CABs and a kxk conv (never a bias), residual."""

    def __init__(self, c, kernel_size, reduction, act, bias, num_cab):
        super().__init__()
        self.body = nn.Sequential(*cabs(num_cab, c, kernel_size, reduction, bias, act), conv(c, c, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).add_(x)


class ORSNet(nn.Module):
    """Original-resolution subnetwork (width n+o): three ORBs; with ``csff`` the previous stage's
    encoder/decoder features of level l are upsampled to full size, projected by 1x1 convs and
    added after ORB l.

    The sum ``conv_enc(up(e)) + conv_dec(up(d))`` of levels 2 and 3 is computed as
    ``up(conv'_enc(e) + conv'_dec(d))``: each projection is linear per pixel, so it commutes with
    the bilinear x2 (whose weights sum to 1, so a bias passes through unchanged), and it composes
    with the 1x1 conv that ends the upsampling path (``conv' = conv_enc o up.up[1]``, one matrix
    product of the two weights). Every 1x1 conv then runs below full resolution and one bilinear
    x2 serves both paths, instead of two upsamplings, four full-resolution 1x1 convs and four
    full-resolution additions; the parameters are those of the official modules."""

    def __init__(self, n, o, kernel_size, reduction, act, bias, s, num_cab, csff: bool):
        super().__init__()
        for i in (1, 2, 3):
            setattr(self, f"orb{i}", ORB(n + o, kernel_size, reduction, act, bias, num_cab))
        self.csff = csff
        if csff:
            self.up_enc1 = UpSample(n, s)
            self.up_dec1 = UpSample(n, s)
            self.up_enc2 = nn.Sequential(UpSample(n + s, s), UpSample(n, s))
            self.up_dec2 = nn.Sequential(UpSample(n + s, s), UpSample(n, s))
            for kind in ("enc", "dec"):
                for i in (1, 2, 3):
                    setattr(self, f"conv_{kind}{i}", conv(n, n + o, 1, bias))

    @staticmethod
    def _project_low(x: Tensor, up: nn.Module, proj: nn.Conv2d) -> Tensor:
        """``proj(up(x))`` before the last bilinear x2 of ``up`` (an UpSample or a chain of them)."""
        *first, last = up if isinstance(up, nn.Sequential) else [up]
        for module in first:
            x = module(x)
        weight = proj.weight.flatten(1) @ last.up[1].weight.flatten(1)  # (n+o) x (n+s)
        return F.conv2d(x, weight[:, :, None, None], proj.bias)

    def _csff(self, level: int, enc: list[Tensor], dec: list[Tensor]) -> Tensor:
        """``conv_enc(up_enc(enc)) + conv_dec(up_dec(dec))`` of ``level`` (1-3), at full resolution."""
        conv_enc, conv_dec = getattr(self, f"conv_enc{level}"), getattr(self, f"conv_dec{level}")
        if level == 1:
            return conv_enc(enc[0]).add_(conv_dec(dec[0]))
        up_enc, up_dec = getattr(self, f"up_enc{level - 1}"), getattr(self, f"up_dec{level - 1}")
        low = self._project_low(enc[level - 1], up_enc, conv_enc).add_(
            self._project_low(dec[level - 1], up_dec, conv_dec))
        return self.up_enc1.up[0](low)  # the bilinear x2 (no parameters)

    def forward(self, x: Tensor, enc=None, dec=None) -> Tensor:
        for i in (1, 2, 3):
            x = getattr(self, f"orb{i}")(x)
            if self.csff:  # in place: x is the ORB's fresh output, which nothing has saved yet
                x = x.add_(self._csff(i, enc, dec))
        return x


def _split(x: Tensor, halvings: int) -> Tensor:
    """Cut an image into 2**halvings patches stacked along the batch: first into top/bottom
    halves (the paper's stage-2 patches), then each half into left/right (stage-1 patches)."""
    for dim in (2, 3)[:halvings]:
        x = torch.cat(x.chunk(2, dim), 0)
    return x


def _merge(x: Tensor, halvings: int) -> Tensor:
    """Undo the last of ``halvings`` splits: glue the patch pairs back along width or height."""
    return torch.cat(x.chunk(2, 0), (2, 3)[halvings - 1]) if halvings else x


class MPRNet(nn.Module):
    """MPRNet (Zamir et al., CVPR 2021). ``forward(x)`` takes B x in_c x H x W floats in [0, 1]
    of any H, W (reflect-padded at the bottom/right to a multiple of 8, outputs cropped back) and
    returns ``num_stages`` images ``[final, ..., stage1]``, each B x out_c x H x W.

    The positional arguments are the official constructor's. A single PReLU is shared by every
    CAB (as in the official code: one parameter under 55 state-dict keys).

    Ablation switches (keyword-only; defaults give the paper's network):

    * ``sam=False``: no supervised attention. Every SAM keeps only its image head (``conv2``,
      1x1 features -> image, plus the stage's input image), so every stage still emits an image
      for the loss; the features pass to the next stage unchanged (no ``conv1``/``conv3``).
    * ``csff=False``: no cross-stage feature fusion. The stage-2 encoder and the ORSNet receive
      no encoder/decoder features of the previous stage (no ``csff_*``, ``conv_enc*``,
      ``conv_dec*``, ``up_enc*``, ``up_dec*``). The SAM path between stages remains.
    * ``num_stages`` in {1, 2, 3}. Stage k is named ``k`` in the module names. The rule
      throughout is the paper's patch hierarchy counted back from the last stage: the last stage
      sees the full image, each earlier stage's encoder sees patches of half the size of the
      next one's (4 quarter patches, 2 halves, full image for 3 stages), and its decoder works on
      the encoder features merged to the next stage's patches.

      - ``3``: the paper. Stage 1: encoder-decoder on quarters; stage 2: encoder-decoder on
        halves; stage 3: ORSNet at full resolution.
      - ``2``: the paper's last two stages as a stand-alone network: an encoder-decoder whose
        encoder runs on the top/bottom halves (decoder and SAM on the full image), then the
        ORSNet at full resolution (the paper's rule that the last stage keeps full resolution).
        Modules: ``shallow_feat1/2``, ``stage1_encoder`` (no CSFF: nothing precedes it),
        ``stage1_decoder``, ``sam12``, ``concat12`` (2n -> n+o), ``stage2_orsnet``, ``tail``.
        Keeping the halves keeps the multi-patch idea; the whole image in stage 1 would make the
        two stages differ only by the ORSNet. Deblurring preset: 14,063,233 parameters. The
        authors quote 11.3 M for their 2-stage deblurring model (swz30/MPRNet#6) without giving
        its layout; two encoder-decoder stages without an ORSNet would have 11.8 M.
      - ``1``: one encoder-decoder over the whole image (``shallow_feat1``, ``stage1_encoder``,
        ``stage1_decoder``) and the final head ``tail`` (kxk conv n -> out_c, plus the input
        image). ``sam`` and ``csff`` have no effect here (there is no next or previous stage).

    ``in_c`` must equal ``out_c``: every output adds the input image (the global residual).
    """

    def __init__(self, in_c: int = 3, out_c: int = 3, n_feat: int = 96, scale_unetfeats: int = 48,
                 scale_orsnetfeats: int = 32, num_cab: int = 8, kernel_size: int = 3,
                 reduction: int = 4, bias: bool = False, *, num_stages: int = 3,
                 sam: bool = True, csff: bool = True):
        super().__init__()
        if num_stages not in (1, 2, 3):
            raise ValueError(f"num_stages must be 1, 2 or 3, got {num_stages!r}")
        if in_c != out_c:
            raise ValueError(f"in_c ({in_c}) must equal out_c ({out_c}): outputs add the input image")
        n, s, o, k, r = n_feat, scale_unetfeats, scale_orsnetfeats, kernel_size, reduction
        self.in_c, self.num_stages = in_c, num_stages
        self.num_unets = max(num_stages - 1, 1)
        act = SharedPReLU()  # one slope shared by every CAB, as in the official model
        for i in range(1, num_stages + 1):
            setattr(self, f"shallow_feat{i}", nn.Sequential(conv(in_c, n, k, bias), CAB(n, k, r, bias, act)))
        for i in range(1, self.num_unets + 1):
            setattr(self, f"stage{i}_encoder", Encoder(n, k, r, act, bias, s, csff=csff and i > 1))
            setattr(self, f"stage{i}_decoder", Decoder(n, k, r, act, bias, s))
        if num_stages > 1:
            setattr(self, f"stage{num_stages}_orsnet", ORSNet(n, o, k, r, act, bias, s, num_cab, csff))
        for i in range(1, num_stages):
            setattr(self, f"sam{i}{i + 1}", SAM(n, out_c, bias, attention=sam))
        for i in range(2, num_stages + 1):
            setattr(self, f"concat{i - 1}{i}", conv(2 * n, n + o if i == num_stages else n, k, bias))
        self.tail = conv(n + o if num_stages > 1 else n, out_c, k, bias)
        # NHWC weights and activations: oneDNN's NHWC kernels then run without the layout copies
        # (activations to blocked and back, weights per call, their gradients back) of NCHW
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> list[Tensor]:
        self._check_input(x)
        h, w = x.shape[-2:]
        x = x.contiguous(memory_format=self._memory_format())  # see the end of __init__
        return [out[..., :h, :w] for out in self._forward_padded(self.pad_input(x))]

    def _memory_format(self) -> torch.memory_format:
        """The layout of the conv weights (channels-last from ``__init__``; ``model.to(memory_format=
        torch.contiguous_format)`` switches the whole model, activations included, to NCHW)."""
        w = self.tail.weight
        return torch.contiguous_format if w.is_contiguous() else torch.channels_last

    def _check_input(self, x) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"MPRNet expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"MPRNet expects a B x C x H x W tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"MPRNet expects a floating-point tensor in [0, 1], got {x.dtype}")
        if x.shape[1] != self.in_c:
            raise ValueError(f"MPRNet was built for {self.in_c} input channels, got {x.shape[1]} "
                             f"(shape {tuple(x.shape)})")

    @staticmethod
    def pad_input(x: Tensor, multiple: int = PAD_MULTIPLE) -> Tensor:
        """Reflect-pad bottom/right to a multiple of ``multiple`` (like the official demo.py).
        Sides shorter than their padding are reflected repeatedly; a 1-pixel side is first
        replicated once, since it has nothing to reflect."""
        h, w = x.shape[-2:]
        target_h, target_w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
        if (h, w) != (target_h, target_w) and 1 in (h, w):
            x = F.pad(x, (0, int(w == 1), 0, int(h == 1)), mode="replicate")
        while x.shape[-2:] != (target_h, target_w):
            ph = min(target_h - x.shape[-2], x.shape[-2] - 1)
            pw = min(target_w - x.shape[-1], x.shape[-1] - 1)
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        return x

    def _forward_padded(self, img: Tensor) -> list[Tensor]:
        images, feats, enc, dec = [], None, None, None
        for i in range(1, self.num_unets + 1):
            halvings = self.num_stages - i  # patch level of this stage's encoder
            x = getattr(self, f"shallow_feat{i}")(_split(img, halvings))
            if i > 1:
                x = getattr(self, f"concat{i - 1}{i}")(torch.cat([x, feats], 1))
            enc = getattr(self, f"stage{i}_encoder")(x, enc, dec)
            enc = [_merge(e, halvings) for e in enc]
            dec = getattr(self, f"stage{i}_decoder")(enc)
            if i == self.num_stages:  # a single encoder-decoder ends with the tail
                return [self.tail(dec[0]) + img]
            merged = max(halvings - 1, 0)
            feats, stage_img = getattr(self, f"sam{i}{i + 1}")(dec[0], _split(img, merged))
            for level in range(merged, 0, -1):
                stage_img = _merge(stage_img, level)
            images.append(stage_img)
        last = self.num_stages
        x = getattr(self, f"shallow_feat{last}")(img)
        x = getattr(self, f"concat{last - 1}{last}")(torch.cat([x, feats], 1))
        x = getattr(self, f"stage{last}_orsnet")(x, enc, dec)
        return [self.tail(x) + img] + images[::-1]


def build_model(task: str, **overrides) -> MPRNet:
    """The preset network for ``task`` (a key of :data:`mprnet.presets.PRESETS`), with overrides."""
    if task not in PRESETS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(PRESETS)}")
    return MPRNet(**network_kwargs(task, overrides))


def mprnet_deblurring(**overrides) -> MPRNet:
    return build_model("deblurring", **overrides)


def mprnet_deraining(**overrides) -> MPRNet:
    return build_model("deraining", **overrides)


def mprnet_denoising(**overrides) -> MPRNet:
    return build_model("denoising", **overrides)
