"""``results/<study>/README.md``: one page that indexes every table, figure and record of a study."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_write_text
from ..vocabulary import ABLATION_TABLE, COST_TABLE, MAIN_TABLE, RULER_TABLE, TABLE_FORMATS, TASK_ORDER, TILES_TABLE

MAIN_PREFIX = MAIN_TABLE.format(task="")  # "main_": one table per task

# What each output is, by file stem (prefix match for per-task / per-dataset files).
DESCRIPTIONS = {
    MAIN_PREFIX: "Main results laid out as in the paper: datasets as columns, rows paper / ours / Δ, each compared "
                 "row's verdict against the paper, and model_best against model_final where the runs validate.",
    RULER_TABLE: "The same images under the rulers readers use instead of the paper's (scikit-image, torchmetrics, "
                 "BasicSR, IQA-PyTorch, ...): Δ against the paper's ruler per test set, mean ± std and range.",
    TILES_TABLE: "A sample of each test set restored in tiles and whole: how much tiling moves the scores.",
    "ablation_visual_": "Ablation variants side by side on the images where they differ most (crops enlarged ×2, "
                        "PSNR per panel).",
    ABLATION_TABLE: "Mean ± std over seeds, paired bootstrap 95% CI of the difference to the full model, "
                    "parameters, GFLOPs at 256×256 and restore time per image.",
    COST_TABLE: "Device-hours of every attempt of every trained model, and of the restore, score and audit jobs.",
    "paper_vs_ours": "Paper vs. our reproduction per dataset (Δ written above each dataset).",
    "ablation_bars": "Ablation variants against the full model, with bootstrap CIs.",
    "per_image_psnr": "Per-image PSNR distribution per dataset and method.",
    "training_curves": "Training loss per stage output (like for like across 1-, 2- and 3-stage variants) and "
                       "validation PSNR against iteration.",
    "stage_progression": "Mean PSNR of the stage-1, stage-2 and final outputs per dataset.",
    "visual_": "Visual comparison of the hardest images, or those where the methods differ most (crops enlarged ×2, "
               "PSNR per panel).",
}
OTHER_FILES = {
    "summary.csv": "Machine-readable truth: one row per (task, dataset, method); every table and figure is drawn from it "
                   "and the per-image scores.",
    "runs.csv": "One row per scored run (seed), with the path of its per-image score file.",
    "metrics.json": "The summary as nested JSON for `dvc metrics show`.",
    "cost.json": "What the study cost: device-hours in all and per kind of job, and the headline above.",
    "provenance.json": "Git commit, package versions, devices and config hash.",
    "tables/model_costs.csv": "Parameters and GFLOPs at 256×256 of every model of the study.",
    "report.html": "Self-contained HTML report with a caption for every table and figure; written by "
                   "`snakemake --configfile <config> --report results/<study>/report.html`.",
}


# Reading order: the paper's claim first, then how sure we are, then what it cost.
ORDER = (MAIN_PREFIX, ABLATION_TABLE, COST_TABLE, "paper_vs_ours", "per_image_psnr", "stage_progression", "training_curves",
         "ablation_bars", "visual_", "ablation_visual_")


def _rank(stem: str) -> tuple[int, int, str]:
    ranks = [i for i, p in enumerate(ORDER) if stem == p or (p.endswith("_") and stem.startswith(p))]
    task = min((i for i, t in enumerate(TASK_ORDER) if f"_{t}" in stem), default=len(TASK_ORDER))
    return (max(ranks) if ranks else len(ORDER), task, stem)


def describe(stem: str) -> str:
    for prefix, text in DESCRIPTIONS.items():
        if stem == prefix or (prefix.endswith("_") and stem.startswith(prefix)):
            return text
    return ""


def split_title(markdown: str) -> tuple[str | None, str]:
    """(title, rest) of a table's Markdown, whose first line is its title in bold (``**...**``).

    The index uses the title as the table's heading and shows the rest below it, so each title
    appears once; Markdown without a bold first line comes back whole with title ``None``.
    """
    text = markdown.strip()
    first, _, rest = text.partition("\n")
    first = first.strip()
    if len(first) > 4 and first.startswith("**") and first.endswith("**"):
        return first[2:-2].strip(), rest.strip()
    return None, text


def build_index(study: str, root: str | os.PathLike, *, provenance_md: str | None = None,
                cost_headline: str | None = None) -> str:
    """Markdown index of ``root`` (= ``results/<study>``); links are relative to ``root``.
    ``cost_headline``: the study's cost in one line (:func:`mprnet.report.hours.headline`), shown
    under the introduction."""
    root = Path(root)
    lines = [f"# Results of the `{study}` study", "",
             "MPRNet (Zamir et al., \"Multi-Stage Progressive Image Restoration\", CVPR 2021) reproduced by "
             "the mprnet-study workflow. Every number below is generated; nothing is typed in.", ""]
    if cost_headline:
        lines += [f"**Cost.** {cost_headline}", ""]
    files = [name for name in OTHER_FILES if (root / name).exists() or name == "report.html"]
    if files:
        lines += ["## Files", ""]
        lines += [f"- [`{name}`]({name}): {OTHER_FILES[name]}" for name in files]
        lines.append("")

    tables = sorted((root / "tables").glob("*.md"), key=lambda p: _rank(p.stem)) if (root / "tables").is_dir() else []
    if tables:
        lines += ["## Tables", ""]
        for md in tables:
            stem = md.stem
            formats = " · ".join(f"[{ext}](tables/{stem}.{ext})" for ext in TABLE_FORMATS
                                 if (root / "tables" / f"{stem}.{ext}").exists())
            title, body = split_title(md.read_text())
            lines += [f"### {title or stem}", "", f"{describe(stem)} ({formats})".strip(), "", body, ""]

    figures = sorted((root / "figures").glob("*.png"), key=lambda p: _rank(p.stem)) if (root / "figures").is_dir() else []
    if figures:
        lines += ["## Figures", ""]
        for png in figures:
            stem = png.stem
            pdf = f" ([PDF](figures/{stem}.pdf))" if (root / "figures" / f"{stem}.pdf").exists() else ""
            lines += [f"### {stem}", "", f"{describe(stem)}{pdf}".strip(), "", f"![{stem}](figures/{stem}.png)", ""]

    if provenance_md:
        lines += ["## Provenance", "", provenance_md.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_index(study: str, root: str | os.PathLike, out: str | os.PathLike | None = None,
                *, provenance_md: str | None = None, cost_headline: str | None = None) -> Path:
    out = Path(out) if out is not None else Path(root) / "README.md"
    atomic_write_text(out, build_index(study, root, provenance_md=provenance_md, cost_headline=cost_headline))
    return out
