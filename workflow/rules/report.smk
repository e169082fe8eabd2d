# Report rules (issue 7): tables, figures, provenance and the results index, each a thin call of
# one `mprnet` command. Everything flagged report() lands in the HTML report:
#
#   snakemake --configfile config/demo.yaml --report results/demo/report.html
#
# Optional settings under the study's `report:` key: device (label of the cost table's hours,
# e.g. "GPU"), visual_images (images per comparison grid, default 3), bootstrap_resamples
# (default 10000), bootstrap_seed (default 0).

import json

REPORT = STUDY.section.get("report", {}) or {}
REPORT_CAPTIONS = "../report"
TABLE_EXTS = ["md", "tex", "csv", "html"]
FIGURES = [
    "paper_vs_ours",
    "ablation_bars",
    "per_image_psnr",
    "training_curves",
    "stage_progression",
]
FIGURE_CAPTIONS = {
    "paper_vs_ours": "fig_paper_vs_ours.rst",
    "ablation_bars": "fig_ablation_bars.rst",
    "per_image_psnr": "fig_per_image_psnr.rst",
    "training_curves": "fig_training_curves.rst",
    "stage_progression": "fig_stage_progression.rst",
}


def report_main_runs():
    return [r for r in STUDY.runs if r.group == "main"]


def report_ablation_runs():
    return [r for r in STUDY.runs if r.group == "ablation"]


def report_scored_sets(task):
    return [ts for ts in STUDY.test_sets[task].values() if ts.scored]


def report_stage_scores(wildcards=None):
    """Stage scores of every main run whose task restores with save_stages."""
    files = []
    for run in report_main_runs():
        if STUDY.tasks[run.task].get("restore", {}).get("save_stages"):
            files += [
                f"results/{STUDY.name}/stage_scores/{run.key}/{ts.name}.csv"
                for ts in run.test_sets
                if ts.scored
            ]
    return files


def report_training_logs(wildcards=None):
    return [f"{run_dir(run)}/metrics.csv" for run in STUDY.runs]


def report_train_benchmarks(wildcards=None):
    return [
        f"results/{STUDY.name}/benchmarks/train/{run.key}.tsv" for run in STUDY.runs
    ]


def report_restore_benchmarks(wildcards=None):
    return [
        f"results/{STUDY.name}/benchmarks/restore/{run.key}/{ts.name}.tsv"
        for run in report_ablation_runs()
        for ts in run.test_sets
        if ts.scored
    ]


def report_model_spec(wildcards=None):
    """One entry per distinct model of the study, for parameters and GFLOPs."""
    specs = {}
    for run in STUDY.runs:
        specs[(run.group, run.task, run.variant)] = {
            "group": run.group,
            "task": run.task,
            "method": run.variant,
            "preset": run.preset,
            "model": run.model,
        }
    for task in STUDY.section.get("pretrained", {}):
        specs[("official_weights", task, "official_weights")] = {
            "group": "official_weights",
            "task": task,
            "method": "official_weights",
            "preset": STUDY.tasks[task]["preset"],
            "model": {},
        }
    return json.dumps(list(specs.values()), sort_keys=True)


def report_average_tasks():
    """Tasks that get the paper's Average column: deraining, as in the paper's Table 1."""
    return [t for t, spec in STUDY.tasks.items() if spec["preset"] == "deraining"]


def report_table_outputs(name, caption):
    out = {ext: f"{RESULTS}/tables/{name}.{ext}" for ext in TABLE_EXTS if ext != "html"}
    out["html"] = report(
        f"{RESULTS}/tables/{name}.html",
        caption=f"{REPORT_CAPTIONS}/{caption}",
        category="Tables",
    )
    return out


def report_visual_methods(wildcards, group):
    """--method NAME=RESTORED=SCORES arguments: first seed of each model on this test set."""
    results = f"results/{STUDY.name}"
    items, seen = [], set()
    for run in STUDY.runs:
        if run.group != group or run.task != wildcards.task:
            continue
        if wildcards.dataset not in [ts.name for ts in run.test_sets]:
            continue
        if run.variant in seen:
            continue
        seen.add(run.variant)
        items.append(
            (
                run.variant,
                f"{results}/restored/{run.key}/{wildcards.dataset}",
                f"{results}/scores/{run.key}/{wildcards.dataset}.csv",
            )
        )
    if group == "main" and wildcards.task in STUDY.section.get("pretrained", {}):
        src = f"official_weights/{wildcards.task}"
        items.append(
            (
                "official_weights",
                f"{results}/restored/{src}/{wildcards.dataset}",
                f"{results}/scores/{src}/{wildcards.dataset}.csv",
            )
        )
    return items


def report_visual_inputs(group):
    def inputs(wildcards):
        files = [
            f"results/{STUDY.name}/scores/input/{wildcards.task}/{wildcards.dataset}.csv"
        ]
        for _, restored, scores in report_visual_methods(wildcards, group):
            files += [restored, scores]
        return files

    return inputs


