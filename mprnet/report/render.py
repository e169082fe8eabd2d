"""The three renderings of a :class:`~mprnet.report.table.Table`: Markdown, LaTeX (booktabs) and a
standalone HTML page, plus its raw numbers as CSV; :func:`write_table` writes all four."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

from ..atomic import atomic_write_text
from ..vocabulary import TABLE_FORMATS
from .table import Table

def to_markdown(table: Table) -> str:
    heads = [table.row_header] + [f"{g} {l}".strip() for g, l in table.header]
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * len(table.header)) + "|")
    for label, cells in table.rows:
        lines.append("| " + " | ".join([_md_escape(label)] + [_md_escape(c) for c in cells]) + " |")
    if table.notes:
        lines.append("")
        lines.append(" ".join(table.notes))
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_UNICODE = {"±": r"$\pm$", "−": "$-$", "Δ": r"$\Delta$", "–": "--", "×": r"$\times$", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    return out


def to_latex(table: Table) -> str:
    """A booktabs ``table`` float; every row has exactly ``n_columns`` cells."""
    spec = "l" + "r" * len(table.header)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:{table.name}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
    ]
    groups = _group_spans(table.header)
    if any(g for g, _, _ in groups):
        cells = [""]
        rules = []
        for group, start, width in groups:
            col = start + 2  # LaTeX columns are 1-based and column 1 holds the row labels
            if group and width > 1:
                cells.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(group)}}}")
                rules.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
            else:
                cells.extend([latex_escape(group)] * width if width == 1 else [""] * width)
        lines.append(" & ".join(cells) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    lines.append(" & ".join([latex_escape(table.row_header)] + [latex_escape(l) for _, l in table.header]) + r" \\")
    lines.append(r"\midrule")
    for i, (label, cells) in enumerate(table.rows):
        if i in table.rules_before and i > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join([latex_escape(label)] + [latex_escape(c) for c in cells]) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if table.notes:
        lines.append(r"\par\smallskip{\footnotesize " + latex_escape(" ".join(table.notes)) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _group_spans(header: Sequence[tuple[str, str]]) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    for i, (group, _) in enumerate(header):
        if spans and group and spans[-1][0] == group:
            g, start, width = spans[-1]
            spans[-1] = (g, start, width + 1)
        else:
            spans.append((group, i, 1))
    return spans


HTML_STYLE = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
    "caption{font-weight:bold;text-align:left;margin-bottom:.4em}"
    "th,td{padding:.25em .7em;text-align:right}th:first-child,td:first-child{text-align:left}"
    "thead tr:last-child th{border-bottom:1px solid #000}table{border-top:2px solid #000;border-bottom:2px solid #000}"
    "tr.rule td{border-top:1px solid #888}p.notes{font-size:90%;color:#333;max-width:60em}"
)


def to_html(table: Table) -> str:
    """A standalone HTML page (the Snakemake report shows HTML results inline)."""
    esc = html.escape
    groups = _group_spans(table.header)
    head = []
    if any(g for g, _, _ in groups):
        head.append("<tr><th></th>" + "".join(f'<th colspan="{w}" style="text-align:center">{esc(g)}</th>'
                                               for g, _, w in groups) + "</tr>")
    head.append(f"<tr><th>{esc(table.row_header)}</th>" + "".join(f"<th>{esc(l)}</th>" for _, l in table.header) + "</tr>")
    body = []
    for i, (label, cells) in enumerate(table.rows):
        cls = ' class="rule"' if i in table.rules_before and i > 0 else ""
        body.append(f"<tr{cls}><td>{esc(label)}</td>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    notes = f'<p class="notes">{esc(" ".join(table.notes))}</p>' if table.notes else ""
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{esc(table.title)}</title>'
            f"<style>{HTML_STYLE}</style></head><body>\n<table><caption>{esc(table.title)}</caption>\n"
            f"<thead>{''.join(head)}</thead>\n<tbody>\n" + "\n".join(body) + f"\n</tbody></table>\n{notes}\n</body></html>\n")


def to_csv(table: Table) -> str:
    """The table's raw numbers (``table.data``), 10 significant digits."""
    return table.data.to_csv(index=False, float_format="%.10g")


RENDERERS = {"md": to_markdown, "tex": to_latex, "csv": to_csv, "html": to_html}


def write_table(table: Table, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``<name>.<ext>`` into ``out_dir`` for each of ``vocabulary.TABLE_FORMATS`` (md, tex, csv,
    html; atomically); the CSV holds raw numbers."""
    paths = []
    for ext in TABLE_FORMATS:
        path = Path(out_dir) / f"{table.name}.{ext}"
        atomic_write_text(path, RENDERERS[ext](table))
        paths.append(path)
    return paths
