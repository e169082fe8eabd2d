"""A validated study: its runs, its test sets and every file it produces.

:func:`mprnet.study.config.load_study` builds a :class:`Study` from a config; the workflow's rules
and input functions ask it for paths and targets, so the results layout
(:mod:`mprnet.study.layout`) is formatted in this one class. Runs are identified by
``<group>/<task>/<variant>/seed<seed>``: group ``main`` holds one model per task (variant
``full``), group ``ablation`` the variants of ``ablations:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from . import layout

MAIN_VARIANT = "full"
DEFAULT_PRECISION = "fp32"  # every scored row unless the study's `restore: {precision: bf16}` says otherwise


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted (lists keep their order): the form of a rule's
    params, which Snakemake compares as text to decide a rerun, so that reordering the keys of
    a config file reruns nothing."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


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
    config: dict = field(default_factory=dict)  # its `mprnet train` config, set by load_study

    @property
    def key(self) -> str:
        return f"{self.group}/{self.task}/{self.variant}/seed{self.seed}"

    @property
    def fields(self) -> dict:
        """The run's identity as the layout's fields (group, task, variant, seed)."""
        return {"group": self.group, "task": self.task, "variant": self.variant, "seed": self.seed}


@dataclass(frozen=True)
class Source:
    """What produced a set of images that is scored: a run, the official weights, the inputs, or
    the authors' released results (``layout.py`` lists the keys)."""

    key: str
    group: str
    task: str
    variant: str | None = None
    seed: int | None = None

    @property
    def method(self) -> str:
        """The method name of summary.csv: the run's variant, else the group (``degraded`` inputs)."""
        if self.group == layout.INPUT:
            return "degraded"
        return self.variant or self.group


