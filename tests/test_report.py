"""Report layer: tables equal aggregates of the per-image scores, LaTeX is well-formed,
the bootstrap is correct and seeded, figures are written. All data synthetic, in tmp dirs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mprnet.errors import DataError
from mprnet.report import jobs, render, stats as report_stats, table as report_table, tables
from mprnet.report.loaders import read_run_scores, read_runs
from mprnet.report.stats import mean_std, paired_bootstrap_ci

DERAIN = ["Test100", "Rain100H", "Rain100L", "Test2800", "Test1200"]
PAPER = {"Test100": (30.27, 0.897), "Rain100H": (30.41, 0.890), "Rain100L": (36.40, 0.965),
         "Test2800": (33.64, 0.938), "Test1200": (32.91, 0.916), "Average": (32.73, 0.921),
         "GoPro": (32.66, 0.959), "HIDE": (30.96, 0.939)}
VARIANTS = {"full": 0.0, "no_sam": -0.3, "no_csff": -0.2, "single_stage": -1.0}


def _write_run(root: Path, rng, group, task, dataset, method, seed, base, n_images=12):
    images = [f"img{i:03d}" for i in range(n_images)]
    difficulty = np.linspace(-2, 2, n_images)  # shared across methods, so pairs are correlated
    psnr = base + difficulty + rng.normal(0, 0.05, n_images)
    ssim = np.clip(0.85 + 0.01 * difficulty + 0.005 * (base - 30) + rng.normal(0, 0.002, n_images), 0, 1)
    rel = Path("scores") / group / task / method / f"seed{seed}" / f"{dataset}.csv"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image": images, "psnr": psnr, "ssim": ssim}).to_csv(root / rel, index=False)
    return {"task": task, "dataset": dataset, "method": method, "group": group, "seed": seed,
            "psnr": psnr.mean(), "ssim": ssim.mean(), "n_images": n_images, "scores": rel.as_posix()}


@pytest.fixture
def study(tmp_path):
    """A synthetic study: runs.csv, per-image score files and a summary aggregated here."""
    rng = np.random.default_rng(0)
    runs = []
    for dataset in DERAIN:
        base = PAPER[dataset][0]
        runs.append(_write_run(tmp_path, rng, "input", "deraining", dataset, "degraded", 0, base - 6))
        for seed in (0, 1):
            runs.append(_write_run(tmp_path, rng, "main", "deraining", dataset, "full", seed, base - 0.2 + 0.1 * seed))
    for dataset in ("GoPro", "HIDE"):
        runs.append(_write_run(tmp_path, rng, "input", "deblurring", dataset, "degraded", 0, 25.0))
        runs.append(_write_run(tmp_path, rng, "main", "deblurring", dataset, "full", 0, PAPER[dataset][0] + 0.1))
    for method, shift in VARIANTS.items():
        for seed in (0, 1, 2):
            runs.append(_write_run(tmp_path, rng, "ablation", "deblurring", "GoPro", method, seed, 29.0 + shift + 0.05 * seed))
    runs_frame = pd.DataFrame(runs)
    runs_frame.drop(columns=["psnr", "ssim"]).to_csv(tmp_path / "runs.csv", index=False)
    seeds = runs_frame.groupby(["group", "task", "dataset", "method"], as_index=False).agg(
        psnr=("psnr", "mean"), ssim=("ssim", "mean"), n_images=("n_images", "first"), n_seeds=("seed", "nunique"))
    paper = pd.DataFrame([
        {"group": "paper", "task": "deraining" if d in DERAIN + ["Average"] else "deblurring", "dataset": d,
         "method": "paper", "psnr": p, "ssim": s, "n_images": np.nan, "n_seeds": np.nan}
        for d, (p, s) in PAPER.items()])
    summary = pd.concat([seeds, paper], ignore_index=True)
    summary.to_csv(tmp_path / "summary.csv", index=False)
    return tmp_path


def _per_image(root: Path) -> pd.DataFrame:
    return read_run_scores(read_runs(root / "runs.csv", root))


# ---------------------------------------------------------------------------- statistics


def test_bootstrap_ci_contains_known_shift_and_is_seeded():
    rng = np.random.default_rng(1)
    reference = rng.normal(30, 2, 400)
    variant = reference + 0.5 + rng.normal(0, 0.3, 400)  # true mean difference 0.5
    ci = paired_bootstrap_ci(variant, reference, seed=7)
    assert ci.contains(0.5) and not ci.contains(0.0)
    assert ci.low < ci.mean < ci.high
    assert ci.high - ci.low < 0.15  # paired: the 2 dB image spread cancels
    again = paired_bootstrap_ci(variant, reference, seed=7)
    assert (again.low, again.high) == (ci.low, ci.high)
    other = paired_bootstrap_ci(variant, reference, seed=8)
    assert (other.low, other.high) != (ci.low, ci.high)


def test_bootstrap_covers_truth_at_nominal_rate():
    rng = np.random.default_rng(2)
    hits = 0
    for trial in range(100):
        ref = rng.normal(30, 1, 60)
        var = ref + 0.2 + rng.normal(0, 0.5, 60)
        hits += paired_bootstrap_ci(var, ref, n_resamples=2000, seed=trial).contains(0.2)
    assert 85 <= hits <= 100  # 95% nominal; percentile bootstrap slightly under-covers at n=60


def test_bootstrap_rejects_unpaired_and_handles_tiny_samples():
    with pytest.raises(ValueError):
        paired_bootstrap_ci(np.ones(3), np.ones(4))
    one = paired_bootstrap_ci(np.array([2.0]), np.array([1.0]))
    assert one.mean == 1.0 and np.isnan(one.low)


def test_mean_std_uses_sample_std_and_single_value_has_none():
    assert mean_std([1.0, 2.0, 3.0])[:2] == (2.0, 1.0)
    mean, std, n = mean_std([4.0])
    assert (mean, n) == (4.0, 1) and np.isnan(std)


# ---------------------------------------------------------------------------- tables vs. data


def test_main_table_equals_recomputed_aggregates(study):
    summary = pd.read_csv(study / "summary.csv")
    scores = _per_image(study)
    numbers = tables.main_results(summary, "deraining")
    main = scores[scores["group"] != "ablation"]
    for dataset in DERAIN:
        for metric in ("psnr", "ssim"):
            runs = main[(main["task"] == "deraining") & (main["dataset"] == dataset)]
            ours = runs[runs["method"] == "full"].groupby("seed")[metric].mean().mean()
            inp = runs[runs["method"] == "degraded"][metric].mean()
            assert numbers.loc["full", (dataset, metric)] == pytest.approx(ours, abs=1e-9)
            assert numbers.loc["degraded", (dataset, metric)] == pytest.approx(inp, abs=1e-9)
            paper = PAPER[dataset][0 if metric == "psnr" else 1]
            assert numbers.loc["paper", (dataset, metric)] == pytest.approx(paper)
            assert numbers.loc["delta_full_paper", (dataset, metric)] == pytest.approx(ours - paper, abs=1e-9)


def test_deraining_average_is_mean_of_dataset_means(study):
    summary = pd.read_csv(study / "summary.csv")
    numbers = tables.main_results(summary, "deraining")
    for row in ("full", "paper", "degraded"):
        means = [numbers.loc[row, (d, "psnr")] for d in DERAIN]
        assert numbers.loc[row, ("Average", "psnr")] == pytest.approx(np.mean(means), abs=1e-12)
    assert round(numbers.loc["paper", ("Average", "psnr")], 2) == 32.73  # the paper's own Average
    # deblurring has no Average column, as in the paper
    assert "Average" not in tables.main_results(summary, "deblurring").columns.get_level_values(0)


def test_average_is_undefined_when_a_dataset_is_missing(study):
    summary = pd.read_csv(study / "summary.csv")
    partial = summary[~((summary["method"] == "full") & (summary["dataset"] == "Test2800"))]
    numbers = tables.main_results(partial, "deraining")
    assert np.isnan(numbers.loc["full", ("Average", "psnr")])


def test_ablation_table_equals_recomputed_aggregates(study):
    scores = _per_image(study)
    ablation = scores[scores["group"] == "ablation"]
    stats = report_stats.ablation_stats(ablation, n_resamples=2000).set_index("method")
    for method, shift in VARIANTS.items():
        runs = ablation[ablation["method"] == method]
        per_seed = runs.groupby("seed")["psnr"].mean()
        assert stats.loc[method, "psnr_mean"] == pytest.approx(per_seed.mean(), abs=1e-9)
        assert stats.loc[method, "psnr_std"] == pytest.approx(per_seed.std(ddof=1), abs=1e-9)
        assert stats.loc[method, "n_seeds"] == 3
        if method != "full":
            ref = ablation[ablation["method"] == "full"].groupby("image")["psnr"].mean()
            var = runs.groupby("image")["psnr"].mean()
            assert stats.loc[method, "dpsnr"] == pytest.approx((var - ref).mean(), abs=1e-9)
            assert stats.loc[method, "dpsnr_low"] < shift < stats.loc[method, "dpsnr_high"]
    table = tables.ablation_table(stats.reset_index())
    cells = dict(table.rows)
    full_psnr = ablation[ablation["method"] == "full"].groupby("seed")["psnr"].mean()
    assert cells["MPRNet (full)"][0] == f"{full_psnr.mean():.2f} ± {full_psnr.std(ddof=1):.2f}"
    assert cells["w/o SAM"][2].startswith(report_table.format_number(stats.loc["no_sam", "dpsnr"], 2, signed=True))


def test_ablation_statistics_are_computed_once_and_read_back_exactly(study):
    """The workflow computes the ablation's bootstrap once (tables/ablation_stats.csv) for the table
    and the figure; every number comes back as computed, so both show what one computation gave."""
    from mprnet.report.loaders import read_ablation_stats

    out = study / "ablation_stats.csv"
    jobs.ablation_statistics(study / "runs.csv", out, n_resamples=300, root=study)
    computed = report_stats.ablation_stats(_per_image(study).query("group == 'ablation'"), n_resamples=300)
    pd.testing.assert_frame_equal(read_ablation_stats(out), computed, check_exact=True)


def test_ablation_refuses_variants_scored_on_other_images(study):
    ablation = _per_image(study).query("group == 'ablation'")
    broken = ablation[~((ablation["method"] == "no_sam") & (ablation["image"] == "img000"))]
    with pytest.raises(DataError, match="no_sam"):
        report_stats.ablation_stats(broken, n_resamples=100)


BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _benchmark(path: Path, seconds: float, cpu_seconds: float, max_rss_mb: float = 512.0) -> Path:
    """A Snakemake benchmark file (TSV) of one job."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCHMARK_HEADER + f"{seconds}\t0:00:00\t{max_rss_mb}\t1\t1\t1\t0\t0\t95.0\t{cpu_seconds}\n")
    return path


