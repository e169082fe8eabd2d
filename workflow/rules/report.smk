# Report rules (issue 7): tables, figures, provenance and the results index, each a thin call of
# one `mprnet` command (run as `python -m mprnet.cli` like the other rules); the helpers they use live in mprnet/report/workflow.py. Everything
# flagged report() lands in the HTML report, with its caption from workflow/report/:
#
#   snakemake --configfile config/demo.yaml --report results/demo/report.html
#
# Optional settings under the study's `report:` key: device (label of the cost table's hours,
# e.g. "GPU"), visual_images (images per comparison grid, default 3), bootstrap_resamples
# (default 10000), bootstrap_seed (default 0).

import json

import mprnet.report.workflow as rw

REPORT = rw.settings(STUDY)

EXTRA_TARGETS.append("results/{study}/README.md")


rule score_stages:
    input:
        pred="results/{study}/restored/{source}/{dataset}",
        data=get_test_manifest,
    output:
        "results/{study}/stage_scores/{source}/{dataset}.csv",
    log:
        "results/{study}/logs/score_stages/{source}/{dataset}.log",
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        target=get_test_target_dir,
    shell:
        "python -m mprnet.cli score-stages --protocol {params.protocol} --output {input.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


rule model_costs:
    output:
        "results/{study}/tables/model_costs.csv",
    log:
        "results/{study}/logs/report/model_costs.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        spec=rw.model_spec(STUDY),
    shell:
        "python -m mprnet.cli model-costs --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"


rule report_main_table:
    input:
        summary="results/{study}/summary.csv",
    output:
        md="results/{study}/tables/main_{task}.md",
        tex="results/{study}/tables/main_{task}.tex",
        csv="results/{study}/tables/main_{task}.csv",
        html=report(
            "results/{study}/tables/main_{task}.html",
            caption="../report/table_main.rst",
            category="Tables",
        ),
    log:
        "results/{study}/logs/report/main_{task}.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        average=" ".join(rw.average_tasks(STUDY)),
    shell:
        "python -m mprnet.cli report-tables --what main --tasks {wildcards.task}"
        " --average-tasks {params.average} --summary {input.summary:q}"
        " --out $(dirname {output.md:q}) > {log:q} 2>&1"


rule report_ablation_table:
    input:
        summary="results/{study}/summary.csv",
        runs="results/{study}/runs.csv",
        scores=get_all_scores,
        costs="results/{study}/tables/model_costs.csv",
        benchmarks=rw.ablation_restore_benchmarks(STUDY),
    output:
        md="results/{study}/tables/ablation.md",
        tex="results/{study}/tables/ablation.tex",
        csv="results/{study}/tables/ablation.csv",
        html=report(
            "results/{study}/tables/ablation.html",
            caption="../report/table_ablation.rst",
            category="Tables",
        ),
    log:
        "results/{study}/logs/report/ablation.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        reference=rw.reference(STUDY),
        template=lambda wildcards: rw.template(
            STUDY,
            "benchmarks/restore/{group}/{task}/{variant}/seed{seed}/{dataset}.tsv",
        ),
        resamples=REPORT.get("bootstrap_resamples", 10000),
        seed=REPORT.get("bootstrap_seed", 0),
    shell:
        "python -m mprnet.cli report-tables --what ablation --summary {input.summary:q} --runs {input.runs:q}"
        " --model-costs {input.costs:q} --reference {params.reference:q}"
        " --restore-benchmarks {input.benchmarks:q}"
        " --restore-benchmarks-template {params.template:q}"
        " --n-resamples {params.resamples} --bootstrap-seed {params.seed}"
        " --out $(dirname {output.md:q}) > {log:q} 2>&1"


rule report_cost_table:
    input:
        summary="results/{study}/summary.csv",
        benchmarks=rw.train_benchmarks(STUDY),
    output:
        md="results/{study}/tables/cost.md",
        tex="results/{study}/tables/cost.tex",
        csv="results/{study}/tables/cost.csv",
        html=report(
            "results/{study}/tables/cost.html",
            caption="../report/table_cost.rst",
            category="Tables",
        ),
    log:
        "results/{study}/logs/report/cost.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        template=lambda wildcards: rw.template(
            STUDY, "benchmarks/train/{group}/{task}/{variant}/seed{seed}.tsv"
        ),
        device=REPORT.get("device", ""),
    shell:
        "python -m mprnet.cli report-tables --what cost --summary {input.summary:q}"
        " --train-benchmarks {input.benchmarks:q}"
        " --train-benchmarks-template {params.template:q}"
        " --device={params.device:q} --out $(dirname {output.md:q}) > {log:q} 2>&1"


