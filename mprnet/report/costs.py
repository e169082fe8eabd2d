"""What a model costs: parameters, GFLOPs at 256×256, and hours from Snakemake benchmark files.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (torch ≥ 2.1), which
counts 2 FLOPs per multiply-add of matmuls and convolutions and ignores element-wise ops;
papers quoting "GMACs" (NAFNet's table lists MPRNet at 588 GMACs) use half of this number.
The forward pass runs on the ``meta`` device: shapes only, no arithmetic, so even the full
deblurring model (20.1 M parameters, ~1.5 TFLOPs at 256×256) is counted in about a second.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import pandas as pd

from ..errors import ConfigError

FLOP_SIZE = (256, 256)


def count_parameters(model) -> int:
    """Unique parameters (``Module.parameters`` already counts a shared tensor once: MPRNet's
    single PReLU weight is aliased 55 times in its state dict)."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model, size: tuple[int, int] = FLOP_SIZE, *, in_channels: int = 3) -> int:
    """FLOPs of one forward pass on a 1×C×H×W input; the model must live on the ``meta`` or CPU device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = next(iter(model.parameters())).device if any(True for _ in model.parameters()) else torch.device("cpu")
    x = torch.zeros(1, in_channels, *size, device=device)
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def model_costs(preset: str, overrides: Mapping[str, Any] | None = None, size: tuple[int, int] = FLOP_SIZE) -> dict:
    """Parameters and GFLOPs of ``build_model(preset, **overrides)``, built on the meta device."""
    import torch

    from ..model import build_model

    overrides = dict(overrides or {})
    try:
        with torch.device("meta"):
            model = build_model(preset, **overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model with preset {preset!r} and overrides {overrides}: {exc}") from None
    flops = count_flops(model, size, in_channels=getattr(model, "in_c", 3))
    return {"params": count_parameters(model), "gflops": flops / 1e9, "flop_height": size[0], "flop_width": size[1]}


def model_costs_table(specs: Iterable[Mapping[str, Any]], size: tuple[int, int] = FLOP_SIZE) -> pd.DataFrame:
    """One row per spec ``{"task", "method", "preset" (default: the task), "model": {overrides}}``.

    ``group`` (main/ablation) is carried through when given, as both groups have a ``full``.
    """
    rows = []
    for i, spec in enumerate(specs):
        for key in ("task", "method"):
            if key not in spec:
                raise ConfigError(f"model-cost spec #{i}: missing key {key!r}")
        model = spec.get("model") or {}
        if not isinstance(model, Mapping):
            raise ConfigError(f"model-cost spec #{i} ({spec['method']}): 'model' must be a mapping of constructor overrides")
        rows.append({"task": spec["task"], "method": spec["method"], "group": spec.get("group", ""),
                     **model_costs(spec.get("preset", spec["task"]), model, size)})
    return pd.DataFrame(rows, columns=["task", "method", "group", "params", "gflops", "flop_height", "flop_width"])
