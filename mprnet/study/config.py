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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.registry import load_registry
from ..errors import ConfigError
from ..yaml_files import read_yaml_mapping

PRESETS = ("deblurring", "deraining", "denoising")
DEMO_DATASETS = {"demo_rain": "deraining", "demo_blur": "deblurring", "demo_noise": "denoising"}
DEMO_SPLITS = ("train", "test")
MAIN_VARIANT = "full"
DEFAULT_SEED = 1234  # the official train.py seed


@dataclass(frozen=True)
class DatasetRef:
    name: str
    split: str

    @property
    def path(self) -> str:
        """Folder relative to the data root: ``<name>/<split>``."""
        return f"{self.name}/{self.split}"


@dataclass(frozen=True)
class TestSet:
    name: str
    split: str
    protocol: str  # y_channel | rgb | realblur | sidd | dnd (no ground truth: submission bundle)

    @property
    def scored(self) -> bool:
        return self.protocol != "dnd"


@dataclass
class Run:
    group: str
    task: str
    variant: str
    seed: int
    preset: str
    train_set: DatasetRef
    val_set: DatasetRef | None
    model: dict
    recipe: dict
    test_sets: list[TestSet]

    @property
    def key(self) -> str:
        return f"{self.group}/{self.task}/{self.variant}/seed{self.seed}"


@dataclass
class Study:
    name: str
    section: dict
    data_root: str
    source: str
    registry: str
    tasks: dict[str, dict]
    test_sets: dict[str, dict[str, TestSet]]  # task -> name -> test set
    runs: list[Run] = field(default_factory=list)

    def run(self, group: str, task: str, variant: str, seed: int | str) -> Run:
        key = f"{group}/{task}/{variant}/seed{seed}"
        for run in self.runs:
            if run.key == key:
                return run
        raise KeyError(f"no run {key} in study {self.name}")

    def datasets(self) -> set[str]:
        names = {r.train_set.name for r in self.runs} | {r.val_set.name for r in self.runs if r.val_set}
        names |= {t.name for sets in self.test_sets.values() for t in sets.values()}
        return names

    def data_dir(self, ref: DatasetRef | TestSet) -> str:
        return f"{self.data_root}/{ref.name}/{ref.split}"


def _key(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p != "")


