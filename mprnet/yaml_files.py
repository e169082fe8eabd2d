"""Reading the study's YAML files (study and run configs, registry, schemas) with one reading of
numbers and errors that name the file.

**Numbers.** PyYAML (and Snakemake, which reads ``--configfile`` with it) follows YAML 1.1, where
a float needs a dot and a signed exponent: ``1e-05`` (what Python's ``repr`` and ``dvc exp run
-S`` write), ``2e-4``, ``1E-5`` or ``.5e3`` would be strings, and a learning rate below 1e-4
could not be set. :func:`parse_yaml` also reads every such form as a number (``FLOAT_FORMS``);
quoted scalars stay strings. Every YAML the study reads goes through it: run configs
(``mprnet train --config``, ``--set``), the study config (:func:`mprnet.study.config.load_study`
re-reads the files Snakemake read, :func:`numbers_as_read`), the registry and the schemas.

**Size.** YAML aliases share one value, so a few hundred bytes of nested aliases stand for
millions of values once anything walks them (a schema error that quotes the value, a copy).
A document whose values, every alias written out, number more than ``MAX_VALUES`` or nest
deeper than ``MAX_DEPTH`` is refused with a ``ConfigError`` naming the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError, one_line

# Floats with an exponent, with or without a dot or an exponent sign (YAML 1.2's core schema;
# YAML 1.1 reads 1e-05 and 2e-4 as strings): 1e-05, 2e-4, 2.0e-4, 1E-5, .5e-3, 1e+16, -3e2.
FLOAT_FORMS = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
MAX_VALUES = 100_000  # the paper's study config has ~400, the registry ~2,000
MAX_DEPTH = 40
MAX_QUOTED = 80  # characters of a value a schema error quotes


def _loader():
    import yaml

    class StudyLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that also reads ``FLOAT_FORMS`` as floats."""

    StudyLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_FORMS, list("-+.0123456789"))
    return StudyLoader


_LOADER = None


def parse_yaml(text: str, source: str = "YAML text") -> Any:
    """``text`` read as YAML with the study's one reading of numbers, checked for size
    (``check_size``); ``source`` names it in errors (a file, ``--set KEY``)."""
    global _LOADER
    import yaml

    if _LOADER is None:
        _LOADER = _loader()
    try:
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    check_size(data, source)
    return data


def check_size(data: Any, source: str) -> None:
    """Raise ``ConfigError`` naming ``source`` if ``data``, every shared (aliased) value counted
    each time it is used, holds more than ``MAX_VALUES`` values or nests deeper than ``MAX_DEPTH``."""
    counted: dict[int, int] = {}

    def count(value: Any, depth: int) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels (or an alias that contains "
                              "itself); not a config of the study")
        if id(value) not in counted:
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            total = 1
            for item in items:
                total += count(item, depth + 1)
                if total > MAX_VALUES:
                    break
            counted[id(value)] = total
        return counted[id(value)]

    total = count(data, 0)
    if total > MAX_VALUES:
        raise ConfigError(f"{source}: more than {MAX_VALUES:,} values once its YAML aliases are expanded "
                          "(nested aliases, a 'billion laughs' document?); not a config of the study")


def schema_message(error) -> str:
    """A jsonschema ``error``'s message with the value it quotes cut to ``MAX_QUOTED``
    characters: ``[0, 1, 2, ... (338,890 characters)] is not of type 'number'``."""
    message = error.message
    quoted = repr(error.instance)
    if len(quoted) > MAX_QUOTED and quoted in message:
        message = message.replace(quoted, f"{quoted[:MAX_QUOTED - 20]} ... ({len(quoted):,} characters)")
    return one_line(message, 2 * MAX_QUOTED + 200)


def read_yaml_mapping(
    path: str | os.PathLike,
    *,
    missing: str = "no such file",
    parse: Callable[[str, str], Any] | None = None,
) -> dict:
    """The top-level mapping of a YAML file, read by :func:`parse_yaml` (or ``parse(text,
    source)``). A missing file, bad or oversized YAML or another top-level type is a
    ConfigError naming the file; ``missing`` says what to do about a missing one."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    data = (parse or parse_yaml)(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def numbers_as_read(value: Any, reread: Any) -> Any:
    """``value`` (a config another YAML reader produced, e.g. Snakemake's) with each string
    replaced by the number :func:`parse_yaml` read at the same key from the same text
    (``reread``: the same files read again with it). Only strings that are such a number's
    text change (``1e-05`` written unquoted); quoted strings and values set elsewhere (e.g.
    Snakemake's ``--config``) stay as they are."""
    if isinstance(value, dict) and isinstance(reread, dict):
        return {k: numbers_as_read(v, reread.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(reread, list) and len(value) == len(reread):
        return [numbers_as_read(v, r) for v, r in zip(value, reread)]
    if (isinstance(value, str) and isinstance(reread, float) and not isinstance(reread, bool)
            and FLOAT_FORMS.match(value) and parse_yaml(value) == reread):
        return reread
    return value
