"""The MPRNet network against the official implementation's fixtures (keys, shapes, parameter
counts, golden outputs, intermediate activations, parameter gradients of the training loss), plus
padding and input validation."""

import inspect
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mprnet.model import PRESETS, MPRNet, build_model, mprnet_deblurring, mprnet_deraining, mprnet_denoising

GOLDEN = ["golden_deblurring_tiny.npz", "golden_deblurring_tiny_bias.npz"]
TINY = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2)


def golden_model(npz) -> MPRNet:
    config = {k[len("config/"):]: npz[k].item() for k in npz.files if k.startswith("config/")}
    model = MPRNet(**config).eval()
    state = {k[len("param/"):]: torch.from_numpy(npz[k]) for k in npz.files if k.startswith("param/")}
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("task", sorted(PRESETS))
def test_state_dict_matches_official_manifest(task, fixtures_dir):
    manifest = json.loads((fixtures_dir / f"state_dict_{task}.json").read_text())
    model = build_model(task)
    defaults = {k: v.default for k, v in inspect.signature(MPRNet).parameters.items()}
    assert {k: PRESETS[task].get(k, defaults[k]) for k in manifest["config"]} == manifest["config"]
    got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert got == [(k, v) for k, v in manifest["tensors"].items()]  # same keys, shapes, order
    assert sum(p.numel() for p in model.parameters()) == manifest["total_params"]
    # the official single PReLU: every alias key is one tensor, reported under its first key
    aliases = manifest["shared_tensor_groups"][0]
    state = model.state_dict(keep_vars=True)
    assert len({id(state[k]) for k in aliases}) == 1
    assert sum(1 for name, _ in model.named_parameters() if name.endswith("body.1.weight")) == 1
    assert dict(model.named_parameters())[aliases[0]] is state[aliases[0]]


def test_factories_are_presets():
    for task, factory in [("deblurring", mprnet_deblurring), ("deraining", mprnet_deraining),
                          ("denoising", mprnet_denoising)]:
        model = factory(**TINY)
        ref = MPRNet(**{**PRESETS[task], **TINY})
        assert [(k, v.shape) for k, v in model.state_dict().items()] == \
               [(k, v.shape) for k, v in ref.state_dict().items()]
    with pytest.raises(ValueError, match="unknown task"):
        build_model("dehazing")


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_outputs(name, fixtures_dir):
    npz = np.load(fixtures_dir / name)
    model = golden_model(npz)
    with torch.no_grad():
        outputs = model(torch.from_numpy(npz["input"]))
    assert len(outputs) == 3
    for i, out in enumerate(outputs):
        expected = torch.from_numpy(npz[f"output_{i}"])
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0, msg=f"output_{i} of {name}")


def test_golden_intermediate_activations(fixtures_dir):
    """Patches travel as one batch (official call j of a module on patch j <-> batch item j*B),
    so every activation in the debug fixture can be compared, in forward order."""
    npz = np.load(fixtures_dir / "golden_deblurring_tiny.npz")
    debug = np.load(fixtures_dir / "golden_deblurring_tiny_debug.npz")
    model = golden_model(npz)
    batch = npz["input"].shape[0]
    captured = {}

    def hook(name):
        def store(_module, _inputs, output):
            outs = output if isinstance(output, (list, tuple)) else [output]
            captured[name] = [o.detach() for o in outs]
        return store

    names = sorted({k.split("/")[1] for k in debug.files if k.startswith("debug/")})
    for name in names:
        getattr(model, name).register_forward_hook(hook(name))
    with torch.no_grad():
        model(torch.from_numpy(npz["input"]))
    keys = [k for k in debug.files if k.startswith("debug/")]
    assert len(keys) == 29
    for key in keys:  # stored in forward order: the first failure is where divergence starts
        _, name, call, out = key.split("/")
        got = captured[name][int(out[3:])][int(call[4:]) * batch: int(call[4:]) * batch + 1]
        torch.testing.assert_close(got, torch.from_numpy(debug[key]), atol=1e-5, rtol=0, msg=key)


def test_avg_pool_equals_bilinear_half_on_even_sizes():
    x = torch.rand(2, 5, 12, 20)
    bilinear = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    torch.testing.assert_close(F.avg_pool2d(x, 2), bilinear, atol=1e-7, rtol=0)


def test_upsample_conv_order_is_equivalent():
    """UpSample runs its 1x1 conv before the bilinear x2 (cheaper); the official order is after."""
    from mprnet.model import UpSample

    up = UpSample(6, 3)
    x = torch.rand(2, 9, 5, 7)
    official = up.up[1](F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
    torch.testing.assert_close(up(x), official, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(32, 48), (33, 47), (17, 8), (5, 3), (1, 1), (1, 9)])
