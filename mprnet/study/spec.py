"""The study as typed records: the validated config section, turned once into frozen dataclasses.

:func:`mprnet.study.config.load_study` builds them; nothing after it reads the config's dicts.
A study has :class:`Task` s (each with its :class:`TestSet` s and :class:`RestoreSettings`), an
optional :class:`Ablation`, the :class:`Run` s both make (one per seed and variant), the
:class:`Source` s of every scored image set, its :class:`DataSettings` and :class:`ReportSettings`.
Records holding mappings (a run's config, a task's recipe) compare by identity; treat the
mappings as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ..metrics.protocols import Protocol, get_protocol
from ..restore import DEFAULT_OVERLAP, DEFAULT_PRECISION
from ..vocabulary import DEGRADED, INPUT, MODEL_BEST, OFFICIAL_WEIGHTS, RUN_GROUPS


def canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted (lists keep their order): the form of a rule's
    params, which Snakemake compares as text to decide a rerun, so that reordering the keys of
    a config file reruns nothing."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def run_key(group: str, task: str, variant: str, seed: int | str) -> str:
    """The key of a training run, and of its source: ``<group>/<task>/<variant>/seed<seed>``."""
    return f"{group}/{task}/{variant}/seed{seed}"


@dataclass(frozen=True)
class DatasetRef:
    """A prepared dataset split: ``<data root>/<name>/<split>/{input,target}``."""

    name: str
    split: str

    @property
    def path(self) -> str:
        """Folder relative to the data root: ``<name>/<split>``."""
        return f"{self.name}/{self.split}"


@dataclass(frozen=True)
class TestSet:
    """A test set of a task: a prepared split scored with one of the paper's protocols."""

    name: str
    split: str
    protocol: str  # a key of mprnet.metrics.protocols.PROTOCOL_REGISTRY

    @property
    def record(self) -> Protocol:
        return get_protocol(self.protocol)

    @property
    def scored(self) -> bool:
        """Whether it has public ground truth (DND has none: its restored images are bundled)."""
        return self.record.ground_truth


@dataclass(frozen=True)
class RestoreSettings:
    """How a restore job runs ``mprnet.restore.restore_checkpoint``: the task's ``restore:``
    (``tile`` in pixels or None for whole images, ``overlap`` in pixels, ``save_stages``,
    ``precision`` fp32 or bf16) and, per test set, ``save_float`` (its protocol's ``restore_float``)."""

    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    save_stages: bool = False
    precision: str = DEFAULT_PRECISION
    save_float: bool = False

    def for_test_set(self, ts: TestSet) -> "RestoreSettings":
        return replace(self, save_float=ts.record.restore_float)


@dataclass(frozen=True, eq=False)
class Task:
    """A task of the study (``tasks.<name>``): its preset, data, seeds and the main model's settings."""

    name: str
    preset: str
    train_set: DatasetRef
    val_set: DatasetRef | None
    test_sets: dict[str, TestSet]  # by name, in config order
    seeds: tuple[int, ...]
    model: dict  # constructor overrides of the preset
    recipe: dict  # overrides of the official recipe (mprnet train's run config sections)
    restore: RestoreSettings


@dataclass(frozen=True, eq=False)
class Ablation:
    """The study's ``ablations:``: variants of one task's model, trained on the ablation budget."""

    task: str
    train_set: DatasetRef
    val_set: DatasetRef | None
    test_sets: tuple[str, ...]
    seeds: tuple[int, ...]
    reference: str  # the variant the others are compared with
    variants: dict[str, dict]  # name -> ablation switches (sam, csff, num_stages)
    recipe: dict  # the task's recipe with the ablations' laid over it