rule report_figures:
    input:
        summary="results/{study}/summary.csv",
        runs="results/{study}/runs.csv",
        scores=get_all_scores,
        # metrics.csv is no declared output of `train` (it must survive retries); the finished
        # model stands for it, and the curves are read from beside it.
        models=rw.trained_models(STUDY),
        stages=rw.stage_score_files(STUDY),
    output:
        paper_vs_ours=report(
            "results/{study}/figures/paper_vs_ours.png",
            caption="../report/fig_paper_vs_ours.rst",
            category="Figures",
        ),
        ablation_bars=report(
            "results/{study}/figures/ablation_bars.png",
            caption="../report/fig_ablation_bars.rst",
            category="Figures",
        ),
        per_image_psnr=report(
            "results/{study}/figures/per_image_psnr.png",
            caption="../report/fig_per_image_psnr.rst",
            category="Figures",
        ),
        training_curves=report(
            "results/{study}/figures/training_curves.png",
            caption="../report/fig_training_curves.rst",
            category="Figures",
        ),
        stage_progression=report(
            "results/{study}/figures/stage_progression.png",
            caption="../report/fig_stage_progression.rst",
            category="Figures",
        ),
        pdf=expand(
            "results/{{study}}/figures/{name}.pdf",
            name=rw.FIGURES,
        ),
    log:
        "results/{study}/logs/report/figures.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        reference=rw.reference(STUDY),
        logs=rw.quote_all(rw.training_logs(STUDY)),
        logs_template=lambda wildcards: rw.template(
            STUDY, "runs/{group}/{task}/{variant}/seed{seed}/metrics.csv"
        ),
        stages_template=lambda wildcards: rw.template(
            STUDY,
            "stage_scores/{group}/{task}/{variant}/seed{seed}/{dataset}.csv",
        ),
        stages=(
            f"--stage-scores {rw.quote_all(rw.stage_score_files(STUDY))}"
            if rw.stage_score_files(STUDY)
            else ""
        ),
        resamples=REPORT.get("bootstrap_resamples", 10000),
        seed=REPORT.get("bootstrap_seed", 0),
    shell:
        "python -m mprnet.cli report-figures --summary {input.summary:q} --runs {input.runs:q}"
        " --reference {params.reference:q}"
        " --training-logs {params.logs} --training-logs-template {params.logs_template:q}"
        " {params.stages} --stage-scores-template {params.stages_template:q}"
        " --n-resamples {params.resamples} --bootstrap-seed {params.seed}"
        " --out $(dirname {output.paper_vs_ours:q}) > {log:q} 2>&1"


rule report_visual:
    input:
        outputs=lambda wildcards: rw.visual_inputs(
            STUDY, "main", wildcards.task, wildcards.dataset
        ),
        input_scores="results/{study}/scores/input/{task}/{dataset}.csv",
        data=get_test_manifest,
    output:
        png=report(
            "results/{study}/figures/visual_{task}_{dataset}.png",
            caption="../report/fig_visual.rst",
            category="Visual comparisons",
        ),
        pdf="results/{study}/figures/visual_{task}_{dataset}.pdf",
    log:
        "results/{study}/logs/report/visual_{task}_{dataset}.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        methods=lambda wildcards: rw.visual_args(
            STUDY, "main", wildcards.task, wildcards.dataset
        ),
        input_dir=get_test_input_dir,
        target=get_test_target_dir,
        n=REPORT.get("visual_images", 3),
    shell:
        "python -m mprnet.cli report-visual --input {params.input_dir:q} --target {params.target:q}"
        " {params.methods} --input-scores {input.input_scores:q} --n-images {params.n}"
        " --title '{wildcards.task}: {wildcards.dataset}'"
        " --out {output.png:q} > {log:q} 2>&1"


rule report_ablation_visual:
    input:
        outputs=lambda wildcards: rw.visual_inputs(
            STUDY, "ablation", wildcards.task, wildcards.dataset
        ),
        input_scores="results/{study}/scores/input/{task}/{dataset}.csv",
        data=get_test_manifest,
    output:
        png=report(
            "results/{study}/figures/ablation_visual_{task}_{dataset}.png",
            caption="../report/fig_ablation_visual.rst",
            category="Visual comparisons",
        ),
        pdf="results/{study}/figures/ablation_visual_{task}_{dataset}.pdf",
    log:
        "results/{study}/logs/report/ablation_visual_{task}_{dataset}.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        methods=lambda wildcards: rw.visual_args(
            STUDY, "ablation", wildcards.task, wildcards.dataset
        ),
        input_dir=get_test_input_dir,
        target=get_test_target_dir,
        n=REPORT.get("visual_images", 3),
    shell:
        "python -m mprnet.cli report-visual --input {params.input_dir:q} --target {params.target:q}"
        " {params.methods} --input-scores {input.input_scores:q} --n-images {params.n}"
        " --title 'Ablation ({wildcards.task}): {wildcards.dataset}'"
        " --out {output.png:q} > {log:q} 2>&1"


rule provenance:
    input:
        summary="results/{study}/summary.csv",
    output:
        json="results/{study}/provenance.json",
        md="results/{study}/provenance.md",
        html=report(
            "results/{study}/provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "results/{study}/logs/report/provenance.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        config=json.dumps(STUDY.section, sort_keys=True),
    shell:
        "python -m mprnet.cli provenance --config-json {params.config:q} --out {output.json:q}"
        " --markdown {output.md:q} --html {output.html:q} > {log:q} 2>&1"


rule report_index:
    input:
        rw.index_inputs(STUDY),
    output:
        "results/{study}/README.md",
    log:
        "results/{study}/logs/report/index.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        provenance="results/{study}/provenance.json",
    shell:
        "python -m mprnet.cli report-index --study {wildcards.study} --root $(dirname {output:q})"
        " --provenance {params.provenance:q} --out {output:q} > {log:q} 2>&1"
