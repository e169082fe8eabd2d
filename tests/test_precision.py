"""Precision from the hardware: the rule behind ``train.amp: auto`` (CPU and CUDA, the oneDNN/ATen
restrictions as overrides), the one refusal of emulated bf16 shared by train and restore, and the
precision each run records being the one it trained in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

import mprnet.precision as precision
from mprnet.errors import ConfigError, DataError
from mprnet.precision import Bf16Support, CpuFacts, cpu_bf16_support, resolve_amp, trained_precision
from mprnet.training.config import config_differences, resolve_config
from mprnet.training.trainer import train
from train_worker import TINY_MODEL, make_pairs, tiny_config

AMX_XEON = CpuFacts("x86_64", ("AMX-BF16", "AVX512-BF16"), True, "AVX512")
ZEN3 = CpuFacts("x86_64", (), False, "AVX2")  # AVX2 only: oneDNN has no bf16 kernels
SKYLAKE_X = CpuFacts("x86_64", (), True, "AVX512")  # AVX-512 without BF16: oneDNN emulates bf16
GRAVITON3 = CpuFacts("aarch64", (), True, "DEFAULT")  # ARM with the BF16 extension
NATIVE, EMULATED = Bf16Support(True, "test: native"), Bf16Support(False, "test: no bf16 units")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs") / "train", 4, seed=0)


@pytest.mark.parametrize("facts, environ, native, reason", [
    (AMX_XEON, {}, True, "AMX-BF16/AVX512-BF16 units"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False, "ONEDNN_MAX_CPU_ISA=AVX2 hides"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "avx512_core"}, False, "ONEDNN_MAX_CPU_ISA=avx512_core hides"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, False, "hides"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI_2"}, False, "hides"),  # bf16 conversions only
    (AMX_XEON, {"DNNL_MAX_CPU_ISA": "AVX2"}, False, "DNNL_MAX_CPU_ISA=AVX2 hides"),  # the old name
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "no_such_isa"}, False, "hides"),  # unknown: a restriction
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True, "units"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, True, "units"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "ALL"}, True, "units"),
    (CpuFacts("x86_64", ("AMX-BF16", "AVX512-BF16"), True, "AVX2"), {}, False, "limited to AVX2"),
    (CpuFacts("x86_64", ("AVX512-BF16",), True, "AVX512"), {}, True, "AVX512-BF16 units"),
    (ZEN3, {}, False, "neither AVX512-BF16 nor AMX"),
    (SKYLAKE_X, {}, False, "neither AVX512-BF16 nor AMX"),
    (GRAVITON3, {}, True, "oneDNN's bf16 kernels on aarch64"),
    (CpuFacts("aarch64", (), False, "DEFAULT"), {}, False, "no bf16 kernels on this aarch64"),
])
def test_cpu_rule(facts, environ, native, reason):
    support = cpu_bf16_support(facts, environ)
    assert support.native is native and reason in support.reason


def test_the_avx2_restriction_reaches_the_rule_through_torch_itself():
    """With the documented override, torch's own probes of this process make the rule say "no
    native bf16", whatever this machine has: how an AMX machine times an AVX2 laptop."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    code = ("from mprnet.precision import CpuFacts, bf16_support, resolve_amp; f = CpuFacts.read(); "
            "print(f.onednn_bf16, f.aten_capability, bf16_support('cpu').native, resolve_amp('auto', 'cpu')[0])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    onednn, capability, native, amp = out.split()
    if CpuFacts.read().x86:
        assert (onednn, capability) == ("False", "AVX2")  # torch honoured both variables
    assert (native, amp) == ("False", "none")


def test_cuda_rule(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return ampere

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    ampere = True
    assert precision.bf16_support("cuda:0") == Bf16Support(True, "Test GPU has bf16 tensor cores")
    assert resolve_amp("auto", "cuda:0")[0] == "bf16"
    ampere = False  # a V100 or T4: torch would emulate bf16
    assert not precision.bf16_support("cuda").native and resolve_amp("auto", "cuda")[0] == "none"
    with pytest.raises(ConfigError, match="train.amp: bf16 is not native on cuda.*no bf16 tensor cores"):
        resolve_amp("bf16", "cuda")
    assert resolve_amp("fp16", "cuda")[0] == "fp16"  # fp16 tensor cores exist on every CUDA GPU we run
    assert asked and not any(asked)  # never counts emulation as support
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no CUDA device" in precision.bf16_support("cuda").reason


def test_resolve_amp(monkeypatch):
    monkeypatch.setattr(precision, "bf16_support", lambda device: support)
    support = NATIVE
    assert resolve_amp("auto", "cpu") == ("bf16", "test: native")
    assert resolve_amp("bf16", "cpu")[0] == "bf16"
    assert resolve_amp("none", "cpu")[0] == "none"
    assert resolve_amp("auto", "cpu", previous="none")[0] == "none"  # a run keeps its precision
    support = EMULATED
    assert resolve_amp("auto", "cpu") == ("none", "test: no bf16 units")
    with pytest.raises(ConfigError) as err:
        resolve_amp("bf16", "cpu")
    message = str(err.value)
    assert message.startswith("train.amp: bf16 is not native on cpu: test: no bf16 units")
    assert "11x slower than fp32" in message and "train.amp: auto" in message
    with pytest.raises(ConfigError, match="train.amp: auto: bf16 is not native.*started in bf16"):
        resolve_amp("auto", "cpu", previous="bf16")
    with pytest.raises(ConfigError, match="fp16 autocast needs a GPU"):
        resolve_amp("fp16", "cpu")
    with pytest.raises(ConfigError, match="started in fp16 on a GPU"):
        resolve_amp("auto", "cpu", previous="fp16")


def test_auto_matches_what_it_resolved_to():
    """A config saying auto asks for the run its effective config (bf16 or none) records; two
    explicit values that differ still differ, and so does a missing key."""
    def cfg(amp):
        return resolve_config({"task": "deraining", "data": {"train": "x"}, "train": {"amp": amp}})

    assert config_differences(cfg("bf16"), cfg("auto")) == []
    assert config_differences(cfg("auto"), cfg("none")) == []
    assert config_differences(cfg("bf16"), cfg("none")) == ["train.amp ('bf16' -> 'none')"]
    old, new = cfg("none"), cfg("none")
    new["model"]["init_weights"] = "w.pth"
    assert config_differences(old, new) == ["model.init_weights (None -> 'w.pth')"]


def _record_output_dtypes(monkeypatch) -> list:
    """The dtype the network's last convolution (``tail``) computed in, at every training step."""
    import mprnet.training.trainer as trainer

    seen, build = [], trainer.build_training_model

    def build_with_hook(cfg):
        model = build(cfg)
        model.tail.register_forward_hook(lambda module, args, out: seen.append(out.dtype) if module.training else None)
        return model

    monkeypatch.setattr(trainer, "build_training_model", build_with_hook)
    return seen


@pytest.mark.parametrize("support, amp, dtype", [(NATIVE, "bf16", torch.bfloat16), (EMULATED, "none", torch.float32)])
def test_auto_trains_in_what_it_records(pairs_dir, tmp_path, monkeypatch, capsys, support, amp, dtype):
    """train.amp auto: the arithmetic of every training step is the one config.yaml, the
    checkpoint and model_final.pt record (bf16 is forced native here; on a CPU without bf16
    units torch then emulates it, slowly but correctly for two tiny steps)."""
    monkeypatch.setattr(precision, "bf16_support", lambda device: support)
    seen = _record_output_dtypes(monkeypatch)
    out = tmp_path / "run"
    train(tiny_config(pairs_dir, length=2, train={"amp": "auto", "channels_last": amp == "bf16"}), out)
    assert seen == [dtype, dtype]
    assert f"train.amp auto -> {amp}" in capsys.readouterr().err
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["amp"] == amp
    assert torch.load(out / "checkpoint.pt", weights_only=True)["config"]["train"]["amp"] == amp
    assert trained_precision(out / "model_final.pt") == {"bf16": "bf16", "none": "fp32"}[amp]
    final = torch.load(out / "model_final.pt", weights_only=True)["model"]
    assert all(v.dtype == torch.float32 for v in final.values())  # master weights stay float32


def _train_until_stopped_after_2(config, out, monkeypatch) -> None:
    """Train ``config`` into ``out`` and stop after iteration 2 with its checkpoint written, as a
    SIGTERM does (``TrainingInterrupted``); ``Trainer`` is as before afterwards."""
    from mprnet.training import trainer

    after = trainer.Trainer._after_iteration

    def stop_after_2(self):
        after(self)
        if self.iteration == 2:
            raise trainer.TrainingInterrupted(self.ckpt_path, 2, "test")

    with monkeypatch.context() as patch:
        patch.setattr(trainer.Trainer, "_after_iteration", stop_after_2)
        with pytest.raises(trainer.TrainingInterrupted):
            train(config, out)


def test_a_resumed_auto_run_keeps_its_precision(pairs_dir, tmp_path, monkeypatch):
    """A run started in bf16 resumes in bf16 on a machine where auto would pick fp32, or is
    refused where bf16 would be emulated; one started in fp32 stays fp32 on a bf16 machine."""
    monkeypatch.setattr(precision, "bf16_support", lambda device: support)
    config = tiny_config(pairs_dir, length=4, train={"amp": "auto"})
    support, out = NATIVE, tmp_path / "bf16"
    _train_until_stopped_after_2(config, out, monkeypatch)
    support = EMULATED
    with pytest.raises(ConfigError, match="started in bf16.*resume it on a device with native bf16"):
        train(config, out, resume=True)
    support = NATIVE
    seen = _record_output_dtypes(monkeypatch)
    train(config, out, resume=True)
    assert seen == [torch.bfloat16] * 2 and trained_precision(out / "model_final.pt") == "bf16"

    support, out = EMULATED, tmp_path / "fp32"
    _train_until_stopped_after_2(config, out, monkeypatch)
    support = NATIVE
    seen.clear()
    train(config, out, resume=True)
    assert seen == [torch.float32] * 2 and trained_precision(out / "model_final.pt") == "fp32"


def test_explicit_bf16_is_refused_where_emulated_in_train_and_restore_alike(pairs_dir, tmp_path, monkeypatch):
    from mprnet.restore import check_precision

    monkeypatch.setattr(precision, "bf16_support", lambda device: EMULATED)
    with pytest.raises(ConfigError, match=r"^train.amp: bf16 is not native on cpu: test: no bf16 units; "
                                          r"emulated it runs about 11x slower"):
        train(tiny_config(pairs_dir, length=2, train={"amp": "bf16"}), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written
    with pytest.raises(ConfigError, match=r"^--precision bf16: bf16 is not native on cpu: test: no bf16 units; "
                                          r"emulated it runs about 11x slower.*--precision fp32"):
        check_precision("bf16", "cpu")
    check_precision("fp32", "cpu")  # fp32 never asks


def test_trained_precision_names_a_file_it_cannot_read(tmp_path):
    with pytest.raises(DataError, match="nothing.pt: no such model file"):
        trained_precision(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="junk.pt: not a readable model file"):
        trained_precision(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "weights.pt")
    with pytest.raises(DataError, match="weights.pt: carries no resolved train.amp"):
        trained_precision(tmp_path / "weights.pt")


# --- the memory-layout rule of training (train.channels_last: auto) ------------------------------

@pytest.mark.parametrize("facts, environ, n_feat, channels_last, reason", [
    (AMX_XEON, {}, 96, True, "channels-last: torch's vector kernels are AVX512"),
    (SKYLAKE_X, {}, 96, True, "channels-last"),  # AVX-512 without bf16: the layout rule needs no bf16
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, 96, True, "channels-last"),
    (AMX_XEON, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, 96, False,
     "NCHW: ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN below AVX-512 and n_feat 96 >= 64"),
    (CpuFacts("x86_64", ("AMX-BF16",), True, "AVX2"), {}, 80, False, "NCHW: torch's vector kernels are AVX2,"),
    (ZEN3, {}, 64, False, "NCHW: torch's vector kernels are AVX2, below AVX-512 and n_feat 64 >= 64"),
    (ZEN3, {}, 40, True, "channels-last: torch's vector kernels are AVX2, below AVX-512, but n_feat 40 < 64"),
    (ZEN3, {}, 16, True, "n_feat 16 < 64"),
    (GRAVITON3, {}, 96, True, "unmeasured on aarch64"),
])
def test_layout_rule(facts, environ, n_feat, channels_last, reason):
    choice = precision.cpu_layout(n_feat, facts, environ)
    assert choice.channels_last is channels_last and reason in choice.reason


def test_channels_last_setting_resolves_true_false_auto_and_names_a_bad_value(monkeypatch):
    assert precision.resolve_channels_last(True, "cpu", 96) == (True, "train.channels_last: true")
    assert precision.resolve_channels_last(False, "cpu", 16) == (False, "train.channels_last: false")
    kept = "kept from the checkpoint this run resumes"  # auto keeps a resumed run's layout, as amp
    assert precision.resolve_channels_last("auto", "cpu", 96, previous=True) == (True, kept)
    assert precision.resolve_channels_last("auto", "cpu", 16, previous=False) == (False, kept)
    assert precision.resolve_channels_last(True, "cpu", 96, previous=False) == (True, "train.channels_last: true")
    monkeypatch.setattr(precision, "cpu_layout", lambda n_feat: precision.LayoutChoice(n_feat < 50, "test"))
    assert precision.resolve_channels_last("auto", "cpu", 96) == (False, "test")
    assert precision.resolve_channels_last("auto", "cpu", 16) == (True, "test")
    with pytest.raises(ConfigError, match=r"^train.channels_last: expected true, false or auto, got 'yes'"):
        precision.resolve_channels_last("yes", "cpu", 16)
    with pytest.raises(ConfigError, match=r"train.channels_last"):  # the schema, at planning time
        resolve_config({"task": "deraining", "data": {"train": "x"}, "train": {"channels_last": "yes"}})


def _record_layouts(monkeypatch) -> list:
    """The layout of every training forward's input (the model's activations follow it)."""
    from mprnet.training import trainer

    seen, build = [], trainer.build_training_model

    def build_with_hook(cfg):
        model = build(cfg)
        model.shallow_feat1.register_forward_pre_hook(lambda module, args: seen.append(
            "nhwc" if args[0].is_contiguous(memory_format=torch.channels_last) and not args[0].is_contiguous()
            else "nchw") if module.training else None)
        return model

    monkeypatch.setattr(trainer, "build_training_model", build_with_hook)
    return seen


@pytest.mark.parametrize("native", [True, False])
def test_auto_layout_trains_in_what_it_records_and_a_resumed_run_keeps_it(pairs_dir, tmp_path, monkeypatch,
                                                                         capsys, native):
    widths = []
    monkeypatch.setattr(precision, "layout_choice",
                        lambda device, n_feat: widths.append(n_feat) or precision.LayoutChoice(native, "test rule"))
    seen, out = _record_layouts(monkeypatch), tmp_path / "run"
    config = tiny_config(pairs_dir, length=4, train={"amp": "none", "channels_last": "auto"})

    _train_until_stopped_after_2(config, out, monkeypatch)
    layout = "nhwc" if native else "nchw"
    assert seen == [layout] * 2 and widths == [TINY_MODEL["n_feat"]]  # the width of the model trained
    assert f"train.channels_last auto -> {str(native).lower()} (test rule)" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["channels_last"] is native

    # the machine now answers the other way
    monkeypatch.setattr(precision, "layout_choice", lambda device, n_feat: precision.LayoutChoice(not native, "x"))
    seen = _record_layouts(monkeypatch)
    train(config, out, resume=True)
    assert seen == [layout] * 2  # kept from the checkpoint
    assert torch.load(out / "model_final.pt", weights_only=True)["config"]["train"]["channels_last"] is native
