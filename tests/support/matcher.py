"""The matcher's transactions as tests drive them: batches stored as the listener stores them,
matched past the listener's leases, and one transaction held open on a thread before its commit
while another runs."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import text

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.match.service import match_stored
from ethhook.workqueue import store_events
from tests.support.factories import transfer


def stored_batch(contract: str, block: int, count: int) -> list[str]:
    """`count` Transfers of `contract` in one block, stored as the listener stores them; their
    ids."""
    events = [transfer(contract=contract, block=block, log_index=i, value=i) for i in range(count)]
    with session_scope() as session:
        store_events(session, events, utcnow())
    return [e.event_id for e in events]


def later() -> datetime:
    """Past the listener's leases: a message may claim any stored event."""
    return utcnow() + timedelta(seconds=2 * get_settings().dispatch_lease_s)


def lock_waiters() -> int:
    """Sessions of this database waiting for a lock (a row's, or an advisory one)."""
    with session_scope() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            or 0
        )


class MatchOnThread:
    """match_stored of one batch in its own transaction on a thread. With `hold`, it stops after
    matching, before its commit, until commit(): another transaction runs beside it meanwhile."""

    def __init__(self, event_ids: list[str], hold: bool = False) -> None:
        self._hold = hold
        self._matched, self._commit = threading.Event(), threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(event_ids,))
        self._thread.start()
        if hold:
            assert self._matched.wait(30), "the held matcher did not match"

    def _run(self, event_ids: list[str]) -> None:
        try:
            with session_scope() as session:
                match_stored(session, event_ids, "test", later())
                if self._hold:
                    self._matched.set()
                    assert self._commit.wait(30)
        except BaseException as e:  # raised in the test's thread by join()
            self._errors.append(e)
            self._matched.set()

    def commit(self) -> None:
        self._commit.set()

    def join(self) -> None:
        self._thread.join(30)
        assert not self._errors, self._errors