@dataclass(frozen=True)
class ReportSettings:
    """The study's optional ``report:`` section, with its defaults."""

    device: str = ""  # label of the cost table's hours, e.g. "GPU"
    visual_images: int = 3  # images per comparison grid
    bootstrap_resamples: int = 10_000  # paired bootstrap of the ablation table and bars
    bootstrap_seed: int = 0

    @classmethod
    def from_section(cls, section: dict | None) -> "ReportSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (section or {}).items() if k in known})


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

    # ------------------------------------------------------------------ runs and sources

    def run(self, group: str, task: str, variant: str, seed: int | str) -> Run:
        key = f"{group}/{task}/{variant}/seed{seed}"
        for run in self.runs:
            if run.key == key:
                return run
        raise ConfigError(f"no run {key} in study {self.name}")

    def source_of(self, key: str) -> Source:
        """The :class:`Source` of a key of the layout (``source`` field); ConfigError if the study
        has no such run, no official weights or no released results for that task."""
        parts = key.split("/")
        if len(parts) == 4 and parts[3].startswith("seed"):
            run = self.run(*parts[:3], parts[3].removeprefix("seed"))
            return Source(key, run.group, run.task, run.variant, run.seed)
        if len(parts) != 2 or parts[1] not in self.tasks:
            raise ConfigError(f"no source {key} in study {self.name}")
        config_key = {layout.INPUT: "tasks", layout.OFFICIAL_WEIGHTS: "pretrained",
                      layout.RELEASED_RESULTS: "released_results"}.get(parts[0])
        if config_key is None or parts[1] not in self.section.get(config_key, {}):
            raise ConfigError(f"no source {key} in study {self.name}: no {config_key or parts[0]} "
                              f"entry for task {parts[1]}")
        return Source(key, parts[0], parts[1])

    def restored(self, key: str, dataset: str, *, protocol: str | None = None,
                 stages: bool = False) -> tuple[Source, TestSet]:
        """The (source, test set) of a restored folder, checked: the source restores (a run or the
        official weights), the set is one of its task's, of ``protocol`` if given, and with
        ``stages`` the task saves stage outputs. Raises ConfigError naming what is missing."""
        source = self.source_of(key)
        ts = self.test_set(source.task, dataset)
        if source.group in (layout.INPUT, layout.RELEASED_RESULTS):
            raise ConfigError(f"{key} restores nothing: it is scored as it is")
        if protocol and ts.protocol != protocol:
            raise ConfigError(f"{dataset} is scored with {ts.protocol}, not bundled for {protocol}")
        if stages and not self.tasks[source.task].get("restore", {}).get("save_stages"):
            raise ConfigError(f"task {source.task} restores without save_stages: no stage outputs to score")
        return source, ts

    def scored(self, key: str, dataset: str) -> tuple[Source, TestSet]:
        """The (source, test set) of a score file, checked: the set has ground truth (not DND)."""
        source = self.source_of(key)
        ts = self.test_set(source.task, dataset)
        if not ts.scored:
            raise ConfigError(f"{dataset} has no public ground truth ({ts.protocol}): its restored images "
                              f"are bundled for the online benchmark, not scored")
        return source, ts

    def test_set(self, task: str, dataset: str) -> TestSet:
        try:
            return self.test_sets[task][dataset]
        except KeyError:
            raise ConfigError(f"{dataset} is not a test set of task {task} in study {self.name}") from None

    def restored_sources(self) -> list[tuple[Source, TestSet]]:
        """Every (source, test set) the study restores: each run's test sets, then the official weights'."""
        pairs = [(self.source_of(run.key), ts) for run in self.runs for ts in run.test_sets]
        for task in self.section.get("pretrained", {}):
            source = self.source_of(f"{layout.OFFICIAL_WEIGHTS}/{task}")
            pairs += [(source, ts) for ts in self.test_sets[task].values()]
        return pairs

    def scored_sources(self) -> list[tuple[Source, TestSet]]:
        """Every (source, test set) that is scored: the inputs, the restored sets, released results."""
        pairs = [(self.source_of(f"{layout.INPUT}/{task}"), ts)
                 for task, sets in self.test_sets.items() for ts in sets.values()]
        pairs += self.restored_sources()
        for task, sets in self.section.get("released_results", {}).items():
            source = self.source_of(f"{layout.RELEASED_RESULTS}/{task}")
            pairs += [(source, self.test_sets[task][ds]) for ds in sets]
        return [(source, ts) for source, ts in pairs if ts.scored]

    def datasets(self) -> set[str]:
        names = {r.train_set.name for r in self.runs} | {r.val_set.name for r in self.runs if r.val_set}
        names |= {t.name for sets in self.test_sets.values() for t in sets.values()}
        return names

    # ------------------------------------------------------------------ data

    def data_dir(self, ref: DatasetRef | TestSet) -> str:
        return f"{self.data_root}/{ref.name}/{ref.split}"

    def manifest(self, ref: DatasetRef | TestSet) -> str:
        """The prepared set's manifest.csv: the file the prepare rule writes last."""
        return f"{self.data_dir(ref)}/manifest.csv"

    def test_inputs(self, ts: TestSet) -> str:
        """The degraded inputs of a test set. DND's are the exact float32 crops (``input_float/*.npy``,
        what the official test_DND.py feeds the network), not their 8-bit PNGs in ``input/``."""
        return f"{self.data_dir(ts)}/{'input_float' if ts.protocol == 'dnd' else 'input'}"

    def test_targets(self, ts: TestSet) -> str:
        return f"{self.data_dir(ts)}/target"

    def checkpoint(self, source: Source) -> str:
        """The weights a source restores with: a run's final model or the configured official file."""
        if source.group == layout.OFFICIAL_WEIGHTS:
            return self.section["pretrained"][source.task]["checkpoint"]
        return self.path(layout.MODEL, **self.run(source.group, source.task, source.variant, source.seed).fields)

    def scored_images(self, source: Source, ts: TestSet) -> str:
        """The folder of images the score rule reads for ``source`` on ``ts``."""
        if source.group == layout.INPUT:
            return self.test_inputs(ts)
        if source.group == layout.RELEASED_RESULTS:
            return self.section["released_results"][source.task][ts.name]
        return self.path(layout.RESTORED, source=source.key, dataset=ts.name)

    def restore_options(self, source: Source, ts: TestSet) -> list[str]:
        """Extra ``mprnet restore`` flags: float outputs for sidd/dnd, tiles, stage outputs."""
        opts = self.tasks[source.task].get("restore", {})
        flags = ["--save-float"] if ts.protocol in ("sidd", "dnd") else []
        if opts.get("tile"):
            flags += ["--tile", str(opts["tile"])]
            if "overlap" in opts:
                flags += ["--overlap", str(opts["overlap"])]
        if opts.get("save_stages"):
            flags.append("--save-stages")
        precision = self.precision(source)
        if precision != DEFAULT_PRECISION:
            flags += ["--precision", precision]
        return flags

    def precision(self, source: Source) -> str | None:
        """The arithmetic a source's images were restored in (None for inputs and released results)."""
        if source.group in (layout.INPUT, layout.RELEASED_RESULTS):
            return None
        return self.tasks[source.task].get("restore", {}).get("precision", DEFAULT_PRECISION)

    # ------------------------------------------------------------------ results

    def path(self, pattern: str, **values) -> str:
        """``pattern`` of :mod:`mprnet.study.layout` formatted for this study."""
        return pattern.format(study=self.name, **values)

    def run_files(self, pattern: str, runs: list[Run] | None = None) -> list[str]:
        """``pattern`` (with run fields) for every run, or for ``runs``."""
        return [self.path(pattern, **run.fields) for run in (self.runs if runs is None else runs)]

    def score_entries(self) -> list[dict]:
        """The study manifest's list of per-image score files and what each one scores."""
        entries = []
        for source, ts in self.scored_sources():
            entry = {"task": source.task, "dataset": ts.name, "method": source.method, "group": source.group}
            if source.seed is not None or source.group == layout.OFFICIAL_WEIGHTS:
                entry["seed"] = source.seed
            entry["precision"] = self.precision(source)
            if source.group in layout.RUN_GROUPS:
                entry["model"] = self.checkpoint(source)  # says what precision it trained in
            entry["path"] = self.scores_file(source, ts)
            entries.append(entry)
        return entries

    def manifest_record(self) -> dict:
        """The study manifest (``study.yaml``) the aggregation reads (keys sorted: a params value)."""
        return canonical({
            "study": self.name,
            "description": self.section.get("description", ""),
            "published": self.section.get("published", {}),
            "ablations": {k: v for k, v in self.section.get("ablations", {}).items() if k != "recipe"},
            "runs": [{"key": r.key, "group": r.group, "task": r.task, "variant": r.variant, "seed": r.seed,
                      "preset": r.preset, "model": r.model, "dir": self.path(layout.RUN, **r.fields),
                      "test_sets": [t.name for t in r.test_sets]} for r in self.runs],
            "scores": self.score_entries(),
        })

    def final_targets(self) -> list[str]:
        """What ``rule all`` asks for: summary.csv, metrics.json, the DND bundles and the results
        README (whose inputs are every table, figure and record of the report)."""
        targets = [self.path(layout.SUMMARY), self.path(layout.METRICS)]
        targets += [self.path(layout.SUBMISSION, source=source.key, dataset=ts.name)
                    for source, ts in self.restored_sources() if not ts.scored]
        return targets + [self.path(layout.INDEX)]

    # ------------------------------------------------------------------ report

    @property
    def report(self) -> ReportSettings:
        return ReportSettings.from_section(self.section.get("report"))

    @property
    def ablation_reference(self) -> str:
        return (self.section.get("ablations") or {}).get("reference", MAIN_VARIANT)

    def average_tasks(self) -> list[str]:
        """Tasks that get the paper's Average column: deraining, as in the paper's Table 1."""
        return [t for t, spec in self.tasks.items() if spec["preset"] == "deraining"]

    def model_specs(self) -> list[dict]:
        """Every distinct model of the study, for :func:`mprnet.report.costs.model_costs_table`
        (keys sorted: a params value)."""
        specs = {}
        for run in self.runs:
            specs[(run.group, run.task, run.variant)] = {
                "group": run.group, "task": run.task, "method": run.variant, "preset": run.preset,
                "model": run.model}
        for task in self.section.get("pretrained", {}) or {}:
            specs[(layout.OFFICIAL_WEIGHTS, task, "")] = {
                "group": layout.OFFICIAL_WEIGHTS, "task": task, "method": layout.OFFICIAL_WEIGHTS,
                "preset": self.tasks[task]["preset"], "model": {}}
        return canonical(list(specs.values()))

    def scores_file(self, source: Source, ts: TestSet) -> str:
        return self.path(layout.SCORES, source=source.key, dataset=ts.name)

    def train_benchmarks(self) -> list[tuple[dict, str]]:
        """(run fields, benchmark file) of every training job."""
        return [(run.fields, self.path(layout.TRAIN_BENCHMARK, **run.fields)) for run in self.runs]

    def training_logs(self) -> list[tuple[dict, str]]:
        """(run fields, metrics.csv) of every run."""
        return [(run.fields, self.path(layout.TRAINING_LOG, **run.fields)) for run in self.runs]

    def restore_benchmarks(self) -> list[tuple[dict, str]]:
        """(run fields and dataset, benchmark file) of every restore of an ablation run."""
        return [(dict(run.fields, dataset=ts.name), self.path(layout.RESTORE_BENCHMARK, source=run.key, dataset=ts.name))
                for run in self.runs if run.group == "ablation" for ts in run.test_sets if ts.scored]

    def stage_score_files(self) -> list[tuple[dict, str]]:
        """(run fields and dataset, stage scores) of the main runs whose task restores with ``save_stages``."""
        return [(dict(run.fields, dataset=ts.name), self.path(layout.STAGE_SCORES, source=run.key, dataset=ts.name))
                for run in self.runs
                if run.group == "main" and self.tasks[run.task].get("restore", {}).get("save_stages")
                for ts in run.test_sets if ts.scored]

    def visual_panels(self, kind: str, task: str, dataset: str) -> list[tuple[str, str, str]]:
        """(method, restored folder, per-image scores) of each model a comparison grid of ``kind``
        (``layout.VISUAL_KINDS``) shows: the first seed of each model, then the official weights."""
        group, ts = layout.VISUAL_KINDS[kind], self.test_set(task, dataset)
        sources, seen = [], set()
        for run in self.runs:
            if run.group == group and run.task == task and run.variant not in seen and ts in run.test_sets:
                seen.add(run.variant)
                sources.append(self.source_of(run.key))
        if group == "main" and task in (self.section.get("pretrained") or {}):
            sources.append(self.source_of(f"{layout.OFFICIAL_WEIGHTS}/{task}"))
        return [(s.method, self.scored_images(s, ts), self.scores_file(s, ts)) for s in sources]

    def visual_title(self, kind: str, task: str, dataset: str) -> str:
        if layout.VISUAL_KINDS[kind] == "ablation":
            return f"Ablation ({task}): {dataset}"
        return f"{task}: {dataset}"

    def visual_grids(self) -> list[tuple[str, str, str]]:
        """(kind, task, dataset) of every comparison grid (kinds: ``layout.VISUAL_KINDS``): one per
        scored test set of each task, one per scored test set of the ablation runs."""
        grids = [("visual", task, ts.name) for task, sets in self.test_sets.items()
                 for ts in sets.values() if ts.scored]
        ablated = {(run.task, ts.name): None for run in self.runs if run.group == "ablation"
                   for ts in run.test_sets if ts.scored}
        return grids + [("ablation_visual", task, ds) for task, ds in ablated]

    def table_names(self) -> list[str]:
        names = [f"main_{t}" for t in self.tasks]
        if self.section.get("ablations"):
            names.append("ablation")
        return names + ["cost"]

    def index_inputs(self) -> list[str]:
        """The tables and figures the results README indexes (it also reads the provenance record)."""
        return ([self.path(layout.TABLE, name=name, ext="md") for name in self.table_names()]
                + [self.path(layout.FIGURE, name=name, ext="png") for name in layout.FIGURES]
                + [self.path(layout.VISUAL, kind=kind, task=task, dataset=ds, ext="png")
                   for kind, task, ds in self.visual_grids()])