def report_visual_args(group):
    def args(wildcards):
        return " ".join(
            "--method " + shlex_quote(f"{name}={restored}={scores}")
            for name, restored, scores in report_visual_methods(wildcards, group)
        )

    return args


def report_template(relative):
    """A path template of the report commands (fields in braces), under results/<study>/."""
    return f"results/{STUDY.name}/{relative}"


def shlex_quote(text):
    import shlex

    return shlex.quote(text)


def report_visual_targets():
    main = [
        f"{RESULTS}/figures/visual_{task}_{ts.name}.png"
        for task in STUDY.tasks
        for ts in report_scored_sets(task)
    ]
    abl = STUDY.section.get("ablations")
    if abl:
        sets = abl.get("test_sets") or [
            ts.name for ts in report_scored_sets(abl["task"])
        ]
        main += [
            f"{RESULTS}/figures/ablation_visual_{abl['task']}_{ds}.png"
            for ds in sets
            if STUDY.test_sets[abl["task"]][ds].scored
        ]
    return main


EXTRA_TARGETS.append(RESULTS + "/README.md")


# ----------------------------------------------------------------------------- rules


rule score_stages:
    input:
        pred=RESULTS + "/restored/{source}/{dataset}",
        data=get_test_manifest,
    output:
        RESULTS + "/stage_scores/{source}/{dataset}.csv",
    log:
        RESULTS + "/logs/score_stages/{source}/{dataset}.log",
    params:
        protocol=get_protocol,
        target=get_test_target_dir,
    shell:
        "mprnet score-stages --protocol {params.protocol} --output {input.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


rule model_costs:
    output:
        RESULTS + "/tables/model_costs.csv",
    log:
        RESULTS + "/logs/report/model_costs.log",
    localrule: True
    params:
        spec=report_model_spec,
    shell:
        "mprnet model-costs --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"


rule report_main_table:
    input:
        summary=RESULTS + "/summary.csv",
    output:
        **report_table_outputs("main_{task}", "table_main.rst"),
    log:
        RESULTS + "/logs/report/main_{task}.log",
    localrule: True
    params:
        average="--average-tasks " + " ".join(report_average_tasks()),
    shell:
        "mprnet report-tables --what main --tasks {wildcards.task} {params.average}"
        " --summary {input.summary:q} --out $(dirname {output.md:q}) > {log:q} 2>&1"


rule report_ablation_table:
    input:
        summary=RESULTS + "/summary.csv",
        runs=RESULTS + "/runs.csv",
        scores=get_all_scores,
        costs=RESULTS + "/tables/model_costs.csv",
        benchmarks=report_restore_benchmarks,
    output:
        **report_table_outputs("ablation", "table_ablation.rst"),
    log:
        RESULTS + "/logs/report/ablation.log",
    localrule: True
    params:
        reference=STUDY.section.get("ablations", {}).get("reference", "full"),
        template=lambda wildcards: report_template(
            "benchmarks/restore/{group}/{task}/{variant}/seed{seed}/{dataset}.tsv"
        ),
        resamples=REPORT.get("bootstrap_resamples", 10000),
        seed=REPORT.get("bootstrap_seed", 0),
    shell:
        "mprnet report-tables --what ablation --summary {input.summary:q} --runs {input.runs:q}"
        " --model-costs {input.costs:q} --reference {params.reference:q}"
        " --restore-benchmarks {input.benchmarks:q} --restore-benchmarks-template {params.template:q}"
        " --n-resamples {params.resamples} --bootstrap-seed {params.seed}"
        " --out $(dirname {output.md:q}) > {log:q} 2>&1"


rule report_cost_table:
    input:
        summary=RESULTS + "/summary.csv",
        benchmarks=report_train_benchmarks,
    output:
        **report_table_outputs("cost", "table_cost.rst"),
    log:
        RESULTS + "/logs/report/cost.log",
    localrule: True
    params:
        template=lambda wildcards: report_template(
            "benchmarks/train/{group}/{task}/{variant}/seed{seed}.tsv"
        ),
        device=REPORT.get("device", ""),
    shell:
        "mprnet report-tables --what cost --summary {input.summary:q}"
        " --train-benchmarks {input.benchmarks:q} --train-benchmarks-template {params.template:q}"
        " --device {params.device:q} --out $(dirname {output.md:q}) > {log:q} 2>&1"


