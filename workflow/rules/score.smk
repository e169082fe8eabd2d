# One rule scores every source (mprnet/study/spec.py, Source): a run's or the official weights'
# restored images, the degraded inputs themselves (the paper's "Input" row) and the authors'
# released results.
rule score:
    input:
        unpack(get_score_inputs),
    output:
        layout.SCORES,
    log:
        "results/{study}/logs/score/{source}/{dataset}.log",
    benchmark:
        layout.SCORE_BENCHMARK
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        images=get_scored_images,
        targets=get_test_targets,
    shell:
        "python -m mprnet.cli score --protocol {params.protocol} --pred {params.images:q}"
        " --target {params.targets:q} --out {output:q} > {log:q} 2>&1"


# The main model's images (first seed) of every scored test set under the paper's ruler and under
# the rulers readers use instead (mprnet/metrics/rulers.py): the report's ruler table.
rule ruler_scores:
    input:
        unpack(get_score_inputs),
    output:
        layout.RULER_SCORES,
    log:
        "results/{study}/logs/rulers/{source}/{dataset}.log",
    benchmark:
        layout.RULER_BENCHMARK
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        images=get_scored_images,
        targets=get_test_targets,
    shell:
        "python -m mprnet.cli rulers --protocol {params.protocol} --pred {params.images:q}"
        " --target {params.targets:q} --out {output:q} --no-progress > {log:q} 2>&1"


# DND has no public ground truth: its restored float outputs become the online benchmark's bundle.
rule dnd_bundle:
    input:
        get_bundled_folder,
    output:
        directory(layout.SUBMISSION),
    log:
        "results/{study}/logs/dnd_bundle/{source}/{dataset}.log",
    conda:
        MPRNET_ENV
    shell:
        "python -m mprnet.cli dnd-bundle --input {input:q} --output {output:q} > {log:q} 2>&1"


rule study_manifest:
    output:
        layout.STUDY_MANIFEST,
    log:
        "results/{study}/logs/study_manifest.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        manifest=TARGETS.manifest_record(),
    script:
        "../scripts/study_manifest.py"


# The models are read for the precision they trained in (summary.csv's train_precision).
rule aggregate:
    input:
        manifest=layout.STUDY_MANIFEST,
        scores=get_all_scores,
        models=TARGETS.run_files(layout.MODEL),
    output:
        summary=layout.SUMMARY,
        runs=layout.RUNS,
        metrics=layout.METRICS,
    log:
        "results/{study}/logs/aggregate.log",
    localrule: True
    conda:
        MPRNET_ENV
    script:
        "../scripts/aggregate.py"
