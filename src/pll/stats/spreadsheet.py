"""CSV cells safe to open in a spreadsheet (OWASP, "CSV injection").

A text cell that begins with ``=``, ``+``, ``-`` or ``@`` — or a tab or carriage return,
which some spreadsheets skip before reading the cell as a formula — runs as a formula when
the file is opened: a name from a token or an SFM document could reach the payer's
spreadsheet as ``=HYPERLINK(...)``. Such a cell is written with a leading ``'``, which the
spreadsheet shows as text. Figures (``int``, ``float``) are left alone: a negative trend is
a number, not a formula.
"""

from __future__ import annotations

import csv
import io
from typing import Any

#: what makes a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text that a spreadsheet would read as a
    formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def table_csv(rows: list[dict[str, Any]]) -> str:
    """The rows of a rollout report as CSV, a header of the first row's keys: a list (the
    days of the first lists) as its items joined by ``;``, a figure that does not apply
    (``None``) empty, every text cell :func:`safe_cell`."""
    out = io.StringIO()
    if rows:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(safe_cell(k) for k in rows[0])
        for row in rows:
            writer.writerow(
                safe_cell(";".join(v) if isinstance(v, list) else "" if v is None else v)
                for v in row.values()
            )
    return out.getvalue()
