"""Reading the study's YAML files (registry, run configs, schemas) with errors that name the file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError


def read_yaml_mapping(
    path: str | os.PathLike,
    *,
    missing: str = "no such file",
    parse: Callable[[str], Any] | None = None,
) -> dict:
    """The top-level mapping of a YAML file; ``parse`` replaces ``yaml.safe_load`` (e.g. a loader
    that reads ``5e-4`` as a number). A missing file, bad YAML or another top-level type is a
    ConfigError naming the file; ``missing`` says what to do about a missing one."""
    import yaml

    path = Path(path)
    try:
        data = (parse or yaml.safe_load)(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