def _attempts(path: Path, rows: list[tuple]) -> Path:
    """attempts.csv through the trainer's own writer; rows: (device, processes, wall s, cpu s,
    peak RSS MiB, peak GPU MiB or None, ended)."""
    from mprnet.training.attempts import format_attempts

    path.parent.mkdir(parents=True, exist_ok=True)
    start = 0
    records = []
    for k, (device, processes, wall, cpu, rss, gpu, ended) in enumerate(rows, start=1):
        records.append({"attempt": k, "started_utc": "2026-01-01T00:00:00Z", "host": "node", "pid": 100 + k,
                        "device": device, "device_name": "NVIDIA H200" if device == "cuda" else "Xeon",
                        "processes": processes, "threads": 4, "start_iteration": start, "end_iteration": start + 10,
                        "wall_seconds": wall, "cpu_seconds": cpu, "peak_rss_mb": rss,
                        "peak_gpu_mb": "" if gpu is None else gpu, "ended": ended})
        start += 10
    path.write_text(format_attempts(records))
    return path


def _restore_record(folder: Path, device: str) -> str:
    import json

    from mprnet.restore import RECORD_FORMAT, RECORD_NAME

    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD_NAME).write_text(json.dumps({"format": RECORD_FORMAT, "precision": "fp32", "device": device}))
    return str(folder)


