"""Checkpoint reading: accepted layouts, module. prefix, shared-PReLU aliases, clear errors."""

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from mprnet.checkpoint import load_weights, read_state_dict
from mprnet.errors import CheckpointError
from mprnet.model import MPRNet

TINY = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2)


@pytest.fixture(scope="module")
def golden_state(fixtures_dir):
    npz = np.load(fixtures_dir / "golden_deblurring_tiny.npz")
    return {k[len("param/"):]: torch.from_numpy(npz[k]) for k in npz.files if k.startswith("param/")}


def assert_same_weights(model, state):
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0, msg=key)


@pytest.mark.parametrize("layout", ["bare", "official", "ours", "data_parallel"])
def test_accepted_layouts(tmp_path, golden_state, layout):
    if layout == "bare":
        obj = golden_state
    elif layout == "official":
        obj = {"epoch": 3, "state_dict": golden_state, "optimizer": {"state": {}, "param_groups": []}}
    elif layout == "ours":
        obj = {"model": golden_state, "epoch": 3, "config": {"task": "deblurring"}}
    else:
        obj = {"state_dict": {f"module.{k}": v for k, v in golden_state.items()}}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    state = read_state_dict(path)
    assert set(state) == set(golden_state)
    assert_same_weights(load_weights(MPRNet(**TINY), path), golden_state)


def test_load_from_state_dict_object(golden_state):
    model = load_weights(MPRNet(**TINY), {f"module.{k}": v for k, v in golden_state.items()})
    assert_same_weights(model, golden_state)


def test_reads_with_weights_only(tmp_path, monkeypatch, golden_state):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    torch.save(golden_state, tmp_path / "c.pth")
    read_state_dict(tmp_path / "c.pth")
    assert calls == [{"map_location": "cpu", "weights_only": True}]


def test_shared_prelu_aliases(golden_state):
    """All 37 alias keys of the single PReLU (one per CAB) load; a state dict naming only some
    of them (e.g. written by a tool that dedupes tensors) is completed; aliases that disagree
    are refused rather than letting the last one win."""
    model = MPRNet(**TINY)
    prelu = model.shallow_feat1[1].body[1].weight
    alias = [k for k, v in model.state_dict(keep_vars=True).items() if v is prelu]
    assert len(alias) == 37 and all(k in golden_state for k in alias)
    partial = {k: v for k, v in golden_state.items() if k not in alias[1:]}
    assert_same_weights(load_weights(model, partial), golden_state)
    clash = dict(golden_state)
    clash[alias[5]] = clash[alias[5]] + 1
    with pytest.raises(CheckpointError, match="share one parameter"):
        load_weights(MPRNet(**TINY), clash)


def test_other_preset_lists_shape_mismatches(golden_state):
    with pytest.raises(CheckpointError) as info:
        load_weights(MPRNet(n_feat=12, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2), golden_state)
    message = str(info.value)
    assert "shape mismatches" in message and "shallow_feat1.0.weight (8, 3, 3, 3) vs model (12, 3, 3, 3)" in message


def test_missing_and_unexpected_keys_are_listed(golden_state):
    broken = {k: v for k, v in golden_state.items() if k != "tail.weight"}
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_weights(MPRNet(**TINY), broken)
    assert "missing keys (1): tail.weight" in str(info.value)
    assert "unexpected keys (1): extra.weight" in str(info.value)
    with pytest.raises(CheckpointError, match="unexpected keys .*csff_enc1"):
        load_weights(MPRNet(**TINY, csff=False), golden_state)


def test_model_untouched_when_loading_fails(golden_state):
    model = MPRNet(**TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    broken = dict(golden_state)
    broken["tail.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError):
        load_weights(model, broken)
    assert_same_weights(model, before)


class NotAllowed:
    pass


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", ["whole_model", "custom_pickle", "list", "empty_dict", "non_tensor",
                                  "text", "empty", "truncated", "missing"])
def test_unreadable_or_foreign_files_name_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "whole_model":
        torch.save(nn.Linear(2, 2), path)
    elif kind == "custom_pickle":
        path.write_bytes(pickle.dumps(NotAllowed()))
    elif kind == "list":
        torch.save([torch.zeros(1)], path)
    elif kind == "empty_dict":
        torch.save({"epoch": 1}, path)
    elif kind == "non_tensor":
        torch.save({"a.weight": torch.zeros(1), "b": 3}, path)
    elif kind == "text":
        path.write_text("not a checkpoint")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        torch.save({"a": torch.zeros(100)}, tmp_path / "full.pth")
        path.write_bytes((tmp_path / "full.pth").read_bytes()[:200])
    with pytest.raises(CheckpointError, match=str(path)):
        read_state_dict(path)
