"""rule report_tiles_table: the `tiles` table of the study's tile checks."""

from pathlib import Path

from mprnet.report.loaders import manifest_files
from mprnet.report.tiles import write_tiles_table
from mprnet.scripts import job_log
from mprnet.vocabulary import MANIFEST_TILE_CHECKS

with job_log(snakemake):
    write_tiles_table(manifest_files(snakemake.input.manifest, MANIFEST_TILE_CHECKS),
                      Path(snakemake.output.md).parent)
