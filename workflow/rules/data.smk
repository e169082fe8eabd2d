# Prepared data: data/<dataset>/<split>/{input,target}/<stem>.png + manifest.csv (layout.DATA_DIR).
# data/ is versioned by DVC through `dvc add`, not by dvc.yaml, so a lab that pulls it gets the
# manifests and Snakemake finds nothing to prepare.


if STUDY.data.source == "demo":

    rule demo_data:
        output:
            expand(
                layout.DATA_MANIFEST,
                root=STUDY.data.root,
                dataset=sorted(STUDY.datasets()),
                split=["train", "test"],
            ),
        log:
            "logs/data/make-demo.log",
        conda:
            MPRNET_ENV
        params:
            root=get_data_root,
            seed=STUDY.data.demo_seed,
        shell:
            "python -m mprnet.cli make-demo --out {params.root:q} --seed {params.seed}"
            " > {log:q} 2>&1"

else:

    # Fetches what is missing (resumable, checksummed; the same source fetched by two jobs is
    # locked), then converts. Downloads are not outputs: after `dvc pull` of the prepared data
    # nothing is fetched again. Compute nodes without internet: run `mprnet fetch NAME ...` on
    # the login node first (docs/workflow.md).
    rule prepare:
        output:
            layout.DATA_MANIFEST,
        log:
            "{root}/logs/prepare/{dataset}/{split}.log",
        conda:
            MPRNET_ENV
        params:
            registry=STUDY.data.registry,
        shell:
            "python -m mprnet.cli prepare {wildcards.dataset} --split {wildcards.split}"
            " --fetch --force --registry {params.registry:q} --data-dir {wildcards.root:q}"
            " --quiet > {log:q} 2>&1"

    # The authors' released weights: whole-folder datasets of the registry (data/<name>/<file>.pth).
    rule prepare_weights:
        output:
            "{root}/{dataset}/{filename}.pth",
        log:
            "{root}/logs/prepare/{dataset}/{filename}.log",
        conda:
            MPRNET_ENV
        params:
            registry=STUDY.data.registry,
        shell:
            "python -m mprnet.cli prepare {wildcards.dataset} --fetch --force"
            " --registry {params.registry:q} --data-dir {wildcards.root:q} --quiet"
            " > {log:q} 2>&1"
