import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The package of this checkout: imported here, and by every job (PYTHONPATH below).
REPOSITORY = Path(workflow.basedir).parent
sys.path.insert(0, str(REPOSITORY))

from mprnet.errors import ConfigError, one_line
from mprnet.study import layout
from mprnet.study.config import load_study, snakemake_config_files
from mprnet.study.spec import canonical
from mprnet.study.targets import Targets
from mprnet.training.config import launch_needs
from mprnet.vocabulary import (
    ABLATION_TABLE,
    COST_TABLE,
    FIGURES,
    INPUT,
    MAIN_TABLE,
    RULER_TABLE,
    RUN_GROUPS,
    TABLE_FORMATS,
    TILES_TABLE,
    VISUAL_KINDS,
)

# Rules run `python -m mprnet.cli` and the scripts of workflow/scripts/: by default with the Python
# running Snakemake (also in the jobs the Slurm executor starts with that interpreter on the nodes);
# with `--sdm conda` in the pinned environment of workflow/envs/, which imports the package from
# this checkout.
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPOSITORY), os.environ.get("PYTHONPATH")) if p
)


envvars:
    "PATH",
    "PYTHONPATH",


# The whole study is validated here, before any job starts: an unknown key, a wrong type, a
# dataset missing from the registry, an impossible variant or a run the trainer would refuse
# (e.g. a batch that does not divide over its processes) stops Snakemake naming the key. The
# config files are read again with the study's YAML reader, so that 1e-05 is a number here as
# in `mprnet train` (mprnet/yaml_files.py). STUDY holds the typed study (mprnet/study/spec.py,
# study.py); TARGETS every path of it (mprnet/study/targets.py, layout.py).
try:
    STUDY = load_study(
        config,
        Path(workflow.basedir, "schemas/config.schema.yaml"),
        config_files=snakemake_config_files(workflow),
    )
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {one_line(exc)}") from None
TARGETS = Targets(STUDY)

MPRNET_ENV = "../envs/mprnet.yaml"


wildcard_constraints:
    study=re.escape(STUDY.name),
    root=re.escape(STUDY.data.root),
    group="|".join(RUN_GROUPS),
    task="|".join(re.escape(t) for t in STUDY.tasks),
    variant=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    split=r"[A-Za-z0-9_.-]+",
    source="|".join(re.escape(key) for key in STUDY.sources),


# ----------------------------------------------------------------------------- input functions


def get_data_root(wildcards):
    return STUDY.data.root


def _run(wildcards):
    return STUDY.run(wildcards.group, wildcards.task, wildcards.variant, wildcards.seed)


def _source(wildcards):
    return STUDY.source_of(wildcards.source)


def _test_set(wildcards):
    """The test set of a job: its `dataset` of the `source`'s task, or of the `task` wildcard."""
    task = _source(wildcards).task if "source" in wildcards.keys() else wildcards.task
    return STUDY.test_set(task, wildcards.dataset)


def get_run_config(wildcards):
    """The run's `mprnet train` config (a params value: a changed setting reruns the run)."""
    return _run(wildcards).config


def get_train_processes(wildcards):
    return launch_needs(_run(wildcards).resolved)["processes"]


def get_train_gpus(wildcards):
    return launch_needs(_run(wildcards).resolved)["gpus"]


def get_run_dir(wildcards):
    return TARGETS.run_dir(_run(wildcards))


def get_train_data(wildcards):
    return TARGETS.train_data(_run(wildcards))


def get_test_manifest(wildcards):
    return TARGETS.data_manifest(_test_set(wildcards))


def get_test_inputs(wildcards):
    return TARGETS.test_inputs(_test_set(wildcards))


def get_test_targets(wildcards):
    return TARGETS.test_targets(_test_set(wildcards))


def get_protocol(wildcards):
    return _test_set(wildcards).protocol


def get_restore_inputs(wildcards):
    """The weights waited for and the test set's manifest (ConfigError for a source that restores
    nothing)."""
    source, ts = STUDY.restored(wildcards.source, wildcards.dataset)
    return {
        "checkpoint": TARGETS.restore_input(source),
        "data": TARGETS.data_manifest(ts),
    }


def get_restore_weights(wildcards):
    """The weights loaded: the checkpoint waited for, or a run's model_best.pt beside it."""
    return TARGETS.checkpoint(STUDY.restored(wildcards.source, wildcards.dataset)[0])


