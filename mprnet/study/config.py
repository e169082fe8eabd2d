"""The study config: one validated description of every run, shared by the Snakefile and commands.

A config file names its study (``study: paper``) and holds that study in the section of the same
name. Snakemake merges ``--configfile`` over the Snakefile's default config, so two studies can
meet in one merged dict; only the selected section is read, so nothing of one study leaks into
the other. The section's shape is ``workflow/schemas/config.schema.yaml``; on top of the schema,
:func:`load_study` checks what a schema cannot (datasets in the registry, possible ablation
switches, recipes accepted by the trainer) and raises :class:`ConfigError` naming the key.

Runs are identified by ``<group>/<task>/<variant>/seed<seed>``: group ``main`` holds one model per
task (variant ``full``), group ``ablation`` the variants of ``ablations:``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..data.registry import load_registry
from ..errors import ConfigError
from ..presets import PRESETS
from ..restore import DEFAULT_OVERLAP, check_tiling
from ..training.config import check_recipe_sections
from ..yaml_files import check_size, numbers_as_read, read_yaml_mapping, schema_message
from .study import MAIN_VARIANT, DatasetRef, Run, Study, TestSet, canonical

DEMO_DATASETS = {"demo_rain": "deraining", "demo_blur": "deblurring", "demo_noise": "denoising"}
DEMO_SPLITS = ("train", "test")
DEFAULT_SEED = 1234  # the official train.py seed


def _key(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p != "")


def _schema_errors(instance: dict, schema: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [message for err in errors for message in _messages(err)]


# A oneOf alternative failing one of these at its own top is not the form the user meant.
_SHAPE_VALIDATORS = ("required", "not", "type")


def _messages(err) -> list[str]:
    """``config key <dotted key>: <what is wrong>`` for one schema error. For a ``oneOf`` (a value
    that may take one of several forms) the errors of the form the user meant are reported: the
    alternatives whose shape fits, and of those the one whose errors lie deepest."""
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        if extra and err.schema.get("additionalProperties") is False:
            return [f"config key {_key(*path, k)}: unknown key" for k in extra]
    if err.validator == "oneOf" and err.context:
        branches: dict[int, list] = {}
        for sub in err.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [subs for subs in branches.values()
                 if not any(e.validator in _SHAPE_VALIDATORS and not e.relative_path for e in subs)]
        if meant:
            best = max(meant, key=lambda subs: max(len(e.relative_path) for e in subs))
            return [m for sub in sorted(best, key=lambda e: list(e.absolute_path)) for m in _messages(sub)]
        closest = min(err.context, key=lambda e: (len(e.absolute_path), e.message))
        return [f"config key {_key(*closest.absolute_path) or '(top level)'}: {schema_message(closest)}"]
    return [f"config key {_key(*path) or '(top level)'}: {schema_message(err)}"]


def _dataset_ref(value: str, default_split: str) -> DatasetRef:
    name, _, split = value.partition("/")
    return DatasetRef(name, split or default_split)


def _effective_switches(switches: dict) -> tuple:
    stages = switches.get("num_stages", 3)
    if stages == 1:
        return (1,)
    return (stages, switches.get("sam", True), switches.get("csff", True))


def select_section(config: dict, schema: dict) -> tuple[str, dict]:
    """The selected study's name and section, after schema validation of that section only."""
    if not isinstance(config, dict) or not config:
        raise ConfigError("config: empty; give a study config with --configfile (e.g. config/demo.yaml)")
    name = config.get("study")
    if not isinstance(name, str):
        raise ConfigError("config key study: missing; it names the section that holds the study")
    if name not in config:
        raise ConfigError(f"config key study: {name!r} has no section {name}: in the config")
    check_size(config[name], f"config key {name}")  # before anything walks it (alias bombs)
    selected = {"study": name, name: config[name]}
    errors = _schema_errors(selected, schema)
    if errors:
        raise ConfigError("; ".join(errors[:8]))
    return name, copy.deepcopy(config[name])


class _Datasets:
    """The datasets a study may name: the demo sets, or the registry's."""

    def __init__(self, name: str, data: dict, root: str | Path):
        self.source, self.registry = data["source"], data.get("registry", "config/datasets.yaml")
        if self.source == "demo":
            self.known = set(DEMO_DATASETS)
            return
        registry_path = Path(root, self.registry)
        if not registry_path.exists():
            raise ConfigError(f"config key {name}.data.registry: {self.registry} does not exist")
        self.known = set(load_registry(registry_path).datasets)

    def check(self, ref: DatasetRef, key: str) -> DatasetRef:
        if ref.name not in self.known:
            where = "the demo sets" if self.source == "demo" else f"the registry {self.registry}"
            raise ConfigError(f"config key {key}: dataset {ref.name!r} is not in {where} "
                              f"(known: {', '.join(sorted(self.known))})")
        if self.source == "demo" and ref.split not in DEMO_SPLITS:
            raise ConfigError(f"config key {key}: demo sets have splits {DEMO_SPLITS}, not {ref.split!r}")
        return ref


