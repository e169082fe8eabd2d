"""The ruler table and figure of a study (mprnet.report.rulers, figures.ruler_sensitivity, the
report_rulers job) on per-image ruler files whose differences are known by construction; the
ruler_scores files of the workflow are written by `mprnet rulers` (tests/test_rulers.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mprnet.errors import DataError
from mprnet.metrics.rulers import PER_IMAGE_COLUMNS
from mprnet.report import jobs
from mprnet.report.rulers import read_ruler_files, ruler_summaries, ruler_table


def _ruler_file(path: Path, paper: list[tuple[float, float]], deltas: dict[str, list[tuple[float, float]]]) -> Path:
    """A file as `mprnet rulers --out` writes it: per image, the paper's ruler and each ruler's Δ."""
    rows = []
    for k, (p_psnr, p_ssim) in enumerate(paper):
        for name, d in [("paper", (0.0, 0.0))] + [(n, v[k]) for n, v in deltas.items()]:
            rows.append({"image": f"{k:03d}", "ruler": name, "psnr": p_psnr + d[0], "ssim": p_ssim + d[1],
                         "paper_psnr": p_psnr, "paper_ssim": p_ssim, "d_psnr": d[0], "d_ssim": d[1]})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS).to_csv(path, index=False)
    return path


@pytest.fixture
def files(tmp_path):
    blur = _ruler_file(tmp_path / "rulers/main/deblurring/full/seed0/GoPro.csv", [(30.0, 0.90), (20.0, 0.80)],
                       {"basicsr_rgb": [(0.0, -0.010), (0.0, -0.030)], "skimage": [(0.5, 0.020), (0.1, 0.0)]})
    rain = _ruler_file(tmp_path / "rulers/main/deraining/full/seed0/Rain100L.csv",
                       [(36.0, 0.96), (34.0, 0.95), (35.0, 0.97)],
                       {"basicsr_y": [(-0.1, 0.001), (-0.3, 0.003), (-0.2, 0.002)]})
    fields = {"method": "full", "group": "main", "seed": 0}
    # Given in the wrong order: the table puts deraining before deblurring, as the paper does.
    return [(dict(fields, task="deblurring", dataset="GoPro", protocol="rgb"), str(blur)),
            (dict(fields, task="deraining", dataset="Rain100L", protocol="y_channel"), str(rain))]


def test_summaries_are_the_spread_of_each_rulers_differences(files):
    summaries = ruler_summaries(read_ruler_files(files))
    assert list(zip(summaries["dataset"], summaries["ruler"])) == [  # the registry's order of rulers
        ("Rain100L", "paper"), ("Rain100L", "basicsr_y"), ("Rain100L", "psnr_of_mean_mse"),
        ("GoPro", "paper"), ("GoPro", "skimage"), ("GoPro", "basicsr_rgb"), ("GoPro", "psnr_of_mean_mse")]
    row = summaries.set_index(["dataset", "ruler"])
    assert row.loc[("Rain100L", "basicsr_y"), "d_psnr_mean"] == pytest.approx(-0.2)
    assert row.loc[("Rain100L", "basicsr_y"), "d_psnr_std"] == pytest.approx(0.1)  # sample std of .1 .3 .2
    assert row.loc[("GoPro", "skimage"), ["d_psnr_min", "d_psnr_max"]].tolist() == pytest.approx([0.1, 0.5])
    assert row.loc[("GoPro", "basicsr_rgb"), "d_ssim_mean"] == pytest.approx(-0.02)
    # PSNR of the mean MSE of 30 and 20 dB: −10·log10((1e-3 + 1e-2) / 2) = 22.596 dB, 2.404 below 25.
    assert row.loc[("GoPro", "psnr_of_mean_mse"), "psnr"] == pytest.approx(-10 * math.log10(0.0055))
    assert row.loc[("GoPro", "psnr_of_mean_mse"), "d_psnr_mean"] == pytest.approx(-10 * math.log10(0.0055) - 25)
    assert set(summaries["protocol"]) == {"rgb", "y_channel"} and set(summaries["seed"]) == {0}


def test_table_cells_and_layout(files):
    table = ruler_table(ruler_summaries(read_ruler_files(files)))
    rows = dict(table.rows)
    assert list(rows) == ["Rain100L: Paper's ruler (y_channel)", "Rain100L: BasicSR (Y)", "Rain100L: PSNR of mean MSE",
                          "GoPro: Paper's ruler (rgb)", "GoPro: scikit-image", "GoPro: BasicSR (RGB)",
                          "GoPro: PSNR of mean MSE"]
    assert rows["Rain100L: Paper's ruler (y_channel)"] == ["35.00", "(reference)", "", "0.9600", "(reference)", ""]
    assert rows["Rain100L: BasicSR (Y)"] == ["34.80", "−0.200 ± 0.100", "[−0.300, −0.100]", "0.9620",
                                             "+0.0020 ± 0.0010", "[+0.0010, +0.0030]"]
    assert rows["GoPro: PSNR of mean MSE"][:3] == ["22.60", "−2.404", "–"]
    assert rows["GoPro: BasicSR (RGB)"][:3] == ["25.00", "= paper", ""]  # the same PSNR formula
    assert rows["GoPro: BasicSR (RGB)"][4:] == ["−0.0200 ± 0.0141", "[−0.0300, −0.0100]"]
    assert table.rules_before == {3}  # a rule between the two test sets
    assert "seed 0" in table.notes[0] and "BasicSR (Y): BasicSR test_y_channel" in table.notes[1]


def test_report_job_writes_the_table_and_the_figure(files, tmp_path):
    written = jobs.ruler_report(files, tmp_path / "tables", tmp_path / "figures" / "rulers")
    names = sorted(p.name for p in written)
    assert names == ["rulers.csv", "rulers.html", "rulers.md", "rulers.pdf", "rulers.png", "rulers.tex"]
    assert all(p.stat().st_size > 0 for p in written)
    csv = pd.read_csv(tmp_path / "tables" / "rulers.csv")
    assert csv.loc[csv["ruler"] == "basicsr_y", "d_psnr_mean"].item() == pytest.approx(-0.2)


def test_figure_has_a_row_of_two_panels_per_test_set(files):
    from mprnet.report import figures

    per_image = read_ruler_files(files)
    fig = figures.ruler_sensitivity(per_image, ruler_summaries(per_image))
    axes = fig.axes
    assert len(axes) == 4
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["BasicSR (Y)", "PSNR of mean MSE"]
    assert [t.get_text() for t in axes[2].get_yticklabels()] == ["scikit-image", "BasicSR (RGB)", "PSNR of mean MSE"]
    assert axes[0].get_title().startswith("Rain100L (3 images, paper's ruler: y_channel)")
    xs = np.concatenate([c.get_offsets()[:, 0] for c in axes[0].collections])
    assert sorted(np.round(xs, 6))[:3] == [-0.3, -0.2, -0.1]  # every image is a dot at its Δ
    figures.plt.close(fig)


def test_no_files_or_a_file_without_its_protocol_is_an_error(files):
    with pytest.raises(DataError, match="no ruler score files"):
        read_ruler_files([])
    fields, path = files[0]
    with pytest.raises(DataError, match="no protocol"):
        read_ruler_files([({k: v for k, v in fields.items() if k != "protocol"}, path)])
