"""Reading the study's CSV files (scores, summaries, logs) with errors that name the file."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .errors import DataError


def read_csv_checked(path: str | os.PathLike, required: Iterable[str] = (), what: str = "CSV", *,
                     dtype: dict | None = None, **options):
    """``pandas.read_csv(path, **options)``, refusing a missing, unreadable or incomplete file with a
    DataError. Column ``image`` is read as text, and so are the columns ``dtype`` names ``str``."""
    import pandas as pd

    try:
        # "image" holds file stems: text, so that 001.png stays "001", never the number 1.
        frame = pd.read_csv(path, dtype={"image": str, **(dtype or {})}, **options)
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what} file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable {what} CSV ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: {what} file has missing columns {', '.join(missing)} "
            f"(has {', '.join(map(str, frame.columns))})"
        )
    return frame
