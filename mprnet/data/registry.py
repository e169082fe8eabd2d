"""The dataset registry, ``config/datasets.yaml``, loaded and checked against its JSON schema.

Errors name the file and the key path (``datasets.gopro.layout.converter``), so a typo in the
registry is a one-line fix rather than a traceback from deep inside ``prepare``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..yaml_files import read_yaml_mapping
from .stems import SCHEMES

DEFAULT_REGISTRY = Path("config/datasets.yaml")
MIRROR_ENV = "MPRNET_DATA_MIRROR"


def load_schema() -> dict:
    return json.loads(resources.files("mprnet.data").joinpath("datasets.schema.json").read_text())


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


@dataclass
class Registry:
    path: Path
    sources: dict[str, dict[str, Any]]
    datasets: dict[str, dict[str, Any]]
    mirror: str | None

    @property
    def lock_path(self) -> Path:
        """``datasets.yaml`` -> ``datasets.lock.yaml`` next to it."""
        return self.path.with_name(self.path.stem + ".lock" + self.path.suffix)

    def dataset(self, name: str) -> dict[str, Any]:
        try:
            return self.datasets[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no dataset {name!r}; known: {', '.join(sorted(self.datasets))}"
            ) from None

    def source_ids(self, name: str, splits: list[str] | None = None) -> list[str]:
        """The sources a dataset (or a subset of its splits) needs, in first-use order."""
        layout = self.dataset(name)["layout"]
        chosen = select_splits(self.path, name, layout["splits"], splits)
        ids: list[str] = []
        for split in chosen:
            sid = layout["splits"][split]["source"]
            if sid not in ids:
                ids.append(sid)
        return ids

    def resolve_mirror(self, override: str | None = None) -> str | None:
        return override or os.environ.get(MIRROR_ENV) or self.mirror


def select_splits(path: Path, name: str, splits: dict, wanted: list[str] | None) -> list[str]:
    if not wanted:
        return list(splits)
    unknown = [s for s in wanted if s not in splits]
    if unknown:
        raise ConfigError(f"{path}: dataset {name!r} has no split {', '.join(unknown)}; it has {', '.join(splits)}")
    return list(wanted)


def load_registry(path: str | os.PathLike = DEFAULT_REGISTRY) -> Registry:
    """Read and validate the registry; raise ``ConfigError`` naming the file and key on any problem."""
    import jsonschema

    path = Path(path)
    raw = read_yaml_mapping(path, missing="dataset registry not found (run from the project root or pass --registry)")

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        # The deepest error is usually the most specific one (a wrong enum rather than "oneOf failed").
        best = jsonschema.exceptions.best_match(errors)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"{path}: {_key_path(best.absolute_path)}: {best.message}{more}")

    sources = raw["sources"]
    datasets = raw["datasets"]
    for name, entry in datasets.items():
        for split, spec in entry["layout"]["splits"].items():
            if spec["source"] not in sources:
                raise ConfigError(
                    f"{path}: datasets.{name}.layout.splits.{split}.source: unknown source {spec['source']!r}"
                )
        _check_converter_keys(path, name, entry)
        _check_stem_scheme(path, name, entry)
    return Registry(path=path, sources=sources, datasets=datasets, mirror=raw.get("mirror"))


# Keys each converter understands in a split spec (besides source and count).
CONVERTER_KEYS = {
    "paired_folders": {"input", "target", "pair_by"},
    "gopro": {"input", "target", "pair_by"},
    "hide": {"input", "target", "pair_by"},
    "realblur": {"input", "target", "pair_by", "list"},
    "sidd_blocks": {"noisy", "gt"},
    "sidd_medium_patches": {"patches", "patch_size", "seed"},
    "dnd_crops": set(),
    "copy_files": {"files"},
    "copy_tree": set(),
    "rain_norain": {"folder"},
}


def _check_converter_keys(path: Path, name: str, entry: dict) -> None:
    converter = entry["layout"]["converter"]
    allowed = CONVERTER_KEYS[converter] | {"source", "count"}
    for split, spec in entry["layout"]["splits"].items():
        extra = sorted(set(spec) - allowed)
        if extra:
            raise ConfigError(
                f"{path}: datasets.{name}.layout.splits.{split}: key(s) {', '.join(extra)} "
                f"mean nothing to converter {converter!r} (it reads {', '.join(sorted(allowed))})"
            )


def _check_stem_scheme(path: Path, name: str, entry: dict) -> None:
    stem = entry["layout"].get("stem")
    if stem is not None and stem not in SCHEMES:
        raise ConfigError(f"{path}: datasets.{name}.layout.stem: {stem!r} is not one of {', '.join(SCHEMES)}")