def test_cost_counts_every_attempt_every_restore_and_score_by_device(tmp_path):
    from mprnet.report import hours

    run_a = {"job": "train", "group": "main", "task": "deraining", "variant": "full", "seed": 0, "device": "cpu"}
    run_b = {"job": "train", "group": "ablation", "task": "deblurring", "variant": "no_sam", "seed": 1,
             "device": "cuda", "processes": 2}
    files = [
        # 3 CPU attempts, the second killed without warning: (1800 + 900 + 360) s = 0.85 CPU-hours.
        ({**run_a, "attempts": _attempts(tmp_path / "a" / "attempts.csv", [
            ("cpu", 1, 1800.0, 1500.0, 2048.0, None, "stopped"), ("cpu", 1, 900.0, 800.0, 3072.0, None, "running"),
            ("cpu", 1, 360.0, 300.0, 1024.0, None, "finished")])}, _benchmark(tmp_path / "a.tsv", 360.0, 300.0)),
        # 2 attempts on 2 GPUs: (3600 + 1800) s x 2 GPUs = 3.0 GPU-hours.
        ({**run_b, "attempts": _attempts(tmp_path / "b" / "attempts.csv", [
            ("cuda", 2, 3600.0, 7000.0, 4096.0, 20000.0, "stopped"),
            ("cuda", 2, 1800.0, 3500.0, 4096.0, 22528.0, "finished")])}, _benchmark(tmp_path / "b.tsv", 1800.0, 3500.0)),
        # Restores on the device their restore.json names: 0.10 GPU-hours, 0.20 CPU-hours.
        ({"job": "restore", "group": "main", "task": "deraining", "method": "full", "seed": 0, "dataset": "rain",
          "restored": _restore_record(tmp_path / "restored" / "a", "cuda:0")}, _benchmark(tmp_path / "r1.tsv", 360.0, 350.0)),
        ({"job": "restore", "group": "official_weights", "task": "deraining", "method": "official_weights",
          "dataset": "rain", "restored": _restore_record(tmp_path / "restored" / "b", "cpu")},
         _benchmark(tmp_path / "r2.tsv", 720.0, 1400.0)),
        # Scoring, on the CPU: 2 x 36 s = 0.020 CPU-hours.
        ({"job": "score", "group": "input", "task": "deraining", "method": "degraded", "dataset": "rain"},
         _benchmark(tmp_path / "s1.tsv", 36.0, 30.0)),
        ({"job": "score", "group": "main", "task": "deraining", "method": "full", "seed": 0, "dataset": "rain"},
         _benchmark(tmp_path / "s2.tsv", 36.0, 30.0)),
    ]
    costs = hours.job_costs(files)
    train = costs[costs["job"] == "train"].set_index("method")
    assert train.loc["full", "attempts"] == 3 and train.loc["full", "unrecorded"] == 1
    assert train.loc["full", "device_hours"] == pytest.approx(0.85) and train.loc["full", "kind"] == "CPU"
    assert train.loc["full", "cpu_seconds"] == 2600.0 and train.loc["full", "peak_rss_mb"] == 3072.0
    assert train.loc["no_sam", "device_hours"] == pytest.approx(3.0) and train.loc["no_sam", "kind"] == "GPU"
    assert train.loc["no_sam", "seconds"] == 5400.0 and train.loc["no_sam", "peak_gpu_mb"] == 22528.0
    expected = {"train": {"CPU": 0.85, "GPU": 3.0}, "restore": {"GPU": 0.1, "CPU": 0.2}, "score": {"CPU": 0.02}}
    by_job = hours.totals(costs)
    assert list(by_job) == ["train", "restore", "score"]
    assert all(by_job[job] == pytest.approx(kinds) for job, kinds in expected.items())
    line = hours.headline(costs)
    assert line == ("Reproducing these results cost 3.1 GPU-hours and 1.1 CPU-hours (training 3.0 GPU-hours and "
                    "0.85 CPU-hours over 5 attempts, restoring 0.10 GPU-hours and 0.20 CPU-hours, "
                    "scoring 0.020 CPU-hours).")

    table = hours.cost_table(costs)
    rows = dict(table.rows)
    assert table.notes[0] == line
    assert rows["main / deraining / full / seed 0"][:4] == ["3", "0:51:00", "CPU", "0.850"]
    assert rows["ablation / deblurring / no_sam / seed 1"][:4] == ["2", "1:30:00", "2 × GPU", "3.00"]
    assert rows["ablation / deblurring / no_sam / seed 1"][6] == "22.0"  # GiB of GPU memory
    assert list(rows)[0].startswith("main /")  # the main models first
    assert rows["Scoring (2 jobs)"][:4] == ["–", "0:01:12", "CPU", "0.0200"]
    assert rows["Total, GPU"][3] == "3.10" and rows["Total, CPU"][3] == "1.07"
    assert "1 attempt ended without a word" in " ".join(table.notes)
    assert "Trained on: Xeon; NVIDIA H200." in table.notes and not any("Lower bound" in n for n in table.notes)

    out = tmp_path / "tables"
    written = jobs.cost_table(files, out, tmp_path / "cost.json")
    assert {p.name for p in written} == {"cost.md", "cost.tex", "cost.csv", "cost.html", "cost.json"}
    _check_latex((out / "cost.tex").read_text())
    record = json.loads((tmp_path / "cost.json").read_text())
    assert record["headline"] == line and record["training_attempts"] == 5 and record["lower_bound"] is False
    assert record["device_hours"] == pytest.approx({"GPU": 3.1, "CPU": 1.07})
    assert record["cpu_hours"] == pytest.approx((2600 + 10500 + 350 + 1400 + 60) / 3600)
    csv = pd.read_csv(out / "cost.csv")
    assert csv["device_hours"].sum() == pytest.approx(4.17)


