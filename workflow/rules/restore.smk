# One rule restores every source that restores (a run's model or the official weights) on one
# test set, with mprnet.restore.restore_checkpoint, as `mprnet restore` does. A `model_best` source
# (a validating main run's best-validation checkpoint) waits for its run's model_final.pt, the train
# job's declared output, and loads model_best.pt beside it (params.weights). Its settings are the
# task's `restore:` (tiles, precision, stage outputs) and, per test set, the float outputs its
# protocol needs (mprnet.metrics.protocols: SIDD scores them, DND bundles them; DND is restored
# from its exact float crops, input_float/*.npy, TARGETS.test_inputs).
rule restore:
    input:
        unpack(get_restore_inputs),
    output:
        directory(layout.RESTORED),
    log:
        "results/{study}/logs/restore/{source}/{dataset}.log",
    benchmark:
        layout.RESTORE_BENCHMARK
    conda:
        MPRNET_ENV
    params:
        weights=get_restore_weights,
        inputs=get_test_inputs,
        settings=get_restore_settings,
    script:
        "../scripts/restore.py"
