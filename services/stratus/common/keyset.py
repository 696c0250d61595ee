"""Keyset pagination: the rows after a marker row, in a sort on several keys.

A sort is a list of (column, ``asc`` or ``desc``) whose last column is unique
(the ID), so that a marker names one position. ``after`` is the condition
for the rows strictly after the marker's; with ``order_by`` and a SQL LIMIT,
a page costs the same however deep it is, where skipping to the marker in
Python costs every row before it.

NULLs sort first ascending and last descending, spelled out so that SQLite
(whose default this is) and PostgreSQL (whose default is the reverse) agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.orm import InstrumentedAttribute

Sort = Sequence[tuple[InstrumentedAttribute[Any], str]]


def order_by(sort: Sort) -> list[Any]:
    """The ORDER BY clauses of ``sort``."""
    return [
        column.asc().nulls_first() if direction == "asc" else column.desc().nulls_last()
        for column, direction in sort
    ]


def after(sort: Sort, marker: Any) -> ColumnElement[bool]:
    """Rows strictly after the row ``marker`` (an ORM object) in ``sort``."""
    clauses = []
    for index, (column, direction) in enumerate(sort):
        value = getattr(marker, column.key)
        equal_before = [_equal(c, getattr(marker, c.key)) for c, _ in sort[:index]]
        if direction == "asc":
            beyond = column.is_not(None) if value is None else column > value
        else:
            beyond = false() if value is None else or_(column < value, column.is_(None))
        clauses.append(and_(*equal_before, beyond))
    return or_(*clauses)


def _equal(column: InstrumentedAttribute[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