def _schema_errors(instance: dict, schema: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    messages = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            extra = [k for k in err.instance if k not in allowed]
            if extra and err.schema.get("additionalProperties") is False:
                messages += [f"config key {_key(*path, k)}: unknown key" for k in extra]
                continue
        if err.validator == "oneOf" and err.context:
            # Report the closest alternative, not "is not valid under any of the given schemas".
            best = min(err.context, key=lambda e: (len(e.absolute_path), e.message))
            path, message = list(best.absolute_path), best.message
        else:
            message = err.message
        messages.append(f"config key {_key(*path) or '(top level)'}: {message}")
    return messages


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
    selected = {"study": name, name: config[name]}
    errors = _schema_errors(selected, schema)
    if errors:
        raise ConfigError("; ".join(errors[:8]))
    return name, copy.deepcopy(config[name])


def load_study(config: dict, schema_path: str | Path, root: str | Path = ".") -> Study:
    """Validate the merged Snakemake ``config`` and resolve every run of the selected study.

    ``root`` is where relative paths of the config (registry, data root) are taken from.
    """
    schema = read_yaml_mapping(schema_path)
    name, section = select_section(config, schema)
    data = section["data"]
    source = data["source"]
    data_root = data.get("root", "data")
    registry = data.get("registry", "config/datasets.yaml")
    known: set[str]
    if source == "demo":
        known = set(DEMO_DATASETS)
    else:
        registry_path = Path(root, registry)
        if not registry_path.exists():
            raise ConfigError(f"config key {name}.data.registry: {registry} does not exist")
        known = set(load_registry(registry_path).datasets)

    def check_dataset(ref: DatasetRef, key: str) -> None:
        if ref.name not in known:
            where = "the demo sets" if source == "demo" else f"the registry {registry}"
            raise ConfigError(
                f"config key {key}: dataset {ref.name!r} is not in {where} "
                f"(known: {', '.join(sorted(known))})"
            )
        if source == "demo" and ref.split not in DEMO_SPLITS:
            raise ConfigError(f"config key {key}: demo sets have splits {DEMO_SPLITS}, not {ref.split!r}")

    tasks: dict[str, dict] = {}
    test_sets: dict[str, dict[str, TestSet]] = {}
    runs: list[Run] = []
    for task, spec in section["tasks"].items():
        key = _key(name, "tasks", task)
        preset = spec.get("preset", task)
        if preset not in PRESETS:
            raise ConfigError(f"config key {key}.preset: needed because {task!r} is not a preset name "
                              f"({', '.join(PRESETS)})")
        train_set = _dataset_ref(spec["train_set"], "train")
        check_dataset(train_set, f"{key}.train_set")
        val_set = _dataset_ref(spec["val_set"], "test") if spec.get("val_set") else None
        if val_set:
            check_dataset(val_set, f"{key}.val_set")
        sets = {}
        for ds, test in spec["test_sets"].items():
            test = {"protocol": test} if isinstance(test, str) else test
            ts = TestSet(ds, test.get("split", "test"), test["protocol"])
            check_dataset(DatasetRef(ts.name, ts.split), f"{key}.test_sets.{ds}")
            sets[ds] = ts
        test_sets[task] = sets
        tasks[task] = dict(spec, preset=preset)
        for seed in spec.get("seeds", [DEFAULT_SEED]):
            runs.append(Run("main", task, MAIN_VARIANT, seed, preset, train_set, val_set,
                            dict(spec.get("model", {})), copy.deepcopy(spec.get("recipe", {})),
                            list(sets.values())))

    abl = section.get("ablations")
    if abl:
        key = _key(name, "ablations")
        task = abl["task"]
        if task not in tasks:
            raise ConfigError(f"config key {key}.task: {task!r} is not one of the study's tasks "
                              f"({', '.join(tasks)})")
        spec = tasks[task]
        train_set = _dataset_ref(abl["train_set"], "train") if abl.get("train_set") else _dataset_ref(spec["train_set"], "train")
        check_dataset(train_set, f"{key}.train_set")
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
        seen: dict[tuple, str] = {}
        from ..training.config import deep_merge

        recipe = deep_merge(spec.get("recipe", {}), abl.get("recipe", {}))
        for variant, switches in abl["variants"].items():
            vkey = f"{key}.variants.{variant}"
            if switches.get("num_stages", 3) == 1:
                for switch in ("sam", "csff"):
                    if switches.get(switch) is False:
                        raise ConfigError(
                            f"config key {vkey}.{switch}: impossible with num_stages 1 "
                            f"(a single-stage model has no {switch.upper()} to switch off)")
            effective = _effective_switches(switches)
            if effective in seen:
                raise ConfigError(f"config key {vkey}: the same model as variant {seen[effective]!r}")
            seen[effective] = variant
            for seed in abl.get("seeds", [DEFAULT_SEED]):
                runs.append(Run("ablation", task, variant, seed, spec["preset"], train_set, val_set,
                                {**spec.get("model", {}), **switches}, copy.deepcopy(recipe),
                                [test_sets[task][ds] for ds in chosen]))

    for group in ("pretrained", "released_results"):
        for task, entry in section.get(group, {}).items():
            if task not in tasks:
                raise ConfigError(f"config key {name}.{group}.{task}: not one of the study's tasks "
                                  f"({', '.join(tasks)})")
            if group == "released_results":
                for ds in entry:
                    if ds not in test_sets[task]:
                        raise ConfigError(f"config key {name}.{group}.{task}.{ds}: not a test set of "
                                          f"task {task!r}")

    study = Study(name, section, data_root, source, registry, tasks, test_sets, runs)
    for run in runs:
        try:
            run_config(study, run)
        except ConfigError as exc:
            where = f"{name}.ablations.recipe" if run.group == "ablation" else f"{name}.tasks.{run.task}.recipe"
            raise ConfigError(f"config key {where} (run {run.key}): {exc}") from None
    return study


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
