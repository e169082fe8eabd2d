"""Reading MPRNet weights from checkpoint files, strictly.

Accepted layouts (all read with ``torch.load(path, map_location="cpu", weights_only=True)``, so a
checkpoint can never run code):

* a bare state dict (``torch.save(model.state_dict(), path)``);
* the official release format ``{"state_dict": ..., "epoch": ..., "optimizer": ...}``;
* this project's training checkpoints ``{"model": state_dict, ...}``.

A ``module.`` prefix (``nn.DataParallel``) is stripped. Any problem raises
:class:`~mprnet.errors.CheckpointError` naming the file and listing the offending keys; so do
weights holding NaN or infinite values (:func:`check_finite_weights`): one NaN weight makes every
restored image black, and a checkpoint is only "good" when its own weights are finite.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from mprnet.errors import CheckpointError

WRAPPER_KEYS = ("model", "state_dict")  # ours, then the official release format
PREFIX = "module."
MAX_LISTED = 20


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The plain state dict stored in ``path`` (on CPU), whatever the accepted layout."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc).partition("WeightsUnpickler error:")[2].strip()
        detail = [text.splitlines()[0]] if text else []
        raise CheckpointError(
            f"checkpoint {path} is not a weights-only torch file: torch.load(weights_only=True) refused "
            f"it ({detail[0] if detail else 'not a torch checkpoint'}); a file that pickles a whole "
            "model or other Python objects cannot be loaded safely, save model.state_dict()") from exc
    except Exception as exc:  # empty or truncated file, not a torch file at all, ...
        first = (str(exc).splitlines() or [""])[0][:200]
        raise CheckpointError(f"checkpoint {path} cannot be read by torch.load "
                              f"({type(exc).__name__}: {first or 'empty or truncated file'})") from exc
    return _as_state_dict(obj, str(path))


def _as_state_dict(obj, source: str) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        what = f"a dict with keys {sorted(map(str, obj))[:10]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{source} is not a state dict: it holds {what}, expected tensors by "
                              f"parameter name, or a dict with one under {' or '.join(WRAPPER_KEYS)!r}")
    bad = [str(k) for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad:
        raise CheckpointError(f"{source} is not a state dict: non-tensor entries {_listing(bad)}")
    return {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in obj.items()}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    return shown + (f" ... and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else "")


def _alias_groups(model: nn.Module) -> list[list[str]]:
    """State-dict keys that name one shared tensor (MPRNet's single PReLU sits under 55 keys)."""
    groups: dict[int, list[str]] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def _fill_aliases(model: nn.Module, state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Complete a shared tensor's aliases from the ones present (they are one tensor), refusing
    aliases whose values disagree rather than letting the last one silently win."""
    state = dict(state)
    for keys in _alias_groups(model):
        present = [k for k in keys if k in state]
        if not present:
            continue
        first = state[present[0]]
        clash = [k for k in present[1:] if state[k].shape != first.shape or not torch.equal(state[k], first)]
        if clash:
            raise CheckpointError(f"{source}: keys that share one parameter in the model hold different "
                                  f"values: {present[0]} vs {_listing(clash)}")
        state.update({k: first for k in keys if k not in state})
    return state


def non_finite_tensors(state: Mapping[str, Tensor]) -> list[str]:
    """The keys of the floating-point tensors of ``state`` that hold NaN or infinite values
    (one check on the tensors' device, then the keys only when there are any)."""
    floats = [(k, v) for k, v in state.items() if isinstance(v, Tensor) and v.is_floating_point()]
    if not floats:
        return []
    with torch.no_grad():
        if bool(torch.stack([torch.isfinite(v).all() for _, v in floats]).all()):
            return []
        return [k for k, v in floats if not bool(torch.isfinite(v).all())]


def describe_non_finite(state: Mapping[str, Tensor], keys: list[str]) -> str:
    """``N of M weight tensors hold NaN or infinite values (key: n of size, ...)``."""
    counts = [f"{k}: {int((~torch.isfinite(state[k])).sum())} of {state[k].numel()}" for k in keys[:5]]
    more = f", ... and {len(keys) - 5} more" if len(keys) > 5 else ""
    total = sum(1 for v in state.values() if isinstance(v, Tensor) and v.is_floating_point())
    return f"{len(keys)} of {total} weight tensors hold NaN or infinite values ({', '.join(counts)}{more})"


def check_finite_weights(state: Mapping[str, Tensor], source: str) -> None:
    """Raise ``CheckpointError`` naming ``source`` when a weight of ``state`` is NaN or infinite."""
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(f"{source}: {describe_non_finite(state, bad)}; refused: restored with it, "
                              "images come out NaN (black), and training cannot continue from it")


def load_weights(model: nn.Module, source: str | Path | Mapping[str, Tensor], name: str | None = None) -> nn.Module:
    """Load a checkpoint file or a state dict into ``model`` strictly; returns ``model``.

    Missing keys, unexpected keys, shape mismatches (e.g. a checkpoint of another preset or of
    another ``num_stages``/``sam``/``csff`` setting) and non-finite weights are all refused with
    one CheckpointError, named by the file (or ``name``, e.g. the file a state dict came from).
    """
    if isinstance(source, Mapping):
        name = name or "state dict"
        state = _as_state_dict(source, name)
    else:
        name, state = name or str(source), read_state_dict(source)
    check_finite_weights(state, name)
    state = _fill_aliases(model, state, name)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = [f"{label} ({len(keys)}): {_listing(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
                if keys]
    if problems:
        raise CheckpointError(f"{name} does not fit the model ({type(model).__name__}); "
                              + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model
