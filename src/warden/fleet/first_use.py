"""Tables a feature keeps in the inventory database beside the fleet's own (probe nonces, the watcher's, the
scan cache): not in the fleet's migrations, but declared on `FirstUseBase` and created by the feature's store
when it is first opened."""

from __future__ import annotations

from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase

from warden.fleet.store import Fleet


class FirstUseBase(DeclarativeBase):
    pass


def create_tables(fleet: Fleet, *tables: type[FirstUseBase]) -> None:
    """Create those of `tables` missing from `fleet`'s database (every control-plane worker may do so)."""
    wanted = [FirstUseBase.metadata.tables[t.__tablename__] for t in tables]
    try:
        FirstUseBase.metadata.create_all(fleet.engine, tables=wanted)
    except DatabaseError:  # another worker created them at the same moment: the second pass sees them
        FirstUseBase.metadata.create_all(fleet.engine, tables=wanted)
