"""Markdown tables: the one output format of every benchmark, written once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], labels: int) -> str:
    """The first ``labels`` columns name the row; the rest hold numbers, right-aligned."""
    align = ["---"] * labels + ["---:"] * (len(header) - labels)
    return "\n".join(_line(cells) for cells in (header, align, *rows))


def _line(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"