def test_cost_headline_of_one_kind_of_device_and_in_the_results_index(tmp_path):
    from mprnet.report import hours

    run = {"job": "train", "group": "main", "task": "deraining", "variant": "full", "seed": 0, "device": "cpu"}
    files = [
        ({**run, "attempts": _attempts(tmp_path / "a.csv", [("cpu", 1, 100.0, 90.0, 500.0, None, "stopped"),
                                                            ("cpu", 1, 65.6, 60.0, 500.0, None, "finished")])},
         _benchmark(tmp_path / "a.tsv", 65.6, 60.0)),
        ({"job": "restore", "group": "main", "task": "deraining", "method": "full", "seed": 0, "dataset": "rain",
          "restored": _restore_record(tmp_path / "restored", "cpu")}, _benchmark(tmp_path / "r.tsv", 12.6, 12.0)),
        ({"job": "score", "group": "main", "task": "deraining", "method": "full", "seed": 0, "dataset": "rain"},
         _benchmark(tmp_path / "s.tsv", 4.32, 4.0)),
    ]
    # (165.6 + 12.6 + 4.32) s = 0.0507 CPU-hours: training 0.046, restoring 0.0035, scoring 0.0012.
    line = "Reproducing these results cost 0.051 CPU-hours (training 0.046 over 2 attempts, restoring 0.0035, scoring 0.0012)."
    assert hours.headline(hours.job_costs(files)) == line
    jobs.cost_table(files, tmp_path / "tables", tmp_path / "cost.json")
    assert hours.read_headline(tmp_path / "cost.json") == line
    jobs.results_index("demo", tmp_path, cost=tmp_path / "cost.json")
    index = (tmp_path / "README.md").read_text()
    assert index.index(f"**Cost.** {line}") < index.index("## Tables")  # at the top
    assert "### Cost of the study: every job that computed" in index and "[`cost.json`](cost.json)" in index
    # The audit's jobs (a ruler-scores job on the CPU, a tiles check of a folder without restore.json) come last.
    files += [({"job": "audit", "group": "main", "task": "deraining", "method": "full", "seed": 0, "dataset": "rain",
                "device": "cpu"}, _benchmark(tmp_path / "u.tsv", 36.0, 30.0)),
              ({"job": "audit", "group": "main", "task": "deraining", "method": "full", "seed": 0, "dataset": "rain",
                "restored": tmp_path / "no_record"}, _benchmark(tmp_path / "t.tsv", 72.0, 70.0))]
    costs = hours.job_costs(files, unknown_device="GPU")
    # CPU: 165.6 + 12.6 + 4.32 + 36 s = 0.0607 h; the tiles check 72 s = 0.02 GPU-hours.
    assert hours.headline(costs) == ("Reproducing these results cost 0.020 GPU-hours and 0.061 CPU-hours (training "
                                     "0.046 CPU-hours over 2 attempts, restoring 0.0035 CPU-hours, scoring 0.0012 "
                                     "CPU-hours, auditing 0.020 GPU-hours and 0.010 CPU-hours).")
    audit = [cells[1:4] for label, cells in hours.cost_table(costs).rows if label == "Auditing (1 job)"]
    assert audit == [["0:00:36", "CPU", "0.0100"], ["0:01:12", "GPU", "0.0200"]]  # one row per kind of device
    on_gpu = hours.job_costs([({"job": "audit", "task": "deraining", "dataset": "rain",
                                "restored": _restore_record(tmp_path / "restored_gpu", "cuda:0")},
                               _benchmark(tmp_path / "t.tsv", 72.0, 70.0))])
    assert on_gpu["kind"].tolist() == ["GPU"]  # where the source's restore job ran


def test_cost_of_a_run_without_attempts_record_is_its_benchmark_and_a_lower_bound(tmp_path):
    from mprnet.report import hours

    files = [
        ({"job": "train", "group": "main", "task": "deblurring", "variant": "full", "seed": 0, "device": "cuda",
          "processes": 4, "attempts": str(tmp_path / "never_written" / "attempts.csv")},
         _benchmark(tmp_path / "t.tsv", 1800.0, 2000.0, max_rss_mb=8192.0)),
        ({"job": "restore", "group": "main", "task": "deblurring", "method": "full", "seed": 0, "dataset": "gopro",
          "restored": str(tmp_path / "no_record")}, _benchmark(tmp_path / "r.tsv", 360.0, 300.0)),
        ({"job": "score", "group": "main", "task": "deblurring", "method": "full", "seed": 0, "dataset": "gopro"},
         _benchmark(tmp_path / "s.tsv", 36.0, 30.0)),
    ]
    costs = hours.job_costs(files, unknown_device="GPU")  # report.device names what no record says
    train = costs[costs["job"] == "train"].iloc[0]
    assert (train["record"], train["attempts"], train["devices"], train["kind"]) == (hours.FROM_BENCHMARK, 1, 4, "GPU")
    assert train["device_hours"] == pytest.approx(2.0)  # 0.5 h on 4 GPUs
    assert costs.loc[costs["job"] == "restore", "kind"].item() == "GPU"  # no restore.json: the study's label
    assert hours.headline(costs) == ("Reproducing these results cost at least 2.1 GPU-hours and 0.010 CPU-hours "
                                     "(training at least 2.0 GPU-hours over 1 attempt, restoring 0.10 GPU-hours, "
                                     "scoring 0.010 CPU-hours).")
    table = hours.cost_table(costs)
    assert dict(table.rows)["main / deblurring / full / seed 0"][:3] == ["≥ 1", "0:30:00", "4 × GPU"]
    assert any(n.startswith("Lower bound: 1 run has no attempts.csv (main / deblurring / full / seed 0")
               for n in table.notes)
    assert hours.summary(costs)["lower_bound"] is True
    # Without report.device, an unrecorded device is counted as such.
    assert "device" in set(hours.job_costs(files)["kind"])
    with pytest.raises(DataError, match="no such benchmark file"):
        hours.job_costs([(files[2][0], tmp_path / "missing.tsv")])
    broken = tmp_path / "broken" / "attempts.csv"
    _attempts(broken, [("cpu", 1, 10.0, 9.0, 100.0, None, "finished")])
    broken.write_text(broken.read_text().replace(",finished,", ",vanished,"))
    with pytest.raises(DataError, match=rf"{broken}: line 2: ended 'vanished'"):
        hours.job_costs([({**files[0][0], "attempts": str(broken)}, files[0][1])])


