"""A rendered table: its cells formatted for reading, its numbers kept raw for the CSV.

The builders of :mod:`.tables` make :class:`Table` s; :mod:`.render` writes them as Markdown,
LaTeX, CSV and HTML. The ``format_*`` helpers give every number of the tables one spelling: a
true minus sign, ``–`` for a missing value, no ``−0.00``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Table:
    """A rendered table: formatted cells for Markdown/LaTeX, raw numbers for CSV.

    ``header`` is a list of (group, label) per column after the first (row-label) column;
    columns sharing a non-empty group get one spanning group header (LaTeX) or a
    "group label" heading (Markdown, which has a single header row).
    """

    name: str
    title: str
    row_header: str
    header: list[tuple[str, str]]
    rows: list[tuple[str, list[str]]]
    data: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    rules_before: set[int] = field(default_factory=set)  # row indices preceded by \midrule

    @property
    def n_columns(self) -> int:
        return 1 + len(self.header)


def format_number(value: float, digits: int, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = round(float(value), digits) + 0.0  # no "−0.00": a value that rounds to zero has no sign
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def format_count(value: float) -> str:
    """Parameter counts readable at both scales: 20.13 M for the paper's models, 99.3 k for the demo's."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{int(value)}"


def format_significant(value: float, figures: int = 2) -> str:
    """``value`` to ``figures`` significant figures, whole numbers kept whole (figures 2: 0.0512 ->
    ``0.051``, 1.234 -> ``1.2``, 0.0996 -> ``0.10``, 9.96 -> ``10``, 1234.4 -> ``1234``); 0 -> ``0``.
    The value is rounded first, so that one rounding up to the next power of ten keeps its figures. For amounts
    whose scale varies by orders of magnitude between studies (device-hours: a demo's 0.05, the
    paper's thousands)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (figures - 1):
        return format_number(value, 0)  # whole
    rounded = float(f"{value:.{figures - 1}e}")  # e.g. 0.0996 -> 0.10, whose exponent sets the decimals
    return format_number(rounded, max(0, figures - 1 - math.floor(math.log10(abs(rounded)))))


def format_duration(seconds: float) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def format_mean_std(mean: float, std: float, digits: int, *, signed: bool = False) -> str:
    """``mean ± std`` (the mean with its sign when ``signed``: a difference); the mean alone
    without a std; ``–`` without a mean."""
    if math.isnan(mean):
        return "–"
    if math.isnan(std):
        return format_number(mean, digits, signed=signed)
    return f"{format_number(mean, digits, signed=signed)} ± {format_number(std, digits)}"


def format_range(low: float, high: float, digits: int) -> str:
    """``[low, high]`` of a difference, both signed; ``–`` without them."""
    if math.isnan(low):
        return "–"
    return f"[{format_number(low, digits, signed=True)}, {format_number(high, digits, signed=True)}]"


def format_ci(mean: float, low: float, high: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return format_number(mean, digits, signed=True)
    return f"{format_number(mean, digits, signed=True)} {format_range(low, high, digits)}"
