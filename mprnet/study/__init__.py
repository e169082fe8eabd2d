"""The study: what is trained, restored and scored, and where every file of it lives.

``layout``: the results layout (every path pattern, once); ``study``: the :class:`Study` (runs,
sources, test sets, targets and the report's file records), built by ``config.load_study`` from a
validated study config (``study:`` switch, schema, registry, ablation switches, trainer recipes);
``files``: each run's config file and the study manifest; ``aggregate``:
``results/<study>/summary.csv``, ``runs.csv`` and ``metrics.json`` from the per-image scores;
``verdicts``: each published number next to ours with a reproduced / not reproduced verdict.
The workflow's rules and scripts (``workflow/``) call these.
"""
