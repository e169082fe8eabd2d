"""Datasets of the study: registry, downloads, safe extraction, one prepared layout, demo data.

See docs/data.md for the user's view. Prepared data is
``data/<dataset>/<split>/{input,target}/<stem>.png`` plus ``manifest.csv``.
"""

from .extract import UnsafeArchiveError, safe_extract

__all__ = ["UnsafeArchiveError", "safe_extract"]
