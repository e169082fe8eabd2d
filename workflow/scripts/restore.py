"""rule restore: one test set restored with a run's model (its final one, or its model_best.pt beside
it) or the official weights (params.settings: mprnet.study.spec.RestoreSettings)."""

from mprnet.restore import restore_checkpoint
from mprnet.scripts import job_log
from mprnet.study.files import restored_weights

with job_log(snakemake):
    s = snakemake.params.settings
    weights = restored_weights(snakemake.input.checkpoint, snakemake.params.weights)
    restore_checkpoint(weights, snakemake.params.inputs, snakemake.output[0], tile=s.tile,
                       overlap=s.overlap, precision=s.precision, save_float=s.save_float,
                       save_stages=s.save_stages)
