"""Message tokens and workers' claim tokens: told apart by their form, both fit the column."""

from __future__ import annotations

from ethhook.db.models import Delivery
from ethhook.workqueue import new_claim_token, new_token
from ethhook.workqueue.lease import MESSAGE_TOKEN_PREFIX

COLUMN_CHARS = Delivery.__table__.c.lease_token.type.length


def test_message_tokens_are_marked_and_fresh():
    first, second = new_token(), new_token()

    assert first.startswith(MESSAGE_TOKEN_PREFIX) and second.startswith(MESSAGE_TOKEN_PREFIX)
    assert first != second
    assert len(first) <= COLUMN_CHARS


def test_claim_tokens_are_never_taken_for_message_tokens():
    tokens = {new_claim_token() for _ in range(1000)}

    assert len(tokens) == 1000
    assert not any(t.startswith(MESSAGE_TOKEN_PREFIX) for t in tokens)
    assert all(len(t) <= COLUMN_CHARS for t in tokens)
