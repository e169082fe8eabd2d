"""The CUDA faults the first GPU run found (issue 22, an H200: benchmarks/records/), checked on the CPU.

* ``mprnet restore --precision fp32`` on CUDA ran its convolutions in TF32 (PyTorch's default):
  outputs up to 2.6e-4 (of [0, 1]) away from IEEE float32. The fp32 forward now runs under
  ``mprnet.precision.ieee_fp32``; here the settings the forward pass sees are recorded.
* ``runtime.processes: 2`` on a machine with one GPU died in rank 1's ``torch.cuda.set_device``
  ("invalid device ordinal", a traceback per process). Now refused before any process starts,
  with one line naming the key; here CUDA's presence and GPU count are patched in.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from mprnet.cli import main
from mprnet.errors import ConfigError
from train_worker import make_pairs, tiny_config, write_config


def _fp32_settings() -> tuple[str, str]:
    return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision


class _Recorder(nn.Module):
    """A stand-in network of two outputs that records the fp32 settings its forward pass runs under."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.conv, self.seen, self.fail = nn.Conv2d(3, 3, 3, padding=1), [], fail

    def forward(self, x):
        self.seen.append(_fp32_settings())
        if self.fail:
            raise RuntimeError("out of memory")
        y = self.conv(x)
        return [y, y]


@pytest.mark.parametrize("tile", [None, 16])
def test_fp32_restore_runs_in_ieee_float32_and_puts_the_settings_back(tile):
    from mprnet.restore import restore_tensor

    before = _fp32_settings()
    model = _Recorder()
    restore_tensor(model, torch.rand(1, 3, 24, 40), tile=tile, overlap=8, precision="fp32")
    assert model.seen and set(model.seen) == {("ieee", "ieee")}  # every tile too
    assert _fp32_settings() == before

    failing = _Recorder(fail=True)
    with pytest.raises(RuntimeError, match="out of memory"):
        restore_tensor(failing, torch.rand(1, 3, 24, 40), precision="fp32")
    assert failing.seen == [("ieee", "ieee")] and _fp32_settings() == before


def test_bf16_restore_leaves_the_fp32_settings_alone():
    from mprnet.restore import restore_tensor

    before, model = _fp32_settings(), _Recorder()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):  # no bf16 kernels needed to check
        restore_tensor(model, torch.rand(1, 3, 16, 16), precision="bf16")
    assert model.seen == [before]


@pytest.fixture
def one_gpu(monkeypatch):
    """This machine as one with CUDA and a single GPU (nothing is ever run on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_more_processes_than_gpus_is_one_line_before_any_process_starts(device, one_gpu, tmp_path, capsys,
                                                                        monkeypatch):
    from mprnet.training import launch

    started = []
    monkeypatch.setattr(launch, "launch", lambda *args: started.append(args) or 0)
    train_dir = make_pairs(tmp_path / "train", 4, seed=0)
    config = write_config(tmp_path / "run.yaml", tiny_config(train_dir, length=2))
    code = main(["train", "--config", str(config), "--out", str(tmp_path / "run"),
                 "--set", "runtime.processes=2", "--set", f"runtime.device={device}"])
    err = capsys.readouterr().err
    assert code == 2 and started == [] and not (tmp_path / "run").exists()
    assert err.count("\n") == 1 and err.startswith(
        "mprnet train: error: runtime.processes: 2 processes train on one GPU each, but 1 GPU is visible here; "
        "NCCL cannot share a GPU between processes: set runtime.processes to at most 1, or runtime.device: cpu")


def test_processes_on_the_cpu_are_not_limited_by_gpus(monkeypatch):
    from mprnet.training.config import check_gpus_per_process

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    check_gpus_per_process(4, "auto")  # auto without CUDA: gloo on the CPU
    check_gpus_per_process(4, "cpu")
    with pytest.raises(ConfigError, match=r"^runtime.processes: 2 processes train on one GPU each, but 0 GPUs are"):
        check_gpus_per_process(2, "cuda")


def test_torchrun_workers_beyond_the_gpus_are_refused_before_set_device(one_gpu, tmp_path, monkeypatch):
    """Under torchrun (LOCAL_RANK, LOCAL_WORLD_SIZE set by the launcher) the check is in ``train``."""
    from mprnet.training import train

    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(device))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    for name, value in {"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "RANK": "1", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    train_dir = make_pairs(tmp_path / "train", 4, seed=0)
    config = tiny_config(train_dir, length=2, runtime={"device": "cuda"})
    with pytest.raises(ConfigError, match=r"^runtime.processes: 2 processes .* 1 GPU is visible here "
                                          r"\(CUDA_VISIBLE_DEVICES=0\)"):
        train(config, tmp_path / "run")
    assert calls == [] and os.environ["LOCAL_RANK"] == "1"
