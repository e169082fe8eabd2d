# DND is restored from its exact float crops (input_float/*.npy, Study.test_inputs) with
# --save-float; dnd_bundle (score.smk) bundles those float outputs.
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
        inputs=get_test_inputs,
        options=get_restore_options,
    shell:
        "python -m mprnet.cli restore --checkpoint {input.checkpoint:q} --input {params.inputs:q}"
        " --output {output:q} {params.options} > {log:q} 2>&1"
