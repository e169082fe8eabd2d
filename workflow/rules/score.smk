rule score:
    input:
        pred="results/{study}/restored/{source}/{dataset}",
        data=get_test_manifest,
    output:
        "results/{study}/scores/{source}/{dataset}.csv",
    log:
        "results/{study}/logs/score/{source}/{dataset}.log",
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        target=get_test_target_dir,
    shell:
        "python -m mprnet.cli score --protocol {params.protocol} --pred {input.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


# The paper's "Input" baseline: the degraded images themselves, scored like a method.
rule score_input:
    input:
        get_test_manifest,
    output:
        "results/{study}/scores/input/{task}/{dataset}.csv",
    log:
        "results/{study}/logs/score_input/{task}/{dataset}.log",
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        pred=get_test_input_dir,
        target=get_test_target_dir,
    shell:
        "python -m mprnet.cli score --protocol {params.protocol} --pred {params.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


rule score_released:
    input:
        pred=get_released_dir,
        data=get_test_manifest,
    output:
        "results/{study}/scores/released_results/{task}/{dataset}.csv",
    log:
        "results/{study}/logs/score_released/{task}/{dataset}.log",
    conda:
        MPRNET_ENV
    params:
        protocol=get_protocol,
        target=get_test_target_dir,
    shell:
        "python -m mprnet.cli score --protocol {params.protocol} --pred {input.pred:q}"
        " --target {params.target:q} --out {output:q} > {log:q} 2>&1"


# DND has no public ground truth: its restored float outputs become the online benchmark's bundle.
rule dnd_bundle:
    input:
        "results/{study}/restored/{source}/{dataset}",
    output:
        directory("results/{study}/submissions/{source}/{dataset}"),
    log:
        "results/{study}/logs/dnd_bundle/{source}/{dataset}.log",
    conda:
        MPRNET_ENV
    shell:
        "python -m mprnet.cli dnd-bundle --input {input:q} --output {output:q} > {log:q} 2>&1"


rule study_manifest:
    output:
        "results/{study}/study.yaml",
    log:
        "results/{study}/logs/study_manifest.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        manifest=get_study_manifest,
    shell:
        "python -m mprnet.cli study-manifest --json {params.manifest:q} --out {output:q} > {log:q} 2>&1"


rule aggregate:
    input:
        manifest="results/{study}/study.yaml",
        scores=get_all_scores,
    output:
        summary="results/{study}/summary.csv",
        runs="results/{study}/runs.csv",
        metrics="results/{study}/metrics.json",
    log:
        "results/{study}/logs/aggregate.log",
    localrule: True
    conda:
        MPRNET_ENV
    shell:
        "python -m mprnet.cli aggregate --manifest {input.manifest:q} --summary {output.summary:q}"
        " --runs {output.runs:q} --metrics {output.metrics:q} > {log:q} 2>&1"