def snakemake_config_files(workflow) -> list[Path]:
    """The config files a Snakemake ``workflow`` merged into its ``config``, in its order: the
    Snakefile's ``configfile:``, then the ``--configfile`` files."""
    given = [Path(f) for f in workflow.config_settings.configfiles]
    absolute = {f.absolute() for f in given}
    return [Path(f) for f in workflow.configfiles if Path(f).absolute() not in absolute] + given


def numbers_as_written(config: dict, config_files: list[str | Path]) -> dict:
    """``config`` with the study's one reading of numbers (:mod:`mprnet.yaml_files`): Snakemake
    reads YAML 1.1, where ``1e-05`` or ``2e-4`` written unquoted stay strings. ``config_files``
    (in merge order, ``snakemake_config_files``) are read again with the study's reader, and
    where Snakemake holds the text of a number the study reads there, the number is taken."""
    from ..training.config import deep_merge

    reread: dict = {}
    for path in config_files:
        reread = deep_merge(reread, read_yaml_mapping(path))
    return numbers_as_read(config, reread)


def load_study(config: dict, schema_path: str | Path, root: str | Path = ".",
               config_files: list[str | Path] = ()) -> Study:
    """Validate the merged Snakemake ``config`` and resolve every run of the selected study.

    ``root`` is where relative paths of the config (registry, data root, published numbers) are
    taken from; ``config_files``, the files Snakemake read ``config`` from (``numbers_as_written``).
    Raises :class:`ConfigError` naming the key at fault.
    """
    if config_files:
        config = numbers_as_written(config, config_files)
    name, section = select_section(config, read_yaml_mapping(schema_path))
    datasets = _Datasets(name, section["data"], root)
    tasks, test_sets, runs = {}, {}, []
    for task, spec in section["tasks"].items():
        tasks[task], test_sets[task], task_runs = _task_runs(name, task, spec, datasets)
        runs += task_runs
    if section.get("ablations"):
        runs += _ablation_runs(name, section["ablations"], tasks, test_sets, datasets)
    section["published"] = _published(name, section.get("published", {}), root, test_sets)
    _check_task_sections(name, section, test_sets)
    study = Study(name, section, section["data"].get("root", "data"), datasets.source, datasets.registry,
                  tasks, test_sets, runs)
    for run in runs:  # the trainer's own checks, once, before any job starts
        try:
            run.config = canonical(run_config(study, run))
        except ConfigError as exc:
            where = f"{name}.ablations.recipe" if run.group == "ablation" else f"{name}.tasks.{run.task}.recipe"
            raise ConfigError(f"config key {where} (run {run.key}): {exc}") from None
    return study


