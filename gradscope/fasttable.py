"""A rich Table that lays out its common case itself: borderless, one line per cell, and wide enough.

rich measures and renders every cell through Padding, Text.wrap and justify (a report's 9-row layer table:
~8 ms of a 15 ms render; a 65-layer one ~50 ms). The tables of a report are borderless grids of one-line
strings and Texts that fit the console: their column widths are the widest cell plus the padding rich would
add, and each line is the cells' own segments, justified with spaces, the column's (and header's) style
under the cell's as rich applies it. Every other table (a border, wrapping, a cell too wide, a row style,
...) is rich's own: this class hands it to Table's methods unchanged. tests/test_render.py renders reports
both ways and compares every character and its style.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text


class FastTable(Table):
    """rich.table.Table; its simple case (see the module docstring) measured and rendered directly."""

    def _simple(self) -> bool:
        """Borderless, a header and no footer, every cell a one-line str or Text, left or right justified,
        no fixed or bounded column widths, no row styles or section lines: what _render lays out itself."""
        if (self.box is not None or not self.show_header or self.show_footer or self.expand or self.show_lines
                or self.leading or self.row_styles or self.min_width is not None or self.width is not None
                or len(self.padding) != 4 or self.padding[0] or self.padding[2]
                or any(row.style is not None or row.end_section for row in self.rows)):
            return False
        for column in self.columns:
            if (column.justify not in ("left", "right") or column.width is not None or column.min_width is not None
                    or column.max_width is not None or column.vertical != "top" or column.ratio is not None
                    or column.overflow != "ellipsis" or column.header_style):
                return False
            for cell in (column.header, *column._cells):
                if isinstance(cell, Text):
                    if "\n" in cell.plain or cell.justify is not None or cell.overflow is not None or cell.end != "\n":
                        return False
                elif not isinstance(cell, str) or "\n" in cell:
                    return False
        return True

    def _pads(self) -> list[tuple[int, int]]:
        """(left, right) padding of every column, as Table._get_cells works it out for a body cell."""
        _, right0, _, left0 = self.padding
        out = []
        last = len(self.columns) - 1
        for i in range(len(self.columns)):
            left, right = left0, right0
            if self.collapse_padding and i > 0:
                left = max(0, left - right)
            if not self.pad_edge:
                left = 0 if i == 0 else left
                right = 0 if i == last else right
            out.append((left, right))
        return out

    def _natural(self) -> list[int]:
        """Each column's content width: its widest cell (header included)."""
        return [max(cell_len(c.plain if isinstance(c, Text) else c) for c in (col.header, *col._cells))
                for col in self.columns]

    def _calculate_column_widths(self, console: Console, options: ConsoleOptions) -> list[int]:
        if self._simple():
            widths = [w + left + right for w, (left, right) in zip(self._natural(), self._pads(), strict=True)]
            if sum(widths) <= options.max_width:
                return widths
        return super()._calculate_column_widths(console, options)

    def _render(self, console: Console, options: ConsoleOptions, widths: list[int]) -> RenderResult:
        if not self._simple():
            yield from super()._render(console, options, widths)
            return
        pads = self._pads()
        natural = self._natural()
        if [w + a + b for w, (a, b) in zip(natural, pads, strict=True)] != widths:  # rich shrank it: its own layout
            yield from super()._render(console, options, widths)
            return
        get_style = console.get_style
        base = [get_style(col.style or "") for col in self.columns]
        header = get_style(self.header_style or "")
        new_line = Segment.line()
        rows = [(True, [col.header for col in self.columns])]
        rows += [(False, [col._cells[r] for col in self.columns]) for r in range(self.row_count)]
        for is_header, cells in rows:
            for col, cell, width, (left, right), style in zip(self.columns, cells, natural, pads, base, strict=True):
                cell_style = header if is_header else style  # a header: the table's header style, not the column's
                yield from _cell_segments(console, cell, col.justify, width, left, right, cell_style)
            yield new_line


def _cell_segments(console: Console, cell: str | Text, justify: Any, width: int, left: int, right: int,
                   style: Style) -> list[Segment]:
    """One cell's line as rich renders it: padding in the cell style, the text justified with spaces in the
    Text's own style, every segment under the cell style."""
    text = cell if isinstance(cell, Text) else Text(cell)
    if justify == "right" and text.plain[-1:].isspace():  # rich strips a right-justified line's trailing spaces
        text = text.copy()
        text.rstrip()
    space = width - cell_len(text.plain)
    own = style + console.get_style(text.style)  # a style name or a Style
    out: list[Segment] = []
    if left:
        out.append(Segment(" " * left, style))
    if space and justify == "right":
        out.append(Segment(" " * space, own))
    if text.spans:  # Text.render puts the Text's own style under its spans
        out.extend(Segment(s.text, style + s.style if s.style else style) for s in text.render(console) if s.text)
    elif text.plain:  # and yields a Text without spans unstyled: its style is the one rich adds
        out.append(Segment(text.plain, own))
    if space and justify == "left":
        out.append(Segment(" " * space, own))
    if right:
        out.append(Segment(" " * right, style))
    return out
