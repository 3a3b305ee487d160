"""An ordered endpoint's claim for the deliver task: from its head, whatever the message names,
with a log line for each dead-lettered delivery it skips or that pauses the endpoint; and which
ordered endpoints a task of this process is sending now, with the messages left to it."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.deliver.store import ClaimedWork, claim_ordered_and_load
from ethhook.workqueue import DispatchGroup

log = logging.getLogger(__name__)

# An ordered claim takes at most this many deliveries from the head (sent one at a time): as many
# as a matcher's message holds. Each claim costs a transaction, a breaker check and a settle:
# with 20 an ordered endpoint's webhook took the deliver worker ~1.5x an unordered one's CPU, and
# at 400 events/s live it fell 2.6-4 s behind where claims of 100 fell 0.3-1.9 s behind
# (bench/RESULTS.md §14).
ORDERED_CHUNK = 100


def claim_from_head(
    session: Session, settings: Settings, endpoint_id: int, worker_token: str, now: datetime
) -> ClaimedWork:
    """The endpoint's head and the due deliveries after it, claimed for `worker_token` (at most
    a chunk, their work in sequence order). Nothing is claimed when the endpoint is gone,
    disabled or not ordered (its `endpoint` says which), or there is nothing to send (the head
    waits for its retry, another worker is sending, or it is paused)."""
    got = claim_ordered_and_load(session, endpoint_id, worker_token, now, settings, ORDERED_CHUNK)
    for row in got.skipped:
        log.warning(
            "deliver.ordered.skipped endpoint=%s delivery=%s sequence=%s reason=dead-lettered",
            endpoint_id,
            row.id,
            row.sequence,
            extra={"endpoint_id": endpoint_id, "delivery_id": row.id},
        )
    if got.paused_by is not None:
        log.info(
            "deliver.ordered.paused endpoint=%s delivery=%s sequence=%s reason=dead-lettered",
            endpoint_id,
            got.paused_by.id,
            got.paused_by.sequence,
            extra={"endpoint_id": endpoint_id, "delivery_id": got.paused_by.id},
        )
    return got


class Senders:
    """The ordered endpoints a task of this process is sending now, and the messages that came
    for one of them meanwhile.

    A message for an ordered endpoint that one of this process's tasks is sending has nothing to
    do: its claim from the head would find the head under that task's claim and take nothing
    (two transactions for every matcher batch, 519 of 599 messages in bench/RESULTS.md §14). Its
    deliveries are the sending task's to claim next, since that task goes on from the head while
    it succeeds. The message is acknowledged at once and noted; a sending task that finds nothing
    more to claim looks at the note before it stops and claims again if a message came meanwhile
    (its deliveries may have been committed after the task's last claim read the head).

    A sender that stops before it has found nothing more (a failure, its time, a deferral, an
    error, or the endpoint no longer ordered or active) gets the messages left to it back, to
    publish again: their deliveries are still leased to them, and nobody else would send them
    before the leases expired.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sending: set[int] = set()
        self._noted: set[int] = set()
        self._left: dict[int, list[DispatchGroup]] = {}

    def defer_to_sender(self, message: DispatchGroup) -> bool:
        """True, and noted, when a task of this process is sending the message's endpoint."""
        with self._lock:
            if message.endpoint_id not in self._sending:
                return False
            self._noted.add(message.endpoint_id)
            self._left.setdefault(message.endpoint_id, []).append(message)
            return True

    def start(self, endpoint_id: int) -> bool:
        """Take the sender's role; False when another task of this process has it."""
        with self._lock:
            if endpoint_id in self._sending:
                return False
            self._sending.add(endpoint_id)
            self._noted.discard(endpoint_id)
            self._left.pop(endpoint_id, None)
            return True

    def stop_unless_noted(self, endpoint_id: int) -> bool:
        """Give the role up, once the sender's claim found nothing more to send from the head
        of the still ordered endpoint, unless a message was left to it since the last look:
        False then, and the sender claims again (one step, so no message is left to a sender
        that has stopped looking). Every message left to it is done with: its deliveries were
        committed before a claim that came after it, which sent them or found them waiting
        behind the head."""
        with self._lock:
            if endpoint_id in self._noted:
                self._noted.discard(endpoint_id)
                return False
            self._sending.discard(endpoint_id)
            self._left.pop(endpoint_id, None)
            return True

    def stop(self, endpoint_id: int) -> list[DispatchGroup]:
        """Give the role up early; the messages left to the sender, oldest first."""
        with self._lock:
            self._sending.discard(endpoint_id)
            self._noted.discard(endpoint_id)
            return self._left.pop(endpoint_id, [])


senders = Senders()
