rule restore:
    input:
        checkpoint=get_checkpoint,
        data=get_test_manifest,
    output:
        directory(RESULTS + "/restored/{source}/{dataset}"),
    log:
        RESULTS + "/logs/restore/{source}/{dataset}.log",
    benchmark:
        RESULTS + "/benchmarks/restore/{source}/{dataset}.tsv"
    params:
        input_dir=get_test_input_dir,
        options=get_restore_options,
    shell:
        "mprnet restore --checkpoint {input.checkpoint:q} --input {params.input_dir:q}"
        " --output {output:q} {params.options} > {log:q} 2>&1"
