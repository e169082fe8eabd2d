"""Registries and copies of datasets for the data tests: a throw-away project with its own
registry, the shipped registry on a temporary data folder, and archives of folders."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import yaml

from mprnet.data.prepare import prepare_dataset, read_manifest
from mprnet.data.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]


class Project:
    """A temporary project: a registry with the given entries and a data folder."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.sources: dict = {}
        self.datasets: dict = {}

    def source(self, sid: str, kind: str = "http") -> Path:
        self.sources[sid] = {"kind": kind, "url": f"http://127.0.0.1/{sid}", "title": sid}
        if kind == "manual":
            self.sources[sid]["download"] = [f"the files of {sid}"]
        folder = self.data / "downloads" / sid
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def dataset(self, name: str, converter: str, splits: dict, **extra) -> None:
        layout = {"converter": converter, "original": "-", "splits": splits}
        if converter not in ("copy_files", "copy_tree"):
            layout["stem"] = extra.get("stem", "name")
        self.datasets[name] = {"title": name, "task": extra.get("task", "deblurring"), "role": "test",
                               "protocol": extra.get("protocol", "rgb"), "licence": "test", "layout": layout}

    def registry(self):
        path = self.root / "datasets.yaml"
        path.write_text(yaml.safe_dump({"schema_version": 1, "sources": self.sources, "datasets": self.datasets},
                                       sort_keys=False))
        return load_registry(path)

    def prepare(self, name: str, **kwargs):
        return prepare_dataset(name, self.registry(), data_dir=self.data, progress=False, **kwargs)


def shipped_registry():
    return load_registry(ROOT / "config" / "datasets.yaml")


def prepare_shipped(name: str, split: str, data_dir: Path) -> list[str]:
    """Prepare ``split`` of the shipped registry's dataset ``name`` from ``data_dir/downloads``
    (a tiny copy: any count accepted) and return the stems of its manifest."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (out,) = prepare_dataset(name, shipped_registry(), data_dir=data_dir, splits=[split],
                                 allow_count_mismatch=True, progress=False)
    return [row["stem"] for row in read_manifest(out / "manifest.csv")]


def zip_folder(folder: Path, archive: Path) -> Path:
    """Write every file below ``folder`` into the zip ``archive`` (paths relative to ``folder``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(folder).as_posix())
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(buffer.getvalue())
    return archive


def write_dnd(folder: Path, images: list[np.ndarray], boxes: list[np.ndarray]) -> None:
    """DND as distributed: ``info.mat`` (HDF5, info/boundingboxes references to 1-based
    [r0 c0 r1 c1] boxes) and ``images_srgb/NNNN.mat`` with ``InoisySRGB``."""
    import h5py

    (folder / "images_srgb").mkdir(parents=True)
    with h5py.File(folder / "info.mat", "w") as handle:
        info = handle.create_group("info")
        refs = handle.create_group("#refs#")
        ref_list = []
        for i, b in enumerate(boxes):
            ref_list.append(refs.create_dataset(f"b{i}", data=b.T.astype(np.float64)).ref)
        data = np.empty((1, len(ref_list)), dtype=h5py.ref_dtype)
        data[0, :] = ref_list
        info.create_dataset("boundingboxes", data=data)
    for i, image in enumerate(images):
        with h5py.File(folder / "images_srgb" / f"{i + 1:04d}.mat", "w") as handle:
            handle.create_dataset("InoisySRGB", data=image.T)
