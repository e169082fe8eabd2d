"""``mprnet dnd-bundle``: the DND online-benchmark submission files, read back with scipy."""

import numpy as np
import pytest
import scipy.io

from mprnet.cli import main
from mprnet.errors import DataError
from mprnet.images import write_png
from mprnet.metrics.dnd import write_bundle

pytestmark = pytest.mark.filterwarnings("ignore:.*the DND benchmark has 50:UserWarning")


def crops(rng, image, shape=(8, 6, 3)):
    return {box: rng.random(shape).astype(np.float32) for box in range(1, 21)}


def write_float(folder, image, boxes):
    folder.mkdir(parents=True, exist_ok=True)
    for box, crop in boxes.items():
        np.save(folder / f"{image:04d}_{box:02d}.npy", crop)


def test_bundle_holds_20_float32_crops_israw_false_and_version(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = {1: crops(rng, 1), 2: crops(rng, 2, (5, 7, 3))}
    for image, boxes in data.items():
        write_float(tmp_path / "restored" / "float", image, boxes)
    with pytest.warns(UserWarning, match="50"):
        code = main(["dnd-bundle", "--input", str(tmp_path / "restored"), "--output", str(tmp_path / "mat")])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "mat").iterdir()) == ["0001.mat", "0002.mat"]
    for image, boxes in data.items():
        mat = scipy.io.loadmat(tmp_path / "mat" / f"{image:04d}.mat")
        cell = mat["Idenoised"]
        assert cell.dtype == object and cell.shape == (1, 20)
        for box in range(1, 21):
            got = cell[0, box - 1]
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, boxes[box])
        assert not bool(mat["israw"].item())
        assert str(mat["eval_version"].item()) == "1.0"