rule report_figures:
    input:
        summary=RESULTS + "/summary.csv",
        runs=RESULTS + "/runs.csv",
        scores=get_all_scores,
        logs=report_training_logs,
        stages=report_stage_scores,
    output:
        **{
            name: report(
                f"{RESULTS}/figures/{name}.png",
                caption=f"{REPORT_CAPTIONS}/{FIGURE_CAPTIONS[name]}",
                category="Figures",
            )
            for name in FIGURES
        },
        pdf=[f"{RESULTS}/figures/{name}.pdf" for name in FIGURES],
    log:
        RESULTS + "/logs/report/figures.log",
    localrule: True
    params:
        reference=STUDY.section.get("ablations", {}).get("reference", "full"),
        logs_template=lambda wildcards: report_template(
            "runs/{group}/{task}/{variant}/seed{seed}/metrics.csv"
        ),
        stages_template=lambda wildcards: report_template(
            "stage_scores/{group}/{task}/{variant}/seed{seed}/{dataset}.csv"
        ),
        stages=lambda wildcards, input: (
            f"--stage-scores {' '.join(map(shlex_quote, input.stages))}"
            if input.stages
            else ""
        ),
        resamples=REPORT.get("bootstrap_resamples", 10000),
        seed=REPORT.get("bootstrap_seed", 0),
    shell:
        "mprnet report-figures --summary {input.summary:q} --runs {input.runs:q}"
        " --reference {params.reference:q}"
        " --training-logs {input.logs:q} --training-logs-template {params.logs_template:q}"
        " {params.stages} --stage-scores-template {params.stages_template:q}"
        " --n-resamples {params.resamples} --bootstrap-seed {params.seed}"
        " --out $(dirname {output.paper_vs_ours:q}) > {log:q} 2>&1"


rule report_visual:
    input:
        report_visual_inputs("main"),
        data=get_test_manifest,
    output:
        png=report(
            RESULTS + "/figures/visual_{task}_{dataset}.png",
            caption=REPORT_CAPTIONS + "/fig_visual.rst",
            category="Visual comparisons",
        ),
        pdf=RESULTS + "/figures/visual_{task}_{dataset}.pdf",
    log:
        RESULTS + "/logs/report/visual_{task}_{dataset}.log",
    localrule: True
    params:
        methods=report_visual_args("main"),
        input_dir=get_test_input_dir,
        target=get_test_target_dir,
        n=REPORT.get("visual_images", 3),
    shell:
        "mprnet report-visual --input {params.input_dir:q} --target {params.target:q}"
        " {params.methods} --input-scores {input[0]:q} --n-images {params.n}"
        " --title '{wildcards.task}: {wildcards.dataset}'"
        " --out {output.png:q} > {log:q} 2>&1"


rule report_ablation_visual:
    input:
        report_visual_inputs("ablation"),
        data=get_test_manifest,
    output:
        png=report(
            RESULTS + "/figures/ablation_visual_{task}_{dataset}.png",
            caption=REPORT_CAPTIONS + "/fig_ablation_visual.rst",
            category="Visual comparisons",
        ),
        pdf=RESULTS + "/figures/ablation_visual_{task}_{dataset}.pdf",
    log:
        RESULTS + "/logs/report/ablation_visual_{task}_{dataset}.log",
    localrule: True
    params:
        methods=report_visual_args("ablation"),
        input_dir=get_test_input_dir,
        target=get_test_target_dir,
        n=REPORT.get("visual_images", 3),
    shell:
        "mprnet report-visual --input {params.input_dir:q} --target {params.target:q}"
        " {params.methods} --input-scores {input[0]:q} --n-images {params.n}"
        " --title 'Ablation ({wildcards.task}): {wildcards.dataset}'"
        " --out {output.png:q} > {log:q} 2>&1"


rule provenance:
    input:
        summary=RESULTS + "/summary.csv",
    output:
        json=RESULTS + "/provenance.json",
        md=RESULTS + "/provenance.md",
        html=report(
            RESULTS + "/provenance.html",
            caption=REPORT_CAPTIONS + "/provenance.rst",
            category="Provenance",
        ),
    log:
        RESULTS + "/logs/report/provenance.log",
    localrule: True
    params:
        config=lambda wildcards: json.dumps(STUDY.section, sort_keys=True),
    shell:
        "mprnet provenance --config-json {params.config:q} --out {output.json:q}"
        " --markdown {output.md:q} --html {output.html:q} > {log:q} 2>&1"


rule report_index:
    input:
        tables=lambda wildcards: [
            f"results/{STUDY.name}/tables/{name}.md"
            for name in [f"main_{t}" for t in STUDY.tasks]
            + (["ablation"] if STUDY.section.get("ablations") else [])
            + ["cost"]
        ],
        figures=expand(
            RESULTS + "/figures/{name}.png", name=FIGURES, allow_missing=True
        ),
        visual=lambda wildcards: [
            t.format(study=STUDY.name) for t in report_visual_targets()
        ],
        provenance=RESULTS + "/provenance.json",
    output:
        RESULTS + "/README.md",
    log:
        RESULTS + "/logs/report/index.log",
    localrule: True
    shell:
        "mprnet report-index --study {wildcards.study} --root $(dirname {output:q})"
        " --provenance {input.provenance:q} --out {output:q} > {log:q} 2>&1"
