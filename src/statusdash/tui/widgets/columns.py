"""Small tables for the panels: columns that fit the width by dropping the least useful first.

A cell cut in the middle (a pid shown as ``107…``) reads as a wrong value; a missing column
does not, so a narrow panel loses whole columns before the one free-text column is shortened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content

from statusdash.safetext import one_line

Cell = str | tuple[str, str]  # text (data: escaped when shown), or (text, style)
ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    """How one column reads and gives way.

    ``drop``: 0 is always kept; otherwise the highest number goes first. Columns with ``drop``
    of 2 or more go before the ``flex`` column is shortened (down to ``min_w``), those with 1
    after it. ``max_w`` caps the column's width (0: no cap).
    """

    header: str = ""
    right: bool = False
    drop: int = 0
    flex: bool = False
    min_w: int = 6
    max_w: int = 0
    style: str = ""


def _text(cell: Cell) -> str:
    """The cell's text as shown: control characters and line breaks as visible escapes."""
    return one_line(cell if isinstance(cell, str) else cell[0])


def _style(cell: Cell) -> str:
    return "" if isinstance(cell, str) else cell[1]


def natural_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], header: bool
) -> list[int]:
    """Each column's width when nothing needs to give way; 0 for a column with nothing in it."""
    out = []
    for i, col in enumerate(columns):
        w = max((len(_text(r[i])) for r in rows), default=0)
        if w and header:
            w = max(w, len(col.header))
        out.append(min(w, col.max_w) if col.max_w else w)
    return out


def layout(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
    gap: int = 1,
    header: bool = False,
) -> list[int]:
    """Widths that fit ``width``: 0 for a column left out."""
    widths = natural_widths(columns, rows, header)
    flex = next((i for i, c in enumerate(columns) if c.flex and widths[i]), None)

    def total() -> int:
        shown = [w for w in widths if w]
        return sum(shown) + gap * max(len(shown) - 1, 0)

    def drop(at_least: int) -> bool:
        cands = [i for i, c in enumerate(columns) if widths[i] and c.drop >= at_least]
        if not cands:
            return False
        widths[max(cands, key=lambda i: (columns[i].drop, i))] = 0
        return True

    while total() > width and drop(2):
        pass
    if flex is not None and total() > width:
        shorter = max(columns[flex].min_w, widths[flex] - (total() - width))
        widths[flex] = min(widths[flex], shorter)
    while total() > width and drop(1):
        pass
    if flex is not None and total() > width:
        natural = natural_widths(columns, rows, header)[flex]
        widths[flex] = min(natural, max(3, widths[flex] - (total() - width)))
    elif flex is not None:  # columns dropped: the flex column may take back what it gave
        natural = natural_widths(columns, rows, header)[flex]
        widths[flex] = min(natural, widths[flex] + max(width - total(), 0))
    return widths


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to ``width``, or cut with an ellipsis."""
    if len(text) > width:
        return text[: max(width - 1, 0)] + ELLIPSIS if width > 0 else ""
    return text.rjust(width) if right else text.ljust(width)


def render_rows(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
    gap: int = 1,
    header: bool = False,
) -> list[Content]:
    """The rows (with a dim header line first when ``header``) laid out to ``width`` cells."""
    widths = layout(columns, rows, width, gap, header)
    shown = [i for i, w in enumerate(widths) if w]
    lines: list[Content] = []
    if header and rows:
        parts = [fit(columns[i].header, widths[i], columns[i].right) for i in shown]
        lines.append(Content.styled((" " * gap).join(parts).rstrip(), "bold $text-muted"))
    for row in rows:
        pieces: list[Content | str | tuple[str, str]] = []
        for n, i in enumerate(shown):
            col, cell = columns[i], row[i]
            text = fit(_text(cell), widths[i], col.right)
            if n == len(shown) - 1:
                text = text.rstrip()
            if n:
                pieces.append(" " * gap)
            style = _style(cell) or col.style
            pieces.append((text, style) if style else text)
        lines.append(Content.assemble(*pieces))
    return lines


def table_width(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], gap: int = 1, header: bool = False
) -> int:
    """The width the rows take when nothing needs to give way."""
    shown = [w for w in natural_widths(columns, rows, header) if w]
    return sum(shown) + gap * max(len(shown) - 1, 0)
