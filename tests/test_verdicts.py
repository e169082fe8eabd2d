"""Verdicts per published cell (mprnet.study.verdicts) on summaries with known numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mprnet.study.aggregate import SUMMARY_COLUMNS, summarise
from mprnet.study.verdicts import (
    MISSING,
    NO_SPREAD,
    NOT_REPRODUCED,
    ONE_SEED,
    REPRODUCED,
    RULE,
    VERDICT_COLUMNS,
    verdicts,
)


def row(task, dataset, method, group, psnr, ssim=0.9, n_seeds=None, psnr_std=None):
    return {"task": task, "dataset": dataset, "method": method, "psnr": psnr, "ssim": ssim, "n_images": 10,
            "group": group, "n_seeds": n_seeds, "psnr_std": psnr_std, "ssim_std": None, "precision": None,
            "train_precision": None}


def paper(task, dataset, psnr, ssim=0.9):
    return row(task, dataset, "paper", "paper", psnr, ssim)


SUMMARY = [
    paper("deraining", "rain100l", 36.40, 0.965),
    row("deraining", "rain100l", "degraded", "input", 26.90, 0.838, 1),
    row("deraining", "rain100l", "full", "main", 36.25, 0.961, 3, 0.10),   # |Δ| .15 ≤ 2σ = .2
    paper("deraining", "rain100h", 30.41),
    row("deraining", "rain100h", "full", "main", 30.00, 0.88, 2, 0.05),    # |Δ| .41 > max(.1, .1)
    paper("deraining", "test100", 30.27),
    row("deraining", "test100", "full", "main", 30.37, 0.90, 1),           # one seed, |Δ| = 0.1 exactly
    paper("deraining", "test2800", 33.64),
    row("deraining", "test2800", "full", "main", 33.00, 0.93, 1),          # one seed, |Δ| .64
    paper("deraining", "test1200", 32.91),                                 # nothing of ours: missing
    paper("deraining", "Average", 32.73, 0.921),
    row("deraining", "Average", "full", "main", 32.70, 0.92, 2),           # several seeds, no spread
    paper("deblurring", "gopro", 32.66, 0.959),
    row("deblurring", "gopro", "full", "ablation", 29.0, 0.9, 3, 0.02),    # ablations are not compared
    row("deblurring", "gopro", "full", "main", 32.61, 0.958, 2, 0.01),     # |Δ| .05: reproduced at the floor
    row("deblurring", "gopro", "official_weights", "official_weights", 32.70, 0.959, 1),
    row("deblurring", "gopro", "released_results", "released_results", 32.50, 0.957, 1),
    paper("deblurring", "hide", 30.96),
    row("deblurring", "hide", "full", "main", math.nan, math.nan, 2),      # an empty score: missing
    paper("denoising", "dnd", None, None),                                 # not published: no row
]


@pytest.fixture
def table():
    return verdicts(pd.DataFrame(SUMMARY, columns=SUMMARY_COLUMNS)).set_index(["dataset", "group"])


def test_the_rule_reproduced_not_reproduced_one_seed_missing(table):
    assert list(table.reset_index().columns) == ["dataset", "group"] + [c for c in VERDICT_COLUMNS
                                                                        if c not in ("dataset", "group")]
    expected = {
        ("rain100l", "main"): (REPRODUCED, 0.2),
        ("rain100h", "main"): (NOT_REPRODUCED, 0.1),
        ("test100", "main"): (ONE_SEED, math.nan),
        ("test2800", "main"): (ONE_SEED, math.nan),
        ("test1200", "main"): (MISSING, math.nan),
        ("Average", "main"): (NO_SPREAD, math.nan),
        ("gopro", "main"): (REPRODUCED, 0.1),
        ("gopro", "official_weights"): (REPRODUCED, 0.1),
        ("gopro", "released_results"): (NOT_REPRODUCED, 0.1),
        ("hide", "main"): (MISSING, math.nan),
    }
    assert sorted(table.index) == sorted(expected)
    for key, (verdict, tolerance) in expected.items():
        assert table.loc[key, "verdict"] == verdict, key
        assert table.loc[key, "tolerance_db"] == pytest.approx(tolerance, nan_ok=True), key


def test_numbers_next_to_the_paper(table):
    r = table.loc[("rain100l", "main")]
    assert (r["paper_psnr"], r["paper_ssim"], r["psnr"], r["ssim"]) == (36.40, 0.965, 36.25, 0.961)
    assert r["d_psnr"] == pytest.approx(-0.15) and r["d_ssim"] == pytest.approx(-0.004)
    assert (r["n_seeds"], r["psnr_std"], r["method"], r["task"]) == (3, 0.10, "full", "deraining")
    assert not r["within_0_1_db"]  # reproduced through 2σ, not through the floor
    # One seed: no tolerance, but whether |Δ| ≤ 0.1 dB is still said (30.37 − 30.27 counts as 0.1).
    assert table.loc[("test100", "main"), "within_0_1_db"]
    assert not table.loc[("test2800", "main"), "within_0_1_db"]
    missing = table.loc[("test1200", "main")]
    assert missing["method"] == "full" and missing["paper_psnr"] == 32.91
    assert math.isnan(missing["psnr"]) and math.isnan(missing["d_psnr"]) and pd.isna(missing["within_0_1_db"])
    assert table.loc[("gopro", "official_weights"), "d_psnr"] == pytest.approx(0.04)
    assert table.loc[("gopro", "released_results"), "d_psnr"] == pytest.approx(-0.16)


def test_order_and_groups(table):
    order = list(table.index)
    assert order.index(("gopro", "main")) < order.index(("gopro", "official_weights")) \
        < order.index(("gopro", "released_results"))
    assert "dnd" not in table.index.get_level_values("dataset")  # a null paper number has no verdict
    assert "ablation" not in table.index.get_level_values("group")


def test_boundaries_of_the_tolerance():
    def one(psnr, n_seeds, std, group="main"):
        rows = [paper("t", "d", 30.0), row("t", "d", "full" if group == "main" else group, group, psnr, 0.9,
                                             n_seeds, std)]
        out = verdicts(rows).set_index("group")
        assert group == "main" or out.loc["main", "verdict"] == MISSING  # main is there, missing, in any case
        return out.loc[group]

    assert one(30.2999, 2, 0.15)["verdict"] == REPRODUCED  # 2σ = 0.3
    assert one(30.3001, 2, 0.15)["verdict"] == NOT_REPRODUCED
    assert one(29.9, 2, 0.01)["verdict"] == REPRODUCED  # floor 0.1 dB, Δ −0.1
    assert one(29.899, 2, 0.01)["verdict"] == NOT_REPRODUCED
    # An infinite PSNR is never the paper's, whatever the seeds (aggregate gives it no spread).
    assert one(math.inf, 2, math.nan)["verdict"] == NOT_REPRODUCED
    assert one(math.inf, 3, 0.1)["verdict"] == NOT_REPRODUCED
    assert one(math.inf, 1, None)["verdict"] == NOT_REPRODUCED
    assert one(30.05, 1, None, "official_weights")["verdict"] == REPRODUCED  # no training: σ = 0
    assert one(30.15, 1, None, "official_weights")["verdict"] == NOT_REPRODUCED
    assert one(30.05, None, None)["verdict"] == ONE_SEED  # no seed count: one seed


def test_works_on_the_aggregated_summary_as_written_and_read_back(tmp_path):
    runs = [{"task": "deraining", "dataset": ds, "method": "full", "group": "main", "seed": seed,
             "psnr": base + 0.1 * seed, "ssim": 0.9, "n_images": 10, "precision": "fp32", "train_precision": "fp32"}
            for ds, base in (("rain100l", 36.3), ("rain100h", 29.0)) for seed in (0, 1, 2)]
    published = {"deraining": {"rain100l": {"psnr": 36.40, "ssim": 0.965}, "rain100h": {"psnr": 30.41, "ssim": 0.89},
                               "Average": {"psnr": 33.4, "ssim": 0.93}}}
    rows = summarise(runs, published, {"deraining"})
    path = tmp_path / "summary.csv"
    pd.DataFrame(rows, columns=SUMMARY_COLUMNS).to_csv(path, index=False)
    for summary in (rows, pd.read_csv(path)):
        out = verdicts(summary).set_index("dataset")
        assert out.loc["rain100l", "verdict"] == REPRODUCED  # mean 36.4, σ 0.1
        assert out.loc["rain100l", "d_psnr"] == pytest.approx(0.0, abs=1e-9)
        assert out.loc["rain100h", "verdict"] == NOT_REPRODUCED
        assert out.loc["Average", "verdict"] == NO_SPREAD  # aggregate gives the Average no std
        assert out.loc["Average", "psnr"] == pytest.approx((36.4 + 29.1) / 2)


def test_empty_and_malformed_summaries():
    empty = verdicts(pd.DataFrame(columns=SUMMARY_COLUMNS))
    assert empty.empty and list(empty.columns) == VERDICT_COLUMNS
    assert verdicts([row("t", "d", "full", "main", 30.0, 0.9, 1)]).empty  # no paper rows
    with pytest.raises(ValueError, match="psnr_std"):
        verdicts(pd.DataFrame([paper("t", "d", 30.0)]).drop(columns=["psnr_std"]))
    assert "max(0.1 dB, 2σ)" in RULE


def test_summary_csv_carries_the_verdicts(tmp_path):
    """Through the aggregation job's function: the study manifest and score files in, summary.csv
    out with the paper's numbers, Δ, tolerance and verdict on each compared row, and `missing` on
    the published cell that has no main number."""
    import yaml

    from mprnet.study.aggregate import aggregate

    entries = []
    for dataset, seed, psnr in (("rain100l", 0, 36.3), ("rain100l", 1, 36.5), ("rain100h", 0, 29.0)):
        path = tmp_path / f"scores/main/{dataset}/seed{seed}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"image": ["a", "b"], "psnr": [psnr - 1, psnr + 1], "ssim": [0.9, 0.92]}).to_csv(path, index=False)
        entries.append({"task": "deraining", "dataset": dataset, "method": "full", "group": "main", "seed": seed,
                        "path": str(path)})
    published = {"deraining": {"rain100l": {"psnr": 36.40, "ssim": 0.965}, "rain100h": {"psnr": 30.41, "ssim": 0.89},
                               "test100": {"psnr": 30.27, "ssim": 0.897}}}
    manifest = tmp_path / "study.yaml"
    manifest.write_text(yaml.safe_dump({"study": "t", "published": published, "scores": entries}))
    aggregate(manifest, tmp_path / "summary.csv")
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    by = summary.set_index(["dataset", "group"])
    l100 = by.loc[("rain100l", "main")]  # mean 36.4, σ = 0.1414: |Δ| 0 ≤ max(0.1, 0.283)
    assert (l100["verdict"], l100["paper_psnr"], l100["paper_ssim"]) == (REPRODUCED, 36.40, 0.965)
    assert l100["d_psnr"] == pytest.approx(0.0, abs=1e-9) and l100["d_ssim"] == pytest.approx(0.91 - 0.965)
    assert l100["tolerance_db"] == pytest.approx(2 * math.sqrt(0.02))
    h100 = by.loc[("rain100h", "main")]
    assert h100["verdict"] == ONE_SEED and math.isnan(h100["tolerance_db"])
    assert h100["d_psnr"] == pytest.approx(29.0 - 30.41)
    assert by.loc[("test100", "paper"), "verdict"] == MISSING  # published, not scored by us
    assert by.loc[("rain100l", "paper"), ["verdict", "d_psnr"]].isna().all()  # said on our rows only


def test_main_table_shows_a_verdict_under_each_compared_row():
    from mprnet.report.tables import main_results_table
    from mprnet.study.verdicts import with_verdicts

    summary = pd.DataFrame(with_verdicts([dict(r) for r in SUMMARY]), columns=SUMMARY_COLUMNS)
    table = main_results_table(summary, "deblurring")
    labels = [label for label, _ in table.rows]
    assert labels == ["Paper", "Ours", "Δ (ours − paper)", "Verdict", "Official weights", "Δ (official − paper)",
                      "Verdict (official weights)", "Released results", "Verdict (released results)"]
    rows = dict(table.rows)
    assert table.header[:4] == [("gopro", "PSNR"), ("gopro", "SSIM"), ("hide", "PSNR"), ("hide", "SSIM")]
    assert rows["Verdict"] == ["reproduced", "", "missing", ""]
    assert rows["Verdict (official weights)"][:2] == ["reproduced", ""]
    assert rows["Verdict (released results)"][:2] == ["not reproduced", ""]
    assert "Verdicts on the 2 published PSNRs: 1 reproduced, 1 missing. Rule: reproduced when" in " ".join(table.notes)
    data = table.data.set_index("row")
    assert data.loc["verdict_full", "gopro_psnr"] == REPRODUCED and data.loc["full", "gopro_psnr"] == 32.61
    deraining = dict(main_results_table(summary, "deraining").rows)["Verdict"]
    assert deraining[::2] == ["not reproduced", "reproduced", "one seed", "missing", "one seed", "σ unknown"]
    # A summary written before the verdict columns existed: no verdict row, nothing else changes.
    old = main_results_table(summary.drop(columns=["verdict"]), "deblurring")
    assert "Verdict" not in [label for label, _ in old.rows] and len(old.rows) == len(table.rows) - 3


def test_a_published_cell_without_public_ground_truth_is_scored_online_not_missing():
    """DND: the paper publishes 39.80 dB; the study bundles its restored images for the online
    benchmark and can have no number of its own. Its verdict says so, on the paper row, and the
    main table's note does not count it as missing."""
    from mprnet.report.tables import main_results_table
    from mprnet.study.verdicts import ONLINE, with_verdicts

    rows = [paper("denoising", "sidd", 39.71, 0.958), row("denoising", "sidd", "full", "main", 39.60, 0.957, 1),
            paper("denoising", "dnd", 39.80, 0.954)]
    assert verdicts(rows).set_index("dataset").loc["dnd", "verdict"] == MISSING  # nobody said it has no ground truth
    summary = pd.DataFrame(with_verdicts(rows, online=["dnd"]), columns=SUMMARY_COLUMNS)
    assert summary.set_index(["dataset", "group"]).loc[("dnd", "paper"), "verdict"] == ONLINE
    table = main_results_table(summary, "denoising")
    assert table.header[0] == ("dnd", "PSNR") and dict(table.rows)["Verdict"] == ["online only", "", "one seed", ""]
    assert "2 published PSNRs: 1 from one seed (σ unknown), 1 scored by its online benchmark only" in " ".join(table.notes)
    # No main model at all (its run failed): the verdicts, all missing, follow the paper's row.
    without = summary[summary["group"] != "main"]
    table = main_results_table(pd.DataFrame(with_verdicts(without.to_dict("records"))), "denoising")
    assert [label for label, _ in table.rows] == ["Paper", "Verdict"]
    assert dict(table.rows)["Verdict"] == ["missing", "", "missing", ""]
