# Tiles vs whole images (mprnet/report/tiles.py): for each task the study restores in tiles (its
# `restore.tile`), or whole while the study's `report.tile_check_tile` is set, the first seed's
# main model restores a sample of each scored test set the other way (report.tile_check_images
# images, evenly spaced in name order), scored with the set's protocol against the study's own
# per-image scores of the same images; the `tiles` table shows the differences.
rule tile_check:
    input:
        unpack(get_tile_check_inputs),
    output:
        layout.TILE_CHECK,
    log:
        "results/{study}/logs/tile_check/{source}/{dataset}.log",
    benchmark:
        layout.TILE_CHECK_BENCHMARK
    conda:
        MPRNET_ENV
    params:
        inputs=get_test_inputs,
        targets=get_test_targets,
        protocol=get_protocol,
        tiling=get_tile_check,
    script:
        "../scripts/tile_check.py"


rule report_tiles_table:
    input:
        manifest=layout.STUDY_MANIFEST,
        checks=[path for _, path in TARGETS.tile_check_files()],
    output:
        **table(TILES_TABLE, "../report/table_tiles.rst"),
    log:
        "results/{study}/logs/report/tiles.log",
    localrule: True
    conda:
        MPRNET_ENV
    script:
        "../scripts/tiles_table.py"