def _published(name: str, published: dict, root: str | Path, test_sets: dict) -> dict:
    """The paper's numbers: ``{file, tables}`` (the named table of the paper's results file for each
    task; the paper's other test sets may be there too) or given inline (only the study's test sets
    and ``Average``). Raises ConfigError naming the key of an unknown task, set or table."""
    key = f"{name}.published"
    if "file" not in published:
        for task, sets in published.items():
            _check_task(f"{key}.{task}", task, test_sets)
            for ds in sets:
                if ds != "Average":
                    _check_test_set(f"{key}.{task}.{ds}", task, ds, test_sets)
        return published
    path = Path(root, published["file"])
    try:
        results = read_yaml_mapping(path).get("results") or {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config key {key}.file: {exc}") from None
    numbers = {}
    for task, table in published["tables"].items():
        _check_task(f"{key}.tables.{task}", task, test_sets)
        if not isinstance(results.get(table), dict):
            raise ConfigError(f"config key {key}.tables.{task}: {path} has no table {table!r} under "
                              f"results: (tables: {', '.join(sorted(k for k, v in results.items() if isinstance(v, dict))) or 'none'})")
        numbers[task] = {ds: scores for ds, scores in results[table].items() if isinstance(scores, dict)}
    return numbers


def _check_task(key: str, task: str, test_sets: dict) -> None:
    if task not in test_sets:
        raise ConfigError(f"config key {key}: not one of the study's tasks ({', '.join(test_sets)})")


def _check_test_set(key: str, task: str, dataset: str, test_sets: dict) -> None:
    if dataset not in test_sets[task]:
        raise ConfigError(f"config key {key}: not a test set of task {task!r} ({', '.join(test_sets[task])})")


def _task_runs(name: str, task: str, spec: dict, datasets: _Datasets):
    """A task's resolved spec, its test sets and its main runs (one per seed)."""
    key = _key(name, "tasks", task)
    preset = spec.get("preset", task)
    if preset not in PRESETS:
        reason = f"{preset!r} is not a preset" if "preset" in spec else f"needed because {task!r} is not a preset name"
        raise ConfigError(f"config key {key}.preset: {reason} ({', '.join(PRESETS)})")
    train_set = datasets.check(_dataset_ref(spec["train_set"], "train"), f"{key}.train_set")
    val_set = datasets.check(_dataset_ref(spec["val_set"], "test"), f"{key}.val_set") if spec.get("val_set") else None
    sets = {}
    for ds, test in spec["test_sets"].items():
        test = {"protocol": test} if isinstance(test, str) else test
        sets[ds] = TestSet(ds, test.get("split", "test"), test["protocol"])
        datasets.check(DatasetRef(ds, sets[ds].split), f"{key}.test_sets.{ds}")
    check_recipe_sections(spec.get("recipe", {}), f"{key}.recipe")
    restore = spec.get("restore", {})
    if restore.get("tile"):
        check_tiling(restore["tile"], restore.get("overlap", DEFAULT_OVERLAP), f"config key {key}.restore.tile",
                     f"config key {key}.restore.overlap")
    runs = [Run("main", task, MAIN_VARIANT, seed, preset, train_set, val_set, dict(spec.get("model", {})),
                copy.deepcopy(spec.get("recipe", {})), list(sets.values()))
            for seed in spec.get("seeds", [DEFAULT_SEED])]
    return dict(spec, preset=preset), sets, runs


def _ablation_runs(name: str, abl: dict, tasks: dict, test_sets: dict, datasets: _Datasets) -> list[Run]:
    """The runs of ``ablations:``: one per (variant, seed), on the ablated task's data."""
    from ..training.config import deep_merge

    key = _key(name, "ablations")
    task = abl["task"]
    if task not in tasks:
        raise ConfigError(f"config key {key}.task: {task!r} is not one of the study's tasks ({', '.join(tasks)})")
    spec = tasks[task]
    train_set = datasets.check(_dataset_ref(abl.get("train_set") or spec["train_set"], "train"), f"{key}.train_set")
    val_set = _dataset_ref(spec["val_set"], "test") if spec.get("val_set") else None
    chosen = abl.get("test_sets", list(test_sets[task]))
    for ds in chosen:
        if ds not in test_sets[task]:
            raise ConfigError(f"config key {key}.test_sets: {ds!r} is not a test set of task {task!r} "
                              f"({', '.join(test_sets[task])})")
    reference = abl.get("reference", MAIN_VARIANT)
    if reference not in abl["variants"]:
        raise ConfigError(f"config key {key}.reference: {reference!r} is not one of the variants "
                          f"({', '.join(abl['variants'])})")
    check_recipe_sections(abl.get("recipe", {}), f"{key}.recipe")
    recipe = deep_merge(spec.get("recipe", {}), abl.get("recipe", {}))
    seen: dict[tuple, str] = {}
    runs = []
    for variant, switches in abl["variants"].items():
        _check_switches(f"{key}.variants.{variant}", switches, seen, variant)
        runs += [Run("ablation", task, variant, seed, spec["preset"], train_set, val_set,
                     {**spec.get("model", {}), **switches}, copy.deepcopy(recipe),
                     [test_sets[task][ds] for ds in chosen])
                 for seed in abl.get("seeds", [DEFAULT_SEED])]
    return runs


def _check_switches(key: str, switches: dict, seen: dict[tuple, str], variant: str) -> None:
    """An ablation variant must be possible and differ from every other variant."""
    if switches.get("num_stages", 3) == 1:
        for switch in ("sam", "csff"):
            if switches.get(switch) is False:
                raise ConfigError(f"config key {key}.{switch}: impossible with num_stages 1 "
                                  f"(a single-stage model has no {switch.upper()} to switch off)")
    effective = _effective_switches(switches)
    if effective in seen:
        raise ConfigError(f"config key {key}: the same model as variant {seen[effective]!r}")
    seen[effective] = variant


def _check_task_sections(name: str, section: dict, test_sets: dict) -> None:
    """``pretrained`` and ``released_results`` may name only the study's tasks and test sets."""
    for group in ("pretrained", "released_results"):
        for task, entry in section.get(group, {}).items():
            _check_task(f"{name}.{group}.{task}", task, test_sets)
            if group == "released_results":
                for ds in entry:
                    _check_test_set(f"{name}.{group}.{task}.{ds}", task, ds, test_sets)


def run_config(study: Study, run: Run) -> dict:
    """The ``mprnet train`` config of ``run``, validated by the trainer's own schema.

    Returned unresolved (only what the study sets), so the trainer fills in its recipe defaults.
    """
    from ..training.config import deep_merge, resolve_config

    cfg = deep_merge(run.recipe, {
        "task": run.preset,
        "seed": run.seed,
        "model": {"overrides": dict(run.model)},
    })
    data = dict(cfg.get("data", {}))
    data["train"] = study.data_dir(run.train_set)
    if run.val_set:
        data["val"] = study.data_dir(run.val_set)
    cfg["data"] = data
    resolve_config(cfg)  # raises ConfigError naming the key
    return cfg
