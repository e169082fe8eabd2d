rule run_config:
    output:
        RESULTS + "/runs/{group}/{task}/{variant}/seed{seed}/run.yaml",
    log:
        RESULTS + "/logs/run_config/{group}/{task}/{variant}/seed{seed}.log",
    localrule: True
    params:
        config=get_run_config,
        run_dir=get_run_dir,
    shell:
        "mprnet run-config --json {params.config:q} --run-dir {params.run_dir:q}"
        " --out {output:q} > {log:q} 2>&1"


# Always --resume: a retried job (failure, preemption, time limit; exit status 75 after
# SIGTERM) continues from the checkpoint in its folder. The checkpoint is not a declared output,
# so Snakemake keeps it between attempts; run_config sets it aside if the config changed.
rule train:
    input:
        config=RESULTS + "/runs/{group}/{task}/{variant}/seed{seed}/run.yaml",
        data=get_train_data,
    output:
        model=RESULTS + "/runs/{group}/{task}/{variant}/seed{seed}/model_final.pt",
        curves=RESULTS + "/runs/{group}/{task}/{variant}/seed{seed}/metrics.csv",
    log:
        RESULTS + "/logs/train/{group}/{task}/{variant}/seed{seed}.log",
    benchmark:
        RESULTS + "/benchmarks/train/{group}/{task}/{variant}/seed{seed}.tsv"
    params:
        run_dir=get_run_dir,
    shell:
        "mprnet train --config {input.config:q} --out {params.run_dir:q} --resume"
        " >> {log:q} 2>&1"
