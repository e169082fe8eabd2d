# Prepared data: data/<dataset>/<split>/{input,target}/<stem>.png + manifest.csv (one layout).
# data/ is versioned by DVC through `dvc add` (docs/data.md), not by dvc.yaml, so a lab that
# pulls it gets the manifests and Snakemake finds nothing to prepare.


if STUDY.source == "demo":

    rule demo_data:
        output:
            expand(
                DATA + "/{dataset}/{split}/manifest.csv",
                dataset=sorted(STUDY.datasets()),
                split=["train", "test"],
            ),
        log:
            "logs/data/make-demo.log",
        params:
            root=DATA,
            seed=STUDY.section["data"].get("demo_seed", 0),
        shell:
            "mprnet make-demo --out {params.root:q} --seed {params.seed} > {log:q} 2>&1"

else:

    rule prepare:
        output:
            DATA + "/{dataset}/{split}/manifest.csv",
        log:
            "logs/data/prepare/{dataset}/{split}.log",
        shell:
            "mprnet prepare {wildcards.dataset} --split {wildcards.split} > {log:q} 2>&1"


# The authors' released weights: a whole-folder dataset of the registry (data/<name>/<file>.pth).
rule prepare_weights:
    output:
        DATA + "/{dataset}/{filename}.pth",
    log:
        "logs/data/prepare/{dataset}/{filename}.log",
    shell:
        "mprnet prepare {wildcards.dataset} --force > {log:q} 2>&1"
