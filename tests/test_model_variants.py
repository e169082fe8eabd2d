"""Structure and trainability of the ablation switches (num_stages, sam, csff)."""

import itertools
import json

import pytest
import torch

from mprnet.model import MPRNet, build_model

TINY = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2)
VARIANTS = list(itertools.product((1, 2, 3), (True, False), (True, False)))
CSFF_PARTS = ("csff_enc", "csff_dec", "conv_enc", "conv_dec", "up_enc", "up_dec")


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def top_level(model) -> list[str]:
    return [name for name, _ in model.named_children()]


@pytest.mark.parametrize("num_stages, sam, csff", VARIANTS)
def test_forward_backward(num_stages, sam, csff):
    torch.manual_seed(0)
    model = MPRNet(**TINY, num_stages=num_stages, sam=sam, csff=csff)
    x = torch.rand(2, 3, 20, 13)
    outputs = model(x)
    assert len(outputs) == num_stages
    assert all(o.shape == x.shape for o in outputs)
    sum(o.mean() for o in outputs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name  # every part is used


@pytest.mark.parametrize("num_stages, sam, csff", VARIANTS)
def test_structure(num_stages, sam, csff):
    model = MPRNet(**TINY, num_stages=num_stages, sam=sam, csff=csff)
    keys = list(model.state_dict())
    sams = [f"sam{i}{i + 1}" for i in range(1, num_stages)]
    assert [k for k in top_level(model) if k.startswith("sam")] == sams
    for name in sams:
        assert f"{name}.conv2.weight" in keys  # the image head always exists
        assert (f"{name}.conv1.weight" in keys) == sam
        assert (f"{name}.conv3.weight" in keys) == sam
    has_fusion = any(part in k for k in keys for part in CSFF_PARTS)
    assert has_fusion == (csff and num_stages > 1)
    assert [k for k in top_level(model) if k.startswith("shallow_feat")] == \
           [f"shallow_feat{i}" for i in range(1, num_stages + 1)]
    assert sum(k.endswith("_orsnet") for k in top_level(model)) == (num_stages > 1)


def test_stage_layouts():
    one = top_level(MPRNet(**TINY, num_stages=1))
    assert one == ["shallow_feat1", "stage1_encoder", "stage1_decoder", "tail"]
    two = top_level(MPRNet(**TINY, num_stages=2))
    assert two == ["shallow_feat1", "shallow_feat2", "stage1_encoder", "stage1_decoder",
                   "stage2_orsnet", "sam12", "concat12", "tail"]
    three = MPRNet(**TINY)
    assert top_level(three) == ["shallow_feat1", "shallow_feat2", "shallow_feat3", "stage1_encoder",
                                "stage1_decoder", "stage2_encoder", "stage2_decoder", "stage3_orsnet",
                                "sam12", "sam23", "concat12", "concat23", "tail"]


def test_parameter_savings_of_switches():
    n, s, o = TINY["n_feat"], TINY["scale_unetfeats"], TINY["scale_orsnetfeats"]
    full = n_params(MPRNet(**TINY))
    # per SAM: conv1 (n -> n) and conv3 (3 -> n), no bias
    assert full - n_params(MPRNet(**TINY, sam=False)) == 2 * (n * n + 3 * n)
    widths = [n, n + s, n + 2 * s]
    csff_convs = 2 * sum(c * c for c in widths)
    ors_convs = 6 * n * (n + o)
    ups = 2 * ((n + s) * n + (n + 2 * s) * (n + s) + (n + s) * n)
    assert full - n_params(MPRNet(**TINY, csff=False)) == csff_convs + ors_convs + ups


def test_fewer_stages_from_the_official_components(fixtures_dir):
    """Deblurring preset: the 1- and 2-stage networks are the official components minus the
    dropped ones (14,063,233 and 5,757,121 parameters; the authors quote 11.3 M for 2 stages)."""
    manifest = json.loads((fixtures_dir / "state_dict_deblurring.json").read_text())
    parts = manifest["component_params"]
    two = manifest["total_params"] - sum(parts[k] for k in ("shallow_feat2", "stage2_encoder",
                                                            "stage2_decoder", "sam23", "concat12"))
    assert n_params(build_model("deblurring", num_stages=2)) == two
    tail_one_stage = 96 * 3 * 3 * 3
    one = parts["shallow_feat1"] + parts["stage1_encoder"] + parts["stage1_decoder"] + tail_one_stage
    assert n_params(build_model("deblurring", num_stages=1)) == one


def test_two_stage_data_flow():
    """2 stages: encoder on the top/bottom halves, decoder and SAM on the full image, then the
    ORSNet at full resolution (components run by hand, batch 1, csff off for brevity)."""
    torch.manual_seed(0)
    two = MPRNet(**TINY, num_stages=2, csff=False).eval()
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        halves = torch.cat(x.chunk(2, 2), 0)
        feats = two.shallow_feat1(halves)
        enc = [torch.cat(e.chunk(2, 0), 2) for e in two.stage1_encoder(feats)]
        dec = two.stage1_decoder(enc)
        sam_feats, img1 = two.sam12(dec[0], x)
        f = two.concat12(torch.cat([two.shallow_feat2(x), sam_feats], 1))
        final = two.tail(two.stage2_orsnet(f)) + x
        outputs = two(x)
    torch.testing.assert_close(outputs[0], final, atol=1e-6, rtol=0)
    torch.testing.assert_close(outputs[1], img1, atol=1e-6, rtol=0)


def test_one_stage_data_flow():
    torch.manual_seed(0)
    one = MPRNet(**TINY, num_stages=1).eval()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        dec = one.stage1_decoder(one.stage1_encoder(one.shallow_feat1(x)))
        (output,) = one(x)
    torch.testing.assert_close(output, one.tail(dec[0]) + x, atol=1e-6, rtol=0)