def test_png_crops_are_converted_with_a_warning(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {box: rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for box in range(1, 21)}
    for box, a in arrays.items():
        write_png(tmp_path / "in" / f"0003_{box:02d}.png", a)
    with pytest.warns(UserWarning, match="8-bit"):
        written = write_bundle(tmp_path / "in", tmp_path / "out")
    assert [p.name for p in written] == ["0003.mat"]
    cell = scipy.io.loadmat(written[0])["Idenoised"]
    np.testing.assert_allclose(cell[0, 4], arrays[5] / 255.0, atol=1e-7)


def test_missing_box_is_named_and_nothing_is_written(tmp_path):
    rng = np.random.default_rng(2)
    boxes = crops(rng, 1)
    del boxes[7]
    write_float(tmp_path / "in", 1, boxes)
    with pytest.raises(DataError, match="0001 lacks box.*7"):
        write_bundle(tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_badly_named_or_out_of_range_crops_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    write_float(tmp_path / "in", 1, crops(rng, 1))
    np.save(tmp_path / "in" / "0001_21.npy", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(DataError, match="0001_21"):
        write_bundle(tmp_path / "in", tmp_path / "out")
    (tmp_path / "in" / "0001_21.npy").unlink()
    np.save(tmp_path / "in" / "0001_03.npy", np.full((4, 4, 3), 1.2, np.float32))
    with pytest.raises(DataError, match=r"0001_03\.npy.*\[0, 1\]"):
        write_bundle(tmp_path / "in", tmp_path / "out")


def test_empty_input_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(DataError, match="no restored crops"):
        write_bundle(tmp_path / "in", tmp_path / "out")


# --------------------------------------------------------------------------- the workflow's DND path

def _write_dnd_source(folder, image, boxes):
    """DND's original layout (MATLAB v7.3 files): info.mat with 1-based inclusive boxes, images_srgb/0001.mat."""
    import h5py

    (folder / "images_srgb").mkdir(parents=True)
    with h5py.File(folder / "info.mat", "w") as handle:
        ref = handle.create_group("#refs#").create_dataset("b0", data=boxes.T.astype(np.float64)).ref
        refs = np.empty((1, 1), dtype=h5py.ref_dtype)
        refs[0, 0] = ref
        handle.create_group("info").create_dataset("boundingboxes", data=refs)
    with h5py.File(folder / "images_srgb" / "0001.mat", "w") as handle:
        handle.create_dataset("InoisySRGB", data=image.T)


@pytest.mark.slow
def test_workflow_restores_dnd_from_the_float_crops_and_bundles_that_run(tmp_path):
    """prepare (dnd_crops) -> Snakemake's restore and dnd_bundle jobs -> the bundle holds the network's
    output for the exact float crops, not for their 8-bit PNGs (what the official test_DND.py submits)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import torch
    import yaml

    from mprnet.data.prepare import prepare_dataset
    from mprnet.data.registry import load_registry
    from mprnet.images import to_uint8
    from mprnet.model import build_model
    from mprnet.training.config import resolve_config
    from train_worker import TINY_MODEL

    root = Path(__file__).resolve().parents[1]
    work = tmp_path / "work"
    shutil.copytree(root / "config", work / "config")
    # 1. The prepared layout, made by the real converter from a one-image DND original.
    rng = np.random.default_rng(5)
    image = rng.random((40, 50, 3)).astype(np.float32)  # noisy sRGB floats, not multiples of 1/255
    boxes = np.array([[1 + 8 * (k // 5), 1 + 10 * (k % 5), 8 + 8 * (k // 5), 10 + 10 * (k % 5)] for k in range(20)])
    _write_dnd_source(work / "data" / "downloads" / "dnd" / "DND", image, boxes)
    registry = tmp_path / "datasets.yaml"
    registry.write_text(yaml.safe_dump({
        "schema_version": 1,
        "sources": {"dnd": {"kind": "http", "url": "http://127.0.0.1/dnd", "title": "dnd"}},
        "datasets": {"dnd": {"title": "dnd", "task": "denoising", "role": "test", "protocol": "dnd", "licence": "-",
                             "layout": {"converter": "dnd_crops", "original": "-", "stem": "block",
                                        "splits": {"test": {"source": "dnd", "count": 20}}}}}}))
    prepare_dataset("dnd", load_registry(registry), data_dir=work / "data", progress=False)
    split = work / "data" / "dnd" / "test"
    assert len(list((split / "input_float").glob("*.npy"))) == 20 and len(list((split / "input").glob("*.png"))) == 20
    # 2. A tiny denoiser in our checkpoint format, used as the study's "official weights".
    torch.manual_seed(0)
    model = build_model("denoising", **TINY_MODEL).eval()
    cfg = resolve_config({"task": "denoising", "data": {"train": "unused"}, "model": {"overrides": dict(TINY_MODEL)}})
    (work / "weights").mkdir()
    torch.save({"format": "mprnet-model/1", "model": model.state_dict(), "config": cfg, "iteration": 0},
               work / "weights" / "tiny.pt")
    study = {"study": "dndrun", "dndrun": {
        "description": "DND restore and bundle only",
        "data": {"source": "registry", "registry": "config/datasets.yaml", "root": "data"},
        "tasks": {"denoising": {"train_set": "sidd_train", "seeds": [0], "model": dict(TINY_MODEL),
                                "test_sets": {"dnd": "dnd"}}},
        "pretrained": {"denoising": {"checkpoint": "weights/tiny.pt"}}}}
    (work / "config" / "dndrun.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    # 3. Snakemake runs the two jobs (the data is prepared, so nothing else is allowed to run).
    bundle_dir = "results/dndrun/submissions/official_weights/denoising/dnd"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(root / "workflow" / "Snakefile"), "--cores", "1", "-p", bundle_dir,
         "--allowed-rules", "restore", "dnd_bundle", "--configfile", "config/dndrun.yaml"],
        cwd=work, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    job_log = (work / "results/dndrun/logs/restore/official_weights/denoising/dnd.log").read_text()
    assert "images of data/dnd/test/input_float restored" in job_log and "(with float outputs)" in job_log, job_log
    restored = work / "results/dndrun/restored/official_weights/denoising/dnd"
    assert len(list((restored / "float").glob("0001_??.npy"))) == 20
    mat = scipy.io.loadmat(work / bundle_dir / "0001.mat")
    assert sorted(p.name for p in (work / bundle_dir).glob("*.mat")) == ["0001.mat"]
    gaps = []
    for k, box in enumerate(boxes):
        crop = image[box[0] - 1:box[2], box[1] - 1:box[3]]
        outputs = {}
        for name, x in (("float", crop), ("png", to_uint8(crop).astype(np.float32) / np.float32(255))):
            with torch.no_grad():
                out = model(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None])[0]
            outputs[name] = out[0].clamp(0, 1).permute(1, 2, 0).numpy()
        got = mat["Idenoised"][0, k]
        assert got.dtype == np.float32 and got.shape == crop.shape
        np.testing.assert_allclose(got, outputs["float"], rtol=0, atol=1e-6)
        gaps.append(float(np.abs(got - outputs["png"]).max()))
    print(f"bundle vs a restore of the 8-bit PNGs: max |diff| {max(gaps) * 255:.3f}/255 (min over crops "
          f"{min(gaps) * 255:.3f}/255)")
    assert min(gaps) > 1e-4  # every crop of the bundle is the float run, not the PNG run