# ---------------------------------------------------------------------------- LaTeX


def _check_latex(text: str) -> None:
    envs = re.findall(r"\\(begin|end)\{(\w+)\}", text)
    stack = []
    for kind, name in envs:
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"unbalanced \\end{{{name}}}"
    assert not stack, f"unclosed environments {stack}"
    spec = re.search(r"\\begin\{tabular\}\{([^}]*)\}", text).group(1)
    n_cols = len(re.findall(r"[lrc]", spec))
    body = text.split(r"\toprule", 1)[1].split(r"\bottomrule", 1)[0]
    for line in body.splitlines():
        line = line.strip()
        if not line.endswith(r"\\"):
            assert line == "" or line.startswith((r"\midrule", r"\cmidrule")), line
            continue
        cells = re.split(r"(?<!\\)&", line[:-2])
        width = sum(int(m.group(1)) if (m := re.match(r"\s*\\multicolumn\{(\d+)\}", c)) else 1 for c in cells)
        assert width == n_cols, f"{width} cells, spec has {n_cols}: {line}"
    for bad in ("_", "%", "#"):  # unescaped specials
        assert not re.search(rf"(?<!\\){re.escape(bad)}", body.replace(r"\_", "").replace(r"\%", "")), bad
    assert "±" not in text and "−" not in text and "Δ" not in text  # unicode mapped to math


def test_all_tables_of_the_report_jobs_are_wellformed_and_consistent(study, tmp_path):
    out = study / "tables"
    costs = study / "costs.csv"
    pd.DataFrame({"task": ["deblurring"] * 4, "method": list(VARIANTS), "group": ["ablation"] * 4,
                  "params": [20.1e6, 19e6, 18e6, 7e6], "gflops": [1500.0, 1400.0, 1300.0, 500.0]}).to_csv(costs, index=False)
    for task in ("deraining", "deblurring"):
        jobs.main_table(study / "summary.csv", task, out)
    stats = study / "ablation_stats.csv"
    jobs.ablation_statistics(study / "runs.csv", stats, n_resamples=500, root=study)
    jobs.ablation_table(study / "summary.csv", stats, study / "runs.csv", costs, [], out, n_resamples=500, root=study)
    for name in ("main_deraining", "main_deblurring", "ablation"):
        for ext in ("md", "tex", "csv", "html"):
            assert (out / f"{name}.{ext}").stat().st_size > 0
        html = (out / f"{name}.html").read_text()
        assert html.count("<tr") == len(tables.main_results(pd.read_csv(study / "summary.csv"), name[5:])) + 2 \
            if name.startswith("main_") else "<table>" in html
        _check_latex((out / f"{name}.tex").read_text())
        md = (out / f"{name}.md").read_text().splitlines()
        table_lines = [l for l in md if l.startswith("|")]
        assert len({l.count("|") - l.count("\\|") for l in table_lines}) == 1  # same column count everywhere
    csv = pd.read_csv(out / "main_deraining.csv").set_index("row")
    scores = _per_image(study)
    full = scores[(scores["group"] == "main") & (scores["method"] == "full") & (scores["task"] == "deraining")]
    per_dataset = full.groupby(["dataset", "seed"])["psnr"].mean().groupby("dataset").mean()
    assert csv.loc["full", "Average_psnr"] == pytest.approx(per_dataset.mean(), abs=1e-5)
    ablation_csv = pd.read_csv(out / "ablation.csv").set_index("method")
    assert ablation_csv.loc["single_stage", "params"] == 7e6
    assert "7.00 M" in (out / "ablation.md").read_text()


# ---------------------------------------------------------------------------- costs, provenance


def test_flop_count_of_a_convolution_and_model_costs():
    import torch

    from mprnet.report.costs import count_flops, count_parameters, model_costs

    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (16, 16)) == 2 * 3 * 8 * 9 * 16 * 16
    assert count_parameters(conv) == 3 * 8 * 9
    tiny = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=2)
    full = model_costs("deblurring", tiny)
    one = model_costs("deblurring", {**tiny, "num_stages": 1})
    assert full["params"] > one["params"] > 0 and full["gflops"] > one["gflops"] > 0


def test_provenance_records_and_hash_is_order_independent(tmp_path):
    from mprnet.report.provenance import collect, config_hash

    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    out = tmp_path / "prov.json"
    assert jobs.provenance({"x": 1}, out, markdown=tmp_path / "prov.md") == [out, tmp_path / "prov.md"]
    record = json.loads(out.read_text())
    assert record["config_sha256"] == config_hash({"x": 1})
    assert record["packages"]["torch"] and record["devices"]["cpu"]
    assert "git commit" in (tmp_path / "prov.md").read_text()
    assert collect()["python"]


# ---------------------------------------------------------------------------- figures and index


def _assert_figure(stem: Path) -> None:
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


