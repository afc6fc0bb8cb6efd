"""Coordination leases: a job that one node of the cluster at a time must run.

One row per lease name: the holder (a node id), its term and when the lease ends. A
node takes the lease, or renews its own, with one conditional UPDATE (holder is itself,
or the lease has expired): of nodes racing for an expired lease, exactly one matches.
The term grows by one whenever the holder changes, so a term names one tenure.

Expiry is judged by the caller's clock against times other nodes wrote, as heartbeats
are: the nodes' clocks must agree to well within a lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, case, or_, select, update

from runtime.store.coltypes import utc_now
from runtime.store.records import LeaseRecord
from runtime.store.schema import coordination
from runtime.store.upsert import dialect_insert


class CoordinationRepository:
    """Leases in `coordination`; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, holder: str, now: datetime, seconds: float) -> LeaseRecord | None:
        """Take the lease `name` for `holder` until `now + seconds`, or renew it: the lease
        when `holder` holds it now, None when another node's lease has not expired."""
        until = now + timedelta(seconds=seconds)
        same = coordination.c.holder == holder
        renew = (
            update(coordination)
            .where(coordination.c.name == name, or_(same, coordination.c.expires_at < now))
            .values(
                holder=holder,
                term=case((same, coordination.c.term), else_=coordination.c.term + 1),
                acquired_at=case((same, coordination.c.acquired_at), else_=now),
                expires_at=until,
            )
            .returning(*coordination.c)
        )
        with self._engine.begin() as conn:
            row = conn.execute(renew).first()
            if row is None:  # no row yet: the first node to insert it holds term 1
                first = (
                    dialect_insert(conn, coordination)
                    .values(name=name, holder=holder, term=1, expires_at=until, acquired_at=now)
                    .on_conflict_do_nothing(index_elements=[coordination.c.name])
                    .returning(*coordination.c)
                )
                row = conn.execute(first).first()
        return None if row is None else LeaseRecord(*row)

    def release(self, name: str, holder: str) -> bool:
        """Ends `holder`'s lease now (a clean stop), so another node takes over at once."""
        stmt = (
            update(coordination)
            .where(coordination.c.name == name, coordination.c.holder == holder)
            .values(expires_at=utc_now())
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def current(self, name: str) -> LeaseRecord | None:
        """The lease `name` as last written: holder, term, expiry (None if never taken).

        `expires_at` in the past means nobody holds it now (its last holder stopped
        renewing); the next node to try takes it with term + 1.
        """
        with self._engine.connect() as conn:
            row = conn.execute(select(coordination).where(coordination.c.name == name)).first()
        return None if row is None else LeaseRecord(*row)
