rule run_config:
    output:
        layout.RUN_CONFIG,
    log:
        "results/{study}/logs/run_config/{group}/{task}/{variant}/seed{seed}.log",
    localrule: True
    conda:
        MPRNET_ENV
    params:
        config=get_run_config,
        run_dir=get_run_dir,
    script:
        "../scripts/run_config.py"


# Always --resume: a retried job (failure, preemption, time limit; exit status 75 after
# SIGTERM) continues from the checkpoint in its folder. Only model_final.pt is a declared
# output: Snakemake deletes declared outputs before every attempt, and checkpoint.pt and the
# training curves (metrics.csv, dvclive/) beside it must survive until the retry resumes.
# Rules that read the curves take model_final.pt as input and read metrics.csv next to it.
# Snakemake empties a job's log before each attempt; the trainer itself appends every attempt's
# output to train.log beside the checkpoint (--log; e.g. the SIGTERM that made it exit 75).
# Slurm sends SIGTERM to every process of a job at once, so nothing the trainer needs may sit
# between it and Snakemake: `exec` replaces the shell (which would die first and orphan the
# trainer), and no pipe (a `| tee` dies first and its reader's EPIPE used to abort the stop
# checkpoint); the redirection to {log} is a file.
# Processes: `runtime.processes: N` in the run's recipe (study config). The same command then
# starts N processes through torch's elastic launcher, inside `mprnet train` so that it still
# exits 75 after SIGTERM (the `torchrun` command exits 1); see mprnet/training/launch.py. The job
# asks for N GPUs (none when runtime.device is cpu) and N threads, which Slurm turns into
# --gpus=N and --cpus-per-gpu (workflow/profiles/default) or --cpus-per-task=N (CPU-only runs).
rule train:
    input:
        config=layout.RUN_CONFIG,
        data=get_train_data,
    output:
        layout.MODEL,
    log:
        "results/{study}/logs/train/{group}/{task}/{variant}/seed{seed}.log",
    benchmark:
        layout.TRAIN_BENCHMARK
    conda:
        MPRNET_ENV
    threads: get_train_processes
    resources:
        gpu=get_train_gpus,
    params:
        run_dir=get_run_dir,
    shell:
        "exec python -m mprnet.cli train --config {input.config:q} --out {params.run_dir:q} --resume"
        " --log {params.run_dir:q}/train.log > {log:q} 2>&1"
