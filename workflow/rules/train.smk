rule run_config:
    output:
        "results/{study}/runs/{group}/{task}/{variant}/seed{seed}/run.yaml",
    log:
        "results/{study}/logs/run_config/{group}/{task}/{variant}/seed{seed}.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        config=get_run_config,
        run_dir=get_run_dir,
    shell:
        "python -m mprnet.cli run-config --json {params.config:q} --run-dir {params.run_dir:q}"
        " --out {output:q} > {log:q} 2>&1"


# Always --resume: a retried job (failure, preemption, time limit; exit status 75 after
# SIGTERM) continues from the checkpoint in its folder. Only model_final.pt is a declared
# output: Snakemake deletes declared outputs before every attempt, and checkpoint.pt and the
# training curves (metrics.csv, dvclive/) beside it must survive until the retry resumes.
# Rules that read the curves take model_final.pt as input and read metrics.csv next to it.
# Snakemake empties a job's log before each attempt; train.log beside the checkpoint keeps the
# output of every attempt (e.g. the SIGTERM that made the trainer exit 75, "resume me").
rule train:
    input:
        config="results/{study}/runs/{group}/{task}/{variant}/seed{seed}/run.yaml",
        data=get_train_data,
    output:
        "results/{study}/runs/{group}/{task}/{variant}/seed{seed}/model_final.pt",
    log:
        "results/{study}/logs/train/{group}/{task}/{variant}/seed{seed}.log",
    benchmark:
        "results/{study}/benchmarks/train/{group}/{task}/{variant}/seed{seed}.tsv"
    conda:
        MPRNET_ENV
    params:
        run_dir=get_run_dir,
    shell:
        "python -m mprnet.cli train --config {input.config:q} --out {params.run_dir:q} --resume"
        " 2>&1 | tee -a {params.run_dir:q}/train.log > {log:q}"
