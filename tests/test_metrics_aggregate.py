"""Paper aggregation: per-dataset means and the deraining 'Average' (mean of dataset means)."""

import math

import pandas as pd
import pytest

from mprnet.errors import DataError
from mprnet.metrics import DERAINING_AVERAGE, aggregate


def scores(psnrs, ssims):
    return pd.DataFrame({"image": [f"{i}" for i in range(len(psnrs))], "psnr": psnrs, "ssim": ssims})


def test_average_is_the_mean_of_dataset_means_not_of_images():
    per = {
        "Test100": scores([30.0, 32.0], [0.9, 0.8]),            # mean 31, 0.85
        "Rain100H": scores([20.0], [0.5]),
        "Rain100L": scores([40.0, 40.0, 40.0, 40.0], [1.0, 1.0, 1.0, 1.0]),
        "Test2800": scores([25.0, 35.0], [0.7, 0.9]),          # mean 30, 0.8
        "Test1200": scores([33.0], [0.95]),
    }
    table = aggregate(per, average_of=DERAINING_AVERAGE).set_index("dataset")
    assert table.loc["Test100", "psnr"] == 31.0
    assert table.loc["Test100", "images"] == 2
    avg = table.loc["Average"]
    assert avg["psnr"] == pytest.approx((31 + 20 + 40 + 30 + 33) / 5)
    assert avg["ssim"] == pytest.approx((0.85 + 0.5 + 1.0 + 0.8 + 0.95) / 5)
    assert avg["images"] == 10
    all_images = pd.concat(per.values())["psnr"].mean()
    assert avg["psnr"] != pytest.approx(all_images)


def test_without_average_only_dataset_rows_and_inf_propagates():
    table = aggregate({"GoPro": scores([math.inf, 30.0], [1.0, 0.9]), "HIDE": scores([29.0], [0.9])})
    assert list(table["dataset"]) == ["GoPro", "HIDE"]
    assert math.isinf(table.loc[0, "psnr"])


def test_average_of_missing_dataset_is_an_error():
    with pytest.raises(DataError, match="Rain100H"):
        aggregate({"Test100": scores([30.0], [0.9])}, average_of=["Test100", "Rain100H"])
    with pytest.raises(DataError, match="empty|no scores"):
        aggregate({"Test100": scores([], [])})
