"""Rendering layer of the study: tables, statistics, figures, costs, provenance and the index.

Modules: ``loaders`` (summary, runs, per-image scores, benchmark and log files into DataFrames),
``stats`` (paired bootstrap CI, mean ± std), ``tables`` (Markdown/LaTeX/CSV/HTML tables),
``figures`` (PNG+PDF figures), ``costs`` (parameters, GFLOPs), ``stages`` (stage-output scores),
``provenance``, ``index`` (``results/<study>/README.md``), ``gains`` (the printout of ``make
demo``) and ``jobs`` (the report steps the workflow's scripts call, one function each).
"""
