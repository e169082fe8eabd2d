"""Run configs for ``mprnet train``: the official recipe per task, overridable key by key.

A run config is YAML (or a dict) with a required ``task`` and ``data.train``; every other key
defaults to the official recipe of that task (``recipes.json``, from the authors' ``train.py``
and ``training.yml``) and is checked against ``run_config.schema.json``. Sections:

``task``
    ``deblurring`` | ``deraining`` | ``denoising``: picks the model preset and the recipe.
``seed`` (1234)
    Seeds model initialisation and every random draw of the data pipeline.
``model.overrides`` ({})
    Keyword arguments for ``mprnet.model.build_model(task, **overrides)``, e.g. a tiny width.
``model.init_weights`` (null)
    Weights to start from (our checkpoint or an official ``.pth``); must fit the model exactly.
``data``
    ``train`` and optional ``val``: prepared folders ``<dir>/{input,target}/<stem>.png``.
    ``patch_size`` (256; denoising 128), ``val_patch_size`` (centre crop; 256, deraining 128),
    ``batch_size`` (16) is the GLOBAL batch, split evenly over DDP processes, so the same config
    trains the same model on 1 or N GPUs. ``geometric_aug`` (the official 8 flips/rotations,
    identity drawn 2/9 of the time), ``color_aug`` (deblurring only: saturation jitter in
    (0.8, 1.2] with probability 1/3), ``pad_small`` (false: images smaller than the patch are an
    error; true: reflect-pad them on the bottom/right as the official loader does), ``verify``
    (true: check every pair's files, sizes and PNG checksums before training starts),
    ``val_max_images`` (null = all).
``optim``
    Adam ``lr`` 2e-4, ``betas`` [0.9, 0.999], ``eps`` 1e-8, ``weight_decay`` (0; denoising 1e-8).
``schedule``
    ``unit`` ``epoch`` (official; lr constant within an epoch) or ``iteration``; ``length``
    (3000 / 250 / 80 epochs); ``warmup`` (3 units); ``t_max`` (null = length - warmup +
    ``t_max_offset``; the official denoising offset is 40). See ``schedule.py``.
``loss``
    ``edge_weight`` (0.05; denoising 0), ``clamp_outputs`` (denoising true) and the Charbonnier
    ``eps`` (1e-3, official; of both the Charbonnier and the edge term) of ``StageLoss``. A larger
    ``eps`` (e.g. 0.1) makes the loss quadratic for residuals below it: on short CPU budgets it
    learns sparse residuals such as rain streaks far sooner (``benchmarks/gain_curve.py``).
``mixup``
    Denoising: ``enabled`` from epoch ``start_epoch`` (6) with Beta(``alpha``=0.6, 0.6) per sample.
``train``
    ``amp`` ``none`` | ``bf16`` | ``fp16`` (autocast; fp16 adds a GradScaler) | ``auto`` (bf16 where
    the device computes it natively, fp32 elsewhere: ``mprnet.precision``; a resumed run keeps the
    precision it started in; ``config.yaml`` records the result), ``channels_last`` (``auto``:
    NHWC, except NCHW for n_feat >= 64 on a CPU below AVX-512, by the rule of ``mprnet.precision``;
    true; false; recorded like ``amp``),
    validation every ``val_every_epochs`` (20 / 5 / 1) or, if set, ``val_every_iterations``.
``runtime``
    Settings that do not change the trained weights and may differ on ``--resume``: ``device``
    (auto | cpu | cuda[:N]), ``processes`` (1: processes on this machine, one per GPU, each
    with ``batch_size / processes`` samples; ``mprnet train`` starts them through torch's
    elastic launcher, see ``launch.py``; the weights then differ from one process's only by
    the order of float additions), ``num_workers`` (per process), ``checkpoint_every`` (iterations), ``log_every``,
    ``progress`` (tqdm bar), ``deterministic`` (``torch.use_deterministic_algorithms``).

Relative paths are taken from the working directory. The effective config (all defaults filled
in) is written as ``config.yaml`` next to the checkpoints.
"""

