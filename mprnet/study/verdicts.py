"""A verdict per published number: the paper's score, ours, the difference, and whether it was reproduced.

One rule for every cell (:data:`RULE`), on PSNR:

* **reproduced** when |Δ PSNR| ≤ max(0.1 dB, 2σ), Δ = ours − paper and σ the sample standard
  deviation of our PSNR over training seeds (``psnr_std`` of ``summary.csv``). The released
  weights and the released results involve no training, so their σ is 0 and the tolerance 0.1 dB;
* **not reproduced** otherwise, and whenever our PSNR is infinite (identical images), whatever the
  seeds;
* **one seed: σ unknown** when our number comes from one training seed (or the row has no seed
  count): the tolerance cannot be set; the column ``within_0_1_db`` still says whether
  |Δ| ≤ 0.1 dB;
* **σ unknown** when several seeds were trained but the row carries no spread (the deraining
  ``Average`` row of ``summary.csv``, a mean of dataset means, has none);
* **missing** when the paper publishes the number and we have none (no main-model row for that
  test set, or an empty score);
* **scored online only** instead of missing for a test set without public ground truth (DND): the
  study writes the online benchmark's submission bundle, whose number only the benchmark gives.

The 0.1 dB floor is the resolution of the published numbers (two decimals) plus what evaluation
details move a score (``mprnet.metrics.rulers``); |Δ| is compared with an allowance of 1e-9 dB,
so that 30.37 against a published 30.27 counts as 0.1 dB. SSIM differences are reported, not
judged. A published cell without a PSNR (``null`` in ``config/paper_results.yaml``) gets no row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ..vocabulary import FULL, MAIN, OFFICIAL_WEIGHTS, PAPER, RELEASED_RESULTS, SUMMARY_VERDICT_COLUMNS

FLOOR_DB = 0.1
SEED_SIGMAS = 2.0
_ALLOWANCE_DB = 1e-9
RULE = (f"reproduced when |Δ PSNR| ≤ max({FLOOR_DB} dB, {SEED_SIGMAS:g}σ), σ the sample standard deviation of "
        "PSNR over training seeds (0 for released weights and released results); one seed: σ unknown")

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
ONE_SEED = "one seed: σ unknown"
NO_SPREAD = "σ unknown"
MISSING = "missing"
ONLINE = "scored online only"  # a test set without public ground truth (DND): its number is the benchmark's
VERDICTS = (REPRODUCED, NOT_REPRODUCED, ONE_SEED, NO_SPREAD, MISSING, ONLINE)

#: Groups of summary.csv compared with the paper, in this order; only ``main`` gets ``missing`` rows.
COMPARED_GROUPS = (MAIN, OFFICIAL_WEIGHTS, RELEASED_RESULTS)
UNTRAINED_GROUPS = (OFFICIAL_WEIGHTS, RELEASED_RESULTS)

VERDICT_COLUMNS = ["task", "dataset", "group", "method", "paper_psnr", "paper_ssim", "psnr", "ssim", "n_seeds",
                   "psnr_std", "d_psnr", "d_ssim", "tolerance_db", "within_0_1_db", "verdict"]


def _number(value) -> float:
    """A float, NaN for a missing value (None, NaN or an empty CSV cell)."""
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _judge(group: str, delta: float, n_seeds: float, psnr_std: float) -> tuple[float, str]:
    """(tolerance in dB, verdict) of one of our rows whose PSNR is known."""
    if not math.isfinite(delta):  # an infinite PSNR (identical images): no spread makes it the paper's
        return math.nan, NOT_REPRODUCED
    if group in UNTRAINED_GROUPS:
        tolerance = FLOOR_DB
    elif n_seeds >= 2 and math.isfinite(psnr_std):
        tolerance = max(FLOOR_DB, SEED_SIGMAS * psnr_std)
    else:
        return math.nan, NO_SPREAD if n_seeds >= 2 else ONE_SEED
    reproduced = abs(delta) <= tolerance + _ALLOWANCE_DB
    return tolerance, REPRODUCED if reproduced else NOT_REPRODUCED


def _row(paper: Mapping, ours: Mapping | None, group: str, online: bool = False) -> dict:
    paper_psnr, paper_ssim = _number(paper["psnr"]), _number(paper.get("ssim"))
    row = {"task": paper["task"], "dataset": paper["dataset"], "group": group,
           "method": ours["method"] if ours is not None else FULL,
           "paper_psnr": paper_psnr, "paper_ssim": paper_ssim, "psnr": math.nan, "ssim": math.nan,
           "n_seeds": math.nan, "psnr_std": math.nan, "d_psnr": math.nan, "d_ssim": math.nan,
           "tolerance_db": math.nan, "within_0_1_db": None, "verdict": ONLINE if online else MISSING}
    psnr = _number(ours["psnr"]) if ours is not None else math.nan
    if math.isnan(psnr):
        return row
    ssim, n_seeds, psnr_std = _number(ours.get("ssim")), _number(ours.get("n_seeds")), _number(ours.get("psnr_std"))
    delta = psnr - paper_psnr
    tolerance, verdict = _judge(group, delta, n_seeds if not math.isnan(n_seeds) else 1.0, psnr_std)
    row |= {"psnr": psnr, "ssim": ssim, "n_seeds": n_seeds, "psnr_std": psnr_std, "d_psnr": delta,
            "d_ssim": ssim - paper_ssim, "tolerance_db": tolerance,
            "within_0_1_db": math.isfinite(delta) and abs(delta) <= FLOOR_DB + _ALLOWANCE_DB, "verdict": verdict}
    return row


def verdicts(summary, online: Iterable[str] = ()):
    """A verdict (module docstring, :data:`RULE`) for every published number of a study's summary.

    ``summary``: the rows of ``summary.csv`` (a pandas DataFrame as ``pd.read_csv`` gives it, or a
    list of dicts as :func:`mprnet.study.aggregate.summarise` returns them) with at least the
    columns ``task, dataset, method, group, psnr, ssim, n_seeds, psnr_std``. Raises ValueError if
    one is absent.

    Returns a pandas DataFrame with :data:`VERDICT_COLUMNS`, one row per published cell (a
    ``paper`` row with a PSNR) and compared group: ``main`` always (``missing`` where we have no
    number), then ``official_weights`` and ``released_results`` rows where the summary has them,
    each group's methods in name order; cells in the summary's order. Units: PSNR and Δ PSNR
    and the tolerance in dB, SSIM unitless; ``n_seeds`` and ``psnr_std`` as in the summary (NaN
    where it has none); ``d_* = ours − paper``; ``tolerance_db`` is NaN when no tolerance
    applies (one seed, σ unknown, missing); ``within_0_1_db`` is |Δ PSNR| ≤ 0.1 dB (None where
    missing); ``verdict`` is one of :data:`VERDICTS`. A summary without paper rows gives an
    empty frame with these columns. ``online``: the study's test sets without public ground truth
    (DND: its restored images are bundled for the online benchmark); a published cell of one of
    them that we have no number for is :data:`ONLINE`, not ``missing``.
    """
    import pandas as pd

    frame = summary if isinstance(summary, pd.DataFrame) else pd.DataFrame(list(summary))
    needed = ["task", "dataset", "method", "group", "psnr", "ssim", "n_seeds", "psnr_std"]
    absent = [c for c in needed if c not in frame.columns]
    if absent and not frame.empty:
        raise ValueError(f"summary lacks the column(s) {', '.join(absent)} (see mprnet.study.aggregate)")
    records = frame.to_dict("records")
    ours: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("group") in COMPARED_GROUPS:
            ours.setdefault((r["task"], r["dataset"], r["group"]), []).append(r)
    rows, online = [], set(online)
    for paper in _published(records):
        for group in COMPARED_GROUPS:
            found = sorted(ours.get((paper["task"], paper["dataset"], group), []), key=lambda r: str(r["method"]))
            if not found and group == MAIN:
                found = [None]
            rows += [_row(paper, r, group, paper["dataset"] in online) for r in found]
    out = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    out["within_0_1_db"] = out["within_0_1_db"].astype("boolean")
    return out


def _published(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r.get("group") == PAPER and not math.isnan(_number(r.get("psnr")))]


SHORT_VERDICTS = {REPRODUCED: "reproduced", NOT_REPRODUCED: "not reproduced", ONE_SEED: "one seed",
                  NO_SPREAD: "σ unknown", MISSING: "missing", ONLINE: "online only"}  # the words of a table cell


_COUNTED = {REPRODUCED: "reproduced", NOT_REPRODUCED: "not reproduced", ONE_SEED: "from one seed (σ unknown)",
            NO_SPREAD: "from seeds without a spread (σ unknown)", MISSING: "missing",
            ONLINE: "scored by its online benchmark only (no public ground truth)"}


def count_verdicts(values: Iterable[str]) -> str:
    """``5 published PSNRs: 1 reproduced, 1 not reproduced, 2 from one seed (σ unknown), 1
    missing`` for a list of :data:`VERDICTS` (in that order; others by name at the end)."""
    values = list(values)
    order = list(VERDICTS) + sorted(set(values) - set(VERDICTS))
    parts = [f"{values.count(v)} {_COUNTED.get(v, v)}" for v in order if v in values]
    noun = "published PSNR" if len(values) == 1 else "published PSNRs"
    return f"{len(values)} {noun}: " + ", ".join(parts)


def with_verdicts(rows: list[dict], online: Iterable[str] = ()) -> list[dict]:
    """``summary.csv``'s rows (:func:`mprnet.study.aggregate.summarise`) with the verdict of each
    compared row: :data:`SUMMARY_VERDICT_COLUMNS` filled from :func:`verdicts` on the ``main``,
    ``official_weights`` and ``released_results`` rows of a published cell (``paper_psnr`` and
    ``paper_ssim`` the paper's numbers, ``d_* = ours − paper``, the tolerance in dB and the
    verdict), and ``missing`` on the ``paper`` row of a published cell for which the study has no
    ``main`` number (``scored online only`` for a test set in ``online``: see :func:`verdicts`);
    None elsewhere (inputs, ablations, unpublished cells). New dicts; the input is not changed."""
    found: dict[tuple, dict] = {}
    for v in verdicts(rows, online).to_dict("records"):
        found[(v["task"], v["dataset"], v["group"], v["method"])] = v
        if v["verdict"] in (MISSING, ONLINE):  # said on the published cell as well
            found[(v["task"], v["dataset"], PAPER, PAPER)] = v
    out = []
    for r in rows:
        v = found.get((r["task"], r["dataset"], r["group"], r["method"]))
        extra = dict.fromkeys(SUMMARY_VERDICT_COLUMNS)
        if v is not None:
            extra["verdict"] = v["verdict"]
            if r["group"] != PAPER:
                extra |= {k: None if _missing(v[k]) else float(v[k]) for k in SUMMARY_VERDICT_COLUMNS[:-1]}
        out.append({**r, **extra})
    return out


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
