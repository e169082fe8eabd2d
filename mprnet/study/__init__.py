"""The study: what is trained, restored and scored, and where every file of it lives.

``config.load_study`` reads a study config once (``study:`` switch, schema, registry, ablation
switches, trainer recipes) into the frozen records of ``spec`` (tasks, test sets, runs, sources,
the ablation, the data and report settings), held by ``study.Study`` with its look-ups;
``targets.Targets`` gives every file of it (job inputs, ``rule all``'s targets, the study manifest)
from ``layout``, where each path pattern is spelled once; ``files``: each run's config file and the
study manifest; ``aggregate``: ``results/<study>/summary.csv``, ``runs.csv`` and ``metrics.json``
from the per-image scores; ``verdicts``: each published number next to ours with a reproduced /
not reproduced verdict. The workflow's rules and scripts (``workflow/``) call these.
"""