@pytest.mark.slow
def test_figures_and_index(study):
    logs = []
    for method in ("full", "no_sam"):
        path = study / "runs" / "ablation" / "deblurring" / method / "seed0" / "metrics.csv"
        path.parent.mkdir(parents=True)
        it = np.arange(1, 101) * 10
        pd.DataFrame({"iteration": it, "epoch": it // 50, "lr": 2e-4 * np.cos(it / 2000), "loss": 1.0 / np.sqrt(it),
                      "images_per_s": 5.0, "val_psnr": np.where(it % 200 == 0, 20 + np.log(it), np.nan)}).to_csv(path, index=False)
        logs.append(({"group": "ablation", "task": "deblurring", "variant": method, "seed": 0}, path))
    stage_csv = study / "stages" / "deraining" / "Rain100H.csv"
    stage_csv.parent.mkdir(parents=True)
    pd.DataFrame({"image": ["a", "b"] * 3, "stage": [1, 1, 2, 2, 3, 3], "n_stages": 3,
                  "psnr": [27, 28, 28.5, 29, 29.5, 30.1], "ssim": 0.9}).to_csv(stage_csv, index=False)
    figs = study / "figures"
    stats = study / "ablation_stats.csv"
    jobs.ablation_statistics(study / "runs.csv", stats, n_resamples=300, root=study)
    written = jobs.study_figures(study / "summary.csv", study / "runs.csv", figs, root=study, ablation_stats=stats,
                                 training_logs=logs,
                                 stage_scores=[({"task": "deraining", "dataset": "Rain100H"}, stage_csv)])
    assert len(written) == 10
    for name in ("paper_vs_ours", "ablation_bars", "per_image_psnr", "training_curves", "stage_progression"):
        _assert_figure(figs / name)
    (study / "tables").mkdir()
    render.write_table(tables.main_results_table(pd.read_csv(study / "summary.csv"), "deblurring"), study / "tables")
    assert jobs.results_index("synthetic", study) == [study / "README.md"]
    index = (study / "README.md").read_text()
    assert "figures/paper_vs_ours.png" in index and "tables/main_deblurring.tex" in index
    assert "summary.csv" in index


def test_visual_comparison_grid(tmp_path):
    from mprnet.images import write_png

    rng = np.random.default_rng(3)
    target = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    dirs = {}
    rows = {}
    for name, noise in (("input", (60, 60, 60, 60)), ("full", (5, 5, 5, 5)), ("no_sam", (8, 12, 20, 30))):
        dirs[name] = tmp_path / name
        rows[name] = []
        for i in range(4):
            img = np.clip(target.astype(int) + rng.normal(0, noise[i], target.shape), 0, 255).astype(np.uint8)
            write_png(dirs[name] / f"im{i}.png", img)
            mse = np.mean((img.astype(float) - target) ** 2)
            rows[name].append({"image": f"im{i}", "psnr": 10 * np.log10(255 ** 2 / mse), "ssim": 0.5})
        pd.DataFrame(rows[name]).to_csv(tmp_path / f"{name}.csv", index=False)
    for i in range(4):
        write_png(tmp_path / "target" / f"im{i}.png", target)
    from mprnet.report.figures import most_different_images

    scores = pd.concat([pd.DataFrame(rows[m]).assign(method=m) for m in ("full", "no_sam")])
    chosen = most_different_images(scores, ["full", "no_sam"], n=2)
    assert chosen == ["im3", "im2"]  # no_sam's noise grows with i, full's does not
    jobs.visual_grid(dirs["input"], tmp_path / "target",
                     [("full", dirs["full"], tmp_path / "full.csv"), ("no_sam", dirs["no_sam"], tmp_path / "no_sam.csv")],
                     tmp_path / "fig" / "visual_demo", input_scores=tmp_path / "input.csv", n_images=2)
    _assert_figure(tmp_path / "fig" / "visual_demo")


def test_difference_crop_finds_the_disagreeing_region():
    from mprnet.report.figures import difference_crop

    a = np.zeros((64, 64, 3), np.uint8)
    b = a.copy()
    b[40:52, 8:20] = 200
    top, left, side = difference_crop([a, b], 16)
    assert side == 16
    assert top <= 40 and top + side >= 52 and left <= 8 and left + side >= 20


def test_score_stages_scores_every_stage_with_the_protocol(tmp_path):
    from mprnet.images import write_png
    from mprnet.report.stages import score_stages

    rng = np.random.default_rng(4)
    out, target = tmp_path / "restored", tmp_path / "target"
    for i in range(2):
        clean = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        write_png(target / f"im{i}.png", clean)
        for k, noise in ((1, 30), (2, 15), (3, 5)):  # stage 3 is the final output, at <out>/<stem>.png
            noisy = np.clip(clean + rng.normal(0, noise, clean.shape), 0, 255).astype(np.uint8)
            write_png(out / f"im{i}.png" if k == 3 else out / "stages" / f"im{i}_stage{k}.png", noisy)
    scores = score_stages(out, target, "rgb")
    assert sorted(scores["stage"].unique()) == [1, 2, 3] and (scores["n_stages"] == 3).all()
    means = scores.groupby("stage")["psnr"].mean()
    assert means[1] < means[2] < means[3]
    (out / "stages" / "im1_stage2.png").unlink()
    with pytest.raises(DataError, match="stage 2"):
        score_stages(out, target, "rgb")


def test_study_report_records_on_the_demo_config():
    import yaml

    from mprnet.report.costs import model_costs_table
    from mprnet.study import layout
    from mprnet.study.config import load_study
    from mprnet.study.targets import Targets

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "demo.yaml").read_text())
    study = load_study(config, root / "workflow" / "schemas" / "config.schema.yaml", root)
    targets = Targets(study)
    spec = study.model_specs()
    assert {(s["group"], s["method"]) for s in spec} >= {("main", "full"), ("ablation", "no_sam"), ("ablation", "single_stage")}
    costs = model_costs_table(spec).set_index(["group", "task", "method"])
    assert costs.loc[("ablation", "deblurring", "single_stage"), "params"] < costs.loc[("ablation", "deblurring", "full"), "params"]
    assert costs.loc[("ablation", "deblurring", "no_sam"), "gflops"] < costs.loc[("ablation", "deblurring", "full"), "gflops"]
    index = targets.index_inputs()
    assert "results/demo/figures/ablation_visual_deblurring_demo_blur.png" in index
    assert "results/demo/figures/visual_deraining_demo_rain.png" in index
    assert "results/demo/tables/ablation.md" in index and "results/demo/figures/per_image_psnr.png" in index
    methods = [m for m, _, _ in targets.visual_panels("ablation_visual", "deblurring", "demo_blur")]
    assert methods == list(config["demo"]["ablations"]["variants"])
    assert {fields["group"] for fields, _ in targets.stage_score_files()} == {"main"}
    panels = targets.visual_panels("visual", "deraining", "demo_rain")
    assert panels == [("full", "results/demo/restored/main/deraining/full/seed0/demo_rain",
                       "results/demo/scores/main/deraining/full/seed0/demo_rain.csv")]
    assert targets.run_files(layout.TRAIN_BENCHMARK)[0] == "results/demo/benchmarks/train/main/deraining/full/seed0.tsv"
    assert study.average_tasks() == ["deraining"]
    assert study.report.visual_images == 3 and study.report.bootstrap_resamples == 10_000  # the defaults


