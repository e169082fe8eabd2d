"""Study-level logic shared by the Snakefile and the ``mprnet`` commands the rules call.

``config``: load and validate a study config (``study:`` switch, schema, registry, ablation
switches, trainer recipes) into runs; ``aggregate``: ``results/<study>/summary.csv`` from the
per-image scores; ``cli``: ``mprnet run-config``, ``mprnet study-manifest``, ``mprnet aggregate``.
"""