def get_restore_settings(wildcards):
    """Tiles, precision and the outputs kept (mprnet.study.spec.RestoreSettings)."""
    return STUDY.restore_settings(*STUDY.restored(wildcards.source, wildcards.dataset))


def get_bundled_folder(wildcards):
    return TARGETS.restored(
        *STUDY.restored(wildcards.source, wildcards.dataset, bundled=True)
    )


def get_stage_score_inputs(wildcards):
    source, ts = STUDY.restored(wildcards.source, wildcards.dataset, stages=True)
    return {"restored": TARGETS.restored(source, ts), "data": TARGETS.data_manifest(ts)}


def get_score_inputs(wildcards):
    """The test set's manifest, and the images scored unless they are its own inputs (covered
    by the manifest): a restored folder, or the authors' released results."""
    source, ts = STUDY.scored(wildcards.source, wildcards.dataset)
    inputs = {"data": TARGETS.data_manifest(ts)}
    if source.group != INPUT:
        inputs["images"] = TARGETS.scored_images(source, ts)
    return inputs


def get_scored_images(wildcards):
    return TARGETS.scored_images(_source(wildcards), _test_set(wildcards))


def get_all_scores(wildcards):
    return TARGETS.all_scores()


def _tile_check(wildcards):
    """The (source, test set) of a tiles-vs-whole check; ConfigError for one the study has not."""
    source, ts = STUDY.scored(wildcards.source, wildcards.dataset)
    if (source, ts) not in STUDY.tile_checks():
        raise ConfigError(
            f"study {STUDY.name} has no tile check of {source.key} on {ts.name}"
        )
    return source, ts


def get_tile_check_inputs(wildcards):
    """The model waited for, the test set's manifest and the study's own scores of the sample."""
    source, ts = _tile_check(wildcards)
    return {
        "checkpoint": TARGETS.restore_input(source),
        "data": TARGETS.data_manifest(ts),
        "scores": TARGETS.scores(source, ts),
    }


def get_tile_check(wildcards):
    """The check's tiling (mprnet.study.spec.TileCheck) and the study's restore settings of the set."""
    source, ts = _tile_check(wildcards)
    return {
        "check": STUDY.tile_check(source.task),
        "settings": STUDY.restore_settings(source, ts),
    }


# ----------------------------------------------------------------------------- report


def table(name, caption, labels=None):
    """The four files of one table; the HTML one goes into the Snakemake report (with
    `labels`, shown with it and readable by workflow/report/workflow.rst)."""
    files = {
        ext: layout.TABLE.format(study="{study}", name=name, ext=ext)
        for ext in TABLE_FORMATS
    }
    files["html"] = report(
        files["html"], caption=caption, category="Tables", labels=labels
    )
    return files


def figure(name, caption, category="Figures"):
    return report(
        layout.FIGURE.format(study="{study}", name=name, ext="png"),
        caption=caption,
        category=category,
    )


def get_with_average(wildcards):
    """Whether the task's main table has the paper's Average column (deraining)."""
    return wildcards.task in STUDY.average_tasks()


def get_model_best_selection(wildcards):
    """On what the task's model_best was selected ({} if its runs do not validate)."""
    return STUDY.model_best_selection(wildcards.task)


def get_visual_panels(wildcards):
    """(method, restored, scores) of one comparison grid; ConfigError for a grid the study has not."""
    grid = (wildcards.kind, wildcards.task, wildcards.dataset)
    if grid not in TARGETS.visual_grids():
        raise ConfigError(f"study {STUDY.name} has no comparison grid {'_'.join(grid)}")
    return TARGETS.visual_panels(*grid)


def get_visual_inputs(wildcards):
    return [path for _, *paths in get_visual_panels(wildcards) for path in paths]


def get_input_scores(wildcards):
    return TARGETS.scores(
        STUDY.task_source(INPUT, wildcards.task), _test_set(wildcards)
    )


def get_ablation_stats(wildcards):
    return TARGETS.ablation_stats()


def get_cost_labels(wildcards, output):
    """The cost table's label in the report: the study's cost headline (its cost.json), for
    the report's front page (workflow/report/workflow.rst); called by --report only."""
    from mprnet.report.hours import read_headline  # pandas: not for every plan

    return {"Cost": read_headline(output.record)}
