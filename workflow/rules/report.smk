# Report rules: tables, figures, comparison grids, provenance and the results index. Each runs one
# function of mprnet.report.jobs through a script of workflow/scripts/, handed its inputs and the
# Study's records as Python values; what each benchmark, log or stage-score file is about, the
# jobs read from the study manifest (study.yaml, mprnet.study.targets). Everything flagged
# report() lands in the HTML report, with its caption from workflow/report/ (the report opens on
# workflow/report/workflow.rst):
#
#   snakemake --configfile config/demo.yaml --report results/demo/report.html
#
# Settings: the study's optional `report:` key (mprnet.study.spec.ReportSettings has the defaults).


rule stage_scores:
    input:
        unpack(get_stage_score_inputs),
    output:
        layout.STAGE_SCORES,
    log:
        "results/{study}/logs/score_stages/{source}/{dataset}.log",
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        targets=get_test_targets,
    script:
        "../scripts/stage_scores.py"


rule model_costs:
    output:
        layout.MODEL_COSTS,
    log:
        "results/{study}/logs/report/model_costs.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        specs=STUDY.model_specs(),
    script:
        "../scripts/model_costs.py"


rule report_main_table:
    input:
        summary=layout.SUMMARY,
    output:
        **table(MAIN_TABLE, "../report/table_main.rst"),
    log:
        "results/{study}/logs/report/main_{task}.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        with_average=get_with_average,
        selection=get_model_best_selection,
    script:
        "../scripts/main_table.py"


# The paired bootstrap of the ablation, computed once for the ablation table and its figure.
rule ablation_stats:
    input:
        runs=layout.RUNS,
        scores=get_all_scores,
    output:
        layout.ABLATION_STATS,
    log:
        "results/{study}/logs/report/ablation_stats.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        reference=STUDY.ablation_reference,
        settings=STUDY.report,
    script:
        "../scripts/ablation_stats.py"


rule report_ablation_table:
    input:
        manifest=layout.STUDY_MANIFEST,
        summary=layout.SUMMARY,
        runs=layout.RUNS,
        stats=layout.ABLATION_STATS,
        scores=get_all_scores,
        costs=layout.MODEL_COSTS,
        benchmarks=[path for _, path in TARGETS.restore_benchmarks()],
    output:
        **table(ABLATION_TABLE, "../report/table_ablation.rst"),
    log:
        "results/{study}/logs/report/ablation.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        reference=STUDY.ablation_reference,
        settings=STUDY.report,
    script:
        "../scripts/ablation_table.py"


# Every job that computes: each training run's attempts.csv (no declared output: read beside its
# benchmark file, which stands for it), each restore's and score's benchmark file.
rule report_cost_table:
    input:
        manifest=layout.STUDY_MANIFEST,
        summary=layout.SUMMARY,
        benchmarks=[path for _, path in TARGETS.job_costs()],
    output:
        **table(COST_TABLE, "../report/table_cost.rst", labels=get_cost_labels),
        record=layout.STUDY_COST,
    log:
        "results/{study}/logs/report/cost.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        settings=STUDY.report,
    script:
        "../scripts/cost_table.py"


# The ruler table and its figure: Δ of each ruler readers use against the paper's, per test set.
rule report_rulers:
    input:
        manifest=layout.STUDY_MANIFEST,
        scores=[path for _, path in TARGETS.ruler_score_files()],
    output:
        **table(RULER_TABLE, "../report/table_rulers.rst"),
        figure=figure(RULER_TABLE, "../report/fig_rulers.rst"),
        figure_pdf=layout.FIGURE.format(study="{study}", name=RULER_TABLE, ext="pdf"),
    log:
        "results/{study}/logs/report/rulers.log",
    localrule: True
    conda:
        MPRNET_ENV
    script:
        "../scripts/ruler_table.py"


rule report_figures:
    input:
        manifest=layout.STUDY_MANIFEST,
        summary=layout.SUMMARY,
        runs=layout.RUNS,
        scores=get_all_scores,
        # metrics.csv is no declared output of `train` (it must survive retries); the finished
        # model stands for it, and the curves are read from beside it.
        models=TARGETS.run_files(layout.MODEL),
        stages=[path for _, path in TARGETS.stage_score_files()],
        ablation_stats=get_ablation_stats,
    output:
        paper_vs_ours=figure("paper_vs_ours", "../report/fig_paper_vs_ours.rst"),
        ablation_bars=figure("ablation_bars", "../report/fig_ablation_bars.rst"),
        per_image_psnr=figure("per_image_psnr", "../report/fig_per_image_psnr.rst"),
        training_curves=figure("training_curves", "../report/fig_training_curves.rst"),
        stage_progression=figure(
            "stage_progression", "../report/fig_stage_progression.rst"
        ),
        pdf=expand(layout.FIGURE, study="{study}", name=FIGURES, ext="pdf"),
    log:
        "results/{study}/logs/report/figures.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        reference=STUDY.ablation_reference,
    script:
        "../scripts/figures.py"


# One grid per test set: kind `visual` shows the main models, `ablation_visual` the variants.
rule report_visual:
    input:
        get_visual_inputs,
        input_scores=get_input_scores,
        data=get_test_manifest,
    output:
        png=report(
            layout.VISUAL.format(
                study="{study}",
                kind="{kind}",
                task="{task}",
                dataset="{dataset}",
                ext="png",
            ),
            caption="../report/fig_visual.rst",
            category="Visual comparisons",
        ),
        pdf=layout.VISUAL.format(
            study="{study}",
            kind="{kind}",
            task="{task}",
            dataset="{dataset}",
            ext="pdf",
        ),
    log:
        "results/{study}/logs/report/{kind}_{task}_{dataset}.log",
    wildcard_constraints:
        kind="|".join(VISUAL_KINDS),
    localrule: True
    conda:
        MPRNET_ENV
    params:
        methods=get_visual_panels,
        inputs=get_test_inputs,
        targets=get_test_targets,
        n_images=STUDY.report.visual_images,
    script:
        "../scripts/visual.py"


rule provenance:
    input:
        summary=layout.SUMMARY,
    output:
        json=layout.PROVENANCE.format(study="{study}", ext="json"),
        md=layout.PROVENANCE.format(study="{study}", ext="md"),
        html=report(
            layout.PROVENANCE.format(study="{study}", ext="html"),
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "results/{study}/logs/report/provenance.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        config=canonical(STUDY.section),
    script:
        "../scripts/provenance.py"


rule report_index:
    input:
        TARGETS.index_inputs(),
        provenance=layout.PROVENANCE.format(study="{study}", ext="json"),
        cost=layout.STUDY_COST,
    output:
        layout.INDEX,
    log:
        "results/{study}/logs/report/index.log",
    localrule: True
    conda:
        MPRNET_ENV
    script:
        "../scripts/results_index.py"
