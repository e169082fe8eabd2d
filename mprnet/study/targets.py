"""Every file of a study: the results layout (:mod:`mprnet.study.layout`) formatted for it.

:class:`Targets` answers what the workflow asks: the input files of each job (prepared data,
weights, restored folders, score files), the final targets of ``rule all``, and the study
manifest (``results/<study>/study.yaml``), the one list of the files the study produces, each with
what it is about, that the aggregation and the report jobs read instead of lists handed to them.
"""

from __future__ import annotations

from ..vocabulary import (ABLATION, ABLATION_TABLE, COST_TABLE, FIGURES, INPUT, MAIN, MAIN_TABLE,
                          MANIFEST_JOB_COSTS, MANIFEST_RESTORE_BENCHMARKS, MANIFEST_RULER_SCORES, MANIFEST_SCORES,
                          MANIFEST_STAGE_SCORES, MANIFEST_TILE_CHECKS, MANIFEST_TRAINING_LOGS, MODEL_BEST,
                          OFFICIAL_WEIGHTS, RELEASED_RESULTS, RULER_TABLE, TILES_TABLE, VISUAL_KINDS)
from . import layout
from .spec import DatasetRef, Run, Source, TestSet, canonical
from .study import Study


class Targets:
    """The paths of ``study``'s files (relative to the working directory Snakemake runs in)."""

    def __init__(self, study: Study):
        self.study = study

    def path(self, pattern: str, **values) -> str:
        """``pattern`` of :mod:`mprnet.study.layout` formatted for this study."""
        return pattern.format(study=self.study.name, **values)

    # ------------------------------------------------------------------ prepared data

    def data_dir(self, ref: DatasetRef | TestSet) -> str:
        return layout.DATA_DIR.format(root=self.study.data.root, dataset=ref.name, split=ref.split)

    def data_manifest(self, ref: DatasetRef | TestSet) -> str:
        """The prepared set's manifest.csv: the file the prepare rule writes last."""
        return layout.DATA_MANIFEST.format(root=self.study.data.root, dataset=ref.name, split=ref.split)

    def test_inputs(self, ts: TestSet) -> str:
        """The degraded inputs of a test set: ``input/``, or the exact float crops ``input_float/``
        (``*.npy``, what the official test_DND.py feeds the network) where its protocol says so."""
        return f"{self.data_dir(ts)}/{'input_float' if ts.record.float_inputs else 'input'}"

    def test_targets(self, ts: TestSet) -> str:
        return f"{self.data_dir(ts)}/target"

    def train_data(self, run: Run) -> list[str]:
        return [self.data_manifest(ref) for ref in (run.train_set, run.val_set) if ref]

    # ------------------------------------------------------------------ runs, restored and scored images

    def run_dir(self, run: Run) -> str:
        return self.path(layout.RUN, **run.fields)

    def run_files(self, pattern: str, runs: list[Run] | None = None) -> list[str]:
        """``pattern`` (with run fields) for every run, or for ``runs``."""
        return [self.path(pattern, **run.fields) for run in (self.study.runs if runs is None else runs)]

    def checkpoint(self, source: Source) -> str:
        """The weights a source restores with: a run's final model, a main run's best-validation
        checkpoint (``model_best``) or the configured official file."""
        if source.group == OFFICIAL_WEIGHTS:
            return self.study.pretrained[source.task]
        pattern = layout.BEST_MODEL if source.group == MODEL_BEST else layout.MODEL
        return self.path(pattern, **self.study.run_of(source).fields)

    def restore_input(self, source: Source) -> str:
        """The file a restore job of ``source`` waits for: its :meth:`checkpoint`, except for a
        ``model_best``, which no rule declares (the trainer writes it beside the final model only
        when the run validates): its run's ``model_final.pt``, the train job's declared output."""
        if source.group == MODEL_BEST:
            return self.path(layout.MODEL, **self.study.run_of(source).fields)
        return self.checkpoint(source)

    def restored(self, source: Source, ts: TestSet) -> str:
        return self.path(layout.RESTORED, source=source.key, dataset=ts.name)

    def scored_images(self, source: Source, ts: TestSet) -> str:
        """The folder of images the score rule reads for ``source`` on ``ts``."""
        if source.group == INPUT:
            return self.test_inputs(ts)
        if source.group == RELEASED_RESULTS:
            return self.study.released_results[source.task][ts.name]
        return self.restored(source, ts)

    def scores(self, source: Source, ts: TestSet) -> str:
        return self.path(layout.SCORES, source=source.key, dataset=ts.name)

    def all_scores(self) -> list[str]:
        return [self.scores(source, ts) for source, ts in self.study.scored_sources()]

    # ------------------------------------------------------------------ files the report reads

    def job_costs(self) -> list[tuple[dict, str]]:
        """(what the job is, its Snakemake benchmark file) of every job that computes, for the cost
        table (:func:`mprnet.report.hours.job_costs`): ``job`` ``train`` with the run's fields, its
        ``attempts`` record (every attempt; the benchmark keeps the last), its configured ``device``
        and ``processes``; ``restore`` with the source's fields, the ``dataset`` and the ``restored`` folder
        (its restore.json names the device); ``score`` likewise, without a folder; ``audit``, the
        ruler scores (``device`` cpu) and the tiles-vs-whole checks (with the source's ``restored``
        folder: a check restores with the same resources and device choice as the restore job)."""
        pairs = [(dict(run.fields, job="train", attempts=self.path(layout.TRAINING_ATTEMPTS, **run.fields),
                       device=run.resolved["runtime"]["device"], processes=run.resolved["runtime"]["processes"]),
                  self.path(layout.TRAIN_BENCHMARK, **run.fields))
                 for run in self.study.runs]
        # (job, its benchmark file, its (source, test set) pairs, whether it restores, its device if fixed)
        per_test_set = [("restore", layout.RESTORE_BENCHMARK, self.study.restored_sources(), True, None),
                        ("score", layout.SCORE_BENCHMARK, self.study.scored_sources(), False, None),
                        ("audit", layout.RULER_BENCHMARK, self.study.ruler_sources(), False, "cpu"),
                        ("audit", layout.TILE_CHECK_BENCHMARK, self.study.tile_checks(), True, None)]
        for job, benchmark, sources, restores, device in per_test_set:
            for source, ts in sources:
                fields = dict(_source_fields(source), dataset=ts.name, job=job)
                if restores:
                    fields["restored"] = self.restored(source, ts)
                if device:
                    fields["device"] = device
                pairs.append((fields, self.path(benchmark, source=source.key, dataset=ts.name)))
        return pairs

    def training_logs(self) -> list[tuple[dict, str]]:
        """(run fields, metrics.csv) of every run."""
        return [(run.fields, self.path(layout.TRAINING_LOG, **run.fields)) for run in self.study.runs]

    def restore_benchmarks(self) -> list[tuple[dict, str]]:
        """(run fields and dataset, benchmark file) of every scored restore of an ablation run."""
        return [(dict(run.fields, dataset=ts.name), self.path(layout.RESTORE_BENCHMARK, source=run.key, dataset=ts.name))
                for run in self.study.runs_of(ABLATION) for ts in run.test_sets if ts.scored]

    def stage_score_files(self) -> list[tuple[dict, str]]:
        """(run fields and dataset, stage scores) of the main runs whose task restores with ``save_stages``."""
        return [(dict(run.fields, dataset=ts.name), self.path(layout.STAGE_SCORES, source=run.key, dataset=ts.name))
                for run in self.study.main_stage_runs() for ts in run.test_sets if ts.scored]

    def ruler_scores(self, source: Source, ts: TestSet) -> str:
        return self.path(layout.RULER_SCORES, source=source.key, dataset=ts.name)

    def ruler_score_files(self) -> list[tuple[dict, str]]:
        """(fields, per-image ruler scores) of every (source, test set) of ``Study.ruler_sources``:
        its task, test set, method, group, seed and the paper's protocol for it."""
        return [({"task": s.task, "dataset": ts.name, "method": s.method, "group": s.group, "seed": s.seed,
                  "protocol": ts.protocol}, self.ruler_scores(s, ts)) for s, ts in self.study.ruler_sources()]

    def tile_check_files(self) -> list[tuple[dict, str]]:
        """(fields, per-image file) of every tiles-vs-whole check (``Study.tile_checks``): task,
        dataset, method, seed and source."""
        return [({"task": source.task, "dataset": ts.name, "method": source.method, "seed": source.seed,
                  "source": source.key}, self.path(layout.TILE_CHECK, source=source.key, dataset=ts.name))
                for source, ts in self.study.tile_checks()]

    def ablation_stats(self) -> list[str]:
        """The ablation statistics file, if the study has ablations (the figures job's optional input)."""
        return [self.path(layout.ABLATION_STATS)] if self.study.ablation else []

    # ------------------------------------------------------------------ comparison grids

    def visual_grids(self) -> list[tuple[str, str, str]]:
        """(kind, task, dataset) of every comparison grid (kinds: ``vocabulary.VISUAL_KINDS``): one per
        scored test set of each task, one per scored test set of the ablation runs."""
        grids = [("visual", task, ts.name) for task, spec in self.study.tasks.items()
                 for ts in spec.test_sets.values() if ts.scored]
        return grids + [("ablation_visual", task, ts.name) for task, ts in self.study.ablated_test_sets()]

    def visual_panels(self, kind: str, task: str, dataset: str) -> list[tuple[str, str, str]]:
        """(method, restored folder, per-image scores) of each model a comparison grid of ``kind``
        shows: the first seed of each model, then the official weights."""
        group, ts = VISUAL_KINDS[kind], self.study.test_set(task, dataset)
        sources, seen = [], set()
        for run in self.study.runs_of(group):
            if run.task == task and run.variant not in seen and ts in run.test_sets:
                seen.add(run.variant)
                sources.append(self.study.run_source(run))
        if group == MAIN and task in self.study.pretrained:
            sources.append(self.study.task_source(OFFICIAL_WEIGHTS, task))
        return [(s.method, self.scored_images(s, ts), self.scores(s, ts)) for s in sources]

    # ------------------------------------------------------------------ what rule all asks for

    def table_names(self) -> list[str]:
        names = [MAIN_TABLE.format(task=task) for task in self.study.tasks]
        if self.study.ablation:
            names.append(ABLATION_TABLE)
        if self.study.ruler_sources():
            names.append(RULER_TABLE)
        if self.study.tile_checks():
            names.append(TILES_TABLE)
        return names + [COST_TABLE]

    def figure_names(self) -> list[str]:
        """The study figures (``vocabulary.FIGURES``) and the ruler figure where rulers are scored."""
        return list(FIGURES) + ([RULER_TABLE] if self.study.ruler_sources() else [])

    def index_inputs(self) -> list[str]:
        """The tables and figures the results README indexes (it also reads the provenance record)."""
        return ([self.path(layout.TABLE, name=name, ext="md") for name in self.table_names()]
                + [self.path(layout.FIGURE, name=name, ext="png") for name in self.figure_names()]
                + [self.path(layout.VISUAL, kind=kind, task=task, dataset=ds, ext="png")
                   for kind, task, ds in self.visual_grids()])

    def final_targets(self) -> list[str]:
        """What ``rule all`` asks for: summary.csv, metrics.json, the DND bundles and the results
        README (whose inputs are every table, figure and record of the report)."""
        targets = [self.path(layout.SUMMARY), self.path(layout.METRICS)]
        targets += [self.path(layout.SUBMISSION, source=source.key, dataset=ts.name)
                    for source, ts in self.study.restored_sources() if not ts.scored]
        return targets + [self.path(layout.INDEX)]

    # ------------------------------------------------------------------ the study manifest

    def score_entries(self) -> list[dict]:
        """The study manifest's list of per-image score files and what each one scores."""
        entries = []
        for source, ts in self.study.scored_sources():
            entry = {"task": source.task, "dataset": ts.name, "method": source.method, "group": source.group}
            if source.seed is not None or source.group == OFFICIAL_WEIGHTS:
                entry["seed"] = source.seed
            entry["precision"] = self.study.precision(source)
            if source.trained:
                entry["model"] = self.restore_input(source)  # the run's final model: its training precision
            entry["path"] = self.scores(source, ts)
            entries.append(entry)
        return entries

    def manifest_record(self) -> dict:
        """The study manifest (``study.yaml``): the study's description, the paper's numbers, the
        test sets without public ground truth (``online_test_sets``: the verdicts say so), its
        runs, and every file the study produces that a later job reads, each with its fields:
        ``scores`` (the aggregation), ``training_logs``, ``job_costs``, ``restore_benchmarks``,
        ``stage_scores``, ``ruler_scores`` and ``tile_checks`` (the report). Keys sorted: a params
        value."""
        study = self.study
        ablation = None
        if study.ablation:
            ablation = {"task": study.ablation.task, "test_sets": list(study.ablation.test_sets),
                        "seeds": list(study.ablation.seeds), "reference": study.ablation.reference,
                        "variants": study.ablation.variants}

        def files(pairs: list[tuple[dict, str]]) -> list[dict]:
            return [dict(fields, path=path) for fields, path in pairs]

        return canonical({
            "study": study.name,
            "description": study.description,
            "published": study.published,
            "online_test_sets": sorted({ts.name for task in study.tasks.values() for ts in task.test_sets.values()
                                        if not ts.scored}),
            "ablations": ablation or {},
            "runs": [{"key": r.key, "group": r.group, "task": r.task, "variant": r.variant, "seed": r.seed,
                      "preset": r.preset, "model": r.model, "dir": self.run_dir(r),
                      "test_sets": [t.name for t in r.test_sets]} for r in study.runs],
            MANIFEST_SCORES: self.score_entries(),
            MANIFEST_TRAINING_LOGS: files(self.training_logs()),
            MANIFEST_JOB_COSTS: files(self.job_costs()),
            MANIFEST_RESTORE_BENCHMARKS: files(self.restore_benchmarks()),
            MANIFEST_STAGE_SCORES: files(self.stage_score_files()),
            MANIFEST_RULER_SCORES: files(self.ruler_score_files()),
            MANIFEST_TILE_CHECKS: files(self.tile_check_files()),
        })


def _source_fields(source: Source) -> dict:
    """A source's identity as fields: group, task, method, and its seed if it has one."""
    fields = {"group": source.group, "task": source.task, "method": source.method}
    return fields if source.seed is None else dict(fields, seed=source.seed)
