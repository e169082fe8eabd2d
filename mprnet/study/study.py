"""A validated study: its tasks, runs, test sets and sources, and the look-ups the workflow needs.

:func:`mprnet.study.config.load_study` builds a :class:`Study` from a config, once; the records are
those of :mod:`mprnet.study.spec`. Where each of the study's files lies is
:class:`mprnet.study.targets.Targets`' business. Runs are identified by
``<group>/<task>/<variant>/seed<seed>``: group ``main`` holds one model per task (variant ``full``),
group ``ablation`` the variants of ``ablations:``. A main run that validates (its resolved run
config, :func:`mprnet.training.config.validates`) also gives a ``model_best`` source: its
best-validation checkpoint, restored and scored on the same test sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..errors import ConfigError
from ..training.config import validates
from ..vocabulary import ABLATION, FULL, INPUT, MAIN, MODEL_BEST, OFFICIAL_WEIGHTS, RELEASED_RESULTS
from .spec import (Ablation, DataSettings, ReportSettings, RestoreSettings, Run, Source, Task, TestSet, TileCheck,
                   canonical, run_key)

MAIN_VARIANT = FULL


@dataclass(frozen=True, eq=False)
class Study:
    """``section`` is the validated config section as read (the published numbers filled in from
    their file): the provenance record hashes it; everything else reads the typed fields."""

    name: str
    description: str
    data: DataSettings
    tasks: dict[str, Task]
    ablation: Ablation | None
    pretrained: dict[str, str]  # task -> the authors' checkpoint file
    released_results: dict[str, dict[str, str]]  # task -> test set -> folder of released images
    published: dict[str, dict[str, dict]]  # task -> test set (or Average) -> {psnr, ssim}
    report: ReportSettings
    runs: tuple[Run, ...]
    section: dict

    # ------------------------------------------------------------------ look-ups

    @property
    def test_sets(self) -> dict[str, dict[str, TestSet]]:
        """task -> test set name -> test set."""
        return {name: task.test_sets for name, task in self.tasks.items()}

    @cached_property
    def _runs_by_key(self) -> dict[str, Run]:
        return {run.key: run for run in self.runs}

    def run(self, group: str, task: str, variant: str, seed: int | str) -> Run:
        key = run_key(group, task, variant, seed)
        try:
            return self._runs_by_key[key]
        except KeyError:
            raise ConfigError(f"no run {key} in study {self.name}") from None

    def runs_of(self, group: str) -> list[Run]:
        return [run for run in self.runs if run.group == group]

    def validating_runs(self) -> list[Run]:
        """The main runs that validate (:func:`mprnet.training.config.validates` of their resolved
        config), and so write ``model_best.pt``: each gives a ``model_best`` source."""
        return [run for run in self.runs_of(MAIN) if validates(run.resolved)]

    def run_of(self, source: Source) -> Run:
        """The training run behind a trained source (a run's own, or the main run of a ``model_best``)."""
        if not source.trained:
            raise ConfigError(f"{source.key} was not trained here: no run behind it")
        group = MAIN if source.group == MODEL_BEST else source.group
        return self.run(group, source.task, source.variant, source.seed)

    @cached_property
    def sources(self) -> dict[str, Source]:
        """Every source of the study by its key (the layout's ``source`` field): the runs, the
        ``model_best`` of the validating main runs, the official weights, the inputs and the
        released results of each task that has them."""
        sources = [Source(r.group, r.task, r.variant, r.seed) for r in self.runs]
        sources += [Source(MODEL_BEST, r.task, r.variant, r.seed) for r in self.validating_runs()]
        sources += [Source(OFFICIAL_WEIGHTS, task) for task in self.pretrained]
        sources += [Source(INPUT, task) for task in self.tasks]
        sources += [Source(RELEASED_RESULTS, task) for task in self.released_results]
        return {source.key: source for source in sources}

    def source_of(self, key: str) -> Source:
        """The :class:`Source` of a ``source`` key; ConfigError naming the study's sources if none."""
        try:
            return self.sources[key]
        except KeyError:
            raise ConfigError(f"no source {key} in study {self.name} (its sources: {', '.join(self.sources)})") from None

    def run_source(self, run: Run) -> Source:
        return self.sources[run.key]

    def task_source(self, group: str, task: str) -> Source:
        """The official weights, the inputs or the released results of ``task`` (ConfigError if none)."""
        return self.source_of(Source(group, task).key)

    def test_set(self, task: str, dataset: str) -> TestSet:
        try:
            return self.tasks[task].test_sets[dataset]
        except KeyError:
            raise ConfigError(f"{dataset} is not a test set of task {task} in study {self.name}") from None

    def restored(self, key: str, dataset: str, *, bundled: bool = False,
                 stages: bool = False) -> tuple[Source, TestSet]:
        """The (source, test set) of a restored folder, checked: the source restores (a run or the
        official weights), the set is one of its task's, with ``bundled`` one without public ground
        truth (its images are bundled for an online benchmark), and with ``stages`` the task saves
        stage outputs. Raises ConfigError naming what is missing."""
        source = self.source_of(key)
        ts = self.test_set(source.task, dataset)
        if not source.restores:
            raise ConfigError(f"{key} restores nothing: it is scored as it is")
        if bundled and ts.scored:
            raise ConfigError(f"{dataset} is scored with {ts.protocol}, not bundled for an online benchmark")
        if stages and not self.tasks[source.task].restore.save_stages:
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

    def restored_sources(self) -> list[tuple[Source, TestSet]]:
        """Every (source, test set) the study restores: each run's test sets, each ``model_best``'s
        scored test sets (the same as its run's final model, bundles excepted), then the official
        weights'."""
        pairs = [(self.run_source(run), ts) for run in self.runs for ts in run.test_sets]
        pairs += [(self.sources[Source(MODEL_BEST, run.task, run.variant, run.seed).key], ts)
                  for run in self.validating_runs() for ts in run.test_sets if ts.scored]
        for task in self.pretrained:
            source = self.task_source(OFFICIAL_WEIGHTS, task)
            pairs += [(source, ts) for ts in self.tasks[task].test_sets.values()]
        return pairs

    def scored_sources(self) -> list[tuple[Source, TestSet]]:
        """Every (source, test set) that is scored: the inputs, the restored sets, released results."""
        pairs = [(self.task_source(INPUT, task), ts) for task, spec in self.tasks.items()
                 for ts in spec.test_sets.values()]
        pairs += self.restored_sources()
        for task, sets in self.released_results.items():
            source = self.task_source(RELEASED_RESULTS, task)
            pairs += [(source, self.tasks[task].test_sets[ds]) for ds in sets]
        return [(source, ts) for source, ts in pairs if ts.scored]

    def datasets(self) -> set[str]:
        names = {r.train_set.name for r in self.runs} | {r.val_set.name for r in self.runs if r.val_set}
        names |= {ts.name for task in self.tasks.values() for ts in task.test_sets.values()}
        return names

    # ------------------------------------------------------------------ restoring

    def restore_settings(self, source: Source, ts: TestSet) -> RestoreSettings:
        """How ``source``'s images of ``ts`` are restored: the task's settings, floats kept where
        the test set's protocol scores or bundles them."""
        return self.tasks[source.task].restore.for_test_set(ts)

    def precision(self, source: Source) -> str | None:
        """The arithmetic a source's images were restored in (None for inputs and released results)."""
        return self.tasks[source.task].restore.precision if source.restores else None

    # ------------------------------------------------------------------ report facts

    @property
    def ablation_reference(self) -> str:
        return self.ablation.reference if self.ablation else MAIN_VARIANT

    def average_tasks(self) -> list[str]:
        """Tasks that get the paper's Average column: deraining, as in the paper's Table 1."""
        return [name for name, task in self.tasks.items() if task.preset == "deraining"]

    def model_specs(self) -> list[dict]:
        """Every distinct model of the study, for :func:`mprnet.report.costs.model_costs_table`
        (keys sorted: a params value)."""
        specs = {}
        for run in self.runs:
            specs[(run.group, run.task, run.variant)] = {
                "group": run.group, "task": run.task, "method": run.variant, "preset": run.preset,
                "model": run.model}
        for task in self.pretrained:
            specs[(OFFICIAL_WEIGHTS, task, "")] = {
                "group": OFFICIAL_WEIGHTS, "task": task, "method": OFFICIAL_WEIGHTS,
                "preset": self.tasks[task].preset, "model": {}}
        return canonical(list(specs.values()))

    def ablated_test_sets(self) -> list[tuple[str, TestSet]]:
        """(task, test set) of every scored test set of the ablation runs, once each."""
        seen = {(run.task, ts.name): (run.task, ts) for run in self.runs_of(ABLATION) for ts in run.test_sets
                if ts.scored}
        return list(seen.values())

    def first_main_runs(self) -> list[Run]:
        """The main run of each task's first seed, in task order: the model the audit looks at
        (the ruler scores, the tiles-vs-whole checks)."""
        first: dict[str, Run] = {}
        for run in self.runs_of(MAIN):
            first.setdefault(run.task, run)
        return [first[task] for task in self.tasks if task in first]

    def ruler_sources(self) -> list[tuple[Source, TestSet]]:
        """(source, test set) scored under the alternative rulers as well: the first seed's main
        model of each task on each of its scored test sets (mprnet.metrics.rulers)."""
        return [(self.run_source(run), ts) for run in self.first_main_runs() for ts in run.test_sets if ts.scored]

    def model_best_selection(self, task: str) -> dict:
        """How the ``model_best`` of ``task``'s main runs was selected, for its table row and note:
        ``{val_set: <name>, split: <split>, test_set: <whether that set is one of the task's test
        sets (by name and split)>}``, or {} when no main run of the task validates."""
        runs = [run for run in self.validating_runs() if run.task == task]
        if not runs:
            return {}
        ref = runs[0].val_set
        tests = {(ts.name, ts.split) for ts in self.tasks[task].test_sets.values()}
        return {"val_set": ref.name, "split": ref.split, "test_set": (ref.name, ref.split) in tests}

    def tile_check(self, task: str) -> TileCheck | None:
        """The tiles-vs-whole check of ``task``: the task's own tiles (the check restores whole
        images) when it restores in tiles, else the report's ``tile_check_tile`` (the check restores
        in tiles); None when it has neither or ``report.tile_check_images`` is 0."""
        restore, report = self.tasks[task].restore, self.report
        if not report.tile_check_images:
            return None
        if restore.tile:
            return TileCheck(restore.tile, restore.overlap, True, report.tile_check_images)
        if report.tile_check_tile:
            return TileCheck(report.tile_check_tile, report.tile_check_overlap, False, report.tile_check_images)
        return None

    def tile_checks(self) -> list[tuple[Source, TestSet]]:
        """(source, test set) of every tiles-vs-whole check: the first seed's main model of each
        task that has a :meth:`tile_check`, on each of its scored test sets."""
        return [(self.run_source(run), ts) for run in self.first_main_runs() if self.tile_check(run.task)
                for ts in run.test_sets if ts.scored]

    def main_stage_runs(self) -> list[Run]:
        """The main runs whose task restores with ``save_stages``."""
        return [run for run in self.runs_of(MAIN) if self.tasks[run.task].restore.save_stages]