def test_the_study_manifest_lists_every_job_that_computes_with_its_records():
    """The paper study: every run's attempts record, every restore (runs and official weights, DND
    too) and every score job, each with its benchmark file."""
    import yaml

    from mprnet.study import layout
    from mprnet.study.config import load_study
    from mprnet.study.targets import Targets
    from mprnet.vocabulary import MANIFEST_JOB_COSTS

    root = Path(__file__).resolve().parents[1]
    study = load_study(yaml.safe_load((root / "config" / "config.yaml").read_text()),
                       root / "workflow" / "schemas" / "config.schema.yaml", root)
    targets = Targets(study)
    entries = targets.manifest_record()[MANIFEST_JOB_COSTS]
    assert targets.manifest_record()["online_test_sets"] == ["dnd"]  # the verdicts' "scored online only"
    by_job = {job: [e for e in entries if e["job"] == job] for job in ("train", "restore", "score", "audit")}
    assert len(entries) == sum(map(len, by_job.values()))
    assert [e["attempts"] for e in by_job["train"]] == targets.run_files(layout.TRAINING_ATTEMPTS)
    assert [e["path"] for e in by_job["train"]] == targets.run_files(layout.TRAIN_BENCHMARK)
    assert [(e["device"], e["processes"]) for e in by_job["train"]] == [
        (run.resolved["runtime"]["device"], run.resolved["runtime"]["processes"]) for run in study.runs]
    restored = study.restored_sources()
    assert [e["restored"] for e in by_job["restore"]] == [targets.restored(s, ts) for s, ts in restored]
    assert {e["group"] for e in by_job["restore"]} == {"main", "ablation", "official_weights", "model_best"}
    assert "dnd" in {e["dataset"] for e in by_job["restore"]}  # bundled, not scored: still computed
    assert [e["path"] for e in by_job["score"]] == [
        layout.SCORE_BENCHMARK.format(study="paper", source=s.key, dataset=ts.name) for s, ts in study.scored_sources()]
    # The audit: the ruler scores (on the CPU) and the tiles-vs-whole checks.
    assert [e["path"] for e in by_job["audit"]] == [
        layout.RULER_BENCHMARK.format(study="paper", source=s.key, dataset=ts.name) for s, ts in study.ruler_sources()
    ] + [layout.TILE_CHECK_BENCHMARK.format(study="paper", source=s.key, dataset=ts.name) for s, ts in study.tile_checks()]
    assert len(by_job["audit"]) == 20 and [e.get("device") for e in by_job["audit"][:10]] == ["cpu"] * 10
    # A tiles check restores where its source's restore job did: that job's restore.json says where.
    assert [e["restored"] for e in by_job["audit"][10:]] == [targets.restored(s, ts) for s, ts in study.tile_checks()]


def test_training_logs_are_normalised_and_missing_ones_skipped(tmp_path):
    from mprnet.report.loaders import read_training_logs

    path = tmp_path / "runs" / "main" / "deraining" / "full" / "seed0" / "metrics.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"step": [1, 2], "train_loss": [0.5, 0.4], "val_psnr": [np.nan, 20.0]}).to_csv(path, index=False)
    missing = tmp_path / "runs" / "main" / "deblurring" / "full" / "seed0" / "metrics.csv"
    fields = {"group": "main", "variant": "full", "seed": 0}
    with pytest.warns(UserWarning, match="no training log"):
        logs = read_training_logs([(dict(fields, task="deraining"), path), (dict(fields, task="deblurring"), missing)],
                                  missing_ok=True)
    assert list(logs["iteration"]) == [1, 2] and list(logs["loss"]) == [0.5, 0.4]
    assert set(logs["method"]) == {"full"} and set(logs["seed"]) == {0}  # `variant` field read as the method
    with pytest.raises(DataError, match="no such"):
        read_training_logs([(fields, missing)])


def test_training_curves_compare_variants_per_stage_output(tmp_path):
    """The trainer logs the loss summed over stage outputs; the figure divides by each run's count."""
    import yaml

    from mprnet.report import figures
    from mprnet.report.jobs import _training_logs

    paths = []
    it = np.arange(5, 105, 5)
    for variant, stages in (("full", 3), ("single_stage", 1)):
        run = tmp_path / "runs" / "ablation" / "deblurring" / variant / "seed0"
        run.mkdir(parents=True)
        # Both variants lose 0.2 per stage output; summed, the full model's loss is three times larger.
        pd.DataFrame({"iteration": it, "loss": stages * (0.2 + 2.0 / it ** 2)}).to_csv(run / "metrics.csv", index=False)
        overrides = {"n_feat": 16} if stages == 3 else {"n_feat": 16, "num_stages": 1}  # 3 = the default
        (run / "config.yaml").write_text(yaml.safe_dump({"task": "deblurring", "model": {"overrides": overrides}}))
        paths.append(({"group": "ablation", "task": "deblurring", "variant": variant, "seed": 0}, run / "metrics.csv"))
    logs = _training_logs(paths)
    assert logs.groupby("method")["stages"].first().to_dict() == {"full": 3, "single_stage": 1}
    fig = figures.training_curves(logs)
    ax = fig.axes[0]
    assert "per stage output" in ax.get_ylabel()
    curves = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert set(curves) == {"Full", "1 stage"}
    np.testing.assert_allclose(curves["Full"], curves["1 stage"])  # like for like
    np.testing.assert_allclose(curves["Full"], 0.2 + 2.0 / it ** 2)
    # The drop of the first iterations would flatten the rest: the axis shows the later part.
    low, high = ax.get_ylim()
    assert 0.2 + 2.0 / 10 ** 2 < high < 0.2 + 2.0 / 5 ** 2 and low < 0.2 + 2.0 / 100 ** 2
    # Without stage counts (no config.yaml) the summed loss is plotted, and the axis says so.
    fig_sum = figures.training_curves(logs.drop(columns="stages"))
    assert "sum over stage outputs" in fig_sum.axes[0].get_ylabel()


