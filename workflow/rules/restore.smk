# DND is restored from its exact float crops (input_float/*.npy, see get_test_input_dir) with
# --save-float; dnd_bundle (score.smk) bundles those float outputs.
rule restore:
    input:
        checkpoint=get_checkpoint,
        data=get_test_manifest,
    output:
        directory("results/{study}/restored/{source}/{dataset}"),
    log:
        "results/{study}/logs/restore/{source}/{dataset}.log",
    benchmark:
        "results/{study}/benchmarks/restore/{source}/{dataset}.tsv"
    conda:
        MPRNET_ENV
    params:
        input_dir=get_test_input_dir,
        options=get_restore_options,
    shell:
        "python -m mprnet.cli restore --checkpoint {input.checkpoint:q} --input {params.input_dir:q}"
        " --output {output:q} {params.options} > {log:q} 2>&1"
