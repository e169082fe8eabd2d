"""The study config, read once: validated, then turned into the typed records of :mod:`.spec`.

A config file names its study (``study: paper``) and holds that study in the section of the same
name. Snakemake merges ``--configfile`` over the Snakefile's default config, so two studies can
meet in one merged dict; only the selected section is read, so nothing of one study leaks into
the other. The section's shape is ``workflow/schemas/config.schema.yaml``; on top of the schema,
:func:`load_study` checks what a schema cannot (datasets in the registry, possible ablation
switches, recipes accepted by the trainer) and raises :class:`ConfigError` naming the key; it
returns a :class:`~mprnet.study.study.Study`, and nothing after it reads the config's dicts.

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
from ..restore import DEFAULT_OVERLAP, DEFAULT_PRECISION, check_tiling
from ..training.config import check_recipe_sections, deep_merge, resolve_config
from ..vocabulary import ABLATION, MAIN
from ..yaml_files import check_size, numbers_as_read, read_yaml_mapping, schema_message
from . import layout
from .spec import (Ablation, DataSettings, DatasetRef, ReportSettings, RestoreSettings, Run, Task, TestSet, canonical,
                   run_key)
from .study import MAIN_VARIANT, Study

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

    def __init__(self, name: str, data: DataSettings, root: str | Path):
        self.source, self.registry = data.source, data.registry
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
    reread: dict = {}
    for path in config_files:
        reread = deep_merge(reread, read_yaml_mapping(path))
    return numbers_as_read(config, reread)


def load_study(config: dict, schema_path: str | Path, root: str | Path = ".",
               config_files: list[str | Path] = ()) -> Study:
    """Validate the merged Snakemake ``config`` and turn the selected study into a :class:`Study`.

    ``root`` is where relative paths of the config (registry, data root, published numbers) are
    taken from; ``config_files``, the files Snakemake read ``config`` from (``numbers_as_written``).
    Every run config is resolved here, once, by the trainer's own rules. Raises
    :class:`ConfigError` naming the key at fault.
    """
    if config_files:
        config = numbers_as_written(config, config_files)
    name, section = select_section(config, read_yaml_mapping(schema_path))
    data = _data_settings(section["data"])
    datasets = _Datasets(name, data, root)
    tasks = {task: _task(name, task, spec, datasets) for task, spec in section["tasks"].items()}
    ablation = _ablation(name, section["ablations"], tasks, datasets) if section.get("ablations") else None
    test_sets = {task: spec.test_sets for task, spec in tasks.items()}
    section["published"] = _published(name, section.get("published", {}), root, test_sets)
    _check_task_sections(name, section, test_sets)
    runs = [_run(name, MAIN, spec, MAIN_VARIANT, seed, spec.train_set, spec.model, spec.recipe,
                 tuple(spec.test_sets.values()), data) for spec in tasks.values() for seed in spec.seeds]
    if ablation:
        spec = tasks[ablation.task]
        runs += [_run(name, ABLATION, spec, variant, seed, ablation.train_set, {**spec.model, **switches},
                      ablation.recipe, tuple(spec.test_sets[ds] for ds in ablation.test_sets), data)
                 for variant, switches in ablation.variants.items() for seed in ablation.seeds]
    report = ReportSettings.from_section(section.get("report"))
    if report.tile_check_tile:
        check_tiling(report.tile_check_tile, report.tile_check_overlap, f"config key {name}.report.tile_check_tile",
                     f"config key {name}.report.tile_check_overlap")
    return Study(
        name=name, description=section.get("description", ""), data=data, tasks=tasks, ablation=ablation,
        pretrained={task: entry["checkpoint"] for task, entry in section.get("pretrained", {}).items()},
        released_results={task: dict(sets) for task, sets in section.get("released_results", {}).items()},
        published=section["published"], report=report, runs=tuple(runs), section=section)


def _data_settings(data: dict) -> DataSettings:
    return DataSettings(data["source"], data.get("root", "data"), data.get("registry", "config/datasets.yaml"),
                        data.get("demo_seed", 0))


def _run(name: str, group: str, task: Task, variant: str, seed: int, train_set: DatasetRef, model: dict,
         recipe: dict, test_sets: tuple[TestSet, ...], data: DataSettings) -> Run:
    """A run with its ``mprnet train`` config, checked and resolved by the trainer's own rules, once,
    before any job starts (ConfigError naming the recipe's key)."""
    config = canonical(run_config(recipe, task.preset, seed, model, train_set, task.val_set, data.root))
    try:
        resolved = resolve_config(config)
    except ConfigError as exc:
        where = f"{name}.ablations.recipe" if group == ABLATION else f"{name}.tasks.{task.name}.recipe"
        raise ConfigError(f"config key {where} (run {run_key(group, task.name, variant, seed)}): {exc}") from None
    return Run(group, task.name, variant, seed, task.preset, train_set, task.val_set, dict(model), test_sets,
               config, resolved)


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


def _task(name: str, task: str, spec: dict, datasets: _Datasets) -> Task:
    """A task's typed record: preset, data, test sets, seeds, model, recipe and restore settings."""
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
    settings = RestoreSettings(tile=restore.get("tile") or None, overlap=restore.get("overlap", DEFAULT_OVERLAP),
                               save_stages=bool(restore.get("save_stages")),
                               precision=restore.get("precision", DEFAULT_PRECISION))
    if settings.tile:
        check_tiling(settings.tile, settings.overlap, f"config key {key}.restore.tile",
                     f"config key {key}.restore.overlap")
    return Task(task, preset, train_set, val_set, sets, tuple(spec.get("seeds", [DEFAULT_SEED])),
                dict(spec.get("model", {})), copy.deepcopy(spec.get("recipe", {})), settings)


def _ablation(name: str, abl: dict, tasks: dict[str, Task], datasets: _Datasets) -> Ablation:
    """The typed ``ablations:``: one task's variants, checked (possible and distinct switches)."""
    key = _key(name, "ablations")
    task = abl["task"]
    if task not in tasks:
        raise ConfigError(f"config key {key}.task: {task!r} is not one of the study's tasks ({', '.join(tasks)})")
    spec = tasks[task]
    train_set = datasets.check(_dataset_ref(abl["train_set"], "train"), f"{key}.train_set") \
        if abl.get("train_set") else spec.train_set
    chosen = abl.get("test_sets", list(spec.test_sets))
    for ds in chosen:
        if ds not in spec.test_sets:
            raise ConfigError(f"config key {key}.test_sets: {ds!r} is not a test set of task {task!r} "
                              f"({', '.join(spec.test_sets)})")
    reference = abl.get("reference", MAIN_VARIANT)
    if reference not in abl["variants"]:
        raise ConfigError(f"config key {key}.reference: {reference!r} is not one of the variants "
                          f"({', '.join(abl['variants'])})")
    check_recipe_sections(abl.get("recipe", {}), f"{key}.recipe")
    seen: dict[tuple, str] = {}
    for variant, switches in abl["variants"].items():
        _check_switches(f"{key}.variants.{variant}", switches, seen, variant)
    return Ablation(task, train_set, spec.val_set, tuple(chosen), tuple(abl.get("seeds", [DEFAULT_SEED])),
                    reference, {v: dict(s) for v, s in abl["variants"].items()},
                    deep_merge(spec.recipe, abl.get("recipe", {})))


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


def run_config(recipe: dict, preset: str, seed: int, model: dict, train_set: DatasetRef,
               val_set: DatasetRef | None, data_root: str) -> dict:
    """The ``mprnet train`` config of a run: ``recipe`` with the task's preset, the seed, the model's
    constructor overrides and the prepared data folders (``layout.DATA_DIR``). Unresolved (only what
    the study sets), so the trainer fills in its recipe defaults."""
    cfg = deep_merge(recipe, {"task": preset, "seed": seed, "model": {"overrides": dict(model)}})
    data = dict(cfg.get("data", {}))
    data["train"] = layout.DATA_DIR.format(root=data_root, dataset=train_set.name, split=train_set.split)
    if val_set:
        data["val"] = layout.DATA_DIR.format(root=data_root, dataset=val_set.name, split=val_set.split)
    cfg["data"] = data
    return cfg
