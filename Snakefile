"""MPRNet reproduction study: fetch -> prepare -> train -> restore -> score -> aggregate.

    snakemake -n all                                         # plan the paper study
    snakemake all --cores 2 --configfile config/demo.yaml    # run the demo study on a CPU
    snakemake all --profile profiles/slurm                   # run on a Slurm cluster

(`--configfile` takes every argument after it as a file, so the target goes before it.)

See docs/workflow.md.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/restore.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        TARGETS.final_targets(),
