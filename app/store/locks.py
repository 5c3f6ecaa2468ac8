"""PostgreSQL advisory locks that serialise the fleet, one key space per schema.

An advisory lock belongs to the whole database, not to a schema. Two deployments kept in
different schemas of one database (a staging copy, a parallel test run) must not queue
behind each other's locks, so every key is mixed with the name of the schema the
connection works in (the first on its search path): replicas of one deployment share it,
and so share the lock.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

# Any 64-bit numbers fixed for this service.
MIGRATION = 0x5701_2E5_0001  # replicas starting together migrate in turn
ASSIGN = 0x5701_2E5_0002  # the write step decides one transaction at a time

_KEY = "hashtextextended(current_schema(), :k)"


def key(connection: Connection | Session, lock: int) -> int:
    """The 64-bit advisory key of ``lock`` in the connection's schema."""
    return connection.execute(text(f"SELECT {_KEY}"), {"k": lock}).scalar_one()


def hold_for_transaction(connection: Connection | Session, lock: int) -> None:
    """Wait for ``lock`` and hold it until the current transaction ends."""
    connection.execute(text(f"SELECT pg_advisory_xact_lock({_KEY})"), {"k": lock})


def hold(connection: Connection, lock: int) -> None:
    """Wait for ``lock`` and hold it until :func:`release` (or the connection closes)."""
    connection.execute(text(f"SELECT pg_advisory_lock({_KEY})"), {"k": lock})


def release(connection: Connection, lock: int) -> None:
    connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"k": lock})
