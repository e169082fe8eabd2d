rule score:
    input:
        pred=RESULTS + "/restored/{source}/{dataset}",
        data=get_test_manifest,
    output:
        RESULTS + "/scores/{source}/{dataset}.csv",
    log:
        RESULTS + "/logs/score/{source}/{dataset}.log",
    params:
        protocol=get_protocol,
        target=get_test_target_dir,
    shell:
        "mprnet score --protocol {params.protocol} --pred {input.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


# The paper's "Input" baseline: the degraded images themselves, scored like a method.
rule score_input:
    input:
        get_test_manifest,
    output:
        RESULTS + "/scores/input/{task}/{dataset}.csv",
    log:
        RESULTS + "/logs/score_input/{task}/{dataset}.log",
    params:
        protocol=get_protocol,
        pred=get_test_input_dir,
        target=get_test_target_dir,
    shell:
        "mprnet score --protocol {params.protocol} --pred {params.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


rule score_released:
    input:
        pred=get_released_dir,
        data=get_test_manifest,
    output:
        RESULTS + "/scores/released_results/{task}/{dataset}.csv",
    log:
        RESULTS + "/logs/score_released/{task}/{dataset}.log",
    params:
        protocol=get_protocol,
        target=get_test_target_dir,
    shell:
        "mprnet score --protocol {params.protocol} --pred {input.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


# DND has no public ground truth: its restored float outputs become the online benchmark's bundle.
rule dnd_bundle:
    input:
        RESULTS + "/restored/{source}/{dataset}",
    output:
        directory(RESULTS + "/submissions/{source}/{dataset}"),
    log:
        RESULTS + "/logs/dnd_bundle/{source}/{dataset}.log",
    shell:
        "mprnet dnd-bundle --input {input:q} --output {output:q} > {log:q} 2>&1"


rule study_manifest:
    output:
        RESULTS + "/study.yaml",
    log:
        RESULTS + "/logs/study_manifest.log",
    localrule: True
    params:
        manifest=get_study_manifest,
    shell:
        "mprnet study-manifest --json {params.manifest:q} --out {output:q} > {log:q} 2>&1"


rule aggregate:
    input:
        manifest=RESULTS + "/study.yaml",
        scores=get_all_scores,
    output:
        summary=RESULTS + "/summary.csv",
        runs=RESULTS + "/runs.csv",
        metrics=RESULTS + "/metrics.json",
    log:
        RESULTS + "/logs/aggregate.log",
    localrule: True
    shell:
        "mprnet aggregate --manifest {input.manifest:q} --summary {output.summary:q}"
        " --runs {output.runs:q} --metrics {output.metrics:q} > {log:q} 2>&1"
