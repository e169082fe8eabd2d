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
