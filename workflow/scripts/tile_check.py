"""rule tile_check: a sample of one test set restored the other way (tiles or whole) than the study
restores it, and scored against the study's own per-image scores (mprnet.report.tiles)."""

from mprnet.report.tiles import tile_check
from mprnet.scripts import job_log

with job_log(snakemake):
    p, i = snakemake.params, snakemake.input
    check, settings = p.tiling["check"], p.tiling["settings"]
    tile_check(i.checkpoint, p.inputs, p.targets, p.protocol, i.scores, snakemake.output[0], tile=check.tile,
               overlap=check.overlap, study_tiles=check.study_tiles, images=check.images,
               precision=settings.precision, save_float=settings.save_float)