@dataclass(frozen=True, eq=False)
class Run:
    """One training run: ``<group>/<task>/<variant>/seed<seed>``. ``config`` is its ``mprnet train``
    run config as the study sets it (unresolved: the trainer fills in its recipe defaults; the
    run.yaml file and the params Snakemake compares), ``resolved`` the same resolved once, with every
    default (what the train job asks of its machine is read from it)."""

    group: str
    task: str
    variant: str
    seed: int
    preset: str
    train_set: DatasetRef
    val_set: DatasetRef | None
    model: dict
    test_sets: tuple[TestSet, ...]
    config: dict
    resolved: dict

    @property
    def key(self) -> str:
        return run_key(self.group, self.task, self.variant, self.seed)

    @property
    def fields(self) -> dict:
        """The run's identity as the layout's fields (group, task, variant, seed)."""
        return {"group": self.group, "task": self.task, "variant": self.variant, "seed": self.seed}


@dataclass(frozen=True)
class Source:
    """What produced a set of scored images: a run (group ``main`` or ``ablation``: its final
    model), a main run's best-validation checkpoint (group ``model_best``), the official weights,
    the degraded inputs themselves or the authors' released results (the groups of
    :mod:`mprnet.vocabulary`). Its :attr:`key` is the ``source`` field of the results layout."""

    group: str
    task: str
    variant: str | None = None
    seed: int | None = None

    @property
    def key(self) -> str:
        """``<group>/<task>/<variant>/seed<seed>`` for a trained model, ``<group>/<task>`` otherwise."""
        if self.trained:
            return run_key(self.group, self.task, self.variant, self.seed)
        return f"{self.group}/{self.task}"

    @property
    def is_run(self) -> bool:
        """Whether it is a training run's final model (group ``main`` or ``ablation``)."""
        return self.group in RUN_GROUPS

    @property
    def trained(self) -> bool:
        """Whether its model was trained here: a run's final model or a main run's ``model_best``."""
        return self.is_run or self.group == MODEL_BEST

    @property
    def restores(self) -> bool:
        """Whether its images are restored here (a model trained here or the official weights)."""
        return self.trained or self.group == OFFICIAL_WEIGHTS

    @property
    def method(self) -> str:
        """The method name of summary.csv: the run's variant, ``model_best`` for a best-validation
        checkpoint (so that it never averages with the final model), else the group (``degraded``
        inputs)."""
        if self.group == INPUT:
            return DEGRADED
        if self.group == MODEL_BEST:
            return MODEL_BEST
        return self.variant or self.group


@dataclass(frozen=True)
class DataSettings:
    """The study's ``data:``: where datasets come from (``registry`` or ``demo``) and lie."""

    source: str
    root: str = "data"
    registry: str = "config/datasets.yaml"
    demo_seed: int = 0


@dataclass(frozen=True)
class ReportSettings:
    """The study's optional ``report:`` section, with its defaults."""

    device: str = ""  # the cost table's label of devices no record names, e.g. "GPU"
    visual_images: int = 3  # images per comparison grid
    bootstrap_resamples: int = 10_000  # paired bootstrap of the ablation table and bars
    bootstrap_seed: int = 0
    # The tiles-vs-whole check (TileCheck): images per scored test set (0: no check), and the tile
    # and overlap (pixels) a sample of a task restored whole is restored in (tile None: not checked).
    tile_check_images: int = 5
    tile_check_tile: int | None = None
    tile_check_overlap: int = DEFAULT_OVERLAP

    @classmethod
    def from_section(cls, section: dict | None) -> "ReportSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (section or {}).items() if k in known})


@dataclass(frozen=True)
class TileCheck:
    """Tiles against whole images on a sample of one task's test sets (``mprnet.report.tiles``).

    The study restores the task either in tiles (``restore.tile``) or whole; the check restores
    ``images`` images of each scored test set the other way, with the same model and precision,
    and compares per image with the study's own scores. ``tile``/``overlap`` (pixels) are the
    tiling compared: the task's own when ``study_tiles``, else the report's ``tile_check_tile``
    and ``tile_check_overlap``.
    """

    tile: int
    overlap: int
    study_tiles: bool  # True: the study's images are tiled, the check restores whole ones
    images: int