def test_any_input_size(size):
    torch.manual_seed(0)
    model = MPRNet(**TINY).eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        outputs = model(x)
        padded = model(MPRNet.pad_input(x))
    for out, ref in zip(outputs, padded):
        assert out.shape == x.shape
        torch.testing.assert_close(out, ref[..., : size[0], : size[1]], atol=1e-6, rtol=0)


def test_pad_input_reflects_bottom_right():
    x = torch.arange(5 * 6, dtype=torch.float32).reshape(1, 1, 5, 6)
    padded = MPRNet.pad_input(x)
    assert padded.shape == (1, 1, 8, 8)
    torch.testing.assert_close(padded, F.pad(x, (0, 2, 0, 3), mode="reflect"))
    assert MPRNet.pad_input(padded) is padded  # multiples of 8 are untouched
    tiny = MPRNet.pad_input(torch.rand(1, 3, 2, 1))
    assert tiny.shape == (1, 3, 8, 8) and torch.isfinite(tiny).all()


def test_batch_items_are_independent():
    torch.manual_seed(0)
    model = MPRNet(**TINY).eval()
    x = torch.rand(3, 3, 16, 24)
    with torch.no_grad():
        together = model(x)
        alone = model(x[1:2])
    for a, b in zip(together, alone):
        torch.testing.assert_close(a[1:2], b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad, error, match", [
    (torch.rand(1, 1, 16, 16), ValueError, "3 input channels, got 1"),
    (torch.rand(1, 4, 16, 16), ValueError, "3 input channels, got 4"),
    (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), TypeError, "floating-point"),
    (torch.rand(3, 16, 16), ValueError, "B x C x H x W"),
    (np.zeros((1, 3, 16, 16), np.float32), TypeError, "torch.Tensor"),
])
def test_bad_input_is_rejected(bad, error, match):
    model = MPRNet(**TINY)
    with pytest.raises(error, match=match):
        model(bad)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_stages"):
        MPRNet(**TINY, num_stages=4)
    with pytest.raises(ValueError, match="in_c"):
        MPRNet(in_c=1, out_c=3, **TINY)


def test_single_channel_model_runs():
    model = MPRNet(in_c=1, out_c=1, **TINY)
    outputs = model(torch.rand(2, 1, 16, 16))
    assert [tuple(o.shape) for o in outputs] == [(2, 1, 16, 16)] * 3


def test_golden_gradients_of_the_training_loss(fixtures_dir):
    """The backward pass against the official model's parameter gradients (golden_deblurring_tiny_grads.npz):
    same weights and input as golden_deblurring_tiny.npz, model.train(), loss = sum over the three outputs
    of Charbonnier (eps 1e-3) + 0.05 * sum of EdgeLoss, computed here by the trainer's own criterion and
    train_step. Per tensor max|Δgrad| / max|grad| <= 1e-3 (float32 op order differs; measured ~4e-6)."""
    from mprnet.losses import StageLoss
    from mprnet.training.config import resolve_config
    from mprnet.training.trainer import train_step

    npz = np.load(fixtures_dir / "golden_deblurring_tiny.npz")
    golden = np.load(fixtures_dir / "golden_deblurring_tiny_grads.npz")
    model = golden_model(npz).train()
    inp = torch.from_numpy(golden["input"])
    assert torch.equal(inp, torch.from_numpy(npz["input"]))
    torch.manual_seed(1)
    target = torch.rand_like(inp)  # how the file's target was drawn
    assert torch.equal(target, torch.from_numpy(golden["target"]))
    # The criterion exactly as the trainer builds it for deblurring (and deraining): 0.05, no clamping.
    loss_cfg = resolve_config({"task": "deblurring", "data": {"train": "unused"}})["loss"]
    assert loss_cfg == {"edge_weight": 0.05, "clamp_outputs": False, "eps": 1e-3}
    criterion = StageLoss(**loss_cfg)
    # lr 0: the step leaves the weights as they are and the gradients in .grad.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = train_step(model, criterion, optimizer, scaler, inp, target)
    assert abs(loss.item() - golden["loss"].item()) <= 1e-5 * golden["loss"].item(), (loss.item(), golden["loss"])

    params = dict(model.named_parameters())
    expected = {k[len("grad/"):]: golden[k] for k in golden.files if k.startswith("grad/")}
    assert len(expected) == 190 and set(params) == set(expected)  # the shared PReLU appears once
    worst, zero = 0.0, 0
    for name, param in params.items():
        assert param.grad is not None, f"{name}: no gradient"
        got, ref = param.grad.numpy(), expected[name]
        assert got.shape == ref.shape, name
        scale = float(np.abs(ref).max())
        if scale == 0:  # e.g. a channel-attention squeeze whose ReLU is closed for this input
            assert not got.any(), f"{name}: the official gradient is zero, ours is not"
            zero += 1
            continue
        rel = float(np.abs(got.astype(np.float64) - ref).max()) / scale
        worst = max(worst, rel)
        assert rel <= 1e-3, f"{name}: max|Δgrad| / max|grad| = {rel:.3g}"
    print(f"loss {loss.item():.9f} (official {golden['loss'].item():.9f}); worst gradient max|Δ|/max|g| "
          f"{worst:.3g} over {len(params) - zero} tensors; {zero} zero in both")
    assert zero < len(params) // 4  # most tensors are compared by value


