"""Rendering layer of the study: tables, statistics, figures, costs, provenance and the index.

Modules: ``loaders`` (summary, runs, per-image scores, benchmark and log files and the study
manifest's lists into DataFrames), ``stats`` (paired bootstrap CI, mean ± std, the ablation
statistics), ``table`` (the table type and its number formats), ``tables`` (the main and ablation
tables), ``hours`` (what the study cost: the cost table and its headline), ``render``
(Markdown/LaTeX/CSV/HTML), ``figures`` (PNG+PDF figures), ``costs`` (parameters, GFLOPs), ``stages`` (stage-output scores), ``provenance``, ``index``
(``results/<study>/README.md``), ``gains`` (the printout of ``make demo``) and ``jobs`` (the report
steps the workflow's scripts call, one function each). Names and labels: :mod:`mprnet.vocabulary`.
"""