def test_visual_crops_are_half_the_image_where_the_restoration_acts():
    from mprnet.report.figures import crop_side, crop_window

    assert crop_side(128, 160) == 64 and crop_side(170, 131) == 66 and crop_side(720, 1280) == 360
    assert crop_side(100, 120) == 64 and crop_side(40, 48) == 40  # at least 64 px, at most the image
    target = np.full((128, 144, 3), 100, np.uint8)
    degraded = target.copy()
    degraded[80:120, 90:130] = 250  # the only region the input differs in
    restored = target.copy()
    # One model: the window covers where its output differs from the input.
    top, left, side = crop_window([("Input", degraded, 20.0), ("MPRNet (full)", restored, 40.0), ("Target", target, None)])
    assert side == 64 and top <= 80 and top + side >= 120 and left <= 90 and left + side >= 130
    # Several models: where they disagree, even if the input differs elsewhere.
    other = restored.copy()
    other[0:30, 0:30] = 0
    top, left, side = crop_window([("Input", degraded, 20.0), ("A", restored, 40.0), ("B", other, 30.0),
                                   ("Target", target, None)])
    assert top == 0 and left == 0


def test_index_gives_each_table_title_once(tmp_path):
    from mprnet.report.index import build_index, split_title

    costs = pd.DataFrame({"group": ["ablation"] * 2, "task": ["deblurring"] * 2, "method": ["full", "no_sam"],
                          "params": [1e6, 9e5], "gflops": [10.0, 9.0]})
    table = report_table.Table(name="ablation", title="Ablation (deblurring): variants against the full model",
                         row_header="Variant", header=[("", "PSNR")], rows=[("MPRNet (full)", ["30.00"])], data=costs)
    render.write_table(table, tmp_path / "tables")
    index = build_index("demo", tmp_path)
    assert index.count("Ablation (deblurring): variants against the full model") == 1
    assert "### Ablation (deblurring): variants against the full model" in index
    assert "| MPRNet (full) | 30.00 |" in index and "tables/ablation.tex" in index
    assert split_title("| a |\n|---|") == (None, "| a |\n|---|")


def test_gains_table_pairs_each_main_model_with_its_input(tmp_path, capsys):
    from mprnet.report.gains import gains_table, main

    summary = tmp_path / "summary.csv"
    pd.DataFrame([
        {"task": "deraining", "dataset": "rain", "method": "degraded", "group": "input", "psnr": 26.9, "ssim": 0.838},
        {"task": "deraining", "dataset": "rain", "method": "full", "group": "main", "psnr": 30.4, "ssim": 0.903},
        {"task": "deraining", "dataset": "rain", "method": "full", "group": "ablation", "psnr": 99.0, "ssim": 0.99},
        {"task": "deraining", "dataset": "rain", "method": "paper", "group": "paper", "psnr": 38.0, "ssim": 0.98},
    ]).to_csv(summary, index=False)
    table = gains_table(summary)
    assert table.splitlines()[-1] == ("| deraining | rain | 26.90 dB / 0.8380 | 30.40 dB / 0.9030 | "
                                      "+3.50 dB / +0.0650 | — |")  # no runs.csv: no interval
    assert len(table.splitlines()) == 3  # header, rule, one row: the ablation and paper rows are not gains
    # With runs.csv and per-image scores: a paired bootstrap CI of the per-image gain.
    rng = np.random.default_rng(0)
    before = rng.normal(26.9, 3.0, 50)
    gain = 3.5 + rng.normal(0, 1.0, 50)
    images = [f"{i:03d}" for i in range(50)]
    runs = []
    for group, method, psnr in (("input", "degraded", before), ("main", "full", before + gain)):
        scores = tmp_path / f"{group}.csv"
        pd.DataFrame({"image": images, "psnr": psnr, "ssim": 0.9}).to_csv(scores, index=False)
        runs.append({"task": "deraining", "dataset": "rain", "method": method, "group": group, "seed": 0,
                     "psnr": psnr.mean(), "ssim": 0.9, "n_images": 50, "scores": str(scores)})
    pd.DataFrame(runs).to_csv(tmp_path / "runs.csv", index=False)
    row = gains_table(summary).splitlines()[-1]
    low, high = (float(v) for v in re.search(r"\[([-+.\d]+), ([-+.\d]+)\] dB over 50 images", row).groups())
    assert low < gain.mean() < high and high - low < 1.0
    assert main([str(summary)]) == 0 and "+3.50 dB" in capsys.readouterr().out
    pd.DataFrame([{"task": "t", "dataset": "d", "method": "full"}]).to_csv(summary, index=False)
    assert main([str(summary)]) == 2
    assert "no column(s) group, psnr, ssim" in capsys.readouterr().err


@pytest.mark.parametrize("value, figures, text", [
    (0.0512, 2, "0.051"), (1.234, 2, "1.2"), (0.0996, 2, "0.10"), (9.96, 2, "10"), (99.6, 2, "100"),
    (0.00071, 2, "0.00071"), (1234.4, 2, "1234"), (0.10293, 3, "0.103"), (0.0, 2, "0"), (-0.0512, 2, "−0.051")])
def test_significant_figures_of_the_cost(value, figures, text):
    """Device-hours to 2 significant figures, a rounding up to the next power of ten included
    (0.0996 is 0.10, not 0.100), whole numbers whole."""
    assert report_table.format_significant(value, figures) == text