@pytest.mark.parametrize("slope", [0.25, -0.1])
@pytest.mark.parametrize("channels_last", [False, True])
def test_shared_prelu_equals_torch_prelu(slope, channels_last):
    """SharedPReLU (in place, own backward on CPU for a positive slope; F.prelu otherwise) gives
    torch's PReLU values and gradients, and leaves the caller's input alone only in the fallback."""
    from mprnet.model_cpu import SharedPReLU

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn(2, 5, 6, 7)
    act = SharedPReLU()
    with torch.no_grad():
        act.weight.fill_(slope)
    ref_x, ref_a = x.clone().requires_grad_(), torch.full((1,), slope, requires_grad=True)
    expected = F.prelu(ref_x, ref_a)
    expected.backward(g)
    with torch.no_grad():
        torch.testing.assert_close(act(x.clone()), expected, atol=0, rtol=0)
    leaf = x.clone().requires_grad_()
    out = act(leaf * 1)  # a fresh non-leaf, as a conv output is
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    out.backward(g)
    torch.testing.assert_close(leaf.grad, ref_x.grad, atol=0, rtol=0)
    torch.testing.assert_close(act.weight.grad, ref_a.grad, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("bias", [False, True])
def test_fused_channel_attention_matches_autograd(bias):
    """CALayer.scale_add (one autograd function) = x + CALayer(res), values and every gradient."""
    from mprnet.model import CALayer

    torch.manual_seed(0)
    layer = CALayer(8, 2, bias)
    res = torch.randn(2, 8, 5, 6).contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 8, 5, 6).contiguous(memory_format=torch.channels_last)
    g = torch.randn(2, 8, 5, 6)
    grads = []
    for fused in (False, True):
        r, xx = res.clone().requires_grad_(), x.clone().requires_grad_()
        layer.zero_grad(set_to_none=True)
        out = layer.scale_add(r * 1, xx) if fused else xx + layer(r)
        out.backward(g)
        grads.append([out.detach(), r.grad, xx.grad] + [p.grad for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)
    with torch.no_grad():  # the in-place path without autograd
        torch.testing.assert_close(layer.scale_add(res.clone(), x), grads[0][0], atol=1e-6, rtol=1e-5)


def test_orsnet_projects_before_upsampling():
    """ORSNet's cross-stage terms, computed below full resolution, equal the official order
    conv_enc(up_enc(e)) + conv_dec(up_dec(d)) (bilinear x2 before each 1x1 conv)."""
    from mprnet.model import ORSNet

    torch.manual_seed(0)
    n, s, o = 6, 3, 2
    net = ORSNet(n, o, 3, 2, torch.nn.PReLU(), True, s, 1, csff=True)

    def up(module, x):  # the official UpSample: bilinear x2, then the 1x1 conv
        return module.up[1](F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))

    enc = [torch.randn(1, n, 16, 16), torch.randn(1, n + s, 8, 8), torch.randn(1, n + 2 * s, 4, 4)]
    dec = [torch.randn(1, n, 16, 16), torch.randn(1, n + s, 8, 8), torch.randn(1, n + 2 * s, 4, 4)]
    official = [
        net.conv_enc1(enc[0]) + net.conv_dec1(dec[0]),
        net.conv_enc2(up(net.up_enc1, enc[1])) + net.conv_dec2(up(net.up_dec1, dec[1])),
        net.conv_enc3(up(net.up_enc2[1], up(net.up_enc2[0], enc[2])))
        + net.conv_dec3(up(net.up_dec2[1], up(net.up_dec2[0], dec[2]))),
    ]
    for level in (1, 2, 3):
        torch.testing.assert_close(net._csff(level, enc, dec), official[level - 1], atol=1e-5, rtol=1e-5)


def test_no_grad_path_equals_autograd_path():
    """Without autograd the CABs fuse the slope into the conv and work in place: same outputs."""
    torch.manual_seed(0)
    model = MPRNet(**TINY, bias=True)
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        fast = model(x)
    for a, b in zip(fast, model(x)):
        torch.testing.assert_close(a, b.detach(), atol=1e-6, rtol=0)


def test_activation_layout_follows_the_weights():
    torch.manual_seed(0)
    model = MPRNet(**TINY).eval()
    x = torch.rand(1, 3, 16, 16)
    assert model._memory_format() == torch.channels_last
    with torch.no_grad():
        nhwc = model(x)
        model.to(memory_format=torch.contiguous_format)
        assert model._memory_format() == torch.contiguous_format
        nchw = model(x)
    assert nchw[0].is_contiguous()
    for a, b in zip(nhwc, nchw):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
