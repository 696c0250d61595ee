"""Keyset paging (``stratus.common.keyset``) on SQLite and PostgreSQL: paging
through a table with any sort, NULLs included, gives exactly the rows of
one sorted read, in the same order, on both databases."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from stratus.common import keyset


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = f"keyset_rows_{uuid.uuid4().hex[:8]}"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


SORTS = [
    [("created_at", "desc")],
    [("name", "asc")],
    [("name", "desc"), ("size", "asc")],
    [("size", "asc"), ("name", "desc")],
    [("size", "desc"), ("created_at", "asc")],
]


def rows() -> list[Row]:
    chooser = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for index in range(60):
        made.append(
            Row(
                id=str(uuid.UUID(int=chooser.getrandbits(128))),
                # Few distinct values and NULLs, so ties and NULLs meet.
                name=chooser.choice([None, "a", "b", "c"]),
                size=chooser.choice([None, 1, 2]),
                created_at=start + timedelta(seconds=index // 3),
            )
        )
    return made


def page_through(session: Session, sort: keyset.Sort, size: int) -> list[str]:
    seen: list[str] = []
    marker = None
    while True:
        query = select(Row)
        if marker is not None:
            query = query.where(keyset.after(sort, marker))
        page = list(session.scalars(query.order_by(*keyset.order_by(sort)).limit(size)))
        seen += [r.id for r in page]
        if len(page) < size:
            return seen
        marker = page[-1]


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keyset.db'}"
    else:
        url = request.getfixturevalue("postgresql_url")
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            session.add_all(rows())
            session.commit()
            yield session
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


@pytest.mark.parametrize("keys", SORTS, ids=lambda keys: ",".join(f"{k}:{d}" for k, d in keys))
def test_pages_are_one_sorted_read(session, keys):
    sort = [(getattr(Row, key), direction) for key, direction in keys] + [(Row.id, "asc")]
    whole = [r.id for r in session.scalars(select(Row).order_by(*keyset.order_by(sort)))]
    assert len(whole) == 60
    for size in (1, 7, 60):
        assert page_through(session, sort, size) == whole


def test_nulls_sort_first_ascending_and_last_descending(session):
    for direction, nulls_at in (("asc", 0), ("desc", -1)):
        sort = [(Row.name, direction), (Row.id, "asc")]
        ordered = list(session.scalars(select(Row).order_by(*keyset.order_by(sort))))
        groups = [name for name, _ in itertools.groupby(r.name for r in ordered)]
        assert groups[nulls_at] is None
        assert groups.count(None) == 1