from __future__ import annotations

import copy
import json
import math
import os
from importlib import resources
from typing import Any

from ..atomic import atomic_write_text
from ..errors import ConfigError, one_line
from ..presets import PRESETS
from ..yaml_files import read_yaml_mapping, schema_message

TASKS = tuple(PRESETS)
# Sections a resumed run may change without changing the weights it produces.
RESUME_FREE_SECTIONS = ("runtime",)
# Keys whose value ``auto`` the trainer resolves on the machine (the effective config holds the
# result): ``auto`` matches any value there, so a run resolved to bf16 is still the run asked for.
MACHINE_RESOLVED = {"train.amp": "auto", "train.channels_last": "auto"}


def _package_json(name: str) -> dict:
    return json.loads(resources.files(__package__).joinpath(name).read_text())


def recipe(task: str) -> dict:
    """The official defaults for ``task`` (without ``data.train``)."""
    if task not in TASKS:
        raise ConfigError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    recipes = _package_json("recipes.json")
    merged = deep_merge(recipes["common"], recipes["tasks"][task])
    merged["task"] = task
    return merged


def schema() -> dict:
    return _package_json("run_config.schema.json")


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` laid over it, recursing into dicts (lists are replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "overrides":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML run config (``mprnet.yaml_files``: ``2e-4`` is a number, alias bombs are
    refused); the result still needs ``resolve_config``."""
    return read_yaml_mapping(path, missing="no such config file")


def resolve_config(user: dict) -> dict:
    """Merge ``user`` over its task's recipe, validate it and fill in derived values."""
    import jsonschema

    if "task" not in user:
        raise ConfigError(f"task: missing (one of {', '.join(TASKS)})")
    cfg = deep_merge(recipe(user["task"]), user)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:5]:
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"{key}: {schema_message(err)}")
        raise ConfigError("invalid run config; " + "; ".join(lines))
    check_finite_numbers(cfg)
    sched = cfg["schedule"]
    if sched["t_max"] is None:
        sched["t_max"] = max(1, sched["length"] - sched["warmup"] + sched["t_max_offset"])
    if cfg["data"]["patch_size"] < 8:
        raise ConfigError("data.patch_size: must be at least 8")
    runtime = cfg["runtime"]
    if runtime["processes"] > 1 and runtime["device"].startswith("cuda:"):
        raise ConfigError(f"runtime.device: {runtime['device']} names one GPU, but runtime.processes is "
                          f"{runtime['processes']} (one GPU each): use auto or cuda")
    check_batch_split(cfg["data"]["batch_size"], runtime["processes"], "runtime.processes")
    if cfg["train"]["amp"] == "fp16" and runtime["device"] == "cpu":
        raise ConfigError("train.amp: fp16 autocast needs a GPU, but runtime.device is cpu (use auto, bf16 or none)")
    return cfg


def check_batch_split(batch_size: int, processes: int, what: str) -> None:
    """``data.batch_size`` is the global batch, shared out evenly: it must divide by the number
    of processes (``what`` says where that number comes from). Raises ``ConfigError``."""
    if batch_size % processes:
        raise ConfigError(f"data.batch_size: {batch_size} does not divide evenly over the {processes} processes "
                          f"of {what} (the global batch is shared out; make it a multiple of {processes})")


def check_gpus_per_process(processes: int, device: str) -> None:
    """Refuse (``ConfigError`` naming ``runtime.processes``) more training processes on this machine
    than it has visible GPUs, when they train on CUDA (``device`` ``cuda``, or ``auto`` with CUDA
    available): each process takes the GPU of its local rank, and NCCL cannot share one GPU
    between processes. Without this check, rank 1 of 2 on a one-GPU machine dies in
    ``torch.cuda.set_device`` with "invalid device ordinal" (seen on an H200, issue 22)."""
    if processes <= 1 or device == "cpu" or device.startswith("cuda:"):
        return
    import torch

    if device == "auto" and not torch.cuda.is_available():
        return  # auto trains on the CPU here: gloo, any number of processes
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if processes > gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise ConfigError(f"runtime.processes: {processes} processes train on one GPU each, but {gpus} "
                          f"GPU{'' if gpus == 1 else 's'} {'is' if gpus == 1 else 'are'} visible here{where}; "
                          f"NCCL cannot share a GPU between processes: set runtime.processes to at most "
                          f"{max(gpus, 1)}, or runtime.device: cpu")


def check_finite_numbers(value: Any, key: str = "") -> None:
    """Raise ``ConfigError`` naming the key of a NaN or infinite number (YAML's ``.nan``,
    ``.inf``): no setting of a run is meant to be one, and the schema's bounds let ``.inf`` pass."""
    if isinstance(value, dict):
        for name, item in value.items():
            check_finite_numbers(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_finite_numbers(item, f"{key}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: {value} is not a finite number")


def recipe_sections() -> tuple[str, ...]:
    """The sections of a run config a study's ``recipe`` may set: the schema's mappings less
    ``model`` (a study sets the model with its own ``model`` and ablation switches)."""
    return tuple(k for k, v in schema()["properties"].items() if v.get("type") == "object" and k != "model")


def check_recipe_sections(recipe: Any, key: str) -> None:
    """Raise ``ConfigError`` naming ``key`` (a study config key) unless ``recipe`` maps known
    sections to mappings of settings (``recipe_sections``): the shape every later merge relies on."""
    sections = recipe_sections()
    if not isinstance(recipe, dict):
        raise ConfigError(f"config key {key}: expected a mapping of sections ({', '.join(sections)}), "
                          f"got {one_line(repr(recipe), 80)}")
    for name, value in recipe.items():
        if name not in sections:
            raise ConfigError(f"config key {key}.{name}: unknown key (a recipe sets {', '.join(sections)})")
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key}.{name}: expected a mapping of {name} settings, "
                              f"got {one_line(repr(value), 80)}")


def launch_needs(resolved: dict) -> dict[str, int]:
    """What a job training ``resolved`` (a run config after ``resolve_config``) asks of its
    machine: ``processes`` (``runtime.processes``) and ``gpus`` (one per process, 0 when
    ``runtime.device`` is ``cpu``)."""
    runtime = resolved["runtime"]
    processes = int(runtime["processes"])
    return {"processes": processes, "gpus": 0 if runtime["device"] == "cpu" else processes}


def validates(resolved: dict) -> bool:
    """Whether a run of ``resolved`` (a run config after ``resolve_config``) validates, and so
    writes ``model_best.pt`` beside ``model_final.pt``: ``data.val`` is set and so is
    ``train.val_every_iterations`` or ``train.val_every_epochs``. The trainer's rule
    (``Trainer._after_iteration``: it validates every ``val_every`` iterations and at the last
    one, keeping the checkpoint of the best validation PSNR, as the official ``train.py`` keeps
    ``model_best.pth``); ``tests/test_training.py`` holds the two to each other."""
    train = resolved["train"]
    return bool(resolved["data"].get("val")) and bool(train["val_every_iterations"] or train["val_every_epochs"])


def config_differences(old: dict, new: dict, ignore: tuple[str, ...] = RESUME_FREE_SECTIONS) -> list[str]:
    """Dotted keys whose values differ between two resolved configs (``ignore``d sections skipped)."""
    diffs: list[str] = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                dotted = f"{prefix}.{key}" if prefix else key
                if not prefix and key in ignore:
                    continue
                walk(a.get(key), b.get(key), dotted)
        elif prefix in MACHINE_RESOLVED and MACHINE_RESOLVED[prefix] in (a, b):
            return
        elif _normal(a) != _normal(b):
            diffs.append(f"{prefix} ({a!r} -> {b!r})")

    walk(old, new, "")
    return diffs


def _normal(value: Any) -> Any:
    # YAML/JSON round trips turn tuples into lists and 1.0 into 1.
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def dump_config(cfg: dict, path: str | os.PathLike) -> None:
    """Write the effective config as YAML, atomically."""
    import yaml

    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))
